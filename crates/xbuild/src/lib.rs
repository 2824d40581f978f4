//! xbuild: a Dockerfile build engine, embeddable.
//!
//! [`Builder`] is the facade the `xbuild` binary is a thin layer over: it parses and lowers a
//! Dockerfile ([`xbuild_parser`]), solves the graph ([`xbuild_solver`]) against an xbuild root
//! (content store and snapshots), and exports the result ([`xbuild_exporter`]) into the local
//! image store, an OCI layout, a docker-archive, a directory or a filesystem tar. It also
//! manages the local image store the way Docker's image commands do (`images`, `tag`, `rmi`,
//! `image prune`, `history`, `save`, `load`, `import`, `export`, `diff`), and sends builds to
//! remote workers or serves them ([`worker`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild::Error> {
//! use xbuild::{BuildOptions, Builder, OutputSpec};
//!
//! let builder = Builder::new("/var/lib/xbuild");
//! let mut opts = BuildOptions::new("./app");
//! opts.tags.push("app:1".into());
//! opts.outputs.push(OutputSpec::parse("type=oci,dest=app-oci")?);
//! let result = builder.build(&opts).await?;
//! println!("built {:?}: {} steps ran, {} cached, in {:?}",
//!     result.image_id, result.executed, result.cached, result.timings.total);
//! # Ok(()) }
//! ```
//!
//! Lower-level entry points: [`parse`] (a Dockerfile's syntax tree), [`Builder::lower`]
//! (the [`Definition`] to inspect or edit), [`Builder::solve`] and [`Builder::export_solution`]
//! (run any graph, hand-built ones included, then write its outputs), and
//! [`Builder::export_snapshot`] (an image from a snapshot). Progress comes to a
//! [`ProgressSink`] or, through [`event_stream`], as a [`Stream`](futures_util::Stream) of
//! [`Event`]s; [`BuildOptions::cancel`] stops a build and cleans up what it started.
#![forbid(unsafe_code)]

mod cache_export;
mod cache_import;
mod cachespec;
pub mod context_input;
mod events;
mod filter;
mod inspect;
mod reference;
mod remote;
mod store;
pub mod worker;

pub use cachespec::{CacheMode, CacheSpec};
pub use events::{ChannelSink, EventStream, SharedSink, StepTiming, Timings, event_stream};
pub use filter::ImageFilter;
pub use inspect::{
    DockerConfig, DockerDescriptor, DockerImage, DockerMetadata, DockerRootFs, RawImage,
};
pub use reference::Reference;
pub use remote::PullSummary;
pub use store::{ImageSummary, NONE, Removed, StoreResolver, default_root};
pub use tokio_util::sync::CancellationToken;
pub use xbuild_cache::gc::PruneOptions;
pub use xbuild_cache::verify::{BrokenImage, CorruptBlob, VerifyReport};
pub use xbuild_exporter::{ArchiveFormat, Compression, FileChange};
/// The graph types ([`Definition`], [`llb::Op`], …) for building graphs by hand.
pub use xbuild_llb as llb;
pub use xbuild_llb::{Definition, Digest};
/// The Dockerfile parser and lowering, for tools that only read Dockerfiles.
pub use xbuild_parser as parser;
pub use xbuild_parser::{Diagnostic, Parsed, Severity, parse};
pub use xbuild_registry::{Pushed, RegistryOptions};
pub use xbuild_runtime::SnapshotterKind;
/// The solver, for running graphs with your own progress sinks and options.
pub use xbuild_solver as solver;
pub use xbuild_solver::explain::Explanation;
pub use xbuild_solver::gc::{DiskUsage, PruneReport};
pub use xbuild_solver::{Event, NoProgress, ProgressSink, SecretSource};

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use xbuild_cache::Store;
use xbuild_cache::memo::ExportRecord;
use xbuild_cache::oci::{ImageConfigFile, Manifest};
use xbuild_exporter::{ArchiveImage, BuiltImage, ExportOptions, StepResult};
use xbuild_parser::lower::{CONTEXT_NAME, LowerOptions};
use xbuild_runtime::context::LocalContext;
use xbuild_runtime::{LayerSnapshotter, RuncExecutor, Snapshotter};
use xbuild_solver::{Solver, SolverOptions};

/// What can go wrong, with enough context for a user to act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile has errors; render them with [`render_diagnostics`].
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
    /// Invalid arguments.
    #[error("{0}")]
    Usage(String),
    /// The build was cancelled through [`BuildOptions::cancel`]; what it started was stopped
    /// and cleaned up.
    #[error("the build was cancelled")]
    Cancelled,
    /// Sending a build to a worker, or serving one, failed.
    #[error(transparent)]
    Worker(#[from] Box<worker::Error>),
    /// The build context could not be fetched (a git clone failed).
    #[error("{0}")]
    Context(String),
    /// A build context from standard input holding more bytes than allowed.
    #[error(
        "the build context on standard input holds more than --max-context-size ({limit} bytes){}; pass a larger --max-context-size or send a smaller context",
        entry.as_ref().map(|e| format!(" at member {e:?}")).unwrap_or_default()
    )]
    ContextTooLarge {
        /// The limit, in bytes.
        limit: u64,
        /// The archive member that crossed it (none: the input itself is too long).
        entry: Option<String>,
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

/// Where a build's result goes (`docker build --output` / BuildKit's exporters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    /// Into the local image store, tagged with the build's tags and `names`; with `push`, also
    /// pushed to the registries those names point at (`type=registry` is `push=true`).
    Image {
        /// Extra names (`name=`, repeatable).
        names: Vec<String>,
        /// Layer compression (default: the build's).
        compression: Option<Compression>,
        /// Push the names (`push=true`).
        push: bool,
    },
    /// An OCI image layout: a directory, or a tar (`.tar` path, `tar=true`, or `-`: stdout).
    Oci {
        /// Where.
        dest: PathBuf,
        /// A directory rather than a tar.
        dir: bool,
        /// Names (`name=`, repeatable; default: the build's tags).
        names: Vec<String>,
        /// Layer compression (default: the build's).
        compression: Option<Compression>,
    },
    /// A docker-archive `docker load` accepts (`-`: stdout).
    Docker {
        /// Where.
        dest: PathBuf,
        /// Names (`name=`, repeatable; default: the build's tags).
        names: Vec<String>,
        /// Layer compression (default: the build's).
        compression: Option<Compression>,
    },
    /// The final filesystem written into a directory.
    Local {
        /// Where.
        dest: PathBuf,
    },
    /// The final filesystem as a tar (`-`: stdout).
    Tar {
        /// Where.
        dest: PathBuf,
    },
}

