//! Everything of xbuild that touches the host: overlay snapshots, RUN steps through an OCI
//! runtime, safe file operations (COPY, WORKDIR), layer unpacking, snapshot diffs and build
//! context checksums.
//!
//! The solver drives the host through small traits — [`Snapshotter`] (snapshots made,
//! mounted, committed), [`Executor`] (a RUN step's process run on a rootfs),
//! [`Source`] (a local source read in place) and [`FileBackend`] (a file op's
//! actions applied to a mounted snapshot) — so that it can be tested without root on
//! stand-ins. The real implementations are [`LayerSnapshotter`] (overlayfs, or copying where
//! overlay is unavailable), [`RuncExecutor`], [`LocalContext`] and
//! [`HostFileBackend`].
//!
//! Invariant: only this crate mounts, creates namespaces or starts processes. Every path inside
//! a rootfs or a context is resolved so that no symlink or `..` can leave it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild_runtime::Error> {
//! use xbuild_runtime::{ExecSpec, Executor, LayerSnapshotter, RuncExecutor, Snapshotter};
//!
//! let root = std::path::Path::new("/var/lib/xbuild");
//! let snaps = LayerSnapshotter::new(root)?;
//! let active = snaps.prepare(None)?;
//! let mount = snaps.mount(&active)?;
//! let exec = ExecSpec {
//!     args: vec!["/bin/sh".into(), "-c".into(), "echo hi > /greeting".into()],
//!     env: vec!["PATH=/bin".into()],
//!     cwd: "/".into(),
//!     user: String::new(),
//!     network: xbuild_llb::NetworkMode::None,
//!     mounts: vec![],
//!     insecure: false,
//! };
//! let runc = RuncExecutor::new(root, None);
//! runc.run(mount.path(), &exec, &|_, line| println!("{line}")).await?;
//! mount.unmount()?;
//! let id = snaps.commit(active)?;
//! # let _ = id; Ok(()) }
//! ```

mod archive;
mod chmod;
mod context;
mod copy;
mod diff;
mod exec;
mod fetch;
mod file;
mod fsops;
mod mount;
mod native;
mod network;
mod recover;
mod reuse;
mod root_dirs;
mod run_mounts;
mod seccomp;
mod snapshot;
mod spec;
mod unpack;
mod user;

// The public surface: the traits the solver drives the host through, their real
// implementations, and the types they take and give. Everything else is private.

// Snapshots: made, mounted, committed, diffed, filled from layers.
pub use diff::{Change, changes};
pub use mount::MountGuard;
pub use snapshot::{
    Active, LayerSnapshotter, MAX_LOWERS, SnapshotEntry, Snapshotter, SnapshotterKind, View,
};
pub use unpack::{TarKind, UnpackStats, unpack, unpack_into};

// RUN steps: the process, its mounts (cache, secret, ssh, scratch copies of sources).
pub use exec::{ExecFuture, Executor, LineSink, RuncExecutor, Stream, TAIL_LINES};
pub use network::resolv_conf;
pub use run_mounts::{
    CacheInit, CacheLease, CacheMounts, ScratchCopy, ScratchDir, SecretFile, SshForward,
};
pub use spec::{ExecMount, ExecSpec, HOSTNAME};

// File ops: the graph's own actions applied beneath a mounted root.
pub use file::{CopySource, FileBackend, HostFileBackend};
pub use fsops::{Root, remove_at};
pub use reuse::Reuse;

// Local sources (build contexts): read in place, checksummed.
pub use context::{
    Checksum, ContentHashes, FileStamp, LocalContext, MAX_BUILD_FILE, NoContentHashes, PathSum,
    Selection, Source, checksum, checksum_with, read_build_file,
};

// Remote sources: `ADD <url>` downloads and git checkouts, and archives (`ADD` of a tar, a
// context sent as one).
pub use archive::{decompressed, extract, is_archive};
pub use fetch::{CONNECT_TIMEOUT, Download, GitCheckout, GitTree, STALL_TIMEOUT, Scratch};

// The root's directories: what `prune` removes, what a killed build left behind.
pub use recover::{Recovered, SCRATCH_PREFIX};
pub use root_dirs::RootDirs;

use std::path::{Path, PathBuf};

