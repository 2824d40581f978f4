//! [`Builder`]: builds images on one xbuild root — checks, lowers and solves a Dockerfile's
//! graph (or any graph), then hands the solution to the outputs; also the build cache's
//! management (`prune`, `du`, `explain`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use xbuild_cache::Store;
use xbuild_cache::oci::ImageConfigFile;
use xbuild_exporter::StepResult;
use xbuild_parser::lower::{CONTEXT_NAME, LowerOptions};
use xbuild_runtime::LocalContext;
use xbuild_runtime::{LayerSnapshotter, RuncExecutor, Snapshotter};
use xbuild_solver::{Solver, SolverOptions};

use crate::dockerfile::{AnyBase, check_dockerfile, lower_options, read_ignore, syntax_override};
use crate::outputs::now_rfc3339;
use crate::{
    BuildOptions, CancellationToken, ContextError, Definition, Diagnostic, Digest, DiskUsage,
    Error, Explanation, InternalError, PruneOptions, PruneReport, Pushed, Reference,
    RegistryOptions, Severity, SnapshotterKind, StepTiming, StoreResolver, Timings, cache_import,
    events, io, lower_text,
};

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

/// Builds images and manages the image store of one xbuild root.
#[derive(Clone, Debug)]
pub struct Builder {
    pub(crate) root: PathBuf,
    pub(crate) runtime: Option<PathBuf>,
    pub(crate) snapshotter: SnapshotterKind,
    pub(crate) registry: RegistryOptions,
    pub(crate) exec_slots: Option<Arc<tokio::sync::Semaphore>>,
    pub(crate) store: OpenStore,
}

/// The root's store, opened on first use and shared by a builder and its clones: opening
/// (and closing) the index costs several fsyncs, too much to pay per operation.
#[derive(Clone, Default)]
pub(crate) struct OpenStore(Arc<std::sync::OnceLock<Arc<Store>>>);

