//! Docker's COPY semantics on top of the safe file operations of [`crate::fsops`].

use rustix::fs::FileType;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use crate::Error;
use crate::fsops::{Copier, CopyMeta, Root, rel};
use crate::glob;

/// One `COPY src dest` (one source), as the graph describes it.
#[derive(Clone, Debug)]
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
    /// Owner and mode of what is copied.
    pub meta: CopyMeta,
    /// The name of the source tree, for errors ("build context", "stage builder").
    pub source_name: &'a str,
}

/// The source paths `src` selects in `root`: itself, or what its wildcards match (sorted).
pub fn resolve_sources(
    root: &Root,
    src: &str,
    allow_wildcard: bool,
    follow: bool,
) -> Result<Vec<String>, Error> {
    let clean = rel(src);
    let text = clean.to_string_lossy().to_string();
    if !allow_wildcard || !glob::has_wildcard(&text) {
        return Ok(match root.resolve(&text, follow)? {
            Some(_) => vec![text],
            None => vec![],
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
            let Some(fd) = root.resolve(base, true)? else {
                continue;
            };
            let Ok(dir) = Root::reopen(&fd, true) else {
                continue;
            };
            let names = crate::fsops::list_dir(dir.as_fd())
                .map_err(|e| Error::io(&root.host_path().join(base), e))?;
            for name in names {
                let name = name.to_string_lossy().to_string();
                let m =
                    glob::matches(&comp, &name).map_err(|e| Error::BadPattern(e.to_string()))?;
                if m {
                    next.push(join(base, &name));
                }
            }
        }
        current = next;
    }
    let mut out = Vec::new();
    for p in current {
        if root.resolve(&p, follow)?.is_some() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Copies what `req.src` selects in `src_root` into the tree `dest_root`.
pub fn copy(src_root: &Root, dest_root: &Root, req: &CopyRequest<'_>) -> Result<(), Error> {
    let matches = resolve_sources(src_root, req.src, req.allow_wildcard, req.follow_symlinks)?;
    let wildcard = req.allow_wildcard && glob::has_wildcard(req.src);
    if matches.is_empty() {
        if wildcard && req.allow_empty_wildcard {
            return Ok(());
        }
        return Err(Error::SourceNotFound {
            path: req.src.to_string(),
            source_name: req.source_name.to_string(),
        });
    }
    let dest_owner = req.meta.chown;
    let dest_path = Path::new(req.dest);
    let dest_exists_dir = dest_root
        .resolve(req.dest, true)?
        .map(|fd| {
            rustix::fs::fstat(&fd)
                .map(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)
        })
        .transpose()
        .map_err(|e| Error::io(&dest_root.host_path().join(rel(req.dest)), e.into()))?
        .unwrap_or(false);
    let dest_is_dir = req.dest.ends_with('/') || matches.len() > 1 || dest_exists_dir;
    let mut copier = Copier::new(req.meta);
    let parent_mode = 0o755;
    for m in &matches {
        let fd =
            src_root
                .resolve(m, req.follow_symlinks)?
                .ok_or_else(|| Error::SourceNotFound {
                    path: m.clone(),
                    source_name: req.source_name.to_string(),
                })?;
        let st = rustix::fs::fstat(&fd)
            .map_err(|e| Error::io(&src_root.host_path().join(m), e.into()))?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let host_src = src_root.host_path().join(m);
        let ioerr = |e: std::io::Error| Error::io(&host_src, e);
        if ft == FileType::Directory && req.dir_copy_contents {
            let target = Arc::new(dest_root.ensure_dir(req.dest, parent_mode, dest_owner)?);
            let dir = Root::reopen(&fd, true).map_err(ioerr)?;
            copier.copy_children(dir.as_fd(), &target).map_err(ioerr)?;
            continue;
        }
        let (dir_path, name) = if dest_is_dir {
            let base = Path::new(m)
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            (req.dest.to_string(), base)
        } else {
            let parent = dest_path
                .parent()
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_else(|| "/".into());
            let name = dest_path
                .file_name()
                .map(|n| n.to_os_string())
                .ok_or_else(|| Error::NotADirectory(req.dest.to_string()))?;
            (parent, name)
        };
        let target = Arc::new(dest_root.ensure_dir(&dir_path, parent_mode, dest_owner)?);
        // The source is named (followed when asked): open it, and read a symlink through its
        // parent directory.
        let (parent_fd, src_name) = parent_of(src_root, m)?;
        match ft {
            FileType::Directory | FileType::RegularFile => {
                let opened = Root::reopen(&fd, ft == FileType::Directory).map_err(ioerr)?;
                copier
                    .copy_open(
                        Some(opened.as_fd()),
                        parent_fd.as_fd(),
                        &src_name,
                        &st,
                        &target,
                        &name,
                    )
                    .map_err(ioerr)?;
            }
            _ => copier
                .copy_open(None, parent_fd.as_fd(), &src_name, &st, &target, &name)
                .map_err(ioerr)?,
        }
    }
    Ok(())
}

/// The directory holding `p` (resolved inside the root) and `p`'s last name.
fn parent_of(root: &Root, p: &str) -> Result<(std::os::fd::OwnedFd, std::ffi::OsString), Error> {
    let path = Path::new(p);
    let name = path
        .file_name()
        .unwrap_or_else(|| OsStr::new("."))
        .to_os_string();
    let parent = path
        .parent()
        .map(|x| x.to_string_lossy().to_string())
        .unwrap_or_default();
    let fd = root
        .resolve(&parent, true)?
        .ok_or_else(|| Error::SourceNotFound {
            path: parent.clone(),
            source_name: String::new(),
        })?;
    let dir = Root::reopen(&fd, true).map_err(|e| Error::io(&root.host_path().join(&parent), e))?;
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
            meta: CopyMeta::default(),
            source_name: "build context",
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

    #[test]
    fn directory_contents_and_modes() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        copy(&s, &d, &req("/dir", "/app/")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.path().join("app/a.txt")).unwrap(),
            "a"
        );
        let m = std::fs::metadata(dst.path().join("app/sub/b.txt")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o751);
        assert_eq!(
            std::fs::metadata(dst.path().join("app"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
    }

    #[test]
    fn file_to_name_and_into_dir() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        copy(&s, &d, &req("/one.txt", "/x/renamed")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.path().join("x/renamed")).unwrap(),
            "1"
        );
        copy(&s, &d, &req("/one.txt", "/x")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.path().join("x/one.txt")).unwrap(),
            "1"
        );
    }

    #[test]
    fn wildcards_follow_go_match() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        assert_eq!(
            resolve_sources(&s, "/*.txt", true, true).unwrap(),
            vec!["one.txt", "two.txt"]
        );
        assert_eq!(
            resolve_sources(&s, "/[!d]", true, true).unwrap(),
            vec!["!", "d"]
        );
        assert_eq!(
            resolve_sources(&s, "/dir/*/b.txt", true, true).unwrap(),
            vec!["dir/sub/b.txt"]
        );
        assert!(
            resolve_sources(&s, "/nothing*", true, true)
                .unwrap()
                .is_empty()
        );
        let d = Root::open(dst.path()).unwrap();
        copy(&s, &d, &req("/*.txt", "/w")).unwrap();
        assert!(dst.path().join("w/one.txt").exists() && dst.path().join("w/two.txt").exists());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        // A named symlink is followed, inside the context: /etc/passwd there does not exist.
        let err = copy(&s, &d, &req("/evil", "/out")).unwrap_err();
        assert!(matches!(err, Error::SourceNotFound { .. }), "{err}");
        copy(&s, &d, &req("/link", "/l")).unwrap();
        assert_eq!(std::fs::read_to_string(dst.path().join("l")).unwrap(), "1");
        // A destination through a symlink pointing outside lands inside the root.
        symlink("/tmp", dst.path().join("escape")).unwrap();
        copy(&s, &d, &req("/one.txt", "/escape/")).unwrap();
        assert!(dst.path().join("tmp/one.txt").exists());
        // `..` cannot climb out of the source.
        let err = copy(&s, &d, &req("/../../etc/passwd", "/p")).unwrap_err();
        assert!(matches!(err, Error::SourceNotFound { .. }), "{err}");
    }

    #[test]
    fn missing_source_is_an_error() {
        let (ctx, dst) = setup();
        let s = Root::open(ctx.path()).unwrap();
        let d = Root::open(dst.path()).unwrap();
        let err = copy(&s, &d, &req("/missing", "/")).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
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
        copy(&s, &d, &req("/one.txt", "/o")).unwrap();
        assert_eq!(std::fs::metadata(dst.path().join("o")).unwrap().uid(), 0);
        let mut r = req("/one.txt", "/p");
        r.meta.chown = Some((7, 8));
        copy(&s, &d, &r).unwrap();
        let m = std::fs::metadata(dst.path().join("p")).unwrap();
        assert_eq!((m.uid(), m.gid()), (7, 8));
    }
}
