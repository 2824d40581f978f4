//! Turns xbuild snapshots into OCI images and moves images in and out of the content store.
//!
//! Layers are snapshot diffs written as deterministic tars (OCI whiteouts, PAX, hardlinks,
//! devices, xattrs), hashed and compressed (gzip in parallel, zstd, or none) in one streaming
//! pass; configs carry BuildKit-style history; with `SOURCE_DATE_EPOCH` every time this build
//! adds is clamped, so equal inputs give equal digests. Images go out as OCI layouts or
//! docker-archives and come in from either, or from a flat rootfs tarball (`import`).
//!
//! Invariant: the exporter reads snapshots (through `runtime`) and writes blobs only through
//! `cache`. Configs serialize deterministically (fixed field order, sorted maps).
//!
//! ```no_run
//! use xbuild_cache::Store;
//! use xbuild_exporter::{ArchiveFormat, ArchiveImage, Compression, import_rootfs, write_archive_file};
//!
//! let store = Store::open(std::path::Path::new("/var/lib/xbuild")).unwrap();
//! let tar = std::fs::File::open("rootfs.tar").unwrap();
//! let created = "2026-01-01T00:00:00Z";
//! let image = import_rootfs(&store, tar, "rootfs.tar", "linux", "amd64", created, Compression::Gzip).unwrap();
//! println!("imported {}", image.id());
//! let out = [ArchiveImage { manifest: image.manifest.clone(), names: vec!["busybox:local".into()] }];
//! write_archive_file(&store, &out, ArchiveFormat::Docker, None, "busybox.tar".as_ref()).unwrap();
//! ```
#![forbid(unsafe_code)]

mod compress;
mod diff;
mod filesystem;
mod hashing;
mod image;
mod import;
mod layer;
mod layout;
mod load;
pub mod names;
mod tarball;

pub use compress::{Compression, decompress};
pub use diff::{FileChange, diff_trees};
pub use filesystem::{export_local, export_tar, write_tree};
pub use image::{BaseImage, BuiltImage, StepResult, base_image, build_image, load_image, rfc3339};
pub use import::import_rootfs;
pub use layer::{ExportOptions, dir_layer, layer_of, write_layer};
pub use layout::{
    ANNOTATION_CREATED, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, ArchiveFormat, ArchiveImage,
    partial, write_archive, write_archive_file, write_oci_dir,
};
pub use load::{LoadedImage, load_archive, load_oci_dir, verify_layers_where};

use std::path::{Path, PathBuf};

/// What can go wrong exporting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
    /// Reading a snapshot failed.
    #[error(transparent)]
    Runtime(#[from] xbuild_runtime::Error),
    /// Input that is not what it should be (e.g. an import that is not a tar).
    #[error("{0}")]
    BadInput(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
