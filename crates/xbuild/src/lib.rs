//! xbuild: a Dockerfile build engine, embeddable.
//!
//! [`Builder`] is the facade the `xbuild` binary is a thin layer over: it parses and lowers a
//! Dockerfile ([`xbuild_parser`]), solves the graph ([`xbuild_solver`]) against an xbuild root
//! (content store and snapshots), and exports the result ([`xbuild_exporter`]) into the local
//! image store, an OCI layout or a filesystem tar.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild::Error> {
//! use std::sync::Arc;
//! use xbuild::{BuildOptions, Builder, OutputSpec};
//!
//! let builder = Builder::new("/var/lib/xbuild");
//! let mut opts = BuildOptions::new("./app");
//! opts.tags.push("app:1".into());
//! opts.outputs.push(OutputSpec::Image);
//! let result = builder.build(&opts, Arc::new(xbuild::NoProgress)).await?;
//! println!("built {} ({} steps ran, {} cached)", result.image_id, result.executed, result.cached);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod reference;
mod store;

pub use reference::Reference;
pub use store::{ImageSummary, StoreResolver, default_root};
pub use xbuild_cache::gc::PruneOptions;
pub use xbuild_exporter::Compression;
pub use xbuild_parser::{Diagnostic, Severity};
pub use xbuild_runtime::SnapshotterKind;
pub use xbuild_solver::explain::Explanation;
pub use xbuild_solver::gc::{DiskUsage, PruneReport};
pub use xbuild_solver::{Event, NoProgress, ProgressSink, SecretSource};

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xbuild_cache::Store;
use xbuild_cache::memo::ExportRecord;
use xbuild_cache::oci::{ImageConfigFile, Manifest};
use xbuild_exporter::StepResult;
use xbuild_llb::{Definition, Digest};
use xbuild_parser::lower::{CONTEXT_NAME, LowerOptions};
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
    /// Writing the image failed.
    #[error(transparent)]
    Export(#[from] xbuild_exporter::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
    /// An image name that is not in the store.
    #[error("image {0} not found in the local store (see `xbuild images`)")]
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
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a build's result goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    /// Into the local image store, tagged with the build's tags.
    Image,
    /// An OCI image layout: a directory, or a tar when the path ends in `.tar`.
    Oci {
        /// Where.
        dest: PathBuf,
    },
    /// The final filesystem as a tar.
    Tar {
        /// Where.
        dest: PathBuf,
    },
}

impl OutputSpec {
    /// Parses `docker build --output` syntax: `type=oci,dest=DIR`, `type=image`, …
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let mut kv = BTreeMap::new();
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                Error::Usage(format!(
                    "invalid --output {spec:?}: expected key=value pairs such as type=oci,dest=DIR"
                ))
            })?;
            kv.insert(k.trim().to_string(), v.trim().to_string());
        }
        let dest = |kv: &BTreeMap<String, String>| {
            kv.get("dest")
                .map(PathBuf::from)
                .ok_or_else(|| Error::Usage(format!("--output {spec:?} needs dest=PATH")))
        };
        match kv.get("type").map(String::as_str) {
            Some("image") => Ok(OutputSpec::Image),
            Some("oci") => Ok(OutputSpec::Oci { dest: dest(&kv)? }),
            Some("tar") => Ok(OutputSpec::Tar { dest: dest(&kv)? }),
            Some(other) => Err(Error::Usage(format!(
                "--output type={other} is not supported yet; use image, oci or tar"
            ))),
            None => Err(Error::Usage(format!(
                "invalid --output {spec:?}: type= is required"
            ))),
        }
    }
}

/// Options of one build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: `Dockerfile` in the context).
    pub dockerfile: Option<PathBuf>,
    /// Tags for the image (`name:tag`).
    pub tags: Vec<String>,
    /// Where the result goes; the local store when empty.
    pub outputs: Vec<OutputSpec>,
    /// Run every step, ignoring cached results.
    pub no_cache: bool,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (`--target`); the last one by default.
    pub target: Option<String>,
    /// Layer compression.
    pub compression: Compression,
    /// Secrets by id for `RUN --mount=type=secret` (`--secret`).
    pub secrets: HashMap<String, SecretSource>,
    /// SSH agent sockets by id for `RUN --mount=type=ssh` (`--ssh`).
    pub ssh: HashMap<String, PathBuf>,
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
            target: None,
            compression: Compression::Gzip,
            secrets: HashMap::new(),
            ssh: HashMap::new(),
        }
    }
}

/// What a build produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BuildResult {
    /// The image ID (config digest).
    pub image_id: Digest,
    /// The manifest digest.
    pub manifest: Digest,
    /// The tags written.
    pub tags: Vec<String>,
    /// RUN and file steps that ran.
    pub executed: usize,
    /// RUN and file steps that came from the cache.
    pub cached: usize,
}

