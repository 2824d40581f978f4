//! Build cache export and import (`--cache-to` / `--cache-from`): through Debian's
//! `docker-registry` on 127.0.0.1, a local OCI layout and an image's inline cache. A build on a
//! fresh root that imports another root's cache runs nothing.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::registry::{LocalRegistry, docker_config, skopeo_inspect};
use crate::support::{Run, TestRoot, rootfs_tar};

/// A fresh root with `busybox:local` imported reproducibly (SOURCE_DATE_EPOCH=0), so that two
/// roots hold the same base image and so compute the same cache keys.
fn busybox_root() -> TestRoot {
    let t = TestRoot::new();
    t.xbuild_with(
        &[("SOURCE_DATE_EPOCH", "0")],
        "",
        &["import", rootfs_tar().to_str().unwrap(), "busybox:local"],
    )
    .ok();
    t
}

/// Builds with JSON progress and a test-local Docker config.
fn build(t: &TestRoot, cfg: &str, ctx: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["build", "--progress=json"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    t.xbuild_with(&[("DOCKER_CONFIG", cfg)], "", &args)
}

/// The names of the steps a build ran (not cached).
fn started(r: &Run) -> Vec<String> {
    r.events()
        .iter()
        .filter(|e| e["event"] == "started")
        .map(|e| e["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn image_id(t: &TestRoot, image: &str) -> String {
    let out = t.xbuild(&["inspect", image]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v[0]["Id"].as_str().unwrap().to_string()
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The cache index and config of a local cache export.
fn local_cache(dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let layout = json_file(&dir.join("index.json"));
    let d = layout["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(
        layout["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let index = json_file(&blob(dir, d));
    let config = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mediaType"] == "application/vnd.buildkit.cacheconfig.v0")
        .expect("the index lists a cache config");
    let config = json_file(&blob(dir, config["digest"].as_str().unwrap()));
    (index, config)
}

fn blob(dir: &Path, digest: &str) -> std::path::PathBuf {
    dir.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// The layer blobs a cache config lists.
fn config_layers(config: &serde_json::Value) -> BTreeSet<String> {
    config["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["blob"].as_str().unwrap().to_string())
        .collect()
}

/// The paths a gzip layer blob holds.
fn layer_paths(path: &Path) -> Vec<String> {
    let mut gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap());
    let mut raw = Vec::new();
    gz.read_to_end(&mut raw).unwrap();
    let mut ar = tar::Archive::new(raw.as_slice());
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

const MULTI_STAGE: &str = "FROM busybox:local AS builder\nRUN echo built > /artifact && cat /proc/sys/kernel/random/uuid > /builder-stamp\n\nFROM busybox:local\nCOPY --from=builder /artifact /artifact\nCOPY app.txt /app.txt\nRUN cat /artifact /app.txt > /out && cat /proc/sys/kernel/random/uuid > /stamp\n";

#[test]
fn registry_cache_max_on_a_fresh_root_runs_nothing() {
    let reg = LocalRegistry::start(None);
    let cache = format!("{}/cache:max", reg.host());
    let a = busybox_root();
    let cfg = docker_config(&a);
    let ctx = a.context("app", &[("Dockerfile", MULTI_STAGE), ("app.txt", "app\n")]);
    let first = build(
        &a,
        &cfg,
        &ctx,
        &[
            "-t",
            "app:1",
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
        ],
    )
    .ok();
    assert!(started(&first).len() >= 4, "{}", first.stderr);
    assert!(
        first.stderr.contains(&format!("cache exported to {cache}")),
        "{}",
        first.stderr
    );
    let stamp = a.export("app:1").text("stamp");
    let id_a = image_id(&a, "app:1");

    // skopeo sees an OCI index listing the layers and BuildKit's cache config.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{cache}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert!(
        manifests
            .iter()
            .any(|m| m["mediaType"] == "application/vnd.buildkit.cacheconfig.v0")
    );
    assert!(
        manifests
            .iter()
            .filter(|m| m["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip")
            .all(|m| m["annotations"]["containerd.io/uncompressed"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))),
        "{index}"
    );

    // A second export uploads no layer the registry has: only the cache config, whose
    // records carry this build's times.
    let uploads = reg.uploads();
    build(
        &a,
        &cfg,
        &ctx,
        &["--cache-to", &format!("type=registry,ref={cache},mode=max")],
    )
    .ok();
    assert!(
        reg.uploads() <= uploads + 1,
        "a second export uploaded layers"
    );
    a.finish();

    // A fresh root imports it: every vertex is cached, no RUN runs, and the image is A's.
    let b = busybox_root();
    let cfg_b = docker_config(&b);
    let ctx_b = b.context("app", &[("Dockerfile", MULTI_STAGE), ("app.txt", "app\n")]);
    let second = build(&b, &cfg_b, &ctx_b, &["-t", "app:1", "--cache-from", &cache]).ok();
    assert_eq!(started(&second), Vec::<String>::new(), "{}", second.stderr);
    assert!(second.count("cached") >= 5, "{}", second.stderr);
    assert!(
        second.stderr.contains("0 step(s) executed, 4 cached"),
        "{}",
        second.stderr
    );
    assert_eq!(b.export("app:1").text("stamp"), stamp, "the RUN ran again");
    assert_eq!(
        image_id(&b, "app:1"),
        id_a,
        "the image built from the imported cache differs from A's"
    );
    b.finish();
}

#[test]
fn local_cache_min_carries_only_the_final_stage_and_max_everything() {
    let a = busybox_root();
    let ctx = a.context("app", &[("Dockerfile", MULTI_STAGE), ("app.txt", "app\n")]);
    let (min, max) = (a.path("cache-min"), a.path("cache-max"));
    a.build(
        &ctx,
        &[
            "-t",
            "app:1",
            "--cache-to",
            &format!("type=local,dest={}", min.display()),
            "--cache-to",
            &format!("type=local,dest={},mode=max", max.display()),
        ],
    )
    .ok();
    let (_, min_config) = local_cache(&min);
    let (max_index, max_config) = local_cache(&max);
    assert_eq!(
        max_index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    // The builder stage's RUN layer: in the max export, holding /builder-stamp.
    let builder_layer: Vec<String> = config_layers(&max_config)
        .into_iter()
        .filter(|d| {
            layer_paths(&blob(&max, d))
                .iter()
                .any(|p| p == "builder-stamp")
        })
        .collect();
    assert_eq!(builder_layer.len(), 1, "{max_config}");
    let builder_layer = &builder_layer[0];
    assert!(
        !config_layers(&min_config).contains(builder_layer),
        "mode=min exported the intermediate stage's layer"
    );
    assert!(
        !blob(&min, builder_layer).exists(),
        "mode=min wrote the intermediate stage's blob"
    );
    // mode=min holds exactly the final image's layers.
    let out = a.xbuild(&["inspect", "app:1"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let m = v[0]["Descriptor"]["digest"].as_str().unwrap();
    let manifest = json_file(&blob(&a.root(), m));
    let image_layers: BTreeSet<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(config_layers(&min_config), image_layers);
    assert_eq!(min_config["records"].as_array().unwrap().len(), 4);

    // A fresh root with the max cache runs nothing; with the min cache only the builder stage.
    let b = busybox_root();
    let ctx_b = b.context("app", &[("Dockerfile", MULTI_STAGE), ("app.txt", "app\n")]);
    let r = b
        .build(
            &ctx_b,
            &["--cache-from", &format!("type=local,src={}", max.display())],
        )
        .ok();
    assert_eq!(started(&r), Vec::<String>::new(), "{}", r.stderr);
    b.finish();
    let c = busybox_root();
    let ctx_c = c.context("app", &[("Dockerfile", MULTI_STAGE), ("app.txt", "app\n")]);
    let r = c
        .build(
            &ctx_c,
            &["--cache-from", &format!("type=local,src={}", min.display())],
        )
        .ok();
    let ran = started(&r);
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert!(ran[0].contains("builder-stamp"), "{ran:?}");
    c.finish();

    // Specs are checked before anything runs.
    let bad = a.build(&ctx, &["--cache-to", "type=s3,ref=x"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("--cache-to") && bad.stderr.contains("type=s3 is not supported"),
        "{}",
        bad.stderr
    );
    a.finish();
}

#[test]
fn inline_cache_round_trip_with_push() {
    let reg = LocalRegistry::start(None);
    let image = format!("{}/app:inline", reg.host());
    let dockerfile = "FROM busybox:local\nCOPY app.txt /app.txt\nRUN cat /app.txt > /out && cat /proc/sys/kernel/random/uuid > /stamp\n";
    let a = busybox_root();
    let cfg = docker_config(&a);
    let ctx = a.context("app", &[("Dockerfile", dockerfile), ("app.txt", "app\n")]);
    // Without a push there is nowhere to put an inline cache: a warning, as BuildKit gives.
    let local = build(&a, &cfg, &ctx, &["--cache-to", "type=inline"]).ok();
    assert!(
        local.stderr.contains("embedded only in a pushed image"),
        "{}",
        local.stderr
    );
    build(
        &a,
        &cfg,
        &ctx,
        &["-t", &image, "--push", "--cache-to", "type=inline"],
    )
    .ok();
    // skopeo's parsed --config drops keys the OCI spec does not name; read the raw config.
    let out = Command::new("skopeo")
        .args(["inspect", "--config", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(seen["moby.buildkit.cache.v0"].as_str().is_some(), "{seen}");
    assert_eq!(
        skopeo_inspect(&image, &[])["Layers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    a.finish();

    let b = busybox_root();
    let cfg_b = docker_config(&b);
    let ctx_b = b.context("app", &[("Dockerfile", dockerfile), ("app.txt", "app\n")]);
    let r = build(&b, &cfg_b, &ctx_b, &["-t", "app:1", "--cache-from", &image]).ok();
    assert_eq!(started(&r), Vec::<String>::new(), "{}", r.stderr);
    b.finish();
}

#[test]
fn cache_mounts_travel_with_export_mounts() {
    let dockerfile = "FROM busybox:local\nARG N=1\nRUN --mount=type=cache,target=/cache,id=log echo run-$N >> /cache/log && cp /cache/log /seen\n";
    let a = busybox_root();
    let ctx = a.context("app", &[("Dockerfile", dockerfile)]);
    // Outside A's directory, which `finish` deletes.
    let caches = tempfile::tempdir().unwrap();
    let dest = caches.path().join("cache");
    a.build(
        &ctx,
        &[
            "--cache-to",
            &format!("type=local,dest={},export-mounts=true", dest.display()),
        ],
    )
    .ok();
    let (index, _) = local_cache(&dest);
    assert!(
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["annotations"]["dev.xbuild.cache-mount.id"] == "log"),
        "{index}"
    );
    a.finish();

    // On a fresh root the step reruns (N changed) and sees what A left in the cache mount.
    let b = busybox_root();
    let ctx_b = b.context("app", &[("Dockerfile", dockerfile)]);
    let r = b
        .build(
            &ctx_b,
            &[
                "-t",
                "app:2",
                "--build-arg",
                "N=2",
                "--cache-from",
                &format!("type=local,src={}", dest.display()),
            ],
        )
        .ok();
    assert_eq!(started(&r).len(), 1, "{}", r.stderr);
    assert_eq!(b.export("app:2").text("seen"), "run-1\nrun-2\n");
    b.finish();
}

#[test]
fn corrupt_cache_blob_fails_naming_it_and_stores_nothing() {
    let dockerfile = "FROM busybox:local\nRUN echo hello > /hello\n";
    let a = busybox_root();
    let ctx = a.context("app", &[("Dockerfile", dockerfile)]);
    // Outside A's directory, which `finish` deletes.
    let caches = tempfile::tempdir().unwrap();
    let dest = caches.path().join("cache");
    a.build(
        &ctx,
        &["--cache-to", &format!("type=local,dest={}", dest.display())],
    )
    .ok();
    a.finish();
    let (_, config) = local_cache(&dest);
    let top = config["layers"].as_array().unwrap().last().unwrap()["blob"]
        .as_str()
        .unwrap()
        .to_string();
    let path = blob(&dest, &top);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    std::fs::write(&path, vec![b'x'; len]).unwrap();

    // BuildKit's behaviour: a cache blob that fails verification fails the build.
    let b = busybox_root();
    let ctx_b = b.context("app", &[("Dockerfile", dockerfile)]);
    let r = b.build(
        &ctx_b,
        &[
            "--cache-from",
            &format!("type=local,src={}", dest.display()),
        ],
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("importing cache from") && r.stderr.contains(&top),
        "{}",
        r.stderr
    );
    assert!(
        !blob(&b.root(), &top).exists(),
        "the corrupt blob was stored"
    );
    let tmp = b.root().join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0),
        0,
        "partial files left in {}",
        tmp.display()
    );
    b.finish();
}

#[test]
fn pulled_zstd_layers_unpack_in_the_solver() {
    let reg = LocalRegistry::start(None);
    let base = format!("{}/zbase:1", reg.host());
    let a = TestRoot::with_busybox();
    let cfg = docker_config(&a);
    let ctx = a.context(
        "base",
        &[("Dockerfile", "FROM busybox:local\nRUN echo z > /z\n")],
    );
    build(
        &a,
        &cfg,
        &ctx,
        &[
            "-t",
            &base,
            "--output",
            "type=image,push=true,compression=zstd",
        ],
    )
    .ok();
    a.finish();
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{base}"))
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"),
        "{manifest}"
    );

    // A fresh root pulls it; the solver unpacks the zstd layer for the RUN on top.
    let b = TestRoot::new();
    let cfg_b = docker_config(&b);
    let ctx_b = b.context(
        "app",
        &[("Dockerfile", &format!("FROM {base}\nRUN cat /z > /y\n"))],
    );
    build(&b, &cfg_b, &ctx_b, &["-t", "app:1"]).ok();
    assert_eq!(b.export("app:1").text("y"), "z\n");
    b.finish();
}
