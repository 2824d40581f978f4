//! The changes between two filesystems, as `docker diff` lists them: `A` added, `C` changed,
//! `D` deleted, each path from the root.
//!
//! As in Docker: a file changed when its mode, owner, device, size, modification time or
//! `security.capability` differ (size and time are ignored for directories); an added
//! directory lists everything in it; a deleted one only itself; a directory with changes
//! inside is listed as changed.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// One change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileChange {
    /// The path, from the root (`/etc/passwd`).
    pub path: String,
    /// `A`, `C` or `D`.
    pub kind: char,
}

impl std::fmt::Display for FileChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.path)
    }
}

struct Node {
    md: Metadata,
    host: PathBuf,
}

fn children(dir: &Path) -> Result<BTreeMap<std::ffi::OsString, Node>, Error> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let host = e.path();
        let md = host.symlink_metadata().map_err(|e| Error::io(&host, e))?;
        out.insert(e.file_name(), Node { md, host });
    }
    Ok(out)
}

fn capability(p: &Path) -> Option<Vec<u8>> {
    xattr::get(p, "security.capability").ok().flatten()
}

fn differs(old: &Node, new: &Node) -> bool {
    let (a, b) = (&old.md, &new.md);
    let dir = b.is_dir() && a.is_dir();
    a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
        || a.rdev() != b.rdev()
        || (!dir
            && (a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec() || a.len() != b.len()))
        || capability(&old.host) != capability(&new.host)
}

fn join(parent: &str, name: &std::ffi::OsStr) -> String {
    format!("{parent}/{}", name.to_string_lossy())
}

/// Adds the changes under directory `new` (path `at`) against `old` (absent, or not a
/// directory: everything is new); returns nothing, appends to `out`.
fn walk(
    old: Option<&Path>,
    new: &Path,
    at: &str,
    listed: bool,
    out: &mut Vec<FileChange>,
) -> Result<(), Error> {
    let before = out.len();
    let mut old_children = match old {
        Some(o) => children(o)?,
        None => BTreeMap::new(),
    };
    for (name, node) in children(new)? {
        let path = join(at, &name);
        let prev = old_children.remove(&name);
        let mut child_listed = false;
        match &prev {
            None => {
                out.push(FileChange {
                    path: path.clone(),
                    kind: 'A',
                });
                child_listed = true;
            }
            Some(p) if differs(p, &node) => {
                out.push(FileChange {
                    path: path.clone(),
                    kind: 'C',
                });
                child_listed = true;
            }
            Some(_) => {}
        }
        if node.md.is_dir() {
            let old_dir = prev
                .as_ref()
                .filter(|p| p.md.is_dir())
                .map(|p| p.host.as_path());
            // On a stack grown on the heap when needed: a tree of any depth, no overflow.
            stacker::maybe_grow(256 * 1024, 4 * 1024 * 1024, || {
                walk(old_dir, &node.host, &path, child_listed, out)
            })?;
        }
    }
    for name in old_children.keys() {
        out.push(FileChange {
            path: join(at, name),
            kind: 'D',
        });
    }
    if out.len() > before && !listed && !at.is_empty() {
        out.insert(
            before,
            FileChange {
                path: at.to_string(),
                kind: 'C',
            },
        );
    }
    Ok(())
}

/// The changes that turn the tree at `old` into the tree at `new`, sorted by path.
pub fn diff_trees(old: &Path, new: &Path) -> Result<Vec<FileChange>, Error> {
    let mut out = Vec::new();
    walk(Some(old), new, "", true, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_changes_like_docker_diff() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for t in [&a, &b] {
            std::fs::create_dir_all(t.join("etc/keep")).unwrap();
            std::fs::create_dir_all(t.join("gone/deep")).unwrap();
            std::fs::write(t.join("etc/same"), "s").unwrap();
            std::fs::write(t.join("etc/keep/x"), "x").unwrap();
        }
        // Same times for the files that stay the same.
        for f in ["etc/same", "etc/keep/x"] {
            let t = filetime::FileTime::from_unix_time(100, 0);
            filetime::set_file_mtime(a.join(f), t).unwrap();
            filetime::set_file_mtime(b.join(f), t).unwrap();
        }
        std::fs::remove_dir_all(b.join("gone")).unwrap();
        std::fs::write(b.join("etc/keep/x"), "xx").unwrap();
        std::fs::create_dir_all(b.join("new/sub")).unwrap();
        std::fs::write(b.join("new/sub/f"), "f").unwrap();
        let got: Vec<String> = diff_trees(&a, &b)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "C /etc",
                "C /etc/keep",
                "C /etc/keep/x",
                "D /gone",
                "A /new",
                "A /new/sub",
                "A /new/sub/f",
            ]
        );
        assert!(diff_trees(&a, &a).unwrap().is_empty());
    }
}
