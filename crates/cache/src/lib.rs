//! The content store, the cache-key index and the image tags of an xbuild root.
//!
//! On disk, under the root: `blobs/sha256/<hex>` (immutable content, named by its sha256),
//! `tmp/` (partial writes), `index.redb` (the cache-key → result index, the images of the local
//! image store and their tags, and the blob each snapshot's diff compressed to) and
//! `images.lock` (image writers hold it shared, blob pruning exclusively). Writes are crash-safe: blobs go to a temp file, are
//! fsynced and renamed into place; the index is a redb database with durable commits, opened in
//! redb's multi-writer mode so several `xbuild` processes can share one root.
//!
//! Beside them: the stat cache of build contexts ([`statcache`]), the sessions and leases of
//! the processes using the root ([`lease`]), the GC and per-key locks they share ([`lock`]),
//! what `prune` may delete ([`gc`]) and what each build looked at ([`history`]).
//!
//! Invariant: only this crate writes the root's metadata (`index.redb`, `blobs/`, `sessions/`,
//! `statcache`, `history/`).
//!
//! ```
//! use xbuild_cache::{CacheRecord, Store};
//! use xbuild_llb::Digest;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//! let blob = store.put_blob(b"hello").unwrap();
//! assert_eq!(store.read_blob(&blob).unwrap(), b"hello");
//!
//! let key = Digest::of(b"a cache key");
//! let rec = CacheRecord { snapshot: Some("s1".into()), created: "2026-01-01T00:00:00Z".into() };
//! store.put_cache(&key, &rec).unwrap();
//! assert_eq!(store.get_cache(&key).unwrap(), Some(rec));
//! ```
#![forbid(unsafe_code)]

mod blob;
pub mod cacheconfig;
pub mod gc;
pub mod history;
mod index;
pub mod lease;
pub mod lock;
pub mod memo;
pub mod oci;
mod prune;
pub mod statcache;
pub mod verify;

pub use blob::{BlobReader, BlobWriter, DigestReader, clean_partial_blobs, into_store_error};
pub use index::{CacheRecord, DiffRecord, ImageRecord, LayerRecord, TagRecord};
pub use prune::{ImageLease, PruneStats, StoreUsage};

use std::path::{Path, PathBuf};

use xbuild_llb::Digest;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("cache index {path}: {message}")]
    Index {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        message: String,
    },
    /// A blob is not in the store.
    #[error("blob {0} is not in the content store")]
    MissingBlob(Digest),
    /// Content does not hash to the digest it should have.
    #[error(
        "blob {expected}: the content received hashes to {actual}, so the store refused it; its source (registry, archive, cache) is corrupt or was tampered with: pull, load or rebuild it from a source you trust"
    )]
    DigestMismatch {
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// A stored blob's content is not what its digest says: the file was changed on disk.
    #[error(
        "blob {digest} ({path}) is corrupt: its content hashes to {actual}; run `xbuild store verify` to remove it, then pull, load or rebuild the images that use it"
    )]
    CorruptBlob {
        /// The digest the blob is stored under.
        digest: Digest,
        /// What its content hashes to.
        actual: Digest,
        /// Its file.
        path: PathBuf,
    },
    /// A layer does not decompress to the diff_id its image's config gives it.
    #[error(
        "layer {layer} decompresses to {actual}, but the image config says its diff_id is {expected}; the image is corrupt or was tampered with: pull, load or rebuild it"
    )]
    DiffIdMismatch {
        /// The layer blob.
        layer: Digest,
        /// The diff_id the config gives it.
        expected: Digest,
        /// What it decompresses to.
        actual: Digest,
    },
    /// A stored document (manifest, index, config) is not valid JSON of its kind.
    #[error(
        "blob {digest} ({path}) is not a valid {kind}: {message}; the image that names it is broken: pull, load or rebuild it"
    )]
    BadDocument {
        /// The blob.
        digest: Digest,
        /// Its file.
        path: PathBuf,
        /// What it should be.
        kind: &'static str,
        /// What the parser said.
        message: String,
    },
    /// An index record could not be decoded.
    #[error("cache index record {key}: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Creates `root` (mode 0700) or closes an existing one to everybody but its owner.
pub fn close_root(root: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(io(root))?;
    let meta = std::fs::metadata(root).map_err(io(root))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::info!(root = %root.display(), "closing the root to other users (mode 0700)");
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).map_err(io(root))?;
    }
    Ok(())
}

