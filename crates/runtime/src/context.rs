//! Content checksums of what a COPY selects from the build context, for cache keys.
//!
//! The checksum covers each selected path's relative name, type, permission bits, symlink target
//! and file content (blake3, files hashed in parallel) — not mtimes and not owners, which a COPY
//! from the context does not carry over.

use rayon::prelude::*;
use rustix::fs::{FileType, Stat};
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::Error;
use crate::copy::{SourceTree, resolve_sources};
use crate::dockerignore::{Filter, FilterState, Verdict};
use crate::fsops::{Root, list_dir, open_nofollow, stat_at};

enum Item {
    Dir,
    File(OwnedFd, u64),
    Link(Vec<u8>),
    Other(u64),
}

struct Entry {
    path: Vec<u8>,
    mode: u32,
    item: Item,
}

/// What a copy from a context selects: its source, wildcard and symlink rules, and the
/// patterns that narrow it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection<'a> {
    /// The source path (may hold wildcards when `allow_wildcard`).
    pub src: &'a str,
    /// Wildcards are expanded.
    pub allow_wildcard: bool,
    /// A symlink named as the source is followed.
    pub follow: bool,
    /// The copy's include patterns (relative to the source).
    pub include: &'a [String],
    /// The copy's exclude patterns (relative to the source).
    pub exclude: &'a [String],
}

/// The checksum of what `sel` selects in the tree at `root`, seen through the context's
/// `filter` (`.dockerignore`). Sources that do not exist contribute their absence.
pub fn checksum(
    root: &Path,
    filter: Option<&Filter>,
    sel: &Selection<'_>,
) -> Result<[u8; 32], Error> {
    let tree = Root::open(root)?;
    let source = SourceTree {
        root: &tree,
        filter,
        name: "build context",
    };
    let action =
        Filter::new(sel.include, sel.exclude).map_err(|e| Error::BadPattern(e.to_string()))?;
    let matches = resolve_sources(&source, sel.src, sel.allow_wildcard, sel.follow)?;
    let mut entries = Vec::new();
    for m in &matches {
        let Some(fd) = tree.resolve(m, sel.follow)? else {
            continue;
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io(&root.join(m), e.into()))?;
        let ioerr = |e: std::io::Error| Error::io(&root.join(m), e);
        let prefix = format!("{m}\0").into_bytes();
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let dir = Root::reopen(&fd, true).map_err(ioerr)?;
                entries.push(Entry {
                    path: prefix.clone(),
                    mode: st.st_mode,
                    item: Item::Dir,
                });
                let mut w = Walker {
                    ctx: filter,
                    action: action.as_ref(),
                    out: &mut entries,
                };
                let cst = filter.map(|f| f.state_of(m).1).unwrap_or_default();
                w.walk(dir.as_fd(), &prefix, m, "", &cst, &FilterState::default())
                    .map_err(ioerr)?;
            }
            FileType::RegularFile => {
                let f = Root::reopen(&fd, false).map_err(ioerr)?;
                entries.push(Entry {
                    path: prefix,
                    mode: st.st_mode,
                    item: Item::File(f, st.st_size as u64),
                });
            }
            FileType::Symlink => {
                // An O_PATH handle of the link itself: an empty name reads it.
                let link =
                    rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(|e| ioerr(e.into()))?;
                entries.push(Entry {
                    path: prefix,
                    mode: st.st_mode,
                    item: Item::Link(link.into_bytes()),
                });
            }
            _ => entries.push(Entry {
                path: prefix,
                mode: st.st_mode,
                item: Item::Other(st.st_rdev),
            }),
        }
    }
    let hashes: Vec<Result<[u8; 32], Error>> = entries.par_iter().map(hash_entry).collect();
    let mut total = blake3::Hasher::new();
    total.update(b"xbuild-context-v2");
    total.update(&(matches.len() as u64).to_le_bytes());
    for (e, h) in entries.iter().zip(hashes) {
        total.update(&(e.path.len() as u64).to_le_bytes());
        total.update(&e.path);
        total.update(&h?);
    }
    Ok(*total.finalize().as_bytes())
}

struct Walker<'a, 'b> {
    ctx: Option<&'a Filter>,
    action: Option<&'a Filter>,
    out: &'b mut Vec<Entry>,
}

