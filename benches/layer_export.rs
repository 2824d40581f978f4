//! Exporting one 500 MiB layer of mixed files (source-like text, binary-like data, already
//! compressed data; many small files and a few large ones), side by side with
//! `tar c | pigz` on the same files and the same cores.
//!
//! `cargo bench -p xbuild-exporter --bench layer_export` (or `benches/layer-export-vs-pigz`).
//! First a paired run — each round times `tar c | pigz`, xbuild gzip and xbuild zstd back to
//! back, in rotating order, so a busy machine slows all three alike — printing the median of
//! each round's ratio to pigz; then the criterion group. `XBUILD_BENCH_MIB` sets the size
//! (default 500), `XBUILD_BENCH_ROUNDS` the paired rounds (default 5, 0 to skip),
//! `XBUILD_BENCH_CRITERION=0` skips the criterion group.

use criterion::{Criterion, Throughput};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use xbuild_cache::Store;
use xbuild_exporter::{Compression, ExportOptions, write_layer};

/// A fast deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "fn", "let", "mut", "self", "return", "match", "struct", "impl", "pub", "use", "crate",
    "error", "result", "value", "buffer", "layer", "digest", "stream", "config", "=>", "{", "}",
    "(", ")", ";", "::", "&", "if", "else", "for", "in", "while", "0", "1", "42", "\"text\"",
];

fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    while out.len() < n {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        out.extend_from_slice(w.as_bytes());
        out.push(if rng.next().is_multiple_of(9) {
            b'\n'
        } else {
            b' '
        });
    }
    out.truncate(n);
    out
}

fn binary(rng: &mut Rng, n: usize) -> Vec<u8> {
    // Like machine code: short repeated patterns with noise.
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = rng.next();
        if r.is_multiple_of(4) {
            out.extend_from_slice(&r.to_le_bytes());
        } else {
            out.extend_from_slice(&[0x48, 0x89, (r >> 8) as u8 & 0x0f, 0, 0, 0, 0xe8, 0]);
        }
    }
    out.truncate(n);
    out
}

fn random(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Writes the tree once per size (kept under the target directory between runs).
fn make_tree(mib: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("layer-export-{mib}MiB-v1"));
    let done = dir.join(".complete");
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let total = mib << 20;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0u64;
    let mut i = 0u64;
    while written < total {
        let d = dir.join(format!("pkg{:03}/mod{:02}", i % 97, (i / 97) % 13));
        std::fs::create_dir_all(&d).expect("mkdir");
        // Mostly small files, every 500th a large one.
        let size = if i % 500 == 499 {
            (8 << 20) + (rng.next() % (8 << 20)) as usize
        } else {
            512 + (rng.next() % (48 << 10)) as usize
        };
        let size = size.min((total - written) as usize).max(1);
        let body = match i % 10 {
            0..=4 => text(&mut rng, size),
            5..=7 => binary(&mut rng, size),
            _ => random(&mut rng, size),
        };
        let name = d.join(format!("f{i:06}.{}", ["rs", "so", "gz"][(i % 3) as usize]));
        let mut f = std::fs::File::create(&name).expect("create");
        f.write_all(&body).expect("write");
        written += size as u64;
        i += 1;
    }
    std::fs::write(&done, b"").expect("marker");
    dir
}

fn changes(dir: &Path) -> Vec<xbuild_runtime::Change> {
    xbuild_runtime::changes(dir)
        .expect("walk")
        .into_iter()
        .filter(|c| match c {
            xbuild_runtime::Change::Upsert { path, .. } => path != Path::new(".complete"),
            xbuild_runtime::Change::Delete { .. } => true,
        })
        .collect()
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn export(store: &Store, dir: &Path, compression: Compression) {
    let opts = ExportOptions {
        compression,
        epoch: None,
    };
    write_layer(store, &changes(dir), opts).expect("layer");
}

fn tar_pigz(dir: &Path, out: &Path) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C '{}' --exclude=.complete -cf - . | pigz -p {} > '{}'",
            dir.display(),
            cores(),
            out.display()
        ))
        .status()
        .expect("pigz must be installed");
    assert!(st.success());
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Rounds of the three, back to back in rotating order; prints the median ratios to pigz.
fn paired(store: &Store, dir: &Path, out: &Path, mib: u64, rounds: u64) {
    let mut gzip = Vec::new();
    let mut zstd = Vec::new();
    for r in 0..rounds {
        let mut t = [0f64; 3];
        for k in 0..3 {
            let which = (k + r as usize) % 3;
            let start = Instant::now();
            match which {
                0 => tar_pigz(dir, out),
                1 => export(store, dir, Compression::Gzip),
                _ => export(store, dir, Compression::Zstd),
            }
            t[which] = start.elapsed().as_secs_f64();
        }
        eprintln!(
            "round {}: tar|pigz {:.2}s, xbuild gzip {:.2}s, xbuild zstd {:.2}s",
            r + 1,
            t[0],
            t[1],
            t[2]
        );
        gzip.push(t[1] / t[0]);
        zstd.push(t[2] / t[0]);
    }
    println!(
        "layer export {mib} MiB, {} cores, median of {rounds} paired rounds: \
         xbuild gzip = {:.2}x tar|pigz, xbuild zstd = {:.2}x tar|pigz",
        cores(),
        median(gzip),
        median(zstd)
    );
}

fn main() {
    let mib = env_num("XBUILD_BENCH_MIB", 500);
    let dir = make_tree(mib);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let store = Store::open(&work.path().join("root")).expect("store");
    let out = work.path().join("pigz.tar.gz");
    let rounds = env_num("XBUILD_BENCH_ROUNDS", 5);
    if rounds > 0 {
        paired(&store, &dir, &out, mib, rounds);
    }
    if env_num("XBUILD_BENCH_CRITERION", 1) != 0 {
        let mut c = Criterion::default().configure_from_args();
        bench(&mut c, &store, &dir, &out, mib);
        c.final_summary();
    }
}

fn bench(c: &mut Criterion, store: &Store, dir: &Path, out: &Path, mib: u64) {
    let mut g = c.benchmark_group(format!("layer_export_{mib}MiB"));
    g.throughput(Throughput::Bytes(mib << 20));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(10));
    for comp in [Compression::Gzip, Compression::Zstd] {
        g.bench_function(format!("xbuild_{}", comp.name()), |b| {
            b.iter(|| export(store, dir, comp))
        });
    }
    g.bench_function("tar_pigz", |b| b.iter(|| tar_pigz(dir, out)));
    g.finish();
}
