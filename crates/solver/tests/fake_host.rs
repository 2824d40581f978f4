//! The solver's scheduling and caching on a fake host, without root: a snapshotter that keeps
//! each snapshot as a plain directory holding its whole tree, and an executor that runs
//! nothing but records each step and applies a declared effect (a file named after the
//! command, written into the rootfs). Nothing here mounts, creates namespaces or starts a
//! process, so these run as any user.
//!
//! What the fake executor does is decided by the step's command: `fail…` exits 3, `block…`
//! never ends (until cancelled), anything else writes `/ran-<command>` after a short wait.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xbuild_cache::Store;
use xbuild_cache::lease::Session;
use xbuild_llb::{
    CopyAction, Definition, Digest, ExecOp, FileAction, FileOp, NetworkMode, Op, SourceOp,
    VertexMeta,
};
use xbuild_runtime::{
    Active, ExecFuture, ExecSpec, Executor, LineSink, MountGuard, Snapshotter, SnapshotterKind,
    Stream, View,
};
use xbuild_solver::{Event, Host, ProgressSink, Solver, SolverOptions};

/// What the fake snapshotter knows of a snapshot: its parent, and whether it is committed.
type Records = Arc<Mutex<HashMap<String, (Option<String>, bool)>>>;

/// Snapshots as plain directories under `dir`, each holding its whole tree (its parent's,
/// copied when it is prepared, plus its own changes).
#[derive(Debug)]
struct DirSnapshotter {
    dir: PathBuf,
    records: Records,
    next: AtomicUsize,
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            std::fs::create_dir(&dst).unwrap();
            copy_tree(&src, &dst);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

impl DirSnapshotter {
    fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        DirSnapshotter {
            dir,
            records: Records::default(),
            next: AtomicUsize::new(0),
        }
    }

    /// Snapshots prepared and neither committed nor aborted.
    fn uncommitted(&self) -> Vec<String> {
        let records = self.records.lock().unwrap();
        records
            .iter()
            .filter(|(_, (_, committed))| !committed)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn tree(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }
}

impl Snapshotter for DirSnapshotter {
    fn prepare(&self, parent: Option<&str>) -> Result<Active, xbuild_runtime::Error> {
        if let Some(p) = parent
            && !self.exists(p)
        {
            return Err(xbuild_runtime::Error::SnapshotNotFound(p.to_string()));
        }
        let id = format!("s{}", self.next.fetch_add(1, Ordering::SeqCst));
        let tree = self.tree(&id);
        std::fs::create_dir(&tree).unwrap();
        if let Some(p) = parent {
            copy_tree(&self.tree(p), &tree);
        }
        self.records
            .lock()
            .unwrap()
            .insert(id.clone(), (parent.map(str::to_string), false));
        let (records, aborted, gone) = (self.records.clone(), tree.clone(), id.clone());
        Ok(Active::new(
            id,
            parent.map(str::to_string),
            tree,
            move || {
                let _ = std::fs::remove_dir_all(&aborted);
                records.lock().unwrap().remove(&gone);
            },
        ))
    }

    fn mount(&self, active: &Active) -> Result<MountGuard, xbuild_runtime::Error> {
        Ok(MountGuard::in_place(active.upper()))
    }

    fn commit(&self, active: Active) -> Result<String, xbuild_runtime::Error> {
        let id = active.committed();
        if let Some(r) = self.records.lock().unwrap().get_mut(&id) {
            r.1 = true;
        }
        Ok(id)
    }

    fn view(&self, id: Option<&str>) -> Result<View, xbuild_runtime::Error> {
        match id {
            None => Ok(View::Dir(self.dir.join("empty"))),
            Some(id) if self.exists(id) => Ok(View::Dir(self.tree(id))),
            Some(id) => Err(xbuild_runtime::Error::SnapshotNotFound(id.to_string())),
        }
    }

    fn exists(&self, id: &str) -> bool {
        self.records
            .lock()
            .unwrap()
            .get(id)
            .is_some_and(|(_, committed)| *committed)
    }

    fn chain(&self, id: &str) -> Result<Vec<String>, xbuild_runtime::Error> {
        let records = self.records.lock().unwrap();
        let mut out = vec![id.to_string()];
        let mut cur = records
            .get(id)
            .ok_or_else(|| xbuild_runtime::Error::SnapshotNotFound(id.to_string()))?
            .0
            .clone();
        while let Some(p) = cur {
            cur = records[&p].0.clone();
            out.push(p);
        }
        Ok(out)
    }

