//! Content checksums of what a COPY selects from the build context, for cache keys.
//!
//! The checksum covers each selected path's relative name, type, permission bits, symlink target
//! and file content (blake3) — the tree's shape and everything a copy from the context carries
//! over. It leaves out mtimes (a copy does not key on them) and owners (a copy from the context
//! makes everything root's, or `--chown`'s, which is part of the op itself).
//!
//! Directories are walked and files hashed in parallel (rayon). A [`ContentHashes`] cache (the
//! root's persistent stat cache) maps a file's [`FileStamp`] — device, inode, size, mtime,
//! ctime — to its content hash, so an unchanged file is stat'ed, never read.

use rayon::prelude::*;
use rustix::fs::{FileType, Stat};
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::Error;
use crate::copy::{SourceTree, resolve_sources};
use crate::dockerignore::{Filter, FilterState, Verdict};
use crate::fsops::{Root, list_dir, open_nofollow, stat_at};

/// What identifies a file's content without reading it: if none of these changed, the content
/// did not either (the stat cache's key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileStamp {
    /// The device.
    pub dev: u64,
    /// The inode.
    pub ino: u64,
    /// The size in bytes.
    pub size: u64,
    /// The modification time, in nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// The status change time, in nanoseconds since the epoch.
    pub ctime_ns: i64,
}

impl FileStamp {
    /// The stamp of a file from its stat.
    pub fn of(st: &Stat) -> Self {
        FileStamp {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime_ns: st.st_mtime.saturating_mul(1_000_000_000) + st.st_mtime_nsec as i64,
            ctime_ns: st.st_ctime.saturating_mul(1_000_000_000) + st.st_ctime_nsec as i64,
        }
    }
}

/// Content hashes of files by stamp: a stat cache. Called from many threads at once.
pub trait ContentHashes: Sync {
    /// The blake3 hash of the content of the file with this stamp, if known.
    fn get(&self, stamp: &FileStamp) -> Option<[u8; 32]>;
    /// Records the content hash of the file with this stamp.
    fn put(&self, stamp: FileStamp, hash: [u8; 32]);
}

/// No stat cache: every file is read.
pub struct NoContentHashes;

impl ContentHashes for NoContentHashes {
    fn get(&self, _: &FileStamp) -> Option<[u8; 32]> {
        None
    }

    fn put(&self, _: FileStamp, _: [u8; 32]) {}
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

/// One path a selection covers and the checksum of what it is (type, mode, content or link
/// target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSum {
    /// The path relative to the context root (`src/main.c`).
    pub path: String,
    /// The entry's checksum.
    pub sum: [u8; 32],
}

/// The checksum of a selection, and of each path it covers, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// The checksum of the whole selection.
    pub total: [u8; 32],
    /// Every path covered, sorted as walked.
    pub paths: Vec<PathSum>,
}

/// The checksum of what `sel` selects in the tree at `root`, seen through the context's
/// `filter` (`.dockerignore`). Sources that do not exist contribute their absence.
pub fn checksum(
    root: &Path,
    filter: Option<&Filter>,
    sel: &Selection<'_>,
) -> Result<[u8; 32], Error> {
    Ok(checksum_with(root, filter, sel, &NoContentHashes)?.total)
}

