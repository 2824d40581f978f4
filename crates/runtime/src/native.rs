//! The copying side of snapshots: applying layer directories onto a plain tree, and recording
//! what a step changed in such a tree as a layer directory.
//!
//! Layer directories (snapshot `fs/` dirs) have the overlay upperdir format whatever snapshotter
//! made them: a 0/0 character device is a deletion and `trusted.overlay.opaque=y` marks a
//! directory that replaced the one below. The copying snapshotter materializes a chain by
//! applying its layers bottom-up ([`materialize`]); after a step, [`Capture::record`] compares
//! the tree with what was materialized and writes the differences as a layer directory, so that
//! the exporter reads both snapshotters' snapshots the same way.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;
use crate::fsops::{Copier, CopyMeta, list_dir, open_dir_at, remove_at, stat_at};
use crate::unpack::OPAQUE_XATTR;

/// True for an overlay whiteout (a 0/0 character device).
pub(crate) fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// True when the directory `fd` carries the overlay opaque marker.
pub(crate) fn is_opaque(fd: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4];
    matches!(rustix::fs::fgetxattr(fd, OPAQUE_XATTR, &mut buf), Ok(1) if buf[0] == b'y')
}

fn open_root(p: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(p, e.into()))
}

/// Builds at `dest` (created, must not exist) the tree that `layers` (bottom first) make when
/// stacked, copying content (reflinks where the filesystem offers them).
pub(crate) fn materialize(layers: &[PathBuf], dest: &Path) -> Result<(), Error> {
    std::fs::create_dir(dest).map_err(|e| Error::io(dest, e))?;
    rustix::fs::chmod(dest, Mode::from_raw_mode(0o755)).map_err(|e| Error::io(dest, e.into()))?;
    let root = Arc::new(open_root(dest)?);
    for layer in layers {
        let src = open_root(layer)?;
        let mut copier = Copier::new(CopyMeta {
            keep_owner: true,
            ..CopyMeta::default()
        });
        apply_dir(&mut copier, src.as_fd(), &root).map_err(|e| Error::io(layer, e))?;
    }
    Ok(())
}

/// Applies the layer directory `src` onto the tree directory `dst`.
fn apply_dir(copier: &mut Copier, src: BorrowedFd<'_>, dst: &Arc<OwnedFd>) -> std::io::Result<()> {
    for name in list_dir(src)? {
        let Some(st) = stat_at(src, &name)? else {
            continue;
        };
        let existing = stat_at(dst.as_fd(), &name)?;
        let existing_dir =
            existing.is_some_and(|e| FileType::from_raw_mode(e.st_mode) == FileType::Directory);
        if is_whiteout(&st) {
            if existing.is_some() {
                remove_at(dst.as_fd(), &name, existing_dir)?;
            }
            continue;
        }
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            copier.copy_entry(src, &name, &st, dst, &name)?;
            continue;
        }
        let sub = open_dir_at(src, &name)?;
        if existing.is_some() && (!existing_dir || is_opaque(sub.as_fd())) {
            remove_at(dst.as_fd(), &name, existing_dir)?;
        }
        let out = Arc::new(copier.copy_dir_only(&sub, &st, dst, &name)?);
        crate::fsops::deeper(|| apply_dir(copier, sub.as_fd(), &out))?;
        copier.finish_dir(&out, &st)?;
    }
    Ok(())
}

/// Removes a tree made by [`materialize`] (nothing in it is mounted).
pub(crate) fn remove_tree(p: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// What identifies an entry's state: if any of it differs afterwards, the entry changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    size: i64,
    mtime: (i64, u64),
    ctime: (i64, u64),
    /// A directory's birth time: tells a directory re-created with a reused inode number
    /// from the one that was there.
    born: Option<(i64, u32)>,
}

