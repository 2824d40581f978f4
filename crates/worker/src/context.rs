//! The worker's own file store and context layouts: contents kept by blake3 hash
//! ([`FileStore`]), a client's manifest checked as a whole tree before anything touches the
//! disk ([`validate`]), and a build's context laid out from the store one name at a time,
//! never following a symlink ([`materialize`]); layouts are checked before reuse
//! ([`repair`]) and collected when stale ([`collect_garbage`]).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use xbuild_cache::statcache::StatCache;

use xbuild::worker::context::{manifest_digest, stamp_of_stat};
use xbuild::worker::proto::{Entry, ManifestChunk, entry::Kind};
use xbuild_llb::{FileStamp, nanos};

use crate::{Error, LayoutProblem};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The longest entry path a manifest may list, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// The longest name of one path component, in bytes (Linux's `NAME_MAX`).
pub const MAX_NAME: usize = 255;
/// The most components an entry path may have (laying a context out holds one open
/// directory per level).
pub const MAX_DEPTH: usize = 256;
/// The longest symlink target, in bytes.
pub const MAX_TARGET: usize = 4095;
/// The most entries a manifest may list.
pub const MAX_ENTRIES: u64 = 1 << 22;

/// What is wrong with a manifest entry (see [`validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestProblem {
    /// The path is empty, absolute, or has an empty, `.` or `..` component.
    #[error(
        "not a clean relative path inside the context (no leading `/`, no empty, `.` or `..` component)"
    )]
    NotRelative,
    /// The path holds a NUL byte.
    #[error("the path holds a NUL byte")]
    Nul,
    /// The path is longer than [`MAX_PATH`].
    #[error("the path is longer than {MAX_PATH} bytes")]
    PathTooLong,
    /// A component is longer than [`MAX_NAME`].
    #[error("a path component is longer than {MAX_NAME} bytes")]
    NameTooLong,
    /// The path has more than [`MAX_DEPTH`] components.
    #[error("the path is more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// The entry does not come after the one before it: listed twice, or out of order.
    #[error(
        "it comes after {previous:?}: a manifest lists each entry once, parents before children, siblings in name order"
    )]
    OutOfOrder {
        /// The entry before it (cut short when long).
        previous: String,
    },
    /// The entry lies below one the manifest lists as a file or a symlink.
    #[error("it lies below {parent:?}, which the manifest lists as a {kind}, not a directory")]
    UnderNonDirectory {
        /// That entry.
        parent: String,
        /// What it is (`file`, `symlink`).
        kind: &'static str,
    },
    /// The entry's kind is none the protocol defines.
    #[error("unknown entry kind {0}")]
    UnknownKind(i32),
    /// The mode has bits other than permissions, setuid, setgid and sticky.
    #[error(
        "mode {0:#o} has bits other than permissions, setuid, setgid and sticky (a device, pipe or socket cannot be sent)"
    )]
    Mode(u32),
    /// A file's content digest is not 32 bytes.
    #[error("the file's content digest is {0} bytes, not 32")]
    Digest(usize),
    /// A symlink's target is empty, too long or holds a NUL byte.
    #[error("the symlink target is empty, longer than {MAX_TARGET} bytes or holds a NUL byte")]
    Target,
}

/// `s` cut to at most 200 bytes (on a character boundary), for an error message.
fn shown(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// What is wrong with the path `p`, if anything.
fn check_path(p: &str) -> Result<(), ManifestProblem> {
    if p.len() > MAX_PATH {
        return Err(ManifestProblem::PathTooLong);
    }
    if p.contains('\0') {
        return Err(ManifestProblem::Nul);
    }
    let mut depth = 0;
    for c in p.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return Err(ManifestProblem::NotRelative);
        }
        if c.len() > MAX_NAME {
            return Err(ManifestProblem::NameTooLong);
        }
        depth += 1;
    }
    if depth > MAX_DEPTH {
        return Err(ManifestProblem::TooDeep);
    }
    Ok(())
}

/// The order a scan lists a context in: component by component, each by its bytes (parents
/// before children, siblings by name).
fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Checks a manifest from a client as a whole tree, before anything touches the disk: every
/// path is a clean relative path (no leading `/`, no empty, `.` or `..` component, no NUL,
/// within [`MAX_PATH`], [`MAX_NAME`] and [`MAX_DEPTH`]); entries come in the order a scan
/// lists them, each once (parents before children, siblings by name); nothing lies below an
/// entry that is not a directory (a directory a scan leaves out of the manifest, because
/// `.dockerignore` excludes it but not everything in it, is laid out as a plain directory);
/// kinds are known; modes are permission bits with setuid, setgid and sticky (what a local
/// build keeps of its context; no file type bits); files have 32-byte digests and symlinks a
/// target.
pub fn validate(entries: &[Entry]) -> Result<(), Error> {
    if entries.len() as u64 > MAX_ENTRIES {
        return Err(Error::TooManyEntries { limit: MAX_ENTRIES });
    }
    let mut non_dirs: HashMap<&str, &'static str> = HashMap::new();
    let mut previous: Option<&str> = None;
    for (index, e) in entries.iter().enumerate() {
        let p = e.path.as_str();
        let bad = |problem| Error::Manifest {
            index,
            path: shown(p),
            problem,
        };
        check_path(p).map_err(bad)?;
        if let Some(q) = previous
            && path_order(q, p) != std::cmp::Ordering::Less
        {
            return Err(bad(ManifestProblem::OutOfOrder { previous: shown(q) }));
        }
        for (i, _) in p.match_indices('/') {
            let parent = &p[..i];
            if let Some(kind) = non_dirs.get(parent) {
                return Err(bad(ManifestProblem::UnderNonDirectory {
                    parent: shown(parent),
                    kind,
                }));
            }
        }
        let kind = Kind::try_from(e.kind).map_err(|_| bad(ManifestProblem::UnknownKind(e.kind)))?;
        if e.mode & !0o7777 != 0 {
            return Err(bad(ManifestProblem::Mode(e.mode)));
        }
        match kind {
            Kind::File if e.digest.len() != 32 => {
                return Err(bad(ManifestProblem::Digest(e.digest.len())));
            }
            Kind::File => {
                non_dirs.insert(p, "file");
            }
            Kind::Symlink => {
                if e.target.is_empty() || e.target.len() > MAX_TARGET || e.target.contains('\0') {
                    return Err(bad(ManifestProblem::Target));
                }
                non_dirs.insert(p, "symlink");
            }
            Kind::Dir => {}
        }
        previous = Some(p);
    }
    Ok(())
}

