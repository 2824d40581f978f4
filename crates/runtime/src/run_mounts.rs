//! What `RUN --mount` needs on the host: persistent cache directories (shared, private or
//! locked), secrets on a tmpfs (never on disk), forwarded SSH agent sockets, and writable
//! scratch copies of bind sources.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use xbuild_llb::CacheSharing;

use crate::Error;
use crate::mount::{self, MountGuard};

/// A cache mount's directory, held for one step.
#[derive(Debug)]
pub struct CacheLease {
    path: PathBuf,
    _lock: Option<File>,
}

impl CacheLease {
    /// The directory to bind-mount.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The persistent cache directories of an xbuild root (`<root>/cache-mounts/`).
#[derive(Clone, Debug)]
pub struct CacheMounts {
    dir: PathBuf,
}

/// How a new cache directory is set up.
#[derive(Clone, Debug, Default)]
pub struct CacheInit<'a> {
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Mode bits.
    pub mode: u32,
    /// Content to start from (`from=`): a directory on the host.
    pub seed: Option<&'a Path>,
}

impl CacheMounts {
    /// The cache directories of the root `root`.
    pub fn new(root: &Path) -> Result<Self, Error> {
        let c = Self::at(root);
        std::fs::create_dir_all(&c.dir).map_err(|e| Error::io(&c.dir, e))?;
        Ok(c)
    }

    /// The cache directories of the root `root`, not created.
    pub(crate) fn at(root: &Path) -> Self {
        CacheMounts {
            dir: root.join("cache-mounts"),
        }
    }

    /// How many cache directories there are (a cache's private slots each count), and the
    /// bytes they take on disk (hard-linked files once).
    pub fn usage(&self) -> (usize, u64) {
        let mut seen = HashSet::new();
        crate::root_dirs::entries(&self.dir)
            .iter()
            .fold((0, 0), |(n, bytes), e| {
                (
                    n + 1,
                    bytes + crate::snapshot::disk_usage(&e.path(), &mut seen),
                )
            })
    }

    /// Removes every cache directory, whoever uses it (for `prune --all` when no build runs);
    /// returns how many. Stops at the first that cannot be removed.
    pub fn remove_all(&self) -> Result<usize, Error> {
        let mut n = 0;
        for e in crate::root_dirs::entries(&self.dir) {
            let p = e.path();
            std::fs::remove_dir_all(&p).map_err(|err| Error::io(&p, err))?;
            n += 1;
        }
        Ok(n)
    }

    /// The directory of cache `id` for one step: `shared` gives everyone the same directory,
    /// `locked` waits until no other step holds it, `private` gives a concurrent step its own.
    /// Blocks while waiting for a lock (call it off the async threads).
    pub fn acquire(
        &self,
        id: &str,
        sharing: CacheSharing,
        init: &CacheInit<'_>,
    ) -> Result<CacheLease, Error> {
        let key = blake3::hash(id.as_bytes()).to_hex();
        let base = self.base(id);
        match sharing {
            CacheSharing::Shared => Ok(CacheLease {
                path: self.ensure(&base, init)?,
                _lock: None,
            }),
            CacheSharing::Locked => {
                let path = self.ensure(&base, init)?;
                let lock = lock_file(&base)?;
                lock.lock().map_err(|e| Error::io(&base, e))?;
                Ok(CacheLease {
                    path,
                    _lock: Some(lock),
                })
            }
            CacheSharing::Private => {
                for n in 0u32.. {
                    let slot = if n == 0 {
                        base.clone()
                    } else {
                        self.dir.join(format!("{}-{n}", &key[..32]))
                    };
                    let path = self.ensure(&slot, init)?;
                    let lock = lock_file(&slot)?;
                    if lock.try_lock().is_ok() {
                        return Ok(CacheLease {
                            path,
                            _lock: Some(lock),
                        });
                    }
                }
                Err(Error::CacheSlotsTaken(id.to_string()))
            }
        }
    }

