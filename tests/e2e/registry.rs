//! Pull and push against Debian's `docker-registry` on 127.0.0.1 (a temp storage dir, a free
//! port), checked with skopeo.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run, TestRoot};

/// A running `docker-registry`; killed on drop.
pub(crate) struct LocalRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl LocalRegistry {
    /// Starts a registry; `htpasswd` (user, password) puts it behind basic auth.
    pub(crate) fn start(htpasswd: Option<(&str, &str)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("xbuild-registry-")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("run htpasswd (apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: xbuild-test\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("run docker-registry (Debian package docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        LocalRegistry { child, dir, port }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap()
    }

    /// Blob uploads completed so far (`PUT …/blobs/uploads/…` answered 201).
    pub(crate) fn uploads(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/") && l.contains("\" 201 ")
            })
            .count()
    }

    /// Where the registry keeps a blob's bytes.
    pub(crate) fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Docker config directory of the test's own (so the machine's credentials never leak in).
pub(crate) fn docker_config(t: &TestRoot) -> String {
    let d = t.path("docker-config");
    std::fs::create_dir_all(&d).unwrap();
    d.to_str().unwrap().to_string()
}

fn xb(t: &TestRoot, cfg: &str, args: &[&str]) -> Run {
    t.xbuild_with(&[("DOCKER_CONFIG", cfg)], "", args)
}

