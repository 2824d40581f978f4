//! The operations a build graph is made of.
//!
//! Every op is plain data. Its canonical form (see [`Op::canonical_bytes`]) and the digests of its
//! inputs give the vertex its [`Digest`](crate::Digest); nothing else does.

use serde::{Deserialize, Serialize};

use crate::Digest;

/// One node of the build graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Brings a filesystem into the graph from outside: nothing, an image or the build context.
    Source(SourceOp),
    /// Runs a process on top of input 0's filesystem; the result is that filesystem afterwards.
    Exec(ExecOp),
    /// Applies file actions (copy, mkdir) to input 0's filesystem.
    File(FileOp),
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
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
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
        /// The reference as the user wrote it after normalization, e.g. `busybox:local`.
        reference: String,
        /// The manifest digest the reference resolved to when the graph was made.
        digest: Digest,
    },
    /// A directory the client provides (the build context), named so several can coexist.
    Local {
        /// The context's name, e.g. `context`.
        name: String,
    },
}

/// The network a RUN step sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The builder's default network (the host's, as many builders do without CNI).
    #[default]
    Default,
    /// Only a loopback interface.
    None,
    /// The host's network namespace.
    Host,
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
}

/// A chain of file actions applied in order on top of input 0's filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    /// The actions, applied in order.
    pub actions: Vec<FileAction>,
}

/// One step of a [`FileOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    /// Copies a path (or the paths a wildcard matches) from another input.
    Copy(CopyAction),
    /// Creates a directory.
    Mkdir(MkdirAction),
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
    /// Mode bits for everything copied (`--chmod`).
    pub mode: Option<u32>,
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
