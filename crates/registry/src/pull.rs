//! Pulling: resolve the manifest (an index picks the build platform), then fetch the config and
//! layers in parallel, each streamed into the store and committed only if it hashes to its digest.
//!
//! Every byte comes through [`Session::get`] and a bounded read: manifests and indexes up to
//! [`MAX_MANIFEST_SIZE`], configs up to [`MAX_CONFIG_SIZE`] (checked on the descriptor before
//! the fetch), every blob exactly its descriptor's size, error bodies truncated.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};

use xbuild_cache::Store;
use xbuild_cache::oci::{self, Descriptor, Index, Manifest};
use xbuild_llb::Digest;

use crate::limits::{
    BodyError, DOCUMENT_TIMEOUT, Document, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, error_text,
    read_document,
};
use crate::retry::{Failure, with_retries};
use crate::session::{Access, Session};
use crate::{BlobLength, Error, Platform, Reference, Registry, Step};

/// The manifest media types a pull accepts.
pub(crate) const MANIFEST_TYPES: [&str; 4] = [
    oci::MEDIA_MANIFEST,
    oci::MEDIA_INDEX,
    oci::MEDIA_DOCKER_MANIFEST,
    oci::MEDIA_DOCKER_LIST,
];

/// Layer media types whose content the store can keep and the unpacker can be asked to read.
const LAYER_TYPES: [&str; 8] = [
    oci::MEDIA_LAYER_TAR,
    oci::MEDIA_LAYER_GZIP,
    oci::MEDIA_LAYER_ZSTD,
    oci::MEDIA_DOCKER_LAYER,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// What a pull brought into the store.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The reference pulled.
    pub reference: Reference,
    /// The image manifest for the build platform (the digest a build records).
    pub manifest: Descriptor,
    /// The index or manifest list the reference named, if it named one.
    pub index: Option<Descriptor>,
    /// Blobs downloaded.
    pub fetched: usize,
    /// Blobs the store already had.
    pub present: usize,
}

/// The media type a manifest document declares, or the one its shape implies.
fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    p.media_type.or_else(|| match (&p.manifests, &p.config) {
        (Some(_), _) => Some(oci::MEDIA_INDEX.to_string()),
        (None, Some(_)) => Some(oci::MEDIA_MANIFEST.to_string()),
        _ => None,
    })
}

enum Attempt {
    Stored,
    Fatal(Error),
}

