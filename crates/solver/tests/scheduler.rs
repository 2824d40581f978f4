//! The scheduler with hand-built graphs, for real (runc, overlayfs): independent vertices run
//! at once, a vertex shared by several users runs once, the first failure cancels the rest
//! and leaves nothing behind, two solvers (two processes' worth of sessions) on one root build
//! a shared vertex once, and prune spares what a live solver holds. They need root and a
//! busybox rootfs (`scripts/mkrootfs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use xbuild_cache::Store;
use xbuild_cache::gc::PruneOptions;
use xbuild_cache::history::{History, Outcome};
use xbuild_llb::{
    CopyAction, Definition, Digest, ExecOp, FileAction, FileOp, NetworkMode, Op, SourceOp,
    VertexMeta,
};
use xbuild_solver::{Event, ProgressSink, Solver, SolverOptions};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn rootfs_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join("scheduler-busybox-rootfs.tar");
        if !out.exists() {
            let tmp = dir.join(format!("scheduler-busybox.{}.tar", std::process::id()));
            let st =
                Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkrootfs"))
                    .arg(&tmp)
                    .status()
                    .unwrap();
            assert!(
                st.success(),
                "scripts/mkrootfs failed: install busybox-static"
            );
            std::fs::rename(&tmp, &out).unwrap();
        }
        out
    })
    .clone()
}

/// Every event, with when it happened.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Instant, Event)>>);

impl ProgressSink for Recorder {
    fn event(&self, e: Event) {
        self.0.lock().unwrap().push((Instant::now(), e));
    }
}

impl Recorder {
    fn events(&self) -> Vec<(Instant, Event)> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, kind: &str, vertex: &Digest) -> usize {
        self.events()
            .iter()
            .filter(|(_, e)| match e {
                Event::Started { vertex: v, .. } => kind == "started" && v == vertex,
                Event::Cached { vertex: v, .. } => kind == "cached" && v == vertex,
                Event::Waiting { vertex: v, .. } => kind == "waiting" && v == vertex,
                Event::Done { vertex: v, .. } => kind == "done" && v == vertex,
                _ => false,
            })
            .count()
    }

    fn at(&self, kind: &str, vertex: &Digest) -> Instant {
        self.events()
            .iter()
            .find(|(_, e)| match e {
                Event::Started { vertex: v, .. } => kind == "started" && v == vertex,
                Event::Done { vertex: v, .. } => kind == "done" && v == vertex,
                _ => false,
            })
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no {kind} event for {vertex}"))
    }

    fn log_lines(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|(_, e)| match e {
                Event::Log { line, .. } => Some(line),
                _ => None,
            })
            .collect()
    }
}

struct Env {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    image: Digest,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("xbuild-scheduler-")
            .tempdir()
            .unwrap();
        let store = Arc::new(Store::open(&dir.path().join("root")).unwrap());
        let img = xbuild_exporter::import_rootfs(
            &store,
            std::fs::File::open(rootfs_tar()).unwrap(),
            "busybox",
            "linux",
            "amd64",
            "2026-01-01T00:00:00Z",
            xbuild_exporter::Compression::Gzip,
        )
        .unwrap();
        Env {
            dir,
            store,
            image: img.manifest.digest,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn solver(&self, progress: Arc<Recorder>) -> Solver {
        Solver::new(
            self.store.clone(),
            SolverOptions::new(&self.root()),
            progress,
        )
        .unwrap()
    }

    fn base(&self, def: &mut Definition) -> Digest {
        def.add(
            Op::Source(SourceOp::Image {
                reference: "busybox:local".into(),
                digest: self.image.clone(),
            }),
            vec![],
        )
        .unwrap()
    }

    /// Asserts that nothing is mounted under the root and no runtime state is left.
    fn finish(self) {
        let root = self.root();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let left: Vec<&str> = mounts
            .lines()
            .filter(|l| l.contains(root.to_str().unwrap()))
            .collect();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
        for d in ["runc", "bundles", "sessions", "active", "locks"] {
            let p = root.join(d);
            if p.exists() {
                assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0, "{d} left behind");
            }
        }
    }
}

