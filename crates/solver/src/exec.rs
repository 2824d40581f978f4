//! Running an exec vertex (a RUN step): its mounts set up on the host, the process run through
//! the runtime on a fresh snapshot, and everything released whatever happens.

use std::any::Any;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;
use xbuild_llb::{Definition, ExecOp, MountKind, Vertex};
use xbuild_runtime::Root;
use xbuild_runtime::{CacheInit, ScratchDir, SecretFile, SshForward};
use xbuild_runtime::{ExecMount, ExecSpec, Stream};

use crate::{Error, Event, Solved, Solver, blocking};

/// Host-side things a step's mounts hold until it ends (views, leases, scratch copies, tmpfs,
/// sockets).
#[derive(Default)]
struct Held {
    items: Vec<Box<dyn Any + Send>>,
    scratch: Vec<ScratchDir>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Mounts first (children before the views they sit on), then their directories.
        while let Some(i) = self.items.pop() {
            drop(i);
        }
        self.scratch.clear();
    }
}

impl Solver {
    /// The host directory of input `i` of `v` (a context, or a view of a snapshot kept in
    /// `held`).
    fn input_dir(
        &self,
        def: &Definition,
        v: &Vertex,
        i: usize,
        solved: &Solved,
        held: &mut Held,
    ) -> Result<PathBuf, Error> {
        if let Some(d) = v.inputs().get(i)
            && let Some((source, _)) = self.local_source(def, d)?
        {
            return Ok(source.dir().to_path_buf());
        }
        let snap = self.input(solved, v, i)?.snapshot.clone();
        let view = self.snapshots.view(snap.as_deref())?;
        let p = view.path().to_path_buf();
        held.items.push(Box::new(view));
        Ok(p)
    }

    /// `source` inside the tree at `dir`, resolved without leaving it.
    fn resolve_in(dir: &Path, source: &str, what: &str) -> Result<PathBuf, Error> {
        Root::open(dir)?
            .host_path_of(source)?
            .ok_or_else(|| Error::Path {
                path: format!("{what}: {source}"),
                problem: "does not exist in the mounted source".into(),
            })
    }

    fn scratch_dir(&self, held: &mut Held) -> PathBuf {
        let d = ScratchDir::new(self.snapshots.scratch_path("run"));
        let p = d.path().to_path_buf();
        held.scratch.push(d);
        p
    }

