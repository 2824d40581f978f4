//! The client's end of an image coming back by blobs: it checks the worker's offer (manifest
//! and config), asks only for the layers its content store lacks, writes each one it receives
//! through the store (which checks its digest), and stores the manifest and config last, so an
//! image is never half there.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use xbuild_cache::oci::{Descriptor, ImageConfigFile, Manifest};
use xbuild_cache::{BlobWriter, ImageLease, Store};
use xbuild_llb::Digest;

use super::proto::{BlobData, ImageOffer};
use super::{Error, ProtocolViolation as V};

/// An image a worker offered, being received into the client's store.
pub(crate) struct Receiver {
    addr: String,
    store: Arc<Store>,
    lease: ImageLease,
    manifest: Descriptor,
    manifest_bytes: Vec<u8>,
    doc: Manifest,
    config_bytes: Vec<u8>,
    config: ImageConfigFile,
    /// The layers asked for and not yet complete, in the order they come.
    wanted: VecDeque<Descriptor>,
    /// The one being received.
    current: Option<BlobWriter>,
    /// The layers received.
    received: BTreeSet<Digest>,
}

/// An image received into the client's store, held against `prune` until dropped.
pub(crate) struct Received {
    /// The manifest's descriptor.
    pub(crate) manifest: Descriptor,
    /// The config.
    pub(crate) config: ImageConfigFile,
    /// The store it is in.
    pub(crate) store: Arc<Store>,
    /// Layers received, and those the store already had.
    pub(crate) layers_received: usize,
    pub(crate) layers_present: usize,
    _lease: ImageLease,
}

impl Receiver {
    /// Checks `offer` from the worker at `addr` (the manifest hashes to its digest, the config
    /// to the manifest's config digest) and returns the receiver with the layer digests to ask
    /// for: those `store` lacks, each once.
    pub(crate) fn new(
        addr: &str,
        store: Arc<Store>,
        offer: ImageOffer,
    ) -> Result<(Self, Vec<String>), Error> {
        let bad = |violation| Error::Protocol {
            worker: addr.to_string(),
            violation: Box::new(violation),
        };
        let digest = Digest::from_str(&offer.manifest_digest)
            .map_err(|_| bad(V::ManifestDigest(offer.manifest_digest.clone())))?;
        let got = Digest::of(&offer.manifest);
        if got != digest {
            return Err(bad(V::ManifestHash {
                offered: digest,
                got,
            }));
        }
        let doc: Manifest = serde_json::from_slice(&offer.manifest).map_err(|source| {
            bad(V::NotAManifest {
                digest: digest.clone(),
                source,
            })
        })?;
        let got = Digest::of(&offer.config);
        if got != doc.config.digest || offer.config.len() as u64 != doc.config.size {
            return Err(bad(V::ConfigMismatch {
                manifest: digest,
                got,
                size: offer.config.len() as u64,
                named: doc.config.digest.clone(),
                named_size: doc.config.size,
            }));
        }
        let config: ImageConfigFile = serde_json::from_slice(&offer.config).map_err(|source| {
            bad(V::NotAConfig {
                digest: doc.config.digest.clone(),
                source,
            })
        })?;
        let lease = store.lease()?;
        let mut seen = BTreeSet::new();
        let wanted: VecDeque<Descriptor> = doc
            .layers
            .iter()
            .filter(|l| !store.has_blob(&l.digest) && seen.insert(l.digest.clone()))
            .cloned()
            .collect();
        let wants = wanted.iter().map(|l| l.digest.to_string()).collect();
        let manifest = Descriptor {
            media_type: offer.manifest_media_type,
            digest,
            size: offer.manifest.len() as u64,
            annotations: None,
            platform: None,
        };
        Ok((
            Receiver {
                addr: addr.to_string(),
                store,
                lease,
                manifest,
                manifest_bytes: offer.manifest,
                doc,
                config_bytes: offer.config,
                config,
                wanted,
                current: None,
                received: BTreeSet::new(),
            },
            wants,
        ))
    }

