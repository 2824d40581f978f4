//! Unpacking a layer tar into a snapshot's directory, safely, with OCI whiteouts turned into
//! overlay whiteouts (`.wh.x` → a 0/0 character device, `.wh..wh..opq` → the opaque xattr).
//!
//! No entry can write outside the directory: absolute names are taken relative to it, `..` is
//! refused, and every step into a directory refuses to follow a symlink. A whiteout names one
//! entry of its own directory or it is refused (`.wh.`, `.wh..`, `.wh...`: the directory
//! itself or its parent); only [`TarKind::Layer`] reads whiteouts at all — an archive `ADD`
//! unpacks and an output written out keep `.wh.` files as the files they are.
//!
//! File data is written sparse: blocks of zeros (a GNU sparse file's holes, or zeros that
//! compressed to nothing) become holes, so what lands on disk is what the data really holds.
//! With a byte limit, the sizes of the files are counted against it before they are written.

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

/// The longest entry name unpacked, in bytes (Linux's `PATH_MAX`): a deeper tree could not be
/// addressed by path on the host, and the depth of every walk through it stays bounded.
pub const MAX_NAME_LEN: usize = 4096;

/// What an unpack wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries written.
    pub entries: u64,
    /// Whiteouts converted.
    pub whiteouts: u64,
    /// The apparent size of the files written (holes included).
    pub bytes: u64,
}

/// What a tar stream is, which decides whether its `.wh.` names are whiteouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TarKind {
    /// An image layer: `.wh.NAME` deletes `NAME` of a lower layer (it becomes an overlay
    /// whiteout) and `.wh..wh..opq` makes its directory opaque.
    Layer,
    /// Any other archive (`ADD`, a context, an output): `.wh.` names are plain files.
    Archive,
}

/// What a layer entry's last name means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerName<'a> {
    /// A file of its own.
    Plain,
    /// `.wh..wh..opq`: the directory it is in hides what lower layers had there.
    Opaque,
    /// `.wh..wh.*` other than the opaque marker: AUFS metadata, skipped as Docker does.
    Metadata,
    /// `.wh.NAME`: `NAME` (one entry of the same directory) is deleted.
    Whiteout(&'a OsStr),
}

/// What the last name `name` of a layer entry means; a whiteout that names no single entry of
/// its directory (`.wh.`, `.wh..`, `.wh...`, a `/` or NUL in it) is an error saying why.
pub fn layer_name(name: &[u8]) -> Result<LayerName<'_>, String> {
    if name == b".wh..wh..opq" {
        return Ok(LayerName::Opaque);
    }
    if name.starts_with(b".wh..wh.") {
        return Ok(LayerName::Metadata);
    }
    let Some(hidden) = name.strip_prefix(b".wh.") else {
        return Ok(LayerName::Plain);
    };
    let hidden = OsStr::from_bytes(hidden);
    crate::fsops::check_name(hidden).map_err(|_| {
        format!(
            "the whiteout deletes {:?}, which is not one entry of its directory",
            hidden
        )
    })?;
    Ok(LayerName::Whiteout(hidden))
}

fn bad(entry: &[u8], why: impl std::fmt::Display) -> Error {
    Error::BadArchive(format!("entry {:?}: {why}", String::from_utf8_lossy(entry)))
}

