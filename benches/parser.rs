//! Parser throughput on the corpus (`tests/parser/ok`), side by side with the
//! `dockerfile-parser` crate on the files both accept.
//!
//! `cargo bench -p xbuild-parser --bench parser`. Both sides parse to a syntax tree only:
//! `dockerfile-parser` has no build checks, so xbuild is measured with
//! [`xbuild_parser::parse_syntax`]; `xbuild+checks` ([`xbuild_parser::parse`], which also runs
//! the build checks) is reported beside it. The groups report bytes per second over the same
//! files; their ratio is xbuild's speed-up.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::{Duration, Instant};

fn corpus() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/parser/ok");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .filter(|s| dockerfile_parser::Dockerfile::parse(s).is_ok())
        .collect()
}

/// Time of one pass of `f` over every file.
fn pass(files: &[String], f: impl Fn(&str)) -> Duration {
    let t = Instant::now();
    for s in files {
        f(s);
    }
    t.elapsed()
}

/// Alternates the parsers over the corpus so that load from other processes hits them alike,
/// and prints their ratios (the numbers to quote on a shared machine).
fn interleaved_ratio(files: &[String]) {
    const ROUNDS: u32 = 200;
    let (mut syntax, mut full, mut theirs) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        syntax += pass(files, |s| {
            std::hint::black_box(xbuild_parser::parse_syntax(s));
        });
        theirs += pass(files, |s| {
            let _ = std::hint::black_box(dockerfile_parser::Dockerfile::parse(s));
        });
        full += pass(files, |s| {
            std::hint::black_box(xbuild_parser::parse(s));
        });
    }
    let ratio = |d: Duration| theirs.as_secs_f64() / d.as_secs_f64();
    eprintln!(
        "interleaved over {} files: xbuild {:?}/corpus, dockerfile-parser {:?}/corpus, speed-up {:.2}x \
         (xbuild+checks {:?}/corpus, {:.2}x)",
        files.len(),
        syntax / ROUNDS,
        theirs / ROUNDS,
        ratio(syntax),
        full / ROUNDS,
        ratio(full),
    );
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    interleaved_ratio(&files);
    let bytes: usize = files.iter().map(String::len).sum();
    let mut g = c.benchmark_group("parse_corpus");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(30);
    g.bench_function("xbuild", |b| {
        b.iter(|| {
            for f in &files {
                std::hint::black_box(xbuild_parser::parse_syntax(f));
            }
        })
    });
    g.bench_function("xbuild+checks", |b| {
        b.iter(|| {
            for f in &files {
                std::hint::black_box(xbuild_parser::parse(f));
            }
        })
    });
    g.bench_function("dockerfile-parser", |b| {
        b.iter(|| {
            for f in &files {
                let _ = std::hint::black_box(dockerfile_parser::Dockerfile::parse(f));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