impl OutputSpec {
    /// Parses `docker build --output` syntax: `type=image`, `type=oci,dest=DIR|FILE.tar`,
    /// `type=docker,dest=FILE.tar[,name=REF]`, `type=local,dest=DIR`, `type=tar,dest=FILE`,
    /// each with `compression=gzip|zstd|uncompressed` where layers are written. A bare path
    /// means `type=local,dest=PATH`, as in Docker.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        if !spec.contains('=') {
            return Ok(match spec {
                "-" => OutputSpec::Tar { dest: "-".into() },
                _ => OutputSpec::Local { dest: spec.into() },
            });
        }
        let mut kv = BTreeMap::new();
        let mut names: Vec<String> = Vec::new();
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                Error::Usage(format!(
                    "invalid --output {spec:?}: expected key=value pairs such as type=oci,dest=DIR"
                ))
            })?;
            if k.trim() == "name" {
                names.push(v.trim().to_string());
            } else {
                kv.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let typ = kv
            .remove("type")
            .ok_or_else(|| Error::Usage(format!("invalid --output {spec:?}: type= is required")))?;
        let dest = kv.remove("dest").map(PathBuf::from);
        let need_dest = |d: Option<PathBuf>| {
            d.ok_or_else(|| Error::Usage(format!("--output {spec:?} needs dest=PATH")))
        };
        for n in &names {
            Reference::parse(n).map_err(|e| Error::Usage(format!("--output name={n}: {e}")))?;
        }
        let compression = kv
            .remove("compression")
            .map(|c| Compression::parse(&c))
            .transpose()?;
        let tar = kv.remove("tar").map(|t| t != "false");
        let push = match kv.remove("push").as_deref() {
            None | Some("false") => typ == "registry",
            Some("true") => true,
            Some(other) => {
                return Err(Error::Usage(format!(
                    "--output {spec:?}: push={other} must be true or false"
                )));
            }
        };
        for ignored in ["oci-mediatypes", "force-compression", "compression-level"] {
            kv.remove(ignored);
        }
        if let Some(k) = kv.keys().next() {
            return Err(Error::Usage(format!(
                "--output {spec:?}: unknown option {k}= for type={typ}"
            )));
        }
        let layered = matches!(typ.as_str(), "image" | "registry" | "oci" | "docker");
        if compression.is_some() && !layered {
            return Err(Error::Usage(format!(
                "--output {spec:?}: compression= applies to image, oci and docker outputs"
            )));
        }
        match typ.as_str() {
            "image" | "registry" => Ok(OutputSpec::Image {
                names,
                compression,
                push,
            }),
            "oci" => {
                let dest = need_dest(dest)?;
                let is_tar = tar.unwrap_or_else(|| {
                    dest.as_os_str() == "-" || dest.extension().is_some_and(|e| e == "tar")
                });
                Ok(OutputSpec::Oci {
                    dest,
                    dir: !is_tar,
                    names,
                    compression,
                })
            }
            "docker" => Ok(OutputSpec::Docker {
                dest: need_dest(dest)?,
                names,
                compression,
            }),
            "local" => Ok(OutputSpec::Local {
                dest: need_dest(dest)?,
            }),
            "tar" => Ok(OutputSpec::Tar {
                dest: need_dest(dest)?,
            }),
            other => Err(Error::Usage(format!(
                "--output type={other} is not supported; use image, registry, oci, docker, local or tar"
            ))),
        }
    }

    fn compression(&self) -> Option<Option<Compression>> {
        match self {
            OutputSpec::Image { compression, .. }
            | OutputSpec::Oci { compression, .. }
            | OutputSpec::Docker { compression, .. } => Some(*compression),
            OutputSpec::Local { .. } | OutputSpec::Tar { .. } => None,
        }
    }
}

