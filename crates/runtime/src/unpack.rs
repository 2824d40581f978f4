//! Unpacking a layer tar into a snapshot's directory, safely, with OCI whiteouts turned into
//! overlay whiteouts (`.wh.x` → a 0/0 character device, `.wh..wh..opq` → the opaque xattr).
//!
//! No entry can write outside the directory: absolute names are taken relative to it, `..` is
//! refused, and every step into a directory refuses to follow a symlink.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::Error;
use crate::fsops::{chown_at, mkdir_at, remove_at, stat_at};

/// The overlay xattr marking a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an unpack wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries written.
    pub entries: u64,
    /// Whiteouts converted.
    pub whiteouts: u64,
}

fn bad(entry: &[u8], why: impl std::fmt::Display) -> Error {
    Error::BadArchive(format!("entry {:?}: {why}", String::from_utf8_lossy(entry)))
}

/// The entry's path as clean components; `..` is refused.
fn components(raw: &[u8]) -> Result<Vec<OsString>, Error> {
    let mut out = Vec::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                return Err(bad(
                    raw,
                    "`..` in a member name would escape the destination",
                ));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Opens (creating as 0755 root-owned directories) every directory on the way to an entry.
fn open_parent(root: &OwnedFd, comps: &[OsString], raw: &[u8]) -> Result<OwnedFd, Error> {
    let mut fd = rustix::io::dup(root).map_err(|e| bad(raw, e))?;
    for c in comps {
        fd = mkdir_at(fd.as_fd(), c, 0o755, Some((0, 0))).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
                bad(
                    raw,
                    "a parent directory is a symlink or a file; refusing to write through it",
                )
            } else {
                bad(raw, e)
            }
        })?;
    }
    Ok(fd)
}

/// Unpacks the uncompressed layer tar `r` into `dest` (a snapshot's directory), turning OCI
/// whiteouts into overlay whiteouts.
pub fn unpack(r: impl Read, dest: &Path) -> Result<UnpackStats, Error> {
    let root: OwnedFd = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(dest, e.into()))?;
    unpack_into(r, &root, true)
}

