//! Where a build's context comes from, as `docker build` accepts it: a directory, `-` (a tar
//! archive, plain or compressed, or a bare Dockerfile on standard input) or a git URL cloned
//! with the system `git`. Archives and clones land in a scratch directory under the xbuild
//! root's `tmp/` that lives as long as the [`PreparedContext`]; it stays locked while its
//! process lives, so that a process killed mid-build leaves nothing the next one does not
//! remove (see [`xbuild_runtime::RootDirs::clean_scratch`]). What standard input brings is
//! limited in size ([`DEFAULT_MAX_CONTEXT_SIZE`] unless told otherwise) and sparse files stay
//! sparse.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use xbuild_runtime::GitCheckout;

use crate::{Conflict, ContextError, Error, GitContextError};

/// The `PATH | - | URL` argument of `xbuild build`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextArg {
    /// A local directory.
    Dir(PathBuf),
    /// `-`: standard input.
    Stdin,
    /// A git repository.
    Git(GitUrl),
}

/// A git context: the repository, the ref to check out and the subdirectory used as context
/// (`URL#REF:SUBDIR`, Docker's syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitUrl {
    /// The repository URL, without the fragment.
    pub remote: String,
    /// A branch, tag or commit (none: the remote's HEAD).
    pub reference: Option<String>,
    /// The directory inside the repository to use as context (none: its top).
    pub subdir: Option<String>,
}

impl ContextArg {
    /// Classifies the argument as Docker does: `-`, then a git URL (`git://…`, `git@…`,
    /// `github.com/…`, or `http(s)://…` / `file://…` whose path ends in `.git`), else a path.
    pub fn parse(arg: &str) -> Self {
        if arg == "-" {
            return ContextArg::Stdin;
        }
        match GitUrl::parse(arg) {
            Some(g) => ContextArg::Git(g),
            None => ContextArg::Dir(PathBuf::from(arg)),
        }
    }
}

impl GitUrl {
    /// The git URL `arg` names, if it is one.
    pub fn parse(arg: &str) -> Option<Self> {
        let (url, fragment) = match arg.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (arg, None),
        };
        let is_git = arg.starts_with("git://")
            || arg.starts_with("git@")
            || arg.starts_with("github.com/")
            || ["https://", "http://", "file://"]
                .iter()
                .any(|s| url.starts_with(s) && url.trim_end_matches('/').ends_with(".git"));
        if !is_git {
            return None;
        }
        let remote = if url.starts_with("github.com/") {
            format!("https://{url}")
        } else {
            url.to_string()
        };
        let (reference, subdir) = match fragment {
            None => (None, None),
            Some(f) => {
                let (r, d) = match f.split_once(':') {
                    Some((r, d)) => (r, Some(d)),
                    None => (f, None),
                };
                let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
                (nonempty(r), d.and_then(nonempty))
            }
        };
        Some(GitUrl {
            remote,
            reference,
            subdir,
        })
    }
}

/// How many bytes a context from standard input may hold by default (16 GiB): its archive as
/// read, and its files as unpacked (holes of sparse files included).
pub const DEFAULT_MAX_CONTEXT_SIZE: u64 = 16 << 30;

/// A context ready to build: a directory, and the Dockerfile when the input chose it.
#[derive(Debug)]
pub struct PreparedContext {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile to use (none: the caller's `-f` or `CONTEXT/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    _scratch: Vec<Scratch>,
}

/// A scratch directory `<root>/tmp/context-<random>`, locked (`flock`) by its process as long
/// as it exists and removed when dropped; once its process is gone, whatever killed it, the
/// lock is free and the next process's recovery removes it.
#[derive(Debug)]
struct Scratch {
    dir: PathBuf,
    _lock: File,
}

impl Scratch {
    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a context scratch directory");
        }
    }
}

impl PreparedContext {
    /// A context that is a directory the caller owns.
    pub fn dir(path: PathBuf) -> Self {
        PreparedContext {
            context: path,
            dockerfile: None,
            _scratch: Vec::new(),
        }
    }
}

