//! Overlay snapshots in the style of containerd's: a snapshot is a directory of changes on top
//! of its parent; an active snapshot is writable, a committed one is frozen.
//!
//! Layout under `<root>/snapshots/<id>/`: `fs/` (the changes, an overlay upperdir), `work/` (the
//! overlay workdir, while active) and `meta.json` (parent, committed). Mountpoints live under
//! `<root>/mounts/`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::mount::{self, MountGuard};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    parent: Option<String>,
    committed: bool,
}

/// The overlay snapshotter of one xbuild root.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    mounts: PathBuf,
}

/// A writable snapshot being filled; removed when dropped uncommitted.
#[derive(Debug)]
pub struct Active {
    id: String,
    parent: Option<String>,
    dir: PathBuf,
    committed: bool,
}

impl Active {
    /// The snapshot's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory holding its changes.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove an aborted snapshot");
        }
    }
}

/// A read-only view of a committed snapshot chain: a plain directory or an overlay mount.
#[derive(Debug)]
pub enum View {
    /// The chain is one snapshot (or none): its directory, read in place.
    Dir(PathBuf),
    /// The chain's layers mounted read-only.
    Mounted(MountGuard),
}

impl View {
    /// The view's root directory.
    pub fn path(&self) -> &Path {
        match self {
            View::Dir(p) => p,
            View::Mounted(m) => m.path(),
        }
    }
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut n: u64 = rand::random();
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n & 31) as usize] as char;
            n >>= 5;
            c
        })
        .collect()
}

impl Snapshotter {
    /// The snapshotter of the xbuild root `root`.
    pub fn new(root: &Path) -> Result<Self, Error> {
        let s = Snapshotter {
            dir: root.join("snapshots"),
            mounts: root.join("mounts"),
        };
        for d in [&s.dir, &s.mounts, &s.dir.join("empty")] {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        Ok(s)
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("meta.json")
    }

    fn read_meta(&self, id: &str) -> Result<Meta, Error> {
        let p = self.meta_path(id);
        let bytes = std::fs::read(&p).map_err(|_| Error::SnapshotNotFound(id.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::io(&p, std::io::Error::other(e)))
    }

    fn write_meta(&self, id: &str, meta: &Meta) -> Result<(), Error> {
        let p = self.meta_path(id);
        let tmp = p.with_extension("tmp");
        let bytes =
            serde_json::to_vec(meta).map_err(|e| Error::io(&p, std::io::Error::other(e)))?;
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))
    }

    /// True when `id` is a committed snapshot.
    pub fn exists(&self, id: &str) -> bool {
        self.read_meta(id).map(|m| m.committed).unwrap_or(false)
    }

    /// The directory holding a snapshot's own changes.
    pub fn upper(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("fs")
    }

    /// A snapshot's parent.
    pub fn parent(&self, id: &str) -> Result<Option<String>, Error> {
        Ok(self.read_meta(id)?.parent)
    }

    /// The ids of a snapshot and its ancestors, the snapshot first.
    pub fn chain(&self, id: &str) -> Result<Vec<String>, Error> {
        let mut out = vec![id.to_string()];
        let mut cur = self.read_meta(id)?.parent;
        while let Some(p) = cur {
            if out.contains(&p) {
                return Err(Error::SnapshotNotFound(format!("{p} (parent cycle)")));
            }
            cur = self.read_meta(&p)?.parent;
            out.push(p);
        }
        Ok(out)
    }