    /// Takes one chunk: it must belong to the next wanted layer and not run past its size;
    /// the last chunk of a layer commits it, which fails when the content does not hash to
    /// the layer's digest.
    pub(crate) fn chunk(&mut self, data: BlobData) -> Result<(), Error> {
        let worker = self.addr.clone();
        let bad = move |violation| Error::Protocol {
            worker: worker.clone(),
            violation: Box::new(violation),
        };
        let Some(want) = self.wanted.front() else {
            return Err(bad(V::ExtraBlob(data.digest)));
        };
        if data.digest != want.digest.as_str() {
            return Err(bad(V::BlobOutOfTurn {
                sent: data.digest,
                due: want.digest.clone(),
            }));
        }
        let w = match self.current.as_mut() {
            Some(w) => w,
            None => self.current.insert(self.store.blob_writer()?),
        };
        w.write_all(&data.chunk).map_err(|source| Error::Io {
            path: self.store.root().join("tmp"),
            source,
        })?;
        if w.size() > want.size || (data.last && w.size() != want.size) {
            return Err(bad(V::LayerSize {
                layer: want.digest.clone(),
                sent: w.size(),
                size: want.size,
            }));
        }
        if data.last
            && let (Some(w), Some(want)) = (self.current.take(), self.wanted.pop_front())
        {
            w.commit(Some(&want.digest)).map_err(|source| {
                bad(V::CorruptLayer {
                    layer: want.digest.clone(),
                    source,
                })
            })?;
            self.received.insert(want.digest);
        }
        Ok(())
    }

    /// The manifest digest offered.
    pub(crate) fn manifest_digest(&self) -> &Digest {
        &self.manifest.digest
    }

    /// Once every wanted layer came: checks the received layers against the config's
    /// diff_ids and stores the config and manifest.
    pub(crate) fn finish(self) -> Result<Received, Error> {
        if let Some(l) = self.wanted.front() {
            return Err(Error::Protocol {
                worker: self.addr.clone(),
                violation: Box::new(V::LayerNotSent(l.digest.clone())),
            });
        }
        let source = format!("the image from worker {}", self.addr);
        xbuild_exporter::verify_layers_where(&self.store, &source, &self.doc, &self.config, |l| {
            self.received.contains(&l.digest)
        })
        .map_err(|e| Error::Protocol {
            worker: self.addr.clone(),
            violation: Box::new(V::Layers(Box::new(e))),
        })?;
        self.store.put_blob(&self.config_bytes)?;
        self.store.put_blob(&self.manifest_bytes)?;
        let present = self
            .doc
            .layers
            .iter()
            .filter(|l| !self.received.contains(&l.digest))
            .count();
        Ok(Received {
            manifest: self.manifest,
            config: self.config,
            store: self.store,
            layers_received: self.received.len(),
            layers_present: present,
            _lease: self.lease,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzipped one-file layer: (blob, diff_id).
    fn layer(content: &[u8]) -> (Vec<u8>, Digest) {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, "f", content).unwrap();
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        (gz.finish().unwrap(), Digest::of(&raw))
    }

    /// An offer of an image of `layers`.
    fn offer(layers: &[(Vec<u8>, Digest)]) -> ImageOffer {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.1.to_string()).collect::<Vec<_>>(),
            },
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": xbuild_cache::oci::MEDIA_MANIFEST,
            "config": {
                "mediaType": xbuild_cache::oci::MEDIA_CONFIG,
                "digest": Digest::of(&config).to_string(),
                "size": config.len(),
            },
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": Digest::of(&l.0).to_string(),
                "size": l.0.len(),
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        ImageOffer {
            manifest_digest: Digest::of(&manifest).to_string(),
            manifest_media_type: xbuild_cache::oci::MEDIA_MANIFEST.into(),
            manifest,
            config,
        }
    }

