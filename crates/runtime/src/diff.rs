//! The changes a committed snapshot made against its parent, read from its directory.
//!
//! For an overlay upperdir a 0/0 character device is a deletion and a directory carrying
//! `trusted.overlay.opaque=y` replaced the directory below it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::unpack::OPAQUE_XATTR;

/// One change, in path order (a directory before its contents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A path added or modified; read its content and metadata from `host`.
    Upsert {
        /// The path inside the image, relative (`usr/bin/x`).
        path: PathBuf,
        /// Where it is on the host.
        host: PathBuf,
        /// True for a directory that replaced the one below (an opaque directory).
        opaque: bool,
    },
    /// A path deleted.
    Delete {
        /// The path inside the image, relative.
        path: PathBuf,
    },
}

/// The changes recorded in snapshot directory `upper`, sorted by path.
pub fn changes(upper: &Path) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(upper)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for e in walker {
        let e = e.map_err(|e| Error::io(upper, std::io::Error::other(e)))?;
        let rel = e
            .path()
            .strip_prefix(upper)
            .map_err(|_| Error::io(e.path(), std::io::Error::other("outside the snapshot")))?
            .to_path_buf();
        let md = e
            .path()
            .symlink_metadata()
            .map_err(|err| Error::io(e.path(), err))?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            out.push(Change::Delete { path: rel });
            continue;
        }
        let opaque = ft.is_dir()
            && xattr::get(e.path(), OPAQUE_XATTR)
                .ok()
                .flatten()
                .is_some_and(|v| v == b"y");
        out.push(Change::Upsert {
            path: rel,
            host: e.path().to_path_buf(),
            opaque,
        });
    }
    Ok(out)
}
