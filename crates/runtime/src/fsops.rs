//! File operations relative to directory file descriptors, so that no symlink planted in a
//! rootfs or a context can redirect a write (or a read) outside it.
//!
//! Paths inside a root are resolved with `pathrs` (symlinks resolve as if the root were `/`);
//! below a resolved directory every step is an `*at` call on one name with `O_NOFOLLOW`.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timespec, Timestamps};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use xbuild_llb::FileStamp;

use crate::Error;

/// A directory tree whose paths resolve inside it (a rootfs, a context).
pub struct Root {
    root: pathrs::Root,
    path: PathBuf,
}

impl Root {
    /// Opens the tree at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let root =
            pathrs::Root::open(path).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
        Ok(Root {
            root,
            path: path.to_path_buf(),
        })
    }

    /// The tree's location on the host.
    pub fn host_path(&self) -> &Path {
        &self.path
    }

    /// Resolves `p` (absolute or relative to the root) inside the tree; `follow` follows a
    /// symlink in the last component too. `Ok(None)` when it does not exist.
    pub fn resolve(&self, p: &str, follow: bool) -> Result<Option<OwnedFd>, Error> {
        let mut rel = rel(p);
        if rel.as_os_str().is_empty() {
            rel = PathBuf::from("/");
        }
        let r = if follow {
            self.root.resolve(&rel)
        } else {
            self.root.resolve_nofollow(&rel)
        };
        match r {
            Ok(h) => Ok(Some(h.into())),
            Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOENT)) => Ok(None),
            Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOTDIR)) => {
                Ok(None)
            }
            Err(e) => Err(self.err(p, std::io::Error::other(e))),
        }
    }

    /// The host path `p` resolves to inside the tree (symlinks followed, none left in the
    /// result): where a mount of it may point. `Ok(None)` when it does not exist.
    pub fn host_path_of(&self, p: &str) -> Result<Option<PathBuf>, Error> {
        self.resolve(p, true)?.map(|fd| real_path(&fd)).transpose()
    }

    /// Opens a resolved `O_PATH` handle for reading (a directory or a regular file).
    pub fn reopen(fd: &OwnedFd, dir: bool) -> Result<OwnedFd, std::io::Error> {
        let mut flags = pathrs::flags::OpenFlags::O_RDONLY;
        if dir {
            flags |= pathrs::flags::OpenFlags::O_DIRECTORY;
        }
        pathrs::HandleRef::from_fd(fd.as_fd())
            .reopen(flags)
            .map(OwnedFd::from)
            .map_err(std::io::Error::other)
    }

    fn err(&self, p: &str, e: std::io::Error) -> Error {
        Error::io(&self.path.join(rel(p)), e)
    }

    /// Makes sure directory `p` exists (following symlinks inside the tree, dangling ones
    /// included), creating missing components with `mode` and `owner`; returns it opened.
    pub fn ensure_dir(
        &self,
        p: &str,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<OwnedFd, Error> {
        self.ensure_dir_depth(p, mode, owner, 0)
    }

    fn ensure_dir_depth(
        &self,
        p: &str,
        mode: u32,
        owner: Option<(u32, u32)>,
        depth: u32,
    ) -> Result<OwnedFd, Error> {
        if depth > 40 {
            return Err(self.err(p, std::io::Error::from_raw_os_error(libc::ELOOP)));
        }
        // Lexically cleaned, `..` clamped at the root.
        let mut comps: Vec<&OsStr> = Vec::new();
        for c in Path::new(p).components() {
            match c {
                Component::Normal(n) => comps.push(n),
                Component::ParentDir => {
                    comps.pop();
                }
                _ => {}
            }
        }
        // The deepest component that exists.
        let mut have = comps.len();
        let mut fd = loop {
            let prefix: PathBuf = comps[..have].iter().collect();
            if let Some(fd) = self.resolve(&prefix.to_string_lossy(), true)? {
                break fd;
            }
            if have == 0 {
                return Err(self.err(p, std::io::ErrorKind::NotFound.into()));
            }
            have -= 1;
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| self.err(p, e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            let prefix: PathBuf = comps[..have].iter().collect();
            return Err(Error::NotADirectory(
                Path::new("/").join(prefix).display().to_string(),
            ));
        }
        fd = Self::reopen(&fd, true).map_err(|e| self.err(p, e))?;
        for (i, name) in comps.iter().enumerate().skip(have) {
            // A dangling symlink on the way: continue at its target, inside the tree.
            if let Some(st) = stat_at(fd.as_fd(), name).map_err(|e| self.err(p, e))?
                && FileType::from_raw_mode(st.st_mode) == FileType::Symlink
            {
                let target = rustix::fs::readlinkat(&fd, *name, Vec::new())
                    .map_err(|e| self.err(p, e.into()))?;
                let target = target.to_string_lossy().to_string();
                let parent: PathBuf = comps[..i].iter().collect();
                let rest: PathBuf = comps[i + 1..].iter().collect();
                let base = if target.starts_with('/') {
                    PathBuf::from(&target)
                } else {
                    Path::new("/").join(parent).join(&target)
                };
                let next = base.join(rest);
                return self.ensure_dir_depth(&next.to_string_lossy(), mode, owner, depth + 1);
            }
            fd = mkdir_at(fd.as_fd(), name, mode, owner).map_err(|e| self.err(p, e))?;
        }
        Ok(fd)
    }
}

/// The host path the open handle `fd` points at (read from `/proc/self/fd`), with no symlink
/// left in it.
pub fn real_path(fd: &OwnedFd) -> Result<PathBuf, Error> {
    let link = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(fd)
    ));
    std::fs::read_link(&link).map_err(|e| Error::io(&link, e))
}

