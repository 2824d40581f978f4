//! Docker's COPY (and ADD of local files) semantics on top of the safe file operations of
//! [`crate::fsops`], as BuildKit's file backend and fsutil's copier implement them.

use rustix::fs::{FileType, Stat};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use crate::Error;
use crate::fsops::{Copier, CopyMeta, Root, list_dir, open_dir_at, rel, stat_at};
use crate::reuse::{DirSlot, Reuse};
use xbuild_dockerignore::glob;
use xbuild_dockerignore::{Filter, FilterState, Verdict};

/// A tree to copy from, with the patterns that decide what exists in it (a build context's
/// `.dockerignore`); paths are checked relative to the tree's root.
#[derive(Clone, Copy)]
pub struct SourceTree<'a> {
    /// The tree.
    pub root: &'a Root,
    /// What of it is visible; `None`: everything.
    pub filter: Option<&'a Filter>,
    /// Its name in errors ("build context", "stage builder").
    pub name: &'a str,
}

/// One `COPY src dest` (one source), as the graph describes it.
#[derive(Clone, Debug, Default)]
pub struct CopyRequest<'a> {
    /// The source path inside the source tree (absolute, may hold wildcards).
    pub src: &'a str,
    /// The destination (absolute); a trailing `/` means "into this directory".
    pub dest: &'a str,
    /// Follow a symlink named as the source.
    pub follow_symlinks: bool,
    /// A directory source copies its contents.
    pub dir_copy_contents: bool,
    /// `src` may hold wildcards.
    pub allow_wildcard: bool,
    /// A wildcard matching nothing is fine.
    pub allow_empty_wildcard: bool,
    /// Create missing parents of `dest`.
    pub create_dest_path: bool,
    /// Only paths (relative to the source) matching these patterns (`--parents`).
    pub include_patterns: &'a [String],
    /// Leave out paths (relative to the source) matching these patterns (`--exclude`).
    pub exclude_patterns: &'a [String],
    /// Paths (inside the source tree) that must exist.
    pub required_paths: &'a [String],
    /// Unpack a tar archive source into `dest` (ADD of a local file).
    pub attempt_unpack: bool,
    /// Owner and mode of what is copied.
    pub meta: CopyMeta,
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// True when `p` (relative) exists in the tree and its filter lets it (or something below it)
/// through.
fn visible(tree: &SourceTree<'_>, p: &str, follow: bool) -> Result<bool, Error> {
    let Some(fd) = tree.root.resolve(p, follow)? else {
        return Ok(false);
    };
    let Some(filter) = tree.filter else {
        return Ok(true);
    };
    if p.is_empty() {
        return Ok(true);
    }
    let (v, state) = filter.state_of(p);
    if v.keep {
        return Ok(true);
    }
    let st =
        rustix::fs::fstat(&fd).map_err(|e| Error::io(&tree.root.host_path().join(p), e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory || !filter.descend(p, v) {
        return Ok(false);
    }
    let dir = Root::reopen(&fd, true).map_err(|e| Error::io(&tree.root.host_path().join(p), e))?;
    any_kept(filter, dir.as_fd(), p, &state)
        .map_err(|e| Error::io(&tree.root.host_path().join(p), e))
}

fn any_kept(
    filter: &Filter,
    dir: BorrowedFd<'_>,
    base: &str,
    state: &FilterState,
) -> std::io::Result<bool> {
    for name in list_dir(dir)? {
        let p = join(base, &name.to_string_lossy());
        let (v, st) = filter.check(&p, state);
        if v.keep {
            return Ok(true);
        }
        let Some(s) = stat_at(dir, &name)? else {
            continue;
        };
        if FileType::from_raw_mode(s.st_mode) == FileType::Directory && filter.descend(&p, v) {
            let sub = open_dir_at(dir, &name)?;
            if crate::fsops::deeper(|| any_kept(filter, sub.as_fd(), &p, &st))? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The source paths `src` selects in the tree: itself, or what its wildcards match (sorted),
/// leaving out what the tree's filter hides.
pub fn resolve_sources(
    tree: &SourceTree<'_>,
    src: &str,
    allow_wildcard: bool,
    follow: bool,
) -> Result<Vec<String>, Error> {
    let clean = rel(src);
    let text = clean.to_string_lossy().to_string();
    if !allow_wildcard || !glob::has_wildcard(&text) {
        return Ok(if visible(tree, &text, follow)? {
            vec![text]
        } else {
            vec![]
        });
    }
    let mut current = vec![String::new()];
    for comp in clean.components() {
        let comp = comp.as_os_str().to_string_lossy().to_string();
        let mut next = Vec::new();
        for base in &current {
            if !glob::has_wildcard(&comp) {
                next.push(join(base, &comp));
                continue;
            }
            let Some(fd) = tree.root.resolve(base, true)? else {
                continue;
            };
            let Ok(dir) = Root::reopen(&fd, true) else {
                continue;
            };
            let names = list_dir(dir.as_fd())
                .map_err(|e| Error::io(&tree.root.host_path().join(base), e))?;
            for name in names {
                let name = name.to_string_lossy().to_string();
                let m = glob::matches(&comp, &name)?;
                if m {
                    next.push(join(base, &name));
                }
            }
        }
        current = next;
    }
    let mut out = Vec::new();
    for p in current {
        if visible(tree, &p, follow)? {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Where a copy lands.
enum Dest {
    /// An existing directory.
    Dir(OwnedFd),
    /// A name in a directory; `existing` tells what is there now.
    Entry {
        parent: OwnedFd,
        name: OsString,
        existing: Option<Stat>,
    },
}

/// How many symlinks a destination path may go through, as the kernel's limit (`ELOOP`).
const MAX_DEST_LINKS: usize = 40;

/// Where a copy to `dest` goes. The whole path resolves beneath `dest_root`, its last
/// component too, as BuildKit resolves a destination (fsutil's `fs.RootPath`): a file copied
/// onto a symlink is written where the symlink points (a dangling one makes its target), and
/// the symlink stays.
fn resolve_dest(dest_root: &Root, dest: &str, owner: Option<(u32, u32)>) -> Result<Dest, Error> {
    let host = |d: &str| dest_root.host_path().join(rel(d));
    let mut dest = dest.to_string();
    for _ in 0..=MAX_DEST_LINKS {
        if let Some(fd) = dest_root.resolve(&dest, true)? {
            let st = rustix::fs::fstat(&fd).map_err(|e| Error::io(&host(&dest), e.into()))?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                return Ok(Dest::Dir(
                    Root::reopen(&fd, true).map_err(|e| Error::io(&host(&dest), e))?,
                ));
            }
        }
        let p = rel(&dest);
        let Some(name) = p.file_name().map(OsStr::to_os_string) else {
            return Ok(Dest::Dir(dest_root.ensure_dir("/", 0o755, owner)?));
        };
        let parent_path = p
            .parent()
            .map(|x| x.to_string_lossy().to_string())
            .unwrap_or_default();
        let parent = dest_root.ensure_dir(&parent_path, 0o755, owner)?;
        let existing = stat_at(parent.as_fd(), &name).map_err(|e| Error::io(&host(&dest), e))?;
        if let Some(st) = &existing
            && FileType::from_raw_mode(st.st_mode) == FileType::Symlink
        {
            let target = rustix::fs::readlinkat(&parent, &name, Vec::new())
                .map_err(|e| Error::io(&host(&dest), e.into()))?;
            let target = target.to_string_lossy();
            dest = if target.starts_with('/') {
                target.into_owned()
            } else {
                format!("/{parent_path}/{target}")
            };
            continue;
        }
        return Ok(Dest::Entry {
            parent,
            name,
            existing,
        });
    }
    Err(Error::io(
        &host(&dest),
        std::io::Error::from_raw_os_error(rustix::io::Errno::LOOP.raw_os_error()),
    ))
}

/// Copies what `req.src` selects in `src` into the tree `dest_root`.
pub fn copy(src: &SourceTree<'_>, dest_root: &Root, req: &CopyRequest<'_>) -> Result<(), Error> {
    copy_with(src, dest_root, req, None)
}

/// Like [`copy`], linking what `reuse` finds unchanged since an earlier run of the same copy
/// instead of copying it (`dest_root` is the mounted snapshot `reuse` was made for; the links
/// are made by [`Reuse::finish`] once it is unmounted).
pub fn copy_reusing(
    src: &SourceTree<'_>,
    dest_root: &Root,
    req: &CopyRequest<'_>,
    reuse: &mut Reuse,
) -> Result<(), Error> {
    copy_with(src, dest_root, req, Some(reuse))
}

fn copy_with(
    src: &SourceTree<'_>,
    dest_root: &Root,
    req: &CopyRequest<'_>,
    reuse: Option<&mut Reuse>,
) -> Result<(), Error> {
    for p in req.required_paths {
        if !visible(src, &rel(p).to_string_lossy(), true)? {
            return Err(Error::SourceNotFound {
                path: p.clone(),
                source_name: src.name.to_string(),
            });
        }
    }
    let wildcard = req.allow_wildcard && glob::has_wildcard(req.src);
    let matches = resolve_sources(src, req.src, req.allow_wildcard, req.follow_symlinks)?;
    if matches.is_empty() {
        if wildcard && req.allow_empty_wildcard {
            return Ok(());
        }
        return Err(Error::SourceNotFound {
            path: req.src.to_string(),
            source_name: src.name.to_string(),
        });
    }
    let owner = req.meta.chown;
    if !req.create_dest_path {
        let parent = Path::new(req.dest)
            .parent()
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        if dest_root.resolve(&parent, true)?.is_none() {
            return Err(Error::NotADirectory(format!(
                "{} (the parent of the destination does not exist)",
                req.dest
            )));
        }
    }
    // The directory the destination is in (or the destination itself, with a trailing `/`).
    let ensure = if req.dest.ends_with('/') {
        req.dest.to_string()
    } else {
        Path::new(req.dest)
            .parent()
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_else(|| "/".into())
    };
    dest_root.ensure_dir(&ensure, 0o755, owner)?;
    let action = Filter::new(req.include_patterns, req.exclude_patterns)?;
    let mut walk = Walk {
        copier: Copier::new(req.meta.clone()),
        ctx: src.filter,
        action: action.as_ref(),
        stack: Vec::new(),
        reuse,
    };
    for m in &matches {
        let fd =
            src.root
                .resolve(m, req.follow_symlinks)?
                .ok_or_else(|| Error::SourceNotFound {
                    path: m.clone(),
                    source_name: src.name.to_string(),
                })?;
        let host_src = src.root.host_path().join(m);
        let ioerr = |e: std::io::Error| Error::io(&host_src, e);
        let st = rustix::fs::fstat(&fd).map_err(|e| ioerr(e.into()))?;
        let ft = FileType::from_raw_mode(st.st_mode);
        if req.attempt_unpack && ft == FileType::RegularFile {
            let file = Root::reopen(&fd, false).map_err(ioerr)?;
            if crate::archive::is_archive(file.as_fd()) {
                let target = dest_root.ensure_dir(req.dest, 0o755, owner)?;
                let file = Root::reopen(&fd, false).map_err(ioerr)?;
                crate::archive::extract(file, target, &host_src, None)?;
                continue;
            }
        }
        let dest = resolve_dest(dest_root, req.dest, owner)?;
        let base = Path::new(m)
            .file_name()
            .map(OsStr::to_os_string)
            .unwrap_or_else(|| OsString::from("."));
        let dest_err = |e: std::io::Error| Error::io(&dest_root.host_path().join(rel(req.dest)), e);
        if ft == FileType::Directory {
            let dir = Root::reopen(&fd, true).map_err(ioerr)?;
            let (target, restore_times) = match dest {
                Dest::Dir(d) if req.dir_copy_contents => (Arc::new(d), true),
                Dest::Dir(d) => {
                    let d = Arc::new(d);
                    let made = walk.top_dir(&dir, &st, &d, &base).map_err(dest_err)?;
                    (made, false)
                }
                Dest::Entry {
                    existing: Some(ex), ..
                } if FileType::from_raw_mode(ex.st_mode) != FileType::Directory => {
                    return Err(Error::NotADirectory(format!(
                        "{}: cannot copy a directory onto a file",
                        req.dest
                    )));
                }
                Dest::Entry { parent, name, .. } => {
                    let parent = Arc::new(parent);
                    if req.dir_copy_contents {
                        let d = crate::fsops::mkdir_at(parent.as_fd(), &name, 0o755, owner)
                            .map_err(dest_err)?;
                        (Arc::new(d), true)
                    } else {
                        (
                            walk.top_dir(&dir, &st, &parent, &name).map_err(dest_err)?,
                            false,
                        )
                    }
                }
            };
            let (cv, cstate) = match src.filter {
                Some(f) if !m.is_empty() => f.state_of(m),
                _ => (
                    Verdict {
                        keep: true,
                        excluded: false,
                    },
                    FilterState::default(),
                ),
            };
            let _ = cv;
            walk.stack.push(Level {
                made: Some(target.clone()),
                src: None,
                st,
                name: OsString::new(),
                slot: DirSlot::default(),
            });
            let r = walk.children(dir.as_fd(), m, "", &cstate, &FilterState::default());
            walk.stack.clear();
            r.map_err(ioerr)?;
            if restore_times {
                walk.copier.finish_dir(&target, &st).map_err(dest_err)?;
            }
            continue;
        }
        let (dir, name) = match dest {
            Dest::Dir(d) => (d, base),
            Dest::Entry { parent, name, .. } => (parent, name),
        };
        let dir = Arc::new(dir);
        if let Some(ex) = stat_at(dir.as_fd(), &name).map_err(dest_err)?
            && FileType::from_raw_mode(ex.st_mode) == FileType::Directory
        {
            return Err(Error::NotADirectory(format!(
                "{}: cannot replace a directory with a file",
                req.dest
            )));
        }
        let (parent_fd, src_name) = parent_of(src, m)?;
        if let Some(r) = walk.reuse.as_deref_mut() {
            r.wrote(&mut DirSlot::default(), &dir, &name);
        }
        match ft {
            FileType::RegularFile => {
                let opened = Root::reopen(&fd, false).map_err(ioerr)?;
                walk.copier
                    .copy_open(
                        Some(opened.as_fd()),
                        parent_fd.as_fd(),
                        &src_name,
                        &st,
                        &dir,
                        &name,
                    )
                    .map_err(ioerr)?;
            }
            _ => walk
                .copier
                .copy_open(None, parent_fd.as_fd(), &src_name, &st, &dir, &name)
                .map_err(ioerr)?,
        }
    }
    Ok(())
}

/// A directory on the way down a copy: created in the destination when something in it is
/// copied (or it is copied itself).
struct Level {
    made: Option<Arc<OwnedFd>>,
    src: Option<OwnedFd>,
    st: Stat,
    name: OsString,
    /// What the reuse knows of the destination directory.
    slot: DirSlot,
}

struct Walk<'a> {
    copier: Copier,
    ctx: Option<&'a Filter>,
    action: Option<&'a Filter>,
    stack: Vec<Level>,
    reuse: Option<&'a mut Reuse>,
}

impl Walk<'_> {
    /// Creates the copy of source directory `src` as `name` in `parent` (the top of a copy).
    fn top_dir(
        &mut self,
        src: &OwnedFd,
        st: &Stat,
        parent: &Arc<OwnedFd>,
        name: &OsStr,
    ) -> std::io::Result<Arc<OwnedFd>> {
        Ok(Arc::new(self.copier.copy_dir_only(src, st, parent, name)?))
    }

    /// Creates every directory of the stack that is not created yet, parents first.
    fn make_all(&mut self) -> std::io::Result<Arc<OwnedFd>> {
        for i in 0..self.stack.len() {
            if self.stack[i].made.is_some() {
                continue;
            }
            let parent = self.stack[i - 1]
                .made
                .clone()
                .ok_or_else(|| std::io::Error::other("copy: parent directory not created"))?;
            let lvl = &self.stack[i];
            let src = lvl
                .src
                .as_ref()
                .ok_or_else(|| std::io::Error::other("copy: directory not opened"))?;
            if let Some(ex) = stat_at(parent.as_fd(), &lvl.name)?
                && FileType::from_raw_mode(ex.st_mode) != FileType::Directory
            {
                return Err(std::io::Error::other(format!(
                    "cannot copy to non-directory: {}",
                    lvl.name.to_string_lossy()
                )));
            }
            let made = self
                .copier
                .copy_dir_only(src, &lvl.st, &parent, &lvl.name)?;
            self.stack[i].made = Some(Arc::new(made));
        }
        self.stack
            .last()
            .and_then(|l| l.made.clone())
            .ok_or_else(|| std::io::Error::other("copy: no destination directory"))
    }

    fn children(
        &mut self,
        src: BorrowedFd<'_>,
        ctx_rel: &str,
        act_rel: &str,
        cst: &FilterState,
        ast: &FilterState,
    ) -> std::io::Result<()> {
        let all = Verdict {
            keep: true,
            excluded: false,
        };
        for name in list_dir(src)? {
            let Some(st) = stat_at(src, &name)? else {
                continue;
            };
            let n = name.to_string_lossy();
            let (cp, ap) = (join(ctx_rel, &n), join(act_rel, &n));
            let (cv, cst2) = match self.ctx {
                Some(f) => f.check(&cp, cst),
                None => (all, FilterState::default()),
            };
            let (av, ast2) = match self.action {
                Some(f) => f.check(&ap, ast),
                None => (all, FilterState::default()),
            };
            let keep = cv.keep && av.keep;
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if !is_dir {
                if !keep {
                    continue;
                }
                let dst = self.make_all()?;
                if let Some(ex) = stat_at(dst.as_fd(), &name)?
                    && FileType::from_raw_mode(ex.st_mode) == FileType::Directory
                {
                    return Err(std::io::Error::other(format!(
                        "cannot replace directory {cp} with a file"
                    )));
                }
                let (Some(reuse), Some(lvl)) = (self.reuse.as_deref_mut(), self.stack.last_mut())
                else {
                    self.copier.copy_entry(src, &name, &st, &dst, &name)?;
                    continue;
                };
                if reuse.link_later(&mut lvl.slot, &dst, &name, &st, self.copier.meta())? {
                    continue;
                }
                self.copier.copy_entry(src, &name, &st, &dst, &name)?;
                let after = stat_at(src, &name)?;
                reuse.copied(&mut lvl.slot, &dst, &name, &st, after.as_ref());
                continue;
            }
            let descend = keep
                || ((cv.keep || self.ctx.is_some_and(|f| f.descend(&cp, cv)))
                    && (av.keep || self.action.is_some_and(|f| f.descend(&ap, av))));
            if !descend {
                continue;
            }
            let sub = open_dir_at(src, &name)?;
            self.stack.push(Level {
                made: None,
                src: Some(rustix::io::dup(&sub)?),
                st,
                name: name.clone(),
                slot: DirSlot::default(),
            });
            if keep {
                self.make_all()?;
            }
            let r = crate::fsops::deeper(|| self.children(sub.as_fd(), &cp, &ap, &cst2, &ast2));
            let lvl = self.stack.pop();
            r?;
            if let Some(made) = lvl.and_then(|l| l.made) {
                self.copier.finish_dir(&made, &st)?;
            }
        }
        Ok(())
    }
}

/// The directory holding `p` (resolved inside the tree) and `p`'s last name.
fn parent_of(tree: &SourceTree<'_>, p: &str) -> Result<(OwnedFd, OsString), Error> {
    let path = Path::new(p);
    let name = path
        .file_name()
        .unwrap_or_else(|| OsStr::new("."))
        .to_os_string();
    let parent = path
        .parent()
        .map(|x| x.to_string_lossy().to_string())
        .unwrap_or_default();
    let fd = tree
        .root
        .resolve(&parent, true)?
        .ok_or_else(|| Error::SourceNotFound {
            path: parent.clone(),
            source_name: tree.name.to_string(),
        })?;
    let dir =
        Root::reopen(&fd, true).map_err(|e| Error::io(&tree.root.host_path().join(&parent), e))?;
    Ok((dir, name))
}

/// `mkdir -p` of `path` inside `dest_root` with `mode` and `owner` for what it creates.
pub fn mkdir(
    dest_root: &Root,
    path: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), Error> {
    dest_root.ensure_dir(path, mode, owner).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn req<'a>(src: &'a str, dest: &'a str) -> CopyRequest<'a> {
        CopyRequest {
            src,
            dest,
            follow_symlinks: true,
            dir_copy_contents: true,
            allow_wildcard: true,
            allow_empty_wildcard: true,
            create_dest_path: true,
            ..Default::default()
        }
    }

    fn tree(root: &Root) -> SourceTree<'_> {
        SourceTree {
            root,
            filter: None,
            name: "build context",
        }
    }

    fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
        let ctx = tempfile::tempdir().unwrap();
        let c = ctx.path();
        std::fs::create_dir_all(c.join("dir/sub")).unwrap();
        std::fs::write(c.join("dir/a.txt"), "a").unwrap();
        std::fs::write(c.join("dir/sub/b.txt"), "b").unwrap();
        std::fs::set_permissions(
            c.join("dir/sub/b.txt"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        std::fs::write(c.join("one.txt"), "1").unwrap();
        std::fs::write(c.join("two.txt"), "2").unwrap();
        std::fs::write(c.join("d"), "d").unwrap();
        std::fs::write(c.join("!"), "bang").unwrap();
        symlink("/etc/passwd", c.join("evil")).unwrap();
        symlink("one.txt", c.join("link")).unwrap();
        (ctx, tempfile::tempdir().unwrap())
    }

    fn read(d: &tempfile::TempDir, p: &str) -> String {
        std::fs::read_to_string(d.path().join(p)).unwrap()
    }

    #[test]
    fn directory_contents_and_modes() {
        let (ctx, dst) = setup();
        std::fs::set_permissions(
            ctx.path().join("dir"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        copy(&tree(&s), &d, &req("/dir", "/app/")).unwrap();
        assert_eq!(read(&dst, "app/a.txt"), "a");
        let m = std::fs::metadata(dst.path().join("app/sub/b.txt")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o751);
        let app = std::fs::metadata(dst.path().join("app")).unwrap();
        assert_eq!(
            app.permissions().mode() & 0o777,
            0o755,
            "a source dir's own mode is not copied"
        );
        // Without a trailing slash, a missing destination becomes the directory itself.
        copy(&tree(&s), &d, &req("/dir", "/other")).unwrap();
        assert_eq!(read(&dst, "other/sub/b.txt"), "b");
    }

    #[test]
    fn file_to_name_and_into_dir() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        copy(&tree(&s), &d, &req("/one.txt", "/x/renamed")).unwrap();
        assert_eq!(read(&dst, "x/renamed"), "1");
        copy(&tree(&s), &d, &req("/one.txt", "/x")).unwrap();
        assert_eq!(read(&dst, "x/one.txt"), "1");
        copy(&tree(&s), &d, &req("/two.txt", "/y/")).unwrap();
        assert_eq!(read(&dst, "y/two.txt"), "2");
        // A file cannot replace a directory.
        std::fs::create_dir_all(dst.path().join("z/one.txt")).unwrap();
        assert!(copy(&tree(&s), &d, &req("/one.txt", "/z/")).is_err());
    }

    #[test]
    fn wildcards_follow_go_match() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let t = tree(&s);
        assert_eq!(
            resolve_sources(&t, "/*.txt", true, true).unwrap(),
            vec!["one.txt", "two.txt"]
        );
        assert_eq!(
            resolve_sources(&t, "/[!d]", true, true).unwrap(),
            vec!["!", "d"]
        );
        assert_eq!(
            resolve_sources(&t, "/dir/*/b.txt", true, true).unwrap(),
            vec!["dir/sub/b.txt"]
        );
        assert!(
            resolve_sources(&t, "/nothing*", true, true)
                .unwrap()
                .is_empty()
        );
        let d = Root::open(dst.path()).unwrap();
        copy(&t, &d, &req("/*.txt", "/w/")).unwrap();
        assert!(dst.path().join("w/one.txt").exists() && dst.path().join("w/two.txt").exists());
        // A wildcard matching a directory copies its contents.
        copy(&t, &d, &req("/di?", "/contents/")).unwrap();
        assert_eq!(read(&dst, "contents/a.txt"), "a");
        assert!(copy(&t, &d, &req("/missing", "/")).is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        let t = tree(&s);
        // A named symlink is followed, inside the context: /etc/passwd there does not exist.
        let err = copy(&t, &d, &req("/evil", "/out")).unwrap_err();
        assert!(matches!(err, Error::SourceNotFound { .. }), "{err}");
        copy(&t, &d, &req("/link", "/l")).unwrap();
        assert_eq!(read(&dst, "l"), "1");
        // A destination through a symlink pointing outside lands inside the root.
        symlink("/tmp", dst.path().join("escape")).unwrap();
        copy(&t, &d, &req("/one.txt", "/escape/")).unwrap();
        assert!(dst.path().join("tmp/one.txt").exists());
        symlink("../../../../../etc", dst.path().join("up")).unwrap();
        copy(&t, &d, &req("/one.txt", "/up/x")).unwrap();
        assert!(dst.path().join("etc/x").exists());
        // `..` cannot climb out of the source or the destination.
        let err = copy(&t, &d, &req("/../../etc/passwd", "/p")).unwrap_err();
        assert!(matches!(err, Error::SourceNotFound { .. }), "{err}");
        copy(&t, &d, &req("/one.txt", "/../../../escaped.txt")).unwrap();
        assert!(dst.path().join("escaped.txt").exists());
    }

    /// A file copied onto a symlink replaced the symlink; BuildKit writes where it points (a
    /// dangling one makes its target), beneath the root, and the symlink stays.
    #[test]
    fn copy_onto_a_symlink_writes_where_it_points_beneath_the_root() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        let t = tree(&s);
        std::fs::create_dir(dst.path().join("real")).unwrap();
        std::fs::write(dst.path().join("real/file"), "old").unwrap();
        symlink("/real/file", dst.path().join("filelink")).unwrap();
        symlink("/nowhere/deep", dst.path().join("dangling")).unwrap();
        symlink("../../../../etc/shadow", dst.path().join("climb")).unwrap();
        symlink("loop-b", dst.path().join("loop-a")).unwrap();
        symlink("loop-a", dst.path().join("loop-b")).unwrap();
        copy(&t, &d, &req("/one.txt", "/filelink")).unwrap();
        assert_eq!(read(&dst, "real/file"), "1");
        assert!(dst.path().join("filelink").is_symlink());
        copy(&t, &d, &req("/one.txt", "/dangling")).unwrap();
        assert_eq!(read(&dst, "nowhere/deep"), "1");
        assert!(dst.path().join("dangling").is_symlink());
        copy(&t, &d, &req("/one.txt", "/climb")).unwrap();
        assert_eq!(read(&dst, "etc/shadow"), "1");
        let err = copy(&t, &d, &req("/one.txt", "/loop-a")).unwrap_err();
        assert!(err.to_string().contains("loop-a"), "{err}");
    }

    #[test]
    fn chmod_octal_and_symbolic() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        let mut r = req("/dir", "/oct/");
        r.meta.mode = Some(crate::fsops::ModeSpec::Octal(0o4750));
        copy(&tree(&s), &d, &r).unwrap();
        let mode = |p: &str| std::fs::metadata(dst.path().join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("oct/a.txt"), 0o4750);
        assert_eq!(mode("oct/sub"), 0o4750);
        assert_eq!(
            mode("oct"),
            0o755,
            "the destination dir the copy creates keeps 0755"
        );
        let mut r = req("/dir", "/sym/");
        r.meta.mode = Some(crate::fsops::ModeSpec::Symbolic(
            crate::chmod::ModeSet::parse("go-rwx,u+X").unwrap(),
        ));
        copy(&tree(&s), &d, &r).unwrap();
        assert_eq!(mode("sym/a.txt"), 0o600);
        assert_eq!(mode("sym/sub/b.txt"), 0o700);
        assert_eq!(mode("sym/sub"), 0o700);
    }

    #[test]
    fn parents_and_exclude_patterns() {
        let (ctx, dst) = setup();
        std::fs::create_dir_all(ctx.path().join("x/y")).unwrap();
        std::fs::write(ctx.path().join("x/y/keep.txt"), "k").unwrap();
        std::fs::write(ctx.path().join("x/y/skip.log"), "s").unwrap();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        // COPY --parents dir/sub/b.txt x/y/*.txt /p/ lowers to an include pattern per source.
        let inc = ["dir/sub/b.txt".to_string()];
        let required = ["/dir/sub/b.txt".to_string()];
        let mut r = req("/", "/p/");
        r.include_patterns = &inc;
        r.required_paths = &required;
        copy(&tree(&s), &d, &r).unwrap();
        assert_eq!(read(&dst, "p/dir/sub/b.txt"), "b");
        assert!(!dst.path().join("p/dir/a.txt").exists());
        assert!(!dst.path().join("p/one.txt").exists());
        let inc = ["x/*/*.txt".to_string()];
        let mut r = req("/", "/p/");
        r.include_patterns = &inc;
        copy(&tree(&s), &d, &r).unwrap();
        assert_eq!(read(&dst, "p/x/y/keep.txt"), "k");
        assert!(!dst.path().join("p/x/y/skip.log").exists());
        // The /./ pivot: src before it, pattern after it.
        let inc = ["sub/b.txt".to_string()];
        let mut r = req("/dir", "/pivot/");
        r.include_patterns = &inc;
        copy(&tree(&s), &d, &r).unwrap();
        assert_eq!(read(&dst, "pivot/sub/b.txt"), "b");
        // A required path that is missing is an error.
        let required = ["/dir/nope".to_string()];
        let mut r = req("/", "/q/");
        r.required_paths = &required;
        assert!(copy(&tree(&s), &d, &r).is_err());
        // --exclude
        let exc = ["**/*.log".to_string(), "sub".to_string()];
        let mut r = req("/x", "/e/");
        r.exclude_patterns = &exc;
        copy(&tree(&s), &d, &r).unwrap();
        assert!(dst.path().join("e/y/keep.txt").exists());
        assert!(!dst.path().join("e/y/skip.log").exists());
    }

    #[test]
    fn context_filter_hides_ignored_paths() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        let f = Filter::new(&[], &["dir/sub".into(), "two.txt".into()])
            .unwrap()
            .unwrap();
        let t = SourceTree {
            root: &s,
            filter: Some(&f),
            name: "build context",
        };
        assert_eq!(
            resolve_sources(&t, "/*.txt", true, true).unwrap(),
            vec!["one.txt"]
        );
        copy(&t, &d, &req("/", "/all/")).unwrap();
        assert!(dst.path().join("all/dir/a.txt").exists());
        assert!(!dst.path().join("all/dir/sub").exists());
        assert!(!dst.path().join("all/two.txt").exists());
        assert!(copy(&t, &d, &req("/two.txt", "/t")).is_err());
        let f = Filter::new(&[], &["dir".into(), "!dir/sub/b.txt".into()])
            .unwrap()
            .unwrap();
        let t = SourceTree {
            root: &s,
            filter: Some(&f),
            name: "build context",
        };
        copy(&t, &d, &req("/", "/exc/")).unwrap();
        assert!(dst.path().join("exc/dir/sub/b.txt").exists());
        assert!(!dst.path().join("exc/dir/a.txt").exists());
    }

    #[test]
    fn context_files_become_root_owned() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let (ctx, dst) = setup();
        std::os::unix::fs::chown(ctx.path().join("one.txt"), Some(1234), Some(1234)).unwrap();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        copy(&tree(&s), &d, &req("/one.txt", "/o")).unwrap();
        assert_eq!(std::fs::metadata(dst.path().join("o")).unwrap().uid(), 0);
        let mut r = req("/one.txt", "/deep/er/p");
        r.meta.chown = Some((7, 8));
        copy(&tree(&s), &d, &r).unwrap();
        for p in ["deep", "deep/er", "deep/er/p"] {
            let m = std::fs::metadata(dst.path().join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (7, 8), "{p}");
        }
    }
}
