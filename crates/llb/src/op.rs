//! The operations a build graph is made of.
//!
//! Every op is plain data. Its canonical form (see [`Op::canonical_bytes`]) and the digests of its
//! inputs give the vertex its [`Digest`](crate::Digest); nothing else does. Ops refer to their
//! inputs by position in the vertex's input list.

use serde::{Deserialize, Serialize};

use crate::Digest;

/// One node of the build graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Brings a filesystem into the graph from outside: nothing, an image, the build context, a
    /// URL or a git repository.
    Source(SourceOp),
    /// Runs a process on top of input 0's filesystem; the result is that filesystem afterwards.
    Exec(ExecOp),
    /// Applies file actions (copy, mkdir, mkfile, rm, symlink) to input 0's filesystem.
    File(FileOp),
    /// Stacks its inputs' filesystems, later ones on top (`COPY --link`): each input stays an
    /// independent layer.
    Merge(MergeOp),
}

impl Op {
    /// The op's canonical serialization: the bytes its digest is computed from.
    ///
    /// serde_json over structs with a fixed field order, enums with fixed tags and sorted maps:
    /// the same op gives the same bytes on every run and machine.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A short name of the op's kind, for progress and graphs.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Source(SourceOp::Scratch) => "scratch",
            Op::Source(SourceOp::Image { .. }) => "image",
            Op::Source(SourceOp::Local { .. }) => "local",
            Op::Source(SourceOp::Http { .. }) => "http",
            Op::Source(SourceOp::Git { .. }) => "git",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
            Op::Merge(_) => "merge",
        }
    }
}

/// Where a source's filesystem comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceOp {
    /// The empty filesystem (`FROM scratch`).
    Scratch,
    /// An image, by its reference and the manifest digest it resolved to.
    Image {
        /// The reference after normalization, e.g. `busybox:local`.
        reference: String,
        /// The manifest digest the reference resolved to when the graph was made.
        digest: Digest,
    },
    /// A directory the client provides (the build context), named so several can coexist.
    Local {
        /// The context's name, e.g. `context`.
        name: String,
        /// Only paths matching these patterns are needed (empty: everything).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        include_patterns: Vec<String>,
        /// Paths matching these patterns are left out (`.dockerignore`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exclude_patterns: Vec<String>,
    },
    /// A file downloaded over HTTP(S) (`ADD https://…`): one file named `filename`.
    Http {
        /// The URL.
        url: String,
        /// The expected sha256 of the content (`ADD --checksum`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum: Option<Digest>,
        /// The file's name in the result.
        filename: String,
    },
    /// A git repository at a ref (`ADD https://…git#ref:dir`).
    Git {
        /// The remote URL.
        remote: String,
        /// A branch, tag or commit; empty for the default branch.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reference: String,
        /// Only this subdirectory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subdir: Option<String>,
        /// Keep the `.git` directory.
        #[serde(default)]
        keep_git_dir: bool,
        /// The expected commit (`ADD --checksum` on a git source).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum: Option<String>,
    },
}

/// The network a RUN step sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The builder's default network: an isolated namespace with outbound access only (it
    /// cannot reach the host's loopback).
    #[default]
    Default,
    /// Only a loopback interface.
    None,
    /// The host's network namespace.
    Host,
}

/// `RUN --security`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Docker's default capability set and confinement.
    #[default]
    Sandbox,
    /// All capabilities, as `--privileged`.
    Insecure,
}

/// Runs a process (a RUN step) with input 0 as its root filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// The argv of the process.
    pub args: Vec<String>,
    /// The environment, `KEY=value` in order.
    pub env: Vec<String>,
    /// The working directory (absolute); created if missing.
    pub cwd: String,
    /// `user[:group]`, names or numeric ids resolved in the root filesystem; empty means root.
    pub user: String,
    /// The network the process sees.
    pub network: NetworkMode,
    /// `RUN --security`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub security: Security,
    /// Extra mounts (`RUN --mount`), in order; the root filesystem is input 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// One `RUN --mount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Where it appears in the container (absolute).
    pub target: String,
    /// What is mounted.
    pub kind: MountKind,
}

/// How a cache mount is shared between concurrent steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    /// Many writers at once.
    #[default]
    Shared,
    /// A new copy for each concurrent writer.
    Private,
    /// One writer at a time; others wait.
    Locked,
}

/// The kinds of `RUN --mount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// `type=bind`: a path of another vertex's output (ro by default; `rw` writes are
    /// discarded).
    Bind {
        /// Index of the input whose filesystem is mounted.
        input: usize,
        /// The path inside that filesystem.
        source: String,
        /// Read-only.
        readonly: bool,
    },
    /// `type=cache`: a directory that persists across builds, by id.
    Cache {
        /// The cache's id (defaults to the target path).
        id: String,
        /// Concurrency mode.
        sharing: CacheSharing,
        /// Owner uid of a new cache directory.
        uid: u32,
        /// Owner gid of a new cache directory.
        gid: u32,
        /// Mode of a new cache directory.
        mode: u32,
        /// Read-only.
        readonly: bool,
        /// Index of an input to seed a new cache from (`from=`), with `source` inside it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<(usize, String)>,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Size limit in bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
    /// `type=secret`: a secret by id, as a file (or an environment variable).
    Secret {
        /// The secret's id.
        id: String,
        /// Fail when the secret is not provided.
        required: bool,
        /// Owner uid.
        uid: u32,
        /// Owner gid.
        gid: u32,
        /// Mode bits.
        mode: u32,
        /// Expose as this environment variable instead of (or besides) a file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<String>,
    },
    /// `type=ssh`: the caller's SSH agent socket, by id.
    Ssh {
        /// The agent's id (`default`).
        id: String,
        /// Fail when no agent is provided.
        required: bool,
        /// Owner uid of the socket.
        uid: u32,
        /// Owner gid of the socket.
        gid: u32,
        /// Mode bits of the socket.
        mode: u32,
    },
}