    /// The directory holding cache `id`'s shared contents, if the cache exists on this root.
    pub fn existing(&self, id: &str) -> Option<PathBuf> {
        let data = self.base(id).join("data");
        data.is_dir().then_some(data)
    }

    /// Creates cache `id` from a tar stream (compression detected from its content) unless the
    /// cache exists already; true when it was created. The contents appear all at once (an
    /// unpack that fails leaves nothing).
    pub fn import(&self, id: &str, tar: impl std::io::Read) -> Result<bool, Error> {
        let base = self.base(id);
        let data = base.join("data");
        if data.is_dir() {
            return Ok(false);
        }
        std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
        let tmp = base.join(format!("import-{:08x}", rand::random::<u32>()));
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let unpacked = crate::archive::decompressed(tar)
            .map_err(|e| Error::io(&tmp, e))
            .and_then(|r| crate::unpack::unpack(r, &tmp));
        if let Err(e) = unpacked {
            crate::native::remove_tree(&tmp)?;
            return Err(e);
        }
        if std::fs::rename(&tmp, &data).is_err() {
            // A step made it first; its contents win.
            crate::native::remove_tree(&tmp)?;
            return Ok(false);
        }
        Ok(true)
    }

    fn base(&self, id: &str) -> PathBuf {
        let key = blake3::hash(id.as_bytes()).to_hex();
        self.dir.join(&key[..32])
    }

    /// Creates `<slot>/data` when missing, with the init's owner, mode and seed content.
    fn ensure(&self, slot: &Path, init: &CacheInit<'_>) -> Result<PathBuf, Error> {
        let data = slot.join("data");
        if data.is_dir() {
            return Ok(data);
        }
        std::fs::create_dir_all(slot).map_err(|e| Error::io(slot, e))?;
        let tmp = slot.join(format!("new-{:08x}", rand::random::<u32>()));
        match init.seed {
            Some(seed) => crate::native::materialize(&[seed.to_path_buf()], &tmp)?,
            None => std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?,
        }
        std::os::unix::fs::chown(&tmp, Some(init.uid), Some(init.gid))
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(init.mode & 0o7777))
            .map_err(|e| Error::io(&tmp, e))?;
        if std::fs::rename(&tmp, &data).is_err() {
            // Another step made it first.
            crate::native::remove_tree(&tmp)?;
        }
        Ok(data)
    }
}

fn lock_file(slot: &Path) -> Result<File, Error> {
    let p = slot.join("lock");
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| Error::io(&p, e))
}

/// A secret as a file on a private tmpfs, for one step; unmounted (and so gone) when dropped.
#[derive(Debug)]
pub struct SecretFile {
    file: PathBuf,
    _mount: MountGuard,
}

impl SecretFile {
    /// Writes `data` to a file owned by `uid:gid` with `mode` on a fresh tmpfs under `dir`
    /// (created, must not exist).
    pub fn new(dir: &Path, data: &[u8], uid: u32, gid: u32, mode: u32) -> Result<Self, Error> {
        let m = mount::tmpfs(dir, "mode=0700,size=4m")?;
        let file = dir.join("secret");
        let mut f = File::options()
            .create_new(true)
            .write(true)
            .open(&file)
            .map_err(|e| Error::io(&file, e))?;
        f.write_all(data).map_err(|e| Error::io(&file, e))?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(|e| Error::io(&file, e))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| Error::io(&file, e))?;
        Ok(SecretFile { file, _mount: m })
    }

    /// The file to bind-mount.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// An SSH agent socket forwarded into a step: a socket of its own (with the mount's owner and