    fn rebase(&self, id: &str, _: Option<&str>) -> Result<String, xbuild_runtime::Error> {
        Err(xbuild_runtime::Error::Io {
            path: PathBuf::from(id),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the fake snapshotter keeps whole trees and cannot rebase",
            ),
        })
    }

    fn kind(&self) -> SnapshotterKind {
        SnapshotterKind::Native
    }

    fn scratch_path(&self, what: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        self.dir.join(format!("scratch-{what}-{n}"))
    }

    fn release_owner(&self) {}
}

/// Records every step it is asked to run and how many run at once; runs nothing.
#[derive(Debug, Default)]
struct ScriptedExecutor {
    /// The command (last argument) of every step started, in order.
    runs: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    /// Steps whose future was dropped before it completed.
    stopped: AtomicUsize,
    /// Wakes whoever waits for a step to start.
    started: tokio::sync::Notify,
    /// How long an ordinary step takes.
    hold: Duration,
}

/// Counts a step as running while it lives; as stopped if dropped before it finished.
struct Running<'a> {
    exec: &'a ScriptedExecutor,
    finished: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.exec.running.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.exec.stopped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl ScriptedExecutor {
    fn with_hold(hold: Duration) -> Self {
        ScriptedExecutor {
            hold,
            ..Self::default()
        }
    }

    fn runs(&self) -> Vec<String> {
        self.runs.lock().unwrap().clone()
    }

    fn count(&self, cmd: &str) -> usize {
        self.runs().iter().filter(|c| *c == cmd).count()
    }

    async fn step(
        &self,
        rootfs: &Path,
        exec: &ExecSpec,
        sink: LineSink<'_>,
    ) -> Result<(), xbuild_runtime::Error> {
        let cmd = exec.args.last().cloned().unwrap_or_default();
        self.runs.lock().unwrap().push(cmd.clone());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let mut guard = Running {
            exec: self,
            finished: false,
        };
        self.started.notify_waiters();
        sink(Stream::Stdout, &format!("running {cmd}"));
        if cmd.starts_with("block") {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.hold).await;
        guard.finished = true;
        if cmd.starts_with("fail") {
            sink(Stream::Stderr, "boom");
            return Err(xbuild_runtime::Error::ExecFailed {
                command: exec.args.clone(),
                code: 3,
                tail: vec!["boom".into()],
            });
        }
        std::fs::write(rootfs.join(format!("ran-{cmd}")), &cmd).unwrap();
        Ok(())
    }
}

impl Executor for ScriptedExecutor {
    fn run<'a>(
        &'a self,
        rootfs: &'a Path,
        exec: &'a ExecSpec,
        sink: LineSink<'a>,
    ) -> ExecFuture<'a> {
        Box::pin(self.step(rootfs, exec, sink))
    }
}

/// Every event of a solve.
#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl ProgressSink for Events {
    fn event(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

struct Env {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    snaps: Arc<DirSnapshotter>,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("xbuild-fake-host-")
            .tempdir()
            .unwrap();
        let store = Arc::new(Store::open(&dir.path().join("root")).unwrap());
        let snaps = Arc::new(DirSnapshotter::new(dir.path().join("snapshots")));
        Env { dir, store, snaps }
    }

    fn opts(&self) -> SolverOptions {
        SolverOptions::new(&self.dir.path().join("root"))
    }

    fn solver(
        &self,
        opts: SolverOptions,
        exec: &Arc<ScriptedExecutor>,
        events: &Arc<Events>,
    ) -> Solver {
        let session = Session::start(&opts.root).unwrap();
        let host = Host {
            snapshotter: self.snaps.clone(),
            executor: exec.clone(),
            files: Arc::new(xbuild_runtime::HostFileBackend),
        };
        Solver::with_host(self.store.clone(), opts, events.clone(), session, host).unwrap()
    }
}

fn scratch(def: &mut Definition) -> Digest {
    def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap()
}

/// `RUN cmd` on top of `on`, at line `line` of the Dockerfile.
fn run(def: &mut Definition, on: &Digest, cmd: &str, line: u32) -> Digest {
    let d = def
        .add(
            Op::Exec(ExecOp {
                args: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                user: String::new(),
                network: NetworkMode::None,
                security: Default::default(),
                mounts: vec![],
            }),
            vec![on.clone()],
        )
        .unwrap();
    def.set_meta(
        &d,
        VertexMeta {
            description: format!("RUN {cmd}"),
            file: Some("Dockerfile".into()),
            line: Some(line),
        },
    );
    d
}

