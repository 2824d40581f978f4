//! Reusing what an earlier run of the same copy wrote: when a build context changes in one
//! file, a `COPY dir /dest` runs again, and every other file it copies is already in the
//! snapshot that copy made last time, byte for byte and with the same metadata. Those files are
//! hard-linked from that snapshot instead of copied: no data written, no inode allocated.
//!
//! Snapshots are immutable once committed, so sharing an inode between two of them is safe (a
//! later step that changes the file copies it up first, as overlayfs always does).
//!
//! A file is linked only when all of this holds, and copied otherwise:
//! - the earlier copy recorded, for the same destination path, the stamp (device, inode, size,
//!   mtime, ctime) of the context file it copied, and the source has exactly that stamp now —
//!   the stat cache's rule for "unchanged content". A stamp is recorded only when it was not
//!   racy (its ctime older than [`RACY_WINDOW_NS`] when the copy started) and did not change
//!   while the file was copied;
//! - the earlier snapshot's file is a regular file with the size, mtime, permission bits and
//!   owner this copy would give it;
//! - the source is not hard-linked (those keep their links inside the copy).
//!
//! The copy runs through the mounted snapshot as usual, leaving out the files to link
//! ([`Reuse::link_later`]); once the snapshot is unmounted, [`Reuse::finish`] links them into
//! its directory of changes (where the copy made or copied up their directories) and restores
//! those directories' times. Whatever a later write of the same copy put at such a path wins.
//!
//! Which snapshot a copy made last is a hint kept per copy under `<root>/copies/`
//! ([`last_copy`], [`remember_copy`], [`forget_copies_unless`]).
//!
//! ```no_run
//! # fn demo() -> Result<(), xbuild_runtime::Error> {
//! use std::path::Path;
//! use xbuild_runtime::Reuse;
//!
//! let mut reuse = Reuse::new(
//!     Path::new("/var/lib/xbuild/snapshots/new/fs"),
//!     Path::new("/var/lib/xbuild/mounts/copy-1"),
//!     Some((
//!         Path::new("/var/lib/xbuild/snapshots/old/fs"),
//!         Path::new("/var/lib/xbuild/snapshots/old/copied"),
//!     )),
//! )?;
//! // … a `FileBackend::copy` with `Some(&mut reuse)`, then unmount …
//! let linked = reuse.finish(Path::new("/var/lib/xbuild/snapshots/new/copied"))?;
//! # let _ = linked; Ok(()) }
//! ```

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::Error;
use crate::fsops::{CopyMeta, open_dir_at, stat_at, times};
use xbuild_llb::FileStamp;

/// How recent a source's last change may be for its stamp to be trusted: a write within the
/// timestamp granularity of the last one could leave the stamp unchanged.
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// At most this many links to one inode: a file unchanged over many runs is copied afresh now
/// and then instead of growing its link count without end.
const MAX_LINKS: u64 = 1_000;

const MAGIC: &[u8; 8] = b"XBREUSE1";

/// What the reuse knows of one destination directory of the copy; the copy keeps one per
/// directory it is in (see [`Reuse::link_later`]), filled on first use.
#[derive(Default)]
pub struct DirSlot(Option<DirState>);

struct DirState {
    /// Its path below the mounted root (`a/b`, empty for the root).
    rel: Arc<str>,
    /// The same directory in the earlier snapshot's changes, when it is there.
    prev: Option<OwnedFd>,
    /// The same directory in this snapshot's changes, when it is there already.
    upper: Option<OwnedFd>,
}

/// A file to link once the snapshot is unmounted.
struct Pending {
    dir: Arc<str>,
    name: OsString,
}

/// The reuse state of one copy into one active snapshot.
pub struct Reuse {
    upper: OwnedFd,
    mount: PathBuf,
    prev: Option<(OwnedFd, HashMap<String, FileStamp>)>,
    not_before_ns: i64,
    pending: Vec<Pending>,
    /// What this copy's files were copied from, by destination path.
    stamps: HashMap<String, FileStamp>,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn open_root(p: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(p, e.into()))
}

/// Opens `rel` below `root` one directory at a time, following no symlink; `None` when some
/// component is missing or not a directory.
fn open_below(root: &OwnedFd, rel: &str) -> Option<OwnedFd> {
    let mut cur = rustix::io::dup(root).ok()?;
    for c in rel.split('/').filter(|c| !c.is_empty()) {
        cur = open_dir_at(cur.as_fd(), OsStr::new(c)).ok()?;
    }
    Some(cur)
}

