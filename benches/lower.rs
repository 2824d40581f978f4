//! Lowering a generated 200-stage Dockerfile (stages built on earlier stages, COPY --from
//! between them, ARGs, ENV, RUN with mounts). Goal: under 50 ms.
//!
//! `cargo bench -p xbuild-parser --bench lower`.

use criterion::{Criterion, criterion_group, criterion_main};
use xbuild_llb::{Digest, ImageConfig};
use xbuild_parser::lower::{ImageResolver, LowerOptions, ResolvedImage, lower};
use xbuild_parser::platform::Platform;

struct Canned;

impl ImageResolver for Canned {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        Ok(ResolvedImage {
            reference: reference.into(),
            digest: Digest::of(reference.as_bytes()),
            config: ImageConfig {
                env: vec!["PATH=/usr/bin:/bin".into()],
                ..Default::default()
            },
            history: vec![],
            platform: Platform::new(&platform.os, &platform.architecture, None),
        })
    }
}

fn dockerfile(stages: usize) -> String {
    let mut s = String::from("ARG VERSION=1.0\nARG BASE=busybox:local\n");
    for i in 0..stages {
        if i % 10 == 0 {
            s.push_str(&format!("FROM $BASE AS s{i}\n"));
        } else {
            s.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
        }
        s.push_str(&format!(
            "ARG VERSION\nENV STAGE={i} APP_HOME=/opt/app{i}\nWORKDIR $APP_HOME\n\
             RUN --mount=type=cache,target=/root/.cache echo building $STAGE $VERSION > /out{i}\n\
             COPY --chown=1000:1000 src/{i} ./src/\n"
        ));
        if i >= 5 {
            s.push_str(&format!("COPY --from=s{} /out{} /deps/\n", i - 5, i - 5));
        }
        s.push_str("LABEL stage=\"$STAGE\"\nEXPOSE 8080\n");
    }
    s.push_str("CMD [\"/bin/app\"]\n");
    s
}

fn bench(c: &mut Criterion) {
    let text = dockerfile(200);
    let parsed = xbuild_parser::parse(&text);
    assert!(!parsed.has_errors());
    let opts = LowerOptions::for_host("Dockerfile");
    let def = lower(&parsed.dockerfile, &opts, &Canned).expect("lowers");
    assert!(def.len() > 600, "{} vertices", def.len());
    let mut g = c.benchmark_group("lower");
    g.sample_size(20);
    g.bench_function("200_stages", |b| {
        b.iter(|| lower(&parsed.dockerfile, &opts, &Canned).expect("lowers"))
    });
    g.bench_function("200_stages_parse_and_lower", |b| {
        b.iter(|| {
            let p = xbuild_parser::parse(&text);
            lower(&p.dockerfile, &opts, &Canned).expect("lowers")
        })
    });
    g.finish();
    // Issue 15 #12: linear in ENV and ARG lines (40k ENV lines took 10 s, 200k ARG > 60 s).
    let mut g = c.benchmark_group("lower_many");
    g.sample_size(10);
    for (name, text) in [
        ("40k_env", lines("ENV V{i}=value{i}\n", 40_000)),
        ("200k_arg", lines("ARG A{i}=v\n", 200_000)),
    ] {
        let parsed = xbuild_parser::parse(&text);
        assert!(!parsed.has_errors());
        g.bench_function(name, |b| {
            b.iter(|| lower(&parsed.dockerfile, &opts, &Canned).expect("lowers"))
        });
    }
    g.finish();
}

/// `FROM scratch`, then `template` (with `{i}` numbered) `n` times, then a RUN.
fn lines(template: &str, n: usize) -> String {
    let mut s = String::from("FROM scratch\n");
    for i in 0..n {
        s.push_str(&template.replace("{i}", &i.to_string()));
    }
    s.push_str("RUN true\n");
    s
}

criterion_group!(benches, bench);
criterion_main!(benches);