impl Walker<'_, '_> {
    fn walk(
        &mut self,
        dir: BorrowedFd<'_>,
        prefix: &[u8],
        ctx_rel: &str,
        act_rel: &str,
        cst: &FilterState,
        ast: &FilterState,
    ) -> std::io::Result<()> {
        let all = Verdict {
            keep: true,
            excluded: false,
        };
        for name in list_dir(dir)? {
            let Some(st) = stat_at(dir, &name)? else {
                continue;
            };
            let n = name.to_string_lossy();
            let cp = if ctx_rel.is_empty() {
                n.to_string()
            } else {
                format!("{ctx_rel}/{n}")
            };
            let ap = if act_rel.is_empty() {
                n.to_string()
            } else {
                format!("{act_rel}/{n}")
            };
            let (cv, cst2) = self
                .ctx
                .map(|f| f.check(&cp, cst))
                .unwrap_or((all, FilterState::default()));
            let (av, ast2) = self
                .action
                .map(|f| f.check(&ap, ast))
                .unwrap_or((all, FilterState::default()));
            let keep = cv.keep && av.keep;
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            let mut path = prefix.to_vec();
            path.push(b'/');
            path.extend_from_slice(name.as_bytes());
            if !is_dir {
                if keep {
                    push_entry(dir, name, st, path, self.out)?;
                }
                continue;
            }
            let descend = keep
                || ((cv.keep || self.ctx.is_some_and(|f| f.descend(&cp, cv)))
                    && (av.keep || self.action.is_some_and(|f| f.descend(&ap, av))));
            if !descend {
                continue;
            }
            let sub = open_nofollow(dir, &name, &st)?
                .ok_or_else(|| std::io::Error::other("not a directory"))?;
            self.out.push(Entry {
                path: path.clone(),
                mode: st.st_mode,
                item: Item::Dir,
            });
            self.walk(sub.as_fd(), &path, &cp, &ap, &cst2, &ast2)?;
        }
        Ok(())
    }
}

fn push_entry(
    dir: BorrowedFd<'_>,
    name: OsString,
    st: Stat,
    path: Vec<u8>,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            let f = open_nofollow(dir, &name, &st)?
                .ok_or_else(|| std::io::Error::other("not a file"))?;
            out.push(Entry {
                path,
                mode: st.st_mode,
                item: Item::File(f, st.st_size as u64),
            });
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, &name, Vec::new())?;
            out.push(Entry {
                path,
                mode: st.st_mode,
                item: Item::Link(target.into_bytes()),
            });
        }
        _ => out.push(Entry {
            path,
            mode: st.st_mode,
            item: Item::Other(st.st_rdev),
        }),
    }
    Ok(())
}

fn hash_entry(e: &Entry) -> Result<[u8; 32], Error> {
    let mut h = blake3::Hasher::new();
    h.update(&e.mode.to_le_bytes());
    match &e.item {
        Item::Dir => {
            h.update(b"d");
        }
        Item::File(fd, size) => {
            h.update(b"f");
            h.update(&size.to_le_bytes());
            let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
            let err = |e| Error::io(Path::new("<context file>"), e);
            if *size > 4 << 20 {
                // Large files: blake3 maps them and hashes the pieces in parallel.
                h.update_mmap_rayon(&proc).map_err(err)?;
            } else {
                let file = std::fs::File::from(rustix::io::dup(fd).map_err(|e| err(e.into()))?);
                h.update_reader(&file).map_err(err)?;
            }
        }
        Item::Link(t) => {
            h.update(b"l");
            h.update(t);
        }
        Item::Other(rdev) => {
            h.update(b"o");
            h.update(&rdev.to_le_bytes());
        }
    }
    Ok(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(src: &str) -> Selection<'_> {
        Selection {
            src,
            allow_wildcard: true,
            follow: true,
            ..Default::default()
        }
    }

    #[test]
    fn ignored_files_do_not_count() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/a"), "1").unwrap();
        std::fs::write(d.path().join("src/debug.log"), "x").unwrap();
        let f = Filter::new(&[], &["**/*.log".into()]).unwrap().unwrap();
        let c1 = checksum(d.path(), Some(&f), &sel("/")).unwrap();
        std::fs::write(d.path().join("src/debug.log"), "y").unwrap();
        assert_eq!(c1, checksum(d.path(), Some(&f), &sel("/")).unwrap());
        assert_ne!(c1, checksum(d.path(), None, &sel("/")).unwrap());
        std::fs::write(d.path().join("src/a"), "2").unwrap();
        assert_ne!(c1, checksum(d.path(), Some(&f), &sel("/")).unwrap());
    }

    #[test]
    fn content_changes_change_the_checksum_mtimes_do_not() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/a"), "1").unwrap();
        std::fs::write(d.path().join("other"), "x").unwrap();
        let c1 = checksum(d.path(), None, &sel("/src")).unwrap();
        filetime::set_file_mtime(
            d.path().join("src/a"),
            filetime::FileTime::from_unix_time(5, 0),
        )
        .unwrap();
        assert_eq!(c1, checksum(d.path(), None, &sel("/src")).unwrap());
        std::fs::write(d.path().join("other"), "y").unwrap();
        assert_eq!(
            c1,
            checksum(d.path(), None, &sel("/src")).unwrap(),
            "an unselected file does not count"
        );
        std::fs::write(d.path().join("src/a"), "2").unwrap();
        assert_ne!(c1, checksum(d.path(), None, &sel("/src")).unwrap());
        let missing = checksum(d.path(), None, &sel("/nope")).unwrap();
        assert_ne!(missing, c1);
    }
}
