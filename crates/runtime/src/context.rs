//! Local sources (the build context) as the solver reads them ([`Source`], [`LocalContext`]),
//! and content checksums of what a COPY selects from them, for cache keys.
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
use std::path::{Path, PathBuf};

use crate::Error;
use crate::copy::{SourceTree, resolve_sources};
use crate::fsops::{Root, list_dir, open_nofollow, stat_at};
use xbuild_dockerignore::{Filter, FilterState, Verdict};
pub use xbuild_llb::FileStamp;

/// What kind of file a mode is, in words, for errors.
fn kind_of(ft: FileType) -> &'static str {
    match ft {
        FileType::Directory => "directory",
        FileType::Fifo => "named pipe (FIFO)",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Symlink => "symlink",
        _ => "special file",
    }
}

/// `st` unless it is not a regular file's: then [`Error::NotARegularFile`] naming `path`.
fn regular(st: rustix::fs::Stat, path: &Path) -> Result<rustix::fs::Stat, Error> {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(st),
        ft => Err(Error::NotARegularFile {
            path: path.to_path_buf(),
            kind: kind_of(ft),
        }),
    }
}

fn read_fd(fd: OwnedFd, path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let st = regular(
        rustix::fs::fstat(&fd).map_err(|e| Error::io(path, e.into()))?,
        path,
    )?;
    let too_large = || Error::BuildFileTooLarge {
        path: path.to_path_buf(),
        limit: MAX_BUILD_FILE,
    };
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > MAX_BUILD_FILE {
        return Err(too_large());
    }
    let mut out = Vec::new();
    // A file that grows while it is read stops one byte past the limit.
    std::fs::File::from(fd)
        .take(MAX_BUILD_FILE + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(path, e))?;
    if out.len() as u64 > MAX_BUILD_FILE {
        return Err(too_large());
    }
    Ok(out)
}

/// The largest Dockerfile or `.dockerignore` a build reads: 16 MiB, hundreds of times the
/// largest hand-written ones (BuildKit bounds each Dockerfile line to 64 KiB instead).
pub const MAX_BUILD_FILE: u64 = 16 << 20;

