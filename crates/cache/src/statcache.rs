//! The persistent stat cache: (device, inode, size, mtime, ctime) → blake3 of the content, so
//! that hashing an unchanged build context stats its files and never reads them.
//!
//! On disk it is one file, `<root>/statcache`: a header, fixed-size records sorted by (device,
//! inode) and a blake3 checksum of everything before it. It is loaded whole (a hash index by
//! device and inode answers lookups) and rewritten only when a build learned something new:
//! under a file lock, merged with what other processes wrote meanwhile, to a temp file that is
//! fsynced and renamed into place. A damaged file is ignored (everything is re-read once),
//! never trusted.
//!
//! Racy entries are not persisted: a file whose ctime is within [`RACY_WINDOW_NS`] of the time
//! the cache was loaded could change again without its stamp changing (timestamps are coarse),
//! so it is re-read by the next build.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use xbuild_llb::FileStamp;

use crate::{Error, io};

const MAGIC: &[u8; 8] = b"XBSTAT01";
const RECORD: usize = 8 * 5 + 32;
/// How recent a change may be for its entry to still be re-checked by content next time.
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;
/// At most this many entries are kept; beyond it, entries this build did not use are dropped.
const MAX_ENTRIES: usize = 500_000;

/// Hashes (device, inode) keys: inode numbers are already well spread, so a multiply mixes
/// them enough (SipHash would cost more than the lookup).
#[derive(Clone, Copy, Default)]
struct InodeHash;

impl std::hash::BuildHasher for InodeHash {
    type Hasher = InodeHasher;

    fn build_hasher(&self) -> InodeHasher {
        InodeHasher(0)
    }
}

#[derive(Clone, Copy, Default)]
struct InodeHasher(u64);

impl std::hash::Hasher for InodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rec {
    stamp: FileStamp,
    hash: [u8; 32],
}

impl Rec {
    fn key(&self) -> (u64, u64) {
        (self.stamp.dev, self.stamp.ino)
    }
}

/// The stat cache of one xbuild root, loaded for one build; [`StatCache::save`] writes what it
/// learned.
pub struct StatCache {
    path: PathBuf,
    base: Vec<Rec>,
    /// (device, inode) → position in `base`.
    index: HashMap<(u64, u64), u32, InodeHash>,
    used: Vec<AtomicBool>,
    added: Mutex<HashMap<(u64, u64), Rec>>,
    /// Keys of added entries persisted even when racy (see [`StatCache::put_settled`]).
    settled: Mutex<std::collections::HashSet<(u64, u64)>>,
    /// Entries whose ctime is at or after this are not persisted.
    racy_after_ns: i64,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Parses a stat cache file; `None` when it is damaged.
fn parse(bytes: &[u8]) -> Option<Vec<Rec>> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, sum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != sum || body.len() < 16 || &body[..8] != MAGIC {
        return None;
    }
    let count = u64::from_le_bytes(body[8..16].try_into().ok()?) as usize;
    let recs = &body[16..];
    if recs.len() != count.checked_mul(RECORD)? {
        return None;
    }
    let u64_at = |c: &[u8], i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            c.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let mut out = Vec::with_capacity(count);
    for c in recs.chunks_exact(RECORD) {
        let stamp = FileStamp {
            dev: u64_at(c, 0)?,
            ino: u64_at(c, 1)?,
            size: u64_at(c, 2)?,
            mtime_ns: u64_at(c, 3)? as i64,
            ctime_ns: u64_at(c, 4)? as i64,
        };
        let hash: [u8; 32] = c.get(40..72)?.try_into().ok()?;
        out.push(Rec { stamp, hash });
    }
    out.sort_by_key(Rec::key);
    out.dedup_by_key(|r| r.key());
    Some(out)
}