/// Creates the directory `dir` and any missing parent open to root alone (`0o700`), and
/// makes `dir` itself so when it exists: the worker's copies of clients' files are not for
/// other local users to read.
pub fn private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// A worker's content-addressed store of context files: `DIR/ab/abcd…` by blake3 hash.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The store in `dir` (created when missing). It holds copies of clients' files: the
    /// store and its directories are open to root alone (`0o700`), whatever they were.
    pub fn open(dir: PathBuf) -> Result<Self, Error> {
        let tmp = dir.join("tmp");
        private_dir(&tmp)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        Ok(FileStore { dir })
    }

    /// Where content `digest` is kept.
    pub fn path(&self, digest: &[u8; 32]) -> PathBuf {
        let hex = hex::encode(digest);
        self.dir.join(&hex[..2]).join(hex)
    }

    /// The contents of `entries` this store lacks, each once.
    pub fn missing(&self, entries: &[Entry]) -> Vec<[u8; 32]> {
        let mut out = BTreeSet::new();
        for e in entries {
            if e.kind() != Kind::File {
                continue;
            }
            if let Ok(d) = <[u8; 32]>::try_from(e.digest.as_slice())
                && !self.path(&d).exists()
            {
                out.insert(d);
            }
        }
        out.into_iter().collect()
    }

    /// Starts receiving content `digest`.
    pub fn begin(&self, digest: [u8; 32]) -> Result<Incoming, Error> {
        let tmp =
            self.dir
                .join("tmp")
                .join(format!("{}.{}", hex::encode(digest), rand::random::<u64>()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        Ok(Incoming {
            digest,
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            bytes: 0,
            dest: self.path(&digest),
        })
    }
}

/// One content being received into a [`FileStore`]; committed only when its hash matches.
#[derive(Debug)]
pub struct Incoming {
    digest: [u8; 32],
    tmp: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    hasher: blake3::Hasher,
    /// Bytes received so far.
    pub bytes: u64,
    dest: PathBuf,
}

impl Incoming {
    /// The content being received.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Appends a chunk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        self.file.write_all(chunk).map_err(io(&self.tmp))
    }

    /// Checks the hash and moves the content into the store.
    pub fn commit(mut self) -> Result<(), String> {
        self.file
            .flush()
            .map_err(|e| format!("{}: {e}", self.tmp.display()))?;
        if self.hasher.finalize().as_bytes() != &self.digest {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(format!(
                "the content sent for {} does not have that blake3 hash",
                hex::encode(self.digest)
            ));
        }
        if let Some(parent) = self.dest.parent() {
            private_dir(parent).map_err(|e| e.to_string())?;
        }
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| format!("{}: {e}", self.dest.display()))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// What a layout recorded of the manifest it was laid out from (`DIR.manifest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaidOut {
    /// The manifest's [`manifest_digest`].
    pub digest: [u8; 32],
    /// Its entries.
    pub entries: u64,
    /// Its file bytes.
    pub bytes: u64,
}

/// The record of a layout (`DIR.manifest`), if it has one.
fn read_record(dir: &Path) -> Option<LaidOut> {
    let text = std::fs::read_to_string(dir.with_extension("manifest")).ok()?;
    let mut words = text.split_whitespace();
    let digest = <[u8; 32]>::try_from(hex::decode(words.next()?).ok()?.as_slice()).ok()?;
    Some(LaidOut {
        digest,
        entries: words.next()?.parse().ok()?,
        bytes: words.next()?.parse().ok()?,
    })
}

/// When `dir` holds a layout of exactly the manifest with digest `digest`, marks it used
/// (for [`collect_garbage`]) and returns its record. The layout is not checked here: a build
/// reads it only after [`repair`] checked it (context checksums of a manifest depend only on
/// what the manifest lists).
pub fn laid_out(dir: &Path, digest: &[u8; 32]) -> Option<LaidOut> {
    let record = read_record(dir).filter(|r| &r.digest == digest)?;
    let index_path = dir.with_extension("index");
    if !dir.is_dir() || !index_path.is_file() || !dir.with_extension("entries").is_file() {
        return None;
    }
    filetime::set_file_mtime(&index_path, filetime::FileTime::now()).ok()?;
    Some(record)
}