/// mode) whose connections are relayed to the caller's agent. Stops when dropped.
#[derive(Debug)]
pub struct SshForward {
    socket: PathBuf,
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl SshForward {
    /// Listens at `<dir>/agent.sock` (`dir` is created) and relays to the agent at `agent`.
    pub fn start(agent: &Path, dir: &Path, uid: u32, gid: u32, mode: u32) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let socket = dir.join("agent.sock");
        let listener =
            tokio::net::UnixListener::bind(&socket).map_err(|e| Error::io(&socket, e))?;
        std::os::unix::fs::chown(&socket, Some(uid), Some(gid))
            .map_err(|e| Error::io(&socket, e))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| Error::io(&socket, e))?;
        let agent = agent.to_path_buf();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let agent = agent.clone();
                tokio::spawn(async move {
                    match tokio::net::UnixStream::connect(&agent).await {
                        Ok(mut upstream) => {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                        Err(e) => {
                            tracing::warn!(agent = %agent.display(), error = %e, "ssh agent unreachable");
                        }
                    }
                });
            }
        });
        Ok(SshForward {
            socket,
            dir: dir.to_path_buf(),
            task,
        })
    }

    /// The socket to bind-mount.
    pub fn path(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SshForward {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A directory a step holds for a while (a scratch copy's, a secret's tmpfs, an SSH agent's
/// socket), removed with everything in it when dropped — after what was mounted in it was
/// dropped; what cannot be removed is left for the next process on the root to clean up.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// The scratch directory at `path` (a fresh path such as
    /// [`Snapshotter::scratch_path`](crate::Snapshotter::scratch_path) gives; not created).
    pub fn new(path: PathBuf) -> Self {
        ScratchDir { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "could not remove a scratch directory");
            }
        }
    }
}

/// A writable copy of a directory whose writes are thrown away, for a read-write bind mount
/// of a step (see [`Snapshotter::scratch_copy`](crate::Snapshotter::scratch_copy)): unmounted,
/// then its scratch directory removed, when dropped.
#[derive(Debug)]
pub struct ScratchCopy {
    // Dropped in this order: the mount before the directory it is in.
    mount: MountGuard,
    _dir: ScratchDir,
}

impl ScratchCopy {
    /// A writable copy of the directory `source` under `dir` (its path must not exist): an
    /// overlay with a scratch upper directory, or a plain copy when `overlay` is false. What
    /// a failure left of `dir` is removed.
    pub(crate) fn new(source: &Path, dir: ScratchDir, overlay: bool) -> Result<Self, Error> {
        let scratch = dir.path();
        std::fs::create_dir(scratch).map_err(|e| Error::io(scratch, e))?;
        let target = scratch.join("merged");
        let mount = if overlay {
            let (upper, work) = (scratch.join("upper"), scratch.join("work"));
            for d in [&upper, &work] {
                std::fs::create_dir(d).map_err(|e| Error::io(d, e))?;
            }
            mount::overlay(&[source.to_path_buf()], Some((&upper, &work)), &target)?
        } else {
            let guard = MountGuard::tree(target.clone());
            crate::native::materialize(&[source.to_path_buf()], &target)?;
            guard
        };
        Ok(ScratchCopy { mount, _dir: dir })
    }