fn join(base: &str, name: &OsStr) -> String {
    let n = name.to_string_lossy();
    if base.is_empty() {
        n.into_owned()
    } else {
        format!("{base}/{n}")
    }
}

impl Reuse {
    /// Reuse state for a copy into the active snapshot whose changes are at `upper`, mounted at
    /// `mount`; `previous` is the earlier snapshot's directory of changes and the file its copy
    /// recorded (see [`finish`](Self::finish)). A missing or damaged record means nothing is
    /// linked, never an error.
    pub fn new(
        upper: &Path,
        mount: &Path,
        previous: Option<(&Path, &Path)>,
    ) -> Result<Self, Error> {
        let mount = std::fs::canonicalize(mount).map_err(|e| Error::io(mount, e))?;
        let prev = previous.and_then(|(dir, record)| {
            let stamps = read_record(record)?;
            let fd = open_root(dir).ok()?;
            Some((fd, stamps))
        });
        Ok(Reuse {
            upper: open_root(upper)?,
            mount,
            prev,
            not_before_ns: now_ns() - RACY_WINDOW_NS,
            pending: Vec::new(),
            stamps: HashMap::new(),
        })
    }

    /// The state of destination directory `dir` (an open directory of the mount), filled in
    /// `slot` on first use.
    fn dir<'s>(&self, slot: &'s mut DirSlot, dir: &OwnedFd) -> &'s DirState {
        slot.0.get_or_insert_with(|| {
            let proc = format!("/proc/self/fd/{}", dir.as_raw_fd());
            let rel = std::fs::read_link(proc).ok().and_then(|p| {
                let r = p.strip_prefix(&self.mount).ok()?;
                let parts: Option<Vec<&str>> = r
                    .components()
                    .map(|c| match c {
                        Component::Normal(n) => n.to_str(),
                        _ => None,
                    })
                    .collect();
                parts.map(|p| p.join("/"))
            });
            match rel {
                Some(rel) => DirState {
                    prev: self.prev.as_ref().and_then(|(fd, _)| open_below(fd, &rel)),
                    upper: open_below(&self.upper, &rel),
                    rel: rel.into(),
                },
                // Not below the mount (cannot happen for a copy's destination): never linked.
                None => DirState {
                    rel: Arc::from(""),
                    prev: None,
                    upper: None,
                },
            }
        })
    }

    /// Whether the file `name` (source stat `st`) going into directory `dst` (whose state the
    /// caller keeps in `slot` while it is in that directory) will be linked from the earlier
    /// snapshot instead of copied; when so, it is remembered for [`finish`](Self::finish) and
    /// the caller must not copy it.
    pub fn link_later(
        &mut self,
        slot: &mut DirSlot,
        dst: &OwnedFd,
        name: &OsStr,
        st: &Stat,
        meta: &CopyMeta,
    ) -> std::io::Result<bool> {
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_nlink != 1 {
            return Ok(false);
        }
        let stamp = crate::fsops::stamp_of(st);
        let Some((_, recorded)) = &self.prev else {
            return Ok(false);
        };
        if stamp.ctime_ns >= self.not_before_ns {
            return Ok(false);
        }
        let d = self.dir(slot, dst);
        let (Some(prev), Some(upper)) = (&d.prev, &d.upper) else {
            return Ok(false);
        };
        let rel = join(&d.rel, name);
        if recorded.get(&rel) != Some(&stamp) || stat_at(upper.as_fd(), name)?.is_some() {
            return Ok(false);
        }
        let Some(old) = stat_at(prev.as_fd(), name)? else {
            return Ok(false);
        };
        let (uid, gid) = meta.owner(st);
        let same = FileType::from_raw_mode(old.st_mode) == FileType::RegularFile
            && old.st_size == st.st_size
            && old.st_mtime == st.st_mtime
            && old.st_mtime_nsec == st.st_mtime_nsec
            && old.st_mode & 0o7777 == meta.mode(st)
            && (old.st_uid, old.st_gid) == (uid, gid)
            && old.st_nlink < MAX_LINKS;
        if !same {
            return Ok(false);
        }
        let dir = d.rel.clone();
        self.stamps.insert(rel, stamp);
        self.pending.push(Pending {
            dir,
            name: name.to_os_string(),
        });
        Ok(true)
    }

    /// Records that the file `name` in `dst` was just copied from a source that had stat
    /// `before` and now has stat `after` (`None`: it is gone): a later run of the copy may link
    /// it when the source is still the same.
    pub fn copied(
        &mut self,
        slot: &mut DirSlot,
        dst: &OwnedFd,
        name: &OsStr,
        before: &Stat,
        after: Option<&Stat>,
    ) {
        let rel = join(&self.dir(slot, dst).rel, name);
        let stamp = crate::fsops::stamp_of(before);
        let trusted = FileType::from_raw_mode(before.st_mode) == FileType::RegularFile
            && before.st_nlink == 1
            && stamp.ctime_ns < self.not_before_ns
            && after.is_some_and(|a| crate::fsops::stamp_of(a) == stamp);
        if trusted {
            self.stamps.insert(rel, stamp);
        } else {
            self.stamps.remove(&rel);
        }
    }

    /// Records that something other than a recorded copy was written at `name` in `dst`.
    pub fn wrote(&mut self, slot: &mut DirSlot, dst: &OwnedFd, name: &OsStr) {
        let rel = join(&self.dir(slot, dst).rel, name);
        self.stamps.remove(&rel);
    }

    /// Once the snapshot is unmounted: links the files left out, restores the times of the
    /// directories they went into, and writes at `record` what this copy's files were copied
    /// from (for the next run of the same copy). A path a later write of the copy took is left
    /// to that write (a copy never removes a directory, so the directories are the ones the
    /// copy saw). Returns how many files were linked.
    pub fn finish(mut self, record: &Path) -> Result<usize, Error> {
        let mut linked = 0;
        let pending = std::mem::take(&mut self.pending);
        let missing = |p: &Pending| {
            let path = self.mount.join(&*p.dir).join(&p.name);
            Error::io(
                &path,
                std::io::Error::other("the earlier snapshot to link it from lost it"),
            )
        };
        let prev_root = match &self.prev {
            Some((fd, _)) => Some(fd),
            None if pending.is_empty() => None,
            None => return Err(missing(&pending[0])),
        };
        let mut i = 0;
        while i < pending.len() {
            let rel = pending[i].dir.clone();
            let dirs = prev_root
                .and_then(|p| Some((open_below(p, &rel)?, open_below(&self.upper, &rel)?)));
            let Some((prev, upper)) = dirs else {
                return Err(missing(&pending[i]));
            };
            let stat = rustix::fs::fstat(&upper)
                .map_err(|e| Error::io(&self.mount.join(&*rel), e.into()))?;
            let mut touched = false;
            while i < pending.len() && pending[i].dir == rel {
                let p = &pending[i];
                i += 1;
                match rustix::fs::linkat(&prev, &p.name, &upper, &p.name, AtFlags::empty()) {
                    Ok(()) => {
                        linked += 1;
                        touched = true;
                    }
                    // A later write of this copy put something there: it wins.
                    Err(rustix::io::Errno::EXIST) => {}
                    Err(rustix::io::Errno::NOENT) => return Err(missing(p)),
                    Err(e) => {
                        return Err(Error::io(&self.mount.join(&*p.dir).join(&p.name), e.into()));
                    }
                }
            }
            if touched {
                rustix::fs::futimens(&upper, &times(&stat))
                    .map_err(|e| Error::io(&self.mount.join(&*rel), e.into()))?;
            }
        }
        write_record(record, &self.stamps)?;
        Ok(linked)
    }
}