/// Checks that nothing in the layout `dir` changed since the worker wrote it: every entry,
/// the directory itself included, still has the device, inode, type, mode, size, mtime and
/// ctime recorded then (a write, a chmod, a replaced, added or removed entry all change one of
/// them). When something did, lays it out again from the manifest it was laid out from
/// (`DIR.entries`, which must still have the recorded digest) and the verified contents of
/// `store`. Returns whether it had to.
pub fn repair(dir: &Path, store: &FileStore, hashes: &StatCache) -> Result<bool, Error> {
    if intact(dir) {
        return Ok(false);
    }
    let bad = |problem| Error::LayoutChanged {
        dir: dir.to_path_buf(),
        problem,
    };
    let record = read_record(dir).ok_or_else(|| bad(LayoutProblem::RecordGone))?;
    let path = dir.with_extension("entries");
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let entries = <ManifestChunk as prost::Message>::decode(bytes.as_slice())
        .map_err(|_| bad(LayoutProblem::ManifestDamaged))?
        .entries;
    if manifest_digest(&entries) != record.digest {
        return Err(bad(LayoutProblem::ManifestNotRecorded));
    }
    validate(&entries).map_err(|e| bad(LayoutProblem::BadManifest(Box::new(e))))?;
    if !store.missing(&entries).is_empty() {
        return Err(bad(LayoutProblem::ContentsMissing));
    }
    materialize(dir, &entries, store, hashes)?;
    Ok(true)
}

/// What a layout entry's status was when the worker wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Status {
    mode: u32,
    stamp: FileStamp,
}

impl Status {
    fn of(md: &std::fs::Metadata) -> Self {
        Status {
            mode: md.mode(),
            stamp: FileStamp::of_metadata(md),
        }
    }

    fn of_stat(st: &rustix::fs::Stat) -> Self {
        Status {
            mode: st.st_mode,
            stamp: stamp_of_stat(st),
        }
    }
}

const STATUS_MAGIC: &[u8; 8] = b"XBLAYST1";

/// Writes the status of every entry of the layout `dir` (and of `dir` itself) to
/// `DIR.status`: what [`intact`] checks.
fn record_status(dir: &Path, entries: &[Entry]) -> Result<HashMap<String, Status>, Error> {
    let mut paths: Vec<&str> = vec![""];
    paths.extend(entries.iter().map(|e| e.path.as_str()));
    let statuses: Vec<Result<Status, Error>> = paths
        .par_iter()
        .map(|p| {
            let abs = dir.join(p);
            std::fs::symlink_metadata(&abs)
                .map(|m| Status::of(&m))
                .map_err(io(&abs))
        })
        .collect();
    let mut body = Vec::with_capacity(16 + paths.len() * 72);
    body.extend_from_slice(STATUS_MAGIC);
    body.extend_from_slice(&(paths.len() as u64).to_le_bytes());
    let mut out = HashMap::with_capacity(paths.len());
    for (p, st) in paths.iter().zip(statuses) {
        let st = st?;
        body.extend_from_slice(&(p.len() as u32).to_le_bytes());
        body.extend_from_slice(p.as_bytes());
        body.extend_from_slice(&st.mode.to_le_bytes());
        let s = st.stamp;
        for v in [s.dev, s.ino, s.size, s.mtime_ns as u64, s.ctime_ns as u64] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        out.insert((*p).to_string(), st);
    }
    let sum = blake3::hash(&body);
    body.extend_from_slice(sum.as_bytes());
    let path = dir.with_extension("status");
    std::fs::write(&path, body).map_err(io(&path))?;
    Ok(out)
}

/// The statuses `DIR.status` records; `None` when there is none or it is damaged.
fn read_status(dir: &Path) -> Option<Vec<(String, Status)>> {
    let bytes = std::fs::read(dir.with_extension("status")).ok()?;
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(32)?);
    if blake3::hash(body).as_bytes() != sum || body.get(..8)? != STATUS_MAGIC {
        return None;
    }
    let count = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?) as usize;
    let mut at = 16;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = body.get(at..at + n)?;
        at += n;
        Some(s)
    };
    let mut out = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let path = std::str::from_utf8(take(len)?).ok()?.to_string();
        let mode = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let mut v = [0u64; 5];
        for x in &mut v {
            *x = u64::from_le_bytes(take(8)?.try_into().ok()?);
        }
        let stamp = FileStamp {
            dev: v[0],
            ino: v[1],
            size: v[2],
            mtime_ns: v[3] as i64,
            ctime_ns: v[4] as i64,
        };
        out.push((path, Status { mode, stamp }));
    }
    (at == body.len()).then_some(out)
}

/// True when every entry `DIR.status` records (`dir` itself included) still has that status.
fn intact(dir: &Path) -> bool {
    let Some(statuses) = read_status(dir) else {
        return false;
    };
    statuses.par_iter().all(|(p, want)| {
        std::fs::symlink_metadata(dir.join(p)).is_ok_and(|m| Status::of(&m) == *want)
    })
}