/// Options of one build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: `Dockerfile` in the context). With
    /// [`dockerfile_text`](Self::dockerfile_text), only the name errors show.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text, when it does not come from a file.
    pub dockerfile_text: Option<String>,
    /// The `.dockerignore` patterns; read from `<Dockerfile>.dockerignore` or the context's
    /// `.dockerignore` when `None`.
    pub ignore_patterns: Option<Vec<String>>,
    /// Tags for the image (`name:tag`).
    pub tags: Vec<String>,
    /// Where the result goes; the local store when empty.
    pub outputs: Vec<OutputSpec>,
    /// Run every step, ignoring cached results.
    pub no_cache: bool,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Layer compression of outputs that do not choose one.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: this build's times (history, config, layer files) are clamped to
    /// it, so the same inputs give the same image digest.
    pub source_date_epoch: Option<i64>,
    /// Secrets by id for `RUN --mount=type=secret` (`--secret`).
    pub secrets: HashMap<String, SecretSource>,
    /// SSH agent sockets by id for `RUN --mount=type=ssh` (`--ssh`).
    pub ssh: HashMap<String, PathBuf>,
    /// Re-resolve every base image in its registry, even when the local store has it.
    pub pull: bool,
    /// Push the tagged image to the registries its tags name (`--push`).
    pub push: bool,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--label` values for the image.
    pub labels: BTreeMap<String, String>,
    /// `--platform` (`linux/amd64`); the host's when unset.
    pub platform: Option<String>,
    /// Build cache to import before solving (`--cache-from`).
    pub cache_from: Vec<CacheSpec>,
    /// Where to export build cache after solving (`--cache-to`).
    pub cache_to: Vec<CacheSpec>,
    /// Where progress events go (nowhere by default; see [`event_stream`] for a stream).
    pub progress: SharedSink,
    /// Cancels the build: running steps are killed and everything they held (containers,
    /// mounts, uncommitted snapshots) is released before [`Builder::build`] returns
    /// [`Error::Cancelled`]. An export already writing finishes first.
    pub cancel: CancellationToken,
    /// The `security.insecure` entitlement (`--allow security.insecure`), which
    /// `RUN --security=insecure` needs.
    pub allow_insecure: bool,
    /// The `network.host` entitlement (`--allow network.host`), which `RUN --network=host`
    /// needs.
    pub allow_network_host: bool,
    /// Reads the build context through this source rather than as the directory `context`
    /// (a remote worker's laid-out context, whose checksums it already knows); its
    /// [`dir`](xbuild_runtime::context::Source::dir) must be `context`.
    pub context_source: Option<Arc<dyn xbuild_runtime::context::Source>>,
}

impl BuildOptions {
    /// Options to build the context directory `context` with its `Dockerfile`.
    pub fn new(context: impl Into<PathBuf>) -> Self {
        BuildOptions {
            context: context.into(),
            dockerfile: None,
            tags: Vec::new(),
            outputs: Vec::new(),
            no_cache: false,
            build_args: BTreeMap::new(),
            compression: Compression::Gzip,
            source_date_epoch: None,
            secrets: HashMap::new(),
            ssh: HashMap::new(),
            pull: false,
            push: false,
            target: None,
            labels: BTreeMap::new(),
            platform: None,
            allow_insecure: false,
            allow_network_host: false,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            progress: SharedSink::default(),
            cancel: CancellationToken::new(),
            dockerfile_text: None,
            ignore_patterns: None,
            context_source: None,
        }
    }

    /// The `.dockerignore` patterns of the build (see [`ignore_patterns`](Self::ignore_patterns)).
    pub fn context_ignore_patterns(&self) -> Result<Vec<String>, Error> {
        dockerignore(self)
    }

    /// The Dockerfile's name as errors and `explain` show it.
    pub fn dockerfile_name(&self) -> String {
        self.dockerfile
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"))
            .display()
            .to_string()
    }
}

/// Parses a `SOURCE_DATE_EPOCH` value: whole seconds since 1970, not negative.
pub fn parse_epoch(v: &str) -> Result<i64, Error> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|e| *e >= 0)
        .ok_or_else(|| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH={v:?}: expected whole seconds since 1970-01-01 (e.g. 0)"
            ))
        })
}

/// What [`Builder::check`] found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The Dockerfile's path as given.
    pub file: String,
    /// Its text.
    pub source_text: String,
    /// Every error and build-check warning.
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    /// True when the Dockerfile cannot be built (errors, or warnings under `check=error=true`).
    pub fn failed(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// What a build produced.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BuildResult {
    /// The image ID (config digest); `None` when only a filesystem was exported.
    pub image_id: Option<Digest>,
    /// The manifest digest.
    pub manifest: Option<Digest>,
    /// The image's config (what `docker inspect` shows under `Config` and more).
    pub config: Option<ImageConfigFile>,
    /// The manifest's descriptor (media type, digest, size), for `--metadata-file`.
    #[serde(skip)]
    pub manifest_descriptor: Option<xbuild_cache::oci::Descriptor>,
    /// The tags written.
    pub tags: Vec<String>,
    /// The pushes made (`--push`, `push=true`).
    #[serde(skip)]
    pub pushed: Vec<Pushed>,
    /// RUN and file steps that ran.
    pub executed: usize,
    /// RUN and file steps that came from the cache.
    pub cached: usize,
    /// How long each phase took.
    pub timings: Timings,
    /// Each step that ran or came from the cache, in the order they finished.
    pub steps: Vec<StepTiming>,
    /// The caches exported (`--cache-to`).
    #[serde(skip)]
    pub cache_exports: Vec<CacheExported>,
}

/// What one `--cache-to` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheExported {
    /// Where it went (a reference, a directory, or `inline`).
    pub target: String,
    /// The cache index's digest (the image manifest's for an inline cache).
    pub index: Digest,
    /// How many cache records it holds.
    pub records: usize,
    /// Blobs uploaded to the registry (0 for a local directory).
    pub uploaded: usize,
}

/// One row of `xbuild history`: a history entry of the image, newest first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRow {
    /// The image ID on the newest row, `None` (`<missing>`) on the others.
    pub id: Option<Digest>,
    /// When (RFC 3339).
    pub created: Option<String>,
    /// The instruction.
    pub created_by: String,
    /// The layer's size (file content bytes); 0 for an entry without a layer.
    pub size: u64,
    /// The comment.
    pub comment: String,
    /// True when the entry made no layer.
    pub empty_layer: bool,
}

/// An image as `xbuild inspect` shows it.
#[derive(Clone, Debug)]
pub struct ImageDetails {
    /// The image ID (config digest).
    pub id: Digest,
    /// The manifest digest.
    pub manifest_digest: Digest,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// The manifest.
    pub manifest: Manifest,
    /// The config.
    pub config: ImageConfigFile,
    /// The tags pointing at it.
    pub tags: Vec<String>,
    /// File content bytes of its layers.
    pub size: u64,
    /// When it was recorded in the store (RFC 3339; `None` for an image only tagged in an
    /// older root).
    pub added: Option<String>,
}

/// An image `load` brought in: its ID and the names it was tagged with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Loaded {
    /// The image ID.
    pub id: Digest,
    /// The tags written (none: an untagged image).
    pub names: Vec<String>,
}

/// Builds images and manages the image store of one xbuild root.
#[derive(Clone, Debug)]
pub struct Builder {
    root: PathBuf,
    runtime: Option<PathBuf>,
    snapshotter: SnapshotterKind,
    registry: RegistryOptions,
    exec_slots: Option<Arc<tokio::sync::Semaphore>>,
    store: OpenStore,
}

/// The root's store, opened on first use and shared by a builder and its clones: opening
/// (and closing) the index costs several fsyncs, too much to pay per operation.
#[derive(Clone, Default)]
struct OpenStore(Arc<std::sync::OnceLock<Arc<Store>>>);

impl std::fmt::Debug for OpenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "OpenStore(open)"
        } else {
            "OpenStore(closed)"
        })
    }
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Opens `path` for writing through a `.partial` file, or stdout for `-`; `finish` renames.
pub(crate) struct OutputFile {
    dest: PathBuf,
    tmp: Option<PathBuf>,
    pub(crate) w: Box<dyn Write>,
}

impl OutputFile {
    pub(crate) fn create(dest: &Path) -> Result<Self, Error> {
        if dest.as_os_str() == "-" {
            return Ok(OutputFile {
                dest: dest.to_path_buf(),
                tmp: None,
                w: Box::new(std::io::stdout().lock()),
            });
        }
        let tmp = xbuild_exporter::partial(dest);
        let f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        Ok(OutputFile {
            dest: dest.to_path_buf(),
            tmp: Some(tmp),
            w: Box::new(std::io::BufWriter::with_capacity(1 << 20, f)),
        })
    }

    pub(crate) fn finish(mut self) -> Result<(), Error> {
        self.w.flush().map_err(io(&self.dest))?;
        drop(std::mem::replace(&mut self.w, Box::new(std::io::sink())));
        if let Some(tmp) = self.tmp.take() {
            std::fs::rename(&tmp, &self.dest).map_err(io(&self.dest))?;
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl Builder {
    /// A builder over the xbuild root `root` (a relative path is made absolute against the
    /// current directory now: mounts and the OCI runtime need absolute paths).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Builder {
            root: std::path::absolute(&root).unwrap_or(root),
            runtime: None,
            snapshotter: SnapshotterKind::Auto,
            registry: RegistryOptions::default(),
            exec_slots: None,
            store: OpenStore::default(),
        }
    }

    /// Runs at most `n` RUN steps at once across every build of this builder and its clones.
    pub fn with_max_parallel_steps(mut self, n: usize) -> Self {
        self.exec_slots = Some(Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        self
    }

    /// Mounts snapshots with `kind` (overlay or copying) instead of detecting it.
    pub fn with_snapshotter(mut self, kind: SnapshotterKind) -> Self {
        self.snapshotter = kind;
        self
    }

    /// Uses `opts` (insecure registries, Docker config, platform) to pull and push.
    pub fn with_registry_options(mut self, opts: RegistryOptions) -> Self {
        self.registry = opts;
        self
    }

    /// Uses `runtime` (an OCI runtime binary) instead of `runc` on PATH.
    pub fn with_runtime(mut self, runtime: impl Into<PathBuf>) -> Self {
        self.runtime = Some(runtime.into());
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn store(&self) -> Result<Arc<Store>, Error> {
        if let Some(s) = self.store.0.get() {
            return Ok(s.clone());
        }
        let opened = Arc::new(Store::open(&self.root)?);
        Ok(self.store.0.get_or_init(|| opened).clone())
    }

    fn snapshots(&self) -> Result<LayerSnapshotter, Error> {
        Ok(LayerSnapshotter::with_kind(&self.root, self.snapshotter)?)
    }

    pub(crate) fn read_dockerfile(opts: &BuildOptions) -> Result<(String, String), Error> {
        let name = opts.dockerfile_name();
        if let Some(text) = &opts.dockerfile_text {
            return Ok((name, text.clone()));
        }
        let path = PathBuf::from(&name);
        let bytes = xbuild_runtime::context::read_build_file(&opts.context, &path)?
            .ok_or_else(|| io(&path)(std::io::ErrorKind::NotFound.into()))?;
        let text = xbuild_parser::decode(bytes).map_err(|e| Error::Dockerfile {
            file: name.clone(),
            source_text: e.text,
            diagnostics: vec![e.diagnostic],
        })?;
        Ok((name, text))
    }

    /// Runs the build checks on the build's Dockerfile without building: every error and
    /// warning, with the file's path and text for rendering.
    pub fn check(&self, opts: &BuildOptions) -> Result<CheckReport, Error> {
        let (file, text) = Self::read_dockerfile(opts)?;
        syntax_override(&opts.build_args)?;
        let store = self.store()?;
        let lopts = lower_options(&file, opts)?;
        let diagnostics = check_dockerfile(&text, &lopts, &StoreResolver::new(&store));
        Ok(CheckReport {
            file,
            source_text: text,
            diagnostics,
        })
    }

    /// The checks of [`check`](Self::check) on a Dockerfile's text alone (`debug parse
    /// --check`): no context, the host platform, no build arguments, and no base image needed.
    /// A base the local store lacks (or every base, when the root holds no store yet) is
    /// checked as an empty image; as its environment is unknown, UndefinedVar is then not
    /// reported, nor WorkdirRelativePath on a line with an undefined variable.
    pub fn check_text(&self, file: &str, text: &str) -> CheckReport {
        // An existing store only: a check creates no root.
        let store = if self.root.join("index.redb").exists() {
            self.store().ok()
        } else {
            None
        };
        let resolver = AnyBase {
            store: store.as_deref().map(StoreResolver::new),
            guessed: std::cell::Cell::new(false),
        };
        let mut diagnostics = check_dockerfile(text, &LowerOptions::for_host(file), &resolver);
        if resolver.guessed.get() {
            // A variable the real base would define expands to nothing here: a WORKDIR made
            // of one looks relative too.
            let undefined: std::collections::HashSet<u32> = diagnostics
                .iter()
                .filter(|d| d.rule == Some("UndefinedVar"))
                .map(|d| d.span.line)
                .collect();
            diagnostics.retain(|d| {
                d.rule != Some("UndefinedVar")
                    && !(d.rule == Some("WorkdirRelativePath") && undefined.contains(&d.span.line))
            });
        }
        CheckReport {
            file: file.to_string(),
            source_text: text.to_string(),
            diagnostics,
        }
    }

    /// Parses and lowers the build's Dockerfile against the local store, without pulling:
    /// the graph to inspect or edit before [`solve`](Self::solve).
    pub fn lower(&self, opts: &BuildOptions) -> Result<Definition, Error> {
        let (file, text) = Self::read_dockerfile(opts)?;
        let store = self.store()?;
        lower_text(&file, &text, opts, &StoreResolver::new(&store))
    }

    /// Parses and lowers the build's Dockerfile, pulling the base images the local store
    /// lacks (all of them with `opts.pull`), as [`build`](Self::build) does.
    pub async fn lower_pulled(&self, opts: &BuildOptions) -> Result<Definition, Error> {
        let (file, text) = Self::read_dockerfile(opts)?;
        let store = self.store()?;
        cancellable(&opts.cancel, self.lower_pulling(&store, &file, &text, opts)).await
    }

    /// Runs a build and writes its outputs: lowers the Dockerfile (pulling base images it
    /// needs), then [`build_definition`](Self::build_definition).
    pub async fn build(&self, opts: &BuildOptions) -> Result<BuildResult, Error> {
        let started = Instant::now();
        for t in &opts.tags {
            Reference::parse(t).map_err(Error::Usage)?;
        }
        let def = self.lower_pulled(opts).await?;
        let lowered = started.elapsed();
        let mut result = self.build_definition(&def, opts).await?;
        result.timings.lower = lowered;
        result.timings.total = started.elapsed();
        Ok(result)
    }

    /// Solves a graph — lowered from a Dockerfile or built by hand — and writes the outputs
    /// of its first named output.
    pub async fn build_definition(
        &self,
        def: &Definition,
        opts: &BuildOptions,
    ) -> Result<BuildResult, Error> {
        let started = Instant::now();
        let solution = self.solve(def, opts).await?;
        let mut result = self.export_solution(&solution, opts).await?;
        result.timings.total = started.elapsed();
        Ok(result)
    }

    /// Runs every vertex the graph's outputs need (cached ones are looked up, not run). The
    /// [`Solution`] keeps its results leased against `prune` until it is dropped.
    pub async fn solve(&self, def: &Definition, opts: &BuildOptions) -> Result<Solution, Error> {
        let started = Instant::now();
        let targets: Vec<Digest> = def.outputs().iter().map(|o| o.vertex.clone()).collect();
        if targets.is_empty() {
            return Err(Error::Usage(
                "the graph has no output: name one with Definition::add_output".into(),
            ));
        }
        let store = self.store()?;
        let mut sopts = SolverOptions::new(&self.root);
        let uses_context = def.vertices().any(|v| {
            matches!(v.op(), xbuild_llb::Op::Source(xbuild_llb::SourceOp::Local { name, .. }) if name == CONTEXT_NAME)
        });
        if uses_context {
            let context = opts.context.canonicalize().map_err(io(&opts.context))?;
            if !context.is_dir() {
                return Err(Error::Usage(format!(
                    "{}: the build context must be a directory",
                    context.display()
                )));
            }
            let source: Arc<dyn xbuild_runtime::context::Source> = match &opts.context_source {
                Some(s) => s.clone(),
                None => Arc::new(LocalContext::new(context)),
            };
            sopts.contexts.insert(CONTEXT_NAME.into(), source);
        }
        sopts.no_cache = opts.no_cache;
        sopts.runtime = self.runtime.clone();
        sopts.snapshotter = self.snapshotter;
        sopts.secrets = opts.secrets.clone();
        sopts.ssh = opts.ssh.clone();
        sopts.dockerfile = Some(opts.dockerfile_name());
        sopts.build_args = opts.build_args.clone();
        sopts.allow_insecure = opts.allow_insecure;
        sopts.allow_network_host = opts.allow_network_host;
        sopts.remote_cache =
            cache_import::import_all(|| self.registry(), &store, &opts.cache_from).await?;
        sopts.cancel = opts.cancel.clone();
        sopts.exec_slots = self.exec_slots.clone();
        let recorder = Arc::new(events::Recorder::new(opts.progress.clone()));
        // The real host: snapshots on this root, RUN steps through the OCI runtime, what they
        // create owned by the build's session.
        let session = xbuild_cache::lease::Session::start(&self.root)?;
        let snapshots = self.snapshots()?.with_owner(session.id());
        let host = xbuild_solver::Host {
            snapshotter: Arc::new(snapshots.clone()),
            executor: Arc::new(
                RuncExecutor::new(&self.root, self.runtime.clone()).with_owner(session.id()),
            ),
        };
        let solver = Solver::with_host(store.clone(), sopts, recorder.clone(), session, host)?;
        let solved = match solver.solve(def, &targets).await {
            Ok(s) => s,
            Err(xbuild_solver::Error::Interrupted) => return Err(Error::Cancelled),
            Err(e) => return Err(e.into()),
        };
        Ok(Solution {
            _solver: solver,
            snapshots,
            store,
            def: def.clone(),
            solved,
            recorder,
            solve_time: started.elapsed(),
        })
    }

    /// Writes the outputs (`opts.outputs`, tagged `opts.tags`) of a solved graph's first
    /// named output, and pushes what they ask to push.
    pub async fn export_solution(
        &self,
        solution: &Solution,
        opts: &BuildOptions,
    ) -> Result<BuildResult, Error> {
        let output = solution
            .def
            .outputs()
            .first()
            .cloned()
            .ok_or_else(|| Error::Usage("the graph produced no output".into()))?;
        let solved = &solution.solved;
        let top = solved
            .results
            .get(&output.vertex)
            .and_then(|r| r.snapshot.clone());
        let steps: HashMap<Digest, StepResult> = solved
            .results
            .iter()
            .map(|(d, r)| {
                (
                    d.clone(),
                    StepResult {
                        snapshot: r.snapshot.clone(),
                        created: r.created.clone(),
                    },
                )
            })
            .collect();
        let mut result = self
            .export_steps(
                solution.store.clone(),
                solution.snapshots.clone(),
                Arc::new(solution.def.clone()),
                output,
                steps,
                solved.results.clone(),
                top,
                opts,
            )
            .await?;
        result.executed = solved.executed;
        result.cached = solved.cached;
        result.timings.solve = solution.solve_time;
        result.steps = solution.recorder.steps();
        Ok(result)
    }

    /// Makes an image of a snapshot (and the chain below it: one layer per snapshot) with
    /// the given config, and writes it to `opts.outputs` tagged `opts.tags`. `None` is the
    /// empty filesystem.
    pub async fn export_snapshot(
        &self,
        snapshot: Option<&str>,
        config: &xbuild_llb::ImageConfig,
        opts: &BuildOptions,
    ) -> Result<BuildResult, Error> {
        let store = self.store()?;
        let snapshots = self.snapshots()?;
        if let Some(s) = snapshot
            && !snapshots.exists(s)
        {
            return Err(Error::Usage(format!(
                "snapshot {s} does not exist in {}",
                self.root.display()
            )));
        }
        let mut def = Definition::new();
        let vertex = def
            .add(
                xbuild_llb::Op::Source(xbuild_llb::SourceOp::Scratch),
                vec![],
            )
            .map_err(|e| Error::Usage(e.to_string()))?;
        let (os, architecture) = match &opts.platform {
            Some(p) => {
                let p = xbuild_parser::platform::Platform::parse(p)
                    .map_err(|e| Error::Usage(format!("--platform: {e}")))?;
                (p.os, p.architecture)
            }
            None => (
                "linux".to_string(),
                xbuild_parser::lower::host_architecture().to_string(),
            ),
        };
        let output = xbuild_llb::Output {
            name: "default".into(),
            vertex: vertex.clone(),
            config: config.clone(),
            history: Vec::new(),
            os,
            architecture,
            variant: None,
            author: None,
        };
        let steps = HashMap::from([(
            vertex,
            StepResult {
                snapshot: snapshot.map(str::to_string),
                created: opts
                    .source_date_epoch
                    .map(xbuild_exporter::rfc3339)
                    .unwrap_or_else(now_rfc3339),
            },
        )]);
        self.export_steps(
            store,
            snapshots,
            Arc::new(def),
            output,
            steps,
            HashMap::new(),
            snapshot.map(str::to_string),
            opts,
        )
        .await
    }

    /// Writes the outputs of `output` and pushes what they ask to push.
    #[allow(clippy::too_many_arguments)]
    async fn export_steps(
        &self,
        store: Arc<Store>,
        snapshots: LayerSnapshotter,
        def: Arc<Definition>,
        output: xbuild_llb::Output,
        steps: HashMap<Digest, StepResult>,
        results: HashMap<Digest, xbuild_solver::VertexResult>,
        top: Option<String>,
        opts: &BuildOptions,
    ) -> Result<BuildResult, Error> {
        if opts.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let started = Instant::now();
        let outputs = if opts.outputs.is_empty() {
            vec![OutputSpec::Image {
                names: vec![],
                compression: None,
                push: false,
            }]
        } else {
            opts.outputs.clone()
        };
        let epoch = opts.source_date_epoch;
        let default = opts.compression;
        let tags = opts.tags.clone();
        let push_names: Vec<String> = if opts.push {
            opts.tags.clone()
        } else {
            Vec::new()
        };
        let push_names: Vec<String> = push_names
            .into_iter()
            .chain(outputs.iter().flat_map(|o| match o {
                OutputSpec::Image {
                    names, push: true, ..
                } => opts.tags.iter().chain(names).cloned().collect(),
                _ => Vec::new(),
            }))
            .collect();
        let export_store = store.clone();
        let output_vertex = output.vertex.clone();
        let export_def = def.clone();
        let export_snapshots = snapshots.clone();
        let (image, tags) = tokio::task::spawn_blocking(move || {
            export_outputs(
                &export_store,
                &export_snapshots,
                &export_def,
                &output,
                &steps,
                top,
                &outputs,
                &tags,
                default,
                epoch,
            )
        })
        .await
        .map_err(|e| Error::Usage(format!("export task failed: {e}")))??;
        let exported = started.elapsed();
        let solution = Arc::new(SolvedBuild {
            store: store.clone(),
            snapshots,
            def,
            results,
            output: output_vertex,
        });
        let mut cache_exports = Vec::new();
        let mut pushed = Vec::new();
        if !push_names.is_empty() || opts.push {
            let Some(img) = &image else {
                return Err(Error::Usage(
                    "--push needs an image output (type=image or type=registry)".into(),
                ));
            };
            if push_names.is_empty() {
                return Err(Error::Usage(
                    "--push needs a name to push to: add -t HOST/REPO:TAG".into(),
                ));
            }
            let mut manifest = img.manifest.digest.clone();
            if opts.cache_to.contains(&CacheSpec::Inline) {
                let (m, records) = with_inline_cache(&solution, &manifest).await?;
                if records > 0 {
                    cache_exports.push(CacheExported {
                        target: "inline".into(),
                        index: m.clone(),
                        records,
                        uploaded: 0,
                    });
                }
                manifest = m;
            }
            let mut seen = std::collections::BTreeSet::new();
            for t in push_names.iter().filter(|t| seen.insert(t.as_str())) {
                let p = cancellable(&opts.cancel, self.push_manifest(&store, &manifest, t)).await?;
                pushed.push(p);
            }
        } else if opts.cache_to.contains(&CacheSpec::Inline) {
            tracing::warn!(
                "--cache-to type=inline: the cache is embedded only in a pushed image (use --push or --output type=registry); no inline cache was written"
            );
        }
        for spec in &opts.cache_to {
            if let Some(e) = cancellable(&opts.cancel, self.export_cache(&solution, spec)).await? {
                cache_exports.push(e);
            }
        }
        Ok(BuildResult {
            image_id: image.as_ref().map(|i| i.config.digest.clone()),
            config: image.as_ref().map(|i| i.config_file.clone()),
            manifest: image.as_ref().map(|i| i.manifest.digest.clone()),
            manifest_descriptor: image.map(|i| i.manifest),
            tags,
            pushed,
            cache_exports,
            timings: Timings {
                export: exported,
                push: started.elapsed() - exported,
                ..Timings::default()
            },
            ..BuildResult::default()
        })
    }

    /// Exports the cache of a solved build as `spec` says (not `type=inline`, which goes into
    /// the pushed image); `None` when there was nothing to export.
    async fn export_cache(
        &self,
        solution: &Arc<SolvedBuild>,
        spec: &CacheSpec,
    ) -> Result<Option<CacheExported>, Error> {
        let target = match spec {
            CacheSpec::Inline => return Ok(None),
            CacheSpec::Registry { reference, .. } => reference.clone(),
            CacheSpec::Local { dir, .. } => dir.display().to_string(),
        };
        let (mode, mounts) = (spec.mode(), spec.export_mounts());
        let s = solution.clone();
        let cache =
            tokio::task::spawn_blocking(move || cache_export::collect(&s.view(), mode, mounts))
                .await
                .map_err(|e| Error::Usage(format!("cache export task failed: {e}")))??;
        let Some(cache) = cache else {
            tracing::warn!(%target, "--cache-to: the build produced no cache to export");
            return Ok(None);
        };
        let uploaded = match spec {
            CacheSpec::Registry { reference, .. } => {
                let r = xbuild_registry::Reference::parse(reference)?;
                cache_export::push(&self.registry()?, &solution.store, &cache, &r).await?
            }
            CacheSpec::Local { dir, .. } => {
                let (s, dir) = (solution.clone(), dir.clone());
                let c = std::sync::Arc::new(cache);
                let c2 = c.clone();
                tokio::task::spawn_blocking(move || cache_export::write_local(&s.store, &c2, &dir))
                    .await
                    .map_err(|e| Error::Usage(format!("cache export task failed: {e}")))??;
                return Ok(Some(CacheExported {
                    target,
                    index: c.index.digest.clone(),
                    records: c.records,
                    uploaded: 0,
                }));
            }
            CacheSpec::Inline => 0,
        };
        tracing::info!(%target, records = cache.records, uploaded, "cache exported");
        Ok(Some(CacheExported {
            target,
            index: cache.index.digest,
            records: cache.records,
            uploaded,
        }))
    }

    /// Deletes build cache (see [`xbuild_solver::gc`]): what no running build holds and, unless
    /// `opts.all`, no tagged image is made of. Images themselves are removed by
    /// [`prune`](Self::prune) and [`remove`](Self::remove).
    pub fn prune_cache(&self, opts: &PruneOptions) -> Result<PruneReport, Error> {
        let store = self.store()?;
        Ok(xbuild_solver::gc::prune(
            &store,
            opts,
            self.runtime.as_deref(),
        )?)
    }

    /// What the build cache and the content store take on disk.
    pub fn disk_usage(&self) -> Result<DiskUsage, Error> {
        Ok(xbuild_solver::gc::disk_usage(&*self.store()?)?)
    }

    /// Why the steps of the last build on this root ran or came from the cache; `None` when
    /// no build was recorded.
    pub fn explain(&self) -> Result<Option<Explanation>, Error> {
        Ok(xbuild_solver::explain::explain(&self.root)?)
    }

    /// The checksum a `COPY . /` of the context `dir` is keyed by (honouring its
    /// `.dockerignore`), and how many paths it covers; through the root's stat cache unless
    /// `cold`.
    pub fn context_checksum(&self, dir: &Path, cold: bool) -> Result<(String, usize), Error> {
        let ignore = read_ignore(dir, &dir.join(".dockerignore"))?.unwrap_or_default();
        let filter = xbuild_runtime::dockerignore::Filter::new(&[], &ignore)
            .map_err(|e| Error::Usage(format!("{}/.dockerignore: {e}", dir.display())))?;
        let sel = xbuild_runtime::context::Selection {
            src: "/",
            allow_wildcard: true,
            follow: true,
            ..Default::default()
        };
        let cache = if cold {
            None
        } else {
            xbuild_cache::close_root(&self.root)?;
            Some(xbuild_cache::statcache::StatCache::load(&self.root)?)
        };
        let sum =
            xbuild_solver::context_checksum(dir, filter.as_ref(), &sel, cache.as_ref(), true)?;
        if let Some(c) = &cache {
            c.save()?;
        }
        Ok((hex_string(&sum.total), sum.paths.len()))
    }

    /// Imports a flat rootfs tar (plain, gzip or zstd; `-`: stdin) as an image, like
    /// `docker import`, tagged `name` if given. With an epoch, that is its creation time.
    pub fn import(
        &self,
        tar: &Path,
        name: Option<&str>,
        epoch: Option<i64>,
    ) -> Result<Digest, Error> {
        let r = name
            .map(|n| Reference::parse(n).map_err(Error::Usage))
            .transpose()?;
        let store = self.store()?;
        let _lease = store.lease()?;
        let input: Box<dyn Read> = if tar.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(tar).map_err(io(tar))?)
        };
        let created = epoch
            .map(xbuild_exporter::rfc3339)
            .unwrap_or_else(now_rfc3339);
        let image = xbuild_exporter::import_rootfs(
            &store,
            input,
            &tar.display().to_string(),
            "linux",
            xbuild_parser::lower::host_architecture(),
            &created,
            Compression::Gzip,
        )?;
        store::record_image(&store, &image.manifest.digest)?;
        if let Some(r) = r {
            store::tag(&store, &r.to_string(), &image.manifest.digest)?;
        }
        Ok(image.config.digest)
    }

    /// Every image of the store: a row per tag and per untagged image, newest first.
    pub fn images(&self) -> Result<Vec<ImageSummary>, Error> {
        store::list(&*self.store()?)
    }

    /// The rows of `images` that `filter` keeps.
    pub fn images_filtered(&self, filter: &ImageFilter) -> Result<Vec<ImageSummary>, Error> {
        let store = self.store()?;
        let when = |name: &Option<String>| -> Result<Option<std::time::SystemTime>, Error> {
            name.as_ref()
                .map(|n| {
                    store::find(&store, n)
                        .map(|f| store::time_of(f.image.config.created.as_deref()))
                })
                .transpose()
        };
        let (before, since) = (when(&filter.before)?, when(&filter.since)?);
        Ok(store::list(&store)?
            .into_iter()
            .filter(|r| filter.keeps(r, before, since))
            .collect())
    }

    /// Points tag `target` at the image `source` names (a tag or an ID).
    pub fn tag(&self, source: &str, target: &str) -> Result<(), Error> {
        let store = self.store()?;
        let found = store::find(&store, source)?;
        store::tag(&store, target, &found.image.manifest)?;
        Ok(())
    }

    /// Removes an image or a tag as `docker rmi` does, then the blobs nothing references.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removed>, Error> {
        let store = self.store()?;
        let out = store::remove(&store, name, force)?;
        store.prune_blobs()?;
        Ok(out)
    }

    /// Checks the content store (`xbuild store verify`): every blob against its digest (corrupt
    /// ones are removed) and every image's manifest, config and layers.
    pub fn verify_store(&self) -> Result<VerifyReport, Error> {
        Ok(self.store()?.verify()?)
    }

    /// Removes untagged images (`all`: every image) and the blobs nothing references; returns
    /// what was removed and the bytes reclaimed.
    pub fn prune(&self, all: bool) -> Result<(Vec<Removed>, u64), Error> {
        store::prune(&*self.store()?, all)
    }

    /// An image's manifest, config and tags; [`ImageDetails::docker`] shapes them as
    /// `docker image inspect` does.
    pub fn inspect(&self, name: &str) -> Result<ImageDetails, Error> {
        let store = self.store()?;
        let img = store::find(&store, name)?.image;
        let size = store::layer_sizes(&store, &img).iter().sum();
        Ok(ImageDetails {
            id: img.id().clone(),
            manifest_size: store.blob_size(&img.manifest)?,
            added: store.get_image(&img.manifest)?.map(|r| r.added),
            manifest_digest: img.manifest.clone(),
            tags: img.tags.iter().map(|t| t.to_string()).collect(),
            manifest: img.doc,
            config: img.config,
            size,
        })
    }

    /// An image's history, newest first, with each layer's size.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryRow>, Error> {
        let store = self.store()?;
        let img = store::find(&store, name)?.image;
        let mut sizes = store::layer_sizes(&store, &img).into_iter();
        let mut rows: Vec<HistoryRow> = img
            .config
            .history
            .iter()
            .map(|h| HistoryRow {
                id: None,
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                size: if h.empty_layer {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                },
                comment: h.comment.clone().unwrap_or_default(),
                empty_layer: h.empty_layer,
            })
            .collect();
        rows.reverse();
        if let Some(first) = rows.first_mut() {
            first.id = Some(img.id().clone());
        }
        Ok(rows)
    }

    /// The top snapshot of an image's filesystem, unpacking what is not unpacked yet.
    fn unpacked(
        &self,
        store: &Store,
        snapshots: &LayerSnapshotter,
        name: &str,
    ) -> Result<Option<String>, Error> {
        let img = store::find(store, name)?.image;
        Ok(xbuild_solver::unpack_image(
            store,
            snapshots,
            &img.manifest,
        )?)
    }

    /// Writes an image's flattened filesystem as a tar.
    pub fn export(&self, name: &str, out: impl Write) -> Result<(), Error> {
        let store = self.store()?;
        let snapshots = self.snapshots()?;
        let top = self.unpacked(&store, &snapshots, name)?;
        xbuild_exporter::export_tar(&snapshots, top.as_deref(), out, None)?;
        Ok(())
    }

    /// The changes from image `a`'s filesystem to image `b`'s, as `docker diff` lists them.
    pub fn diff(&self, a: &str, b: &str) -> Result<Vec<FileChange>, Error> {
        let store = self.store()?;
        let snapshots = self.snapshots()?;
        let top_a = self.unpacked(&store, &snapshots, a)?;
        let top_b = self.unpacked(&store, &snapshots, b)?;
        let view_a = snapshots.view(top_a.as_deref())?;
        let view_b = snapshots.view(top_b.as_deref())?;
        Ok(xbuild_exporter::diff_trees(view_a.path(), view_b.path())?)
    }

    /// Writes images as one archive (`docker save`): named by the tags they were given by,
    /// unnamed when given by ID.
    pub fn save(&self, names: &[String], format: ArchiveFormat, dest: &Path) -> Result<(), Error> {
        let store = self.store()?;
        let _lease = store.lease()?;
        let mut images: Vec<ArchiveImage> = Vec::new();
        for n in names {
            let found = store::find(&store, n)?;
            let d = xbuild_cache::oci::Descriptor {
                media_type: found
                    .image
                    .doc
                    .media_type
                    .clone()
                    .unwrap_or_else(|| xbuild_cache::oci::MEDIA_MANIFEST.into()),
                size: store.blob_size(&found.image.manifest)?,
                digest: found.image.manifest.clone(),
                annotations: None,
                platform: None,
            };
            let tag = found.by_tag.map(|t| t.to_string());
            match images.iter_mut().find(|i| i.manifest.digest == d.digest) {
                Some(i) => i.names.extend(tag),
                None => images.push(ArchiveImage {
                    manifest: d,
                    names: tag.into_iter().collect(),
                }),
            }
        }
        let mut out = OutputFile::create(dest)?;
        xbuild_exporter::write_archive(&store, &images, format, None, &mut out.w)?;
        out.finish()
    }

    /// Reads the images of a docker-archive or OCI layout (a tar file, `-` for stdin, or a
    /// layout directory) into the store and tags them with the names it carries.
    pub fn load(&self, input: &Path) -> Result<Vec<Loaded>, Error> {
        let store = self.store()?;
        let _lease = store.lease()?;
        let platform = ("linux", xbuild_parser::lower::host_architecture());
        let loaded = if input.as_os_str() == "-" {
            xbuild_exporter::load_archive(&store, "<stdin>", std::io::stdin().lock(), platform)?
        } else if input.is_dir() {
            xbuild_exporter::load_oci_dir(&store, input, platform)?
        } else {
            let f = std::fs::File::open(input).map_err(io(input))?;
            xbuild_exporter::load_archive(
                &store,
                &input.display().to_string(),
                std::io::BufReader::with_capacity(1 << 20, f),
                platform,
            )?
        };
        let mut out = Vec::new();
        for img in loaded {
            store::record_image(&store, &img.manifest.digest)?;
            let mut names = Vec::new();
            for n in &img.names {
                names.push(store::tag(&store, n, &img.manifest.digest)?.to_string());
            }
            out.push(Loaded {
                id: img.config,
                names,
            });
        }
        Ok(out)
    }
}