/// Reads a record written by [`write_record`]; `None` when it is missing or damaged.
fn read_record(path: &Path) -> Option<HashMap<String, FileStamp>> {
    let bytes = std::fs::read(path).ok()?;
    let body_len = bytes.len().checked_sub(32)?;
    let (body, sum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != sum || !body.starts_with(MAGIC) {
        return None;
    }
    let mut rest = &body[MAGIC.len()..];
    let mut out = HashMap::new();
    let take = |n: usize, rest: &mut &[u8]| -> Option<Vec<u8>> {
        if rest.len() < n {
            return None;
        }
        let (a, b) = rest.split_at(n);
        *rest = b;
        Some(a.to_vec())
    };
    let u64_of = |b: Vec<u8>| -> Option<u64> { Some(u64::from_le_bytes(b.try_into().ok()?)) };
    while !rest.is_empty() {
        let len = u32::from_le_bytes(take(4, &mut rest)?.try_into().ok()?) as usize;
        let path = String::from_utf8(take(len, &mut rest)?).ok()?;
        let stamp = FileStamp {
            dev: u64_of(take(8, &mut rest)?)?,
            ino: u64_of(take(8, &mut rest)?)?,
            size: u64_of(take(8, &mut rest)?)?,
            mtime_ns: u64_of(take(8, &mut rest)?)? as i64,
            ctime_ns: u64_of(take(8, &mut rest)?)? as i64,
        };
        out.insert(path, stamp);
    }
    Some(out)
}

/// Writes `stamps` at `path` (a temporary file renamed into place; the snapshot's commit
/// makes it durable with the rest).
fn write_record(path: &Path, stamps: &HashMap<String, FileStamp>) -> Result<(), Error> {
    let mut body = Vec::with_capacity(MAGIC.len() + stamps.len() * 80);
    body.extend_from_slice(MAGIC);
    let mut entries: Vec<_> = stamps.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (p, s) in entries {
        body.extend_from_slice(&(p.len() as u32).to_le_bytes());
        body.extend_from_slice(p.as_bytes());
        for v in [s.dev, s.ino, s.size, s.mtime_ns as u64, s.ctime_ns as u64] {
            body.extend_from_slice(&v.to_le_bytes());
        }
    }
    let sum = blake3::hash(&body);
    body.extend_from_slice(sum.as_bytes());
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &body).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The directory, under an xbuild root, of the hints saying which snapshot each copy from the
/// build context made last (one small file per copy, named by its vertex digest's hex).
fn hints_dir(root: &Path) -> PathBuf {
    root.join("copies")
}

fn hint_path(root: &Path, vertex: &xbuild_llb::Digest) -> PathBuf {
    let s = vertex.to_string();
    let hex = s.rsplit(':').next().unwrap_or(&s);
    hints_dir(root).join(hex)
}

/// The snapshot the copy `vertex` made last, if the root's hint says so. A hint only: a
/// missing, damaged or stale one means the copy copies everything.
pub fn last_copy(root: &Path, vertex: &xbuild_llb::Digest) -> Option<String> {
    let s = std::fs::read_to_string(hint_path(root, vertex)).ok()?;
    let id = s.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Remembers that the copy `vertex` made `snapshot` (temp file + rename; a failure only costs
/// the next run its links).
pub fn remember_copy(root: &Path, vertex: &xbuild_llb::Digest, snapshot: &str) {
    let p = hint_path(root, vertex);
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    let r = std::fs::create_dir_all(hints_dir(root))
        .and_then(|_| std::fs::write(&tmp, snapshot))
        .and_then(|_| std::fs::rename(&tmp, &p));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(path = %p.display(), error = %e, "could not remember a copy's snapshot");
    }
}

/// Forgets the hints naming a snapshot `keep` does not accept (for prune).
pub fn forget_copies_unless(root: &Path, keep: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(hints_dir(root)) else {
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
    fn copy_hints_round_trip_and_prune_drops_stale_ones() {
        let d = tempfile::tempdir().unwrap();
        let a = xbuild_llb::Digest::of(b"a");
        let b = xbuild_llb::Digest::of(b"b");
        assert_eq!(last_copy(d.path(), &a), None);
        remember_copy(d.path(), &a, "snap1");
        remember_copy(d.path(), &b, "snap2");
        remember_copy(d.path(), &a, "snap3");
        assert_eq!(last_copy(d.path(), &a).as_deref(), Some("snap3"));
        forget_copies_unless(d.path(), |s| s == "snap3");
        assert_eq!(last_copy(d.path(), &a).as_deref(), Some("snap3"));
        assert_eq!(last_copy(d.path(), &b), None);
    }

    #[test]
    fn records_round_trip_and_damage_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("copied");
        let mut m = HashMap::new();
        m.insert(
            "src/a b/ü".to_string(),
            FileStamp {
                dev: 1,
                ino: 2,
                size: 3,
                mtime_ns: -4,
                ctime_ns: 5,
            },
        );
        m.insert(
            "x".to_string(),
            FileStamp {
                dev: 9,
                ino: 8,
                size: 7,
                mtime_ns: 6,
                ctime_ns: 5,
            },
        );
        write_record(&p, &m).unwrap();
        assert_eq!(read_record(&p).unwrap(), m);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[12] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        assert!(read_record(&p).is_none());
        std::fs::write(&p, b"short").unwrap();
        assert!(read_record(&p).is_none());
        assert!(read_record(&d.path().join("missing")).is_none());
    }
}