/// Reads the build's own small file `path` (its Dockerfile, a `.dockerignore`) without ever
/// blocking on it; `Ok(None)` when it does not exist. Inside `context`, its symlinks resolve
/// beneath the context, as BuildKit reads a Dockerfile from its context (a symlink to a file
/// elsewhere in the context works, one leading out of it finds nothing); elsewhere (`-f` naming
/// a file outside the context) it is opened as named. Anything but a regular file (a FIFO, a
/// socket, a device, a directory) is refused with [`Error::NotARegularFile`], before it is
/// opened for reading.
pub fn read_build_file(context: &Path, path: &Path) -> Result<Option<Vec<u8>>, Error> {
    use rustix::fs::{Mode, OFlags};
    if let Ok(rel) = path.strip_prefix(context) {
        if !context.is_dir() {
            return Ok(None);
        }
        let root = Root::open(context)?;
        let Some(found) = root.resolve(&rel.to_string_lossy(), true)? else {
            return Ok(None);
        };
        // The `O_PATH` handle is checked first: a FIFO is never opened for reading.
        regular(
            rustix::fs::fstat(&found).map_err(|e| Error::io(path, e.into()))?,
            path,
        )?;
        let fd = Root::reopen(&found, false).map_err(|e| Error::io(path, e))?;
        return read_fd(fd, path).map(Some);
    }
    match rustix::fs::stat(path) {
        Ok(st) => {
            regular(st, path)?;
        }
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(Error::io(path, e.into())),
    }
    // Non-blocking: a FIFO swapped in after the check still opens at once (and is refused).
    match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => read_fd(fd, path).map(Some),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(Error::io(path, e.into())),
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

impl<'a> Selection<'a> {
    /// What the graph's copy action `c` selects in its source.
    pub fn of(c: &'a xbuild_llb::CopyAction) -> Self {
        Selection {
            src: &c.src,
            allow_wildcard: c.allow_wildcard,
            follow: c.follow_symlinks,
            include: &c.include_patterns,
            exclude: &c.exclude_patterns,
        }
    }
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

/// A local source a build reads in place (the build context): what the solver needs of it, so
/// that it runs on any implementation (the real one is [`LocalContext`]).
pub trait Source: Send + Sync + std::fmt::Debug {
    /// The directory on the host holding the source; copies and bind mounts read it through a
    /// [`Root`], so that nothing in it can lead out of it.
    fn dir(&self) -> &Path;

    /// The checksum of what `sel` selects in the source, seen through its `filter`
    /// (`.dockerignore`), hashing through `hashes`; with `paths`, also the checksum of every
    /// path covered (see [`checksum_with`]).
    fn checksum(
        &self,
        filter: Option<&Filter>,
        sel: &Selection<'_>,
        hashes: &dyn ContentHashes,
        paths: bool,
    ) -> Result<Checksum, Error>;

    /// The total [`checksum`](Self::checksum) of what `sel` selects, when the source knows
    /// it without reading anything (a remote worker's context, checksummed for the same
    /// manifest before); `None` by default.
    fn known_checksum(&self, _filter: Option<&Filter>, _sel: &Selection<'_>) -> Option<[u8; 32]> {
        None
    }
}

/// A build context that is a directory on this machine.
#[derive(Clone, Debug)]
pub struct LocalContext {
    dir: PathBuf,
}

impl LocalContext {
    /// The context at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalContext { dir: dir.into() }
    }
}

impl Source for LocalContext {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn checksum(
        &self,
        filter: Option<&Filter>,
        sel: &Selection<'_>,
        hashes: &dyn ContentHashes,
        paths: bool,
    ) -> Result<Checksum, Error> {
        checksum_with(&self.dir, filter, sel, hashes, paths)
    }
}

/// The checksum of what `sel` selects in the tree at `root`, seen through the context's
/// `filter` (`.dockerignore`). Sources that do not exist contribute their absence.
pub fn checksum(
    root: &Path,
    filter: Option<&Filter>,
    sel: &Selection<'_>,
) -> Result<[u8; 32], Error> {
    Ok(checksum_with(root, filter, sel, &NoContentHashes, false)?.total)
}

/// Like [`checksum`], through a stat cache; with `paths`, also the checksum of every path
/// covered (for telling which files changed).
///
/// A directory's checksum is a Merkle hash: its mode and, in name order, each kept child's
/// name and checksum. So the total covers every name, type, mode, content and link target
/// below the selection, and the tree's shape.
pub fn checksum_with(
    root: &Path,
    filter: Option<&Filter>,
    sel: &Selection<'_>,
    hashes: &dyn ContentHashes,
    paths: bool,
) -> Result<Checksum, Error> {
    let tree = Root::open(root)?;
    let source = SourceTree {
        root: &tree,
        filter,
        name: "build context",
    };
    let action = Filter::new(sel.include, sel.exclude)?;
    let matches = resolve_sources(&source, sel.src, sel.allow_wildcard, sel.follow)?;
    let walker = Walker {
        ctx: filter,
        action: action.as_ref(),
        hashes,
        paths,
    };
    let per_match: Vec<Result<Option<Sum>, Error>> = matches
        .par_iter()
        .map(|m| {
            let Some(fd) = tree.resolve(m, sel.follow)? else {
                return Ok(None);
            };
            let at = root.join(m);
            let ioerr = |e: std::io::Error| Error::io(&at, e);
            let st = rustix::fs::fstat(&fd).map_err(|e| ioerr(e.into()))?;
            let leaf = |sum: [u8; 32]| Sum {
                sum,
                children: 0,
                paths: if paths {
                    vec![PathSum {
                        path: m.clone(),
                        sum,
                    }]
                } else {
                    Vec::new()
                },
            };
            Ok(Some(match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    let dir = Root::reopen(&fd, true).map_err(ioerr)?;
                    let cst = filter.map(|f| f.state_of(m).1).unwrap_or_default();
                    let rel = Rel {
                        path: m,
                        ctx: m,
                        act: "",
                    };
                    walker
                        .dir(dir.as_fd(), st.st_mode, &rel, &cst, &FilterState::default())
                        .map_err(|e| ioerr(e.into_io()))?
                }
                FileType::RegularFile => {
                    let f = Root::reopen(&fd, false).map_err(ioerr)?;
                    leaf(file_sum(&f, &st, hashes).map_err(ioerr)?)
                }
                FileType::Symlink => {
                    // An O_PATH handle of the link itself: an empty name reads it.
                    let link =
                        rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(|e| ioerr(e.into()))?;
                    leaf(entry_sum(st.st_mode, b'l', link.as_bytes()))
                }
                _ => leaf(entry_sum(st.st_mode, b'o', &st.st_rdev.to_le_bytes())),
            }))
        })
        .collect();
    let mut total = blake3::Hasher::new();
    total.update(b"xbuild-context-v4");
    total.update(&(matches.len() as u64).to_le_bytes());
    let mut out = Vec::new();
    for (m, sum) in matches.iter().zip(per_match) {
        total.update(&(m.len() as u64).to_le_bytes());
        total.update(m.as_bytes());
        match sum? {
            Some(s) => {
                total.update(b"+");
                total.update(&s.sum);
                out.extend(s.paths);
            }
            None => {
                total.update(b"-");
            }
        }
    }
    Ok(Checksum {
        total: *total.finalize().as_bytes(),
        paths: out,
    })
}

