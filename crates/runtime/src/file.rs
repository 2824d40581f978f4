//! The file-operation backend: a file op's actions (COPY, WORKDIR, heredoc files, removals,
//! symlinks), as the graph describes them, applied to a mounted snapshot (BuildKit's
//! `fileoptypes.Backend`).
//!
//! Every path is resolved beneath the mounted root through [`Root`]: no symlink or `..` in
//! an action leads out of it.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use xbuild_llb::{Chmod, CopyAction, MkdirAction, MkfileAction, RmAction, SymlinkAction};

use crate::Error;
use crate::chmod::ModeSet;
use crate::copy::{CopyRequest, SourceTree, resolve_sources};
use crate::fsops::{CopyMeta, ModeSpec, Root, rel, remove_at};
use crate::reuse::Reuse;
use crate::user::resolve_chown;
use xbuild_dockerignore::Filter;

/// Where a copy action reads from: a directory on the host and what of it is visible.
#[derive(Clone, Copy)]
pub struct CopySource<'a> {
    /// The directory (a build context's, or a mounted view of a stage or image).
    pub dir: &'a Path,
    /// What of it is visible (a build context's `.dockerignore`); `None`: everything.
    pub filter: Option<&'a Filter>,
    /// A stage or image: owners are kept. A build context: owners become root.
    pub keep_owner: bool,
}

/// Applies a file op's actions on a mounted root; each method takes the graph's own action.
pub trait FileBackend: Send + Sync + std::fmt::Debug {
    /// Creates a directory (`make_parents`: with its missing parents).
    fn mkdir(&self, root: &Root, action: &MkdirAction) -> Result<(), Error>;
    /// Creates (or replaces) a file with fixed content.
    fn mkfile(&self, root: &Root, action: &MkfileAction) -> Result<(), Error>;
    /// Removes a path, or the paths a wildcard matches.
    fn rm(&self, root: &Root, action: &RmAction) -> Result<(), Error>;
    /// Creates a symlink.
    fn symlink(&self, root: &Root, action: &SymlinkAction) -> Result<(), Error>;
    /// Copies what `action` selects in `source` into `root`, linking through `reuse` what is
    /// unchanged since an earlier run of the same copy when given (see [`Reuse`]).
    fn copy(
        &self,
        root: &Root,
        source: &CopySource<'_>,
        action: &CopyAction,
        reuse: Option<&mut Reuse>,
    ) -> Result<(), Error>;
}

/// The real backend: `*at` calls beneath a [`Root`] on the host.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostFileBackend;

impl FileBackend for HostFileBackend {
    fn mkdir(&self, root: &Root, m: &MkdirAction) -> Result<(), Error> {
        let owner = m.chown.as_ref().map(|ch| resolve_chown(root, ch));
        if m.make_parents {
            return crate::copy::mkdir(root, &m.path, m.mode, owner);
        }
        let (dir, name) = parent_and_name(root, &m.path)?;
        let mode = Mode::from_raw_mode(m.mode & 0o7777);
        match rustix::fs::mkdirat(&dir, &name, mode) {
            Ok(()) => {
                rustix::fs::chmodat(&dir, &name, mode, AtFlags::empty())
                    .map_err(|e| io_err(&m.path, e))?;
                if let Some((u, g)) = owner {
                    rustix::fs::chownat(
                        &dir,
                        &name,
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| io_err(&m.path, e))?;
                }
                Ok(())
            }
            Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(io_err(&m.path, e)),
        }
    }

    fn mkfile(&self, root: &Root, m: &MkfileAction) -> Result<(), Error> {
        let owner = m.chown.as_ref().map(|ch| resolve_chown(root, ch));
        let (dir, name) = parent_and_name(root, &m.path)?;
        if let Ok(st) = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            && FileType::from_raw_mode(st.st_mode) != FileType::Directory
        {
            rustix::fs::unlinkat(&dir, &name, AtFlags::empty()).map_err(|e| io_err(&m.path, e))?;
        }
        let fd = rustix::fs::openat(
            &dir,
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err(&m.path, e))?;
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, &m.data).map_err(|e| io_err(&m.path, e))?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(m.mode & 0o7777))
            .map_err(|e| io_err(&m.path, e))?;
        if let Some((u, g)) = owner {
            rustix::fs::fchown(
                &file,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
            )
            .map_err(|e| io_err(&m.path, e))?;
        }
        Ok(())
    }

    fn rm(&self, root: &Root, r: &RmAction) -> Result<(), Error> {
        let tree = SourceTree {
            root,
            filter: None,
            name: "the filesystem",
        };
        let paths = if r.allow_wildcard {
            resolve_sources(&tree, &r.path, true, false)?
        } else {
            vec![rel(&r.path).to_string_lossy().to_string()]
        };
        for p in paths {
            let (dir, name) = parent_and_name(root, &p)?;
            match rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                    remove_at(dir.as_fd(), &name, is_dir).map_err(|e| io_err(&p, e))?;
                }
                Err(rustix::io::Errno::NOENT) if r.allow_not_found => {}
                Err(e) => return Err(io_err(&r.path, e)),
            }
        }
        Ok(())
    }

    fn symlink(&self, root: &Root, s: &SymlinkAction) -> Result<(), Error> {
        let (dir, name) = parent_and_name(root, &s.newpath)?;
        rustix::fs::symlinkat(s.oldpath.as_str(), &dir, &name).map_err(|e| io_err(&s.newpath, e))
    }

    fn copy(
        &self,
        root: &Root,
        source: &CopySource<'_>,
        c: &CopyAction,
        reuse: Option<&mut Reuse>,
    ) -> Result<(), Error> {
        let src = Root::open(source.dir)?;
        let tree = SourceTree {
            root: &src,
            filter: source.filter,
            name: if source.keep_owner {
                "the source stage"
            } else {
                "the build context"
            },
        };
        let req = CopyRequest {
            src: &c.src,
            dest: &c.dest,
            follow_symlinks: c.follow_symlinks,
            dir_copy_contents: c.dir_copy_contents,
            allow_wildcard: c.allow_wildcard,
            allow_empty_wildcard: c.allow_empty_wildcard,
            create_dest_path: c.create_dest_path,
            include_patterns: &c.include_patterns,
            exclude_patterns: &c.exclude_patterns,
            required_paths: &c.required_paths,
            attempt_unpack: c.attempt_unpack,
            meta: CopyMeta {
                chown: c.chown.as_ref().map(|ch| resolve_chown(root, ch)),
                keep_owner: source.keep_owner,
                mode: mode_spec(c.mode.as_ref())?,
            },
        };
        match reuse {
            Some(r) => crate::copy::copy_reusing(&tree, root, &req, r),
            None => crate::copy::copy(&tree, root, &req),
        }
    }
}

