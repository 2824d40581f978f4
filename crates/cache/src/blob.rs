//! Writing blobs (temp file, hash while writing, fsync, rename into place) and reading them
//! back verified (hash while reading, fail at the end when the content is not its digest's).

use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use xbuild_llb::Digest;

use crate::{Error, io};

/// A blob being written; [`commit`](Self::commit) makes it visible under its digest. Dropped
/// without a commit, it leaves nothing behind.
pub struct BlobWriter {
    file: Option<File>,
    tmp: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    pub(crate) fn new(root: &Path) -> Result<Self, Error> {
        let tmp = root
            .join("tmp")
            .join(format!("{PARTIAL_PREFIX}{:016x}", rand::random::<u64>()));
        // Not readable by other local users: a layer may hold setuid files and secrets.
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        // Held until the blob is committed or dropped: a partial blob whose lock is free
        // belongs to a process that died (see [`clean_partial_blobs`]).
        file.try_lock().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(&tmp)(io::Error::other(e))
        })?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            blobs: root.join("blobs/sha256"),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Finishes the blob. With `expected`, content that hashes otherwise is rejected and removed.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest, Error> {
        let hasher = std::mem::take(&mut self.hasher);
        let digest = Digest::from_sha256(hasher.finalize().into());
        if let Some(e) = expected
            && *e != digest
        {
            return Err(Error::DigestMismatch {
                expected: e.clone(),
                actual: digest,
            });
        }
        // Kept open (and locked) until it is renamed into place.
        let file = self.file.take();
        if let Some(f) = &file {
            f.sync_all().map_err(io(&self.tmp))?;
        }
        // Replacing a blob already there is harmless (same content) and heals a corrupt one.
        let dest = self.blobs.join(digest.hex());
        std::fs::rename(&self.tmp, &dest).map_err(io(&dest))?;
        self.tmp = PathBuf::new();
        drop(file);
        Ok(digest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The name prefix of blobs being written under `<root>/tmp/`.
const PARTIAL_PREFIX: &str = "blob-";

/// How long an unlocked partial blob is left alone: the moment between its creation and its
/// writer taking the lock.
const PARTIAL_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the partial blobs under `<root>/tmp/` that a killed process left (their lock is
/// free); returns how many. A live writer holds its lock, and its file stays.
pub fn clean_partial_blobs(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root.join("tmp")) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let young = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < PARTIAL_GRACE);
        if !meta.is_file() || young {
            continue;
        }
        let path = e.path();
        // `DirEntry::metadata` does not follow symlinks: only regular files get here, so the
        // open never blocks (`<root>/tmp` is closed to other users, nobody swaps them).
        let Ok(f) = File::open(&path) else {
            continue;
        };
        if f.try_lock().is_err() {
            continue; // its writer is alive
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::warn!(file = %path.display(), "removed a blob a dead process left half-written");
            removed += 1;
        }
    }
    removed
}

/// A stored blob being read: hashes what passes through it and, at the end of the content,
/// fails with [`Error::CorruptBlob`] (as an [`io::ErrorKind::InvalidData`] error from
/// [`read`](Read::read)) when the content is not what its digest says. A consumer must not
/// publish what it made of the content before the end was reached: tar readers stop early,
/// so call [`finish`](Self::finish) once done.
pub struct BlobReader {
    file: File,
    path: PathBuf,
    expected: Digest,
    hasher: Sha256,
    size: u64,
    /// What the content hashed to, once its end was reached.
    actual: Option<Digest>,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("path", &self.path)
            .field("expected", &self.expected)
            .field("size", &self.size)
            .finish()
    }
}

impl BlobReader {
    pub(crate) fn open(path: PathBuf, expected: &Digest) -> Result<Self, Error> {
        let file = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::MissingBlob(expected.clone())
            } else {
                Error::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        Ok(BlobReader {
            file,
            path,
            expected: expected.clone(),
            hasher: Sha256::new(),
            size: 0,
            actual: None,
        })
    }