    /// The copy's root, to bind-mount.
    pub fn path(&self) -> &Path {
        self.mount.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn cache_dirs_persist_and_lock() {
        let d = tempfile::tempdir().unwrap();
        let c = CacheMounts::new(d.path()).unwrap();
        let init = CacheInit {
            uid: 0,
            gid: 0,
            mode: 0o750,
            seed: None,
        };
        let a = c.acquire("go-build", CacheSharing::Shared, &init).unwrap();
        std::fs::write(a.path().join("x"), "1").unwrap();
        let b = c.acquire("go-build", CacheSharing::Shared, &init).unwrap();
        assert_eq!(a.path(), b.path());
        assert_eq!(std::fs::metadata(a.path()).unwrap().mode() & 0o777, 0o750);
        let p1 = c.acquire("go-build", CacheSharing::Private, &init).unwrap();
        let p2 = c.acquire("go-build", CacheSharing::Private, &init).unwrap();
        assert_ne!(
            p1.path(),
            p2.path(),
            "concurrent private users get their own"
        );
        drop(p1);
        let p3 = c.acquire("go-build", CacheSharing::Private, &init).unwrap();
        assert!(p3.path().join("x").exists(), "the first slot is free again");
        let other = c.acquire("other", CacheSharing::Locked, &init).unwrap();
        assert!(!other.path().join("x").exists());
    }

    #[test]
    fn cache_dirs_are_sized_and_removed() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(CacheMounts::at(d.path()).usage(), (0, 0));
        assert_eq!(CacheMounts::at(d.path()).remove_all().unwrap(), 0);
        assert!(
            !d.path().join("cache-mounts").exists(),
            "nothing is created"
        );
        let c = CacheMounts::new(d.path()).unwrap();
        let init = CacheInit {
            mode: 0o755,
            ..CacheInit::default()
        };
        let a = c.acquire("a", CacheSharing::Shared, &init).unwrap();
        let b = c.acquire("b", CacheSharing::Shared, &init).unwrap();
        let (n, empty) = c.usage();
        assert_eq!(n, 2);
        std::fs::write(a.path().join("x"), vec![1u8; 8192]).unwrap();
        let (_, one) = c.usage();
        assert!(one >= empty + 8192, "{empty} then {one}");
        std::fs::hard_link(a.path().join("x"), a.path().join("y")).unwrap();
        assert_eq!(c.usage(), (2, one), "a hard-linked file counts once");
        drop((a, b));
        assert_eq!(c.remove_all().unwrap(), 2);
        assert_eq!(c.usage(), (0, 0));
    }

    #[test]
    fn scratch_dirs_go_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        std::fs::create_dir_all(p.join("sub")).unwrap();
        drop(ScratchDir::new(p.clone()));
        assert!(!p.exists());
        // Never created: nothing to do.
        drop(ScratchDir::new(p));
    }

    fn scratch_copy_of(overlay: bool) {
        let d = tempfile::tempdir().unwrap();
        let source = d.path().join("source");
        std::fs::create_dir_all(source.join("sub")).unwrap();
        std::fs::write(source.join("sub/f"), "source").unwrap();
        let dir = d.path().join("scratch");
        let copy = ScratchCopy::new(&source, ScratchDir::new(dir.clone()), overlay).unwrap();
        assert_eq!(
            std::fs::read_to_string(copy.path().join("sub/f")).unwrap(),
            "source"
        );
        std::fs::write(copy.path().join("sub/f"), "changed").unwrap();
        std::fs::write(copy.path().join("new"), "new").unwrap();
        drop(copy);
        assert!(!dir.exists());
        assert_eq!(
            std::fs::read_to_string(source.join("sub/f")).unwrap(),
            "source"
        );
        assert!(!source.join("new").exists());
        // A failure leaves nothing: the scratch path exists already.
        std::fs::create_dir(&dir).unwrap();
        let taken = ScratchCopy::new(&source, ScratchDir::new(dir.clone()), overlay);
        assert!(taken.is_err());
        assert!(!dir.exists());
    }

    #[test]
    fn scratch_copies_keep_the_source_unchanged_copying() {
        if rustix::process::geteuid().is_root() {
            scratch_copy_of(false);
        }
    }

    #[test]
    fn scratch_copies_keep_the_source_unchanged_overlay() {
        if rustix::process::geteuid().is_root() {
            scratch_copy_of(true);
        }
    }

    #[test]
    fn secrets_live_on_tmpfs() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("s");
        let s = SecretFile::new(&dir, b"hunter2", 1000, 1000, 0o400).unwrap();
        assert_eq!(std::fs::read(s.path()).unwrap(), b"hunter2");
        let m = std::fs::metadata(s.path()).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (1000, 0o400));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(mounts.contains(dir.to_str().unwrap()));
        let file = s.path().to_path_buf();
        drop(s);
        assert!(!file.exists());
    }
}