/// `p` without leading `/`, cleaned of `.` components (`..` is left to the resolver, which
/// keeps it inside the root).
pub fn rel(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => out.push(".."),
            _ => {}
        }
    }
    out
}

/// Creates directory `name` in `dir` (or opens it when it exists) and applies mode and owner to
/// a new one; returns it opened.
/// Refuses a name that is not exactly one entry of a directory: empty, `.`, `..`, or with a
/// `/` (each would address the directory itself, its parent or a path below). Every primitive
/// here that creates or removes takes one name, so no caller can make it act on a parent.
pub fn check_name(name: &OsStr) -> std::io::Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name:?} is not a single directory entry name"),
        ));
    }
    Ok(())
}

pub(crate) fn mkdir_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<OwnedFd> {
    check_name(name)?;
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode)) {
        Ok(()) => {
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty())?;
            if let Some((u, g)) = owner {
                chown_at(dir, name, u, g)?;
            }
        }
        Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_dir_at(dir, name)
}

pub(crate) fn chown_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    uid: u32,
    gid: u32,
) -> std::io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => Ok(Some(s)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The entries of an open directory, sorted by name, without `.` and `..`.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> std::io::Result<Vec<OsString>> {
    let dup = rustix::io::dup(dir)?;
    let mut d = rustix::fs::Dir::read_from(&dup)?;
    let mut out = Vec::new();
    while let Some(ent) = d.read() {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    out.sort();
    Ok(out)
}

/// How `--chmod` sets the modes of what is copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModeSpec {
    /// Octal bits, setuid/setgid/sticky included.
    Octal(u32),
    /// A symbolic expression (`u+x,go-w`), applied to each entry's own mode.
    Symbolic(crate::chmod::ModeSet),
}

/// How copied entries get their owner and mode.
#[derive(Clone, Debug, Default)]
pub struct CopyMeta {
    /// Owner for everything copied; `None` keeps the source's (or root's, see `keep_owner`).
    pub chown: Option<(u32, u32)>,
    /// Keep the source's uid/gid (stage and image sources); else 0:0 (the build context).
    pub keep_owner: bool,
    /// Mode bits for everything copied (`--chmod`).
    pub mode: Option<ModeSpec>,
}

impl CopyMeta {
    /// The owner an entry with the source stat `st` gets.
    pub fn owner(&self, st: &Stat) -> (u32, u32) {
        match self.chown {
            Some(o) => o,
            None if self.keep_owner => (st.st_uid, st.st_gid),
            None => (0, 0),
        }
    }

    /// The mode an entry with the source stat `st` gets.
    pub fn mode(&self, st: &Stat) -> u32 {
        match &self.mode {
            None => st.st_mode & 0o7777,
            Some(ModeSpec::Octal(m)) => m & 0o7777,
            Some(ModeSpec::Symbolic(s)) => s.apply(st.st_mode) & 0o7777,
        }
    }
}

/// Copies a tree entry by entry, keeping hardlinks that share an inode within one copy.
pub struct Copier {
    meta: CopyMeta,
    links: HashMap<(u64, u64), (Arc<OwnedFd>, OsString)>,
}

/// The access and modification times of a stat, as `futimens` takes them.
pub(crate) fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Copies the extended attributes of `src` to `dst` (both opened files or directories),
/// leaving out overlay's own.
pub(crate) fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> std::io::Result<()> {
    use xattr::FileExt;
    let s = File::from(rustix::io::dup(src)?);
    let names = match s.list_xattr() {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(e),
    };
    let d = File::from(rustix::io::dup(dst)?);
    for name in names {
        if name.as_bytes().starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Some(v) = s.get_xattr(&name)?
            && let Err(e) = d.set_xattr(&name, &v)
        {
            tracing::warn!(xattr = ?name, error = %e, "could not copy an extended attribute");
        }
    }
    Ok(())
}

/// Copies the content of `src` to `dst`: a reflink where the filesystem offers one, else an
/// in-kernel copy.
fn copy_content(src: BorrowedFd<'_>, dst: &File) -> std::io::Result<()> {
    if rustix::fs::ioctl_ficlone(dst, src).is_ok() {
        return Ok(());
    }
    let mut inp = File::from(rustix::io::dup(src)?);
    let mut out = dst;
    std::io::copy(&mut inp, &mut out)?;
    Ok(())
}

impl Copier {
    /// A copier applying `meta`.
    pub fn new(meta: CopyMeta) -> Self {
        Copier {
            meta,
            links: HashMap::new(),
        }
    }

    /// The metadata rules of this copier.
    pub fn meta(&self) -> &CopyMeta {
        &self.meta
    }

    /// Copies `src_name` in `src_dir` (already `lstat`ed as `st`) to `dst_name` in `dst_dir`,
    /// replacing what is there unless both are directories (then they merge).
    pub fn copy_entry(
        &mut self,
        src_dir: BorrowedFd<'_>,
        src_name: &OsStr,
        st: &Stat,
        dst_dir: &Arc<OwnedFd>,
        dst_name: &OsStr,
    ) -> std::io::Result<()> {
        let src = open_nofollow(src_dir, src_name, st)?;
        self.copy_open(
            src.as_ref().map(|f| f.as_fd()),
            src_dir,
            src_name,
            st,
            dst_dir,
            dst_name,
        )
    }

    /// Makes directory `name` in `dst_dir` for the source directory `src` (stat `st`): created
    /// when missing (replacing a non-directory), with the source's mode, owner and extended
    /// attributes (as this copier's rules say); its times are set by
    /// [`finish_dir`](Self::finish_dir) once its content is in place. Returns it opened.
    pub fn copy_dir_only(
        &mut self,
        src: &OwnedFd,
        st: &Stat,
        dst_dir: &Arc<OwnedFd>,
        name: &OsStr,
    ) -> std::io::Result<OwnedFd> {
        let d = dst_dir.as_fd();
        if let Some(ex) = stat_at(d, name)?
            && FileType::from_raw_mode(ex.st_mode) != FileType::Directory
        {
            remove_at(d, name, false)?;
        }
        let (uid, gid) = self.meta.owner(st);
        let mode = self.meta.mode(st);
        let sub = mkdir_at(d, name, mode, Some((uid, gid)))?;
        // An existing directory takes the source's mode and owner too.
        rustix::fs::fchown(
            &sub,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )?;
        rustix::fs::fchmod(&sub, Mode::from_raw_mode(mode))?;
        copy_xattrs(src.as_fd(), sub.as_fd())?;
        Ok(sub)
    }

    /// Sets a copied directory's times from its source's stat, after its content was written.
    pub fn finish_dir(&self, dir: &OwnedFd, st: &Stat) -> std::io::Result<()> {
        rustix::fs::futimens(dir, &times(st))?;
        Ok(())
    }

    /// Like [`copy_entry`](Self::copy_entry) for a source already opened (`src` is `None` for
    /// symlinks and special files, which are read through `src_dir`/`src_name`).
    pub fn copy_open(
        &mut self,
        src: Option<BorrowedFd<'_>>,
        src_dir: BorrowedFd<'_>,
        src_name: &OsStr,
        st: &Stat,
        dst_dir: &Arc<OwnedFd>,
        dst_name: &OsStr,
    ) -> std::io::Result<()> {
        let d = dst_dir.as_fd();
        let ft = FileType::from_raw_mode(st.st_mode);
        let (uid, gid) = self.meta.owner(st);
        let existing = stat_at(d, dst_name)?;
        if let Some(ex) = &existing {
            let ex_dir = FileType::from_raw_mode(ex.st_mode) == FileType::Directory;
            if !(ex_dir && ft == FileType::Directory) {
                remove_at(d, dst_name, ex_dir)?;
            }
        }
        match ft {
            FileType::Directory => {
                let Some(src) = src else {
                    return Err(std::io::Error::other("directory source not opened"));
                };
                let owned = rustix::io::dup(src)?;
                let sub = Arc::new(self.copy_dir_only(&owned, st, dst_dir, dst_name)?);
                self.copy_children(src, &sub)?;
                return self.finish_dir(&sub, st);
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some((ldir, lname)) = self.links.get(&key) {
                        rustix::fs::linkat(
                            &**ldir,
                            lname.as_os_str(),
                            d,
                            dst_name,
                            AtFlags::empty(),
                        )?;
                        return Ok(());
                    }
                    self.links
                        .insert(key, (dst_dir.clone(), dst_name.to_os_string()));
                }
                let Some(src) = src else {
                    return Err(std::io::Error::other("file source not opened"));
                };
                let out = rustix::fs::openat(
                    d,
                    dst_name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let out = File::from(out);
                copy_content(src, &out)?;
                rustix::fs::fchown(
                    &out,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )?;
                rustix::fs::fchmod(&out, Mode::from_raw_mode(self.meta.mode(st)))?;
                copy_xattrs(src, out.as_fd())?;
                rustix::fs::futimens(&out, &times(st))?;
                return Ok(());
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src_dir, src_name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), d, dst_name)?;
            }
            FileType::Fifo
            | FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Socket => {
                rustix::fs::mknodat(
                    d,
                    dst_name,
                    ft,
                    Mode::from_raw_mode(self.meta.mode(st)),
                    st.st_rdev,
                )?;
                rustix::fs::chmodat(
                    d,
                    dst_name,
                    Mode::from_raw_mode(self.meta.mode(st)),
                    AtFlags::empty(),
                )?;
            }
            FileType::Unknown => return Ok(()),
        }
        chown_at(d, dst_name, uid, gid)?;
        rustix::fs::utimensat(d, dst_name, &times(st), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// Copies every entry of directory `src` into directory `dst`.
    pub fn copy_children(
        &mut self,
        src: BorrowedFd<'_>,
        dst: &Arc<OwnedFd>,
    ) -> std::io::Result<()> {
        for name in list_dir(src)? {
            let Some(st) = stat_at(src, &name)? else {
                continue;
            };
            self.copy_entry(src, &name, &st, dst, &name)?;
        }
        Ok(())
    }
}

/// Opens directory `name` in `dir` without following a symlink.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens a regular file or directory without following a symlink; `None` for other types.
pub(crate) fn open_nofollow(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &Stat,
) -> std::io::Result<Option<OwnedFd>> {
    let ft = FileType::from_raw_mode(st.st_mode);
    let extra = match ft {
        FileType::Directory => OFlags::DIRECTORY,
        FileType::RegularFile => OFlags::empty(),
        _ => return Ok(None),
    };
    Ok(Some(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra,
        Mode::empty(),
    )?))
}