fn birth(dir: BorrowedFd<'_>, name: &OsStr) -> Option<(i64, u32)> {
    let sx = rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        rustix::fs::StatxFlags::BTIME,
    )
    .ok()?;
    (sx.stx_mask & rustix::fs::StatxFlags::BTIME.bits() != 0)
        .then_some((sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec))
}

impl Fingerprint {
    fn of(st: &Stat) -> Self {
        Fingerprint {
            ino: st.st_ino,
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
            born: None,
        }
    }

    /// The fingerprint of entry `name` in `dir`, stat'ed as `st`.
    fn at(dir: BorrowedFd<'_>, name: &OsStr, st: &Stat) -> Self {
        let mut f = Self::of(st);
        if f.is_dir() {
            f.born = birth(dir, name);
        }
        f
    }

    fn is_dir(&self) -> bool {
        FileType::from_raw_mode(self.mode) == FileType::Directory
    }
}

/// The state of a materialized tree before a step, to find what the step changed.
#[derive(Debug)]
pub(crate) struct Capture {
    before: HashMap<PathBuf, Fingerprint>,
    children: HashMap<PathBuf, Vec<OsString>>,
    upper: PathBuf,
}

impl Capture {
    /// Fingerprints every entry of `tree`; [`record`](Self::record) later writes the changes
    /// into the layer directory `upper`.
    pub(crate) fn take(tree: &Path, upper: PathBuf) -> Result<Self, Error> {
        let mut c = Capture {
            before: HashMap::new(),
            children: HashMap::new(),
            upper,
        };
        let root = open_root(tree)?;
        c.fingerprint(root.as_fd(), Path::new(""))
            .map_err(|e| Error::io(tree, e))?;
        Ok(c)
    }

    /// Compares `tree` with its state when captured and writes every difference into the layer
    /// directory: added and modified entries with their parent directories, whiteouts for
    /// deleted entries, and opaque directories for directories that were replaced.
    pub(crate) fn record(self, tree: &Path) -> Result<(), Error> {
        let src = open_root(tree)?;
        let upper = Arc::new(open_root(&self.upper)?);
        let mut w = Recorder {
            before: &self.before,
            children: &self.children,
            copier: Copier::new(CopyMeta {
                keep_owner: true,
                ..CopyMeta::default()
            }),
        };
        w.dir(src.as_fd(), Path::new(""), &upper, false)
            .map_err(|e| Error::io(tree, e))?;
        Ok(())
    }

    fn fingerprint(&mut self, dir: BorrowedFd<'_>, rel: &Path) -> std::io::Result<()> {
        let names = list_dir(dir)?;
        for name in &names {
            let Some(st) = stat_at(dir, name)? else {
                continue;
            };
            let p = rel.join(name);
            let f = Fingerprint::at(dir, name, &st);
            self.before.insert(p.clone(), f);
            if f.is_dir() {
                let sub = open_dir_at(dir, name)?;
                crate::fsops::deeper(|| self.fingerprint(sub.as_fd(), &p))?;
            }
        }
        self.children.insert(rel.to_path_buf(), names);
        Ok(())
    }
}

struct Recorder<'a> {
    before: &'a HashMap<PathBuf, Fingerprint>,
    children: &'a HashMap<PathBuf, Vec<OsString>>,
    copier: Copier,
}