/// A new scratch directory under the root `root`: made and locked under a hidden name, then
/// renamed, so that recovery never sees it unlocked.
fn scratch(root: &Path) -> Result<Scratch, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let tmp = root.join("tmp");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&tmp)
        .map_err(io_at(&tmp))?;
    let name = format!(
        "{}{:016x}",
        xbuild_runtime::SCRATCH_PREFIX,
        rand::random::<u64>()
    );
    let hidden = tmp.join(format!(".{name}.new"));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&hidden)
        .map_err(io_at(&hidden))?;
    let lock = File::open(&hidden).map_err(io_at(&hidden))?;
    let locked = rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive);
    let dir = tmp.join(name);
    let renamed = locked
        .map_err(std::io::Error::from)
        .and_then(|()| std::fs::rename(&hidden, &dir));
    if let Err(e) = renamed {
        let _ = std::fs::remove_dir(&hidden);
        return Err(io_at(&dir)(e));
    }
    Ok(Scratch { dir, _lock: lock })
}

/// Copies at most `limit` bytes of `input` into a new file `dest`; more is
/// [`Error::ContextTooLarge`].
fn copy_limited(input: impl Read, dest: &Path, limit: u64) -> Result<(), Error> {
    let mut f = File::create(dest).map_err(io_at(dest))?;
    let n = std::io::copy(&mut input.take(limit.saturating_add(1)), &mut f)
        .map_err(io_at(Path::new("<stdin>")))?;
    if n > limit {
        return Err(Error::ContextTooLarge { limit, entry: None });
    }
    Ok(())
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `-f FILE` for a context that was unpacked or cloned: relative to the context's top, and it
/// must stay inside it.
fn dockerfile_inside(context: &Path, file: &Path) -> Result<PathBuf, Error> {
    let rel: PathBuf = file
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(ContextError::DockerfileOutside(file.to_path_buf()).into());
    }
    Ok(context.join(rel))
}

/// Unpacks standard input `input` into a scratch directory under the xbuild root `root`: a tar
/// archive (plain, gzip, bzip2, xz or zstd, recognised by content) becomes the context;
/// anything else is taken as the Dockerfile of an empty context, as `docker build -` does.
/// `file` is `-f` (relative to the archive's top). The input, and the files it unpacks to,
/// may hold at most `max_size` bytes each ([`Error::ContextTooLarge`]); a failure leaves
/// nothing.
pub fn from_stdin(
    input: impl Read,
    file: Option<&Path>,
    root: &Path,
    max_size: u64,
) -> Result<PreparedContext, Error> {
    let tmp = scratch(root)?;
    let raw = tmp.path().join("stdin");
    copy_limited(input, &raw, max_size)?;
    let context = tmp.path().join("context");
    std::fs::create_dir(&context).map_err(io_at(&context))?;
    let fd: OwnedFd = std::fs::File::open(&raw).map_err(io_at(&raw))?.into();
    let dockerfile = if xbuild_runtime::is_archive(std::os::fd::AsFd::as_fd(&fd)) {
        let dest: OwnedFd = std::fs::File::open(&context)
            .map_err(io_at(&context))?
            .into();
        xbuild_runtime::extract(fd, dest, Path::new("<stdin>"), Some(max_size)).map_err(
            |e| match e {
                xbuild_runtime::Error::ArchiveTooLarge { entry, limit } => Error::ContextTooLarge {
                    limit,
                    entry: Some(entry),
                },
                e => e.into(),
            },
        )?;
        std::fs::remove_file(&raw).map_err(io_at(&raw))?;
        file.map(|f| dockerfile_inside(&context, f)).transpose()?
    } else {
        drop(fd);
        if file.is_some() {
            return Err(Conflict::DockerfileWithStdinDockerfile.into());
        }
        let df = tmp.path().join("Dockerfile");
        std::fs::rename(&raw, &df).map_err(io_at(&df))?;
        Some(df)
    };
    Ok(PreparedContext {
        context,
        dockerfile,
        _scratch: vec![tmp],
    })
}

