//! [`Error`]: what can go wrong in the library, with enough context for a user to act.

use std::path::{Path, PathBuf};

use xbuild_cache::cacheconfig::{INLINE_CACHE_KEY, MEDIA_CACHE_CONFIG};

use crate::{Diagnostic, Severity, render_diagnostics};

/// What can go wrong, with enough context for a user to act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile has errors; render them with [`render_diagnostics`] or
    /// [`Error::rendered_diagnostics`].
    #[error("{file}: {} error(s)", diagnostics.iter().filter(|d| d.severity == Severity::Error).count())]
    Dockerfile {
        /// The Dockerfile's path as given.
        file: String,
        /// Its text.
        source_text: String,
        /// Every diagnostic.
        diagnostics: Vec<Diagnostic>,
    },
    /// A step failed.
    #[error(transparent)]
    Solve(#[from] xbuild_solver::Error),
    /// Writing or reading an image failed.
    #[error(transparent)]
    Export(#[from] xbuild_exporter::Error),
    /// Pulling, pushing or logging in failed.
    #[error(transparent)]
    Registry(#[from] xbuild_registry::Error),
    /// A document of a local cache (`--cache-from type=local`) larger than its kind's limit;
    /// it was not read past the limit.
    #[error(
        "{}: the cache's {what} is {size} bytes, more than {limit_name} ({limit} bytes); refused: the cache directory is damaged or not a build cache",
        .path.display(),
        limit_name = .what.limit_name(),
        limit = .what.limit()
    )]
    CacheTooLarge {
        /// The file, or the blob file, read.
        path: PathBuf,
        /// The kind of document, which sets the limit.
        what: xbuild_registry::Document,
        /// Its size (declared by its descriptor, or on disk).
        size: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
    /// The local store holds a pinned reference's (`name@sha256:…`) document, but its content
    /// does not hash to its digest (or cannot be read).
    #[error("{reference}: {source}")]
    Pinned {
        /// The reference, as given.
        reference: String,
        /// What the store found (for corrupt content: the digest expected and the actual one).
        source: xbuild_cache::Error,
    },
    /// An image name that is not in the store.
    #[error("No such image: {0} (see `xbuild images`)")]
    NoSuchImage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An output spec ([`OutputSpec::parse`](crate::OutputSpec::parse)) that cannot be used.
    #[error("{} {spec:?}: {problem}", OptionName::Output)]
    Output {
        /// The spec, as given.
        spec: String,
        /// What is wrong with it.
        problem: OutputError,
    },
    /// A cache spec ([`CacheSpec::parse_from`](crate::CacheSpec::parse_from),
    /// [`CacheSpec::parse_to`](crate::CacheSpec::parse_to)) that cannot be used.
    #[error("{option} {spec:?}: {problem}")]
    CacheSpec {
        /// [`OptionName::CacheFrom`] or [`OptionName::CacheTo`].
        option: OptionName,
        /// The spec, as given.
        spec: String,
        /// What is wrong with it.
        problem: CacheSpecError,
    },
    /// The value of a build argument, label, entitlement, secret or SSH agent option that
    /// cannot be used.
    #[error("{option} {value:?}: {problem}")]
    InvalidOption {
        /// The option.
        option: OptionName,
        /// Its value, as given.
        value: String,
        /// What is wrong with it.
        problem: OptionError,
    },
    /// A platform (`os/arch[/variant]`) that cannot be parsed.
    #[error("platform: {0}")]
    Platform(#[source] xbuild_llb::platform::BadPlatform),
    /// The `BUILDKIT_SYNTAX` build argument names a frontend other than BuildKit's Dockerfile
    /// frontend.
    #[error(
        "{} BUILDKIT_SYNTAX={value}: {source}; BUILDKIT_SYNTAX can name BuildKit's Dockerfile frontend only (docker/dockerfile:1, docker/dockerfile:1-labs, docker/dockerfile-upstream:master, dockerfile.v0)",
        OptionName::BuildArg
    )]
    Frontend {
        /// The argument's value.
        value: String,
        /// Why xbuild cannot build with it.
        source: xbuild_parser::SyntaxError,
    },
    /// A `SOURCE_DATE_EPOCH` that is not whole seconds since 1970.
    #[error("SOURCE_DATE_EPOCH={0:?}: expected whole seconds since 1970-01-01 (e.g. 0)")]
    SourceDateEpoch(String),
    /// Options that do not go together, or one that needs another.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// An image name that is not a valid `name[:tag]` reference.
    #[error(transparent)]
    Reference(#[from] crate::TagError),
    /// An image, or a pinned reference to one, that cannot be used as asked.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// An image filter (`xbuild images --filter`) that cannot be parsed.
    #[error("invalid filter {filter:?}: {problem}")]
    Filter {
        /// The filter, as given.
        filter: String,
        /// What is wrong with it.
        problem: FilterError,
    },
    /// A build context or Dockerfile path that cannot be used.
    #[error(transparent)]
    BadContext(#[from] ContextError),
    /// A snapshot named for export that the root does not hold.
    #[error("snapshot {snapshot} does not exist in {}", root.display())]
    NoSuchSnapshot {
        /// The snapshot's id.
        snapshot: String,
        /// The xbuild root searched.
        root: PathBuf,
    },
    /// A graph given to solve names no output.
    #[error("the graph has no output: name one with Definition::add_output")]
    NoOutput,
    /// A `.dockerignore` with a pattern that cannot be parsed.
    #[error("{}: {source}", path.display())]
    Ignore {
        /// The `.dockerignore` file.
        path: PathBuf,
        /// The pattern, and why it cannot be parsed.
        source: xbuild_dockerignore::BadPattern,
    },
    /// An imported build cache whose documents are not a build cache's.
    #[error("{name}: {problem}")]
    BadCache {
        /// The cache (its reference or directory).
        name: String,
        /// What is wrong with it.
        problem: BadCacheError,
    },
    /// Something that should not happen: a task that panicked or a state the build engine
    /// does not expect.
    #[error(transparent)]
    Internal(#[from] InternalError),
    /// The build was cancelled through [`BuildOptions::cancel`](crate::BuildOptions::cancel); what it started was stopped
    /// and cleaned up.
    #[error("the build was cancelled")]
    Cancelled,
    /// Sending a build to a worker failed (feature `remote`).
    #[cfg(feature = "remote")]
    #[error(transparent)]
    Worker(#[from] Box<crate::worker::Error>),
    /// A git build context could not be fetched.
    #[error("git context {url}: {source}")]
    GitContext {
        /// The repository's URL.
        url: String,
        /// What failed.
        source: GitContextError,
    },
    /// A build context from standard input holding more bytes than allowed (the limit is
    /// [`context_input::from_stdin`](crate::context_input::from_stdin)'s `max_size`,
    /// [`OptionName::MaxContextSize`]).
    #[error(
        "the build context on standard input holds more than the {} ({limit} bytes){}; raise the limit or send a smaller context",
        OptionName::MaxContextSize,
        entry.as_ref().map(|e| format!(" at member {e:?}")).unwrap_or_default()
    )]
    ContextTooLarge {
        /// The limit, in bytes.
        limit: u64,
        /// The archive member that crossed it (none: the input itself is too long).
        entry: Option<String>,
    },
}

/// An option of a build, of a remote build or of a worker, as errors name it. A command line
/// naming its options by flags can swap the name for its flag (see [`Error::option`] and, for
/// the files of remote builds and workers, `worker::OptionFileError::option`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptionName {
    /// [`BuildOptions::outputs`](crate::BuildOptions::outputs).
    Output,
    /// [`BuildOptions::cache_from`](crate::BuildOptions::cache_from).
    CacheFrom,
    /// [`BuildOptions::cache_to`](crate::BuildOptions::cache_to).
    CacheTo,
    /// [`BuildOptions::build_args`](crate::BuildOptions::build_args).
    BuildArg,
    /// [`BuildOptions::labels`](crate::BuildOptions::labels).
    Label,
    /// [`BuildFlags::allow`](crate::BuildFlags::allow): the entitlements.
    Allow,
    /// [`BuildOptions::secrets`](crate::BuildOptions::secrets).
    Secret,
    /// [`BuildOptions::ssh`](crate::BuildOptions::ssh).
    Ssh,
    /// [`BuildOptions::platform`](crate::BuildOptions::platform).
    Platform,
    /// [`BuildOptions::dockerfile`](crate::BuildOptions::dockerfile): the Dockerfile's path.
    Dockerfile,
    /// The size limit of a build context read from standard input
    /// ([`context_input::from_stdin`](crate::context_input::from_stdin)'s `max_size`).
    MaxContextSize,
    /// A remote build's CA of the workers' certificates (`worker::Remote::tls_ca`).
    RemoteTlsCa,
    /// A remote build's client certificate (`worker::Remote::cert`).
    RemoteCert,
    /// A remote build's client key (`worker::Remote::key`).
    RemoteKey,
    /// A remote build's bearer token file (`worker::Remote::token_file`).
    RemoteTokenFile,
    /// A worker's server certificate (the `xbuild-worker` crate's `WorkerOptions::tls_cert`).
    WorkerTlsCert,
    /// A worker's server key (`WorkerOptions::tls_key`).
    WorkerTlsKey,
    /// A worker's CA of client certificates (`WorkerOptions::tls_client_ca`).
    WorkerTlsClientCa,
    /// A worker's bearer token file (`WorkerOptions::token_file`).
    WorkerTokenFile,
}

impl std::fmt::Display for OptionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OptionName::Output => "output spec",
            OptionName::CacheFrom => "cache import spec",
            OptionName::CacheTo => "cache export spec",
            OptionName::BuildArg => "build argument",
            OptionName::Label => "label",
            OptionName::Allow => "entitlement",
            OptionName::Secret => "secret spec",
            OptionName::Ssh => "SSH agent",
            OptionName::Platform => "platform",
            OptionName::Dockerfile => "Dockerfile path",
            OptionName::MaxContextSize => "context size limit",
            OptionName::RemoteTlsCa => "workers' TLS CA",
            OptionName::RemoteCert => "client TLS certificate",
            OptionName::RemoteKey => "client TLS key",
            OptionName::RemoteTokenFile => "bearer token file",
            OptionName::WorkerTlsCert => "TLS server certificate",
            OptionName::WorkerTlsKey => "TLS server key",
            OptionName::WorkerTlsClientCa => "TLS client CA",
            OptionName::WorkerTokenFile => "bearer token file",
        })
    }
}