impl Recorder<'_> {
    /// Records the changes below tree directory `src` (at `rel`) into layer directory `out`
    /// (which exists). `fresh`: the directory is new, so everything in it is new too.
    /// Returns whether anything was recorded.
    fn dir(
        &mut self,
        src: BorrowedFd<'_>,
        rel: &Path,
        out: &Arc<OwnedFd>,
        fresh: bool,
    ) -> std::io::Result<bool> {
        let names = list_dir(src)?;
        let mut any = false;
        if !fresh {
            // Deleted entries: were directly in this directory before, are not now.
            let present: std::collections::HashSet<&OsStr> =
                names.iter().map(OsString::as_os_str).collect();
            let had = self
                .children
                .get(rel)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for n in had.iter().filter(|n| !present.contains(n.as_os_str())) {
                rustix::fs::mknodat(out.as_fd(), n, FileType::CharacterDevice, Mode::empty(), 0)?;
                any = true;
            }
        }
        for name in names {
            let Some(st) = stat_at(src, &name)? else {
                continue;
            };
            let p = rel.join(&name);
            let now = Fingerprint::at(src, &name, &st);
            let was = if fresh { None } else { self.before.get(&p) };
            if now.is_dir() {
                let replaced =
                    was.is_none_or(|w| !w.is_dir() || w.ino != now.ino || w.born != now.born);
                let sub = open_dir_at(src, &name)?;
                let changed = was != Some(&now);
                // Create the directory in the layer first; drop it again when nothing below
                // changed and it did not change itself.
                let created = stat_at(out.as_fd(), &name)?.is_none();
                let layer_dir = Arc::new(self.copier.copy_dir_only(&sub, &st, out, &name)?);
                let below =
                    crate::fsops::deeper(|| self.dir(sub.as_fd(), &p, &layer_dir, replaced))?;
                if replaced && was.is_some() {
                    rustix::fs::fsetxattr(
                        &*layer_dir,
                        OPAQUE_XATTR,
                        b"y",
                        rustix::fs::XattrFlags::empty(),
                    )?;
                }
                if below || changed || replaced {
                    self.copier.finish_dir(&layer_dir, &st)?;
                    any = true;
                } else if created {
                    drop(layer_dir);
                    rustix::fs::unlinkat(out.as_fd(), &name, AtFlags::REMOVEDIR)?;
                }
                continue;
            }
            if was == Some(&now) {
                continue;
            }
            if let Some(existing) = stat_at(out.as_fd(), &name)? {
                let d = FileType::from_raw_mode(existing.st_mode) == FileType::Directory;
                remove_at(out.as_fd(), &name, d)?;
            }
            self.copier.copy_entry(src, &name, &st, out, &name)?;
            any = true;
        }
        Ok(any)
    }
}

/// Copies the layer directory `src` to `dst` (created, must not exist), hard-linking every
/// non-directory entry: a layer re-used on another parent without copying its content.
pub(crate) fn link_layer(src: &Path, dst: &Path) -> Result<(), Error> {
    std::fs::create_dir(dst).map_err(|e| Error::io(dst, e))?;
    let s = open_root(src)?;
    let st = rustix::fs::fstat(&s).map_err(|e| Error::io(src, e.into()))?;
    let d = Arc::new(open_root(dst)?);
    let mut copier = Copier::new(CopyMeta {
        keep_owner: true,
        ..CopyMeta::default()
    });
    link_dir(&mut copier, s.as_fd(), &d).map_err(|e| Error::io(src, e))?;
    copier.finish_dir(&d, &st).map_err(|e| Error::io(dst, e))?;
    if is_opaque(s.as_fd()) {
        rustix::fs::fsetxattr(&*d, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
            .map_err(|e| Error::io(dst, e.into()))?;
    }
    Ok(())
}

fn link_dir(copier: &mut Copier, src: BorrowedFd<'_>, dst: &Arc<OwnedFd>) -> std::io::Result<()> {
    for name in list_dir(src)? {
        let Some(st) = stat_at(src, &name)? else {
            continue;
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let sub = open_dir_at(src, &name)?;
            let out = Arc::new(copier.copy_dir_only(&sub, &st, dst, &name)?);
            if is_opaque(sub.as_fd()) {
                rustix::fs::fsetxattr(&*out, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())?;
            }
            crate::fsops::deeper(|| link_dir(copier, sub.as_fd(), &out))?;
            copier.finish_dir(&out, &st)?;
        } else {
            rustix::fs::linkat(src, &name, dst.as_fd(), &name, AtFlags::empty())?;
        }
    }
    Ok(())
}
