//! Turns xbuild snapshots into OCI images: layer diffs to compressed blobs (hashed while
//! streaming), image configs with history, manifests; OCI layouts and flattened filesystems;
//! and `import` of a flat rootfs tarball.
//!
//! Invariant: the exporter reads snapshots (through `runtime`) and writes blobs only through
//! `cache`. Configs serialize deterministically, so equal inputs give equal digests.
//!
//! ```no_run
//! use xbuild_cache::Store;
//! use xbuild_exporter::{import_rootfs, write_oci_layout};
//!
//! let store = Store::open(std::path::Path::new("/var/lib/xbuild")).unwrap();
//! let tar = std::fs::File::open("rootfs.tar").unwrap();
//! let image = import_rootfs(&store, tar, "rootfs.tar", "linux", "amd64", "2026-01-01T00:00:00Z").unwrap();
//! println!("imported {}", image.id());
//! write_oci_layout(&store, &image.manifest, Some("busybox:local"), "out".as_ref()).unwrap();
//! ```
#![forbid(unsafe_code)]

mod filesystem;
mod hashing;
mod image;
mod import;
mod layer;
mod layout;
mod tarball;

pub use filesystem::export_tar;
pub use image::{BuiltImage, StepResult, build_image, container_config, image_config, load_image};
pub use import::{decompressed, import_rootfs};
pub use layer::{Compression, layer_of, write_layer};
pub use layout::write_oci_layout;

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