pub(crate) fn skopeo_inspect(reference: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn manifest_of(t: &TestRoot, cfg: &str, image: &str) -> String {
    let out = xb(t, cfg, &["inspect", image]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v[0]["Descriptor"]["digest"].as_str().unwrap().to_string()
}

fn layer_digests(t: &TestRoot, image: &str) -> Vec<String> {
    let out = t.xbuild(&["inspect", "--raw", image]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let m = v[0]["Digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.root().join("blobs/sha256").join(m)).unwrap())
            .unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pushed_image_builds_on_a_fresh_root_and_a_second_push_uploads_nothing() {
    let reg = LocalRegistry::start(None);
    let base = format!("{}/base:1", reg.host());
    let a = TestRoot::with_busybox();
    let cfg = docker_config(&a);
    let ctx = a.context(
        "base",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo from-base > /base.txt\n",
        )],
    );
    let run = a
        .xbuild_with(
            &[("DOCKER_CONFIG", cfg.as_str())],
            "",
            &[
                "build",
                "--progress=plain",
                "-t",
                &base,
                "--push",
                ctx.to_str().unwrap(),
            ],
        )
        .ok();
    assert!(run.stderr.contains("3 blob(s) uploaded"), "{}", run.stderr);
    let uploads = reg.uploads();
    assert_eq!(uploads, 3, "config and two layers");

    // skopeo sees exactly what xbuild pushed.
    let pushed = manifest_of(&a, &cfg, &base);
    let seen = skopeo_inspect(&base, &[]);
    assert_eq!(seen["Digest"], pushed.as_str());
    assert_eq!(seen["Layers"].as_array().unwrap().len(), 2);

    // Pushing again uploads nothing.
    let again = xb(&a, &cfg, &["push", &base]).ok();
    assert!(
        again
            .stderr
            .contains("0 blob(s) uploaded, 0 mounted, 3 already present"),
        "{}",
        again.stderr
    );
    assert_eq!(reg.uploads(), uploads, "the second push uploaded a blob");
    a.finish();

    // A fresh root pulls the base and builds on it.
    let b = TestRoot::new();
    let cfg_b = docker_config(&b);
    let ctx = b.context(
        "app",
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN cat /base.txt > /app.txt && echo app >> /app.txt\n"),
        )],
    );
    let app = format!("{}/app:1", reg.host());
    let run = b
        .xbuild_with(
            &[("DOCKER_CONFIG", cfg_b.as_str())],
            "",
            &[
                "build",
                "--progress=plain",
                "-t",
                &app,
                "--output",
                "type=image,push=true",
                ctx.to_str().unwrap(),
            ],
        )
        .ok();
    assert_eq!(b.export(&app).text("app.txt"), "from-base\napp\n");
    // The base's layers were mounted from base's repository; only the config and the new layer
    // were uploaded.
    assert!(
        run.stderr.contains("2 blob(s) uploaded, 2 mounted"),
        "{}",
        run.stderr
    );
    assert!(
        reg.log().contains("mount=sha256"),
        "no cross-repository mount"
    );
    assert_eq!(
        manifest_of(&b, &cfg_b, &base),
        pushed,
        "the pulled base is the pushed one"
    );

    // A cached resolution is reused; --pull resolves again (same digest: nothing to fetch).
    let cached = b.build(&ctx, &["-t", "again:1"]).ok();
    assert_eq!(cached.count("started"), 0, "{}", cached.stderr);
    xb(
        &b,
        &cfg_b,
        &[
            "build",
            "--pull",
            "-q",
            "-t",
            "again:1",
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(
        reg.log().matches("\"GET /v2/base/manifests/1 ").count() >= 2,
        "--pull did not ask the registry again"
    );
    b.finish();
}

#[test]
fn skopeo_copied_images_pull_by_tag_digest_and_platform() {
    let reg = LocalRegistry::start(None);
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "src",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo copied > /copied.txt\n",
        )],
    );
    let layout = t.path("layout");
    t.build(
        &ctx,
        &[
            "-t",
            "src:1",
            "--output",
            &format!("type=oci,dest={}", layout.display()),
        ],
    )
    .ok();
    // Docker schema 2 (skopeo converts), as `docker push` would have made it.
    let copied = format!("{}/copied:v2s2", reg.host());
    let st = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
        ])
        .arg(format!("oci:{}:1", layout.display()))
        .arg(format!("docker://{copied}"))
        .status()
        .unwrap();
    assert!(st.success(), "skopeo copy failed");
    let docker_manifest = skopeo_inspect(&copied, &["--raw"]);
    assert_eq!(
        docker_manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    let fresh = TestRoot::new();
    let cfg_f = docker_config(&fresh);
    let pulled = xb(&fresh, &cfg_f, &["pull", &copied]).ok();
    assert!(
        pulled.stderr.contains("3 blob(s) downloaded"),
        "{}",
        pulled.stderr
    );
    let again = xb(&fresh, &cfg_f, &["pull", &copied]).ok();
    assert!(
        again
            .stderr
            .contains("0 blob(s) downloaded, 3 already present"),
        "{}",
        again.stderr
    );
    let app = fresh.context(
        "app",
        &[(
            "Dockerfile",
            &format!("FROM {copied}\nRUN cat /copied.txt > /out.txt\n"),
        )],
    );
    xb(
        &fresh,
        &cfg_f,
        &["build", "-q", "-t", "out:1", app.to_str().unwrap()],
    )
    .ok();
    assert_eq!(fresh.export("out:1").text("out.txt"), "copied\n");

    // An index: the build platform's manifest is picked; by digest it pulls too.
    let digest = skopeo_inspect(&copied, &[])["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{copied}"))
        .output()
        .unwrap()
        .stdout;
    let index = |platforms: &[(&str, &str)]| {
        let entries: Vec<serde_json::Value> = platforms
            .iter()
            .map(|(os, arch)| {
                serde_json::json!({
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "digest": digest, "size": raw.len(),
                    "platform": {"os": os, "architecture": arch}
                })
            })
            .collect();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": entries
        })
    };
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let index_digest = put_manifest(
        &reg,
        "copied",
        "multi",
        &index(&[("linux", "s390x"), ("linux", host_arch)]),
    );
    put_manifest(
        &reg,
        "copied",
        "other",
        &index(&[("linux", "s390x"), ("windows", "amd64")]),
    );
    let multi = format!("{}/copied:multi", reg.host());
    let m = xb(&fresh, &cfg_f, &["pull", &multi]).ok();
    assert!(
        m.stderr.contains(&digest),
        "picked the host's manifest: {}",
        m.stderr
    );
    let other = xb(
        &fresh,
        &cfg_f,
        &["pull", &format!("{}/copied:other", reg.host())],
    );
    assert_eq!(other.code, 1);
    assert!(
        other.stderr.contains("no image for platform linux/")
            && other.stderr.contains("linux/s390x, windows/amd64"),
        "{}",
        other.stderr
    );
    // By digest (of the index) on another fresh root: pulled over the network, platform picked,
    // then a build resolves it from the store.
    let third = TestRoot::new();
    let cfg_3 = docker_config(&third);
    let by_digest = format!("{}/copied@{index_digest}", reg.host());
    let p = xb(&third, &cfg_3, &["pull", &by_digest]).ok();
    assert!(
        p.stderr.contains(&format!("pulled manifest {digest}")),
        "{}",
        p.stderr
    );
    let d = third.context(
        "bydigest",
        &[("Dockerfile", &format!("FROM {by_digest}\n"))],
    );
    xb(
        &third,
        &cfg_3,
        &["build", "-q", "-t", "bydigest:1", d.to_str().unwrap()],
    )
    .ok();
    assert_eq!(third.export("bydigest:1").text("copied.txt"), "copied\n");
    t.finish();
    fresh.finish();
    third.finish();
}

