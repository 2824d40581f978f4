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
use crate::copy::resolve_sources;
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

/// The checksum of what `src` (with wildcards when `allow_wildcard`) selects in the tree at
/// `root`. Sources that do not exist contribute their absence.
pub fn checksum(
    root: &Path,
    src: &str,
    allow_wildcard: bool,
    follow: bool,
) -> Result<[u8; 32], Error> {
    let tree = Root::open(root)?;
    let matches = resolve_sources(&tree, src, allow_wildcard, follow)?;
    let mut entries = Vec::new();
    for m in &matches {
        let Some(fd) = tree.resolve(m, follow)? else {
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
                walk(dir.as_fd(), &prefix, &mut entries).map_err(ioerr)?;
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
    total.update(b"xbuild-context-v1");
    total.update(&(matches.len() as u64).to_le_bytes());
    for (e, h) in entries.iter().zip(hashes) {
        total.update(&(e.path.len() as u64).to_le_bytes());
        total.update(&e.path);
        total.update(&h?);
    }
    Ok(*total.finalize().as_bytes())
}

fn walk(dir: BorrowedFd<'_>, prefix: &[u8], out: &mut Vec<Entry>) -> std::io::Result<()> {
    for name in list_dir(dir)? {
        let Some(st) = stat_at(dir, &name)? else {
            continue;
        };
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(name.as_bytes());
        push_entry(dir, name, st, path, out)?;
    }
    Ok(())
}

fn push_entry(
    dir: BorrowedFd<'_>,
    name: OsString,
    st: Stat,
    path: Vec<u8>,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let sub = open_nofollow(dir, &name, &st)?
                .ok_or_else(|| std::io::Error::other("not a directory"))?;
            out.push(Entry {
                path: path.clone(),
                mode: st.st_mode,
                item: Item::Dir,
            });
            walk(sub.as_fd(), &path, out)
        }
        FileType::RegularFile => {
            let f = open_nofollow(dir, &name, &st)?
                .ok_or_else(|| std::io::Error::other("not a file"))?;
            out.push(Entry {
                path,
                mode: st.st_mode,
                item: Item::File(f, st.st_size as u64),
            });
            Ok(())
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, &name, Vec::new())?;
            out.push(Entry {
                path,
                mode: st.st_mode,
                item: Item::Link(target.into_bytes()),
            });
            Ok(())
        }
        _ => {
            out.push(Entry {
                path,
                mode: st.st_mode,
                item: Item::Other(st.st_rdev),
            });
            Ok(())
        }
    }
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

    #[test]
    fn content_changes_change_the_checksum_mtimes_do_not() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/a"), "1").unwrap();
        std::fs::write(d.path().join("other"), "x").unwrap();
        let c1 = checksum(d.path(), "/src", true, true).unwrap();
        filetime::set_file_mtime(
            d.path().join("src/a"),
            filetime::FileTime::from_unix_time(5, 0),
        )
        .unwrap();
        assert_eq!(c1, checksum(d.path(), "/src", true, true).unwrap());
        std::fs::write(d.path().join("other"), "y").unwrap();
        assert_eq!(
            c1,
            checksum(d.path(), "/src", true, true).unwrap(),
            "an unselected file does not count"
        );
        std::fs::write(d.path().join("src/a"), "2").unwrap();
        assert_ne!(c1, checksum(d.path(), "/src", true, true).unwrap());
        let missing = checksum(d.path(), "/nope", true, true).unwrap();
        assert_ne!(missing, c1);
    }
}