/// Like [`checksum`], with a stat cache and the checksum of every path covered.
pub fn checksum_with(
    root: &Path,
    filter: Option<&Filter>,
    sel: &Selection<'_>,
    hashes: &dyn ContentHashes,
) -> Result<Checksum, Error> {
    let tree = Root::open(root)?;
    let source = SourceTree {
        root: &tree,
        filter,
        name: "build context",
    };
    let action =
        Filter::new(sel.include, sel.exclude).map_err(|e| Error::BadPattern(e.to_string()))?;
    let matches = resolve_sources(&source, sel.src, sel.allow_wildcard, sel.follow)?;
    let walker = Walker {
        ctx: filter,
        action: action.as_ref(),
        hashes,
    };
    let per_match: Vec<Result<Vec<PathSum>, Error>> = matches
        .par_iter()
        .map(|m| {
            let Some(fd) = tree.resolve(m, sel.follow)? else {
                return Ok(Vec::new());
            };
            let at = root.join(m);
            let ioerr = |e: std::io::Error| Error::io(&at, e);
            let st = rustix::fs::fstat(&fd).map_err(|e| ioerr(e.into()))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    let dir = Root::reopen(&fd, true).map_err(ioerr)?;
                    let mut out = vec![PathSum {
                        path: m.clone(),
                        sum: entry_sum(st.st_mode, b'd', &[]),
                    }];
                    let cst = filter.map(|f| f.state_of(m).1).unwrap_or_default();
                    let rel = Rel {
                        path: m,
                        ctx: m,
                        act: "",
                    };
                    out.extend(
                        walker
                            .walk(dir.as_fd(), &rel, &cst, &FilterState::default())
                            .map_err(|e| ioerr(e.into_io()))?,
                    );
                    Ok(out)
                }
                FileType::RegularFile => {
                    let f = Root::reopen(&fd, false).map_err(ioerr)?;
                    let sum = file_sum(&f, &st, hashes).map_err(ioerr)?;
                    Ok(vec![PathSum {
                        path: m.clone(),
                        sum,
                    }])
                }
                FileType::Symlink => {
                    // An O_PATH handle of the link itself: an empty name reads it.
                    let link =
                        rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(|e| ioerr(e.into()))?;
                    Ok(vec![PathSum {
                        path: m.clone(),
                        sum: entry_sum(st.st_mode, b'l', link.as_bytes()),
                    }])
                }
                _ => Ok(vec![PathSum {
                    path: m.clone(),
                    sum: entry_sum(st.st_mode, b'o', &st.st_rdev.to_le_bytes()),
                }]),
            }
        })
        .collect();
    let mut total = blake3::Hasher::new();
    total.update(b"xbuild-context-v3");
    total.update(&(matches.len() as u64).to_le_bytes());
    let mut paths = Vec::new();
    for (m, entries) in matches.iter().zip(per_match) {
        let entries = entries?;
        // Each match is delimited, so that the same files under two matches hash differently
        // from one match holding both.
        total.update(&(m.len() as u64).to_le_bytes());
        total.update(m.as_bytes());
        total.update(&(entries.len() as u64).to_le_bytes());
        for e in &entries {
            total.update(&(e.path.len() as u64).to_le_bytes());
            total.update(e.path.as_bytes());
            total.update(&e.sum);
        }
        paths.extend(entries);
    }
    Ok(Checksum {
        total: *total.finalize().as_bytes(),
        paths,
    })
}

/// A path below a match, as the two filters and the result see it.
struct Rel<'a> {
    /// Relative to the context root, for the result.
    path: &'a str,
    /// Relative to the context root, for `.dockerignore`.
    ctx: &'a str,
    /// Relative to the copy's source, for its include/exclude patterns.
    act: &'a str,
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// An error of the walk, with the path it happened at.
struct WalkError {
    path: String,
    source: std::io::Error,
}

impl WalkError {
    fn into_io(self) -> std::io::Error {
        std::io::Error::new(
            self.source.kind(),
            format!("{}: {}", self.path, self.source),
        )
    }
}

struct Walker<'a> {
    ctx: Option<&'a Filter>,
    action: Option<&'a Filter>,
    hashes: &'a dyn ContentHashes,
}

/// What the walk does with one directory entry.
enum Work {
    Dir {
        name: OsString,
        st: Stat,
        ctx: String,
        act: String,
        cst: FilterState,
        ast: FilterState,
        /// The directory itself is copied (not just something below it).
        keep: bool,
    },
    Leaf {
        name: OsString,
        st: Stat,
    },
}