/// What is wrong with an output spec ([`Error::Output`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// A part that is not `key=value`.
    #[error("expected key=value pairs such as type=oci,dest=DIR")]
    NotKeyValue,
    /// No `type=`.
    #[error("type= is required")]
    MissingType,
    /// An output type that is not known.
    #[error("unknown type {0:?}; expected one of image, registry, oci, docker, local, tar")]
    UnknownType(String),
    /// No `dest=` for a type that writes files.
    #[error("type={kind} needs dest=PATH")]
    MissingDest {
        /// The output type.
        kind: String,
    },
    /// A key the output type does not take.
    #[error("unknown option {key}= for type={kind}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The output type.
        kind: String,
    },
    /// A `push=` that is neither `true` nor `false`.
    #[error("push={0} must be true or false")]
    Push(String),
    /// A `compression=` that names no compression.
    #[error("compression={0}: expected gzip, zstd or uncompressed")]
    Compression(String),
    /// A `compression=` on an output that writes no layers.
    #[error("compression= applies to image, oci and docker outputs, not type={kind}")]
    CompressionWithoutLayers {
        /// The output type.
        kind: String,
    },
    /// A `name=` that is not a valid image reference.
    #[error("name={name}: {0}", name = .0.name())]
    Name(crate::TagError),
}

