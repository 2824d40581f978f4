//! Executes xbuild build graphs.
//!
//! For each vertex the solver computes a cache key — the vertex digest, its inputs' keys and,
//! for copies from the build context, a checksum of exactly the files the copy selects (through
//! the root's stat cache, so unchanged files are never read) — and asks the cache for it. Only
//! misses run: RUN steps through the runtime's executor on a fresh overlay snapshot, file ops on
//! a snapshot of their own. A second identical build runs nothing.
//!
//! Every vertex whose inputs are ready runs at once ([`Solver::solve`]): tokio waits on
//! processes and locks, blocking threads and rayon do file work and hashing. The first failure
//! cancels the rest (running containers are killed, mounts released) and is the error returned.
//! Several processes on one root cooperate: a cache key being built by one is waited for by the
//! others (a lock per key), what a build uses is leased against `prune`, and what a killed
//! process left behind is cleaned up by the next one ([`Solver::new`]). Each build's key
//! components are recorded, for [`explain`] to say why a step missed the cache.
//!
//! The solver touches the host only through the runtime: a [`Host`] (its `Snapshotter`, which
//! also unpacks image layers and makes RUN mounts' scratch copies, `Executor` and
//! `FileBackend`, which applies file ops' actions), the build's local sources (`Source`s), the
//! runtime's `Download` and `GitCheckout` (HTTP and git sources), `CacheMounts`, and the root's
//! `RootDirs` ([`recover`] and [`gc`]). [`Solver::new`] drives the real ones ([`Host::real`]);
//! [`Solver::with_host`] takes any host, which is how the scheduling and caching are tested
//! without root.
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
//! let context = xbuild_runtime::LocalContext::new("./app");
//! opts.contexts.insert("context".into(), Arc::new(context));
//! let solver = Solver::new(store, opts, Arc::new(NoProgress))?;
//! let target = def.outputs()[0].vertex.clone();
//! let solved = solver.solve(&def, &[target]).await?;
//! println!("{} steps ran, {} came from the cache", solved.executed, solved.cached);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod exec;
pub mod explain;
mod file;
pub mod gc;
mod image_source;
mod keys;
mod merge;
mod progress;
pub mod remote_cache;
mod schedule;
mod sources;
mod vertex;

