//! Pulling: resolve the manifest (an index picks the build platform), then fetch the config and
//! layers in parallel, each streamed into the store and committed only if it hashes to its digest.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::errors::DigestError;

use xbuild_cache::Store;
use xbuild_cache::oci::{self, Descriptor, Index, Manifest};
use xbuild_llb::Digest;

use crate::retry::{Failure, chain, with_retries};
use crate::session::{Access, Session};
use crate::{Error, Platform, Reference, Registry, Step};

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
        let oref = reference.to_oci();
        let fail = |message: String| Error::Registry {
            reference: reference.to_string(),
            step: Step::Manifest,
            message,
        };
        let (bytes, _) = with_retries(s.attempts, &reference.to_string(), || async {
            Ok(s.client
                .pull_manifest_raw(&oref, &s.auth, &MANIFEST_TYPES)
                .await?)
        })
        .await
        .map_err(|f| fail(f.message))?;
        let digest = Digest::of(&bytes);
        if let Some(want) = reference.digest()
            && want != digest.as_str()
        {
            return Err(Error::DigestMismatch {
                reference: reference.to_string(),
                blob: want.to_string(),
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
            let chosen = want.select(&idx).map_err(|available| Error::NoPlatform {
                reference: reference.to_string(),
                wanted: want.to_string(),
                available,
            })?;
            let child = reference.with_digest(chosen.digest.as_str())?;
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
        .map_err(|f| s.error(step.clone(), f.message))?;
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

/// One download of a blob into a store writer. A transport failure is a retryable [`Failure`];
/// content that does not hash to the digest is [`Attempt::Fatal`].
async fn download_once(
    s: &Session,
    store: &Arc<Store>,
    blob: &Descriptor,
) -> Result<Attempt, Failure> {
    let reference = s.reference.to_string();
    let fatal = |e: Error| Ok(Attempt::Fatal(e));
    let mut body = s
        .client
        .pull_blob_stream(&s.reference.to_oci(), blob.digest.as_str())
        .await?;
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
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => {
                received += b.len() as u64;
                if received > blob.size {
                    drop(tx);
                    let _ = sink.await;
                    return fatal(Error::Registry {
                        reference,
                        step: Step::Blob(blob.digest.to_string()),
                        message: format!(
                            "the registry sent more than the {} bytes the manifest declares; nothing of it was stored",
                            blob.size
                        ),
                    });
                }
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            // oci-client's own check failed; committing below names the blob and its real digest.
            Err(e) if e.get_ref().is_some_and(|i| i.is::<DigestError>()) => break,
            Err(e) => {
                transport = Some(Failure {
                    message: chain(&e),
                    retryable: true,
                });
                break;
            }
        }
    }
    drop(tx);
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
    if let Some(f) = transport {
        return Err(f);
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