/// The checksum of an entry (a directory: of everything kept below it) and, when asked for,
/// of each path in it.
struct Sum {
    sum: [u8; 32],
    paths: Vec<PathSum>,
    /// For a directory: how many of its children are kept.
    children: u64,
}

impl Sum {
    fn is_empty_dir(&self) -> bool {
        self.children == 0
    }
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
    let mut s = String::with_capacity(base.len() + name.len() + 1);
    s.push_str(base);
    if !base.is_empty() {
        s.push('/');
    }
    s.push_str(name);
    s
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
    /// Collect each path's checksum.
    paths: bool,
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

impl Work {
    fn name(&self) -> &OsString {
        match self {
            Work::Dir { name, .. } | Work::Leaf { name, .. } => name,
        }
    }
}

impl Walker<'_> {
    /// The checksum of the directory `dir` (mode `mode`) with what is selected below it;
    /// subdirectories and files are handled in parallel.
    fn dir(
        &self,
        dir: BorrowedFd<'_>,
        mode: u32,
        rel: &Rel<'_>,
        cst: &FilterState,
        ast: &FilterState,
    ) -> Result<Sum, WalkError> {
        let err = |source: std::io::Error| WalkError {
            path: rel.path.to_string(),
            source,
        };
        let all = Verdict {
            keep: true,
            excluded: false,
        };
        let mut work = Vec::new();
        for (name, st) in stat_entries(dir).map_err(err)? {
            let Some(st) = st else {
                continue;
            };
            let n = name.to_string_lossy();
            // What a filter says of this entry, and the state and path its children use.
            let check = |filter: Option<&Filter>, base: &str, state: &FilterState| match filter {
                Some(f) => {
                    let p = join(base, &n);
                    let (v, s) = f.check(&p, state);
                    (v, s, p)
                }
                None => (all, FilterState::default(), String::new()),
            };
            let (cv, cst2, cp) = check(self.ctx, rel.ctx, cst);
            let (av, ast2, ap) = check(self.action, rel.act, ast);
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
        let parts: Vec<(OsString, Result<Option<Sum>, WalkError>)> = work
            .into_par_iter()
            .map(|w| (w.name().clone(), self.entry(dir, rel, w)))
            .collect();
        let mut h = blake3::Hasher::new();
        h.update(&mode.to_le_bytes());
        h.update(b"D");
        let mut below = Vec::new();
        let mut kept = 0u64;
        for (name, p) in parts {
            let Some(s) = p? else { continue };
            kept += 1;
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_encoded_bytes());
            h.update(&s.sum);
            below.extend(s.paths);
        }
        h.update(&kept.to_le_bytes());
        let mut paths = Vec::new();
        if self.paths {
            paths.reserve(below.len() + 1);
            paths.push(PathSum {
                path: rel.path.to_string(),
                sum: entry_sum(mode, b'd', &[]),
            });
            paths.extend(below);
        }
        Ok(Sum {
            sum: *h.finalize().as_bytes(),
            paths,
            children: kept,
        })
    }