fn encode(recs: &[Rec]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + recs.len() * RECORD + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(recs.len() as u64).to_le_bytes());
    for r in recs {
        let s = &r.stamp;
        for v in [s.dev, s.ino, s.size, s.mtime_ns as u64, s.ctime_ns as u64] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&r.hash);
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn read_file(path: &Path) -> Result<Vec<Rec>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse(&bytes).unwrap_or_else(|| {
            tracing::warn!(path = %path.display(), "the stat cache is damaged; ignoring it");
            Vec::new()
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

impl StatCache {
    /// Loads the stat cache of the root `root` (empty when there is none yet).
    pub fn load(root: &Path) -> Result<Self, Error> {
        let path = root.join("statcache");
        let base = read_file(&path)?;
        let used = (0..base.len()).map(|_| AtomicBool::new(false)).collect();
        let index = base
            .iter()
            .enumerate()
            .map(|(i, r)| (r.key(), i as u32))
            .collect();
        Ok(StatCache {
            path,
            base,
            index,
            used,
            added: Mutex::new(HashMap::new()),
            settled: Mutex::default(),
            racy_after_ns: now_ns() - RACY_WINDOW_NS,
        })
    }

    /// An empty stat cache that never persists anything (every file is read).
    pub fn disabled(root: &Path) -> Self {
        StatCache {
            path: root.join("statcache"),
            base: Vec::new(),
            index: HashMap::default(),
            used: Vec::new(),
            added: Mutex::new(HashMap::new()),
            settled: Mutex::default(),
            racy_after_ns: i64::MIN,
        }
    }

    /// How many entries were loaded.
    pub fn len(&self) -> usize {
        self.base.len()
    }

    /// True when nothing was loaded.
    pub fn is_empty(&self) -> bool {
        self.base.is_empty()
    }

    /// The content hash recorded for a file with exactly this stamp.
    pub fn get(&self, stamp: &FileStamp) -> Option<[u8; 32]> {
        let key = (stamp.dev, stamp.ino);
        if let Some(&i) = self.index.get(&key) {
            let r = &self.base[i as usize];
            if r.stamp == *stamp {
                // Read first: most entries are used once, and a store each time would bounce
                // the cache line between the hashing threads.
                let used = &self.used[i as usize];
                if !used.load(Ordering::Relaxed) {
                    used.store(true, Ordering::Relaxed);
                }
                return Some(r.hash);
            }
        }
        let added = self.added.lock().ok()?;
        added
            .get(&key)
            .filter(|r| r.stamp == *stamp)
            .map(|r| r.hash)
    }

    /// Records the content hash of the file with this stamp.
    pub fn put(&self, stamp: FileStamp, hash: [u8; 32]) {
        if let Ok(mut added) = self.added.lock() {
            added.insert((stamp.dev, stamp.ino), Rec { stamp, hash });
        }
    }

    /// Records the content hash of a file the caller itself wrote with content it verified, in
    /// a directory nothing else writes (a remote worker's copy of a client's context): it is
    /// persisted even when its change is recent, since no later write can hide behind a coarse
    /// timestamp.
    pub fn put_settled(&self, stamp: FileStamp, hash: [u8; 32]) {
        if let Ok(mut settled) = self.settled.lock() {
            settled.insert((stamp.dev, stamp.ino));
        }
        self.put(stamp, hash);
    }

    /// Writes what this build learned, merged with what is on disk now; does nothing when it
    /// learned nothing that may be persisted. Returns how many entries were added.
    pub fn save(&self) -> Result<usize, Error> {
        let settled = match self.settled.lock() {
            Ok(s) => s.clone(),
            Err(_) => return Ok(0),
        };
        let added: Vec<Rec> = match self.added.lock() {
            Ok(a) => a
                .values()
                .filter(|r| r.stamp.ctime_ns < self.racy_after_ns || settled.contains(&r.key()))
                .copied()
                .collect(),
            Err(_) => return Ok(0),
        };
        if added.is_empty() {
            return Ok(0);
        }
        let lock_path = self.path.with_extension("lock");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let mut merged: HashMap<(u64, u64), Rec> = read_file(&self.path)?
            .into_iter()
            .map(|r| (r.key(), r))
            .collect();
        let n = added.len();
        if merged.len() + n > MAX_ENTRIES {
            // Keep what this build used and learned; drop the rest.
            let used: std::collections::HashSet<(u64, u64)> = self
                .base
                .iter()
                .zip(&self.used)
                .filter(|(_, u)| u.load(Ordering::Relaxed))
                .map(|(r, _)| r.key())
                .collect();
            merged.retain(|k, _| used.contains(k));
        }
        for r in added {
            merged.insert(r.key(), r);
        }
        let mut recs: Vec<Rec> = merged.into_values().collect();
        recs.sort_by_key(Rec::key);
        let tmp = self
            .path
            .with_extension(format!("tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&encode(&recs))?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Io {
                path: self.path.clone(),
                source: e,
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64, ctime_ns: i64) -> FileStamp {
        FileStamp {
            dev: 1,
            ino,
            size: 10,
            mtime_ns: 5,
            ctime_ns,
        }
    }

    #[test]
    fn entries_persist_and_changed_stamps_miss() {
        let dir = tempfile::tempdir().unwrap();
        let c = StatCache::load(dir.path()).unwrap();
        assert!(c.is_empty());
        c.put(stamp(1, 100), [1; 32]);
        c.put(stamp(2, 100), [2; 32]);
        assert_eq!(c.get(&stamp(1, 100)), Some([1; 32]));
        assert_eq!(c.save().unwrap(), 2);
        let d = StatCache::load(dir.path()).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(&stamp(2, 100)), Some([2; 32]));
        assert_eq!(d.get(&stamp(2, 101)), None, "a changed ctime is a miss");
        assert_eq!(d.save().unwrap(), 0, "nothing learned, nothing written");
    }

    #[test]
    fn racy_entries_are_not_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let c = StatCache::load(dir.path()).unwrap();
        c.put(stamp(1, now_ns()), [1; 32]);
        c.put(stamp(2, 100), [2; 32]);
        assert_eq!(c.save().unwrap(), 1);
        let d = StatCache::load(dir.path()).unwrap();
        assert_eq!(d.len(), 1);
        // A settled entry is persisted however recent.
        d.put_settled(stamp(3, now_ns()), [3; 32]);
        assert_eq!(d.save().unwrap(), 1);
        let e = StatCache::load(dir.path()).unwrap();
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn concurrent_savers_merge_and_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let a = StatCache::load(dir.path()).unwrap();
        let b = StatCache::load(dir.path()).unwrap();
        a.put(stamp(1, 100), [1; 32]);
        b.put(stamp(2, 100), [2; 32]);
        a.save().unwrap();
        b.save().unwrap();
        let c = StatCache::load(dir.path()).unwrap();
        assert_eq!(c.get(&stamp(1, 100)), Some([1; 32]));
        assert_eq!(c.get(&stamp(2, 100)), Some([2; 32]));
        let path = dir.path().join("statcache");
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(StatCache::load(dir.path()).unwrap().is_empty());
        std::fs::write(&path, &bytes[..n / 3]).unwrap();
        assert!(StatCache::load(dir.path()).unwrap().is_empty());
    }
}
