//! Pushing: every blob the registry lacks (HEAD first; a cross-repository mount when another
//! repository of the same registry has it; else an upload, monolithic or chunked), then the
//! manifest. A second push of the same image uploads nothing.
//!
//! The OCI distribution protocol is spoken here, over the session's HTTP client, as pulls are:
//! no response body is read whole. Error bodies give at most [`MAX_ERROR_BODY`] bytes (within
//! [`DOCUMENT_TIMEOUT`]); other bodies are not read at all.
//!
//! [`MAX_ERROR_BODY`]: crate::MAX_ERROR_BODY

use std::collections::{BTreeSet, HashMap};
use std::pin::pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};

use xbuild_cache::Store;
use xbuild_cache::oci::{self, Descriptor, Manifest};
use xbuild_llb::Digest;

use crate::limits::{DOCUMENT_TIMEOUT, error_text};
use crate::retry::{Failure, chain, with_retries};
use crate::session::{Access, Session};
use crate::{Error, Reference, Registry, Step};

/// Bytes per PATCH of a chunked upload (what the push sent when `oci-client` did it).
const CHUNK_SIZE: usize = 4 << 20;

/// Repositories of the target registry known to hold a blob (digest → repository paths), so the
/// blob can be mounted instead of uploaded.
pub type MountSources = HashMap<Digest, Vec<String>>;

/// What pushing one blob took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry already had it.
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// What a push did.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// Where the image went.
    pub reference: Reference,
    /// The manifest's digest.
    pub manifest: Digest,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs the registry already had.
    pub present: usize,
}