    /// The checksum of one entry of `dir`; `None` for a directory only on the way to kept
    /// paths when nothing below it is kept.
    fn entry(&self, dir: BorrowedFd<'_>, rel: &Rel<'_>, w: Work) -> Result<Option<Sum>, WalkError> {
        match w {
            Work::Leaf { name, st } => {
                let sum = leaf_sum(dir, &name, &st, self.hashes).map_err(|source| WalkError {
                    path: join(rel.path, &name.to_string_lossy()),
                    source,
                })?;
                let paths = if self.paths {
                    vec![PathSum {
                        path: join(rel.path, &name.to_string_lossy()),
                        sum,
                    }]
                } else {
                    Vec::new()
                };
                Ok(Some(Sum {
                    sum,
                    paths,
                    children: 0,
                }))
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
                let s = self.dir(sub.as_fd(), st.st_mode, &sub_rel, &cst, &ast)?;
                // A directory only on the way to something kept is part of the tree's shape
                // when anything below it is.
                if !keep && s.is_empty_dir() {
                    return Ok(None);
                }
                Ok(Some(s))
            }
        }
    }
}

/// Directories with at least this many entries have them stat'ed in parallel.
const PARALLEL_STAT_MIN: usize = 64;

/// The entries of `dir` in name order, each with its stat (`None`: it vanished meanwhile);
/// a wide directory's entries are stat'ed in parallel, the order stays the same.
fn stat_entries(dir: BorrowedFd<'_>) -> std::io::Result<Vec<(OsString, Option<Stat>)>> {
    let names = list_dir(dir)?;
    let stat = |name: OsString| stat_at(dir, &name).map(|st| (name, st));
    if names.len() >= PARALLEL_STAT_MIN {
        names.into_par_iter().map(stat).collect()
    } else {
        names.into_iter().map(stat).collect()
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
            let stamp = crate::fsops::stamp_of(st);
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
    let stamp = crate::fsops::stamp_of(st);
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
        let a = checksum_with(d.path(), None, &sel("/"), &cache, true).unwrap();
        assert_eq!(*cache.misses.lock().unwrap(), 50);
        let b = checksum_with(d.path(), None, &sel("/"), &cache, true).unwrap();
        assert_eq!(*cache.misses.lock().unwrap(), 50, "nothing is read twice");
        assert_eq!(a, b);
        assert_eq!(a.total, checksum(d.path(), None, &sel("/")).unwrap());
        assert_eq!(a.paths.len(), 50 + 5 + 1);
        assert_eq!(a.paths[0].path, "");
        assert_eq!(a.paths[1].path, "m0");
        assert_eq!(a.paths[2].path, "m0/f0");
        std::fs::write(d.path().join("m3/f3"), "changed").unwrap();
        let c = checksum_with(d.path(), None, &sel("/"), &cache, true).unwrap();
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
        let txt = checksum_with(d.path(), None, &sel("*.txt"), &NoContentHashes, true).unwrap();
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
        let ex = checksum_with(d.path(), None, &s, &NoContentHashes, true).unwrap();
        let names: Vec<&str> = ex.paths.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(names, vec!["", "a.txt", "c.md"]);
    }

    #[test]
    fn wide_directories_walked_in_parallel_give_an_ordered_deterministic_result() {
        let d = tempfile::tempdir().unwrap();
        let n = PARALLEL_STAT_MIN * 4;
        for i in 0..n {
            std::fs::write(d.path().join(format!("f{i:04}")), format!("{i}")).unwrap();
        }
        let first = checksum_with(d.path(), None, &sel("/"), &NoContentHashes, true).unwrap();
        let names: Vec<&str> = first.paths.iter().map(|p| p.path.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "paths come in name order");
        assert_eq!(names.len(), n + 1);
        for _ in 0..5 {
            let again = checksum_with(d.path(), None, &sel("/"), &NoContentHashes, true).unwrap();
            assert_eq!(again, first);
        }
        std::fs::remove_file(d.path().join("f0100")).unwrap();
        assert_ne!(checksum(d.path(), None, &sel("/")).unwrap(), first.total);
    }
}