/// Makes `dir` hold exactly `entries` (contents from `store`), after checking them with
/// [`validate`]: entries the worker wrote and nobody changed since (see [`laid_out`]) are left
/// alone when type, size, mode and mtime match, everything else is replaced and what the
/// manifest does not list is removed. Returns how many files were written. Records beside
/// `dir` what each file holds (`DIR.index`), the status of every entry (`DIR.status`, see
/// [`repair`]), the manifest (`DIR.entries`) and its digest, entry count and bytes
/// (`DIR.manifest`); until it succeeds the records are absent, so a layout that failed is
/// never taken as laid out, and the next one checks every entry again. Each file's content
/// hash goes into `hashes` (the stat cache builds read), so hashing the context again reads
/// no file.
///
/// Nothing is looked up by path below `dir`: every step opens one name relative to its
/// directory's descriptor without following a symlink, so nothing already in `dir` (a
/// symlink left by an earlier manifest, a change made behind the worker's back) can send a
/// write, a mode change or a removal outside it.
pub fn materialize(
    dir: &Path,
    entries: &[Entry],
    store: &FileStore,
    hashes: &StatCache,
) -> Result<usize, Error> {
    validate(entries)?;
    let index_path = dir.with_extension("index");
    let manifest_path = dir.with_extension("manifest");
    let status_path = dir.with_extension("status");
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let root = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(dir)(e.into()))?;
    let old: HashMap<String, String> = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let old_status: HashMap<String, Status> =
        read_status(dir).unwrap_or_default().into_iter().collect();
    // Written again only once the directory matches them.
    let _ = std::fs::remove_file(&manifest_path);
    let _ = std::fs::remove_file(&status_path);
    let _ = std::fs::remove_file(dir.with_extension("entries"));
    let _ = std::fs::remove_file(&index_path);
    let mut index = HashMap::new();
    // Directories a scan left out (`.dockerignore` excludes them, not all they hold) are kept
    // as plain directories.
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    for e in entries {
        kept.insert(e.path.as_str());
        for (i, _) in e.path.match_indices('/') {
            kept.insert(&e.path[..i]);
        }
    }
    remove_unlisted(dir, root.as_fd(), "", &kept)?;
    let mut layout = Layout {
        dir,
        root,
        open: Vec::new(),
    };
    let mut written = 0;
    let mut files = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let (parent, name) = match e.path.rfind('/') {
            Some(i) => (&e.path[..i], &e.path[i + 1..]),
            None => ("", e.path.as_str()),
        };
        let at = layout.enter(parent)?;
        let abs = dir.join(&e.path);
        let have = lstat_at(at, name).map_err(io(&abs))?;
        match e.kind() {
            Kind::Dir => {
                let fd = dir_at(at, name, have.as_ref()).map_err(io(&abs))?;
                layout.open.push((e.path.clone(), fd, Some(e)));
            }
            Kind::Symlink => {
                let same = have
                    .as_ref()
                    .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
                    && rustix::fs::readlinkat(at, name, Vec::new())
                        .is_ok_and(|t| t.as_bytes() == e.target.as_bytes());
                if !same {
                    remove_at(at, name, have.as_ref()).map_err(io(&abs))?;
                    rustix::fs::symlinkat(e.target.as_str(), at, name)
                        .map_err(|err| io(&abs)(err.into()))?;
                }
            }
            Kind::File => {
                let hex = hex::encode(&e.digest);
                let same = old.get(&e.path) == Some(&hex)
                    && have.as_ref().is_some_and(|st| {
                        old_status.get(&e.path) == Some(&Status::of_stat(st))
                            && FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                            && st.st_size as u64 == e.size
                            && st.st_mode & 0o7777 == e.mode
                            && nanos(st.st_mtime, st.st_mtime_nsec as i64) == e.mtime_ns
                    });
                index.insert(e.path.clone(), hex);
                let digest =
                    <[u8; 32]>::try_from(e.digest.as_slice()).map_err(|_| Error::Manifest {
                        index: i,
                        path: shown(&e.path),
                        problem: ManifestProblem::Digest(e.digest.len()),
                    })?;
                if !same {
                    remove_at(at, name, have.as_ref()).map_err(io(&abs))?;
                    write_file_at(at, name, &store.path(&digest), e).map_err(io(&abs))?;
                    written += 1;
                }
                files.push((e.path.as_str(), digest));
            }
        }
    }
    // The directories still open get their modes and times, deepest first: writing into
    // them changed their mtimes.
    layout.enter("")?;
    drop(layout);
    let status = record_status(dir, entries)?;
    for (path, digest) in files {
        if let Some(st) = status.get(path) {
            hashes.put_settled(st.stamp, digest);
        }
    }
    let json = serde_json::to_vec(&index).map_err(|e| Error::Io {
        path: index_path.clone(),
        source: e.into(),
    })?;
    std::fs::write(&index_path, json).map_err(io(&index_path))?;
    let bytes: u64 = entries
        .iter()
        .filter(|e| e.kind() == Kind::File)
        .fold(0u64, |sum, e| sum.saturating_add(e.size));
    let record = format!(
        "{} {} {bytes}\n",
        hex::encode(manifest_digest(entries)),
        entries.len()
    );
    let entries_path = dir.with_extension("entries");
    let list = prost::Message::encode_to_vec(&ManifestChunk {
        entries: entries.to_vec(),
        last: true,
    });
    std::fs::write(&entries_path, list).map_err(io(&entries_path))?;
    std::fs::write(&manifest_path, record).map_err(io(&manifest_path))?;
    Ok(written)
}

/// The directories of a layout open along the path being written: each entry's parent is
/// reached from the one before it, one name at a time, never through a symlink.
struct Layout<'a> {
    dir: &'a Path,
    root: OwnedFd,
    /// Open directories below the root, each inside the one before it, with the manifest
    /// entry whose mode and times it gets once everything in it is written.
    open: Vec<(String, OwnedFd, Option<&'a Entry>)>,
}

