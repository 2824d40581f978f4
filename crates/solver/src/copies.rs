//! Which snapshot a copy from the build context made last, by the copy's vertex digest: the
//! next run of that copy (after the context changed) links from it what did not change
//! (see [`xbuild_runtime::reuse`]). One small file per copy under `<root>/copies/`; a hint
//! only: a missing, damaged or stale one means the copy copies everything.

use std::path::{Path, PathBuf};

use xbuild_llb::Digest;

/// The directory of the hints under an xbuild root.
pub(crate) fn dir(root: &Path) -> PathBuf {
    root.join("copies")
}

fn path(root: &Path, vertex: &Digest) -> PathBuf {
    let s = vertex.to_string();
    let hex = s.rsplit(':').next().unwrap_or(&s);
    dir(root).join(hex)
}

/// The snapshot the copy `vertex` made last, if a hint says so.
pub(crate) fn last(root: &Path, vertex: &Digest) -> Option<String> {
    let s = std::fs::read_to_string(path(root, vertex)).ok()?;
    let id = s.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Remembers that the copy `vertex` made `snapshot` (temp file + rename; a failure only costs
/// the next run its links).
pub(crate) fn remember(root: &Path, vertex: &Digest, snapshot: &str) {
    let p = path(root, vertex);
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    let r = std::fs::create_dir_all(dir(root))
        .and_then(|_| std::fs::write(&tmp, snapshot))
        .and_then(|_| std::fs::rename(&tmp, &p));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(path = %p.display(), error = %e, "could not remember a copy's snapshot");
    }
}

/// Forgets the hints naming a snapshot `keep` does not accept (called by prune).
pub(crate) fn forget_unless(root: &Path, keep: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir(root)) else {
        return;
    };
    for e in entries.flatten() {
        let stale = std::fs::read_to_string(e.path()).map_or(true, |s| !keep(s.trim()));
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_round_trip_and_prune_drops_stale_ones() {
        let d = tempfile::tempdir().unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(last(d.path(), &a), None);
        remember(d.path(), &a, "snap1");
        remember(d.path(), &b, "snap2");
        remember(d.path(), &a, "snap3");
        assert_eq!(last(d.path(), &a).as_deref(), Some("snap3"));
        forget_unless(d.path(), |s| s == "snap3");
        assert_eq!(last(d.path(), &a).as_deref(), Some("snap3"));
        assert_eq!(last(d.path(), &b), None);
    }
}