impl Registry {
    /// Fetches the manifest (or index) `reference` names: its bytes, media type and digest. The
    /// digest is computed from the bytes and checked against a digest reference.
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Bytes, String, Digest), Error> {
        let s = self.session(reference, Access::Pull).await?;
        self.fetch_manifest_in(&s, reference).await
    }

    async fn fetch_manifest_in(
        &self,
        s: &Session,
        reference: &Reference,
    ) -> Result<(Bytes, String, Digest), Error> {
        let url = s.manifest_url(reference);
        let fail = |message: String| Error::Registry {
            reference: reference.to_string(),
            step: Step::Manifest,
            message,
        };
        let (bytes, header_digest) = with_retries(s.attempts, &reference.to_string(), || {
            manifest_once(s, reference, &url)
        })
        .await
        .map_err(|f| f.into_error(&reference.to_string(), Step::Manifest))??;
        let digest = Digest::of(&bytes);
        // The digest asked for, else the one the registry vouches for in Docker-Content-Digest.
        let want = reference
            .digest()
            .map(str::to_string)
            .or(header_digest.filter(|d| d.starts_with("sha256:")));
        if let Some(want) = want
            && want != digest.as_str()
        {
            return Err(Error::DigestMismatch {
                reference: reference.to_string(),
                blob: want,
                actual: digest.to_string(),
            });
        }
        let media_type = media_type_of(&bytes).ok_or_else(|| {
            fail(format!(
                "the registry returned something that is not a manifest ({} bytes)",
                bytes.len()
            ))
        })?;
        if !MANIFEST_TYPES.contains(&media_type.as_str()) {
            return Err(Error::Unsupported {
                reference: reference.to_string(),
                message: format!(
                    "manifest media type {media_type} is not supported (expected an OCI or Docker schema 2 manifest or index)"
                ),
            });
        }
        Ok((bytes, media_type, digest))
    }

    /// Pulls `reference` into `store`: the manifest for the build platform, its config and
    /// layers (layers keep their media types). Blobs the store has are not fetched again.
    pub async fn pull(&self, store: &Arc<Store>, reference: &Reference) -> Result<Pulled, Error> {
        self.pull_for(store, reference, &self.opts.platform).await
    }

    /// [`pull`](Self::pull) picking `platform`'s manifest from an index instead of the build
    /// platform's (a stage's `FROM --platform`).
    pub async fn pull_for(
        &self,
        store: &Arc<Store>,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Pulled, Error> {
        let s = self.session(reference, Access::Pull).await?;
        let (bytes, media_type, digest) = self.fetch_manifest_in(&s, reference).await?;
        let mut index = None;
        let (bytes, media_type, digest) = if media_type == oci::MEDIA_INDEX
            || media_type == oci::MEDIA_DOCKER_LIST
        {
            let idx: Index = serde_json::from_slice(&bytes)
                .map_err(|e| s.error(Step::Manifest, format!("the index does not parse: {e}")))?;
            let want = platform;
            let chosen =
                crate::select_manifest(want, &idx).map_err(|available| Error::NoPlatform {
                    reference: reference.to_string(),
                    wanted: want.to_string(),
                    available,
                })?;
            if chosen.size > MAX_MANIFEST_SIZE {
                return Err(Error::TooLarge {
                    reference: reference.to_string(),
                    what: Document::Manifest,
                    url: s.manifest_url(&crate::reference::pinned(
                        reference,
                        chosen.digest.as_str(),
                    )?),
                    declared: Some(chosen.size),
                });
            }
            let child = crate::reference::pinned(reference, chosen.digest.as_str())?;
            tracing::debug!(%reference, platform = %want, manifest = %chosen.digest, "picked from index");
            index = Some((
                bytes,
                Descriptor {
                    media_type,
                    digest,
                    size: 0,
                    annotations: None,
                    platform: None,
                },
            ));
            self.fetch_manifest_in(&s, &child).await?
        } else {
            (bytes, media_type, digest)
        };
        if media_type == oci::MEDIA_INDEX || media_type == oci::MEDIA_DOCKER_LIST {
            return Err(s.error(
                Step::Manifest,
                "the index entry for the build platform is itself an index".into(),
            ));
        }
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| s.error(Step::Manifest, format!("the manifest does not parse: {e}")))?;
        check_image(reference, &manifest)?;
        self.check_config(&s, &manifest.config)?;
        let mut blobs: Vec<Descriptor> = vec![manifest.config.clone()];
        for l in &manifest.layers {
            if !blobs.iter().any(|b| b.digest == l.digest) {
                blobs.push(l.clone());
            }
        }
        let present = blobs.iter().filter(|b| store.has_blob(&b.digest)).count();
        // Futures made up front, not by a closure in the stream: a closure over borrowed
        // descriptors makes the whole pull future fail `Send` checks in spawned tasks.
        let fetches: Vec<_> = blobs
            .iter()
            .map(|d| self.fetch_blob_in(&s, store, d))
            .collect();
        let fetched: Vec<bool> = stream::iter(fetches)
            .buffer_unordered(self.opts.concurrency.max(1))
            .try_collect()
            .await?;
        let manifest_desc = Descriptor {
            size: bytes.len() as u64,
            ..self.store_manifest(store, &bytes, &media_type, &digest)?
        };
        let index = match index {
            Some((b, d)) => Some(Descriptor {
                size: b.len() as u64,
                ..self.store_manifest(store, &b, &d.media_type, &d.digest)?
            }),
            None => None,
        };
        Ok(Pulled {
            reference: reference.clone(),
            manifest: manifest_desc,
            index,
            fetched: fetched.into_iter().filter(|f| *f).count(),
            present,
        })
    }

    fn store_manifest(
        &self,
        store: &Store,
        bytes: &[u8],
        media_type: &str,
        digest: &Digest,
    ) -> Result<Descriptor, Error> {
        let mut w = store.blob_writer()?;
        w.write_all(bytes).map_err(|e| xbuild_cache::Error::Io {
            path: store.root().join("tmp"),
            source: e,
        })?;
        w.commit(Some(digest))?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            annotations: None,
            platform: None,
        })
    }

    /// Refuses a config descriptor larger than [`MAX_CONFIG_SIZE`] before anything is fetched:
    /// configs are decoded whole in memory.
    fn check_config(&self, s: &Session, config: &Descriptor) -> Result<(), Error> {
        if config.size > MAX_CONFIG_SIZE {
            return Err(Error::TooLarge {
                reference: s.reference.to_string(),
                what: Document::Config,
                url: s.blob_url(config.digest.as_str()),
                declared: Some(config.size),
            });
        }
        Ok(())
    }

    /// Fetches a config blob (an image's or a cache's) of `reference`'s repository into
    /// `store`, as [`fetch_blob`](Self::fetch_blob) does, refusing one whose descriptor is
    /// larger than [`MAX_CONFIG_SIZE`]; returns false when the store already had it.
    pub async fn fetch_config(
        &self,
        store: &Arc<Store>,
        reference: &Reference,
        config: &Descriptor,
    ) -> Result<bool, Error> {
        let s = self.session(reference, Access::Pull).await?;
        self.check_config(&s, config)?;
        self.fetch_blob_in(&s, store, config).await
    }

    /// Fetches one blob of `reference`'s repository into `store`, verified against its digest;
    /// returns false when the store already had it.
    pub async fn fetch_blob(
        &self,
        store: &Arc<Store>,
        reference: &Reference,
        blob: &Descriptor,
    ) -> Result<bool, Error> {
        let s = self.session(reference, Access::Pull).await?;
        self.fetch_blob_in(&s, store, blob).await
    }

    async fn fetch_blob_in(
        &self,
        s: &Session,
        store: &Arc<Store>,
        blob: &Descriptor,
    ) -> Result<bool, Error> {
        if store.has_blob(&blob.digest) {
            return Ok(false);
        }
        let step = Step::Blob(blob.digest.to_string());
        let out = with_retries(s.attempts, blob.digest.as_str(), || {
            download_once(s, store, blob)
        })
        .await
        .map_err(|f| f.into_error(&s.reference.to_string(), step.clone()))?;
        match out {
            Attempt::Stored => Ok(true),
            Attempt::Fatal(e) => Err(e),
        }
    }
}