/// What a JSON document of type `T` is called in errors.
fn document_kind<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    if name.ends_with("ImageConfigFile") {
        "image config"
    } else if name.ends_with("Manifest") {
        "image manifest"
    } else if name.ends_with("Index") {
        "image index"
    } else {
        "JSON document"
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An xbuild root's content store and index.
pub struct Store {
    root: PathBuf,
    index: index::Index,
}

impl Store {
    /// Opens (creating if needed) the store under `root`. The root is closed to other local
    /// users (mode 0700, set again on an existing root that was more open): snapshots hold
    /// setuid files and secrets that only the builder's user may reach.
    pub fn open(root: &Path) -> Result<Self, Error> {
        close_root(root)?;
        for d in ["blobs/sha256", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let index = index::Index::open(&root.join("index.redb"))?;
        Ok(Store {
            root: root.to_path_buf(),
            index,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// True when the blob is in the store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Starts writing a blob; its digest is known when it is committed.
    pub fn blob_writer(&self) -> Result<BlobWriter, Error> {
        BlobWriter::new(&self.root)
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let mut w = self.blob_writer()?;
        std::io::Write::write_all(&mut w, bytes).map_err(io(&self.root))?;
        w.commit(None)
    }

    /// Reads a whole blob (for small ones: manifests, configs), checking its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let p = self.blob_path(digest);
        let mut r = BlobReader::open(p.clone(), digest)?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut out).map_err(|e| into_store_error(e, &p))?;
        Ok(out)
    }

    /// Opens a blob to stream it: the reader checks the digest at the end of the content.
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader, Error> {
        BlobReader::open(self.blob_path(digest), digest)
    }

    /// The size in bytes of a stored blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, Error> {
        let p = self.blob_path(digest);
        std::fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|_| Error::MissingBlob(digest.clone()))
    }

    /// Reads a JSON document (manifest, index, config) from a blob.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, digest: &Digest) -> Result<T, Error> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::BadDocument {
            digest: digest.clone(),
            path: self.blob_path(digest),
            kind: document_kind::<T>(),
            message: e.to_string(),
        })
    }

    /// Stores a JSON document and returns its descriptor.
    pub fn put_json<T: serde::Serialize>(
        &self,
        media_type: &str,
        doc: &T,
    ) -> Result<oci::Descriptor, Error> {
        let bytes = serde_json::to_vec(doc).map_err(|e| Error::Corrupt {
            key: media_type.to_string(),
            message: e.to_string(),
        })?;
        let digest = self.put_blob(&bytes)?;
        Ok(oci::Descriptor {
            media_type: media_type.to_string(),
            digest,
            size: bytes.len() as u64,
            annotations: None,
            platform: None,
        })
    }

    /// The result recorded for a cache key.
    pub fn get_cache(&self, key: &Digest) -> Result<Option<CacheRecord>, Error> {
        self.index.get(index::CACHE, key.as_str())
    }

    /// Records the result of a cache key.
    pub fn put_cache(&self, key: &Digest, rec: &CacheRecord) -> Result<(), Error> {
        self.index.put(index::CACHE, key.as_str(), rec)
    }

    /// The layer blob a snapshot's diff was compressed to.
    pub fn get_layer(&self, snapshot: &str) -> Result<Option<LayerRecord>, Error> {
        self.index.get(index::LAYERS, snapshot)
    }

    /// Records the layer blob of a snapshot's diff.
    pub fn put_layer(&self, snapshot: &str, rec: &LayerRecord) -> Result<(), Error> {
        self.index.put(index::LAYERS, snapshot, rec)
    }

    /// The layer an export wrote for a snapshot's diff in `variant` (compression and epoch).
    pub fn get_exported_layer(
        &self,
        snapshot: &str,
        variant: &str,
    ) -> Result<Option<LayerRecord>, Error> {
        self.index
            .get(index::EXPORTS, &format!("{snapshot} {variant}"))
    }

    /// Records the layer an export wrote for a snapshot's diff in `variant`.
    pub fn put_exported_layer(
        &self,
        snapshot: &str,
        variant: &str,
        rec: &LayerRecord,
    ) -> Result<(), Error> {
        self.index
            .put(index::EXPORTS, &format!("{snapshot} {variant}"), rec)
    }

    /// The snapshot an image layer chain (by chain id) was unpacked into.
    pub fn get_chain(&self, chain_id: &Digest) -> Result<Option<String>, Error> {
        self.index.get(index::CHAINS, chain_id.as_str())
    }

    /// Records the snapshot an image layer chain was unpacked into.
    pub fn put_chain(&self, chain_id: &Digest, snapshot: &str) -> Result<(), Error> {
        self.index
            .put(index::CHAINS, chain_id.as_str(), &snapshot.to_string())
    }

    /// The image a tag points at.
    pub fn get_tag(&self, name: &str) -> Result<Option<TagRecord>, Error> {
        self.index.get(index::TAGS, name)
    }

    /// Points a tag at an image.
    pub fn put_tag(&self, name: &str, rec: &TagRecord) -> Result<(), Error> {
        self.index.put(index::TAGS, name, rec)
    }

    /// Every tag, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, TagRecord)>, Error> {
        self.index.all(index::TAGS)
    }

    /// Removes a tag; true when it existed. The image stays (untagged) until removed.
    pub fn delete_tag(&self, name: &str) -> Result<bool, Error> {
        self.index.remove(index::TAGS, name)
    }

    /// Records an image (by manifest digest) in the local image store.
    pub fn put_image(&self, manifest: &Digest, rec: &ImageRecord) -> Result<(), Error> {
        self.index.put(index::IMAGES, manifest.as_str(), rec)
    }

    /// The record of an image, by manifest digest.
    pub fn get_image(&self, manifest: &Digest) -> Result<Option<ImageRecord>, Error> {
        self.index.get(index::IMAGES, manifest.as_str())
    }

    /// Every recorded image, by manifest digest.
    pub fn images(&self) -> Result<Vec<(Digest, ImageRecord)>, Error> {
        self.index
            .all::<ImageRecord>(index::IMAGES)?
            .into_iter()
            .map(|(k, v)| {
                k.parse::<Digest>()
                    .map(|d| (d, v))
                    .map_err(|e| Error::Corrupt {
                        key: k.clone(),
                        message: e.to_string(),
                    })
            })
            .collect()
    }

    /// Forgets an image (its blobs stay until [`prune_blobs`](Self::prune_blobs)); true when
    /// it was recorded.
    pub fn delete_image(&self, manifest: &Digest) -> Result<bool, Error> {
        self.index.remove(index::IMAGES, manifest.as_str())
    }

    /// What is known of an uncompressed layer, by diff_id.
    pub fn get_diff(&self, diff_id: &Digest) -> Result<Option<DiffRecord>, Error> {
        self.index.get(index::DIFFS, diff_id.as_str())
    }

    /// Records what is known of an uncompressed layer.
    pub fn put_diff(&self, diff_id: &Digest, rec: &DiffRecord) -> Result<(), Error> {
        self.index.put(index::DIFFS, diff_id.as_str(), rec)
    }
}
