//! The directories of an xbuild root as `prune`, `du` and the recovery after a killed build
//! see them: what of them can go. Snapshots are the
//! [`LayerSnapshotter`](crate::LayerSnapshotter)'s, cache mounts [`CacheMounts`]', the content
//! store's files `xbuild_cache::Store::usage`'s to size; what a dead build left is cleaned up
//! in `recover.rs`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::CacheMounts;

/// The directories of one xbuild root, for cleaning them up; nothing is created.
#[derive(Clone, Debug)]
pub struct RootDirs {
    root: PathBuf,
}

impl RootDirs {
    /// The directories of the xbuild root `root`.
    pub fn new(root: &Path) -> Self {
        RootDirs {
            root: root.to_path_buf(),
        }
    }

    /// The root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The root's cache mount directories (`<root>/cache-mounts/`), as they are: unlike
    /// [`CacheMounts::new`], nothing is created.
    pub fn cache_mounts(&self) -> CacheMounts {
        CacheMounts::at(&self.root)
    }

    /// Removes every entry of `<root>/tmp/` last modified before `before` (what writes a
    /// crash interrupted left); what cannot be removed stays.
    pub fn remove_tmp_before(&self, before: SystemTime) {
        for e in entries(&self.root.join("tmp")) {
            if e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
            {
                let _ =
                    std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
            }
        }
    }
}

/// The entries of `dir` that can be read; none when it cannot be listed.
pub(crate) fn entries(dir: &Path) -> Vec<std::fs::DirEntry> {
    std::fs::read_dir(dir)
        .map(|e| e.flatten().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_old_tmp_entries_go() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path().join("tmp");
        std::fs::create_dir_all(tmp.join("old-dir/sub")).unwrap();
        std::fs::write(tmp.join("old-file"), "x").unwrap();
        std::fs::write(tmp.join("young"), "x").unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let older = filetime::FileTime::from_system_time(hour_ago - Duration::from_secs(60));
        for old in ["old-dir", "old-file"] {
            filetime::set_file_mtime(tmp.join(old), older).unwrap();
        }
        RootDirs::new(d.path()).remove_tmp_before(hour_ago);
        assert!(!tmp.join("old-dir").exists());
        assert!(!tmp.join("old-file").exists());
        assert!(tmp.join("young").exists());
        // No tmp directory at all: nothing to do.
        RootDirs::new(&d.path().join("none")).remove_tmp_before(hour_ago);
    }
}