fn check_image(reference: &Reference, m: &Manifest) -> Result<(), Error> {
    let unsupported = |message: String| Error::Unsupported {
        reference: reference.to_string(),
        message,
    };
    if m.schema_version != 2 {
        return Err(unsupported(format!(
            "manifest schema version {} is not supported (only schema 2)",
            m.schema_version
        )));
    }
    let ct = m.config.media_type.as_str();
    if ct != oci::MEDIA_CONFIG && ct != oci::MEDIA_DOCKER_CONFIG {
        return Err(unsupported(format!(
            "not a container image: its config has media type {ct}"
        )));
    }
    for l in &m.layers {
        if !LAYER_TYPES.contains(&l.media_type.as_str()) {
            return Err(unsupported(format!(
                "layer {} has media type {}, which xbuild cannot unpack",
                l.digest, l.media_type
            )));
        }
    }
    Ok(())
}

/// One GET of a manifest: its bytes (at most [`MAX_MANIFEST_SIZE`]) and the registry's
/// `Docker-Content-Digest`. A transport failure or a 5xx is a retryable [`Failure`]; a document
/// over the limit is `Ok(Err(_))`, final.
async fn manifest_once(
    s: &Session,
    reference: &Reference,
    url: &str,
) -> Result<Result<(Bytes, Option<String>), Error>, Failure> {
    let res = s
        .get(url)
        .header(reqwest::header::ACCEPT, MANIFEST_TYPES.join(", "))
        .timeout(DOCUMENT_TIMEOUT)
        .send()
        .await?;
    let status = res.status().as_u16();
    if status == 401 {
        return Err(Failure::fatal(format!(
            "HTTP 401 unauthorized at {url}: the credentials are missing or were rejected"
        )));
    }
    if !(200..300).contains(&status) {
        let body = error_text(res).await;
        let mut f = Failure::status(status, &body);
        f.message = format!("{url}: {}", f.message);
        return Err(f);
    }
    let header = res
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match read_document(res, Document::Manifest).await {
        Ok(bytes) => Ok(Ok((bytes, header))),
        Err(BodyError::TooLarge { declared }) => Ok(Err(Error::TooLarge {
            reference: reference.to_string(),
            what: Document::Manifest,
            url: url.to_string(),
            declared,
        })),
        Err(BodyError::Transport(e)) => Err(e.into()),
    }
}