/// Builds images and manages the image store of one xbuild root.
#[derive(Clone, Debug)]
pub struct Builder {
    root: PathBuf,
    runtime: Option<PathBuf>,
    snapshotter: SnapshotterKind,
}

impl Builder {
    /// A builder over the xbuild root `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Builder {
            root: root.into(),
            runtime: None,
            snapshotter: SnapshotterKind::Auto,
        }
    }

    /// Mounts snapshots with `kind` (overlay or copying) instead of detecting it.
    pub fn with_snapshotter(mut self, kind: SnapshotterKind) -> Self {
        self.snapshotter = kind;
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

    fn store(&self) -> Result<Store, Error> {
        Ok(Store::open(&self.root)?)
    }

    fn read_dockerfile(opts: &BuildOptions) -> Result<(String, String), Error> {
        let path = opts
            .dockerfile
            .clone()
            .unwrap_or_else(|| opts.context.join("Dockerfile"));
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        Ok((path.display().to_string(), text))
    }

    /// Parses and lowers the build's Dockerfile against the local store.
    pub fn lower(&self, opts: &BuildOptions) -> Result<Definition, Error> {
        let (file, text) = Self::read_dockerfile(opts)?;
        let store = self.store()?;
        lower_text(&store, &file, &text, opts)
    }

    /// Runs a build.
    pub async fn build(
        &self,
        opts: &BuildOptions,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<BuildResult, Error> {
        for t in &opts.tags {
            Reference::parse(t).map_err(Error::Usage)?;
        }
        let context = opts.context.canonicalize().map_err(io(&opts.context))?;
        if !context.is_dir() {
            return Err(Error::Usage(format!(
                "{}: the build context must be a directory",
                context.display()
            )));
        }
        let (file, text) = Self::read_dockerfile(opts)?;
        let store = Arc::new(self.store()?);
        let def = lower_text(&store, &file, &text, opts)?;
        let output = match &opts.target {
            Some(t) => def
                .outputs()
                .iter()
                .find(|o| &o.name == t)
                .cloned()
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--target {t}: {file} has no stage named {t} (stages: {})",
                        def.outputs()
                            .iter()
                            .map(|o| o.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
            None => def
                .outputs()
                .first()
                .cloned()
                .ok_or_else(|| Error::Usage("the Dockerfile produced no output".into()))?,
        };
        let mut sopts = SolverOptions::new(&self.root);
        sopts.contexts.insert(CONTEXT_NAME.into(), context);
        sopts.no_cache = opts.no_cache;
        sopts.dockerfile = Some(file.clone());
        sopts.build_args = opts.build_args.clone();
        sopts.runtime = self.runtime.clone();
        sopts.snapshotter = self.snapshotter;
        sopts.secrets = opts.secrets.clone();
        sopts.ssh = opts.ssh.clone();
        let solver = Solver::new(store.clone(), sopts, progress)?;
        let solved = solver
            .solve(&def, std::slice::from_ref(&output.vertex))
            .await?;
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
        let snapshots = solver.snapshots().clone();
        let compression = opts.compression;
        // An image made from exactly the same results and metadata was written already.
        let memo = export_key(&output, top.as_deref(), &steps, compression);
        let image = match store.get_export(&memo)? {
            Some(r) => r,
            None => {
                let store = store.clone();
                let snapshots = snapshots.clone();
                let top = top.clone();
                tokio::task::spawn_blocking(move || {
                    let image = xbuild_exporter::build_image(
                        &store,
                        &snapshots,
                        &output,
                        top.as_deref(),
                        &steps,
                        compression,
                    )?;
                    let rec = ExportRecord {
                        manifest: image.manifest,
                        config: image.config,
                    };
                    store.put_export(&memo, &rec)?;
                    Ok::<_, Error>(rec)
                })
                .await
                .map_err(|e| Error::Usage(format!("export task failed: {e}")))??
            }
        };
        let outputs = if opts.outputs.is_empty() {
            vec![OutputSpec::Image]
        } else {
            opts.outputs.clone()
        };
        let mut tags = Vec::new();
        for o in &outputs {
            match o {
                OutputSpec::Image => {
                    for t in &opts.tags {
                        tags.push(store::tag(&store, t, &image.manifest.digest)?.to_string());
                    }
                }
                OutputSpec::Oci { dest } => {
                    let name = opts.tags.first().map(String::as_str);
                    xbuild_exporter::write_oci_layout(&store, &image.manifest, name, dest)?;
                }
                OutputSpec::Tar { dest } => {
                    let f = std::fs::File::create(dest).map_err(io(dest))?;
                    xbuild_exporter::export_tar(
                        &snapshots,
                        top.as_deref(),
                        std::io::BufWriter::new(f),
                    )?;
                }
            }
        }
        Ok(BuildResult {
            image_id: image.config.digest.clone(),
            manifest: image.manifest.digest.clone(),
            tags,
            executed: solved.executed,
            cached: solved.cached,
        })
    }

    /// Deletes build cache (see [`xbuild_solver::gc`]): what no running build holds and, unless
    /// `opts.all`, no tagged image is made of.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport, Error> {
        let store = self.store()?;
        Ok(xbuild_solver::gc::prune(
            &store,
            opts,
            self.runtime.as_deref(),
        )?)
    }

    /// What the build cache and the content store take on disk.
    pub fn disk_usage(&self) -> Result<DiskUsage, Error> {
        Ok(xbuild_solver::gc::disk_usage(&self.store()?)?)
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
        let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
            Ok(t) => xbuild_runtime::dockerignore::read_ignore_file(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(dir)(e)),
        };
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
            std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
            Some(xbuild_cache::statcache::StatCache::load(&self.root)?)
        };
        let sum =
            xbuild_solver::context_checksum(dir, filter.as_ref(), &sel, cache.as_ref(), true)?;
        if let Some(c) = &cache {
            c.save()?;
        }
        Ok((hex_string(&sum.total), sum.paths.len()))
    }

    /// Imports a flat rootfs tar (plain or gzip) as image `name`, like `docker import`.
    pub fn import(&self, tar: &Path, name: &str) -> Result<ImageSummary, Error> {
        let r = Reference::parse(name).map_err(Error::Usage)?;
        let store = self.store()?;
        let f = std::fs::File::open(tar).map_err(io(tar))?;
        let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let image = xbuild_exporter::import_rootfs(
            &store,
            f,
            &tar.display().to_string(),
            "linux",
            xbuild_parser::lower::host_architecture(),
            &created,
        )?;
        store::tag(&store, &r.to_string(), &image.manifest.digest)?;
        store::list(&store)?
            .into_iter()
            .find(|i| i.repository == r.repository && i.tag == r.tag)
            .ok_or_else(|| Error::NoSuchImage(r.to_string()))
    }

    /// Every tagged image.
    pub fn images(&self) -> Result<Vec<ImageSummary>, Error> {
        store::list(&self.store()?)
    }

    /// An image's manifest and config.
    pub fn inspect(&self, name: &str) -> Result<(Digest, Manifest, ImageConfigFile), Error> {
        let (_, tag, m, c) = store::lookup(&self.store()?, name)?;
        Ok((tag.manifest, m, c))
    }

    /// Writes an image's flattened filesystem as a tar.
    pub fn export(&self, name: &str, out: impl Write) -> Result<(), Error> {
        let store = self.store()?;
        let (_, tag, _, _) = store::lookup(&store, name)?;
        let snapshots = xbuild_runtime::Snapshotter::with_kind(&self.root, self.snapshotter)
            .map_err(xbuild_solver::Error::from)?;
        let top = xbuild_solver::unpack_image(&store, &snapshots, &tag.manifest)?;
        xbuild_exporter::export_tar(&snapshots, top.as_deref(), out)?;
        Ok(())
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest of everything an exported image is made from: its output (config, history,
/// platform), its top snapshot (whose chain gives the layers), the result and time of every
/// step its history names, and the compression.
fn export_key(
    output: &xbuild_llb::Output,
    top: Option<&str>,
    steps: &HashMap<Digest, StepResult>,
    compression: Compression,
) -> Digest {
    let mut b = xbuild_llb::DigestBuilder::new("xbuild-export-v1");
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
    b.finish()
}

fn lower_text(
    store: &Store,
    file: &str,
    text: &str,
    opts: &BuildOptions,
) -> Result<Definition, Error> {
    let parsed = xbuild_parser::parse(text);
    let dockerfile_err = |diagnostics: Vec<Diagnostic>| Error::Dockerfile {
        file: file.to_string(),
        source_text: text.to_string(),
        diagnostics,
    };
    if parsed.has_errors() {
        return Err(dockerfile_err(parsed.diagnostics));
    }
    let mut lopts = LowerOptions::for_host(file);
    lopts.build_args = opts.build_args.clone();
    xbuild_parser::lower::lower(&parsed.dockerfile, &lopts, &StoreResolver::new(store))
        .map_err(dockerfile_err)
}

/// Renders diagnostics with the offending source lines and carets.
pub fn render_diagnostics(
    file: &str,
    source: &str,
    diagnostics: &[Diagnostic],
    color: bool,
) -> String {
    use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let title = format!("{}:{}:{}: {}", file, d.span.line, d.span.col, d.message);
        let end = (d.span.offset + d.span.len.max(1)).min(source.len());
        let start = d.span.offset.min(end);
        let mut groups = vec![
            level.primary_title(title).element(
                Snippet::source(source)
                    .path(file)
                    .annotation(AnnotationKind::Primary.span(start..end)),
            ),
        ];
        if let Some(h) = &d.hint {
            groups.push(Group::with_title(Level::HELP.secondary_title(h.clone())));
        }
        out.push_str(&renderer.render(&groups).to_string());
        out.push('\n');
    }
    out
}