/// The entry's path as clean components; `..` and names over [`MAX_NAME_LEN`] are refused.
fn components(raw: &[u8]) -> Result<Vec<OsString>, Error> {
    if raw.len() > MAX_NAME_LEN {
        return Err(bad(
            &raw[..64],
            format!(
                "a member name of {} bytes is longer than the {MAX_NAME_LEN} a path may have",
                raw.len()
            ),
        ));
    }
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

/// Opens every directory on the way to an entry, creating missing ones as 0755 root-owned
/// directories when `create`.
fn open_parent(
    root: &OwnedFd,
    comps: &[OsString],
    raw: &[u8],
    create: bool,
) -> Result<OwnedFd, Error> {
    let mut fd = rustix::io::dup(root).map_err(|e| bad(raw, e))?;
    for c in comps {
        let next = if create {
            mkdir_at(fd.as_fd(), c, 0o755, Some((0, 0)))
        } else {
            crate::fsops::open_dir_at(fd.as_fd(), c)
        };
        fd = next.map_err(|e| {
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
    unpack_into(r, &root, TarKind::Layer, None)
}

/// Unpacks the uncompressed tar `r` into the open directory `root`. A [`TarKind::Layer`]'s
/// whiteouts become overlay whiteouts; an archive's `.wh.` names are plain files, as in
/// Docker's `ADD`. With `max_bytes`, an archive whose files add up to more (holes included)
/// fails with [`Error::ArchiveTooLarge`] before the file crossing it is written.
pub fn unpack_into(
    r: impl Read,
    root: &OwnedFd,
    kind: TarKind,
    max_bytes: Option<u64>,
) -> Result<UnpackStats, Error> {
    let mut ar = tar::Archive::new(r);
    let mut stats = UnpackStats::default();
    let mut dir_times: Vec<(Vec<u8>, i64)> = Vec::new();
    let mut buf = vec![0u8; COPY_BUF];
    let entries = ar.entries().map_err(|e| Error::BadArchive(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::BadArchive(e.to_string()))?;
        let raw = entry.path_bytes().into_owned();
        let comps = components(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            continue; // `./` itself: the destination keeps its metadata
        };
        let meaning = match kind {
            TarKind::Layer => layer_name(name.as_bytes()).map_err(|why| bad(&raw, why))?,
            TarKind::Archive => LayerName::Plain,
        };
        let parent = open_parent(root, parents, &raw, true)?;
        let p = parent.as_fd();
        match meaning {
            LayerName::Plain => {}
            LayerName::Opaque => {
                rustix::fs::fsetxattr(&parent, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
                    .map_err(|e| bad(&raw, format!("setting the opaque xattr: {e}")))?;
                stats.whiteouts += 1;
                continue;
            }
            LayerName::Metadata => {
                tracing::debug!(entry = %String::from_utf8_lossy(&raw), "skipped AUFS metadata");
                continue;
            }
            LayerName::Whiteout(hidden) => {
                replace(p, hidden, &raw)?;
                rustix::fs::mknodat(p, hidden, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| bad(&raw, e))?;
                stats.whiteouts += 1;
                continue;
            }
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
                dir_times.push((raw.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = entry.size();
                let total = stats.bytes.saturating_add(size);
                if let Some(limit) = max_bytes
                    && total > limit
                {
                    return Err(Error::ArchiveTooLarge {
                        entry: String::from_utf8_lossy(&raw).into_owned(),
                        limit,
                    });
                }
                stats.bytes = total;
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
                let f = File::from(f);
                let written = copy_sparse(&mut entry, &f, &mut buf).map_err(err)?;
                if written != size {
                    return Err(bad(
                        &raw,
                        format!("the archive ends inside it ({written} of {size} bytes)"),
                    ));
                }
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
                let tparent = open_parent(root, tparents, &raw, false)?;
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
    for (raw, mtime) in dir_times.iter().rev() {
        let Ok(comps) = components(raw) else {
            continue;
        };
        if let Some((name, parents)) = comps.split_last()
            && let Ok(parent) = open_parent(root, parents, raw, false)
        {
            let _ = set_mtime(parent.as_fd(), name, *mtime);
        }
    }
    Ok(stats)
}

/// The buffer file data is copied through: a whole number of [`HOLE_BLOCK`]s.
const COPY_BUF: usize = 256 * 1024;
/// The unit of a hole: a block of this many zero bytes at this alignment is not written.
const HOLE_BLOCK: usize = 4096;

/// Fills `buf` from `r` as far as it goes; fewer bytes only at the end of `r`.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Copies `r` into the empty file `f`, leaving a hole wherever an aligned block is all zeros;
/// returns the bytes copied (the file's length).
fn copy_sparse(r: &mut impl Read, f: &File, buf: &mut [u8]) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut off: u64 = 0;
    loop {
        let n = read_full(r, buf)?;
        let mut run: Option<(u64, usize, usize)> = None; // (file offset, start, end) in buf
        for (i, block) in buf[..n].chunks(HOLE_BLOCK).enumerate() {
            let start = i * HOLE_BLOCK;
            if block.iter().all(|&b| b == 0) {
                if let Some((at, s, e)) = run.take() {
                    f.write_all_at(&buf[s..e], at)?;
                }
            } else {
                let end = start + block.len();
                run = Some(match run {
                    Some((at, s, _)) => (at, s, end),
                    None => (off + start as u64, start, end),
                });
            }
        }
        if let Some((at, s, e)) = run {
            f.write_all_at(&buf[s..e], at)?;
        }
        off += n as u64;
        if n < buf.len() {
            break;
        }
    }
    // A trailing hole still counts in the length.
    f.set_len(off)?;
    Ok(off)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// A tar of `(name, kind, data)` entries; names are written raw (no normalization).
    fn tar_of(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if *kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// `parent/sibling/keep` and `parent/dest/`, the destination to unpack into.
    fn sentinel() -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("parent/sibling")).unwrap();
        std::fs::write(d.path().join("parent/sibling/keep"), "keep").unwrap();
        std::fs::write(d.path().join("parent/.git"), "gitdir").unwrap();
        let dest = d.path().join("parent/dest");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old"), "old").unwrap();
        (d, dest)
    }

    fn intact(d: &tempfile::TempDir) {
        assert_eq!(
            std::fs::read_to_string(d.path().join("parent/sibling/keep")).unwrap(),
            "keep"
        );
        assert!(d.path().join("parent/.git").exists());
        assert!(d.path().join("parent/dest").is_dir());
    }

    fn open(p: &Path) -> OwnedFd {
        File::open(p).unwrap().into()
    }

    #[test]
    fn whiteouts_of_the_directory_itself_or_its_parent_are_refused() {
        use tar::EntryType::Regular;
        for name in [
            &b".wh.."[..],
            b".wh...",
            b".wh.",
            b"sub/.wh..",
            b"sub/.wh...",
        ] {
            let (d, dest) = sentinel();
            let tar = tar_of(&[
                (b"sub/", tar::EntryType::Directory, b""),
                (name, Regular, b""),
            ]);
            let err = unpack(&tar[..], &dest).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(&*String::from_utf8_lossy(name)) && msg.contains("not one entry"),
                "{msg}"
            );
            intact(&d);
            assert!(dest.join("old").exists());
        }
    }

    #[test]
    fn layer_whiteouts_delete_one_entry_and_metadata_is_skipped() {
        let (d, dest) = sentinel();
        std::fs::create_dir_all(dest.join("gone/deep")).unwrap();
        let tar = tar_of(&[
            (b".wh.gone", tar::EntryType::Regular, b""),
            (b".wh.old", tar::EntryType::Regular, b""),
            (b".wh..wh.plnk", tar::EntryType::Directory, b""),
        ]);
        let stats = unpack(&tar[..], &dest).unwrap();
        assert_eq!(stats.whiteouts, 2);
        for n in ["gone", "old"] {
            let md = std::fs::symlink_metadata(dest.join(n)).unwrap();
            assert!(md.file_type().is_char_device() && md.rdev() == 0, "{n}");
        }
        assert!(!dest.join(".wh..wh.plnk").exists());
        intact(&d);
    }

    #[test]
    fn an_archive_keeps_wh_names_as_plain_files() {
        let (d, dest) = sentinel();
        let tar = tar_of(&[
            (b".wh..", tar::EntryType::Regular, b"dot"),
            (b".wh...", tar::EntryType::Regular, b"dotdot"),
            (b".wh.old", tar::EntryType::Regular, b"x"),
            (b".wh..wh..opq", tar::EntryType::Regular, b"opq"),
        ]);
        unpack_into(&tar[..], &open(&dest), TarKind::Archive, None).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join(".wh..")).unwrap(), "dot");
        assert_eq!(
            std::fs::read_to_string(dest.join(".wh...")).unwrap(),
            "dotdot"
        );
        assert_eq!(std::fs::read_to_string(dest.join(".wh.old")).unwrap(), "x");
        assert_eq!(
            std::fs::read_to_string(dest.join(".wh..wh..opq")).unwrap(),
            "opq"
        );
        assert_eq!(std::fs::read_to_string(dest.join("old")).unwrap(), "old");
        intact(&d);
    }

    #[test]
    fn zero_blocks_become_holes_and_the_limit_counts_apparent_size() {
        let (_d, dest) = sentinel();
        let mut data = vec![0u8; 8 << 20];
        data[5000] = 1;
        let last = data.len() - 1;
        data[last] = 2;
        let tar = tar_of(&[(b"zeros", tar::EntryType::Regular, &data)]);
        let stats = unpack_into(&tar[..], &open(&dest), TarKind::Archive, None).unwrap();
        assert_eq!(stats.bytes, data.len() as u64);
        let md = std::fs::metadata(dest.join("zeros")).unwrap();
        assert_eq!(md.len(), data.len() as u64);
        assert!(md.blocks() * 512 <= 64 << 10, "{} blocks", md.blocks());
        assert_eq!(std::fs::read(dest.join("zeros")).unwrap(), data);
        let err = unpack_into(&tar[..], &open(&dest), TarKind::Archive, Some(1 << 20)).unwrap_err();
        assert!(
            matches!(&err, Error::ArchiveTooLarge { entry, limit } if entry == "zeros" && *limit == 1 << 20),
            "{err}"
        );
    }

    #[test]
    fn overlong_names_and_links_to_missing_targets_create_nothing() {
        let (_d, dest) = sentinel();
        let long = "d/".repeat(3000);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("{long}f"), &b""[..]).unwrap();
        let err = unpack(&b.into_inner().unwrap()[..], &dest).unwrap_err();
        assert!(err.to_string().contains("4096"), "{err}");
        assert!(!dest.join("d").exists());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "link", "missing/dir/target").unwrap();
        assert!(unpack(&b.into_inner().unwrap()[..], &dest).is_err());
        assert!(!dest.join("missing").exists());
    }
}