impl Walker<'_> {
    /// The checksums of what is selected below `dir`, sorted by path; subdirectories and files
    /// are handled in parallel.
    fn walk(
        &self,
        dir: BorrowedFd<'_>,
        rel: &Rel<'_>,
        cst: &FilterState,
        ast: &FilterState,
    ) -> Result<Vec<PathSum>, WalkError> {
        let err = |source: std::io::Error| WalkError {
            path: rel.path.to_string(),
            source,
        };
        let all = Verdict {
            keep: true,
            excluded: false,
        };
        let mut work = Vec::new();
        for name in list_dir(dir).map_err(err)? {
            let Some(st) = stat_at(dir, &name).map_err(err)? else {
                continue;
            };
            let n = name.to_string_lossy();
            let cp = join(rel.ctx, &n);
            let ap = join(rel.act, &n);
            let (cv, cst2) = self
                .ctx
                .map(|f| f.check(&cp, cst))
                .unwrap_or((all, FilterState::default()));
            let (av, ast2) = self
                .action
                .map(|f| f.check(&ap, ast))
                .unwrap_or((all, FilterState::default()));
            let keep = cv.keep && av.keep;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                if keep {
                    work.push(Work::Leaf { name, st });
                }
                continue;
            }
            let descend = keep
                || ((cv.keep || self.ctx.is_some_and(|f| f.descend(&cp, cv)))
                    && (av.keep || self.action.is_some_and(|f| f.descend(&ap, av))));
            if descend {
                work.push(Work::Dir {
                    name,
                    st,
                    ctx: cp,
                    act: ap,
                    cst: cst2,
                    ast: ast2,
                    keep,
                });
            }
        }
        let parts: Vec<Result<Vec<PathSum>, WalkError>> = work
            .into_par_iter()
            .map(|w| self.entry(dir, rel, w))
            .collect();
        let mut out = Vec::new();
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    fn entry(
        &self,
        dir: BorrowedFd<'_>,
        rel: &Rel<'_>,
        w: Work,
    ) -> Result<Vec<PathSum>, WalkError> {
        match w {
            Work::Leaf { name, st } => {
                let path = join(rel.path, &name.to_string_lossy());
                let sum = leaf_sum(dir, &name, &st, self.hashes).map_err(|source| WalkError {
                    path: path.clone(),
                    source,
                })?;
                Ok(vec![PathSum { path, sum }])
            }
            Work::Dir {
                name,
                st,
                ctx,
                act,
                cst,
                ast,
                keep,
            } => {
                let path = join(rel.path, &name.to_string_lossy());
                let sub = open_nofollow(dir, &name, &st)
                    .and_then(|d| d.ok_or_else(|| std::io::Error::other("not a directory")))
                    .map_err(|source| WalkError {
                        path: path.clone(),
                        source,
                    })?;
                let sub_rel = Rel {
                    path: &path,
                    ctx: &ctx,
                    act: &act,
                };
                let below = self.walk(sub.as_fd(), &sub_rel, &cst, &ast)?;
                // A directory only on the way to something kept below it is still part of
                // the tree's shape when anything below it is.
                if !keep && below.is_empty() {
                    return Ok(below);
                }
                let mut out = Vec::with_capacity(below.len() + 1);
                out.push(PathSum {
                    path,
                    sum: entry_sum(st.st_mode, b'd', &[]),
                });
                out.extend(below);
                Ok(out)
            }
        }
    }
}

/// The checksum of a non-directory entry of `dir`.
fn leaf_sum(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    st: &Stat,
    hashes: &dyn ContentHashes,
) -> std::io::Result<[u8; 32]> {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            let stamp = FileStamp::of(st);
            if let Some(h) = hashes.get(&stamp) {
                return Ok(file_entry_sum(st, &h));
            }
            let f =
                open_nofollow(dir, name, st)?.ok_or_else(|| std::io::Error::other("not a file"))?;
            let h = content_hash(&f, st.st_size as u64)?;
            hashes.put(stamp, h);
            Ok(file_entry_sum(st, &h))
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
            Ok(entry_sum(st.st_mode, b'l', target.as_bytes()))
        }
        _ => Ok(entry_sum(st.st_mode, b'o', &st.st_rdev.to_le_bytes())),
    }
}

/// The checksum of an opened regular file (a match named directly).
fn file_sum(f: &OwnedFd, st: &Stat, hashes: &dyn ContentHashes) -> std::io::Result<[u8; 32]> {
    let stamp = FileStamp::of(st);
    let h = match hashes.get(&stamp) {
        Some(h) => h,
        None => {
            let h = content_hash(f, st.st_size as u64)?;
            hashes.put(stamp, h);
            h
        }
    };
    Ok(file_entry_sum(st, &h))
}

fn file_entry_sum(st: &Stat, content: &[u8; 32]) -> [u8; 32] {
    let mut extra = [0u8; 40];
    extra[..8].copy_from_slice(&(st.st_size as u64).to_le_bytes());
    extra[8..].copy_from_slice(content);
    entry_sum(st.st_mode, b'f', &extra)
}

/// The checksum of one entry: its mode (type and permission bits), a kind tag and what it
/// holds.
fn entry_sum(mode: u32, kind: u8, data: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&mode.to_le_bytes());
    h.update(&[kind]);
    h.update(data);
    *h.finalize().as_bytes()
}

/// Files at least this large are hashed with all cores (blake3's tree mode).
const PARALLEL_FILE: u64 = 4 << 20;