/// Unpacks the uncompressed tar `r` into the open directory `root`; `layer`: the tar is an
/// image layer whose whiteouts become overlay whiteouts (else `.wh.` names are plain files, as
/// in Docker's `ADD`).
pub fn unpack_into(r: impl Read, root: &OwnedFd, layer: bool) -> Result<UnpackStats, Error> {
    let mut ar = tar::Archive::new(r);
    let mut stats = UnpackStats::default();
    let mut dir_times: Vec<(Vec<OsString>, i64)> = Vec::new();
    let entries = ar.entries().map_err(|e| Error::BadArchive(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::BadArchive(e.to_string()))?;
        let raw = entry.path_bytes().into_owned();
        let comps = components(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            continue; // `./` itself: the destination keeps its metadata
        };
        let parent = open_parent(root, parents, &raw)?;
        let p = parent.as_fd();
        let name_bytes = name.as_bytes();
        if layer && name_bytes == b".wh..wh..opq" {
            rustix::fs::fsetxattr(&parent, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
                .map_err(|e| bad(&raw, format!("setting the opaque xattr: {e}")))?;
            stats.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = name_bytes.strip_prefix(b".wh.").filter(|_| layer) {
            let hidden = OsStr::from_bytes(hidden);
            replace(p, hidden, &raw)?;
            rustix::fs::mknodat(p, hidden, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(|e| bad(&raw, e))?;
            stats.whiteouts += 1;
            continue;
        }
        let h = entry.header().clone();
        let mode = h.mode().map_err(|e| bad(&raw, e))? & 0o7777;
        let uid = h.uid().map_err(|e| bad(&raw, e))? as u32;
        let gid = h.gid().map_err(|e| bad(&raw, e))? as u32;
        let mtime = h.mtime().map_err(|e| bad(&raw, e))? as i64;
        let kind = h.entry_type();
        let xattrs = pax_xattrs(&mut entry);
        let err = |e: std::io::Error| bad(&raw, e);
        match kind {
            tar::EntryType::Directory => {
                if let Some(st) = stat_at(p, name).map_err(err)?
                    && FileType::from_raw_mode(st.st_mode) != FileType::Directory
                {
                    remove_at(p, name, false).map_err(err)?;
                }
                let d = mkdir_at(p, name, mode, Some((uid, gid))).map_err(err)?;
                rustix::fs::fchown(
                    &d,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )
                .map_err(|e| err(e.into()))?;
                rustix::fs::fchmod(&d, Mode::from_raw_mode(mode)).map_err(|e| err(e.into()))?;
                set_xattrs(d.as_fd(), &xattrs);
                dir_times.push((comps.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                replace(p, name, &raw)?;
                let f = rustix::fs::openat(
                    p,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| err(e.into()))?;
                let mut f = File::from(f);
                std::io::copy(&mut entry, &mut f).map_err(err)?;
                rustix::fs::fchown(
                    &f,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )
                .map_err(|e| err(e.into()))?;
                rustix::fs::fchmod(&f, Mode::from_raw_mode(mode)).map_err(|e| err(e.into()))?;
                set_xattrs(f.as_fd(), &xattrs);
                set_mtime(p, name, mtime).map_err(err)?;
            }
            tar::EntryType::Symlink => {
                let target = h
                    .link_name_bytes()
                    .ok_or_else(|| bad(&raw, "symlink without a target"))?
                    .into_owned();
                replace(p, name, &raw)?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), p, name)
                    .map_err(|e| err(e.into()))?;
                chown_at(p, name, uid, gid).map_err(err)?;
                set_mtime(p, name, mtime).map_err(err)?;
            }
            tar::EntryType::Link => {
                let target = h
                    .link_name_bytes()
                    .ok_or_else(|| bad(&raw, "hardlink without a target"))?
                    .into_owned();
                let tcomps = components(&target)?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(bad(&raw, "hardlink to the root"));
                };
                let tparent = open_parent(root, tparents, &raw)?;
                replace(p, name, &raw)?;
                rustix::fs::linkat(&tparent, tname.as_os_str(), p, name, AtFlags::empty())
                    .map_err(|e| {
                        bad(
                            &raw,
                            format!("hardlink to {:?}: {e}", String::from_utf8_lossy(&target)),
                        )
                    })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                replace(p, name, &raw)?;
                rustix::fs::mknodat(
                    p,
                    name,
                    ft,
                    Mode::from_raw_mode(mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|e| err(e.into()))?;
                rustix::fs::chmodat(p, name, Mode::from_raw_mode(mode), AtFlags::empty())
                    .map_err(|e| err(e.into()))?;
                chown_at(p, name, uid, gid).map_err(err)?;
                set_mtime(p, name, mtime).map_err(err)?;
            }
            // PAX and GNU long-name records are consumed by the tar reader itself.
            _ => continue,
        }
        stats.entries += 1;
    }
    // Directory times last: writing their children changed them.
    for (comps, mtime) in dir_times.iter().rev() {
        if let Some((name, parents)) = comps.split_last()
            && let Ok(parent) = open_parent(root, parents, b"")
        {
            let _ = set_mtime(parent.as_fd(), name, *mtime);
        }
    }
    Ok(stats)
}

/// Removes what is at `name` unless it is a directory (a later entry of any kind replaces it).
fn replace(dir: BorrowedFd<'_>, name: &OsStr, raw: &[u8]) -> Result<(), Error> {
    if let Some(st) = stat_at(dir, name).map_err(|e| bad(raw, e))? {
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        remove_at(dir, name, is_dir).map_err(|e| bad(raw, e))?;
    }
    Ok(())
}

fn set_mtime(dir: BorrowedFd<'_>, name: &OsStr, mtime: i64) -> std::io::Result<()> {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        dir,
        name,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return vec![];
    };
    exts.filter_map(Result::ok)
        .filter_map(|e| {
            let key = e.key().ok()?;
            let name = key.strip_prefix("SCHILY.xattr.")?;
            Some((name.to_string(), e.value_bytes().to_vec()))
        })
        .collect()
}

fn set_xattrs(fd: BorrowedFd<'_>, xattrs: &[(String, Vec<u8>)]) {
    for (k, v) in xattrs {
        if k.starts_with("trusted.overlay.") {
            continue;
        }
        if let Err(e) = rustix::fs::fsetxattr(fd, k.as_str(), v, rustix::fs::XattrFlags::empty()) {
            tracing::warn!(xattr = %k, error = %e, "could not set xattr");
        }
    }
}