/// A chain of file actions applied in order on top of input 0's filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    /// The actions, applied in order.
    pub actions: Vec<FileAction>,
}

/// Stacks inputs' filesystems in order (all inputs; none is special).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeOp {}

/// One step of a [`FileOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    /// Copies a path (or the paths a wildcard matches) from another input.
    Copy(CopyAction),
    /// Creates a directory.
    Mkdir(MkdirAction),
    /// Creates a file with given content (heredocs).
    Mkfile(MkfileAction),
    /// Removes a path.
    Rm(RmAction),
    /// Creates a symlink.
    Symlink(SymlinkAction),
}

/// An owner given as a name to resolve in the destination's `/etc/passwd` or `/etc/group`, or an id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdSpec {
    /// A numeric id.
    Id(u32),
    /// A name to look up.
    Name(String),
}

/// `--chown=user[:group]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chown {
    /// The user.
    pub user: IdSpec,
    /// The group; when absent, the user's primary group (or the same id for a numeric user).
    pub group: Option<IdSpec>,
}

/// `--chmod`: octal bits, or a symbolic expression such as `u+x,go-w`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chmod {
    /// `0755`, setuid/setgid/sticky bits included.
    Octal(u32),
    /// `u+rwx,g=rx`, applied to each file's own mode.
    Symbolic(String),
}

/// Copies `src` from input `input` to `dest` in input 0, with Docker's COPY semantics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Index into the vertex's inputs of the filesystem to copy from.
    pub input: usize,
    /// The source path inside that input (may hold wildcards when `allow_wildcard`).
    pub src: String,
    /// The destination path (absolute); a trailing `/` means "into this directory".
    pub dest: String,
    /// Owner of everything copied and of the parent directories the copy creates.
    pub chown: Option<Chown>,
    /// Mode for everything copied (`--chmod`).
    pub mode: Option<Chmod>,
    /// Follow a symlink named as the source itself.
    pub follow_symlinks: bool,
    /// A directory source copies its contents, not itself.
    pub dir_copy_contents: bool,
    /// `src` may hold `*`, `?` and `[...]` wildcards.
    pub allow_wildcard: bool,
    /// A wildcard that matches nothing is not an error.
    pub allow_empty_wildcard: bool,
    /// Create missing parent directories of `dest`.
    pub create_dest_path: bool,
    /// Only copy paths (below `src`) matching these patterns (`--parents` uses them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_patterns: Vec<String>,
    /// Leave out paths matching these patterns (`--exclude`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_patterns: Vec<String>,
    /// Paths that must exist (`--parents` without wildcards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_paths: Vec<String>,
    /// Unpack a local tar archive source into `dest` (ADD).
    #[serde(default)]
    pub attempt_unpack: bool,
}

impl CopyAction {
    /// A plain `COPY src dest` from input `input`: follows a symlink named as the source,
    /// copies a directory's contents, creates missing parents of `dest`; no owner, mode,
    /// wildcards, patterns or unpacking. Set the other fields on the result, so that a new
    /// field (a new COPY flag) has one default here rather than one in every caller.
    pub fn new(input: usize, src: impl Into<String>, dest: impl Into<String>) -> Self {
        CopyAction {
            input,
            src: src.into(),
            dest: dest.into(),
            chown: None,
            mode: None,
            follow_symlinks: true,
            dir_copy_contents: true,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            create_dest_path: true,
            include_patterns: Vec::new(),
            exclude_patterns: Vec::new(),
            required_paths: Vec::new(),
            attempt_unpack: false,
        }
    }
}

/// Creates a directory (WORKDIR).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkdirAction {
    /// The directory (absolute).
    pub path: String,
    /// Its mode bits.
    pub mode: u32,
    /// Create missing parents too.
    pub make_parents: bool,
    /// Owner of the directories created.
    pub chown: Option<Chown>,
}

/// Creates (or replaces) a file with fixed content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkfileAction {
    /// The file (absolute).
    pub path: String,
    /// Its mode bits.
    pub mode: u32,
    /// Its content.
    pub data: Vec<u8>,
    /// Its owner.
    pub chown: Option<Chown>,
}

/// Removes a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RmAction {
    /// The path (absolute, may hold wildcards when `allow_wildcard`).
    pub path: String,
    /// Missing paths are not an error.
    pub allow_not_found: bool,
    /// `path` may hold wildcards.
    pub allow_wildcard: bool,
}

/// Creates a symlink `newpath` → `oldpath`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymlinkAction {
    /// The link's target, as stored.
    pub oldpath: String,
    /// The link's path (absolute).
    pub newpath: String,
}