/// Reads a Dockerfile from `input` (`-f -`, at most `max_size` bytes) into a scratch file
/// under the xbuild root `root`.
pub fn dockerfile_from_stdin(
    input: impl Read,
    mut context: PreparedContext,
    root: &Path,
    max_size: u64,
) -> Result<PreparedContext, Error> {
    let tmp = scratch(root)?;
    let df = tmp.path().join("Dockerfile");
    copy_limited(input, &df, max_size)?;
    context.dockerfile = Some(df);
    context._scratch.push(tmp);
    Ok(context)
}

/// Clones `url` with the system `git` into a scratch directory under the xbuild root `root`
/// (shallow at the ref when the remote allows it, with its submodules: the runtime's
/// [`GitCheckout`], as `ADD <git url>` does), and uses its subdirectory as the context; the
/// `.git` directory is not part of the context. `file` is
/// `-f`, relative to that subdirectory.
pub fn from_git(url: &GitUrl, file: Option<&Path>, root: &Path) -> Result<PreparedContext, Error> {
    let fail = |source: GitContextError| Error::GitContext {
        url: url.remote.clone(),
        source,
    };
    let tmp = scratch(root)?;
    let repo = tmp.path().join("repo");
    let want = url.reference.as_deref().unwrap_or("");
    let checkout = GitCheckout::fetch(&url.remote, want, &repo).map_err(|e| fail(e.into()))?;
    if let Some(sub) = &url.subdir {
        dockerfile_inside(&repo, Path::new(sub))
            .map_err(|_| fail(GitContextError::SubdirOutside(sub.clone())))?;
    }
    // The subdirectory is resolved inside the checkout (its symlinks too).
    let tree = checkout
        .tree(url.subdir.as_deref(), false)
        .map_err(|e| fail(e.into()))?;
    let context = tree.path().to_path_buf();
    if !context.is_dir() {
        return Err(fail(GitContextError::SubdirNotADirectory(
            url.subdir.clone().unwrap_or_default(),
        )));
    }
    let dockerfile = file.map(|f| dockerfile_inside(&context, f)).transpose()?;
    Ok(PreparedContext {
        context,
        dockerfile,
        _scratch: vec![tmp],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_url(remote: &str, r: Option<&str>, d: Option<&str>) -> ContextArg {
        ContextArg::Git(GitUrl {
            remote: remote.into(),
            reference: r.map(Into::into),
            subdir: d.map(Into::into),
        })
    }

    #[test]
    fn arguments_are_classified_as_docker_does() {
        assert_eq!(ContextArg::parse("-"), ContextArg::Stdin);
        assert_eq!(ContextArg::parse("."), ContextArg::Dir(".".into()));
        assert_eq!(
            ContextArg::parse("repo.git"),
            ContextArg::Dir("repo.git".into())
        );
        assert_eq!(
            ContextArg::parse("https://example.com/a/b"),
            ContextArg::Dir("https://example.com/a/b".into())
        );
        assert_eq!(
            ContextArg::parse("https://example.com/a/b.git"),
            git_url("https://example.com/a/b.git", None, None)
        );
        assert_eq!(
            ContextArg::parse("https://example.com/a/b.git#v1:sub/dir"),
            git_url("https://example.com/a/b.git", Some("v1"), Some("sub/dir"))
        );
        assert_eq!(
            ContextArg::parse("https://example.com/a/b.git#:docs"),
            git_url("https://example.com/a/b.git", None, Some("docs"))
        );
        assert_eq!(
            ContextArg::parse("git@github.com:o/r#main"),
            git_url("git@github.com:o/r", Some("main"), None)
        );
        assert_eq!(
            ContextArg::parse("git://host/r"),
            git_url("git://host/r", None, None)
        );
        assert_eq!(
            ContextArg::parse("github.com/o/r"),
            git_url("https://github.com/o/r", None, None)
        );
        assert_eq!(
            ContextArg::parse("file:///srv/r.git#abc123"),
            git_url("file:///srv/r.git", Some("abc123"), None)
        );
    }

    #[test]
    fn stdin_text_is_a_dockerfile_with_an_empty_context() {
        let root = tempfile::tempdir().unwrap();
        let p = from_stdin(&b"FROM scratch\n"[..], None, root.path(), 1 << 20).unwrap();
        assert!(p.context.starts_with(root.path().join("tmp")));
        assert_eq!(std::fs::read_dir(&p.context).unwrap().count(), 0);
        let df = p.dockerfile.clone().unwrap();
        assert_eq!(std::fs::read_to_string(&df).unwrap(), "FROM scratch\n");
        let scratch = p.context.parent().unwrap().to_path_buf();
        drop(p);
        assert!(
            !scratch.exists(),
            "the temporary context outlived its owner"
        );
    }

    #[test]
    fn a_dockerfile_outside_an_archive_context_is_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "Dockerfile", &b"FROM "[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let root = tempfile::tempdir().unwrap();
        let err =
            from_stdin(&bytes[..], Some(Path::new("../x")), root.path(), 1 << 20).unwrap_err();
        assert!(
            matches!(&err, Error::BadContext(ContextError::DockerfileOutside(p)) if p == Path::new("../x")),
            "{err}"
        );
        assert!(err.is_usage());
        assert_eq!(
            err.to_string(),
            "Dockerfile path ../x: the Dockerfile of an archive or git context must be inside it"
        );
        let ok = from_stdin(
            &bytes[..],
            Some(Path::new("/Dockerfile")),
            root.path(),
            1 << 20,
        )
        .unwrap();
        assert_eq!(ok.dockerfile.unwrap(), ok.context.join("Dockerfile"));
    }

    /// A tar of one GNU sparse file of `apparent` bytes holding 512 bytes of data at the end.
    fn sparse_tar(apparent: u64) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_path("big.img").unwrap();
        header.set_mode(0o644);
        header.set_size(512);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let g = header.as_gnu_mut().unwrap();
        g.sparse[0].offset = octal(apparent - 512);
        g.sparse[0].numbytes = octal(512);
        g.realsize = octal(apparent);
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(&[b'x'; 512]);
        out.extend_from_slice(&[0; 1024]);
        out
    }

    fn octal(v: u64) -> [u8; 12] {
        let s = format!("{v:011o}\0");
        let mut out = [0u8; 12];
        out.copy_from_slice(s.as_bytes());
        out
    }

    #[test]
    fn a_sparse_stdin_context_stays_sparse_and_under_the_root() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let p = from_stdin(&sparse_tar(1 << 30)[..], None, root.path(), 16 << 30).unwrap();
        let md = std::fs::metadata(p.context.join("big.img")).unwrap();
        assert_eq!(md.len(), 1 << 30);
        assert!(
            md.blocks() * 512 < 1 << 20,
            "{} blocks written",
            md.blocks()
        );
    }

    #[test]
    fn a_stdin_context_over_the_limit_fails_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let err = from_stdin(&sparse_tar(1 << 30)[..], None, root.path(), 1 << 20).unwrap_err();
        assert!(
            matches!(&err, Error::ContextTooLarge { limit, entry: Some(e) } if *limit == 1 << 20 && e == "big.img"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("context size limit (1048576 bytes)"),
            "{err}"
        );
        let err = from_stdin(&[b'#'; 4096][..], None, root.path(), 1000).unwrap_err();
        assert!(
            matches!(err, Error::ContextTooLarge { entry: None, .. }),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(root.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_scratch_context_of_a_dead_process_is_recovered_and_a_live_one_kept() {
        let root = tempfile::tempdir().unwrap();
        let live = from_stdin(&b"FROM scratch\n"[..], None, root.path(), 1 << 20).unwrap();
        let dead = root.path().join("tmp/context-00000000deadbeef");
        std::fs::create_dir_all(dead.join("sub")).unwrap();
        assert_eq!(
            xbuild_runtime::RootDirs::new(root.path()).clean_scratch(),
            1
        );
        assert!(!dead.exists());
        assert!(live.context.exists());
    }
}