/// A solved graph: every result its outputs need, leased against `prune` until dropped.
pub struct Solution {
    /// Keeps the build's session, and so the leases on its results, until it is dropped.
    _solver: Solver,
    /// The solver's snapshotter, as the exporter reads it.
    snapshots: LayerSnapshotter,
    store: Arc<Store>,
    def: Definition,
    solved: xbuild_solver::Solved,
    recorder: Arc<events::Recorder>,
    solve_time: std::time::Duration,
}

impl Solution {
    /// The graph that was solved.
    pub fn definition(&self) -> &Definition {
        &self.def
    }

    /// The snapshot holding vertex `v`'s filesystem (`None`: the empty one, or not solved).
    pub fn snapshot(&self, v: &Digest) -> Option<&str> {
        self.solved.results.get(v)?.snapshot.as_deref()
    }

    /// Every vertex's result.
    pub fn results(&self) -> &HashMap<Digest, xbuild_solver::VertexResult> {
        &self.solved.results
    }

    /// RUN and file steps that ran, and that came from the cache.
    pub fn counts(&self) -> (usize, usize) {
        (self.solved.executed, self.solved.cached)
    }
}

impl std::fmt::Debug for Solution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Solution")
            .field("vertices", &self.solved.results.len())
            .field("executed", &self.solved.executed)
            .field("cached", &self.solved.cached)
            .finish_non_exhaustive()
    }
}

