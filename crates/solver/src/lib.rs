//! Executes xbuild build graphs.
//!
//! For each vertex the solver computes a cache key — the vertex digest, its inputs' keys and,
//! for copies from the build context, a checksum of exactly the files the copy selects — and
//! asks the cache for it. Only misses run: RUN steps through the runtime's executor on a fresh
//! overlay snapshot, file ops on a snapshot of their own. A second identical build runs nothing.
//!
//! Invariant: a cache key depends only on the vertex digest, input keys and content checksums.
//!
//! ```no_run
//! # async fn demo(def: xbuild_llb::Definition) -> Result<(), xbuild_solver::Error> {
//! use std::sync::Arc;
//! use xbuild_solver::{NoProgress, Solver, SolverOptions};
//!
//! let root = std::path::Path::new("/var/lib/xbuild");
//! let store = Arc::new(xbuild_cache::Store::open(root)?);
//! let mut opts = SolverOptions::new(root);
//! opts.contexts.insert("context".into(), "./app".into());
//! let solver = Solver::new(store, opts, Arc::new(NoProgress))?;
//! let target = def.outputs()[0].vertex.clone();
//! let solved = solver.solve(&def, &[target]).await?;
//! println!("{} steps ran, {} came from the cache", solved.executed, solved.cached);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod exec;
mod file;
mod image_source;
mod merge;
mod progress;
mod sources;

pub use image_source::{chain_id, unpack_image};
pub use progress::{Event, NoProgress, ProgressSink};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use xbuild_cache::{CacheRecord, Store};
use xbuild_llb::{Definition, Digest, FileAction, Op, SourceOp, Vertex};
use xbuild_runtime::dockerignore::Filter;
use xbuild_runtime::mounts::CacheMounts;
use xbuild_runtime::{Executor, Snapshotter, SnapshotterKind};

use image_source::key_builder;

/// What can go wrong solving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cache or content store failed.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
    /// The host side failed (snapshot, mount, exec, file op).
    #[error(transparent)]
    Runtime(#[from] xbuild_runtime::Error),
    /// A vertex failed; says which step.
    #[error("{name}: {source}")]
    Vertex {
        /// The step's description (`[2/4] RUN make`).
        name: String,
        /// Where it is in the Dockerfile (`Dockerfile:3`).
        location: Option<String>,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// A stored image is malformed.
    #[error("image {manifest}: {message}")]
    BadImage {
        /// The manifest.
        manifest: Digest,
        /// What is wrong.
        message: String,
    },
    /// The graph refers to something the solver was not given.
    #[error("{0}")]
    Graph(String),
    /// A feature the graph uses that this solver does not implement yet.
    #[error("{0} is not supported yet")]
    Unsupported(String),
    /// A blocking task failed to complete.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// Settings of a solver.
#[derive(Clone, Debug)]
pub struct SolverOptions {
    /// The xbuild root.
    pub root: PathBuf,
    /// Local sources by name (`context` → the build context directory).
    pub contexts: HashMap<String, PathBuf>,
    /// Ignore cached results (results are still recorded).
    pub no_cache: bool,
    /// The OCI runtime binary; `runc` on PATH by default.
    pub runtime: Option<PathBuf>,
    /// How snapshots are mounted (overlay when possible by default).
    pub snapshotter: SnapshotterKind,
    /// Secrets by id (`--secret id=…,src=…|env=…`), for `RUN --mount=type=secret`.
    pub secrets: HashMap<String, SecretSource>,
    /// SSH agent sockets by id (`--ssh default=$SSH_AUTH_SOCK`), for `RUN --mount=type=ssh`.
    pub ssh: HashMap<String, PathBuf>,
}

/// Where a secret's value comes from; read only when a step mounts it, never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the caller's machine.
    File(PathBuf),
    /// An environment variable of the caller.
    Env(String),
}

impl SecretSource {
    /// Parses `--secret` syntax: `id=ID[,src=PATH|,env=VAR]` (`source=` too; without either,
    /// the environment variable named like the id).
    pub fn parse(spec: &str) -> Result<(String, SecretSource), Error> {
        let mut id = None;
        let mut source = None;
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                Error::Graph(format!(
                    "invalid --secret {spec:?}: expected id=ID,src=PATH or id=ID,env=VAR"
                ))
            })?;
            match k.trim() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => source = Some(SecretSource::File(v.into())),
                "env" => source = Some(SecretSource::Env(v.to_string())),
                "type" => {}
                other => {
                    return Err(Error::Graph(format!(
                        "invalid --secret {spec:?}: unknown key {other:?}"
                    )));
                }
            }
        }
        let id = id.ok_or_else(|| Error::Graph(format!("--secret {spec:?} needs id=")))?;
        let source = source.unwrap_or_else(|| SecretSource::Env(id.clone()));
        Ok((id, source))
    }

    /// The secret's value.
    pub fn read(&self, id: &str) -> Result<Vec<u8>, Error> {
        match self {
            SecretSource::File(p) => std::fs::read(p).map_err(|e| {
                Error::Graph(format!("secret {id}: cannot read {}: {e}", p.display()))
            }),
            SecretSource::Env(v) => std::env::var_os(v)
                .map(std::os::unix::ffi::OsStringExt::into_vec)
                .ok_or_else(|| {
                    Error::Graph(format!("secret {id}: environment variable {v} is not set"))
                }),
        }
    }
}

