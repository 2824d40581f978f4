//! Pushing: every blob the registry lacks (HEAD first; a cross-repository mount when another
//! repository of the same registry has it; else an upload, monolithic or chunked), then the
//! manifest. A second push of the same image uploads nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::errors::OciDistributionError;
use reqwest::header::HeaderValue;

use xbuild_cache::Store;
use xbuild_cache::oci::{self, Descriptor, Manifest};
use xbuild_llb::Digest;

use crate::retry::{Failure, with_retries};
use crate::session::{Access, Session};
use crate::{Error, Reference, Registry, Step};

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
        let oref = target.to_oci();
        with_retries(s.attempts, &target.to_string(), || async {
            Ok(s.client
                .push_manifest_raw(&oref, bytes.clone(), content_type.clone())
                .await?)
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
        let oref = s.reference.to_oci();
        let digest = blob.digest.as_str();
        let step = || Step::Upload(digest.to_string());
        let exists = with_retries(s.attempts, digest, || async {
            Ok(s.client.blob_exists(&oref, digest).await?)
        })
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
            let from = oci_client::Reference::with_tag(
                s.reference.registry_host().to_string(),
                repo.clone(),
                "latest".into(),
            );
            match s.client.mount_blob(&oref, &from, digest).await {
                Ok(()) => {
                    tracing::debug!(%digest, from = %repo, "mounted");
                    return Ok(BlobPush::Mounted);
                }
                Err(e) => tracing::debug!(%digest, from = %repo, error = %e, "mount not possible"),
            }
        }
        let path = store.blob_path(&blob.digest);
        let size = store.blob_size(&blob.digest)?;
        // Set when the store's copy turns out corrupt while it streams: no retry helps then.
        let corrupt: Arc<std::sync::Mutex<Option<xbuild_cache::Error>>> = Arc::default();
        let upload = |client: oci_client::Client| {
            let path = path.clone();
            let oref = oref.clone();
            let corrupt = corrupt.clone();
            let expected = blob.digest.clone();
            async move {
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Failure::fatal(format!("{}: {e}", path.display())))?;
                let chunks = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
                let body = verified(chunks, expected, path, corrupt)
                    .map_err(OciDistributionError::IoError);
                client
                    .push_blob_stream(&oref, body, digest, Some(size))
                    .await
                    .map_err(Failure::from)
            }
        };
        let found_corrupt = || corrupt.lock().ok().and_then(|mut c| c.take());
        if size > self.opts.chunked_upload_above {
            match upload(s.client.clone()).await {
                Ok(_) => return Ok(BlobPush::Uploaded),
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
            let r = upload(s.monolithic.clone()).await;
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