fn run(def: &mut Definition, on: &Digest, cmd: &str, line: u32) -> Digest {
    let d = def
        .add(
            Op::Exec(ExecOp {
                args: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
                env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
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

fn copy(input: usize, src: &str, dest: &str) -> FileAction {
    FileAction::Copy(CopyAction::new(input, src, dest))
}

/// A vertex copying `/x` of each input onto `on`.
fn gather(def: &mut Definition, on: &Digest, inputs: &[(&Digest, &str)]) -> Digest {
    let mut all = vec![on.clone()];
    let mut actions = Vec::new();
    for (n, (d, path)) in inputs.iter().enumerate() {
        all.push((*d).clone());
        actions.push(copy(n + 1, path, path));
    }
    def.add(Op::File(FileOp { actions }), all).unwrap()
}

fn processes_with(marker: &str) -> Vec<String> {
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn independent_vertices_run_at_once_and_a_shared_one_runs_once() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let a = run(&mut def, &base, "sleep 3 && echo a > /a", 2);
    let b = run(&mut def, &base, "sleep 3 && echo b > /b", 3);
    // One vertex, two users.
    let shared = run(&mut def, &base, "echo shared-ran && echo s > /s", 4);
    let s1 = gather(&mut def, &base, &[(&shared, "/s")]);
    let s2 = run(&mut def, &shared, "cp /s /s2", 5);
    let top = gather(
        &mut def,
        &base,
        &[(&a, "/a"), (&b, "/b"), (&s1, "/s"), (&s2, "/s2")],
    );
    let progress = Arc::new(Recorder::default());
    let solver = env.solver(progress.clone());
    let start = Instant::now();
    let solved = solver
        .solve(&def, std::slice::from_ref(&top))
        .await
        .unwrap();
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(5800),
        "two 3 s steps took {took:?} (6 s one after the other)"
    );
    assert!(progress.at("started", &a) < progress.at("done", &b));
    assert!(progress.at("started", &b) < progress.at("done", &a));
    assert_eq!(progress.count("started", &shared), 1);
    assert_eq!(
        progress
            .log_lines()
            .iter()
            .filter(|l| *l == "shared-ran")
            .count(),
        1
    );
    assert_eq!(solved.executed, 6);
    let view = solver
        .snapshots()
        .view(solved.results[&top].snapshot.as_deref())
        .unwrap();
    for (f, want) in [("a", "a\n"), ("b", "b\n"), ("s", "s\n"), ("s2", "s\n")] {
        assert_eq!(std::fs::read_to_string(view.path().join(f)).unwrap(), want);
    }
    drop(view);
    // Again: everything is cached, nothing runs.
    let again = Arc::new(Recorder::default());
    let solver2 = env.solver(again.clone());
    let solved = solver2
        .solve(&def, std::slice::from_ref(&top))
        .await
        .unwrap();
    assert_eq!((solved.executed, solved.cached), (0, 6));
    drop((solver, solver2));
    env.finish();
}

#[tokio::test]
async fn the_first_failure_cancels_the_rest_and_leaves_nothing_behind() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let marker = format!("long-step-{}", std::process::id());
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let long = run(&mut def, &base, &format!("echo {marker}; sleep 30"), 2);
    let bad = run(
        &mut def,
        &base,
        "sleep 0.5; echo first-words; echo oops >&2; exit 7",
        3,
    );
    let after = run(&mut def, &bad, "echo never", 4);
    let top = gather(&mut def, &base, &[(&long, "/etc"), (&after, "/etc")]);
    let progress = Arc::new(Recorder::default());
    let solver = env.solver(progress.clone());
    let start = Instant::now();
    let err = solver
        .solve(&def, std::slice::from_ref(&top))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the 30 s step was not cancelled"
    );
    let text = err.to_string();
    assert!(
        text.contains("exit 7") && text.contains("exit code 7"),
        "{text}"
    );
    let xbuild_solver::Error::Vertex {
        location, source, ..
    } = err
    else {
        panic!("{text}")
    };
    assert_eq!(location.as_deref(), Some("Dockerfile:3"));
    let xbuild_solver::Error::Runtime(xbuild_runtime::Error::ExecFailed { tail, code, .. }) =
        *source
    else {
        panic!("{text}")
    };
    assert_eq!(code, 7);
    assert!(tail.contains(&"oops".to_string()) && tail.contains(&"first-words".to_string()));
    assert_eq!(progress.count("started", &after), 0);
    assert!(
        processes_with(&marker).is_empty(),
        "the cancelled step's processes survived: {:?}",
        processes_with(&marker)
    );
    // The record says what failed and what was cancelled.
    let last = &History::new(&env.root()).builds().unwrap()[0];
    assert!(!last.success);
    let outcome = |d: &Digest| {
        last.vertices
            .iter()
            .find(|v| &v.digest == d)
            .unwrap()
            .outcome
    };
    assert_eq!(outcome(&bad), Outcome::Failed);
    assert_eq!(outcome(&long), Outcome::Cancelled);
    // No snapshot of the failed or cancelled steps remains: only the base layer and `empty`.
    drop(solver);
    assert_eq!(
        std::fs::read_dir(env.root().join("snapshots"))
            .unwrap()
            .count(),
        2
    );
    env.finish();
}

#[tokio::test]
async fn two_solvers_on_one_root_build_a_shared_vertex_once() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let marker = format!("built-once-{}", std::process::id());
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let step = run(
        &mut def,
        &base,
        &format!("echo {marker} && sleep 1 && echo x > /x"),
        2,
    );
    let (p1, p2) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let (s1, s2) = (env.solver(p1.clone()), env.solver(p2.clone()));
    assert_ne!(s1.session_id(), s2.session_id());
    let (r1, r2) = tokio::join!(
        s1.solve(&def, std::slice::from_ref(&step)),
        s2.solve(&def, std::slice::from_ref(&step)),
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.results[&step], {
        let mut r = r2.results[&step].clone();
        r.cached = r1.results[&step].cached;
        r
    });
    let started = p1.count("started", &step) + p2.count("started", &step);
    let cached = p1.count("cached", &step) + p2.count("cached", &step);
    assert_eq!((started, cached), (1, 1));
    assert_eq!(p1.count("waiting", &step) + p2.count("waiting", &step), 1);
    let printed = [&p1, &p2]
        .iter()
        .map(|p| p.log_lines().iter().filter(|l| **l == marker).count())
        .sum::<usize>();
    assert_eq!(printed, 1);
    drop((s1, s2));
    env.finish();
}

#[tokio::test]
async fn prune_spares_what_a_live_solver_holds() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let step = run(&mut def, &base, "echo kept > /kept", 2);
    let solver = env.solver(Arc::new(Recorder::default()));
    let solved = solver
        .solve(&def, std::slice::from_ref(&step))
        .await
        .unwrap();
    let snap = solved.results[&step].snapshot.clone().unwrap();
    let all = PruneOptions {
        all: true,
        keep_storage: None,
    };
    let r = xbuild_solver::gc::prune(&env.store, &all, None).unwrap();
    assert_eq!(r.snapshots, 0, "everything is held by the live solver");
    assert!(solver.snapshots().exists(&snap));
    drop(solver);
    let r = xbuild_solver::gc::prune(&env.store, &all, None).unwrap();
    assert_eq!(r.snapshots, 2, "the step and the base layer");
    assert!(r.reclaimed > 0);
    // The index forgot them too: the next solve runs the step again.
    let progress = Arc::new(Recorder::default());
    let solver = env.solver(progress.clone());
    solver
        .solve(&def, std::slice::from_ref(&step))
        .await
        .unwrap();
    assert_eq!(progress.count("started", &step), 1);
    drop(solver);
    env.finish();
}