/// The syntax a cache spec takes, for messages.
const CACHE_SYNTAX: &str = "expected type=registry,ref=HOST/REPO:TAG, type=local,src=DIR (dest=DIR to export), type=inline or a bare reference";

/// What is wrong with a cache spec ([`Error::CacheSpec`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheSpecError {
    /// An empty spec.
    #[error("empty value; {CACHE_SYNTAX}")]
    Empty,
    /// A part that is not `key=value`.
    #[error("{0:?} is not key=value; {CACHE_SYNTAX}")]
    NotKeyValue(String),
    /// No `type=`.
    #[error("type= is required; {CACHE_SYNTAX}")]
    MissingType,
    /// A cache type that is not known.
    #[error("type={0} is not supported; {CACHE_SYNTAX}")]
    UnknownType(String),
    /// A key this direction (import or export) does not take.
    #[error("unknown option {0}=")]
    UnknownKey(String),
    /// A `mode=` that is neither `min` nor `max`.
    #[error("mode={0} must be min or max")]
    Mode(String),
    /// An `export-mounts=` that is neither `true` nor `false`.
    #[error("export-mounts={0} must be true or false")]
    ExportMounts(String),
    /// `type=registry` without `ref=`.
    #[error("type=registry needs ref=")]
    MissingRef,
    /// A reference (`ref=`, or the bare spec) that is not valid.
    #[error("{0}")]
    Reference(crate::TagError),
    /// `src=`/`dest=` on a registry cache.
    #[error("src=/dest= belong to type=local")]
    DirOnRegistry,
    /// `type=local` without its directory.
    #[error("type=local needs {key}=DIR")]
    MissingDir {
        /// `src` (import) or `dest` (export).
        key: &'static str,
    },
    /// `ref=` on a local cache.
    #[error("ref= belongs to type=registry")]
    RefOnLocal,
    /// `type=inline` with other options.
    #[error("type=inline takes no other options")]
    InlineWithOptions,
    /// `type=inline,mode=max`.
    #[error("type=inline only supports mode=min (the image carries only its own layers)")]
    InlineMax,
    /// `type=inline` as an import: the image carrying the cache must be named.
    #[error("name the image that carries the inline cache instead: type=registry,ref=IMAGE")]
    InlineImport,
}