impl Registry {
    /// Pushes the image whose manifest is `manifest` (in `store`) to `target`.
    pub async fn push(
        &self,
        store: &Arc<Store>,
        manifest: &Digest,
        target: &Reference,
        sources: &MountSources,
    ) -> Result<Pushed, Error> {
        let bytes = store.read_blob(manifest)?;
        let media_type = match serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(String::from)
            }) {
            Some(m) => m,
            None => oci::MEDIA_MANIFEST.to_string(),
        };
        if media_type != oci::MEDIA_MANIFEST && media_type != oci::MEDIA_DOCKER_MANIFEST {
            return Err(Error::Unsupported {
                reference: target.to_string(),
                message: format!("pushing a {media_type} is not supported; push an image manifest"),
            });
        }
        let m: Manifest = store.read_json(manifest)?;
        let mut blobs: Vec<Descriptor> = vec![m.config.clone()];
        for l in &m.layers {
            if !blobs.iter().any(|b| b.digest == l.digest) {
                blobs.push(l.clone());
            }
        }
        for b in &blobs {
            if !store.has_blob(&b.digest) {
                return Err(xbuild_cache::Error::MissingBlob(b.digest.clone()).into());
            }
        }
        let s = self.push_session(target, &blobs, sources).await?;
        // Futures made up front, not by a closure in the stream: a closure over borrowed
        // descriptors makes the whole push future fail `Send` checks in spawned tasks.
        let pushes: Vec<_> = blobs
            .iter()
            .map(|b| self.push_blob_in(&s, store, b, sources))
            .collect();
        let outcomes: Vec<BlobPush> = stream::iter(pushes)
            .buffer_unordered(self.opts.concurrency.max(1))
            .try_collect()
            .await?;
        let digest = self
            .push_manifest_in(&s, target, Bytes::from(bytes), &media_type)
            .await?;
        let count = |k: BlobPush| outcomes.iter().filter(|o| **o == k).count();
        Ok(Pushed {
            reference: target.clone(),
            manifest: digest,
            uploaded: count(BlobPush::Uploaded),
            mounted: count(BlobPush::Mounted),
            present: count(BlobPush::Present),
        })
    }

    async fn push_session(
        &self,
        target: &Reference,
        blobs: &[Descriptor],
        sources: &MountSources,
    ) -> Result<Arc<Session>, Error> {
        let repos: BTreeSet<String> = blobs
            .iter()
            .filter_map(|b| sources.get(&b.digest))
            .flatten()
            .filter(|r| *r != target.path())
            .cloned()
            .collect();
        self.session(target, Access::Push(repos.into_iter().collect()))
            .await
    }

    /// Pushes one blob from `store` to `target`'s repository unless the registry has it.
    pub async fn push_blob(
        &self,
        store: &Arc<Store>,
        target: &Reference,
        blob: &Descriptor,
        sources: &MountSources,
    ) -> Result<BlobPush, Error> {
        let s = self
            .push_session(target, std::slice::from_ref(blob), sources)
            .await?;
        self.push_blob_in(&s, store, blob, sources).await
    }

    /// Pushes a manifest document under `target`'s tag (or digest); returns its digest.
    pub async fn push_manifest(
        &self,
        target: &Reference,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest, Error> {
        let s = self.session(target, Access::Push(Vec::new())).await?;
        self.push_manifest_in(&s, target, bytes, media_type).await
    }

    async fn push_manifest_in(
        &self,
        s: &Session,
        target: &Reference,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest, Error> {
        let content_type = HeaderValue::from_str(media_type).map_err(|_| {
            s.error(
                Step::Manifest,
                format!("media type {media_type:?} is not a valid header value"),
            )
        })?;
        let url =
            parse_url(&s.manifest_url(target)).map_err(|f| s.error(Step::Manifest, f.message))?;
        with_retries(s.attempts, &target.to_string(), || async {
            let put = s
                .request(Method::PUT, url.clone())
                .header(CONTENT_TYPE, content_type.clone())
                .body(bytes.clone())
                .timeout(DOCUMENT_TIMEOUT);
            accepted(Method::PUT, put).await.map(drop)
        })
        .await
        .map_err(|f| s.error(Step::Manifest, f.message))?;
        Ok(Digest::of(&bytes))
    }

    async fn push_blob_in(
        &self,
        s: &Session,
        store: &Arc<Store>,
        blob: &Descriptor,
        sources: &MountSources,
    ) -> Result<BlobPush, Error> {
        let digest = blob.digest.as_str();
        let step = || Step::Upload(digest.to_string());
        let exists = with_retries(s.attempts, digest, || blob_exists(s, digest))
            .await
            .map_err(|f| {
                s.error(
                    step(),
                    format!("checking whether the registry has it: {}", f.message),
                )
            })?;
        if exists {
            return Ok(BlobPush::Present);
        }
        for repo in sources.get(&blob.digest).into_iter().flatten() {
            if repo == s.reference.path() {
                continue;
            }
            match mount(s, digest, repo).await {
                Ok(true) => {
                    tracing::debug!(%digest, from = %repo, "mounted");
                    return Ok(BlobPush::Mounted);
                }
                Ok(false) => {
                    tracing::debug!(%digest, from = %repo, "the registry started an upload instead of mounting")
                }
                Err(f) => {
                    tracing::debug!(%digest, from = %repo, error = %f.message, "mount not possible")
                }
            }
        }
        let path = store.blob_path(&blob.digest);
        let size = store.blob_size(&blob.digest)?;
        // Set when the store's copy turns out corrupt while it streams: no retry helps then.
        let corrupt: Arc<std::sync::Mutex<Option<xbuild_cache::Error>>> = Arc::default();
        let upload = |chunked: bool| {
            let path = path.clone();
            let corrupt = corrupt.clone();
            let expected = blob.digest.clone();
            async move {
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Failure::fatal(format!("{}: {e}", path.display())))?;
                let chunks = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
                let body = verified(chunks, expected, path, corrupt);
                if chunked {
                    upload_chunked(s, body, digest).await
                } else {
                    upload_monolithic(s, body, size, digest).await
                }
            }
        };
        let found_corrupt = || corrupt.lock().ok().and_then(|mut c| c.take());
        if size > self.opts.chunked_upload_above {
            match upload(true).await {
                Ok(()) => return Ok(BlobPush::Uploaded),
                Err(f) => {
                    if let Some(e) = found_corrupt() {
                        return Err(e.into());
                    }
                    tracing::info!(%digest, error = %f.message, "chunked upload failed; uploading in one request")
                }
            }
        }
        let (upload, corrupt_seen) = (&upload, &corrupt);
        let uploaded = with_retries(s.attempts, digest, || async move {
            let r = upload(false).await;
            if r.is_err() && corrupt_seen.lock().is_ok_and(|c| c.is_some()) {
                return Err(Failure::fatal("the store's copy of the blob is corrupt"));
            }
            r
        })
        .await;
        if let Some(e) = found_corrupt() {
            return Err(e.into());
        }
        uploaded.map_err(|f| s.error(step(), f.message))?;
        Ok(BlobPush::Uploaded)
    }
}

