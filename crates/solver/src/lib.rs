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

mod image_source;
mod progress;

pub use image_source::{chain_id, unpack_image};
pub use progress::{Event, NoProgress, ProgressSink};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use xbuild_cache::{CacheRecord, Store};
use xbuild_llb::{Chmod, Definition, Digest, FileAction, Op, SourceOp, Vertex};
use xbuild_runtime::copy::CopyRequest;
use xbuild_runtime::fsops::{CopyMeta, Root};
use xbuild_runtime::{ExecSpec, Executor, Snapshotter, Stream};

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
}

impl SolverOptions {
    /// Defaults for the root `root`.
    pub fn new(root: &Path) -> Self {
        SolverOptions {
            root: root.to_path_buf(),
            contexts: HashMap::new(),
            no_cache: false,
            runtime: None,
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
            snapshots: Snapshotter::new(&opts.root)?,
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
                    if let FileAction::Copy(c) = a {
                        let src_vertex = v
                            .inputs()
                            .get(c.input)
                            .and_then(|d| self.vertex_dir(def, d));
                        if let Some(dir) = src_vertex {
                            let (dir, src, wild, follow) = (
                                dir.clone(),
                                c.src.clone(),
                                c.allow_wildcard,
                                c.follow_symlinks,
                            );
                            let sum = blocking(move || {
                                xbuild_runtime::context::checksum(&dir, &src, wild, follow)
                                    .map_err(Error::from)
                            })
                            .await?;
                            key.part(&sum);
                        }
                    }
                }
            }
            Op::Exec(e) => {
                if let Some(m) = e.mounts.first() {
                    return Err(Error::Unsupported(format!("RUN --mount ({})", m.target)));
                }
            }
            Op::Merge(_) => return Err(Error::Unsupported("merge (COPY --link)".into())),
            Op::Source(SourceOp::Http { url, .. }) => {
                return Err(Error::Unsupported(format!("HTTP source {url}")));
            }
            Op::Source(SourceOp::Git { remote, .. }) => {
                return Err(Error::Unsupported(format!("git source {remote}")));
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
                let active = self.snapshots.prepare(parent.as_deref())?;
                let mount = self.snapshots.mount(&active)?;
                let spec = ExecSpec {
                    args: e.args.clone(),
                    env: e.env.clone(),
                    cwd: e.cwd.clone(),
                    user: e.user.clone(),
                    network: e.network,
                };
                let progress = self.progress.clone();
                let vertex = v.digest().clone();
                let sink = move |s: Stream, line: &str| {
                    progress.event(Event::Log {
                        vertex: vertex.clone(),
                        stream: match s {
                            Stream::Stdout => "stdout",
                            Stream::Stderr => "stderr",
                        },
                        line: line.to_string(),
                    })
                };
                let run = exec.run(mount.path(), &spec, &sink).await;
                mount.unmount()?;
                run?;
                self.snapshots.commit(active)?
            }
            Op::File(f) => {
                let mut sources: Vec<(PathBuf, bool, Option<xbuild_runtime::View>)> = Vec::new();
                for (i, d) in v.inputs().iter().enumerate() {
                    if i == 0 {
                        sources.push((PathBuf::new(), false, None));
                        continue;
                    }
                    match self.vertex_dir(def, d) {
                        Some(dir) => sources.push((dir.clone(), false, None)),
                        None => {
                            let snap = self.input(solved, v, i)?.snapshot.clone();
                            let view = self.snapshots.view(snap.as_deref())?;
                            sources.push((view.path().to_path_buf(), true, Some(view)));
                        }
                    }
                }
                let active = self.snapshots.prepare(parent.as_deref())?;
                let mount = self.snapshots.mount(&active)?;
                let target = mount.path().to_path_buf();
                let actions = f.actions.clone();
                let src_paths: Vec<(PathBuf, bool)> =
                    sources.iter().map(|(p, k, _)| (p.clone(), *k)).collect();
                let applied =
                    blocking(move || apply_file_actions(&target, &actions, &src_paths)).await;
                drop(sources);
                mount.unmount()?;
                applied?;
                self.snapshots.commit(active)?
            }
            Op::Source(_) | Op::Merge(_) => return Err(Error::Graph("solved above".into())),
        };
        let rec = CacheRecord {
            snapshot: Some(snapshot),
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

    /// The directory of a local source vertex (the build context).
    fn vertex_dir(&self, def: &Definition, d: &Digest) -> Option<&PathBuf> {
        match def.vertex(d)?.op() {
            Op::Source(SourceOp::Local { name, .. }) => self.opts.contexts.get(name),
            _ => None,
        }
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

/// Applies a file op's actions on the mounted `target`; `sources[i]` is input `i`'s tree and
/// whether copies from it keep owners.
fn apply_file_actions(
    target: &Path,
    actions: &[FileAction],
    sources: &[(PathBuf, bool)],
) -> Result<(), Error> {
    let dest = Root::open(target)?;
    for a in actions {
        match a {
            FileAction::Copy(c) => {
                let (src_dir, keep_owner) = sources
                    .get(c.input)
                    .ok_or_else(|| Error::Graph(format!("copy from missing input {}", c.input)))?;
                let src = Root::open(src_dir)?;
                let chown = c
                    .chown
                    .as_ref()
                    .map(|ch| xbuild_runtime::user::resolve_chown(&dest, ch));
                let source_name = if *keep_owner {
                    "the source stage"
                } else {
                    "the build context"
                };
                xbuild_runtime::copy::copy(
                    &src,
                    &dest,
                    &CopyRequest {
                        src: &c.src,
                        dest: &c.dest,
                        follow_symlinks: c.follow_symlinks,
                        dir_copy_contents: c.dir_copy_contents,
                        allow_wildcard: c.allow_wildcard,
                        allow_empty_wildcard: c.allow_empty_wildcard,
                        create_dest_path: c.create_dest_path,
                        meta: CopyMeta {
                            chown,
                            keep_owner: *keep_owner,
                            mode: match &c.mode {
                                None => None,
                                Some(Chmod::Octal(m)) => Some(*m),
                                Some(Chmod::Symbolic(s)) => {
                                    return Err(Error::Unsupported(format!(
                                        "--chmod={s} (symbolic modes)"
                                    )));
                                }
                            },
                        },
                        source_name,
                    },
                )?;
            }
            FileAction::Mkdir(m) => {
                let owner = m
                    .chown
                    .as_ref()
                    .map(|ch| xbuild_runtime::user::resolve_chown(&dest, ch));
                xbuild_runtime::copy::mkdir(&dest, &m.path, m.mode, owner)?;
            }
            FileAction::Mkfile(_) => return Err(Error::Unsupported("mkfile".into())),
            FileAction::Rm(_) => return Err(Error::Unsupported("rm".into())),
            FileAction::Symlink(_) => return Err(Error::Unsupported("symlink".into())),
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
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