/// What is wrong with an option's value ([`Error::InvalidOption`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// A build argument or label without `=`.
    #[error("expected KEY=VALUE")]
    NotKeyValue,
    /// An entitlement that is not known.
    #[error("expected security.insecure or network.host")]
    UnknownEntitlement,
    /// An SSH agent given by id alone while `SSH_AUTH_SOCK` is not set.
    #[error("SSH_AUTH_SOCK is not set; give the agent's socket as ID=SOCKET")]
    NoSshAgent,
    /// A secret spec that cannot be parsed.
    #[error("{0}")]
    Secret(String),
}

/// Options that do not go together, or one that needs another ([`Error::Conflict`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// [`BuildOptions::push`](crate::BuildOptions::push) without an image output.
    #[error("push needs an image output (OutputSpec::Image)")]
    PushWithoutImageOutput,
    /// A push with no name to push to.
    #[error("push needs a name to push to: a tag or an image output's name")]
    PushWithoutName,
    /// A Dockerfile path given while standard input is itself the Dockerfile.
    #[error(
        "a Dockerfile path cannot be given when standard input is a Dockerfile rather than a tar archive"
    )]
    DockerfileWithStdinDockerfile,
}

/// An image, or a pinned reference to one, that cannot be used as asked ([`Error::Image`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// An image ID prefix more than one image has.
    #[error("{prefix}: ambiguous image ID prefix ({matches} images match); give more characters")]
    AmbiguousId {
        /// The prefix, as given.
        prefix: String,
        /// How many images it matches.
        matches: usize,
    },
    /// Deleting by ID an image with several names, without force.
    #[error(
        "conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories"
    )]
    NeedsForce {
        /// The image's short ID.
        id: String,
    },
    /// A push to a digest reference.
    #[error("{0}: push takes a tag, not a digest reference")]
    PushDigest(String),
    /// A reference resolved by digest that has none.
    #[error("{0}: not a reference by digest")]
    NotByDigest(String),
    /// A digest whose algorithm is not sha256.
    #[error("{0}: only sha256 digests are supported")]
    DigestAlgorithm(String),
    /// A pinned digest naming a blob too large to be a manifest.
    #[error(
        "{reference}: the local store's {digest} is {size} bytes, more than a manifest may be ({limit} bytes): the digest names a layer or another blob, not an image manifest or index; pin the manifest digest (`xbuild inspect --format '{{{{.Descriptor.digest}}}}' IMAGE`)"
    )]
    NotAManifest {
        /// The reference, as given.
        reference: String,
        /// The digest it pins.
        digest: crate::Digest,
        /// The blob's size.
        size: u64,
        /// The largest manifest read.
        limit: u64,
    },
}

/// What is wrong with an image filter ([`Error::Filter`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A filter without `=`.
    #[error("expected name=value")]
    NotKeyValue,
    /// A `dangling=` that is neither true nor false.
    #[error("dangling={0}: expected true or false")]
    Dangling(String),
    /// A filter name that is not known.
    #[error("unknown filter {0:?}; use dangling, label, before, since or reference")]
    UnknownName(String),
    /// A `reference=` pattern that cannot be parsed.
    #[error(transparent)]
    Pattern(#[from] xbuild_dockerignore::BadPattern),
}