impl SolverOptions {
    /// Defaults for the root `root`.
    pub fn new(root: &Path) -> Self {
        SolverOptions {
            root: root.to_path_buf(),
            contexts: HashMap::new(),
            no_cache: false,
            runtime: None,
            snapshotter: SnapshotterKind::Auto,
            secrets: HashMap::new(),
            ssh: HashMap::new(),
        }
    }
}

/// The outcome of one vertex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VertexResult {
    /// The committed snapshot of its filesystem (`None` for the empty one and for contexts).
    pub snapshot: Option<String>,
    /// When it ran (RFC 3339).
    pub created: String,
    /// Its cache key.
    pub cache_key: Digest,
    /// True when it came from the cache.
    pub cached: bool,
}

/// The outcome of a solve.
#[derive(Clone, Debug, Default)]
pub struct Solved {
    /// Every vertex solved, by digest.
    pub results: HashMap<Digest, VertexResult>,
    /// RUN and file steps that ran.
    pub executed: usize,
    /// RUN and file steps that came from the cache.
    pub cached: usize,
}

/// Runs build graphs against one xbuild root.
pub struct Solver {
    store: Arc<Store>,
    snapshots: Snapshotter,
    cache_mounts: CacheMounts,
    opts: SolverOptions,
    progress: Arc<dyn ProgressSink>,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Solver {
    /// A solver over `store` (the same root as `opts.root`).
    pub fn new(
        store: Arc<Store>,
        opts: SolverOptions,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<Self, Error> {
        Ok(Solver {
            snapshots: Snapshotter::with_kind(&opts.root, opts.snapshotter)?,
            cache_mounts: CacheMounts::new(&opts.root)?,
            store,
            opts,
            progress,
        })
    }

    /// The snapshotter the solver uses.
    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// Solves the vertices `targets` need, in dependency order.
    pub async fn solve(&self, def: &Definition, targets: &[Digest]) -> Result<Solved, Error> {
        let needed = ancestors(def, targets)?;
        let mut solved = Solved::default();
        let mut executor: Option<Executor> = None;
        for v in def.vertices().filter(|v| needed.contains(v.digest())) {
            let name = def
                .meta(v.digest())
                .map(|m| m.description.clone())
                .unwrap_or_else(|| v.op().kind().to_string());
            let location = def
                .meta(v.digest())
                .and_then(|m| Some(format!("{}:{}", m.file.clone()?, m.line?)));
            let r = self
                .solve_vertex(def, v, &name, &solved, &mut executor)
                .await
                .map_err(|e| {
                    self.progress.event(Event::Failed {
                        vertex: v.digest().clone(),
                        error: e.to_string(),
                    });
                    Error::Vertex {
                        name: name.clone(),
                        location,
                        source: Box::new(e),
                    }
                })?;
            if matches!(v.op(), Op::Exec(_) | Op::File(_)) {
                if r.cached {
                    solved.cached += 1;
                } else {
                    solved.executed += 1;
                }
            }
            solved.results.insert(v.digest().clone(), r);
        }
        Ok(solved)
    }

    fn input<'a>(
        &self,
        solved: &'a Solved,
        v: &Vertex,
        i: usize,
    ) -> Result<&'a VertexResult, Error> {
        v.inputs()
            .get(i)
            .and_then(|d| solved.results.get(d))
            .ok_or_else(|| Error::Graph(format!("input {i} of {} was not solved", v.digest())))
    }

