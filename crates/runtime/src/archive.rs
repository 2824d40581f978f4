//! `ADD` of a local archive: tar files, plain or compressed with gzip, bzip2, xz or zstd, are
//! recognised by their content (not their name) and extracted into the destination.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use crate::Error;

/// The compression a stream starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// None.
    Plain,
    /// gzip (`1f 8b`).
    Gzip,
    /// bzip2 (`BZh`).
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

/// Detects the compression from a stream's first bytes.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::Plain
    }
}

/// `r` decompressed according to its first bytes.
pub fn decompressed<'a>(r: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::new(r);
    let head = br.fill_buf()?.to_vec();
    Ok(match detect(&head) {
        Compression::Plain => Box::new(br),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(br)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(br)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
    })
}

fn open_file(fd: BorrowedFd<'_>) -> std::io::Result<File> {
    Ok(File::from(rustix::io::dup(fd)?))
}

/// True when the open regular file `fd` is a tar archive (maybe compressed): its first header
/// reads and checks out, as Docker's `ADD` decides.
pub fn is_archive(fd: BorrowedFd<'_>) -> bool {
    let Ok(f) = open_file(fd) else {
        return false;
    };
    let found = first_entry_reads(&f);
    // The duplicate shares the file offset: leave it where it was found.
    let _ = rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(0));
    found
}

fn first_entry_reads(f: &File) -> bool {
    let Ok(r) = decompressed(f) else {
        return false;
    };
    let mut ar = tar::Archive::new(r);
    let Ok(mut entries) = ar.entries() else {
        return false;
    };
    matches!(entries.next(), Some(Ok(_)))
}

/// Extracts the archive `file` into the open directory `dest`: entries keep the owners, modes
/// and times the archive records, absolute names are taken relative to `dest`, and a name with
/// `..` or a path through a symlink is refused (nothing lands outside `dest`). `.wh.` names are
/// plain files. With `max_bytes`, files adding up to more fail with
/// [`Error::ArchiveTooLarge`].
pub fn extract(
    file: OwnedFd,
    dest: OwnedFd,
    name: &Path,
    max_bytes: Option<u64>,
) -> Result<(), Error> {
    let f = File::from(file);
    let r = decompressed(f).map_err(|e| Error::io(name, e))?;
    crate::unpack::unpack_into(r, &dest, crate::unpack::TarKind::Archive, max_bytes).map_err(
        |e| match e {
            Error::BadArchive(m) => Error::BadArchive(format!("{}: {m}", name.display())),
            other => other,
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    fn tar_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_uid(1234);
            h.set_gid(5678);
            h.set_mtime(1_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            // Write the raw name so absolute and `..` names reach the archive unchanged.
            let raw = name.as_bytes();
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn compress(kind: Compression, data: &[u8]) -> Vec<u8> {
        match kind {
            Compression::Plain => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), Default::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
        }
    }

    fn fd_of(dir: &Path, name: &str, bytes: &[u8]) -> OwnedFd {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        File::open(p).unwrap().into()
    }

    #[test]
    fn every_compression_is_detected_by_content_and_extracted() {
        let d = tempfile::tempdir().unwrap();
        let tar = tar_bytes(&[("dir/hello.txt", b"hello")]);
        for (i, kind) in [
            Compression::Plain,
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Zstd,
        ]
        .into_iter()
        .enumerate()
        {
            let bytes = compress(kind, &tar);
            assert_eq!(detect(&bytes), kind);
            // A misleading name does not matter.
            let f = fd_of(d.path(), &format!("archive{i}.dat"), &bytes);
            assert!(is_archive(f.as_fd()), "{kind:?}");
            let out = d.path().join(format!("out{i}"));
            std::fs::create_dir(&out).unwrap();
            let dest: OwnedFd = File::open(&out).unwrap().into();
            extract(f, dest, Path::new("archive"), None).unwrap();
            assert_eq!(
                std::fs::read_to_string(out.join("dir/hello.txt")).unwrap(),
                "hello"
            );
        }
        let text = fd_of(d.path(), "notes.tar", b"just text, not a tar\n");
        assert!(!is_archive(text.as_fd()));
        let gz_text = fd_of(d.path(), "x.gz", &compress(Compression::Gzip, b"plain"));
        assert!(!is_archive(gz_text.as_fd()));
    }

    #[test]
    fn hostile_member_names_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        // An absolute name lands inside the destination.
        let abs = fd_of(d.path(), "abs.tar", &tar_bytes(&[("/etc/owned", b"x")]));
        extract(
            abs,
            File::open(&out).unwrap().into(),
            Path::new("abs.tar"),
            None,
        )
        .unwrap();
        assert!(out.join("etc/owned").exists());
        assert!(!d.path().join("etc").exists());
        // `..` is refused with an error naming the member.
        let up = fd_of(d.path(), "up.tar", &tar_bytes(&[("../../escaped", b"x")]));
        let err = extract(
            up,
            File::open(&out).unwrap().into(),
            Path::new("up.tar"),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("../../escaped"), "{err}");
        assert!(!d.path().join("escaped").exists());
        // A symlink planted by the archive cannot be written through.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "link", d.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "link/pwned", &b"x"[..]).unwrap();
        let f = fd_of(d.path(), "sym.tar", &b.into_inner().unwrap());
        assert!(
            extract(
                f,
                File::open(&out).unwrap().into(),
                Path::new("sym.tar"),
                None
            )
            .is_err()
        );
        assert!(!d.path().join("pwned").exists());
    }
}
