//! Running a file vertex: copy, mkdir, mkfile, rm and symlink actions applied in order on a
//! fresh snapshot of input 0.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use xbuild_llb::{Chmod, Definition, FileAction, FileOp, Vertex};
use xbuild_runtime::SnapshotterKind;
use xbuild_runtime::chmod::ModeSet;
use xbuild_runtime::copy::{CopyRequest, SourceTree, resolve_sources};
use xbuild_runtime::dockerignore::Filter;
use xbuild_runtime::fsops::{CopyMeta, ModeSpec, Root};
use xbuild_runtime::reuse::Reuse;
use xbuild_runtime::user::resolve_chown;

use crate::{Error, Solved, Solver, blocking};

/// Input `i` of a file op as the actions read it.
#[derive(Clone)]
struct Input {
    dir: PathBuf,
    filter: Option<Arc<Filter>>,
    /// A stage or image (owners kept) rather than the build context (owners become root).
    keep_owner: bool,
}

fn io_err(path: &Path, e: impl Into<std::io::Error>) -> Error {
    Error::Runtime(xbuild_runtime::Error::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

impl Solver {
    /// Runs file vertex `v` on top of `parent`; returns the committed snapshot.
    pub(crate) async fn run_file(
        &self,
        def: &Definition,
        v: &Vertex,
        f: &FileOp,
        solved: &Solved,
        parent: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let mut views = Vec::new();
        let mut inputs: Vec<Input> = Vec::new();
        for (i, d) in v.inputs().iter().enumerate() {
            if i == 0 {
                inputs.push(Input {
                    dir: PathBuf::new(),
                    filter: None,
                    keep_owner: true,
                });
                continue;
            }
            match self.local_source(def, d)? {
                Some((source, filter)) => inputs.push(Input {
                    dir: source.dir().to_path_buf(),
                    filter,
                    keep_owner: false,
                }),
                None => {
                    let snap = self.input(solved, v, i)?.snapshot.clone();
                    let view = self.snapshots.view(snap.as_deref())?;
                    inputs.push(Input {
                        dir: view.path().to_path_buf(),
                        filter: None,
                        keep_owner: true,
                    });
                    views.push(view);
                }
            }
        }
        let active = self.snapshots.prepare(parent)?;
        self.hold(active.id())?;
        let mount = self.snapshots.mount(&active)?;
        let target = mount.path().to_path_buf();
        let note = self.snapshots.note_path(active.id(), REUSE_NOTE);
        let mut reuse = match (&note, self.reusable(f, &inputs)) {
            (Some(_), true) => {
                let previous = self.previous_copy(v)?;
                let prev = previous.as_ref().map(|(d, n)| (d.as_path(), n.as_path()));
                Some(Reuse::new(&active.upper(), &target, prev)?)
            }
            _ => None,
        };
        let actions = f.actions.clone();
        let (applied, reuse) = blocking(move || {
            let r = apply_file_actions(&target, &actions, &inputs, reuse.as_mut());
            Ok((r, reuse))
        })
        .await?;
        drop(views);
        let unmounted = mount.unmount();
        applied?;
        unmounted?;
        let linked = match (reuse, &note) {
            (Some(r), Some(note)) => Some(r.finish(note)?),
            _ => None,
        };
        let id = self.snapshots.commit(active)?;
        if let Some(linked) = linked {
            tracing::debug!(vertex = %v.digest(), linked, "copy linked unchanged files");
            crate::copies::remember(&self.opts.root, v.digest(), &id);
        }
        Ok(Some(id))
    }

    /// Whether file vertex `v` is a copy from the build context that can link what an earlier
    /// run of it wrote: overlay snapshots, nothing but copies (no archive unpacking) to one
    /// destination, every one from a local source.
    fn reusable(&self, f: &FileOp, inputs: &[Input]) -> bool {
        let dest = match f.actions.first() {
            Some(FileAction::Copy(c)) => &c.dest,
            _ => return false,
        };
        self.snapshots.kind() == SnapshotterKind::Overlay
            && f.actions.iter().all(|a| match a {
                FileAction::Copy(c) => {
                    &c.dest == dest
                        && !c.attempt_unpack
                        && inputs
                            .get(c.input)
                            .is_some_and(|i| c.input > 0 && !i.keep_owner)
                }
                _ => false,
            })
    }

    /// The directory of changes and the reuse note of the snapshot the copy `v` made last,
    /// held for this build, when it is still there.
    fn previous_copy(&self, v: &Vertex) -> Result<Option<(PathBuf, PathBuf)>, Error> {
        let Some(id) = crate::copies::last(&self.opts.root, v.digest()) else {
            return Ok(None);
        };
        let Some(note) = self.snapshots.note_path(&id, REUSE_NOTE) else {
            return Ok(None);
        };
        if self.snapshots.changes_dir(&id).is_none() {
            return Ok(None);
        }
        self.hold(&id)?;
        // Held now, so a prune cannot take it any more; it may have before.
        Ok(self.snapshots.changes_dir(&id).map(|dir| (dir, note)))
    }
}

/// The note in which a copy's snapshot records what its files were copied from.
const REUSE_NOTE: &str = "copied";

fn mode_spec(m: &Option<Chmod>) -> Result<Option<ModeSpec>, Error> {
    Ok(match m {
        None => None,
        Some(Chmod::Octal(m)) => Some(ModeSpec::Octal(*m)),
        Some(Chmod::Symbolic(s)) => Some(ModeSpec::Symbolic(ModeSet::parse(s)?)),
    })
}

/// Applies a file op's actions on the mounted `target`, copies through `reuse` when given.
fn apply_file_actions(
    target: &Path,
    actions: &[FileAction],
    inputs: &[Input],
    mut reuse: Option<&mut Reuse>,
) -> Result<(), Error> {
    let dest = Root::open(target)?;
    for a in actions {
        match a {
            FileAction::Copy(c) => {
                let input =
                    inputs
                        .get(c.input)
                        .filter(|_| c.input > 0)
                        .ok_or_else(|| Error::Missing {
                            what: format!("copy input {}", c.input),
                        })?;
                let src = Root::open(&input.dir)?;
                let tree = SourceTree {
                    root: &src,
                    filter: input.filter.as_deref(),
                    name: if input.keep_owner {
                        "the source stage"
                    } else {
                        "the build context"
                    },
                };
                let chown = c.chown.as_ref().map(|ch| resolve_chown(&dest, ch));
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
                        chown,
                        keep_owner: input.keep_owner,
                        mode: mode_spec(&c.mode)?,
                    },
                };
                match reuse.as_deref_mut() {
                    Some(r) => xbuild_runtime::copy::copy_reusing(&tree, &dest, &req, r)?,
                    None => xbuild_runtime::copy::copy(&tree, &dest, &req)?,
                }
            }
            FileAction::Mkdir(m) => {
                let owner = m.chown.as_ref().map(|ch| resolve_chown(&dest, ch));
                if m.make_parents {
                    xbuild_runtime::copy::mkdir(&dest, &m.path, m.mode, owner)?;
                } else {
                    let (dir, name) = parent_and_name(&dest, &m.path)?;
                    match rustix::fs::mkdirat(&dir, &name, Mode::from_raw_mode(m.mode & 0o7777)) {
                        Ok(()) => {
                            rustix::fs::chmodat(
                                &dir,
                                &name,
                                Mode::from_raw_mode(m.mode & 0o7777),
                                AtFlags::empty(),
                            )
                            .map_err(|e| io_err(Path::new(&m.path), e))?;
                            if let Some((u, g)) = owner {
                                chown_at(&dir, &name, u, g, &m.path)?;
                            }
                        }
                        Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(io_err(Path::new(&m.path), e)),
                    }
                }
            }
            FileAction::Mkfile(m) => {
                let owner = m.chown.as_ref().map(|ch| resolve_chown(&dest, ch));
                let (dir, name) = parent_and_name(&dest, &m.path)?;
                if let Ok(st) = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)
                    && FileType::from_raw_mode(st.st_mode) != FileType::Directory
                {
                    rustix::fs::unlinkat(&dir, &name, AtFlags::empty())
                        .map_err(|e| io_err(Path::new(&m.path), e))?;
                }
                let fd = rustix::fs::openat(
                    &dir,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io_err(Path::new(&m.path), e))?;
                let mut file = std::fs::File::from(fd);
                std::io::Write::write_all(&mut file, &m.data)
                    .map_err(|e| io_err(Path::new(&m.path), e))?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(m.mode & 0o7777))
                    .map_err(|e| io_err(Path::new(&m.path), e))?;
                if let Some((u, g)) = owner {
                    rustix::fs::fchown(
                        &file,
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                    )
                    .map_err(|e| io_err(Path::new(&m.path), e))?;
                }
            }
            FileAction::Rm(r) => {
                let tree = SourceTree {
                    root: &dest,
                    filter: None,
                    name: "the filesystem",
                };
                let paths = if r.allow_wildcard {
                    resolve_sources(&tree, &r.path, true, false)?
                } else {
                    vec![
                        xbuild_runtime::fsops::rel(&r.path)
                            .to_string_lossy()
                            .to_string(),
                    ]
                };
                for p in paths {
                    let (dir, name) = parent_and_name(&dest, &p)?;
                    match rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => {
                            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                            xbuild_runtime::fsops::remove_at(dir.as_fd(), &name, is_dir)
                                .map_err(|e| io_err(Path::new(&p), e))?;
                        }
                        Err(rustix::io::Errno::NOENT) if r.allow_not_found => {}
                        Err(e) => return Err(io_err(Path::new(&r.path), e)),
                    }
                }
            }
            FileAction::Symlink(s) => {
                let (dir, name) = parent_and_name(&dest, &s.newpath)?;
                rustix::fs::symlinkat(s.oldpath.as_str(), &dir, &name)
                    .map_err(|e| io_err(Path::new(&s.newpath), e))?;
            }
        }
    }
    Ok(())
}

fn chown_at(
    dir: &std::os::fd::OwnedFd,
    name: &std::ffi::OsStr,
    u: u32,
    g: u32,
    p: &str,
) -> Result<(), Error> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(u)),
        Some(rustix::fs::Gid::from_raw(g)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err(Path::new(p), e))
}

/// The existing parent directory of `p` inside the root (symlinks resolved inside it) and
/// `p`'s last name.
fn parent_and_name(
    root: &Root,
    p: &str,
) -> Result<(std::os::fd::OwnedFd, std::ffi::OsString), Error> {
    let rel = xbuild_runtime::fsops::rel(p);
    let name = rel
        .file_name()
        .ok_or_else(|| Error::Path {
            path: p.to_string(),
            problem: "not a file path".into(),
        })?
        .to_os_string();
    let parent = rel
        .parent()
        .map(|x| x.to_string_lossy().to_string())
        .unwrap_or_default();
    let fd = root.resolve(&parent, true)?.ok_or_else(|| Error::Path {
        path: p.to_string(),
        problem: format!("parent directory /{parent} does not exist"),
    })?;
    let dir = Root::reopen(&fd, true).map_err(|e| io_err(Path::new(p), e))?;
    Ok((dir, name))
}