/// One download of a blob into a store writer: exactly the descriptor's size, hashed as it is
/// written. A transport failure is a retryable [`Failure`]; content of another length, or that
/// does not hash to the digest, is [`Attempt::Fatal`].
async fn download_once(
    s: &Session,
    store: &Arc<Store>,
    blob: &Descriptor,
) -> Result<Attempt, Failure> {
    let reference = s.reference.to_string();
    let url = s.blob_url(blob.digest.as_str());
    let fatal = |e: Error| Ok(Attempt::Fatal(e));
    let length = |got: BlobLength| {
        Ok(Attempt::Fatal(Error::BlobLength {
            reference: reference.clone(),
            blob: blob.digest.to_string(),
            url: url.clone(),
            expected: blob.size,
            got,
        }))
    };
    let mut res = s.get(&url).send().await?;
    let status = res.status().as_u16();
    if !(200..300).contains(&status) {
        let body = error_text(res).await;
        let mut f = Failure::status(status, &body);
        f.message = format!("{url}: {}", f.message);
        return Err(f);
    }
    if let Some(n) = res.content_length()
        && n != blob.size
    {
        return length(BlobLength::Declared(n));
    }
    let writer = match store.blob_writer() {
        Ok(w) => w,
        Err(e) => return fatal(e.into()),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let sink = tokio::task::spawn_blocking(move || {
        let mut w = writer;
        while let Some(b) = rx.blocking_recv() {
            w.write_all(&b)?;
        }
        Ok::<_, std::io::Error>(w)
    });
    let mut received = 0u64;
    let mut transport: Option<Failure> = None;
    let mut over = false;
    loop {
        match res.chunk().await {
            Ok(Some(b)) => {
                received += b.len() as u64;
                if received > blob.size {
                    over = true;
                    break;
                }
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                transport = Some(e.into());
                break;
            }
        }
    }
    drop(tx);
    // Dropping the writer unfinished removes what it wrote.
    let writer = match sink.await {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => {
            return fatal(
                xbuild_cache::Error::Io {
                    path: store.root().join("tmp"),
                    source: e,
                }
                .into(),
            );
        }
        Err(e) => return Err(Failure::fatal(format!("writer task failed: {e}"))),
    };
    if over {
        drop(writer);
        return length(BlobLength::More);
    }
    if let Some(f) = transport {
        return Err(f);
    }
    if received < blob.size {
        drop(writer);
        return length(BlobLength::Fewer(received));
    }
    let expected = blob.digest.clone();
    let committed = tokio::task::spawn_blocking(move || writer.commit(Some(&expected)))
        .await
        .map_err(|e| Failure::fatal(format!("writer task failed: {e}")))?;
    match committed {
        Ok(_) => Ok(Attempt::Stored),
        Err(xbuild_cache::Error::DigestMismatch { expected, actual }) => {
            fatal(Error::DigestMismatch {
                reference,
                blob: expected.to_string(),
                actual: actual.to_string(),
            })
        }
        Err(e) => fatal(e.into()),
    }
}