/// Puts a manifest document into the registry with plain HTTP (what a multi-arch push does);
/// returns its digest.
fn put_manifest(reg: &LocalRegistry, repo: &str, tag: &str, doc: &serde_json::Value) -> String {
    let body = doc.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", reg.port)).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reg.host(),
        doc["mediaType"].as_str().unwrap(),
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    xbuild_llb::Digest::of(body.as_bytes()).to_string()
}

#[test]
fn basic_auth_registry_works_with_docker_config_credentials_only() {
    let reg = LocalRegistry::start(Some(("builder", "s3cret")));
    let t = TestRoot::with_busybox();
    let cfg = docker_config(&t);
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo private > /p.txt\n",
        )],
    );
    let image = format!("{}/private/app:1", reg.host());
    xb(
        &t,
        &cfg,
        &["build", "-q", "-t", &image, ctx.to_str().unwrap()],
    )
    .ok();

    let denied = xb(&t, &cfg, &["push", &image]);
    assert_eq!(denied.code, 1);
    assert!(
        denied.stderr.contains(&format!("{image}: auth:"))
            && denied.stderr.contains("requires authentication")
            && denied
                .stderr
                .contains(&format!("xbuild login {}", reg.host())),
        "{}",
        denied.stderr
    );

    let wrong = t.xbuild_with(
        &[("DOCKER_CONFIG", cfg.as_str())],
        "nope\n",
        &["login", &reg.host(), "-u", "builder", "--password-stdin"],
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("rejected the credentials"),
        "{}",
        wrong.stderr
    );

    t.xbuild_with(
        &[("DOCKER_CONFIG", cfg.as_str())],
        "s3cret\n",
        &["login", &reg.host(), "-u", "builder", "--password-stdin"],
    )
    .ok();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&cfg).join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        written["auths"][reg.host()]["auth"],
        "YnVpbGRlcjpzM2NyZXQ=",
        "base64 of builder:s3cret, as docker login writes it"
    );
    xb(&t, &cfg, &["push", &image]).ok();

    // A fresh root with a hand-written config.json (HOME/.docker) pulls and builds.
    let fresh = TestRoot::new();
    let home = fresh.path("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"YnVpbGRlcjpzM2NyZXQ="}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let app = fresh.context(
        "app",
        &[("Dockerfile", &format!("FROM {image}\nRUN cat /p.txt\n"))],
    );
    fresh
        .xbuild_with(
            &[("HOME", home.to_str().unwrap()), ("DOCKER_CONFIG", "")],
            "",
            &["build", "-q", app.to_str().unwrap()],
        )
        .ok();
    let empty = fresh.path("empty-config");
    std::fs::create_dir_all(&empty).unwrap();
    let no_creds = xb(&fresh, empty.to_str().unwrap(), &["pull", &image]);
    assert_eq!(no_creds.code, 1);
    assert!(
        no_creds.stderr.contains("requires authentication"),
        "{}",
        no_creds.stderr
    );
    t.finish();
    fresh.finish();
}

#[test]
fn corrupt_blob_in_the_registry_fails_the_pull_and_leaves_nothing() {
    let reg = LocalRegistry::start(None);
    let t = TestRoot::with_busybox();
    let cfg = docker_config(&t);
    let ctx = t.context(
        "ctx",
        &[("Dockerfile", "FROM busybox:local\nRUN echo x > /x\n")],
    );
    let image = format!("{}/corrupt:1", reg.host());
    xb(
        &t,
        &cfg,
        &["build", "-q", "-t", &image, "--push", ctx.to_str().unwrap()],
    )
    .ok();
    let layer = layer_digests(&t, &image).pop().unwrap();
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    let fresh = TestRoot::new();
    let cfg_f = docker_config(&fresh);
    let app = fresh.context(
        "app",
        &[("Dockerfile", &format!("FROM {image}\nRUN true\n"))],
    );
    for run in [
        xb(&fresh, &cfg_f, &["pull", &image]),
        xb(&fresh, &cfg_f, &["build", "-q", app.to_str().unwrap()]),
    ] {
        assert_eq!(run.code, 1);
        assert!(
            run.stderr
                .contains(&format!("blob {layer}: digest mismatch")),
            "{}",
            run.stderr
        );
    }
    let hex = layer.strip_prefix("sha256:").unwrap();
    assert!(
        !fresh.root().join("blobs/sha256").join(hex).exists(),
        "the bad blob was stored"
    );
    assert_eq!(
        std::fs::read_dir(fresh.root().join("tmp")).unwrap().count(),
        0,
        "a partial download was left in tmp/"
    );
    assert!(
        fresh
            .xbuild(&["images", "-q"])
            .ok()
            .stdout
            .trim()
            .is_empty(),
        "nothing was tagged"
    );
    t.finish();
    fresh.finish();
}