/// A build context or Dockerfile path that cannot be used ([`Error::BadContext`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The Dockerfile of an archive or git context given by a path that leaves it.
    #[error(
        "{} {}: the Dockerfile of an archive or git context must be inside it",
        OptionName::Dockerfile,
        .0.display()
    )]
    DockerfileOutside(PathBuf),
    /// A context that is not a directory.
    #[error("{}: the build context must be a directory", .0.display())]
    NotADirectory(PathBuf),
}

/// What failed fetching a git build context ([`Error::GitContext`]).
#[derive(Debug, thiserror::Error)]
pub enum GitContextError {
    /// Cloning or checking out failed.
    #[error(transparent)]
    Git(#[from] xbuild_runtime::Error),
    /// The URL's subdirectory leaves the repository.
    #[error("subdirectory {0:?} leaves the repository")]
    SubdirOutside(String),
    /// The URL's subdirectory is not a directory.
    #[error("subdirectory {0:?} is not a directory inside the repository")]
    SubdirNotADirectory(String),
}

/// What is wrong with an imported cache's documents ([`Error::BadCache`]).
#[derive(Debug, thiserror::Error)]
pub enum BadCacheError {
    /// An index that lists no cache config.
    #[error("the index lists no {MEDIA_CACHE_CONFIG} blob: not a build cache")]
    NoConfig,
    /// A layout index that lists no cache.
    #[error("index.json lists no cache")]
    Empty,
    /// A document that is not the JSON it should be.
    #[error("{document}: {source}")]
    Json {
        /// The document (`index.json`, `manifest sha256:…`).
        document: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// An image without an inline cache.
    #[error(
        "image config {0}: no {INLINE_CACHE_KEY}: the image was not built with an inline cache export"
    )]
    NoInlineCache(crate::Digest),
    /// An inline cache that is not base64.
    #[error("image config {digest}: {INLINE_CACHE_KEY} is not base64: {source}")]
    Base64 {
        /// The image config's digest.
        digest: crate::Digest,
        /// The decoding error.
        source: base64::DecodeError,
    },
    /// An image config without `rootfs.diff_ids`.
    #[error("image config {0}: no rootfs.diff_ids")]
    NoDiffIds(crate::Digest),
    /// An image whose layers and diff IDs do not pair up.
    #[error("image config {digest}: {layers} layers but {diff_ids} diff_ids")]
    LayerCount {
        /// The image config's digest.
        digest: crate::Digest,
        /// The manifest's layers.
        layers: usize,
        /// The config's diff IDs.
        diff_ids: usize,
    },
}