/// Runs `fut` unless `cancel` fires first: then it is dropped (what it started is released)
/// and the result is [`Error::Cancelled`].
async fn cancellable<T>(
    cancel: &CancellationToken,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        r = fut => r,
        _ = cancel.cancelled() => Err(Error::Cancelled),
    }
}

/// A solved build kept for exporting its cache.
struct SolvedBuild {
    store: Arc<Store>,
    snapshots: LayerSnapshotter,
    def: Arc<Definition>,
    results: HashMap<Digest, xbuild_solver::VertexResult>,
    output: Digest,
}

impl SolvedBuild {
    fn view(&self) -> cache_export::Solution<'_> {
        cache_export::Solution {
            store: &self.store,
            snapshots: &self.snapshots,
            def: &self.def,
            results: &self.results,
            output: &self.output,
        }
    }
}

/// The image `manifest` with the build's inline cache (`moby.buildkit.cache.v0`, mode=min) in
/// its config, stored; and how many records it carries (0: the image is returned as it is).
async fn with_inline_cache(
    solution: &Arc<SolvedBuild>,
    manifest: &Digest,
) -> Result<(Digest, usize), Error> {
    let (s, manifest) = (solution.clone(), manifest.clone());
    tokio::task::spawn_blocking(move || {
        let Some(cache) = cache_export::collect(&s.view(), CacheMode::Min, false)? else {
            return Ok((manifest, 0));
        };
        let config: xbuild_cache::cacheconfig::CacheConfig =
            s.store.read_json(&cache.config.digest)?;
        let m: Manifest = s.store.read_json(&manifest)?;
        let layers: Vec<Digest> = m.layers.iter().map(|l| l.digest.clone()).collect();
        let Some((value, records)) = cache_import::inline_value(&config, &layers) else {
            tracing::warn!("--cache-to type=inline: no step's result matches the image's layers");
            return Ok((manifest, 0));
        };
        cache_export::embed_inline(&s.store, &m, &value).map(|d| (d, records))
    })
    .await
    .map_err(|e| Error::Usage(format!("cache export task failed: {e}")))?
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest of everything an exported image is made from: its output (config, history,
/// platform), its top snapshot (whose chain gives the layers), the result and time of every
/// step its history names, the compression and the epoch.
fn export_key(
    output: &xbuild_llb::Output,
    top: Option<&str>,
    steps: &HashMap<Digest, StepResult>,
    compression: Compression,
    epoch: Option<i64>,
) -> Digest {
    let mut b = xbuild_llb::DigestBuilder::new("xbuild-export-v2");
    b.part(&serde_json::to_vec(output).unwrap_or_default());
    b.part(top.unwrap_or("").as_bytes());
    for d in output.history.iter().filter_map(|h| h.vertex.as_ref()) {
        b.part(d.as_str().as_bytes());
        if let Some(s) = steps.get(d) {
            b.part(s.snapshot.as_deref().unwrap_or("").as_bytes());
            b.part(s.created.as_bytes());
        }
    }
    b.part(format!("{compression:?}").as_bytes());
    b.part(format!("{epoch:?}").as_bytes());
    b.finish()
}

/// Writes a build's outputs; returns the image (if one was made) and the tags written.
#[allow(clippy::too_many_arguments)]
fn export_outputs(
    store: &Store,
    snapshots: &LayerSnapshotter,
    def: &Definition,
    output: &xbuild_llb::Output,
    steps: &HashMap<Digest, StepResult>,
    top: Option<String>,
    outputs: &[OutputSpec],
    tags: &[String],
    default: Compression,
    epoch: Option<i64>,
) -> Result<(Option<BuiltImage>, Vec<String>), Error> {
    let _lease = store.lease()?;
    let mut images: BTreeMap<Compression, BuiltImage> = BTreeMap::new();
    let mut first: Option<BuiltImage> = None;
    for o in outputs {
        let Some(c) = o.compression() else { continue };
        let c = c.unwrap_or(default);
        if let std::collections::btree_map::Entry::Vacant(slot) = images.entry(c) {
            // An image made from exactly the same results and metadata was written already:
            // reuse it rather than re-reading snapshots and re-writing blobs.
            let memo = export_key(output, top.as_deref(), steps, c, epoch);
            let img = match store.get_export(&memo)? {
                Some(rec) if store.has_blob(&rec.manifest.digest) => BuiltImage {
                    config_file: store.read_json(&rec.config.digest)?,
                    manifest: rec.manifest,
                    config: rec.config,
                },
                _ => {
                    let img = xbuild_exporter::build_image(
                        store,
                        snapshots,
                        def,
                        output,
                        steps,
                        ExportOptions {
                            compression: c,
                            epoch,
                        },
                    )?;
                    store.put_export(
                        &memo,
                        &ExportRecord {
                            manifest: img.manifest.clone(),
                            config: img.config.clone(),
                        },
                    )?;
                    img
                }
            };
            first.get_or_insert_with(|| img.clone());
            slot.insert(img);
        }
    }
    let created = epoch
        .map(xbuild_exporter::rfc3339)
        .unwrap_or_else(now_rfc3339);
    let mut written = Vec::new();
    let image_of = |c: &Option<Compression>| -> Result<&BuiltImage, Error> {
        images
            .get(&c.unwrap_or(default))
            .ok_or_else(|| Error::Usage("internal: image not built".into()))
    };
    let names_or_tags = |names: &[String]| -> Vec<String> {
        if names.is_empty() {
            tags.to_vec()
        } else {
            names.to_vec()
        }
    };
    for o in outputs {
        match o {
            OutputSpec::Image {
                names, compression, ..
            } => {
                let img = image_of(compression)?;
                store::record_image(store, &img.manifest.digest)?;
                for t in tags.iter().chain(names) {
                    written.push(store::tag(store, t, &img.manifest.digest)?.to_string());
                }
            }
            OutputSpec::Oci {
                dest,
                dir,
                names,
                compression,
            } => {
                let img = image_of(compression)?;
                let archive = [ArchiveImage {
                    manifest: img.manifest.clone(),
                    names: names_or_tags(names),
                }];
                if *dir {
                    xbuild_exporter::write_oci_dir(store, &archive, Some(&created), dest)?;
                } else {
                    let mut out = OutputFile::create(dest)?;
                    xbuild_exporter::write_archive(
                        store,
                        &archive,
                        ArchiveFormat::Oci,
                        Some(&created),
                        &mut out.w,
                    )?;
                    out.finish()?;
                }
            }
            OutputSpec::Docker {
                dest,
                names,
                compression,
            } => {
                let img = image_of(compression)?;
                if compression.unwrap_or(default) == Compression::Zstd {
                    tracing::warn!(
                        dest = %dest.display(),
                        "a docker-archive with zstd layers needs Docker 23 or later to load"
                    );
                }
                let archive = [ArchiveImage {
                    manifest: img.manifest.clone(),
                    names: names_or_tags(names),
                }];
                let mut out = OutputFile::create(dest)?;
                xbuild_exporter::write_archive(
                    store,
                    &archive,
                    ArchiveFormat::Docker,
                    Some(&created),
                    &mut out.w,
                )?;
                out.finish()?;
            }
            OutputSpec::Local { dest } => {
                xbuild_exporter::export_local(snapshots, top.as_deref(), dest, epoch)?;
            }
            OutputSpec::Tar { dest } => {
                let mut out = OutputFile::create(dest)?;
                xbuild_exporter::export_tar(snapshots, top.as_deref(), &mut out.w, epoch)?;
                out.finish()?;
            }
        }
    }
    Ok((first, written))
}

pub(crate) fn lower_text(
    file: &str,
    text: &str,
    opts: &BuildOptions,
    resolver: &dyn xbuild_parser::lower::ImageResolver,
) -> Result<Definition, Error> {
    let parsed = match syntax_override(&opts.build_args)? {
        Some(_) => xbuild_parser::parse_ignoring_syntax(text),
        None => xbuild_parser::parse(text),
    };
    let dockerfile_err = |diagnostics: Vec<Diagnostic>| Error::Dockerfile {
        file: file.to_string(),
        source_text: text.to_string(),
        diagnostics,
    };
    if parsed.has_errors() {
        return Err(dockerfile_err(parsed.diagnostics));
    }
    let lopts = lower_options(file, opts)?;
    xbuild_parser::lower::lower(&parsed.dockerfile, &lopts, resolver).map_err(dockerfile_err)
}

/// The one validation behind `build --check` and `debug parse --check`: the parse's errors and
/// build-check warnings, then, when it parsed, the stages lowered with `lopts` (its build
/// arguments and platform) and `resolver`: lowering errors such as a missing base image or an
/// unknown `--mount` type, UndefinedVar, unused build arguments. As BuildKit's lint, with
/// `lopts.target` the stages that target needs are lowered, without it every stage. Every
/// error and warning is reported once, in source order, the warnings found before or beside
/// an error included. A `BUILDKIT_SYNTAX` build argument overrides the `# syntax=` line.
pub fn check_dockerfile(
    text: &str,
    lopts: &LowerOptions,
    resolver: &dyn xbuild_parser::lower::ImageResolver,
) -> Vec<Diagnostic> {
    let parsed = match syntax_override(&lopts.build_args) {
        Ok(None) => xbuild_parser::parse(text),
        Ok(Some(_)) => xbuild_parser::parse_ignoring_syntax(text),
        Err(e) => {
            let mut parsed = xbuild_parser::parse_ignoring_syntax(text);
            parsed
                .diagnostics
                .push(Diagnostic::error(Default::default(), e.to_string()));
            parsed
        }
    };
    let mut diagnostics = parsed.diagnostics;
    if !diagnostics.iter().any(Diagnostic::is_error) {
        let mut lopts = lopts.clone();
        lopts.all_stages = lopts.target.is_none();
        let report = xbuild_parser::lower::lower_report(&parsed.dockerfile, &lopts, resolver);
        diagnostics.extend(report.errors);
        diagnostics.extend(report.warnings);
    }
    diagnostics.sort_by_key(|d| (d.span.offset, d.severity));
    diagnostics
}

/// The build argument that names the frontend, overriding the `# syntax=` line.
const SYNTAX_ARG: &str = "BUILDKIT_SYNTAX";

/// The frontend the `BUILDKIT_SYNTAX` build argument names, if given: as in BuildKit it
/// overrides the Dockerfile's `# syntax=` line. It must be BuildKit's Dockerfile frontend
/// (xbuild's own); any other is a usage error saying so.
fn syntax_override(
    build_args: &BTreeMap<String, String>,
) -> Result<Option<xbuild_parser::Frontend>, Error> {
    let Some(value) = build_args.get(SYNTAX_ARG) else {
        return Ok(None);
    };
    xbuild_parser::syntax_frontend(value).map(Some).map_err(|e| {
        Error::Usage(format!(
            "--build-arg {SYNTAX_ARG}={value}: {e}; {SYNTAX_ARG} can name BuildKit's Dockerfile frontend only (docker/dockerfile:1, docker/dockerfile:1-labs, docker/dockerfile-upstream:master, dockerfile.v0)"
        ))
    })
}

/// Resolves bases through the local store when it has them, and any other reference as an
/// empty image (for checks that must not need base images).
struct AnyBase<'a> {
    store: Option<StoreResolver<'a>>,
    /// Some reference was answered with an empty image.
    guessed: std::cell::Cell<bool>,
}

impl xbuild_parser::lower::ImageResolver for AnyBase<'_> {
    fn resolve(
        &self,
        reference: &str,
        platform: &xbuild_parser::platform::Platform,
    ) -> Result<xbuild_parser::lower::ResolvedImage, String> {
        if let Some(Ok(img)) = self.store.as_ref().map(|s| s.resolve(reference, platform)) {
            return Ok(img);
        }
        self.guessed.set(true);
        Ok(xbuild_parser::lower::ResolvedImage {
            reference: reference.to_string(),
            digest: Digest::of(reference.as_bytes()),
            config: Default::default(),
            history: Vec::new(),
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
        })
    }
}