/// Issue 16 item 10: `FROM name@sha256:…` (and `name:tag@sha256:…`, `COPY --from`,
/// `RUN --mount=from`) resolves from the store when it holds that manifest, pulls by digest
/// otherwise, and a digest nothing has fails naming the reference and the digest.
#[test]
fn from_pinned_digest_resolves_from_store_or_pulls_by_digest() {
    let reg = LocalRegistry::start(None);
    let x = format!("{}/pinned", reg.host());
    let tagged = format!("{x}:1");
    let a = TestRoot::with_busybox();
    let cfg = docker_config(&a);
    let ctx = a.context(
        "base",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo pinned > /pinned.txt\n",
        )],
    );
    xb(
        &a,
        &cfg,
        &[
            "build",
            "-q",
            "-t",
            &tagged,
            "--push",
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let digest = skopeo_inspect(&tagged, &[])["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let pinned = format!("{x}@{digest}");
    let dockerfile = format!(
        "FROM {pinned} AS base\n\
         FROM {x}:ignored@{digest}\n\
         COPY --from={pinned} /pinned.txt /copied.txt\n\
         RUN --mount=from={pinned},target=/m cat /m/pinned.txt > /mounted.txt\n"
    );
    let check = |t: &TestRoot| {
        let tree = t.export("app:1");
        assert_eq!(tree.text("pinned.txt"), "pinned\n");
        assert_eq!(tree.text("copied.txt"), "pinned\n");
        assert_eq!(tree.text("mounted.txt"), "pinned\n");
    };
    let by_digest_gets = || {
        reg.log()
            .matches(&format!("\"GET /v2/pinned/manifests/{digest} "))
            .count()
    };

    // Built and pushed here: the store has the manifest, the registry is not asked.
    let before = by_digest_gets();
    let app = a.context("app", &[("Dockerfile", &dockerfile)]);
    xb(
        &a,
        &cfg,
        &["build", "-q", "-t", "app:1", app.to_str().unwrap()],
    )
    .ok();
    check(&a);
    assert_eq!(by_digest_gets(), before, "built here: no registry query");

    // Pulled by tag first: the build resolves the digest from the store, asking nothing.
    let b = TestRoot::new();
    let cfg_b = docker_config(&b);
    xb(&b, &cfg_b, &["pull", &tagged]).ok();
    let before = by_digest_gets();
    let app = b.context("app", &[("Dockerfile", &dockerfile)]);
    xb(
        &b,
        &cfg_b,
        &["build", "-q", "-t", "app:1", app.to_str().unwrap()],
    )
    .ok();
    check(&b);
    assert_eq!(
        by_digest_gets(),
        before,
        "the store had it: no registry query"
    );
    let inspected = xb(&b, &cfg_b, &["inspect", &pinned]).ok();
    assert!(inspected.stdout.contains(&digest), "{}", inspected.stdout);

    // Nothing pulled first: the build pulls by digest.
    let c = TestRoot::new();
    let cfg_c = docker_config(&c);
    let app = c.context("app", &[("Dockerfile", &dockerfile)]);
    xb(
        &c,
        &cfg_c,
        &["build", "-q", "-t", "app:1", app.to_str().unwrap()],
    )
    .ok();
    check(&c);
    assert!(by_digest_gets() > before, "not pulled by digest");
    // `pull` and `inspect` by digest.
    let d = TestRoot::new();
    let cfg_d = docker_config(&d);
    let p = xb(&d, &cfg_d, &["pull", &pinned]).ok();
    assert!(p.stderr.contains(&digest), "{}", p.stderr);
    xb(&d, &cfg_d, &["inspect", &pinned]).ok();

    // A digest no one has: the error names the reference and the digest.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let bad = c.context("bad", &[("Dockerfile", &format!("FROM {x}@{wrong}\n"))]);
    let run = xb(&c, &cfg_c, &["build", "-q", bad.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{x}@{wrong}")) && run.stderr.contains("manifest unknown"),
        "{}",
        run.stderr
    );
    // A stored manifest that no longer hashes to the pinned digest: refused, naming the
    // reference, the digest pinned and the one the content has.
    let file = b
        .root()
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.push(b'\n');
    std::fs::write(&file, &bytes).unwrap();
    let again = b.context("again", &[("Dockerfile", &dockerfile)]);
    let run = xb(
        &b,
        &cfg_b,
        &["build", "-q", "-t", "app:2", again.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&pinned) && run.stderr.contains("hashes to sha256:"),
        "{}",
        run.stderr
    );
    a.finish();
    b.finish();
    c.finish();
    d.finish();
}