/// What can go wrong on the host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Mounting or unmounting failed.
    #[error("mount at {target}: {message}")]
    Mount {
        /// The mountpoint.
        target: PathBuf,
        /// What failed.
        message: String,
    },
    /// A snapshot id names no committed snapshot.
    #[error("snapshot {0} does not exist (the cache may have been pruned)")]
    SnapshotNotFound(String),
    /// A RUN step exited non-zero.
    #[error("process {command:?} did not complete successfully: exit code {code}")]
    ExecFailed {
        /// The argv.
        command: Vec<String>,
        /// Its exit code (128+N for signal N).
        code: i32,
        /// The last lines of its output.
        tail: Vec<String>,
    },
    /// No OCI runtime binary was given and none is on `PATH`.
    #[error("runc not found on PATH: install it (apt-get install runc) or pass --oci-runtime PATH")]
    RuntimeNotFound,
    /// The OCI runtime could not be started or waited for.
    #[error("{action} the OCI runtime {}: {source}", runtime.display())]
    RuntimeProcess {
        /// "starting" or "waiting for".
        action: &'static str,
        /// The runtime binary.
        runtime: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A snapshotter name that is not one of `overlay`, `native` or `auto`.
    #[error("unknown snapshotter {0:?}: use overlay, native or auto")]
    UnknownSnapshotter(String),
    /// The overlay snapshotter was asked for where overlayfs cannot be mounted.
    #[error("this machine cannot mount overlayfs on the xbuild root; use --snapshotter native")]
    OverlayUnsupported,
    /// xbuild's own capabilities could not be read (`CapEff` of `/proc/self/status`).
    #[error("reading xbuild's own capabilities from /proc/self/status: {0}")]
    OwnCapabilities(String),
    /// A part of the OCI runtime spec (the seccomp profile included) was refused by its
    /// builder: a bug, not something the build asked for.
    #[error("building the OCI runtime spec ({part}): {reason}")]
    Spec {
        /// The part being built.
        part: &'static str,
        /// The builder's complaint.
        reason: String,
    },
    /// A session id that cannot name a session's files (empty, or with `/` or `.`).
    #[error("invalid session id {0:?}")]
    InvalidSession(String),
    /// Every private slot of a `sharing=private` cache mount is taken.
    #[error("no private slot for cache {0} is free")]
    CacheSlotsTaken(String),
    /// A USER or group name that the rootfs does not know.
    #[error("unable to find user {user}: {what}")]
    UnknownUser {
        /// The `user[:group]` given.
        user: String,
        /// What is missing.
        what: String,
    },
    /// A COPY source that does not exist.
    #[error("{path:?} not found in {source_name}")]
    SourceNotFound {
        /// The path as selected.
        path: String,
        /// The tree searched ("build context", "stage builder").
        source_name: String,
    },
    /// A path that must be a directory is not.
    #[error("{0} is not a directory")]
    NotADirectory(String),
    /// Downloading an `ADD <url>` source failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// The HTTP client's or the connection's error (its text is the message; not chained
        /// as a source, so that a report does not repeat what it already says).
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An `ADD <url>` server sent nothing for [`fetch::STALL_TIMEOUT`].
    #[error(
        "downloading {url}: the server sent nothing for {after:?}; check the URL and the network, then build again"
    )]
    DownloadStalled {
        /// The URL.
        url: String,
        /// How long it was silent.
        after: std::time::Duration,
    },
    /// `git` could not be started.
    #[error("running git (install git): {source}")]
    GitUnavailable {
        /// The OS error.
        source: std::io::Error,
    },
    /// A `git` command of a git source's checkout failed.
    #[error("git {args}: {stderr}")]
    Git {
        /// Its arguments, space-separated.
        args: String,
        /// What it said on stderr.
        stderr: String,
    },
    /// A git source's subdirectory is not in the commit checked out.
    #[error("{remote}: no directory {subdir} at {commit}")]
    GitSubdirMissing {
        /// The repository.
        remote: String,
        /// The subdirectory asked for.
        subdir: String,
        /// The commit checked out.
        commit: String,
    },
    /// A path a file action names has no last component (`/`).
    #[error("{0}: not a file path")]
    NotAFilePath(String),
    /// The parent directory of a path a file action creates or removes does not exist.
    #[error("{path}: parent directory /{parent} does not exist")]
    NoParentDir {
        /// The path as the action names it.
        path: String,
        /// Its parent, relative to the root.
        parent: String,
    },
    /// A copy's `--chmod` that is not a mode.
    #[error(transparent)]
    BadChmod(#[from] chmod::BadMode),
    /// A malformed wildcard or exclude pattern.
    #[error(transparent)]
    BadPattern(#[from] xbuild_dockerignore::BadPattern),
    /// The isolated default network of RUN steps could not be set up.
    #[error("setting up the default network of RUN steps: {action}: {reason} ({hint})")]
    Network {
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        reason: String,
        /// What the user can do.
        hint: &'static str,
    },
    /// A tar archive that cannot be unpacked safely.
    #[error("invalid archive: {0}")]
    BadArchive(String),
    /// A Dockerfile or `.dockerignore` that is not a regular file (a FIFO would block the
    /// build).
    #[error("{path} is a {kind}, not a regular file; a Dockerfile or .dockerignore must be one")]
    NotARegularFile {
        /// The path as given.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A Dockerfile or `.dockerignore` larger than [`context::MAX_BUILD_FILE`].
    #[error(
        "{path} is larger than {limit} bytes, the limit for a Dockerfile or .dockerignore; \
         it cannot be a hand-written one: check that -f names the right file"
    )]
    BuildFileTooLarge {
        /// The path as given.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// An archive whose files add up to more bytes than the limit it is unpacked under.
    #[error(
        "the archive's files add up to more than the limit of {limit} bytes at member {entry:?}"
    )]
    ArchiveTooLarge {
        /// The member that crossed the limit.
        entry: String,
        /// The limit, in bytes (holes of sparse files included).
        limit: u64,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
