//! The client's view of a build context: [`scan`] lists what its `.dockerignore` selects,
//! each file named by the blake3 hash of its content, as the [`Manifest`] a worker is sent;
//! [`manifest_digest`] names a manifest on both ends.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use xbuild_cache::statcache::StatCache;
use xbuild_dockerignore::{Filter, FilterState, Verdict};
use xbuild_llb::{FileStamp, nanos};

use super::proto::{Entry, entry::Kind};
use super::{ContextProblem, Error};

/// A context as the client sends it.
#[derive(Debug, Default)]
pub struct Manifest {
    /// The context directory.
    pub dir: PathBuf,
    /// Every selected entry, parents before children.
    pub entries: Vec<Entry>,
    /// The file bytes the entries hold.
    pub bytes: u64,
    /// The [`manifest_digest`] of `entries`.
    pub digest: [u8; 32],
}

impl Manifest {
    /// Where each content is on the client (a file holding it), by blake3 hash.
    pub fn contents(&self) -> HashMap<[u8; 32], PathBuf> {
        let mut out = HashMap::new();
        for e in &self.entries {
            if e.kind() == Kind::File
                && let Ok(d) = <[u8; 32]>::try_from(e.digest.as_slice())
            {
                out.entry(d).or_insert_with(|| self.dir.join(&e.path));
            }
        }
        out
    }
}

/// Lists the context `dir` as `ignore` (`.dockerignore`) patterns select it, hashing files the
/// stat cache `cache` does not know. Directories are read in parallel, each through its own
/// descriptor (one-name lookups).
pub fn scan(dir: &Path, ignore: &[String], cache: &StatCache) -> Result<Manifest, Error> {
    let filter = Filter::new(&[], ignore).map_err(|e| Error::Context {
        path: dir.join(".dockerignore"),
        problem: ContextProblem::Ignore(e),
    })?;
    let root = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(dir)(e.into()))?;
    let scanner = Scanner {
        dir,
        filter: filter.as_ref(),
        cache,
    };
    let entries = scanner.dir(root.as_fd(), "", &FilterState::default())?;
    Ok(Manifest {
        dir: dir.to_path_buf(),
        digest: manifest_digest(&entries),
        bytes: entries
            .iter()
            .filter(|e| e.kind() == Kind::File)
            .map(|e| e.size)
            .sum(),
        entries,
    })
}

struct Scanner<'a> {
    dir: &'a Path,
    filter: Option<&'a Filter>,
    cache: &'a StatCache,
}

/// One place in a directory's part of the manifest.
enum Slot {
    /// An entry, complete.
    Done(Entry),
    /// A file whose content the stat cache does not know: hashed before it is done.
    Hash(Entry),
    /// Everything below the subdirectory with this index.
    Below(usize),
}

/// What the stat cache knows a file by: its device, inode, size, mtime and ctime.
pub fn stamp_of_stat(st: &rustix::fs::Stat) -> FileStamp {
    FileStamp {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        mtime_ns: nanos(st.st_mtime, st.st_mtime_nsec as i64),
        ctime_ns: nanos(st.st_ctime, st.st_ctime_nsec as i64),
    }
}