/// The blake3 hash of a file's content.
fn content_hash(fd: &OwnedFd, size: u64) -> std::io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    if size >= PARALLEL_FILE {
        let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
        h.update_mmap_rayon(&proc)?;
    } else {
        let file = std::fs::File::from(rustix::io::dup(fd)?);
        h.update_reader(&file)?;
    }
    Ok(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

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

    #[test]
    fn modes_links_and_shape_count() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = |x: &str| d.path().join(x);
        std::fs::create_dir_all(p("t/sub")).unwrap();
        std::fs::write(p("t/sub/f"), "1").unwrap();
        std::os::unix::fs::symlink("sub/f", p("t/link")).unwrap();
        let c1 = checksum(d.path(), None, &sel("t")).unwrap();
        std::fs::set_permissions(p("t/sub/f"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let c2 = checksum(d.path(), None, &sel("t")).unwrap();
        assert_ne!(c1, c2, "a mode change counts");
        std::fs::remove_file(p("t/link")).unwrap();
        std::os::unix::fs::symlink("sub/g", p("t/link")).unwrap();
        let c3 = checksum(d.path(), None, &sel("t")).unwrap();
        assert_ne!(c2, c3, "a symlink target counts");
        std::fs::create_dir(p("t/empty")).unwrap();
        let c4 = checksum(d.path(), None, &sel("t")).unwrap();
        assert_ne!(c3, c4, "an empty directory is part of the shape");
        // The same content moved to another name is another tree.
        std::fs::rename(p("t/sub/f"), p("t/sub/f2")).unwrap();
        assert_ne!(c4, checksum(d.path(), None, &sel("t")).unwrap());
    }

    #[derive(Default)]
    struct Counting {
        map: Mutex<HashMap<FileStamp, [u8; 32]>>,
        misses: Mutex<usize>,
    }

    impl ContentHashes for Counting {
        fn get(&self, s: &FileStamp) -> Option<[u8; 32]> {
            let r = self.map.lock().unwrap().get(s).copied();
            if r.is_none() {
                *self.misses.lock().unwrap() += 1;
            }
            r
        }
        fn put(&self, s: FileStamp, h: [u8; 32]) {
            self.map.lock().unwrap().insert(s, h);
        }
    }

    #[test]
    fn stat_cache_spares_reads_and_gives_the_same_checksum() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..50 {
            let dir = d.path().join(format!("m{}", i % 5));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("f{i}")), format!("{i}")).unwrap();
        }
        let cache = Counting::default();
        let a = checksum_with(d.path(), None, &sel("/"), &cache).unwrap();
        assert_eq!(*cache.misses.lock().unwrap(), 50);
        let b = checksum_with(d.path(), None, &sel("/"), &cache).unwrap();
        assert_eq!(*cache.misses.lock().unwrap(), 50, "nothing is read twice");
        assert_eq!(a, b);
        assert_eq!(a.total, checksum(d.path(), None, &sel("/")).unwrap());
        assert_eq!(a.paths.len(), 50 + 5 + 1);
        assert_eq!(a.paths[0].path, "");
        assert_eq!(a.paths[1].path, "m0");
        assert_eq!(a.paths[2].path, "m0/f0");
        std::fs::write(d.path().join("m3/f3"), "changed").unwrap();
        let c = checksum_with(d.path(), None, &sel("/"), &cache).unwrap();
        assert_eq!(
            *cache.misses.lock().unwrap(),
            51,
            "only the changed file is read"
        );
        let changed: Vec<&str> = a
            .paths
            .iter()
            .zip(&c.paths)
            .filter(|(x, y)| x.sum != y.sum)
            .map(|(x, _)| x.path.as_str())
            .collect();
        assert_eq!(changed, vec!["m3/f3"]);
    }

    #[test]
    fn wildcards_and_excludes_select_exactly() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.txt"), "a").unwrap();
        std::fs::write(d.path().join("b.txt"), "b").unwrap();
        std::fs::write(d.path().join("c.md"), "c").unwrap();
        let txt = checksum_with(d.path(), None, &sel("*.txt"), &NoContentHashes).unwrap();
        let names: Vec<&str> = txt.paths.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(names, vec!["a.txt", "b.txt"]);
        std::fs::write(d.path().join("c.md"), "changed").unwrap();
        assert_eq!(
            txt.total,
            checksum(d.path(), None, &sel("*.txt")).unwrap(),
            "a file the wildcard does not match does not count"
        );
        let exclude = vec!["b.txt".to_string()];
        let s = Selection {
            exclude: &exclude,
            ..sel("/")
        };
        let ex = checksum_with(d.path(), None, &s, &NoContentHashes).unwrap();
        let names: Vec<&str> = ex.paths.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(names, vec!["", "a.txt", "c.md"]);
    }
}