/// Something that should not happen ([`Error::Internal`]).
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// A blocking task that panicked or was cancelled.
    #[error("{what} task failed: {source}")]
    Task {
        /// What the task did.
        what: &'static str,
        /// Why it ended.
        source: tokio::task::JoinError,
    },
    /// A vertex a graph's edge names that the graph does not hold.
    #[error("vertex {0} is not in the graph")]
    MissingVertex(crate::Digest),
    /// A graph the engine built that it cannot add to.
    #[error(transparent)]
    Graph(#[from] xbuild_llb::Error),
    /// A document the engine cannot encode.
    #[error("encoding {what}: {source}")]
    Encode {
        /// The document.
        what: &'static str,
        /// The encoding error.
        source: serde_json::Error,
    },
    /// A lock whose holder panicked.
    #[error("{0} was poisoned")]
    Poisoned(&'static str),
    /// An output whose image was not built.
    #[error("an output's image was not built")]
    ImageNotBuilt,
    /// A solved graph with no output.
    #[error("the graph produced no output")]
    NoResult,
    /// Base images that kept naming further images to pull.
    #[error("{file}: base images kept naming further images to pull after {rounds} rounds")]
    ResolveRounds {
        /// The Dockerfile.
        file: String,
        /// The rounds tried.
        rounds: usize,
    },
}

impl From<xbuild_runtime::Error> for Error {
    fn from(e: xbuild_runtime::Error) -> Self {
        Error::Export(e.into())
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Error {
    /// True for a mistake in the arguments or options (a command line exits 2 for it, as
    /// for its own usage errors), false for a build or command that failed.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Output { .. }
                | Error::CacheSpec { .. }
                | Error::InvalidOption { .. }
                | Error::Platform(_)
                | Error::Frontend { .. }
                | Error::SourceDateEpoch(_)
                | Error::Conflict(_)
                | Error::Reference(_)
                | Error::Image(_)
                | Error::Filter { .. }
                | Error::BadContext(_)
                | Error::NoSuchSnapshot { .. }
                | Error::NoOutput
                | Error::Ignore { .. }
        )
    }

    /// The option this error is about, if it is about one; the message then starts with the
    /// option's name ([`OptionName`]'s `Display`), which a command line may swap for its flag.
    pub fn option(&self) -> Option<OptionName> {
        match self {
            Error::Output { .. } => Some(OptionName::Output),
            Error::CacheSpec { option, .. } | Error::InvalidOption { option, .. } => Some(*option),
            Error::Platform(_) => Some(OptionName::Platform),
            Error::Frontend { .. } => Some(OptionName::BuildArg),
            Error::BadContext(ContextError::DockerfileOutside(_)) => Some(OptionName::Dockerfile),
            _ => None,
        }
    }

    /// For a Dockerfile with errors: every diagnostic rendered with its source lines
    /// ([`render_diagnostics`]).
    pub fn rendered_diagnostics(&self, color: bool) -> Option<String> {
        match self {
            Error::Dockerfile {
                file,
                source_text,
                diagnostics,
            } => Some(render_diagnostics(file, source_text, diagnostics, color)),
            _ => None,
        }
    }

    /// For a build step that failed: where it is in the Dockerfile and, for a RUN step that
    /// exited non-zero, the last lines it printed.
    pub fn step_failure(&self) -> Option<StepFailure<'_>> {
        let Error::Solve(xbuild_solver::Error::Vertex {
            location, source, ..
        }) = self
        else {
            return None;
        };
        let output_tail = match source.as_ref() {
            xbuild_solver::Error::Runtime(xbuild_runtime::Error::ExecFailed { tail, .. }) => {
                tail.as_slice()
            }
            _ => &[],
        };
        Some(StepFailure {
            location: location.as_deref(),
            output_tail,
        })
    }
}

/// A failed build step, as [`Error::step_failure`] finds it.
#[derive(Clone, Copy, Debug)]
pub struct StepFailure<'a> {
    /// Where the step is in the Dockerfile (`Dockerfile:3`).
    pub location: Option<&'a str>,
    /// The last lines a RUN step printed before it failed (empty for other steps).
    pub output_tail: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_about_an_option_starts_with_its_name() {
        let errors = [
            crate::OutputSpec::parse("type=foo").unwrap_err(),
            crate::CacheSpec::parse_from("type=local").unwrap_err(),
            crate::key_values(OptionName::BuildArg, &["x".into()]).unwrap_err(),
            Error::Platform(xbuild_llb::platform::BadPlatform("a/b/c/d".into())),
            Error::from(ContextError::DockerfileOutside("../Dockerfile".into())),
        ];
        for e in errors {
            let option = e.option().unwrap_or_else(|| panic!("{e:?}"));
            assert!(e.to_string().starts_with(&option.to_string()), "{e}");
            assert!(e.is_usage(), "{e}");
        }
        let e = Error::NoSuchImage("x".into());
        assert_eq!(e.option(), None);
        assert!(!e.is_usage());
    }

    #[test]
    fn a_bad_reference_keeps_its_typed_cause() {
        use crate::TagError;
        use xbuild_llb::reference::ReferenceError;
        let e = crate::CacheSpec::parse_from("type=registry,ref=Bad:1").unwrap_err();
        assert!(
            matches!(
                &e,
                Error::CacheSpec {
                    option: OptionName::CacheFrom,
                    problem: CacheSpecError::Reference(TagError::Grammar {
                        problem: ReferenceError::Uppercase(_),
                        ..
                    }),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = crate::OutputSpec::parse("type=image,name=app:-x").unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Output {
                    problem: OutputError::Name(TagError::Tag { tag, .. }),
                    ..
                } if tag == "-x"
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .ends_with("name=app:-x: invalid reference format \"app:-x\": invalid tag \"-x\""),
            "{e}"
        );
        let e = Error::from(crate::Reference::parse("a@sha256:00").unwrap_err());
        assert!(matches!(&e, Error::Reference(TagError::Digest(n)) if n == "a@sha256:00"));
        assert!(e.is_usage());
        assert_eq!(e.option(), None);
    }
}