impl Scanner<'_> {
    /// The entries below the directory `fd` (at `rel`), in name order, parents first.
    /// Subdirectories are scanned in parallel, and so are the files of this one that must be
    /// hashed.
    fn dir(
        &self,
        fd: BorrowedFd<'_>,
        rel: &str,
        parent: &FilterState,
    ) -> Result<Vec<Entry>, Error> {
        let here = self.dir.join(rel);
        let mut names = Vec::new();
        let dup = rustix::io::dup(fd).map_err(|e| io(&here)(e.into()))?;
        let mut d = rustix::fs::Dir::read_from(&dup).map_err(|e| io(&here)(e.into()))?;
        while let Some(ent) = d.read() {
            let ent = ent.map_err(|e| io(&here)(e.into()))?;
            let name = ent.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        names.sort();
        let mut slots = Vec::with_capacity(names.len());
        let mut subdirs: Vec<(String, FilterState)> = Vec::new();
        let mut to_hash = false;
        for name in names {
            let Ok(name) = String::from_utf8(name) else {
                return Err(Error::Context {
                    path: here,
                    problem: ContextProblem::NonUtf8Name,
                });
            };
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let (verdict, state) = match self.filter {
                Some(f) => f.check(&path, parent),
                None => (
                    Verdict {
                        keep: true,
                        excluded: false,
                    },
                    FilterState::default(),
                ),
            };
            let st = rustix::fs::statat(fd, base_name(&path), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io(&self.dir.join(&path))(e.into()))?;
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if !is_dir && !verdict.keep {
                continue;
            }
            if is_dir && !(verdict.keep || self.filter.is_some_and(|f| f.descend(&path, verdict))) {
                continue;
            }
            let mut entry = Entry {
                mode: st.st_mode & 0o7777,
                size: 0,
                mtime_ns: nanos(st.st_mtime, st.st_mtime_nsec as i64),
                ..Entry::default()
            };
            if is_dir {
                if verdict.keep {
                    entry.path = path.clone();
                    entry.set_kind(Kind::Dir);
                    slots.push(Slot::Done(entry));
                }
                slots.push(Slot::Below(subdirs.len()));
                subdirs.push((path, state));
                continue;
            }
            entry.path = path;
            slots.push(self.leaf(fd, entry, &st, &mut to_hash)?);
        }
        if to_hash {
            slots.par_iter_mut().try_for_each(|slot| {
                if let Slot::Hash(e) = slot {
                    *slot = Slot::Done(self.hash(fd, std::mem::take(e))?);
                }
                Ok::<(), Error>(())
            })?;
        }
        let mut below: Vec<Vec<Entry>> = subdirs
            .par_iter()
            .map(|(path, state)| {
                let sub = rustix::fs::openat(
                    fd,
                    base_name(path),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io(&self.dir.join(path))(e.into()))?;
                self.dir(sub.as_fd(), path, state)
            })
            .collect::<Result<_, Error>>()?;
        let mut out = Vec::with_capacity(slots.len() + below.iter().map(Vec::len).sum::<usize>());
        for slot in slots {
            match slot {
                Slot::Done(e) | Slot::Hash(e) => out.push(e),
                Slot::Below(i) => out.append(&mut below[i]),
            }
        }
        Ok(out)
    }

    /// A file or symlink of the directory `fd`: done, with its link target or the content
    /// hash the stat cache knows, or to be hashed (`to_hash` is set then).
    fn leaf(
        &self,
        fd: BorrowedFd<'_>,
        mut e: Entry,
        st: &rustix::fs::Stat,
        to_hash: &mut bool,
    ) -> Result<Slot, Error> {
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                let abs = self.dir.join(&e.path);
                let target = rustix::fs::readlinkat(fd, base_name(&e.path), Vec::new())
                    .map_err(|err| io(&abs)(err.into()))?;
                e.set_kind(Kind::Symlink);
                e.target = target.into_string().map_err(|_| Error::Context {
                    path: abs,
                    problem: ContextProblem::NonUtf8LinkTarget,
                })?;
                Ok(Slot::Done(e))
            }
            FileType::RegularFile => {
                e.set_kind(Kind::File);
                e.size = st.st_size as u64;
                match self.cache.get(&stamp_of_stat(st)) {
                    Some(h) => {
                        e.digest = h.to_vec();
                        Ok(Slot::Done(e))
                    }
                    None => {
                        *to_hash = true;
                        Ok(Slot::Hash(e))
                    }
                }
            }
            _ => Err(Error::Context {
                path: self.dir.join(&e.path),
                problem: ContextProblem::SpecialFile,
            }),
        }
    }

    /// Hashes the file `e` of the directory `fd`, recording its hash in the stat cache.
    fn hash(&self, fd: BorrowedFd<'_>, mut e: Entry) -> Result<Entry, Error> {
        let abs = self.dir.join(&e.path);
        let f: OwnedFd = rustix::fs::openat(
            fd,
            base_name(&e.path),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| io(&abs)(err.into()))?;
        // What is hashed is what this descriptor reads: its own stamp goes into the cache and
        // the entry.
        let st = rustix::fs::fstat(&f).map_err(|err| io(&abs)(err.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Error::Context {
                path: abs,
                problem: ContextProblem::Changed,
            });
        }
        let mut h = blake3::Hasher::new();
        h.update_reader(std::fs::File::from(f)).map_err(io(&abs))?;
        let h = *h.finalize().as_bytes();
        self.cache.put(stamp_of_stat(&st), h);
        e.mode = st.st_mode & 0o7777;
        e.mtime_ns = nanos(st.st_mtime, st.st_mtime_nsec as i64);
        e.size = st.st_size as u64;
        e.digest = h.to_vec();
        Ok(e)
    }
}

/// The last component of a relative path.
fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The blake3 digest of a manifest's canonical form: every field of every entry, in order,
/// each length-prefixed. Client and worker compute it alike; a worker holding a layout of
/// the manifest with this digest needs nothing sent.
pub fn manifest_digest(entries: &[Entry]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"xbuild-context-manifest-v1");
    h.update(&(entries.len() as u64).to_le_bytes());
    for e in entries {
        h.update(&(e.path.len() as u64).to_le_bytes());
        h.update(e.path.as_bytes());
        h.update(&e.kind.to_le_bytes());
        h.update(&e.mode.to_le_bytes());
        h.update(&e.size.to_le_bytes());
        h.update(&e.mtime_ns.to_le_bytes());
        h.update(&(e.digest.len() as u64).to_le_bytes());
        h.update(&e.digest);
        h.update(&(e.target.len() as u64).to_le_bytes());
        h.update(e.target.as_bytes());
    }
    *h.finalize().as_bytes()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_digest_names_every_field_of_every_entry() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("a"), "alpha").unwrap();
        std::os::unix::fs::symlink("a", ctx.join("l")).unwrap();
        let cache = StatCache::disabled(t.path());
        let m = scan(&ctx, &[], &cache).unwrap();
        assert_eq!(m.digest, manifest_digest(&m.entries));
        let base = manifest_digest(&m.entries);
        let changes: [fn(&mut Entry); 6] = [
            |e| e.path.push('x'),
            |e| e.mode ^= 1,
            |e| e.size += 1,
            |e| e.mtime_ns += 1,
            |e| e.digest[0] ^= 1,
            |e| e.set_kind(Kind::Dir),
        ];
        for change in changes {
            let mut changed = m.entries.clone();
            change(&mut changed[0]);
            assert_ne!(manifest_digest(&changed), base);
        }
        let mut changed = m.entries.clone();
        changed[1].target.push('x');
        assert_ne!(manifest_digest(&changed), base);
        assert_ne!(manifest_digest(&m.entries[..1]), base);
    }
}
