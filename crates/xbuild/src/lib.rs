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
pub use xbuild_exporter::Compression;
pub use xbuild_parser::{Diagnostic, Severity};
pub use xbuild_solver::{Event, NoProgress, ProgressSink};

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xbuild_cache::Store;
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
    /// Layer compression.
    pub compression: Compression,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--label` values for the image.
    pub labels: BTreeMap<String, String>,
    /// `--platform` (`linux/amd64`); the host's when unset.
    pub platform: Option<String>,
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
            target: None,
            labels: BTreeMap::new(),
            platform: None,
        }
    }
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
}

impl Builder {
    /// A builder over the xbuild root `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Builder {
            root: root.into(),
            runtime: None,
        }
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

    /// Runs the build checks on the build's Dockerfile without building: every error and
    /// warning, with the file's path and text for rendering.
    pub fn check(&self, opts: &BuildOptions) -> Result<CheckReport, Error> {
        let (file, text) = Self::read_dockerfile(opts)?;
        let parsed = xbuild_parser::parse(&text);
        let mut diagnostics = parsed.diagnostics.clone();
        if !parsed.has_errors() {
            let store = self.store()?;
            let mut lopts = lower_options(&file, opts)?;
            lopts.all_stages = true;
            match xbuild_parser::lower::lower_with_warnings(
                &parsed.dockerfile,
                &lopts,
                &StoreResolver::new(&store),
            ) {
                Ok(l) => diagnostics.extend(l.warnings),
                Err(errors) => diagnostics.extend(errors),
            }
        }
        Ok(CheckReport {
            file,
            source_text: text,
            diagnostics,
        })
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
        let output = def
            .outputs()
            .first()
            .cloned()
            .ok_or_else(|| Error::Usage("the Dockerfile produced no output".into()))?;
        let mut sopts = SolverOptions::new(&self.root);
        sopts.contexts.insert(CONTEXT_NAME.into(), context);
        sopts.no_cache = opts.no_cache;
        sopts.runtime = self.runtime.clone();
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
        let image = {
            let store = store.clone();
            let snapshots = snapshots.clone();
            let top = top.clone();
            tokio::task::spawn_blocking(move || {
                xbuild_exporter::build_image(
                    &store,
                    &snapshots,
                    &output,
                    top.as_deref(),
                    &steps,
                    compression,
                )
            })
            .await
            .map_err(|e| Error::Usage(format!("export task failed: {e}")))??
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
        let snapshots =
            xbuild_runtime::Snapshotter::new(&self.root).map_err(xbuild_solver::Error::from)?;
        let top = xbuild_solver::unpack_image(&store, &snapshots, &tag.manifest)?;
        xbuild_exporter::export_tar(&snapshots, top.as_deref(), out)?;
        Ok(())
    }
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
    let lopts = lower_options(file, opts)?;
    xbuild_parser::lower::lower(&parsed.dockerfile, &lopts, &StoreResolver::new(store))
        .map_err(dockerfile_err)
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
    }
    Ok(lopts)
}

/// The `.dockerignore` patterns of a build: `<Dockerfile>.dockerignore` beside the Dockerfile
/// wins over the context's `.dockerignore`; comments and blank lines are dropped.
fn dockerignore(opts: &BuildOptions) -> Result<Vec<String>, Error> {
    let mut candidates = Vec::new();
    if let Some(df) = &opts.dockerfile {
        let mut name = df.as_os_str().to_owned();
        name.push(".dockerignore");
        candidates.push(PathBuf::from(name));
    }
    candidates.push(opts.context.join(".dockerignore"));
    for c in candidates {
        match std::fs::read_to_string(&c) {
            Ok(text) => {
                return Ok(text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&c)(e)),
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
