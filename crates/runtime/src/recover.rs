//! Cleaning up after a process that died mid-build (`kill -9`, OOM, power loss of a VM).
//!
//! Everything a build creates on the host carries the id of its session (its owner): runc
//! containers and bundles are `xbuild-<owner>-…`, mountpoints `<root>/mounts/<owner>-…`, and
//! snapshots being filled are listed in `<root>/active/<owner>/`. Once the owner is known to be
//! dead (its session lock is free, see `xbuild_cache::lease`), [`RootDirs::clean_owner`] kills
//! its containers, unmounts its mounts and its RUN network namespace
//! (`<root>/netns/xbuild-<owner>-…`, whose slirp4netns exited with the owner), and removes its
//! bundles, mountpoints and uncommitted snapshots. It never removes a directory that still has
//! something mounted in it. [`RootDirs::clean_scratch`] removes the scratch contexts under
//! `<root>/tmp/` of processes that are gone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::mount::UnmountFlags;

use crate::{Error, RootDirs};

/// What [`RootDirs::clean_owner`] found and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Containers killed and deleted.
    pub containers: usize,
    /// Filesystems unmounted.
    pub mounts: usize,
    /// Bundles and mountpoint directories removed.
    pub dirs: usize,
    /// Uncommitted snapshots removed.
    pub snapshots: usize,
    /// RUN network namespaces unmounted and removed.
    pub networks: usize,
}

impl Recovered {
    /// True when nothing was left behind.
    pub fn is_empty(&self) -> bool {
        *self == Recovered::default()
    }
}

/// Decodes the octal escapes (`\040`) of a mountinfo path.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&out),
    ))
}

/// Every mountpoint of this process's mount namespace.
pub fn mountpoints() -> Result<Vec<PathBuf>, Error> {
    let p = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect())
}

/// True when something is mounted at `dir` or below it.
fn has_mounts(dir: &Path, mounts: &[PathBuf]) -> bool {
    mounts.iter().any(|m| m.starts_with(dir))
}

/// Removes `dir` unless something is still mounted in it.
fn remove_unmounted(dir: &Path, mounts: &[PathBuf]) -> bool {
    if has_mounts(dir, mounts) {
        tracing::warn!(dir = %dir.display(), "still mounted; left in place");
        return false;
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a leftover");
            false
        }
    }
}

/// Entries of `dir` whose name starts with `prefix`.
fn entries_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// The name prefix of the scratch directories under `<root>/tmp/` that a process keeps locked
/// (`flock`) as long as it uses them (contexts from standard input or git).
pub const SCRATCH_PREFIX: &str = "context-";

/// How long a half-made scratch directory (`.context-….new`, made, then locked, then renamed)
/// is left alone before it counts as a dead process's.
const HALF_MADE_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