    /// Starts a writable snapshot on top of `parent` (a committed snapshot) or of nothing.
    pub fn prepare(&self, parent: Option<&str>) -> Result<Active, Error> {
        if let Some(p) = parent
            && !self.exists(p)
        {
            return Err(Error::SnapshotNotFound(p.to_string()));
        }
        let id = new_id();
        let dir = self.dir.join(&id);
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let active = Active {
            id: id.clone(),
            parent: parent.map(str::to_string),
            dir: dir.clone(),
            committed: false,
        };
        for d in ["fs", "work"] {
            let p = dir.join(d);
            std::fs::create_dir(&p).map_err(|e| Error::io(&p, e))?;
        }
        std::fs::set_permissions(
            dir.join("fs"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| Error::io(&dir, e))?;
        self.write_meta(
            &id,
            &Meta {
                parent: active.parent.clone(),
                committed: false,
            },
        )?;
        Ok(active)
    }

    /// Mounts an active snapshot writable: its parent chain as lowers, its own dir as upper.
    pub fn mount(&self, active: &Active) -> Result<MountGuard, Error> {
        let target = self.mounts.join(format!("{}-{}", active.id, new_id()));
        match &active.parent {
            None => mount::bind(&active.upper(), &target),
            Some(p) => {
                let lowers: Vec<PathBuf> = self.chain(p)?.iter().map(|id| self.upper(id)).collect();
                let work = active.dir.join("work");
                mount::overlay(&lowers, Some((&active.upper(), &work)), &target)
            }
        }
    }

    /// Freezes an active snapshot; its id can then be a parent and be viewed.
    pub fn commit(&self, mut active: Active) -> Result<String, Error> {
        let work = active.dir.join("work");
        if work.exists() {
            std::fs::remove_dir_all(&work).map_err(|e| Error::io(&work, e))?;
        }
        sync_dir(&active.upper())?;
        self.write_meta(
            &active.id,
            &Meta {
                parent: active.parent.clone(),
                committed: true,
            },
        )?;
        active.committed = true;
        Ok(active.id.clone())
    }

    /// A read-only view of a committed snapshot with its ancestors, or of the empty filesystem.
    pub fn view(&self, id: Option<&str>) -> Result<View, Error> {
        let Some(id) = id else {
            return Ok(View::Dir(self.dir.join("empty")));
        };
        let chain = self.chain(id)?;
        if chain.len() == 1 {
            return Ok(View::Dir(self.upper(id)));
        }
        let lowers: Vec<PathBuf> = chain.iter().map(|id| self.upper(id)).collect();
        let target = self.mounts.join(format!("view-{}", new_id()));
        mount::overlay(&lowers, None, &target).map(View::Mounted)
    }
}

/// syncfs on the filesystem holding `dir`, so committed content survives a crash.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    rustix::fs::syncfs(&f).map_err(|e| Error::io(dir, e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn chain_and_abort() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(dir.path()).unwrap();
        let a = s.prepare(None).unwrap();
        std::fs::write(a.upper().join("f"), "1").unwrap();
        let a = s.commit(a).unwrap();
        let b = s.prepare(Some(&a)).unwrap();
        let b_id = b.id().to_string();
        drop(b);
        assert!(!dir.path().join("snapshots").join(&b_id).exists());
        let c = s.commit(s.prepare(Some(&a)).unwrap()).unwrap();
        assert_eq!(s.chain(&c).unwrap(), vec![c.clone(), a.clone()]);
        assert!(s.prepare(Some("nope")).is_err());
    }

    #[test]
    fn overlay_mount_and_view() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(dir.path()).unwrap();
        let a = s.prepare(None).unwrap();
        std::fs::write(a.upper().join("base"), "base").unwrap();
        let a = s.commit(a).unwrap();
        let b = s.prepare(Some(&a)).unwrap();
        {
            let m = s.mount(&b).unwrap();
            assert_eq!(
                std::fs::read_to_string(m.path().join("base")).unwrap(),
                "base"
            );
            std::fs::write(m.path().join("new"), "new").unwrap();
            m.unmount().unwrap();
        }
        assert!(b.upper().join("new").exists());
        assert!(!b.upper().join("base").exists());
        let b = s.commit(b).unwrap();
        let v = s.view(Some(&b)).unwrap();
        assert_eq!(
            std::fs::read_to_string(v.path().join("new")).unwrap(),
            "new"
        );
        assert_eq!(
            std::fs::read_to_string(v.path().join("base")).unwrap(),
            "base"
        );
        let p = v.path().to_path_buf();
        drop(v);
        assert!(!p.exists());
    }
}