/// `COPY --from=<each input> /ran-<cmd> /` onto `on`: a stage gathering the others' results.
fn gather(def: &mut Definition, on: &Digest, inputs: &[(&Digest, &str)]) -> Digest {
    let mut all = vec![on.clone()];
    let mut actions = Vec::new();
    for (n, (d, cmd)) in inputs.iter().enumerate() {
        all.push((*d).clone());
        actions.push(FileAction::Copy(CopyAction::new(
            n + 1,
            format!("/ran-{cmd}"),
            "/",
        )));
    }
    def.add(Op::File(FileOp { actions }), all).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn run_steps_execute_once_and_a_second_solve_is_all_cached() {
    let env = Env::new();
    let mut def = Definition::new();
    let base = scratch(&mut def);
    let a = run(&mut def, &base, "a", 2);
    let b = run(&mut def, &a, "b", 3);
    let c = run(&mut def, &base, "c", 4);
    let targets = [b.clone(), c.clone()];

    let exec = Arc::new(ScriptedExecutor::default());
    let events = Arc::new(Events::default());
    let solved = env
        .solver(env.opts(), &exec, &events)
        .solve(&def, &targets)
        .await
        .unwrap();
    let mut runs = exec.runs();
    runs.sort();
    assert_eq!(runs, ["a", "b", "c"]);
    assert_eq!((solved.executed, solved.cached), (3, 0));
    // Each step ran on its parent's result.
    let top = solved.results[&b].snapshot.clone().unwrap();
    assert_eq!(env.snaps.chain(&top).unwrap().len(), 2);
    let view = env.snaps.view(Some(&top)).unwrap();
    assert_eq!(names(view.path()), ["ran-a", "ran-b"]);

    // A new solver on the same root (a second build) runs nothing.
    let again = Arc::new(ScriptedExecutor::default());
    let events = Arc::new(Events::default());
    let solved2 = env
        .solver(env.opts(), &again, &events)
        .solve(&def, &targets)
        .await
        .unwrap();
    assert_eq!(again.runs().len(), 0);
    assert_eq!((solved2.executed, solved2.cached), (0, 3));
    for d in [&a, &b, &c] {
        assert_eq!(solved2.results[d].snapshot, solved.results[d].snapshot);
        assert!(solved2.results[d].cached);
    }
    let cached = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Cached { .. }))
        .count();
    assert_eq!(cached, 3);

    // Without the cache, every step runs again.
    let mut opts = env.opts();
    opts.no_cache = true;
    env.solver(opts, &again, &events)
        .solve(&def, &targets)
        .await
        .unwrap();
    assert_eq!(again.runs().len(), 3);
    assert!(env.snaps.uncommitted().is_empty());
}

#[tokio::test]
async fn a_vertex_shared_by_two_stages_runs_once() {
    let env = Env::new();
    let mut def = Definition::new();
    let base = scratch(&mut def);
    // Two stages start with the same step: one vertex, by digest.
    let shared_a = run(&mut def, &base, "shared", 2);
    let stage_a = run(&mut def, &shared_a, "a", 3);
    let shared_b = run(&mut def, &base, "shared", 6);
    let stage_b = run(&mut def, &shared_b, "b", 7);
    assert_eq!(shared_a, shared_b);
    let top = gather(&mut def, &base, &[(&stage_a, "a"), (&stage_b, "b")]);

    let exec = Arc::new(ScriptedExecutor::with_hold(Duration::from_millis(20)));
    let events = Arc::new(Events::default());
    let solved = env
        .solver(env.opts(), &exec, &events)
        .solve(&def, std::slice::from_ref(&top))
        .await
        .unwrap();
    assert_eq!(exec.count("shared"), 1);
    assert_eq!(exec.runs().len(), 3);
    // Both stages stand on the one result of the shared step.
    let shared_snap = solved.results[&shared_a].snapshot.clone().unwrap();
    for stage in [&stage_a, &stage_b] {
        let snap = solved.results[stage].snapshot.clone().unwrap();
        assert_eq!(env.snaps.chain(&snap).unwrap()[1], shared_snap);
    }
    let view = env
        .snaps
        .view(solved.results[&top].snapshot.as_deref())
        .unwrap();
    assert_eq!(names(view.path()), ["ran-a", "ran-b"]);
}