impl RootDirs {
    /// Removes the scratch directories under `<root>/tmp/` whose process is gone (their lock is
    /// free); returns how many. Those of live processes are locked and stay.
    pub fn clean_scratch(&self) -> usize {
        let tmp = self.path().join("tmp");
        let Ok(entries) = std::fs::read_dir(&tmp) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let half_made = name.starts_with(&format!(".{SCRATCH_PREFIX}"));
            if !name.starts_with(SCRATCH_PREFIX) && !half_made {
                continue;
            }
            if half_made
                && e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_none_or(|age| age < HALF_MADE_GRACE)
            {
                continue;
            }
            let path = e.path();
            let Ok(dir) = rustix::fs::open(
                &path,
                rustix::fs::OFlags::RDONLY
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::NOFOLLOW
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) else {
                continue;
            };
            if rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_err()
            {
                continue; // its process is alive
            }
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::warn!(dir = %path.display(), "removed the context of a build that died");
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(dir = %path.display(), error = %e, "could not remove a leftover context")
                }
            }
        }
        removed
    }

    /// Removes what the dead session `owner` left under the root: containers (through `runtime`,
    /// runc on PATH by default), mounts, bundles, mountpoints and uncommitted snapshots.
    pub fn clean_owner(&self, owner: &str, runtime: Option<&Path>) -> Result<Recovered, Error> {
        if owner.is_empty() || owner.contains(['/', '.']) {
            return Err(Error::InvalidSession(owner.to_string()));
        }
        let root = self.path();
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        let mut done = Recovered::default();

        // Containers first: their processes keep the mounts busy.
        let state = root.join("runc");
        let containers = entries_with_prefix(&state, &format!("xbuild-{owner}-"));
        if !containers.is_empty() {
            let runc = runtime
                .map(Path::to_path_buf)
                .or_else(|| crate::exec::find_on_path("runc"));
            for c in &containers {
                let id = c.file_name().map(|n| n.to_string_lossy().to_string());
                let (Some(runc), Some(id)) = (&runc, id) else {
                    tracing::warn!(container = %c.display(), "no runtime to kill a leftover container");
                    continue;
                };
                for args in [vec!["kill", &id, "KILL"], vec!["delete", "--force", &id]] {
                    let _ = Command::new(runc)
                        .arg("--root")
                        .arg(&state)
                        .args(&args)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
                if c.exists() {
                    tracing::warn!(container = %id, "a leftover container could not be deleted");
                } else {
                    done.containers += 1;
                }
            }
        }

        // The network namespace its steps shared: a bind mount of an nsfs file.
        for ns in entries_with_prefix(
            &root.join(crate::network::NETNS_DIR),
            &format!("xbuild-{owner}-"),
        ) {
            match rustix::mount::unmount(&ns, UnmountFlags::DETACH) {
                // EINVAL: not (or no longer) a mountpoint.
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => {
                    tracing::warn!(netns = %ns.display(), error = %e, "could not unmount a leftover");
                    continue;
                }
            }
            match std::fs::remove_file(&ns) {
                Ok(()) => done.networks += 1,
                Err(e) => {
                    tracing::warn!(netns = %ns.display(), error = %e, "could not remove a leftover")
                }
            }
        }

        // Mounts, deepest first, detached so that a busy one cannot stop the cleanup.
        let prefix = root.join("mounts").join(format!("{owner}-"));
        let prefix = prefix.to_string_lossy().to_string();
        let mut mine: Vec<PathBuf> = mountpoints()?
            .into_iter()
            .filter(|m| m.to_string_lossy().starts_with(&prefix))
            .collect();
        mine.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in &mine {
            match rustix::mount::unmount(m, UnmountFlags::DETACH) {
                Ok(()) => done.mounts += 1,
                Err(e) => {
                    tracing::warn!(mount = %m.display(), error = %e, "could not unmount a leftover")
                }
            }
        }
        let mounts = mountpoints()?;
        for d in entries_with_prefix(&root.join("mounts"), &format!("{owner}-")) {
            if remove_unmounted(&d, &mounts) {
                done.dirs += 1;
            }
        }
        for b in entries_with_prefix(&root.join("bundles"), &format!("xbuild-{owner}-")) {
            if remove_unmounted(&b, &mounts) {
                done.dirs += 1;
            }
        }

        // Snapshots it was filling.
        let active = root.join("active").join(owner);
        for marker in entries_with_prefix(&active, "") {
            let Some(id) = marker.file_name().map(|n| n.to_string_lossy().to_string()) else {
                continue;
            };
            let dir = root.join("snapshots").join(&id);
            let committed = std::fs::read(dir.join("meta.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|m| m["committed"] == serde_json::Value::Bool(true));
            if !committed && !id.contains('.') && remove_unmounted(&dir, &mounts) {
                done.snapshots += 1;
            }
            let _ = std::fs::remove_file(&marker);
        }
        let _ = std::fs::remove_dir(&active);
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Snapshotter;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape("/tail\\04"), PathBuf::from("/tail\\04"));
    }

    #[test]
    fn scratch_contexts_of_dead_processes_go() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        for d in [
            "context-dead/sub",
            "context-live",
            ".context-young.new",
            "fetch-other",
        ] {
            std::fs::create_dir_all(tmp.join(d)).unwrap();
        }
        let live = std::fs::File::open(tmp.join("context-live")).unwrap();
        rustix::fs::flock(&live, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
        let dirs = RootDirs::new(dir.path());
        assert_eq!(dirs.clean_scratch(), 1);
        assert!(!tmp.join("context-dead").exists());
        for kept in ["context-live", ".context-young.new", "fetch-other"] {
            assert!(tmp.join(kept).exists(), "{kept}");
        }
        assert_eq!(RootDirs::new(&dir.path().join("none")).clean_scratch(), 0);
    }

    #[test]
    fn leftovers_of_a_dead_owner_go_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let snaps = crate::LayerSnapshotter::with_kind(root, crate::SnapshotterKind::Native)
            .unwrap()
            .with_owner("42-dead");
        let a = snaps.prepare(None).unwrap();
        let committed = snaps.commit(snaps.prepare(None).unwrap()).unwrap();
        let id = a.id().to_string();
        // The process "dies": nothing of it runs its cleanup.
        std::mem::forget(a);
        std::fs::create_dir_all(root.join("mounts/42-dead-run-x/sub")).unwrap();
        std::fs::create_dir_all(root.join("mounts/7-alive-run-y")).unwrap();
        std::fs::create_dir_all(root.join("bundles/xbuild-42-dead-0001")).unwrap();
        let dirs = RootDirs::new(root);
        let r = dirs.clean_owner("42-dead", None).unwrap();
        assert_eq!(r.snapshots, 1);
        assert_eq!(r.dirs, 2);
        assert!(!root.join("snapshots").join(&id).exists());
        assert!(snaps.exists(&committed));
        assert!(root.join("mounts/7-alive-run-y").exists());
        assert!(!root.join("active/42-dead").exists());
        assert!(dirs.clean_owner("../x", None).is_err());
    }
}
