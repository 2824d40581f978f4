//! Checking a store (`xbuild store verify`, an fsck): every blob against its digest, every
//! image's manifest → config → layers chain. Corrupt blobs are removed; what is left broken is
//! reported with what to do about it.
//!
//! It runs under the exclusive image lock (as a prune does), so no image is written meanwhile.

use std::collections::BTreeMap;
use std::path::PathBuf;

use xbuild_llb::Digest;

use crate::oci::{ImageConfigFile, Index, Manifest};
use crate::{BlobReader, Error, Store, io};

/// A blob whose content did not hash to its name; it was removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptBlob {
    /// The digest it was stored under.
    pub digest: Digest,
    /// What its content hashed to.
    pub actual: Digest,
    /// Its file (gone now).
    pub path: PathBuf,
}

/// An image whose chain of blobs is not whole (after corrupt blobs were removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenImage {
    /// The image's manifest (or index) digest.
    pub manifest: Digest,
    /// The tags that point at it.
    pub tags: Vec<String>,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

/// What a verification found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blobs checked.
    pub blobs: u64,
    /// Bytes they held.
    pub bytes: u64,
    /// Corrupt blobs, removed.
    pub corrupt: Vec<CorruptBlob>,
    /// Images left broken.
    pub broken: Vec<BrokenImage>,
}

impl VerifyReport {
    /// True when nothing was wrong.
    pub fn clean(&self) -> bool {
        self.corrupt.is_empty() && self.broken.is_empty()
    }
}

impl Store {
    /// Checks every blob's digest (removing the corrupt ones) and every image's chain of
    /// manifest, config and layers.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let _exclusive = self.lock_images_exclusive()?;
        let mut report = VerifyReport::default();
        let dir = self.root().join("blobs/sha256");
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .collect::<Result<_, _>>()
            .map_err(io(&dir))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let Some(digest) = name
                .to_str()
                .and_then(|h| format!("sha256:{h}").parse::<Digest>().ok())
            else {
                tracing::warn!(file = %e.path().display(), "not a blob: left alone");
                continue;
            };
            let path = e.path();
            let mut r = BlobReader::open(path.clone(), &digest)?;
            report.blobs += 1;
            match std::io::copy(&mut r, &mut std::io::sink()) {
                Ok(n) => report.bytes += n,
                Err(err) => match crate::into_store_error(err, &path) {
                    Error::CorruptBlob { actual, .. } => {
                        std::fs::remove_file(&path).map_err(io(&path))?;
                        tracing::warn!(%digest, %actual, "removed a corrupt blob");
                        report.corrupt.push(CorruptBlob {
                            digest,
                            actual,
                            path,
                        });
                    }
                    other => return Err(other),
                },
            }
        }
        let mut tops: BTreeMap<Digest, Vec<String>> = self
            .images()?
            .into_iter()
            .map(|(d, _)| (d, Vec::new()))
            .collect();
        for (name, t) in self.tags()? {
            tops.entry(t.manifest).or_default().push(name);
        }
        for (manifest, tags) in tops {
            let mut problems = Vec::new();
            self.check_image(&manifest, 0, &mut problems);
            if !problems.is_empty() {
                report.broken.push(BrokenImage {
                    manifest,
                    tags,
                    problems,
                });
            }
        }
        Ok(report)
    }

    /// Checks the chain under `top` (a manifest, or an index of them), adding what is wrong.
    fn check_image(&self, top: &Digest, depth: usize, problems: &mut Vec<String>) {
        let doc: serde_json::Value = match self.read_json(top) {
            Ok(v) => v,
            Err(e) => return problems.push(e.to_string()),
        };
        if doc.get("manifests").is_some() {
            let idx: Index = match self.read_json(top) {
                Ok(i) => i,
                Err(e) => return problems.push(e.to_string()),
            };
            // An index lists every platform; the store holds those that were pulled.
            for m in idx.manifests.iter().filter(|m| self.has_blob(&m.digest)) {
                if depth < 4 {
                    self.check_image(&m.digest, depth + 1, problems);
                } else {
                    problems.push(format!("index {top} nests indexes too deeply"));
                }
            }
            return;
        }
        let m: Manifest = match self.read_json(top) {
            Ok(m) => m,
            Err(e) => return problems.push(e.to_string()),
        };
        match self.read_json::<ImageConfigFile>(&m.config.digest) {
            Ok(c) if c.rootfs.diff_ids.len() != m.layers.len() => problems.push(format!(
                "manifest {top} has {} layers but its config {} gives {} diff_ids",
                m.layers.len(),
                m.config.digest,
                c.rootfs.diff_ids.len()
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!("config: {e}")),
        }
        for l in &m.layers {
            if !self.has_blob(&l.digest) {
                problems.push(format!("layer {} is not in the content store", l.digest));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::oci::{Descriptor, MEDIA_CONFIG, MEDIA_LAYER_TAR, MEDIA_MANIFEST, Manifest};
    use crate::{ImageRecord, Store, TagRecord};

    #[test]
    fn verify_removes_a_flipped_layer_and_names_the_broken_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = store.put_blob(b"layer bytes").unwrap();
        let config = store
            .put_json(
                MEDIA_CONFIG,
                &serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]}}),
            )
            .unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_MANIFEST.into()),
            config: config.clone(),
            layers: vec![Descriptor {
                media_type: MEDIA_LAYER_TAR.into(),
                digest: layer.clone(),
                size: 11,
                annotations: None,
                platform: None,
            }],
            annotations: None,
        };
        let manifest = store.put_json(MEDIA_MANIFEST, &m).unwrap();
        store
            .put_image(
                &manifest.digest,
                &ImageRecord {
                    config: config.digest.clone(),
                    created: None,
                    added: "2026-01-01T00:00:00Z".into(),
                },
            )
            .unwrap();
        store
            .put_tag(
                "app:1",
                &TagRecord {
                    manifest: manifest.digest.clone(),
                    size: manifest.size,
                },
            )
            .unwrap();
        let clean = store.verify().unwrap();
        assert!(clean.clean(), "{clean:?}");
        assert_eq!(clean.blobs, 3);

        let p = store.blob_path(&layer);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[0] ^= 0x20;
        std::fs::write(&p, bytes).unwrap();
        let r = store.verify().unwrap();
        assert_eq!(r.corrupt.len(), 1);
        assert_eq!(r.corrupt[0].digest, layer);
        assert!(!p.exists(), "a corrupt blob is removed");
        assert_eq!(r.broken.len(), 1);
        assert_eq!(r.broken[0].tags, ["app:1"]);
        assert!(
            r.broken[0].problems[0].contains(layer.as_str()),
            "{:?}",
            r.broken
        );
        // Nothing more to remove the second time; the image stays broken until re-pulled.
        let again = store.verify().unwrap();
        assert!(again.corrupt.is_empty());
        assert_eq!(again.broken.len(), 1);
    }
}