/// The stamp of a file from its stat.
pub(crate) fn stamp_of(st: &Stat) -> FileStamp {
    FileStamp {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        mtime_ns: xbuild_llb::nanos(st.st_mtime, st.st_mtime_nsec as i64),
        ctime_ns: xbuild_llb::nanos(st.st_ctime, st.st_ctime_nsec as i64),
    }
}

/// Runs `f`, one level deeper in a recursive walk of a tree, on a stack grown on the heap when
/// the thread's is nearly used up: a tree of any depth (a hostile image's, thousands of levels)
/// costs memory, never a stack overflow that aborts the process.
pub(crate) fn deeper<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(256 * 1024, 4 * 1024 * 1024, f)
}

/// Removes `name` from `dir` (never following a symlink); a directory with everything in it.
pub fn remove_at(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> std::io::Result<()> {
    check_name(name)?;
    if !is_dir {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
        return Ok(());
    }
    /// A directory being emptied: its name in its parent, the entries left, its identity.
    struct Level {
        name: OsString,
        left: Vec<OsString>,
        id: (u64, u64),
    }
    let open = |at: BorrowedFd<'_>, name: &OsStr| -> std::io::Result<(OwnedFd, Level)> {
        let fd = rustix::fs::openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        let left = list_dir(fd.as_fd())?;
        let level = Level {
            name: name.to_os_string(),
            left,
            id: (st.st_dev, st.st_ino),
        };
        Ok((fd, level))
    };
    // Depth first, as `rm -rf` does it: a stack of names on the heap and one open directory at
    // a time (climbing back through `..`, checked to be the directory it came from), so that a
    // tree of any depth (a hostile layer's) costs neither the thread's stack nor a descriptor
    // per level.
    let (mut cur, top) = open(dir, name)?;
    let mut stack = vec![top];
    while let Some(level) = stack.last_mut() {
        if let Some(child) = level.left.pop() {
            let child_dir = stat_at(cur.as_fd(), &child)?
                .is_some_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
            if child_dir {
                let (fd, sub) = open(cur.as_fd(), &child)?;
                stack.push(sub);
                cur = fd;
            } else {
                rustix::fs::unlinkat(cur.as_fd(), &child, AtFlags::empty())?;
            }
            continue;
        }
        let done = stack.pop().map(|l| l.name).unwrap_or_default();
        let Some(parent_level) = stack.last() else {
            rustix::fs::unlinkat(dir, &done, AtFlags::REMOVEDIR)?;
            break;
        };
        let parent = rustix::fs::openat(
            cur.as_fd(),
            "..",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&parent)?;
        if (st.st_dev, st.st_ino) != parent_level.id {
            return Err(std::io::Error::other(
                "a directory was moved while it was being removed",
            ));
        }
        rustix::fs::unlinkat(parent.as_fd(), &done, AtFlags::REMOVEDIR)?;
        cur = parent;
    }
    Ok(())
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn remove_at_and_mkdir_at_refuse_anything_but_one_entry() {
        let d = tempfile::tempdir().unwrap();
        let inner = d.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(d.path().join("sibling"), "x").unwrap();
        let fd: OwnedFd = File::open(&inner).unwrap().into();
        for bad in ["", ".", "..", "a/b", "../sibling"] {
            let n = OsStr::new(bad);
            assert!(remove_at(fd.as_fd(), n, true).is_err(), "{bad:?}");
            assert!(mkdir_at(fd.as_fd(), n, 0o755, None).is_err(), "{bad:?}");
        }
        assert!(inner.is_dir());
        assert!(d.path().join("sibling").exists());
    }

    /// `remove_at` recursed once per level with a descriptor open at each: a hostile layer's
    /// deep tree overflowed the stack or ran out of descriptors. A tree deeper than the
    /// process's descriptor limit goes, and nothing is left.
    #[test]
    fn remove_at_takes_a_tree_deeper_than_the_descriptor_limit() {
        let root = tempfile::tempdir().unwrap();
        let top = std::fs::File::open(root.path()).unwrap();
        rustix::fs::mkdirat(&top, "deep", Mode::from_raw_mode(0o755)).unwrap();
        let mut cur = rustix::fs::openat(&top, "deep", OFlags::DIRECTORY, Mode::empty()).unwrap();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1024);
        let depth = limit.min(60_000) + 500;
        for i in 0..depth {
            rustix::fs::mkdirat(&cur, "d", Mode::from_raw_mode(0o755)).unwrap();
            if i % 5000 == 0 {
                let f = rustix::fs::openat(
                    &cur,
                    "f",
                    OFlags::WRONLY | OFlags::CREATE,
                    Mode::from_raw_mode(0o644),
                )
                .unwrap();
                drop(f);
            }
            cur = rustix::fs::openat(&cur, "d", OFlags::DIRECTORY, Mode::empty()).unwrap();
        }
        drop(cur);
        remove_at(top.as_fd(), OsStr::new("deep"), true).unwrap();
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
