//! Context hashing: the checksum a COPY of a whole context computes for its cache key.
//!
//! `cargo bench -p xbuild-runtime --bench context_hash`. The side-by-side run against `b3sum`
//! over the same files is part of `benches/compare-peers` (its context-hashing ratio).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;

fn make_context(dir: &Path, files: usize, size: usize) -> u64 {
    let mut total = 0;
    for i in 0..files {
        let d = dir
            .join(format!("mod{:02}", i % 10))
            .join(format!("pkg{:02}", (i / 10) % 50));
        std::fs::create_dir_all(&d).expect("mkdir");
        let body: Vec<u8> = (0..size).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        std::fs::write(d.join(format!("f{i:06}.dat")), &body).expect("write");
        total += size as u64;
    }
    total
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = make_context(dir.path(), 2000, 16 * 1024);
    let mut g = c.benchmark_group("context_hash");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20);
    g.bench_function("checksum_2000_files_16k", |b| {
        b.iter(|| {
            xbuild_runtime::checksum(
                dir.path(),
                None,
                &xbuild_runtime::Selection {
                    src: "/",
                    allow_wildcard: true,
                    follow: true,
                    ..Default::default()
                },
            )
            .expect("checksum")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
