//! Parser throughput on the corpus (`tests/parser/ok`), side by side with the
//! `dockerfile-parser` crate on the files both accept.
//!
//! `cargo bench -p xbuild-parser --bench parser`. The two groups report bytes per second over
//! the same files; their ratio is xbuild's speed-up.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

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

/// Alternates the two parsers over the corpus so that load from other processes hits both
/// alike, and prints their ratio (the number to quote on a shared machine).
fn interleaved_ratio(files: &[String]) {
    let (mut ours, mut theirs) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for _ in 0..200 {
        let t = std::time::Instant::now();
        for f in files {
            std::hint::black_box(xbuild_parser::parse(f));
        }
        ours += t.elapsed();
        let t = std::time::Instant::now();
        for f in files {
            let _ = std::hint::black_box(dockerfile_parser::Dockerfile::parse(f));
        }
        theirs += t.elapsed();
    }
    eprintln!(
        "interleaved over {} files: xbuild {:?}/corpus, dockerfile-parser {:?}/corpus, speed-up {:.2}x",
        files.len(),
        ours / 200,
        theirs / 200,
        theirs.as_secs_f64() / ours.as_secs_f64()
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
