//! Mounting overlays and binds, and unmounting them whatever happens.

use rustix::mount::{MountFlags, UnmountFlags};
use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::Error;

/// A mounted filesystem, unmounted (and its mountpoint directory removed) when dropped.
#[derive(Debug)]
pub struct MountGuard {
    target: PathBuf,
    mounted: bool,
}

impl MountGuard {
    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmounts now, reporting failure (a drop unmounts too, but cannot report).
    pub fn unmount(mut self) -> Result<(), Error> {
        self.release()
    }

    fn release(&mut self) -> Result<(), Error> {
        if self.mounted {
            self.mounted = false;
            if let Err(e) = rustix::mount::unmount(&self.target, UnmountFlags::empty()) {
                tracing::warn!(target = %self.target.display(), error = %e, "unmount busy, detaching");
                rustix::mount::unmount(&self.target, UnmountFlags::DETACH).map_err(|e| {
                    Error::Mount {
                        target: self.target.clone(),
                        message: format!("unmount: {e}"),
                    }
                })?;
            }
        }
        match std::fs::remove_dir(&self.target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.target, e)),
        }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            tracing::error!(error = %e, "leaving a mount behind");
        }
    }
}

fn c_opts(opts: &str, target: &Path) -> Result<CString, Error> {
    CString::new(opts).map_err(|_| Error::Mount {
        target: target.to_path_buf(),
        message: "mount options contain a NUL byte".into(),
    })
}

/// Mounts an overlay at `target` (created, must not exist): `lowers` top first, and an
/// optional (upper, work) pair for a writable mount.
pub(crate) fn overlay(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<MountGuard, Error> {
    let mut opts = String::from("lowerdir=");
    let lowers: Vec<String> = lowers
        .iter()
        .map(|p| p.display().to_string().replace(':', "\\:"))
        .collect();
    opts.push_str(&lowers.join(":"));
    if let Some((up, work)) = upper {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            up.display(),
            work.display()
        ));
    }
    opts.push_str(",index=off,redirect_dir=off,metacopy=off");
    let data = c_opts(&opts, target)?;
    std::fs::create_dir(target).map_err(|e| Error::io(target, e))?;
    let mut guard = MountGuard {
        target: target.to_path_buf(),
        mounted: false,
    };
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .map_err(|e| Error::Mount {
        target: target.to_path_buf(),
        message: format!(
            "overlay mount of {} layer(s) failed: {e} (options: {} bytes)",
            lowers.len(),
            opts.len()
        ),
    })?;
    guard.mounted = true;
    Ok(guard)
}

/// Bind-mounts `source` at `target` (created, must not exist).
pub(crate) fn bind(source: &Path, target: &Path) -> Result<MountGuard, Error> {
    std::fs::create_dir(target).map_err(|e| Error::io(target, e))?;
    let mut guard = MountGuard {
        target: target.to_path_buf(),
        mounted: false,
    };
    rustix::mount::mount_bind(source, target).map_err(|e| Error::Mount {
        target: target.to_path_buf(),
        message: format!("bind mount of {}: {e}", source.display()),
    })?;
    guard.mounted = true;
    Ok(guard)
}