/// `url` parsed; a session's URLs always parse, so a failure is final.
fn parse_url(url: &str) -> Result<Url, Failure> {
    Url::parse(url).map_err(|e| Failure::fatal(format!("{url:?} is not a URL: {e}")))
}

/// Sends `req` (a `method` request); any answer but a 2xx is a failure carrying the start of
/// its body ([`refused`]).
async fn accepted(
    method: Method,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, Failure> {
    let res = req.send().await?;
    if res.status().is_success() {
        Ok(res)
    } else {
        Err(refused(&method, res).await)
    }
}

/// A response the registry refused (not `2xx`) as a [`Failure`] naming the request: the
/// registry's words from at most [`MAX_ERROR_BODY`](crate::MAX_ERROR_BODY) bytes of the body,
/// read within [`DOCUMENT_TIMEOUT`]; 5xx and 429 may be retried.
async fn refused(method: &Method, res: reqwest::Response) -> Failure {
    let code = res.status().as_u16();
    let mut url = res.url().clone();
    // Upload URLs carry the registry's upload state: long, and of no use to the user.
    url.set_query(None);
    let body = tokio::time::timeout(DOCUMENT_TIMEOUT, error_text(res))
        .await
        .unwrap_or_else(|_| "(no whole error body within DOCUMENT_TIMEOUT)".into());
    let mut f = Failure::status(code, &body);
    f.message = format!("{method} {url}: {}", f.message);
    f
}

/// The `Location` of `res` resolved against the URL it answers (a registry may send it
/// absolute, absolute-path or relative, as Docker's client accepts); `None` when it has none.
fn resolve_location(method: &Method, res: &reqwest::Response) -> Result<Option<Url>, Failure> {
    let Some(value) = res.headers().get(LOCATION) else {
        return Ok(None);
    };
    let bad = |why: String| {
        Failure::fatal(format!(
            "{method} {}: the registry's Location {value:?} {why}",
            res.url()
        ))
    };
    let text = value.to_str().map_err(|_| bad("is not text".into()))?;
    res.url()
        .join(text)
        .map(Some)
        .map_err(|e| bad(format!("is not a URL: {e}")))
}

/// The `Location` of `res`, which must have one: where the upload goes on.
fn upload_location(method: &Method, res: &reqwest::Response) -> Result<Url, Failure> {
    resolve_location(method, res)?.ok_or_else(|| {
        Failure::fatal(format!(
            "{method} {}: HTTP {} without a Location header",
            res.url(),
            res.status().as_u16()
        ))
    })
}

/// Whether the session's repository has blob `digest` (a HEAD: 2xx yes, 404 no).
async fn blob_exists(s: &Session, digest: &str) -> Result<bool, Failure> {
    let url = parse_url(&s.blob_url(digest))?;
    let res = s
        .request(Method::HEAD, url)
        .timeout(DOCUMENT_TIMEOUT)
        .send()
        .await?;
    match res.status() {
        st if st.is_success() => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(refused(&Method::HEAD, res).await),
    }
}

/// Asks the registry to mount blob `digest` into the session's repository from repository
/// `from`: true when it did (201). False when it started an upload instead (202, a registry
/// that cannot mount it), which the caller does not use: it uploads as it would without a
/// source.
async fn mount(s: &Session, digest: &str, from: &str) -> Result<bool, Failure> {
    let base = format!("{}/blobs/uploads/", s.base);
    let url = Url::parse_with_params(&base, &[("mount", digest), ("from", from)])
        .map_err(|e| Failure::fatal(format!("{base:?} is not a URL: {e}")))?;
    let res = post_upload(s, url).await?;
    match res.status() {
        StatusCode::CREATED => Ok(true),
        st if st.is_success() => Ok(false),
        _ => Err(refused(&Method::POST, res).await),
    }
}

/// An empty POST to the upload endpoint `url` (which a query may turn into a mount).
async fn post_upload(s: &Session, url: Url) -> Result<reqwest::Response, Failure> {
    let req = s
        .request(Method::POST, url)
        .header(CONTENT_LENGTH, 0)
        .timeout(DOCUMENT_TIMEOUT);
    Ok(req.send().await?)
}

/// Starts an upload to the session's repository (a POST answered 202); returns where it goes on.
async fn begin_upload(s: &Session) -> Result<Url, Failure> {
    let url = parse_url(&format!("{}/blobs/uploads/", s.base))?;
    let res = post_upload(s, url).await?;
    match res.status() {
        StatusCode::ACCEPTED => upload_location(&Method::POST, &res),
        st if st.is_success() => Err(Failure::fatal(format!(
            "POST {}: HTTP {} where an upload starts with 202 Accepted",
            res.url(),
            st.as_u16()
        ))),
        _ => Err(refused(&Method::POST, res).await),
    }
}

/// Ends the upload at `location` with a PUT naming its digest (and carrying `body`).
async fn finish_upload(
    s: &Session,
    mut location: Url,
    digest: &str,
    body: reqwest::Body,
    size: u64,
) -> Result<(), Failure> {
    location.query_pairs_mut().append_pair("digest", digest);
    let put = s
        .request(Method::PUT, location)
        .header(CONTENT_LENGTH, size)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(body);
    accepted(Method::PUT, put).await.map(drop)
}

/// Uploads a blob of `size` bytes in one request: a POST, then a PUT carrying it all.
async fn upload_monolithic(
    s: &Session,
    body: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    size: u64,
    digest: &str,
) -> Result<(), Failure> {
    let location = begin_upload(s).await?;
    finish_upload(s, location, digest, reqwest::Body::wrap_stream(body), size).await
}

/// Uploads a blob in chunks: a POST, a PATCH per [`CHUNK_SIZE`] bytes (each answer says where
/// the next goes), then an empty PUT naming the digest.
async fn upload_chunked(
    s: &Session,
    body: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    digest: &str,
) -> Result<(), Failure> {
    let mut location = begin_upload(s).await?;
    let mut body = pin!(body);
    let mut pending = BytesMut::new();
    let mut sent = 0u64;
    loop {
        let next = body.next().await.transpose().map_err(read_failure)?;
        let end = next.is_none();
        if let Some(b) = next {
            pending.extend_from_slice(&b);
        }
        while pending.len() >= CHUNK_SIZE || (end && !pending.is_empty()) {
            let chunk = pending.split_to(CHUNK_SIZE.min(pending.len())).freeze();
            let len = chunk.len() as u64;
            location = patch(s, location, chunk, sent).await?;
            sent += len;
        }
        if end {
            break;
        }
    }
    finish_upload(s, location, digest, reqwest::Body::from(Bytes::new()), 0).await
}

/// Sends one chunk, starting at byte `start` of the blob, to the upload at `location`; returns
/// where the upload goes on (the same place when the answer names none).
async fn patch(s: &Session, location: Url, chunk: Bytes, start: u64) -> Result<Url, Failure> {
    let end = start + chunk.len() as u64 - 1;
    let req = s
        .request(Method::PATCH, location.clone())
        .header(CONTENT_RANGE, format!("{start}-{end}"))
        .header(CONTENT_LENGTH, chunk.len())
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(chunk);
    let res = accepted(Method::PATCH, req).await?;
    Ok(resolve_location(&Method::PATCH, &res)?.unwrap_or(location))
}

/// A failure reading the store's copy of a blob: worth another try unless the file is gone or
/// unreadable.
fn read_failure(e: std::io::Error) -> Failure {
    let mut f = Failure::fatal(chain(&e));
    f.retryable = !matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    );
    f
}