pub use image_source::{missing_layers, unpack_chain, unpack_image};
pub use keys::context_checksum;
pub use progress::{Event, NoProgress, ProgressSink};
pub use remote_cache::{BlobFetcher, ImportedCache, RemoteCache};
pub use xbuild_cache::oci::chain_id;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use xbuild_cache::Store;
use xbuild_cache::lease::{Hold, Session};
use xbuild_cache::lock::GcLock;
use xbuild_cache::statcache::StatCache;
use xbuild_dockerignore::Filter;
use xbuild_llb::{Definition, Digest, Op, SourceOp, Vertex};
use xbuild_runtime::CacheMounts;
use xbuild_runtime::Source;
use xbuild_runtime::{Executor, LayerSnapshotter, RuncExecutor, Snapshotter, SnapshotterKind};
use xbuild_runtime::{FileBackend, HostFileBackend, RootDirs};

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
    /// A vertex or input the solve needs is not in the graph or was not solved: a malformed
    /// graph, or a solver bug.
    #[error("{what} is not in the graph or was not solved")]
    Missing {
        /// Which one (`input 1 of sha256:…`, `vertex sha256:…`).
        what: String,
    },
    /// The graph reads a local source (the build context) the caller did not give.
    #[error("no local source named {name:?} was given")]
    NoLocalSource {
        /// The source's name.
        name: String,
    },
    /// A local source's include or exclude patterns are invalid.
    #[error("local source {name:?}: {source}")]
    LocalSourcePatterns {
        /// The source's name.
        name: String,
        /// The bad pattern.
        source: xbuild_dockerignore::BadPattern,
    },
    /// A `--secret` given on the command line is malformed.
    #[error("invalid --secret {spec:?}: {problem}")]
    SecretSpec {
        /// The flag's value.
        spec: String,
        /// What is wrong.
        problem: String,
    },
    /// A secret's file or environment variable cannot be read.
    #[error("secret {id}: {problem}")]
    SecretUnreadable {
        /// The secret's id.
        id: String,
        /// What failed.
        problem: String,
    },
    /// A required `RUN --mount=type=secret` whose secret was not given.
    #[error(
        "secret {id} is required but was not provided: pass --secret id={id},src=FILE (or env=VAR)"
    )]
    SecretMissing {
        /// The secret's id.
        id: String,
    },
    /// A required `RUN --mount=type=ssh` whose agent was not given.
    #[error("ssh agent {id} is required but was not provided: pass --ssh {id}=$SSH_AUTH_SOCK")]
    SshMissing {
        /// The agent's id.
        id: String,
    },
    /// A path a step needs does not exist (or is not one a file can take).
    #[error("{path}: {problem}")]
    Path {
        /// The path, or what it belongs to.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A remote source's content is not what its pinned checksum or commit says.
    #[error("{source_ref}: {got}, expected {expected}")]
    Pinned {
        /// The URL or `repository#ref`.
        source_ref: String,
        /// What was fetched (`checksum mismatch: downloaded sha256:…`).
        got: String,
        /// The pinned value.
        expected: String,
    },
    /// The build context changed while it was being read.
    #[error("the build context changed while it was read ({src}); build again")]
    ContextChanged {
        /// The copy's source.
        src: String,
    },
    /// A feature the graph uses that this solver does not implement yet.
    #[error("{0} is not supported yet")]
    Unsupported(String),
    /// The build needs an entitlement the caller did not grant.
    #[error(
        "{instruction} needs the {entitlement} entitlement: pass `--allow {entitlement}` to \
         `xbuild build`"
    )]
    Entitlement {
        /// What needs it (`RUN --network=host`).
        instruction: &'static str,
        /// The entitlement (`network.host`, `security.insecure`).
        entitlement: &'static str,
    },
    /// An imported cache (`--cache-from`) could not be used.
    #[error("importing cache from {name}: {message}")]
    CacheImport {
        /// The cache (a reference or a directory).
        name: String,
        /// What failed, naming the blob at fault.
        message: String,
    },
    /// A blocking task failed to complete.
    #[error("internal task failed: {0}")]
    Task(String),
    /// The step was stopped because another one failed first.
    #[error("cancelled: another step failed")]
    Cancelled,
    /// The build was cancelled through [`SolverOptions::cancel`]; every step it started was
    /// stopped and cleaned up.
    #[error("the build was cancelled")]
    Interrupted,
}