    /// The blob's size on disk (what a complete read yields).
    pub fn size_on_disk(&self) -> Result<u64, Error> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(io(&self.path))
    }

    /// The digest the content must have.
    pub fn digest(&self) -> &Digest {
        &self.expected
    }

    /// Reads what is left (to nothing) and checks the digest; the blob's size.
    pub fn finish(mut self) -> Result<u64, Error> {
        match io::copy(&mut self, &mut io::sink()) {
            Ok(_) => Ok(self.size),
            Err(e) => Err(into_store_error(e, &self.path)),
        }
    }

    fn check(&mut self) -> Result<(), Error> {
        let actual = match &self.actual {
            Some(a) => a.clone(),
            None => {
                let a = Digest::from_sha256(std::mem::take(&mut self.hasher).finalize().into());
                self.actual = Some(a.clone());
                a
            }
        };
        if actual != self.expected {
            tracing::error!(digest = %self.expected, %actual, path = %self.path.display(), "corrupt blob");
            return Err(Error::CorruptBlob {
                digest: self.expected.clone(),
                actual,
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.check()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Hashes (sha256) what is read through it: the diff_id of a decompressed layer stream.
#[derive(Debug)]
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> DigestReader<R> {
    /// Hashes what is read from `inner`.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads what is left of the stream (to nothing) and returns the digest of all of it.
    pub fn finish(mut self) -> io::Result<Digest> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(Digest::from_sha256(self.hasher.finalize().into()))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The store error an I/O error from a [`BlobReader`] carries (a corrupt blob), or the I/O
/// error itself, on `path`.
pub fn into_store_error(e: io::Error, path: &Path) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(store)) => *store,
            Some(Err(other)) => Error::Io {
                path: path.to_path_buf(),
                source: io::Error::other(other),
            },
            None => Error::Io {
                path: path.to_path_buf(),
                source: io::Error::other("blob read failed"),
            },
        }
    } else {
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Error, Store};
    use std::io::{Read, Write};
    use xbuild_llb::Digest;

    /// A killed process left its half-written blob in `<root>/tmp` for good.
    #[test]
    fn half_written_blobs_of_dead_processes_are_cleaned_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tmp = dir.path().join("tmp");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        let aged = |p: &std::path::Path| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        };
        let mut live = store.blob_writer().unwrap();
        live.write_all(b"live").unwrap();
        let live_file = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .next()
            .unwrap();
        aged(&live_file);
        aged(&tmp.join("blob-dead"));
        std::fs::write(tmp.join("blob-young"), b"x").unwrap();
        aged(&tmp.join("context-other"));

        assert_eq!(super::clean_partial_blobs(dir.path()), 1);
        assert!(!tmp.join("blob-dead").exists());
        assert!(live_file.exists(), "a live writer's blob was removed");
        assert!(tmp.join("blob-young").exists());
        assert!(tmp.join("context-other").exists());
        let d = live.commit(None).unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), b"live");
    }

    #[test]
    fn wrong_digest_is_rejected_and_nothing_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"evil").unwrap();
        let err = w.commit(Some(&Digest::of(b"good"))).unwrap_err();
        assert!(err.to_string().contains("hashes to"), "{err}");
        assert!(!store.has_blob(&Digest::of(b"evil")));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn dropped_writer_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn same_content_twice_is_one_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.put_blob(b"x").unwrap();
        let b = store.put_blob(b"x").unwrap();
        assert_eq!(a, b);
        assert_eq!(store.blob_size(&a).unwrap(), 1);
    }

    #[test]
    fn flipped_byte_in_a_stored_blob_fails_reads_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob(b"layer content").unwrap();
        let p = store.blob_path(&d);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let err = store.read_blob(&d).unwrap_err();
        assert!(matches!(err, Error::CorruptBlob { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(d.as_str()) && msg.contains("xbuild store verify"),
            "{msg}"
        );
        // Streaming: the bytes come through, the end does not.
        let mut r = store.open_blob(&d).unwrap();
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains(d.as_str()), "{e}");
        let r = store.open_blob(&d).unwrap();
        assert!(matches!(r.finish(), Err(Error::CorruptBlob { .. })));
        // A good blob reads through and finishes.
        let good = store.put_blob(b"fine").unwrap();
        let mut r = store.open_blob(&good).unwrap();
        let mut out = [0u8; 2];
        r.read_exact(&mut out).unwrap();
        assert_eq!(r.finish().unwrap(), 4);
        // Writing the right content again heals it.
        let again = store.put_blob(b"layer content").unwrap();
        assert_eq!(again, d);
        assert_eq!(store.read_blob(&d).unwrap(), b"layer content");
    }
}