/// The chunks of a stored blob, hashed as they pass: at the end, content that does not hash to
/// `expected` ends the stream with an error (and `corrupt` says why), so the upload fails
/// before the registry sees its last byte.
fn verified(
    chunks: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    expected: Digest,
    path: std::path::PathBuf,
    corrupt: Arc<std::sync::Mutex<Option<xbuild_cache::Error>>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    use sha2::Digest as _;
    let state = (chunks.boxed(), Some(sha2::Sha256::new()));
    stream::unfold(state, move |(mut chunks, mut hasher)| {
        let (expected, path, corrupt) = (expected.clone(), path.clone(), corrupt.clone());
        async move {
            let h = hasher.as_mut()?;
            match chunks.next().await {
                Some(Ok(b)) => {
                    h.update(&b);
                    Some((Ok(b), (chunks, hasher)))
                }
                Some(Err(e)) => Some((Err(e), (chunks, None))),
                None => {
                    let actual = Digest::from_sha256(hasher.take()?.finalize().into());
                    if actual == expected {
                        return None;
                    }
                    let e = xbuild_cache::Error::CorruptBlob {
                        digest: expected,
                        actual,
                        path,
                    };
                    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
                    if let Ok(mut c) = corrupt.lock() {
                        *c = Some(e);
                    }
                    Some((Err(io), (chunks, None)))
                }
            }
        }
    })
}
