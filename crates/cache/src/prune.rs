//! Image leases and the removal of blobs no image references.
//!
//! Writers of images (builds, imports, loads) hold a shared lease on the root while they write
//! blobs and record the image; pruning takes the lease exclusively, so it never removes a blob
//! that an image being written is about to reference. Builds also lease, in their session,
//! every blob of the images they read ([`Store::hold_image`]): removing such an image untags it
//! at once, and its blobs are freed by the first prune after the build is over.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use xbuild_llb::Digest;

use crate::lease::{Hold, Session, live_leases};
use crate::oci::{Index, Manifest};
use crate::{Error, Store, io};

/// A shared hold on the image store: while it lives, no prune runs.
#[derive(Debug)]
pub struct ImageLease {
    _file: File,
}

/// What a prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Blobs removed.
    pub blobs: u64,
    /// Bytes they held.
    pub bytes: u64,
}

fn lock_file(root: &Path) -> Result<File, Error> {
    let p = root.join("images.lock");
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io(&p))
}

/// What the store takes on disk (`xbuild du`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreUsage {
    /// Blobs, and the bytes they hold.
    pub blobs: (usize, u64),
    /// Bytes of metadata: the index, the stat cache, the build history.
    pub metadata: u64,
}

impl Store {
    /// What the store takes on disk: its blobs (those whose metadata can be read), its index,
    /// stat cache and build history. What cannot be read counts as nothing.
    pub fn usage(&self) -> StoreUsage {
        let dir = self.root().join("blobs/sha256");
        let blobs = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .fold((0, 0), |(n, bytes), m| (n + 1, bytes + m.len()))
            })
            .unwrap_or_default();
        let file_len =
            |name: &str| std::fs::metadata(self.root().join(name)).map_or(0, |m| m.len());
        StoreUsage {
            blobs,
            metadata: file_len("index.redb")
                + file_len("statcache")
                + crate::history::History::new(self.root()).size(),
        }
    }

    /// Takes a shared lease: hold it from the first blob of an image until it is recorded.
    pub fn lease(&self) -> Result<ImageLease, Error> {
        let f = lock_file(self.root())?;
        f.lock_shared().map_err(io(self.root()))?;
        Ok(ImageLease { _file: f })
    }

    /// The blobs an image (by manifest or index digest) references, itself included. Missing
    /// blobs are skipped: a broken image keeps what it still has.
    pub fn image_blobs(&self, top: &Digest) -> Result<BTreeSet<Digest>, Error> {
        let mut out = BTreeSet::new();
        let mut stack = vec![top.clone()];
        while let Some(d) = stack.pop() {
            if !out.insert(d.clone()) {
                continue;
            }
            let Ok(bytes) = self.read_blob(&d) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            if v.get("manifests").is_some() {
                if let Ok(idx) = serde_json::from_value::<Index>(v) {
                    stack.extend(idx.manifests.into_iter().map(|m| m.digest));
                }
            } else if v.get("layers").is_some()
                && let Ok(m) = serde_json::from_value::<Manifest>(v)
            {
                out.insert(m.config.digest);
                out.extend(m.layers.into_iter().map(|l| l.digest));
            }
        }
        Ok(out)
    }

    /// Takes the image lock exclusively: no image writer and no other pruner runs while the
    /// file it returns is open.
    pub(crate) fn lock_images_exclusive(&self) -> Result<File, Error> {
        let f = lock_file(self.root())?;
        f.lock().map_err(io(self.root()))?;
        Ok(f)
    }

    /// Leases, for the session `session`, every blob of the image `top` (a manifest or an
    /// index: itself, its config and its layers), so that no prune frees them while the session
    /// lives, even when the image is removed meanwhile. Taken under the shared image lock, so
    /// a prune sees either the lease or none of the blobs gone. False (nothing held) when
    /// `top` is not in the store.
    pub fn hold_image(&self, session: &Session, top: &Digest) -> Result<bool, Error> {
        let _shared = self.lease()?;
        if !self.has_blob(top) {
            return Ok(false);
        }
        for d in self.image_blobs(top)? {
            session.hold(Hold::Blob, d.as_str())?;
        }
        Ok(true)
    }

    /// Removes every blob that no image record, no tag and no live session's lease
    /// references, under an exclusive lease. Snapshots and the cache-key index are left
    /// alone; a layer record whose blob was removed is simply written again by the next
    /// export that needs it.
    pub fn prune_blobs(&self) -> Result<PruneStats, Error> {
        let _exclusive = self.lock_images_exclusive()?;
        let mut keep: BTreeSet<Digest> = live_leases(self.root())?
            .blobs
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        let mut tops: BTreeSet<Digest> = self.images()?.into_iter().map(|(d, _)| d).collect();
        tops.extend(self.tags()?.into_iter().map(|(_, t)| t.manifest));
        for t in &tops {
            keep.extend(self.image_blobs(t)?);
        }
        let dir = self.root().join("blobs/sha256");
        let mut stats = PruneStats::default();
        for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let e = e.map_err(io(&dir))?;
            let name = e.file_name();
            let Some(d) = name
                .to_str()
                .and_then(|h| format!("sha256:{h}").parse::<Digest>().ok())
            else {
                continue;
            };
            if keep.contains(&d) {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    stats.blobs += 1;
                    stats.bytes += size;
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(io(&e.path())(err)),
            }
        }
        tracing::debug!(blobs = stats.blobs, bytes = stats.bytes, "pruned blobs");
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use crate::oci::{Descriptor, MEDIA_CONFIG, MEDIA_LAYER_TAR, MEDIA_MANIFEST, Manifest};
    use crate::{ImageRecord, Store};

    #[test]
    fn usage_counts_blobs_and_metadata_files() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let before = store.usage();
        assert_eq!(before.blobs, (0, 0));
        // The index exists from the start and is counted as metadata.
        assert!(before.metadata > 0);
        assert_eq!(
            before.metadata,
            std::fs::metadata(d.path().join("index.redb"))
                .unwrap()
                .len()
        );
        store.put_blob(b"12345").unwrap();
        store.put_blob(b"123").unwrap();
        assert_eq!(store.usage().blobs, (2, 8));
    }

    #[test]
    fn prune_keeps_what_images_reference() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = store.put_blob(b"layer").unwrap();
        let config = store
            .put_json(MEDIA_CONFIG, &serde_json::json!({}))
            .unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_MANIFEST.into()),
            config: config.clone(),
            layers: vec![Descriptor {
                media_type: MEDIA_LAYER_TAR.into(),
                digest: layer.clone(),
                size: 5,
                annotations: None,
                platform: None,
            }],
            annotations: None,
        };
        let manifest = store.put_json(MEDIA_MANIFEST, &m).unwrap();
        let orphan = store.put_blob(b"nobody's").unwrap();
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
        let stats = store.prune_blobs().unwrap();
        assert_eq!(stats.blobs, 1);
        assert_eq!(stats.bytes, 8);
        assert!(!store.has_blob(&orphan));
        for d in [&layer, &config.digest, &manifest.digest] {
            assert!(store.has_blob(d));
        }
        store.delete_image(&manifest.digest).unwrap();
        assert_eq!(store.prune_blobs().unwrap().blobs, 3);
    }

    #[test]
    fn removed_image_held_by_a_live_session_is_freed_only_after_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = store.put_blob(b"base layer").unwrap();
        let config = store
            .put_json(MEDIA_CONFIG, &serde_json::json!({}))
            .unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_MANIFEST.into()),
            config: config.clone(),
            layers: vec![Descriptor {
                media_type: MEDIA_LAYER_TAR.into(),
                digest: layer.clone(),
                size: 10,
                annotations: None,
                platform: None,
            }],
            annotations: None,
        };
        let manifest = store.put_json(MEDIA_MANIFEST, &m).unwrap();
        let build = crate::lease::Session::start(dir.path()).unwrap();
        assert!(store.hold_image(&build, &manifest.digest).unwrap());
        // The image is gone from the store's records (rmi), the build still reads it.
        assert_eq!(store.prune_blobs().unwrap().blobs, 0);
        for d in [&layer, &config.digest, &manifest.digest] {
            assert!(store.has_blob(d), "{d} freed under a live build");
        }
        drop(build);
        assert_eq!(store.prune_blobs().unwrap().blobs, 3);
        let other = crate::lease::Session::start(dir.path()).unwrap();
        assert!(!store.hold_image(&other, &manifest.digest).unwrap());
    }

    #[test]
    fn lease_blocks_prune_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
        let lease = store.lease().unwrap();
        let blob = store.put_blob(b"in flight").unwrap();
        let s2 = store.clone();
        let pruner = std::thread::spawn(move || s2.prune_blobs().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(store.has_blob(&blob), "prune ran while a lease was held");
        drop(lease);
        assert_eq!(pruner.join().unwrap().blobs, 1);
    }
}