    fn data(blob: &[u8], chunk: &[u8], last: bool) -> BlobData {
        BlobData {
            digest: Digest::of(blob).to_string(),
            chunk: chunk.to_vec(),
            last,
        }
    }

    #[test]
    fn only_missing_layers_are_asked_for_and_the_image_is_stored_last() {
        let t = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(t.path()).unwrap());
        let (have, want) = (layer(b"have"), layer(b"want"));
        store.put_blob(&have.0).unwrap();
        let o = offer(&[have.clone(), want.clone()]);
        let manifest = Digest::of(&o.manifest);
        let (mut r, wants) = Receiver::new("w", store.clone(), o).unwrap();
        assert_eq!(wants, [Digest::of(&want.0).to_string()]);
        let (a, b) = want.0.split_at(want.0.len() / 2);
        r.chunk(data(&want.0, a, false)).unwrap();
        assert!(!store.has_blob(&manifest));
        r.chunk(data(&want.0, b, true)).unwrap();
        let got = r.finish().unwrap();
        assert_eq!((got.layers_received, got.layers_present), (1, 1));
        assert_eq!(got.manifest.digest, manifest);
        assert!(store.has_blob(&manifest) && store.has_blob(&Digest::of(&want.0)));
    }

    #[test]
    fn a_corrupted_layer_is_refused_and_not_stored() {
        let t = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(t.path()).unwrap());
        let l = layer(b"content");
        let o = offer(std::slice::from_ref(&l));
        let manifest = Digest::of(&o.manifest);
        let (mut r, _) = Receiver::new("w:1", store.clone(), o).unwrap();
        let mut bad = l.0.clone();
        bad[0] ^= 1;
        let err = r.chunk(data(&l.0, &bad, true)).unwrap_err().to_string();
        assert!(err.contains("w:1") && err.contains("hashes to"), "{err}");
        assert!(!store.has_blob(&Digest::of(&l.0)) && !store.has_blob(&manifest));
        // A layer the worker was not asked for, or one cut short, is refused too.
        let (mut r, _) =
            Receiver::new("w:1", store.clone(), offer(std::slice::from_ref(&l))).unwrap();
        assert!(r.chunk(data(b"other", b"x", true)).is_err());
        let (mut r, _) =
            Receiver::new("w:1", store.clone(), offer(std::slice::from_ref(&l))).unwrap();
        assert!(r.chunk(data(&l.0, &l.0[..3], true)).is_err());
        let (r, _) = Receiver::new("w:1", store, offer(&[l])).unwrap();
        assert!(
            r.finish()
                .err()
                .unwrap()
                .to_string()
                .contains("before sending")
        );
    }

    #[test]
    fn an_offer_whose_manifest_or_config_does_not_hash_right_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(t.path()).unwrap());
        let mut o = offer(&[layer(b"x")]);
        o.manifest_digest = Digest::of(b"another").to_string();
        let err = Receiver::new("w", store.clone(), o)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("hashes to"), "{err}");
        let mut o = offer(&[layer(b"x")]);
        o.config.push(b' ');
        let err = Receiver::new("w", store, o).err().unwrap().to_string();
        assert!(err.contains("config"), "{err}");
    }

    #[test]
    fn a_layer_that_does_not_unpack_to_its_diff_id_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(t.path()).unwrap());
        let (blob, _) = layer(b"real");
        let o = offer(&[(blob.clone(), Digest::of(b"claimed"))]);
        let manifest = Digest::of(&o.manifest);
        let (mut r, _) = Receiver::new("w", store.clone(), o).unwrap();
        r.chunk(data(&blob, &blob, true)).unwrap();
        let err = r.finish().err().unwrap().to_string();
        assert!(err.contains("unpacks to"), "{err}");
        assert!(!store.has_blob(&manifest));
    }
}