/// Settings of a solver.
#[derive(Clone, Debug)]
pub struct SolverOptions {
    /// The xbuild root.
    pub root: PathBuf,
    /// Local sources by name (`context` → the build context, a
    /// [`LocalContext`](xbuild_runtime::LocalContext)).
    pub contexts: HashMap<String, Arc<dyn Source>>,
    /// Ignore cached results (results are still recorded).
    pub no_cache: bool,
    /// The OCI runtime binary; `runc` on PATH by default. Used by [`Solver::new`]'s executor,
    /// and to stop what dead builds left running.
    pub runtime: Option<PathBuf>,
    /// How [`Solver::new`]'s snapshotter mounts snapshots (overlay when possible by default).
    pub snapshotter: SnapshotterKind,
    /// Secrets by id (`--secret id=…,src=…|env=…`), for `RUN --mount=type=secret`.
    pub secrets: HashMap<String, SecretSource>,
    /// SSH agent sockets by id (`--ssh default=$SSH_AUTH_SOCK`), for `RUN --mount=type=ssh`.
    pub ssh: HashMap<String, PathBuf>,
    /// The Dockerfile the graph came from (recorded for `explain`).
    pub dockerfile: Option<String>,
    /// The `--build-arg` values (recorded for `explain`).
    pub build_args: BTreeMap<String, String>,
    /// Use and update the root's stat cache (otherwise every context file is read).
    pub stat_cache: bool,
    /// Cancels the solve: running steps are killed, their mounts and snapshots released, and
    /// [`Solver::solve`] returns [`Error::Interrupted`] once nothing it started is left.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Bounds how many RUN steps run at once, shared by every solver given the same
    /// semaphore (a worker's builds); unbounded when `None`.
    pub exec_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// The `security.insecure` entitlement (`--allow security.insecure`): without it a graph
    /// with `RUN --security=insecure` is refused before anything runs.
    pub allow_insecure: bool,
    /// The `network.host` entitlement (`--allow network.host`): without it a graph with
    /// `RUN --network=host` is refused before anything runs.
    pub allow_network_host: bool,
    /// Results imported from remote caches (`--cache-from`), asked on a local miss.
    pub remote_cache: RemoteCache,
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
            let (k, v) = part.split_once('=').ok_or_else(|| Error::SecretSpec {
                spec: spec.to_string(),
                problem: "expected id=ID,src=PATH or id=ID,env=VAR".into(),
            })?;
            match k.trim() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => source = Some(SecretSource::File(v.into())),
                "env" => source = Some(SecretSource::Env(v.to_string())),
                "type" => {}
                other => {
                    return Err(Error::SecretSpec {
                        spec: spec.to_string(),
                        problem: format!("unknown key {other:?}"),
                    });
                }
            }
        }
        let id = id.ok_or_else(|| Error::SecretSpec {
            spec: spec.to_string(),
            problem: "it needs id=".into(),
        })?;
        let source = source.unwrap_or_else(|| SecretSource::Env(id.clone()));
        Ok((id, source))
    }

    /// The secret's value.
    pub fn read(&self, id: &str) -> Result<Vec<u8>, Error> {
        match self {
            SecretSource::File(p) => std::fs::read(p).map_err(|e| Error::SecretUnreadable {
                id: id.to_string(),
                problem: format!("cannot read {}: {e}", p.display()),
            }),
            SecretSource::Env(v) => std::env::var_os(v)
                .map(std::os::unix::ffi::OsStringExt::into_vec)
                .ok_or_else(|| Error::SecretUnreadable {
                    id: id.to_string(),
                    problem: format!("environment variable {v} is not set"),
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
            dockerfile: None,
            build_args: BTreeMap::new(),
            stat_cache: true,
            cancel: tokio_util::sync::CancellationToken::new(),
            exec_slots: None,
            allow_insecure: false,
            allow_network_host: false,
            remote_cache: RemoteCache::new(),
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
///
/// A solver is one session on the root: it holds leases on what its builds use until it is
/// dropped, and when it starts it cleans up what dead sessions (killed builds) left behind.
pub struct Solver {
    store: Arc<Store>,
    snapshots: Arc<dyn Snapshotter>,
    executor: Arc<dyn Executor>,
    files: Arc<dyn FileBackend>,
    cache_mounts: CacheMounts,
    opts: SolverOptions,
    progress: Arc<dyn ProgressSink>,
    session: Arc<Session>,
    stat_cache: OnceLock<Arc<StatCache>>,
}

/// The host side a solver drives: where snapshots are made and how RUN steps run.
#[derive(Clone, Debug)]
pub struct Host {
    /// Makes, mounts and commits the snapshots of the solver's results.
    pub snapshotter: Arc<dyn Snapshotter>,
    /// Runs RUN steps.
    pub executor: Arc<dyn Executor>,
    /// Applies file ops' actions (COPY, WORKDIR, heredoc files) to mounted snapshots.
    pub files: Arc<dyn FileBackend>,
}

impl Host {
    /// The real host of the root `root`: a [`LayerSnapshotter`] of `kind`, a
    /// [`RuncExecutor`] running `runtime` (`runc` on PATH when `None`), what they create owned
    /// by session `session` so that it is cleaned up if the session dies, and the
    /// [`HostFileBackend`].
    pub fn real(
        root: &Path,
        kind: SnapshotterKind,
        runtime: Option<PathBuf>,
        session: &str,
    ) -> Result<Self, Error> {
        Ok(Host {
            snapshotter: Arc::new(LayerSnapshotter::with_kind(root, kind)?.with_owner(session)),
            executor: Arc::new(RuncExecutor::new(root, runtime).with_owner(session)),
            files: Arc::new(HostFileBackend),
        })
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Cleans up what the dead sessions on `root` left behind (containers, mounts, bundles,
/// uncommitted snapshots, scratch contexts, half-written blobs); returns how many sessions
/// were cleaned.
pub fn recover(root: &Path, runtime: Option<&Path>) -> Result<usize, Error> {
    let dirs = RootDirs::new(root);
    dirs.clean_scratch();
    xbuild_cache::clean_partial_blobs(root);
    let mut n = 0;
    for dead in xbuild_cache::lease::dead_sessions(root)? {
        let r = dirs.clean_owner(dead.id(), runtime)?;
        if !r.is_empty() {
            tracing::warn!(
                session = dead.id(),
                containers = r.containers,
                mounts = r.mounts,
                dirs = r.dirs,
                snapshots = r.snapshots,
                networks = r.networks,
                "cleaned up after a build that died"
            );
        }
        dead.finish()?;
        n += 1;
    }
    Ok(n)
}

impl Solver {
    /// A solver over `store` (the same root as `opts.root`) on the real host
    /// ([`Host::real`] with `opts.snapshotter` and `opts.runtime`). Cleans up after dead
    /// sessions on the root first.
    pub fn new(
        store: Arc<Store>,
        opts: SolverOptions,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<Self, Error> {
        let session = Session::start(&opts.root)?;
        let host = Host::real(
            &opts.root,
            opts.snapshotter,
            opts.runtime.clone(),
            session.id(),
        )?;
        Self::with_host(store, opts, progress, session, host)
    }

    /// A solver over `store` (the same root as `opts.root`) for `session` (a session started
    /// on that root), driving `host`, whose parts should own what they create by the session's
    /// id. Cleans up after dead sessions on the root first.
    pub fn with_host(
        store: Arc<Store>,
        opts: SolverOptions,
        progress: Arc<dyn ProgressSink>,
        session: Session,
        host: Host,
    ) -> Result<Self, Error> {
        let session = Arc::new(session);
        recover(&opts.root, opts.runtime.as_deref())?;
        Ok(Solver {
            snapshots: host.snapshotter,
            executor: host.executor,
            files: host.files,
            cache_mounts: CacheMounts::new(&opts.root)?,
            store,
            opts,
            progress,
            session,
            stat_cache: OnceLock::new(),
        })
    }

    /// The snapshotter the solver uses.
    pub fn snapshots(&self) -> &Arc<dyn Snapshotter> {
        &self.snapshots
    }

    /// The id of the solver's session on the root.
    pub fn session_id(&self) -> &str {
        self.session.id()
    }

    /// Leases a snapshot for as long as this solver lives.
    pub fn hold(&self, snapshot: &str) -> Result<(), Error> {
        Ok(self.session.hold(Hold::Snapshot, snapshot)?)
    }

    /// The root's stat cache, loaded on first use.
    fn stat_cache(&self) -> Arc<StatCache> {
        self.stat_cache
            .get_or_init(|| {
                let c = if self.opts.stat_cache {
                    StatCache::load(&self.opts.root).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "the stat cache cannot be read; hashing everything");
                        StatCache::disabled(&self.opts.root)
                    })
                } else {
                    StatCache::disabled(&self.opts.root)
                };
                Arc::new(c)
            })
            .clone()
    }

    /// Takes the root's GC lock shared, waiting (off the async threads) while a prune runs.
    async fn gc_shared(&self) -> Result<GcLock, Error> {
        if let Some(l) = GcLock::try_shared(&self.opts.root)? {
            return Ok(l);
        }
        let root = self.opts.root.clone();
        blocking(move || Ok(GcLock::shared(&root)?)).await
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
            .ok_or_else(|| Error::Missing {
                what: format!("input {i} of {}", v.digest()),
            })
    }

    /// The source and filter of a local source vertex (the build context).
    #[allow(clippy::type_complexity)]
    fn local_source(
        &self,
        def: &Definition,
        d: &Digest,
    ) -> Result<Option<(Arc<dyn Source>, Option<Arc<Filter>>)>, Error> {
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
        let source = self
            .opts
            .contexts
            .get(name)
            .ok_or_else(|| Error::NoLocalSource { name: name.clone() })?;
        let filter = Filter::new(include_patterns, exclude_patterns).map_err(|source| {
            Error::LocalSourcePatterns {
                name: name.clone(),
                source,
            }
        })?;
        Ok(Some((source.clone(), filter.map(Arc::new))))
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

impl Drop for Solver {
    fn drop(&mut self) {
        self.snapshots.release_owner();
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
        let v = def.vertex(&d).ok_or_else(|| Error::Missing {
            what: format!("vertex {d}"),
        })?;
        stack.extend(v.inputs().iter().cloned());
    }
    Ok(seen)
}