    /// Sets up the host side of each `RUN --mount`; returns the runtime's mounts and extra
    /// environment variables (secrets exposed as variables).
    async fn exec_mounts(
        &self,
        def: &Definition,
        v: &Vertex,
        e: &ExecOp,
        solved: &Solved,
        held: &mut Held,
    ) -> Result<(Vec<ExecMount>, Vec<String>), Error> {
        let mut mounts = Vec::new();
        let mut env = Vec::new();
        for m in &e.mounts {
            let target = m.target.clone();
            match &m.kind {
                MountKind::Bind {
                    input,
                    source,
                    readonly,
                } => {
                    let dir = self.input_dir(def, v, *input, solved, held)?;
                    let src = Self::resolve_in(&dir, source, &format!("bind mount {target}"))?;
                    let copy = if *readonly {
                        None
                    } else {
                        self.snapshots.scratch_copy(&src)?
                    };
                    let src = match copy {
                        Some(copy) => {
                            let p = copy.path().to_path_buf();
                            held.items.push(Box::new(copy));
                            p
                        }
                        None => src,
                    };
                    mounts.push(ExecMount::Bind {
                        target,
                        source: src,
                        readonly: *readonly,
                    });
                }
                MountKind::Cache {
                    id,
                    sharing,
                    uid,
                    gid,
                    mode,
                    readonly,
                    seed,
                } => {
                    let seed_dir = match seed {
                        Some((i, path)) => {
                            let dir = self.input_dir(def, v, *i, solved, held)?;
                            Some(Self::resolve_in(
                                &dir,
                                path,
                                &format!("cache mount {target}"),
                            )?)
                        }
                        None => None,
                    };
                    let (caches, id, sharing) = (self.cache_mounts.clone(), id.clone(), *sharing);
                    let (uid, gid, mode) = (*uid, *gid, *mode);
                    let lease = blocking(move || {
                        let init = CacheInit {
                            uid,
                            gid,
                            mode,
                            seed: seed_dir.as_deref(),
                        };
                        caches.acquire(&id, sharing, &init).map_err(Error::from)
                    })
                    .await?;
                    mounts.push(ExecMount::Bind {
                        target,
                        source: lease.path().to_path_buf(),
                        readonly: *readonly,
                    });
                    held.items.push(Box::new(lease));
                }
                MountKind::Tmpfs { size } => mounts.push(ExecMount::Tmpfs {
                    target,
                    size: *size,
                }),
                MountKind::Secret {
                    id,
                    required,
                    uid,
                    gid,
                    mode,
                    env: var,
                } => {
                    let Some(source) = self.opts.secrets.get(id) else {
                        if *required {
                            return Err(Error::SecretMissing { id: id.clone() });
                        }
                        continue;
                    };
                    let data = source.read(id)?;
                    if let Some(var) = var {
                        env.push(format!("{var}={}", String::from_utf8_lossy(&data)));
                    }
                    if !target.is_empty() {
                        let dir = self.scratch_dir(held);
                        let file = SecretFile::new(&dir, &data, *uid, *gid, *mode)?;
                        mounts.push(ExecMount::Bind {
                            target,
                            source: file.path().to_path_buf(),
                            readonly: true,
                        });
                        held.items.push(Box::new(file));
                    }
                }
                MountKind::Ssh {
                    id,
                    required,
                    uid,
                    gid,
                    mode,
                } => {
                    let Some(agent) = self.opts.ssh.get(id) else {
                        if *required {
                            return Err(Error::SshMissing { id: id.clone() });
                        }
                        continue;
                    };
                    let dir = self.scratch_dir(held);
                    let fwd = SshForward::start(agent, &dir, *uid, *gid, *mode)?;
                    mounts.push(ExecMount::Bind {
                        target,
                        source: fwd.path().to_path_buf(),
                        readonly: false,
                    });
                    held.items.push(Box::new(fwd));
                }
            }
        }
        // Parents before the mounts nested in them.
        mounts.sort_by_key(|m| m.target().trim_end_matches('/').matches('/').count());
        Ok((mounts, env))
    }

    /// Runs exec vertex `v` on top of `parent`; returns the committed snapshot. A cancelled
    /// step's container is killed and everything it held released before this returns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_exec(
        &self,
        def: &Definition,
        v: &Vertex,
        e: &ExecOp,
        solved: &Solved,
        parent: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, Error> {
        let _slot = match &self.opts.exec_slots {
            Some(slots) => Some(tokio::select! {
                p = slots.clone().acquire_owned() => {
                    p.map_err(|_| Error::Task("the RUN step limit was closed".into()))?
                }
                _ = cancel.cancelled() => return Err(Error::Cancelled),
            }),
            None => None,
        };
        let mut held = Held::default();
        let (mounts, extra_env) = self.exec_mounts(def, v, e, solved, &mut held).await?;
        let active = self.snapshots.prepare(parent)?;
        self.hold(active.id())?;
        let mount = self.snapshots.mount(&active)?;
        let mut env = e.env.clone();
        env.extend(def.proxy_env().iter().cloned());
        env.extend(extra_env);
        let spec = ExecSpec {
            args: e.args.clone(),
            env,
            cwd: e.cwd.clone(),
            user: e.user.clone(),
            network: e.network,
            mounts,
            insecure: e.security == xbuild_llb::Security::Insecure,
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
        let run = tokio::select! {
            r = self.executor.run(mount.path(), &spec, &sink) => r.map_err(Error::from),
            _ = cancel.cancelled() => Err(Error::Cancelled),
        };
        let unmounted = mount.unmount();
        drop(held);
        run?;
        unmounted?;
        Ok(Some(self.snapshots.commit(active)?))
    }
}
