//! File locks shared by the `xbuild` processes of one root.
//!
//! - The GC lock (`<root>/gc.lock`): builds take it shared for the short moments in which they
//!   look a result up and lease it, or commit a result and record it; `prune` takes it
//!   exclusive while it decides what to delete and deletes it. So a pruner never sees a
//!   snapshot that is about to be leased but is not yet.
//! - Key locks (`<root>/locks/<key>`): whoever builds a cache key holds its lock, so that
//!   another process needing the same key waits for the result instead of building it again
//!   (and re-checks the index once it has the lock).
//!
//! All are `flock` locks (std's `File::lock`), released by the kernel when a process dies.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use xbuild_llb::Digest;

use crate::{Error, io};

/// A held GC lock (shared or exclusive); released when dropped.
#[derive(Debug)]
pub struct GcLock {
    _file: File,
}

fn gc_file(root: &Path) -> Result<(File, PathBuf), Error> {
    let path = root.join("gc.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    Ok((file, path))
}

impl GcLock {
    /// Takes the GC lock shared (a build), waiting while a pruner holds it.
    pub fn shared(root: &Path) -> Result<Self, Error> {
        let (file, path) = gc_file(root)?;
        file.lock_shared().map_err(io(&path))?;
        Ok(GcLock { _file: file })
    }

    /// Takes the GC lock shared if no pruner holds it; `None` otherwise.
    pub fn try_shared(root: &Path) -> Result<Option<Self>, Error> {
        let (file, path) = gc_file(root)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(GcLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Io { path, source: e }),
        }
    }

    /// Takes the GC lock exclusive (a pruner), waiting for builds' short sections to end.
    pub fn exclusive(root: &Path) -> Result<Self, Error> {
        let (file, path) = gc_file(root)?;
        file.lock().map_err(io(&path))?;
        Ok(GcLock { _file: file })
    }
}

/// The lock of one cache key; the lock file is removed when it is released.
#[derive(Debug)]
pub struct KeyLock {
    file: Option<File>,
    path: PathBuf,
}

fn key_path(root: &Path, key: &Digest) -> Result<PathBuf, Error> {
    let dir = root.join("locks");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    Ok(dir.join(key.hex()))
}

impl KeyLock {
    /// Takes the lock of `key` if nobody holds it; `None` when another build does.
    pub fn try_acquire(root: &Path, key: &Digest) -> Result<Option<Self>, Error> {
        let path = key_path(root, key)?;
        Self::take(path, false)
    }

    /// Takes the lock of `key`, waiting while another build holds it (blocks the thread).
    pub fn acquire(root: &Path, key: &Digest) -> Result<Self, Error> {
        let path = key_path(root, key)?;
        match Self::take(path.clone(), true)? {
            Some(l) => Ok(l),
            None => Err(Error::Io {
                path,
                source: std::io::Error::other("lock not acquired"),
            }),
        }
    }

    fn take(path: PathBuf, wait: bool) -> Result<Option<Self>, Error> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            if wait {
                file.lock().map_err(io(&path))?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(Error::Io { path, source: e });
                    }
                }
            }
            // The holder before us removes the file as it releases it: the lock counts only
            // if the name still points at the file we locked.
            let ours = file.metadata().map_err(io(&path))?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {
                    return Ok(Some(KeyLock {
                        file: Some(file),
                        path,
                    }));
                }
                _ => continue,
            }
        }
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Removed while still locked: whoever waits on this file retries on a fresh one.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn key_locks_exclude_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of(b"k");
        let a = KeyLock::try_acquire(dir.path(), &key).unwrap().unwrap();
        assert!(KeyLock::try_acquire(dir.path(), &key).unwrap().is_none());
        drop(a);
        let b = KeyLock::try_acquire(dir.path(), &key).unwrap().unwrap();
        drop(b);
        assert_eq!(
            std::fs::read_dir(dir.path().join("locks")).unwrap().count(),
            0
        );
    }

    #[test]
    fn waiters_get_the_lock_one_at_a_time() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (dir, inside, most) = (dir.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _l = KeyLock::acquire(dir.path(), &Digest::of(b"k")).unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn gc_lock_is_shared_by_builds_and_exclusive_for_a_pruner() {
        let dir = tempfile::tempdir().unwrap();
        let a = GcLock::try_shared(dir.path()).unwrap().unwrap();
        let b = GcLock::try_shared(dir.path()).unwrap().unwrap();
        drop((a, b));
        let x = GcLock::exclusive(dir.path()).unwrap();
        assert!(GcLock::try_shared(dir.path()).unwrap().is_none());
        drop(x);
        assert!(GcLock::try_shared(dir.path()).unwrap().is_some());
    }
}