impl Layout<'_> {
    /// The directory `parent` (relative to the root, `""` for the root), opened: the open
    /// directories that are not above it are closed (and get their modes and times), the
    /// missing ones below opened, created (`0o755`) or made directories.
    fn enter(&mut self, parent: &str) -> Result<BorrowedFd<'_>, Error> {
        while let Some((p, _, _)) = self.open.last() {
            let above = parent == p
                || (parent.starts_with(p.as_str())
                    && parent.as_bytes().get(p.len()) == Some(&b'/'));
            if above {
                break;
            }
            if let Some((p, fd, Some(e))) = self.open.pop() {
                set_dir_meta(&fd, e).map_err(io(&self.dir.join(&p)))?;
            }
        }
        let done = self.open.last().map_or(0, |(p, _, _)| p.len());
        if parent.len() > done {
            let rest = parent[done..].trim_start_matches('/');
            let mut at = done;
            for name in rest.split('/') {
                at = if at == 0 {
                    name.len()
                } else {
                    at + 1 + name.len()
                };
                let here = &parent[..at];
                let abs = self.dir.join(here);
                let base = self
                    .open
                    .last()
                    .map_or(self.root.as_fd(), |(_, fd, _)| fd.as_fd());
                let have = lstat_at(base, name).map_err(io(&abs))?;
                let fd = dir_at(base, name, have.as_ref()).map_err(io(&abs))?;
                self.open.push((here.to_string(), fd, None));
            }
        }
        Ok(self
            .open
            .last()
            .map_or(self.root.as_fd(), |(_, fd, _)| fd.as_fd()))
    }
}

/// The status of `name` in `dir`, not following a symlink; `None` when there is none.
fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> std::io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Makes `name` in `dir` (whose status is `have`) a directory, replacing anything else there
/// (a symlink is removed, never followed), and opens it.
fn dir_at(
    dir: BorrowedFd<'_>,
    name: &str,
    have: Option<&rustix::fs::Stat>,
) -> std::io::Result<OwnedFd> {
    let is_dir = have.is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
    if !is_dir {
        remove_at(dir, name, have)?;
        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755))?;
    }
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Removes `name` from `dir` (whose status is `have`; nothing when `None`), a directory with
/// everything in it, never following a symlink.
fn remove_at(
    dir: BorrowedFd<'_>,
    name: &str,
    have: Option<&rustix::fs::Stat>,
) -> std::io::Result<()> {
    match have {
        None => Ok(()),
        Some(st) => xbuild_runtime::remove_at(
            dir,
            std::ffi::OsStr::new(name),
            FileType::from_raw_mode(st.st_mode) == FileType::Directory,
        ),
    }
}

/// Creates the file `name` in `dir` (which must not exist) with the content of `src` (in the
/// worker's file store) and the mode and mtime of `e`.
fn write_file_at(dir: BorrowedFd<'_>, name: &str, src: &Path, e: &Entry) -> std::io::Result<()> {
    let mut from = std::fs::File::open(src)?;
    let to = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut to = std::fs::File::from(to);
    std::io::copy(&mut from, &mut to)?;
    rustix::fs::fchmod(&to, Mode::from_raw_mode(e.mode))?;
    rustix::fs::futimens(&to, &entry_times(e))?;
    Ok(())
}

/// Gives the open directory `fd` the mode and mtime of `e`.
fn set_dir_meta(fd: &OwnedFd, e: &Entry) -> std::io::Result<()> {
    rustix::fs::fchmod(fd, Mode::from_raw_mode(e.mode))?;
    rustix::fs::futimens(fd, &entry_times(e))?;
    Ok(())
}

/// An entry's mtime as access and modification times.
fn entry_times(e: &Entry) -> rustix::fs::Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: e.mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: e.mtime_ns.rem_euclid(1_000_000_000) as _,
    };
    rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// What [`collect_garbage`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Contents removed from the file store.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Context layouts removed.
    pub contexts: usize,
}

/// Bounds what a worker keeps between builds: removes the context layouts under `contexts`
/// not used for `retention` (each `DIR` with its `DIR.index`), then every content of `store`
/// that no remaining layout's index lists — what the client of that context would be asked
/// for again. Must not run while a build is between asking for contents and laying its
/// context out.
pub fn collect_garbage(
    store: &FileStore,
    contexts: &Path,
    retention: std::time::Duration,
) -> Result<Collected, Error> {
    let mut out = Collected::default();
    let now = std::time::SystemTime::now();
    let mut keep: BTreeSet<String> = BTreeSet::new();
    for e in std::fs::read_dir(contexts).map_err(io(contexts))? {
        let e = e.map_err(io(contexts))?;
        // Layouts are directories; their records (`DIR.index`, `DIR.manifest`) go with them.
        if !e.file_type().map_err(io(contexts))?.is_dir() {
            continue;
        }
        let path = e.path();
        let index = path.with_extension("index");
        let used = std::fs::metadata(&index)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok());
        // A layout without an index is being laid out, or was cut off: it is left alone
        // (laying it out again replaces it).
        if used.is_some_and(|age| age > retention) {
            remove_any(&path)?;
            let _ = std::fs::remove_file(&index);
            let _ = std::fs::remove_file(path.with_extension("manifest"));
            let _ = std::fs::remove_file(path.with_extension("status"));
            let _ = std::fs::remove_file(path.with_extension("entries"));
            out.contexts += 1;
            continue;
        }
        let listed: HashMap<String, String> = std::fs::read(&index)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        keep.extend(listed.into_values());
    }
    for shard in std::fs::read_dir(&store.dir).map_err(io(&store.dir))? {
        let shard = shard.map_err(io(&store.dir))?;
        let name = shard.file_name();
        if name == "tmp" || !shard.file_type().map_err(io(&store.dir))?.is_dir() {
            continue;
        }
        let dir = shard.path();
        for f in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let f = f.map_err(io(&dir))?;
            let hex = f.file_name().to_string_lossy().into_owned();
            if keep.contains(&hex) {
                continue;
            }
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            let path = f.path();
            std::fs::remove_file(&path).map_err(io(&path))?;
            out.files += 1;
            out.bytes += size;
        }
    }
    Ok(out)
}