impl std::fmt::Debug for OpenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "OpenStore(open)"
        } else {
            "OpenStore(closed)"
        })
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

    /// The root's content store, opened on first use and shared with this builder's clones.
    pub fn store(&self) -> Result<Arc<Store>, Error> {
        if let Some(s) = self.store.0.get() {
            return Ok(s.clone());
        }
        let opened = Arc::new(Store::open(&self.root)?);
        Ok(self.store.0.get_or_init(|| opened).clone())
    }

    pub(crate) fn snapshots(&self) -> Result<LayerSnapshotter, Error> {
        Ok(LayerSnapshotter::with_kind(&self.root, self.snapshotter)?)
    }

    pub(crate) fn read_dockerfile(opts: &BuildOptions) -> Result<(String, String), Error> {
        let name = opts.dockerfile_name();
        if let Some(text) = &opts.dockerfile_text {
            return Ok((name, text.clone()));
        }
        let path = PathBuf::from(&name);
        let bytes = xbuild_runtime::read_build_file(&opts.context, &path)?
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
        cancellable(
            &opts.cancel,
            self.lower_pulling(&store, &file, &text, opts, None),
        )
        .await
    }

    /// Runs a build and writes its outputs: lowers the Dockerfile (pulling base images it
    /// needs), then solves and exports the graph as [`build_definition`](Self::build_definition)
    /// does, in one session that leases each base image as soon as lowering resolves it.
    pub async fn build(&self, opts: &BuildOptions) -> Result<BuildResult, Error> {
        let started = Instant::now();
        for t in &opts.tags {
            Reference::parse(t)?;
        }
        // One session from the first base image resolved to the last output written: what
        // lowering resolves is leased at once, not when solving starts.
        let (file, text) = Self::read_dockerfile(opts)?;
        let store = self.store()?;
        let session = xbuild_cache::lease::Session::start(&self.root)?;
        let lowering = self.lower_pulling(&store, &file, &text, opts, Some(&session));
        let def = cancellable(&opts.cancel, lowering).await?;
        let lowered = started.elapsed();
        let solution = self.solve_in(&def, opts, session).await?;
        let mut result = self.export_solution(&solution, opts).await?;
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
        let session = xbuild_cache::lease::Session::start(&self.root)?;
        self.solve_in(def, opts, session).await
    }

    /// [`solve`](Self::solve) in the build's `session`, whose leases it keeps and adds to.
    async fn solve_in(
        &self,
        def: &Definition,
        opts: &BuildOptions,
        session: xbuild_cache::lease::Session,
    ) -> Result<Solution, Error> {
        let started = Instant::now();
        let targets: Vec<Digest> = def.outputs().iter().map(|o| o.vertex.clone()).collect();
        if targets.is_empty() {
            return Err(Error::NoOutput);
        }
        let store = self.store()?;
        let mut sopts = SolverOptions::new(&self.root);
        let uses_context = def.vertices().any(|v| {
            matches!(v.op(), xbuild_llb::Op::Source(xbuild_llb::SourceOp::Local { name, .. }) if name == CONTEXT_NAME)
        });
        if uses_context {
            let context = opts.context.canonicalize().map_err(io(&opts.context))?;
            if !context.is_dir() {
                return Err(ContextError::NotADirectory(context).into());
            }
            let source: Arc<dyn xbuild_runtime::Source> = match &opts.context_source {
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
        let snapshots = self.snapshots()?.with_owner(session.id());
        let host = xbuild_solver::Host {
            snapshotter: Arc::new(snapshots.clone()),
            executor: Arc::new(
                RuncExecutor::new(&self.root, self.runtime.clone()).with_owner(session.id()),
            ),
            files: Arc::new(xbuild_runtime::HostFileBackend),
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
            .ok_or(InternalError::NoResult)?;
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
            return Err(Error::NoSuchSnapshot {
                snapshot: s.to_string(),
                root: self.root.clone(),
            });
        }
        let mut def = Definition::new();
        let vertex = def
            .add(
                xbuild_llb::Op::Source(xbuild_llb::SourceOp::Scratch),
                vec![],
            )
            .map_err(InternalError::Graph)?;
        let (os, architecture) = match &opts.platform {
            Some(p) => {
                let p = xbuild_parser::platform::Platform::parse(p).map_err(Error::Platform)?;
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
        let filter =
            xbuild_dockerignore::Filter::new(&[], &ignore).map_err(|source| Error::Ignore {
                path: dir.join(".dockerignore"),
                source,
            })?;
        let sel = xbuild_runtime::Selection {
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
pub(crate) async fn cancellable<T>(
    cancel: &CancellationToken,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        r = fut => r,
        _ = cancel.cancelled() => Err(Error::Cancelled),
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context directory `name` under `dir` holding `Dockerfile` and a file `f`.
    fn context(dir: &Path, name: &str, dockerfile: &str) -> PathBuf {
        let ctx = dir.join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(ctx.join("f"), "content\n").unwrap();
        ctx
    }

    #[tokio::test]
    async fn base_image_removed_between_lowering_and_solving_does_not_fail_the_build() {
        let d = tempfile::tempdir().unwrap();
        let b = Builder::new(d.path().join("root"));
        let mut base = BuildOptions::new(context(d.path(), "base", "FROM scratch\nCOPY f /f\n"));
        base.tags = vec!["base:1".into()];
        b.build(&base).await.unwrap();

        // Lowered in the build's session, which leases the base as it resolves it...
        let mut app = BuildOptions::new(context(d.path(), "app", "FROM base:1\nCOPY f /g\n"));
        app.tags = vec!["app:1".into()];
        let store = b.store().unwrap();
        let session = xbuild_cache::lease::Session::start(&b.root).unwrap();
        let (file, text) = Builder::read_dockerfile(&app).unwrap();
        let def = b
            .lower_pulling(&store, &file, &text, &app, Some(&session))
            .await
            .unwrap();
        // ...then the base is removed and everything unused pruned before solving starts.
        b.remove("base:1", true).unwrap();
        b.prune(true).unwrap();
        assert!(b.inspect("base:1").is_err());

        let solution = b.solve_in(&def, &app, session).await.unwrap();
        b.export_solution(&solution, &app).await.unwrap();
        drop(solution);
        assert!(b.inspect("app:1").is_ok());
    }
}