    async fn solve_vertex(
        &self,
        def: &Definition,
        v: &Vertex,
        name: &str,
        solved: &Solved,
        executor: &mut Option<Executor>,
    ) -> Result<VertexResult, Error> {
        let mut key = key_builder();
        key.part(v.digest().as_str().as_bytes());
        for i in v.inputs() {
            let r = solved
                .results
                .get(i)
                .ok_or_else(|| Error::Graph(format!("input {i} was not solved")))?;
            key.part(r.cache_key.as_str().as_bytes());
        }
        match v.op() {
            Op::Source(SourceOp::Scratch) => {
                return Ok(VertexResult {
                    snapshot: None,
                    created: now_rfc3339(),
                    cache_key: key.finish(),
                    cached: true,
                });
            }
            Op::Source(SourceOp::Local { name: ctx, .. }) => {
                if !self.opts.contexts.contains_key(ctx) {
                    return Err(Error::Graph(format!(
                        "no local source named {ctx:?} was given"
                    )));
                }
                return Ok(VertexResult {
                    snapshot: None,
                    created: now_rfc3339(),
                    cache_key: key.finish(),
                    cached: true,
                });
            }
            Op::Source(SourceOp::Image { digest, .. }) => {
                let cache_key = key.finish();
                if let Some(Some(top)) =
                    image_source::is_unpacked(&self.store, &self.snapshots, digest)?
                {
                    self.progress.event(Event::Cached {
                        vertex: v.digest().clone(),
                        name: name.to_string(),
                    });
                    return Ok(VertexResult {
                        snapshot: Some(top),
                        created: now_rfc3339(),
                        cache_key,
                        cached: true,
                    });
                }
                let start = self.started(v, name);
                let (store, snaps, digest) =
                    (self.store.clone(), self.snapshots.clone(), digest.clone());
                let top = blocking(move || unpack_image(&store, &snaps, &digest)).await?;
                self.done(v, start);
                return Ok(VertexResult {
                    snapshot: top,
                    created: now_rfc3339(),
                    cache_key,
                    cached: false,
                });
            }
            Op::File(f) => {
                // Copies from a local source are keyed by the content they select.
                for a in &f.actions {
                    if let FileAction::Copy(c) = a
                        && let Some(d) = v.inputs().get(c.input)
                        && let Some((dir, filter)) = self.local_source(def, d)?
                    {
                        let c = c.clone();
                        let sum = blocking(move || {
                            let sel = xbuild_runtime::context::Selection {
                                src: &c.src,
                                allow_wildcard: c.allow_wildcard,
                                follow: c.follow_symlinks,
                                include: &c.include_patterns,
                                exclude: &c.exclude_patterns,
                            };
                            xbuild_runtime::context::checksum(&dir, filter.as_deref(), &sel)
                                .map_err(Error::from)
                        })
                        .await?;
                        key.part(&sum);
                    }
                }
            }
            Op::Exec(_) | Op::Merge(_) => {}
            Op::Source(SourceOp::Http { .. } | SourceOp::Git { .. }) => {
                return self.remote_source(v, name, key).await;
            }
        }
        let cache_key = key.finish();
        if !self.opts.no_cache
            && let Some(rec) = self.store.get_cache(&cache_key)?
            && rec
                .snapshot
                .as_deref()
                .is_none_or(|s| self.snapshots.exists(s))
        {
            self.progress.event(Event::Cached {
                vertex: v.digest().clone(),
                name: name.to_string(),
            });
            return Ok(VertexResult {
                snapshot: rec.snapshot,
                created: rec.created,
                cache_key,
                cached: true,
            });
        }
        let start = self.started(v, name);
        let parent = self.input(solved, v, 0)?.snapshot.clone();
        let snapshot = match v.op() {
            Op::Exec(e) => {
                if executor.is_none() {
                    *executor = Some(Executor::new(&self.opts.root, self.opts.runtime.clone())?);
                }
                let exec = executor
                    .as_ref()
                    .ok_or_else(|| Error::Task("executor unavailable".into()))?;
                self.run_exec(def, v, e, solved, parent.as_deref(), exec)
                    .await?
            }
            Op::File(f) => self.run_file(def, v, f, solved, parent.as_deref()).await?,
            Op::Merge(_) => self.run_merge(v, solved)?,
            Op::Source(_) => return Err(Error::Graph("solved above".into())),
        };
        let rec = CacheRecord {
            snapshot,
            created: now_rfc3339(),
        };
        self.store.put_cache(&cache_key, &rec)?;
        self.done(v, start);
        Ok(VertexResult {
            snapshot: rec.snapshot,
            created: rec.created,
            cache_key,
            cached: false,
        })
    }

    /// The directory and filter of a local source vertex (the build context).
    #[allow(clippy::type_complexity)]
    fn local_source(
        &self,
        def: &Definition,
        d: &Digest,
    ) -> Result<Option<(PathBuf, Option<Arc<Filter>>)>, Error> {
        let Some(v) = def.vertex(d) else {
            return Ok(None);
        };
        let Op::Source(SourceOp::Local {
            name,
            include_patterns,
            exclude_patterns,
        }) = v.op()
        else {
            return Ok(None);
        };
        let dir = self
            .opts
            .contexts
            .get(name)
            .ok_or_else(|| Error::Graph(format!("no local source named {name:?} was given")))?;
        let filter = Filter::new(include_patterns, exclude_patterns)
            .map_err(|e| Error::Graph(format!("local source {name:?}: {e}")))?;
        Ok(Some((dir.clone(), filter.map(Arc::new))))
    }

    fn started(&self, v: &Vertex, name: &str) -> Instant {
        self.progress.event(Event::Started {
            vertex: v.digest().clone(),
            name: name.to_string(),
        });
        Instant::now()
    }

    fn done(&self, v: &Vertex, start: Instant) {
        self.progress.event(Event::Done {
            vertex: v.digest().clone(),
            seconds: start.elapsed().as_secs_f64(),
        });
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// The vertices `targets` depend on (themselves included).
fn ancestors(def: &Definition, targets: &[Digest]) -> Result<HashSet<Digest>, Error> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Digest> = targets.to_vec();
    while let Some(d) = stack.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        let v = def
            .vertex(&d)
            .ok_or_else(|| Error::Graph(format!("vertex {d} is not in the graph")))?;
        stack.extend(v.inputs().iter().cloned());
    }
    Ok(seen)
}
