//! Mounting overlays, binds and tmpfs, and unmounting them whatever happens.
//!
//! Overlays are mounted with the new mount API (`fsopen` + `fsconfig("lowerdir+")`, Linux 6.8+),
//! which passes each lower directory on its own and so has no limit on the total length of the
//! options; older kernels get the classic `mount(2)` with one option string.

use rustix::fs::CWD;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};
use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::Error;

/// What a guard releases.
#[derive(Debug)]
enum Kind {
    /// A kernel mount at the target.
    Mounted,
    /// A plain directory tree made by the copying snapshotter; removed on release.
    Tree,
    /// Nothing left to release.
    Released,
}

/// A mounted filesystem (or a materialized tree), unmounted (or removed) together with its
/// mountpoint directory when dropped.
#[derive(Debug)]
pub struct MountGuard {
    target: PathBuf,
    kind: Kind,
    /// For a writable tree of the copying snapshotter: what to do with it when it is released
    /// by [`MountGuard::unmount`] (record its changes into a snapshot).
    pub(crate) capture: Option<crate::native::Capture>,
}

impl MountGuard {
    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmounts now, reporting failure (a drop unmounts too, but cannot report). For a writable
    /// snapshot of the copying snapshotter this is when its changes are recorded.
    pub fn unmount(mut self) -> Result<(), Error> {
        if let Some(c) = self.capture.take() {
            c.record(&self.target)?;
        }
        self.release()
    }

    /// A directory used where it is, with nothing to unmount or remove (for a [`Snapshotter`]
    /// whose snapshots are plain directories).
    ///
    /// [`Snapshotter`]: crate::Snapshotter
    pub fn in_place(target: PathBuf) -> Self {
        MountGuard {
            target,
            kind: Kind::Released,
            capture: None,
        }
    }

    pub(crate) fn tree(target: PathBuf) -> Self {
        MountGuard {
            target,
            kind: Kind::Tree,
            capture: None,
        }
    }

    fn release(&mut self) -> Result<(), Error> {
        match std::mem::replace(&mut self.kind, Kind::Released) {
            Kind::Mounted => {
                if let Err(e) = rustix::mount::unmount(&self.target, UnmountFlags::empty()) {
                    tracing::warn!(target = %self.target.display(), error = %e, "unmount busy, detaching");
                    rustix::mount::unmount(&self.target, UnmountFlags::DETACH).map_err(|e| {
                        Error::Mount {
                            target: self.target.clone(),
                            message: format!("unmount: {e}"),
                        }
                    })?;
                }
                remove_mountpoint(&self.target)
            }
            Kind::Tree => crate::native::remove_tree(&self.target),
            Kind::Released => Ok(()),
        }
    }
}

fn remove_mountpoint(target: &Path) -> Result<(), Error> {
    match std::fs::remove_dir(target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(target, e)),
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

/// Creates `target` (which must not exist) and a guard that removes it again.
fn mountpoint(target: &Path) -> Result<MountGuard, Error> {
    std::fs::create_dir(target).map_err(|e| Error::io(target, e))?;
    Ok(MountGuard {
        target: target.to_path_buf(),
        kind: Kind::Released,
        capture: None,
    })
}

/// The options every overlay of ours gets: no inode index, no redirects, no metacopy, so that
/// upper directories stay plain trees the exporter can read.
const OVERLAY_FLAGS: [(&str, &str); 3] = [
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
];

/// Mounts an overlay at `target` (created, must not exist): `lowers` top first, and an
/// optional (upper, work) pair for a writable mount.
pub(crate) fn overlay(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<MountGuard, Error> {
    let mut guard = mountpoint(target)?;
    match overlay_fsopen(lowers, upper, target) {
        Ok(()) => {}
        // ENOSYS: no new mount API; EINVAL: a kernel without `lowerdir+` (before 6.8).
        Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::INVAL => {
            tracing::debug!(error = %e, "fsopen overlay failed, using mount(2)");
            overlay_legacy(lowers, upper, target)?;
        }
        Err(e) => {
            return Err(Error::Mount {
                target: target.to_path_buf(),
                message: format!("overlay mount of {} layer(s) failed: {e}", lowers.len()),
            });
        }
    }
    guard.kind = Kind::Mounted;
    Ok(guard)
}

fn overlay_fsopen(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<(), rustix::io::Errno> {
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for l in lowers {
        rustix::mount::fsconfig_set_string(&fs, "lowerdir+", l)?;
    }
    if let Some((up, work)) = upper {
        rustix::mount::fsconfig_set_string(&fs, "upperdir", up)?;
        rustix::mount::fsconfig_set_string(&fs, "workdir", work)?;
    }
    for (k, v) in OVERLAY_FLAGS {
        rustix::mount::fsconfig_set_string(&fs, k, v)?;
    }
    rustix::mount::fsconfig_create(&fs)?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    rustix::mount::move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

fn overlay_legacy(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<(), Error> {
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
    for (k, v) in OVERLAY_FLAGS {
        opts.push_str(&format!(",{k}={v}"));
    }
    let data = c_opts(&opts, target)?;
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
    })
}

/// True when this kernel can mount an overlay with its upper directory under `scratch` (a
/// directory on the filesystem snapshots live on).
pub(crate) fn overlay_works(scratch: &Path) -> bool {
    let probe = || -> Result<(), Error> {
        let dirs: Vec<PathBuf> = ["lower", "upper", "work"]
            .iter()
            .map(|d| scratch.join(d))
            .collect();
        for d in &dirs {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let m = overlay(
            &dirs[..1],
            Some((&dirs[1], &dirs[2])),
            &scratch.join("merged"),
        )?;
        m.unmount()
    };
    let ok = probe().is_ok();
    let _ = std::fs::remove_dir_all(scratch);
    ok
}

/// Bind-mounts `source` at `target` (created, must not exist).
pub(crate) fn bind(source: &Path, target: &Path) -> Result<MountGuard, Error> {
    let mut guard = mountpoint(target)?;
    rustix::mount::mount_bind(source, target).map_err(|e| Error::Mount {
        target: target.to_path_buf(),
        message: format!("bind mount of {}: {e}", source.display()),
    })?;
    guard.kind = Kind::Mounted;
    Ok(guard)
}

/// Mounts a tmpfs with `options` (e.g. `mode=0700,size=65536`) at `target` (created, must not
/// exist).
pub(crate) fn tmpfs(target: &Path, options: &str) -> Result<MountGuard, Error> {
    let mut guard = mountpoint(target)?;
    let data = c_opts(options, target)?;
    rustix::mount::mount(
        "tmpfs",
        target,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_c_str(),
    )
    .map_err(|e| Error::Mount {
        target: target.to_path_buf(),
        message: format!("tmpfs: {e}"),
    })?;
    guard.kind = Kind::Mounted;
    Ok(guard)
}
