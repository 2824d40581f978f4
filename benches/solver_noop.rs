//! The solver's hot paths when nothing changed: one cache-key lookup in an index of 20,000
//! records, and a whole no-op solve (a new solver, as a new process would make: session,
//! stat cache, every context checksum, every lookup) of ten copies from a 4,000-file context.
//!
//! `cargo bench -p xbuild-solver --bench solver_noop`, as root (copies from a context are
//! owned by root). The copying snapshotter is used, so nothing is mounted. The whole-process
//! figures beside BuildKit and `b3sum` are `benches/solver_figures.sh`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;
use std::sync::Arc;

use xbuild_cache::{CacheRecord, Store};
use xbuild_llb::{CopyAction, Definition, Digest, FileAction, FileOp, Op, SourceOp};
use xbuild_runtime::LocalContext;
use xbuild_runtime::SnapshotterKind;
use xbuild_solver::{NoProgress, Solver, SolverOptions};

fn make_context(dir: &Path, files: usize, size: usize) {
    for i in 0..files {
        let d = dir
            .join(format!("mod{:02}", i % 10))
            .join(format!("pkg{:02}", (i / 10) % 40));
        std::fs::create_dir_all(&d).expect("mkdir");
        let body: Vec<u8> = (0..size).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        std::fs::write(d.join(format!("f{i:06}.dat")), &body).expect("write");
    }
}

fn copy(src: &str, dest: &str) -> FileAction {
    FileAction::Copy(CopyAction::new(1, src, dest))
}

/// Ten stages from scratch, each copying one module of the context, gathered by a last copy.
fn graph() -> (Definition, Digest) {
    let mut def = Definition::new();
    let scratch = def.add(Op::Source(SourceOp::Scratch), vec![]).expect("add");
    let ctx = def
        .add(
            Op::Source(SourceOp::Local {
                name: "context".into(),
                include_patterns: vec![],
                exclude_patterns: vec![],
            }),
            vec![],
        )
        .expect("add");
    let mut top = scratch.clone();
    for m in 0..10 {
        let stage = def
            .add(
                Op::File(FileOp {
                    actions: vec![copy(&format!("mod{m:02}"), &format!("/src{m:02}"))],
                }),
                vec![scratch.clone(), ctx.clone()],
            )
            .expect("add");
        top = def
            .add(
                Op::File(FileOp {
                    actions: vec![copy(&format!("/src{m:02}/pkg00"), &format!("/out{m:02}"))],
                }),
                vec![top, stage],
            )
            .expect("add");
    }
    (def, top)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let store = Arc::new(Store::open(&root).expect("store"));
    let keys: Vec<Digest> = (0..20_000u32)
        .map(|i| Digest::of(&i.to_le_bytes()))
        .collect();
    for k in &keys {
        store
            .put_cache(
                k,
                &CacheRecord {
                    snapshot: Some("s".into()),
                    created: "2026-01-01T00:00:00Z".into(),
                },
            )
            .expect("put");
    }
    let mut g = c.benchmark_group("solver");
    g.bench_function("cache_key_lookup_hit", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % keys.len();
            store.get_cache(&keys[i]).expect("get")
        })
    });
    g.bench_function("cache_key_lookup_miss", |b| {
        let missing = Digest::of(b"missing");
        b.iter(|| store.get_cache(&missing).expect("get"))
    });

    let ctx = dir.path().join("ctx");
    make_context(&ctx, 4000, 4096);
    let (def, top) = graph();
    let mut opts = SolverOptions::new(&root);
    opts.snapshotter = SnapshotterKind::Native;
    opts.contexts
        .insert("context".into(), Arc::new(LocalContext::new(ctx)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let solve = |opts: &SolverOptions| {
        rt.block_on(async {
            let solver =
                Solver::new(store.clone(), opts.clone(), Arc::new(NoProgress)).expect("solver");
            solver
                .solve(&def, std::slice::from_ref(&top))
                .await
                .expect("solve")
        })
    };
    let cold = solve(&opts);
    assert_eq!(cold.executed, 20);
    // The stat cache keeps only entries older than its racy window.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    solve(&opts);
    g.sample_size(20);
    g.bench_function("noop_solve_10_copies_4000_files", |b| {
        b.iter(|| {
            let s = solve(&opts);
            assert_eq!(s.executed, 0);
            s
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