fn io_err(path: &str, e: impl Into<std::io::Error>) -> Error {
    Error::io(Path::new(path), e.into())
}

/// The mode a copy's `--chmod` gives what it copies.
fn mode_spec(m: Option<&Chmod>) -> Result<Option<ModeSpec>, Error> {
    Ok(match m {
        None => None,
        Some(Chmod::Octal(m)) => Some(ModeSpec::Octal(*m)),
        Some(Chmod::Symbolic(s)) => Some(ModeSpec::Symbolic(ModeSet::parse(s)?)),
    })
}

/// The existing parent directory of `p` inside the root (symlinks resolved inside it) and
/// `p`'s last name.
fn parent_and_name(root: &Root, p: &str) -> Result<(OwnedFd, OsString), Error> {
    let rel = rel(p);
    let name = rel
        .file_name()
        .map(OsStr::to_os_string)
        .ok_or_else(|| Error::NotAFilePath(p.to_string()))?;
    let parent = rel
        .parent()
        .map(|x| x.to_string_lossy().to_string())
        .unwrap_or_default();
    let fd = root
        .resolve(&parent, true)?
        .ok_or_else(|| Error::NoParentDir {
            path: p.to_string(),
            parent: parent.clone(),
        })?;
    let dir = Root::reopen(&fd, true).map_err(|e| io_err(p, e))?;
    Ok((dir, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use xbuild_llb::{Chown, IdSpec};

    fn root() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        let r = Root::open(d.path()).unwrap();
        (d, r)
    }

    fn path_of(d: &tempfile::TempDir, p: &str) -> PathBuf {
        d.path().join(p)
    }

    #[test]
    fn mkdir_mkfile_symlink_rm() {
        let (d, r) = root();
        let b = HostFileBackend;
        b.mkdir(
            &r,
            &MkdirAction {
                path: "/a".into(),
                mode: 0o750,
                make_parents: false,
                chown: None,
            },
        )
        .unwrap();
        let st = std::fs::metadata(path_of(&d, "a")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&st.permissions()) & 0o7777,
            0o750
        );
        b.mkfile(
            &r,
            &MkfileAction {
                path: "/a/f".into(),
                mode: 0o644,
                data: b"hi".to_vec(),
                chown: Some(Chown {
                    user: IdSpec::Id(0),
                    group: None,
                }),
            },
        )
        .unwrap();
        assert_eq!(std::fs::read(path_of(&d, "a/f")).unwrap(), b"hi");
        b.symlink(
            &r,
            &SymlinkAction {
                oldpath: "/etc/passwd".into(),
                newpath: "/a/l".into(),
            },
        )
        .unwrap();
        assert_eq!(
            std::fs::read_link(path_of(&d, "a/l")).unwrap(),
            Path::new("/etc/passwd")
        );
        b.rm(
            &r,
            &RmAction {
                path: "/a/*".into(),
                allow_not_found: false,
                allow_wildcard: true,
            },
        )
        .unwrap();
        assert_eq!(std::fs::read_dir(path_of(&d, "a")).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_parent_or_path_is_an_error() {
        let (_d, r) = root();
        let b = HostFileBackend;
        let e = b
            .mkfile(
                &r,
                &MkfileAction {
                    path: "/no/f".into(),
                    mode: 0o644,
                    data: vec![],
                    chown: None,
                },
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "/no/f: parent directory /no does not exist");
        let e = b
            .symlink(
                &r,
                &SymlinkAction {
                    oldpath: "x".into(),
                    newpath: "/".into(),
                },
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "/: not a file path");
        let rm = |allow_not_found| RmAction {
            path: "/gone".into(),
            allow_not_found,
            allow_wildcard: false,
        };
        b.rm(&r, &rm(true)).unwrap();
        assert!(b.rm(&r, &rm(false)).is_err());
    }
}
