//! Writing blobs: temp file, hash while writing, fsync, rename into place.

use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Write};
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
            .join(format!("blob-{:016x}", rand::random::<u64>()));
        let file = File::create(&tmp).map_err(io(&tmp))?;
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
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(io(&self.tmp))?;
        }
        let dest = self.blobs.join(digest.hex());
        if dest.exists() {
            std::fs::remove_file(&self.tmp).map_err(io(&self.tmp))?;
        } else {
            std::fs::rename(&self.tmp, &dest).map_err(io(&dest))?;
        }
        self.tmp = PathBuf::new();
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

#[cfg(test)]
mod tests {
    use crate::Store;
    use std::io::Write;
    use xbuild_llb::Digest;

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
}
