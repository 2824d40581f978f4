//! The flattened filesystem of an image or snapshot: as a tar stream, or written out as a
//! directory tree (`type=local`).

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use xbuild_runtime::{LayerSnapshotter, Snapshotter};

use crate::Error;
use crate::tarball::TarWriter;

/// Writes the tree at `root` (without `root` itself) as a tar to `out`, in name order; with
/// `epoch`, later file times are written as the epoch.
pub fn write_tree(root: &Path, out: impl Write, epoch: Option<i64>) -> Result<(), Error> {
    let mut tw = TarWriter::new(BufWriter::with_capacity(1 << 20, out), epoch);
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for e in walker {
        let e = e.map_err(|e| Error::io(root, std::io::Error::other(e)))?;
        let rel = e
            .path()
            .strip_prefix(root)
            .map_err(|_| Error::io(e.path(), std::io::Error::other("outside the tree")))?;
        tw.append_path(rel, e.path())?;
    }
    let mut w = tw
        .finish()?
        .into_inner()
        .map_err(|e| Error::io(Path::new("<output>"), e.into_error()))?;
    w.flush().map_err(|e| Error::io(Path::new("<output>"), e))
}

/// Writes the merged filesystem of snapshot `top` (with its ancestors) as a tar to `out`.
pub fn export_tar(
    snapshots: &LayerSnapshotter,
    top: Option<&str>,
    out: impl Write,
    epoch: Option<i64>,
) -> Result<(), Error> {
    let view = snapshots.view(top)?;
    write_tree(view.path(), out, epoch)
}

/// Writes the merged filesystem of snapshot `top` into the directory `dest` (created if
/// missing), with owners, modes, times, links, devices and xattrs, as `type=local` does. The
/// tree is streamed through the safe unpacker, so nothing lands outside `dest`, as an archive:
/// the final filesystem is written as it is, a file named `.wh.x` is a file named `.wh.x` (as
/// BuildKit's local exporter writes it), never a whiteout of something in `dest`.
pub fn export_local(
    snapshots: &LayerSnapshotter,
    top: Option<&str>,
    dest: &Path,
    epoch: Option<i64>,
) -> Result<(), Error> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let view = snapshots.view(top)?;
    let (reader, writer) = std::io::pipe().map_err(|e| Error::io(dest, e))?;
    std::thread::scope(|s| {
        let root = view.path();
        let producer = s.spawn(move || write_tree(root, writer, epoch));
        let unpacked = std::fs::File::open(dest)
            .map_err(|e| Error::io(dest, e))
            .and_then(|d| {
                xbuild_runtime::unpack_into(
                    BufReader::new(reader),
                    &d.into(),
                    xbuild_runtime::TarKind::Archive,
                    None,
                )
                .map(|_| ())
                .map_err(Error::from)
            });
        let produced = producer
            .join()
            .map_err(|_| Error::BadInput("the tree writer panicked".into()))?;
        match (produced, unpacked) {
            (Ok(()), unpacked) => unpacked,
            // The unpacker stopped reading, so the writer's pipe broke: the unpacker's error
            // is the one that says why.
            (Err(Error::Io { source, .. }), Err(u))
                if source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                Err(u)
            }
            // Else a producer error explains a consumer error (a cut stream).
            (Err(p), _) => Err(p),
        }
    })
}