#[tokio::test]
async fn a_failing_step_names_its_vertex_and_is_not_cached() {
    let env = Env::new();
    let mut def = Definition::new();
    let base = scratch(&mut def);
    let ok = run(&mut def, &base, "ok", 2);
    let failing = run(&mut def, &ok, "fail now", 3);

    for attempt in 1..=2 {
        let exec = Arc::new(ScriptedExecutor::default());
        let events = Arc::new(Events::default());
        let err = env
            .solver(env.opts(), &exec, &events)
            .solve(&def, std::slice::from_ref(&failing))
            .await
            .unwrap_err();
        let xbuild_solver::Error::Vertex {
            name,
            location,
            source,
        } = &err
        else {
            panic!("not a vertex error: {err:?}");
        };
        assert_eq!(name, "RUN fail now");
        assert_eq!(location.as_deref(), Some("Dockerfile:3"));
        assert!(
            matches!(
                source.as_ref(),
                xbuild_solver::Error::Runtime(xbuild_runtime::Error::ExecFailed { code: 3, tail, .. })
                    if tail == &["boom".to_string()]
            ),
            "{source:?}"
        );
        assert!(err.to_string().contains("exit code 3"), "{err}");
        // The step that worked is cached from the first attempt on; the failure never is.
        let want: &[&str] = if attempt == 1 {
            &["ok", "fail now"]
        } else {
            &["fail now"]
        };
        assert_eq!(exec.runs(), want);
        assert!(events.0.lock().unwrap().iter().any(
            |e| matches!(e, Event::Failed { vertex, error } if vertex == &failing && error.contains("exit code 3"))
        ));
        // The failed step's snapshot was thrown away.
        assert!(env.snaps.uncommitted().is_empty());
    }
}

#[tokio::test]
async fn cancelling_stops_the_running_step_and_skips_pending_ones() {
    let env = Env::new();
    let mut def = Definition::new();
    let base = scratch(&mut def);
    let blocked = run(&mut def, &base, "block", 2);
    let after = run(&mut def, &blocked, "after", 3);
    let last = run(&mut def, &after, "last", 4);

    let exec = Arc::new(ScriptedExecutor::default());
    let events = Arc::new(Events::default());
    let opts = env.opts();
    let cancel = opts.cancel.clone();
    let solver = env.solver(opts, &exec, &events);
    let started = exec.started.notified();
    let solve = solver.solve(&def, std::slice::from_ref(&last));
    let canceller = async {
        started.await;
        cancel.cancel();
    };
    let (r, ()) = tokio::join!(solve, canceller);
    assert!(matches!(r, Err(xbuild_solver::Error::Interrupted)), "{r:?}");
    assert_eq!(exec.runs(), ["block"]);
    assert_eq!(exec.stopped.load(Ordering::SeqCst), 1);
    assert_eq!(exec.running.load(Ordering::SeqCst), 0);
    assert!(env.snaps.uncommitted().is_empty());

    // A failure cancels its running siblings the same way.
    let mut def = Definition::new();
    let base = scratch(&mut def);
    let blocked = run(&mut def, &base, "block again", 2);
    let failing = run(&mut def, &base, "fail", 3);
    let exec = Arc::new(ScriptedExecutor::with_hold(Duration::from_millis(20)));
    let err = env
        .solver(env.opts(), &exec, &events)
        .solve(&def, &[blocked, failing])
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("RUN fail:"), "{err}");
    assert_eq!(exec.stopped.load(Ordering::SeqCst), 1);
    assert!(env.snaps.uncommitted().is_empty());
}

#[tokio::test]
async fn the_exec_slot_bound_limits_concurrent_runs() {
    let env = Env::new();
    let mut def = Definition::new();
    let base = scratch(&mut def);
    let steps: Vec<Digest> = (0..6)
        .map(|i| run(&mut def, &base, &format!("p{i}"), i + 2))
        .collect();

    let mut opts = env.opts();
    opts.exec_slots = Some(Arc::new(tokio::sync::Semaphore::new(2)));
    let exec = Arc::new(ScriptedExecutor::with_hold(Duration::from_millis(50)));
    let events = Arc::new(Events::default());
    env.solver(opts, &exec, &events)
        .solve(&def, &steps)
        .await
        .unwrap();
    assert_eq!(exec.runs().len(), 6);
    assert_eq!(exec.max_running.load(Ordering::SeqCst), 2);

    // Unbounded, the same independent steps all run at once.
    let mut opts = env.opts();
    opts.no_cache = true;
    let exec = Arc::new(ScriptedExecutor::with_hold(Duration::from_millis(50)));
    env.solver(opts, &exec, &events)
        .solve(&def, &steps)
        .await
        .unwrap();
    assert_eq!(exec.max_running.load(Ordering::SeqCst), 6);
}
