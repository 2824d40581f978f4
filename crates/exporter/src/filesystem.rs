//! The flattened filesystem of an image or snapshot, as a tar or a directory.

use std::io::Write;
use std::path::Path;

use xbuild_runtime::Snapshotter;

use crate::Error;
use crate::tarball::TarWriter;

/// Writes the merged filesystem of snapshot `top` (with its ancestors) as a tar to `out`.
pub fn export_tar(
    snapshots: &Snapshotter,
    top: Option<&str>,
    out: impl Write,
) -> Result<(), Error> {
    let view = snapshots.view(top)?;
    let root = view.path();
    let mut tw = TarWriter::new(out);
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for e in walker {
        let e = e.map_err(|e| Error::io(root, std::io::Error::other(e)))?;
        let rel = e
            .path()
            .strip_prefix(root)
            .map_err(|_| Error::io(e.path(), std::io::Error::other("outside the view")))?;
        tw.append_path(rel, e.path())?;
    }
    let mut w = tw.finish()?;
    w.flush().map_err(|e| Error::io(Path::new("<output>"), e))?;
    Ok(())
}