/// The lowering options of a build.
fn lower_options(file: &str, opts: &BuildOptions) -> Result<LowerOptions, Error> {
    let mut lopts = LowerOptions::for_host(file);
    lopts.build_args = opts.build_args.clone();
    lopts.target = opts.target.clone();
    lopts.labels = opts.labels.clone();
    lopts.exclude_patterns = dockerignore(opts)?;
    if let Some(p) = &opts.platform {
        let p = xbuild_parser::platform::Platform::parse(p)
            .map_err(|e| Error::Usage(format!("--platform: {e}")))?;
        lopts.os = p.os;
        lopts.architecture = p.architecture;
        lopts.variant = p.variant;
    }
    Ok(lopts)
}

/// The patterns of the ignore file `path` (in `context` or named outside it), read as BuildKit
/// reads one (a BOM, comments and blank lines dropped, each pattern cleaned and a leading `/`
/// removed: see [`xbuild_runtime::dockerignore::read_ignore_file`]); `None` when there is no
/// such file. The one reader of `.dockerignore` files for local and remote builds and
/// `debug context-checksum`.
fn read_ignore(context: &Path, path: &Path) -> Result<Option<Vec<String>>, Error> {
    Ok(
        xbuild_runtime::context::read_build_file(context, path)?.map(|bytes| {
            xbuild_runtime::dockerignore::read_ignore_file(&String::from_utf8_lossy(&bytes))
        }),
    )
}

/// The `.dockerignore` patterns of a build: `<Dockerfile>.dockerignore` beside the Dockerfile
/// wins over the context's `.dockerignore`.
fn dockerignore(opts: &BuildOptions) -> Result<Vec<String>, Error> {
    if let Some(p) = &opts.ignore_patterns {
        return Ok(p.clone());
    }
    let mut candidates = Vec::new();
    if let Some(df) = &opts.dockerfile {
        let mut name = df.as_os_str().to_owned();
        name.push(".dockerignore");
        candidates.push(PathBuf::from(name));
    }
    candidates.push(opts.context.join(".dockerignore"));
    for c in candidates {
        if let Some(patterns) = read_ignore(&opts.context, &c)? {
            return Ok(patterns);
        }
    }
    Ok(Vec::new())
}

/// Renders diagnostics with the offending source lines and carets.
pub fn render_diagnostics(
    file: &str,
    source: &str,
    diagnostics: &[Diagnostic],
    color: bool,
) -> String {
    xbuild_parser::render(file, source, diagnostics, color)
}