fn remove_any(path: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(io(path)),
        Ok(_) => std::fs::remove_file(path).map_err(io(path)),
        Err(_) => Ok(()),
    }
}

/// Removes from the directory `fd` (at `rel` in the layout `dir`) everything whose path is
/// not in `kept`, and from its subdirectories in turn; never follows a symlink.
fn remove_unlisted(
    dir: &Path,
    fd: BorrowedFd<'_>,
    rel: &str,
    kept: &BTreeSet<&str>,
) -> Result<(), Error> {
    let here = dir.join(rel);
    let dup = rustix::io::dup(fd).map_err(|e| io(&here)(e.into()))?;
    let mut d = rustix::fs::Dir::read_from(&dup).map_err(|e| io(&here)(e.into()))?;
    let mut names = Vec::new();
    while let Some(ent) = d.read() {
        let ent = ent.map_err(|e| io(&here)(e.into()))?;
        let name = ent.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    for name in names {
        let name = std::ffi::OsString::from_vec(name);
        let st = match rustix::fs::statat(fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(io(&here.join(&name))(e.into())),
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let path = match name.to_str() {
            Some(n) if rel.is_empty() => Some(n.to_string()),
            Some(n) => Some(format!("{rel}/{n}")),
            None => None,
        };
        match path {
            Some(path) if kept.contains(path.as_str()) => {
                if is_dir {
                    let sub = rustix::fs::openat(
                        fd,
                        name.as_os_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| io(&here.join(&name))(e.into()))?;
                    remove_unlisted(dir, sub.as_fd(), &path, kept)?;
                }
            }
            _ => xbuild_runtime::remove_at(fd, &name, is_dir).map_err(io(&here.join(&name)))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xbuild::worker::context::scan;

    fn entry(path: &str, kind: Kind) -> Entry {
        let mut e = Entry {
            path: path.into(),
            mode: 0o644,
            digest: vec![0; 32],
            ..Entry::default()
        };
        e.set_kind(kind);
        e
    }

    #[test]
    fn paths_that_leave_the_context_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "a//b", "./a", ""] {
            assert!(validate(&[entry(bad, Kind::File)]).is_err(), "{bad}");
        }
        let through_link = [entry("l", Kind::Symlink), entry("l/passwd", Kind::File)];
        assert!(validate(&through_link).is_err());
        assert!(validate(&[entry("a", Kind::Dir), entry("a/b", Kind::File)]).is_ok());
    }

    fn problem(entries: &[Entry]) -> ManifestProblem {
        match validate(entries) {
            Err(Error::Manifest { problem, .. }) => problem,
            other => panic!("expected a manifest problem, got {other:?}"),
        }
    }

    #[test]
    fn a_manifest_is_checked_as_a_whole_tree() {
        // A file listed before the symlink it lies below: out of order, whatever comes next.
        let before_link = [entry("a/x", Kind::File), entry("a", Kind::Symlink)];
        assert!(matches!(
            problem(&before_link),
            ManifestProblem::OutOfOrder { .. }
        ));
        let mut link = entry("a", Kind::Symlink);
        link.target = "/".into();
        assert!(matches!(
            problem(&[link.clone(), entry("a/x", Kind::File)]),
            ManifestProblem::UnderNonDirectory {
                kind: "symlink",
                ..
            }
        ));
        assert!(matches!(
            problem(&[entry("a", Kind::File), entry("a/b/c", Kind::Dir)]),
            ManifestProblem::UnderNonDirectory { kind: "file", .. }
        ));
        assert!(matches!(
            problem(&[entry("a", Kind::File), entry("a", Kind::Dir)]),
            ManifestProblem::OutOfOrder { .. }
        ));
        let mut unknown = entry("k", Kind::File);
        unknown.kind = 9;
        assert_eq!(problem(&[unknown]), ManifestProblem::UnknownKind(9));
        let mut fifo = entry("p", Kind::File);
        fifo.mode = 0o010644;
        assert_eq!(problem(&[fifo]), ManifestProblem::Mode(0o010644));
        assert!(problem(&[link.clone(), link]).to_string().contains("once"));
        // What a scan makes passes: directories a .dockerignore leaves out but not all they
        // hold, setuid files, siblings whose names sort around `/`.
        let mut setuid = entry("d/e/su", Kind::File);
        setuid.mode = 0o4755;
        let ok = [
            entry("a", Kind::Dir),
            entry("a/b", Kind::File),
            entry("a-c", Kind::File),
            setuid,
            entry("d/f", Kind::File),
        ];
        validate(&ok).unwrap();
    }

    /// Stores `content` in `store`; returns its digest.
    fn put(store: &FileStore, content: &[u8]) -> [u8; 32] {
        let d = *blake3::hash(content).as_bytes();
        let mut inc = store.begin(d).unwrap();
        inc.write(content).unwrap();
        inc.commit().unwrap();
        d
    }

    fn file_entry(path: &str, content: &[u8]) -> Entry {
        let mut e = entry(path, Kind::File);
        e.digest = blake3::hash(content).as_bytes().to_vec();
        e.size = content.len() as u64;
        e
    }

    #[test]
    fn a_layout_that_failed_is_not_taken_as_laid_out_and_is_checked_again() {
        let t = tempfile::tempdir().unwrap();
        let store = FileStore::open(t.path().join("store")).unwrap();
        let cache = StatCache::disabled(t.path());
        put(&store, b"a");
        let entries = [file_entry("a", b"a"), file_entry("b", b"b")];
        let out = t.path().join("out");
        // `b` is not in the store: the layout fails after writing `a`.
        assert!(materialize(&out, &entries, &store, &cache).is_err());
        assert!(out.join("a").exists());
        assert!(laid_out(&out, &manifest_digest(&entries)).is_none());
        for ext in ["index", "manifest", "status", "entries"] {
            assert!(!out.with_extension(ext).exists(), "{ext}");
        }
        put(&store, b"b");
        assert_eq!(materialize(&out, &entries, &store, &cache).unwrap(), 2);
        assert!(laid_out(&out, &manifest_digest(&entries)).is_some());
    }

    #[test]
    fn laying_out_never_follows_a_symlink_found_in_the_layout() {
        let t = tempfile::tempdir().unwrap();
        let store = FileStore::open(t.path().join("store")).unwrap();
        let cache = StatCache::disabled(t.path());
        put(&store, b"evil");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), "original").unwrap();
        std::fs::set_permissions(
            outside.join("victim"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let out = t.path().join("out");
        std::fs::create_dir_all(out.join("e")).unwrap();
        // Planted where the manifest has an unlisted parent, a file and a directory.
        for link in ["d", "e/victim", "g"] {
            let target = if link == "e/victim" {
                outside.join("victim")
            } else {
                outside.clone()
            };
            std::os::unix::fs::symlink(target, out.join(link)).unwrap();
        }
        let mut setuid = file_entry("e/victim", b"evil");
        setuid.mode = 0o4755;
        let mut g = entry("g", Kind::Dir);
        g.mode = 0o700;
        let entries = [
            file_entry("d/victim", b"evil"),
            entry("e", Kind::Dir),
            setuid,
            g,
            file_entry("g/victim", b"evil"),
        ];
        materialize(&out, &entries, &store, &cache).unwrap();
        let names: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert_eq!(
            std::fs::read_to_string(outside.join("victim")).unwrap(),
            "original"
        );
        let md = std::fs::symlink_metadata(outside.join("victim")).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o644);
        for p in ["d", "e", "g"] {
            assert!(
                std::fs::symlink_metadata(out.join(p)).unwrap().is_dir(),
                "{p}"
            );
        }
        let md = std::fs::symlink_metadata(out.join("e/victim")).unwrap();
        assert!(md.is_file());
        assert_eq!(md.mode() & 0o7777, 0o4755);
        assert_eq!(
            std::fs::metadata(out.join("g")).unwrap().mode() & 0o7777,
            0o700
        );
    }

    #[test]
    fn a_context_round_trips_through_the_store() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("src/ignored")).unwrap();
        std::fs::write(ctx.join("src/a.txt"), "a").unwrap();
        std::fs::write(ctx.join("src/ignored/x"), "x").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "src/ignored\n").unwrap();
        std::os::unix::fs::symlink("a.txt", ctx.join("src/link")).unwrap();
        let cache = StatCache::disabled(t.path());
        let m = scan(&ctx, &["src/ignored".to_string()], &cache).unwrap();
        let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, [".dockerignore", "src", "src/a.txt", "src/link"]);
        validate(&m.entries).unwrap();

        let store = FileStore::open(t.path().join("store")).unwrap();
        let missing = store.missing(&m.entries);
        assert_eq!(missing.len(), 2);
        for d in missing {
            let mut inc = store.begin(d).unwrap();
            inc.write(&std::fs::read(&m.contents()[&d]).unwrap())
                .unwrap();
            inc.commit().unwrap();
        }
        assert!(store.missing(&m.entries).is_empty());
        let out = t.path().join("out");
        std::fs::create_dir_all(out.join("stale")).unwrap();
        assert!(laid_out(&out, &m.digest).is_none());
        assert_eq!(materialize(&out, &m.entries, &store, &cache).unwrap(), 2);
        let record = laid_out(&out, &m.digest).unwrap();
        assert_eq!((record.entries, record.bytes), (4, m.bytes));
        assert_eq!(std::fs::read_to_string(out.join("src/a.txt")).unwrap(), "a");
        assert!(!out.join("stale").exists());
        assert!(!out.join("src/ignored").exists());
        // Unchanged entries are not written again.
        assert_eq!(materialize(&out, &m.entries, &store, &cache).unwrap(), 0);
        // A changed manifest is laid out again, even a change only in mode.
        let mut changed = m.entries.clone();
        let a = changed.iter_mut().find(|e| e.path == "src/a.txt").unwrap();
        a.mode = 0o600;
        assert!(laid_out(&out, &manifest_digest(&changed)).is_none());
        materialize(&out, &changed, &store, &cache).unwrap();
        let mode = std::fs::metadata(out.join("src/a.txt")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// Writes `content` over `path` keeping its size and times, as a change made behind the
    /// worker's back might.
    fn tamper(path: &Path, content: &[u8]) {
        let md = std::fs::metadata(path).unwrap();
        assert_eq!(md.len(), content.len() as u64);
        std::fs::write(path, content).unwrap();
        let t = filetime::FileTime::from_last_modification_time(&md);
        filetime::set_file_times(path, t, t).unwrap();
    }

    #[test]
    fn a_layout_changed_outside_the_worker_is_not_trusted_and_is_laid_out_again() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("d")).unwrap();
        std::fs::write(ctx.join("d/a"), "alpha").unwrap();
        std::fs::write(ctx.join("b"), "beta").unwrap();
        let cache = StatCache::disabled(t.path());
        let m = scan(&ctx, &[], &cache).unwrap();
        let store = FileStore::open(t.path().join("store")).unwrap();
        for d in store.missing(&m.entries) {
            let mut inc = store.begin(d).unwrap();
            inc.write(&std::fs::read(&m.contents()[&d]).unwrap())
                .unwrap();
            inc.commit().unwrap();
        }
        let out = t.path().join("out");
        materialize(&out, &m.entries, &store, &cache).unwrap();
        assert!(laid_out(&out, &m.digest).is_some());
        assert!(!repair(&out, &store, &cache).unwrap(), "nothing changed");

        // Same size, same mtime, other content: the ctime tells, and exactly that file is
        // laid out again.
        tamper(&out.join("d/a"), b"ALPHA");
        let index = std::fs::read(out.with_extension("index")).unwrap();
        assert!(repair(&out, &store, &cache).unwrap());
        assert_eq!(std::fs::read_to_string(out.join("d/a")).unwrap(), "alpha");
        assert_eq!(
            std::fs::read(out.with_extension("index")).unwrap().len(),
            index.len()
        );
        assert!(!repair(&out, &store, &cache).unwrap());
        assert!(laid_out(&out, &m.digest).is_some());

        // A file added, a mode changed: each is noticed and undone.
        std::fs::write(out.join("d/extra"), "x").unwrap();
        assert!(repair(&out, &store, &cache).unwrap());
        assert!(!out.join("d/extra").exists());
        std::fs::set_permissions(out.join("b"), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(repair(&out, &store, &cache).unwrap());
        assert_eq!(
            std::fs::metadata(out.join("b")).unwrap().mode() & 0o777,
            0o644
        );

        // A damaged status record makes everything suspect: laid out again.
        let status = out.with_extension("status");
        let mut bytes = std::fs::read(&status).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&status, bytes).unwrap();
        assert!(repair(&out, &store, &cache).unwrap());
        // A manifest that is not the recorded one is not laid out: an error.
        tamper(&out.join("b"), b"BETA");
        let mut other = m.entries.clone();
        other[0].mode = 0o600;
        let list = prost::Message::encode_to_vec(&ManifestChunk {
            entries: other,
            last: true,
        });
        std::fs::write(out.with_extension("entries"), list).unwrap();
        let err = repair(&out, &store, &cache).unwrap_err().to_string();
        assert!(err.contains("changed outside the worker"), "{err}");
    }

    #[test]
    fn garbage_collection_keeps_what_a_layout_lists_and_drops_stale_layouts() {
        let t = tempfile::tempdir().unwrap();
        let store = FileStore::open(t.path().join("store")).unwrap();
        let contexts = t.path().join("contexts");
        let put = |content: &[u8]| {
            let d = *blake3::hash(content).as_bytes();
            let mut inc = store.begin(d).unwrap();
            inc.write(content).unwrap();
            inc.commit().unwrap();
            d
        };
        let file = |path: &str, d: [u8; 32]| {
            let mut e = entry(path, Kind::File);
            e.digest = d.to_vec();
            e.size = 1;
            e
        };
        let (a, b, old) = (put(b"a"), put(b"b"), put(b"o"));
        let cache = StatCache::disabled(t.path());
        materialize(&contexts.join("one"), &[file("a", a)], &store, &cache).unwrap();
        materialize(&contexts.join("stale"), &[file("o", old)], &store, &cache).unwrap();
        let long_ago = filetime::FileTime::from_unix_time(0, 0);
        filetime::set_file_mtime(contexts.join("stale.index"), long_ago).unwrap();
        let day = std::time::Duration::from_secs(86400);
        let got = collect_garbage(&store, &contexts, day).unwrap();
        assert_eq!(
            got,
            Collected {
                files: 2,
                bytes: 2,
                contexts: 1
            }
        );
        assert!(store.path(&a).exists(), "listed by a layout in use");
        assert!(!store.path(&b).exists(), "listed by no layout");
        assert!(!store.path(&old).exists(), "listed only by a stale layout");
        assert!(!contexts.join("stale").exists());
        assert!(!contexts.join("stale.index").exists());
        assert!(!contexts.join("stale.manifest").exists());
        assert!(contexts.join("one/a").exists());
    }

    #[test]
    fn content_with_the_wrong_hash_is_not_stored() {
        let t = tempfile::tempdir().unwrap();
        let store = FileStore::open(t.path().to_path_buf()).unwrap();
        let mut inc = store.begin(*blake3::hash(b"right").as_bytes()).unwrap();
        inc.write(b"wrong").unwrap();
        assert!(inc.commit().is_err());
        assert!(
            store
                .missing(&[{
                    let mut e = entry("f", Kind::File);
                    e.digest = blake3::hash(b"right").as_bytes().to_vec();
                    e
                }])
                .len()
                == 1
        );
    }
}
