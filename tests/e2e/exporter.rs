//! The exporter and the local image store, checked with the real tools: skopeo, umoci and a
//! Docker engine (`scripts/test` starts one when none runs).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{Run, TestRoot, rootfs_tar};

/// Runs a tool and returns its output, failing the test with its stderr when it fails.
fn tool(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A name no other test (or contributor) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Docker images a test made, removed when it ends (pass or fail).
struct DockerImages(Vec<String>);

impl DockerImages {
    fn new() -> Self {
        let info = Command::new("/usr/bin/docker").arg("info").output();
        assert!(
            info.is_ok_and(|o| o.status.success()),
            "a Docker engine must answer `docker info` (scripts/test installs docker.io and starts dockerd)"
        );
        DockerImages(vec![])
    }

    fn docker(&mut self, args: &[&str]) -> String {
        stdout(&tool("/usr/bin/docker", args))
    }
}

impl Drop for DockerImages {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = Command::new("/usr/bin/docker")
                .args(["rmi", "-f", i])
                .output();
        }
    }
}

/// Runs xbuild on `t`'s root with extra environment variables.
fn xbuild_env(t: &TestRoot, env: &[(&str, &str)], args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run xbuild");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What a file of an unpacked tree is, for comparing two trees.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    mtime: Option<i64>,
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
}

fn tree(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let md = p.symlink_metadata().unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.insert(
                rel,
                Node {
                    kind: md.mode() & 0o170000,
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    rdev: md.rdev(),
                    mtime: md.is_file().then(|| md.mtime()),
                    content: md.is_file().then(|| std::fs::read(&p).unwrap()),
                    link: md
                        .file_type()
                        .is_symlink()
                        .then(|| std::fs::read_link(&p).unwrap()),
                },
            );
            if md.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The entry names of a (possibly gzip or zstd) layer blob, listed by `tar`.
fn layer_names(blob: &Path) -> Vec<String> {
    let out = tool("tar", &["-tf", blob.to_str().unwrap(), "--auto-compress"]);
    stdout(&out).lines().map(str::to_string).collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn docker_loads_and_runs_what_xbuild_writes() {
    let mut docker = DockerImages::new();
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nENV WHO=docker\nRUN echo \"hello from xbuild, $WHO\" > /greeting && rm /etc/group\nCMD [\"cat\", \"/greeting\"]\n",
        )],
    );
    let archived = unique("xbuild-e2e-archive") + ":1";
    let stored = unique("xbuild-e2e-saved") + ":2";
    docker.0.extend([archived.clone(), stored.clone()]);
    let dest = t.path("image.tar");
    let spec = format!("type=docker,dest={},name={archived}", dest.display());
    t.build(&ctx, &["-t", &stored, "-o", &spec, "-o", "type=image"])
        .ok();
    let loaded = docker.docker(&["load", "-i", dest.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {archived}")),
        "{loaded}"
    );
    let ran = docker.docker(&["run", "--rm", "--network=none", &archived]);
    assert_eq!(ran, "hello from xbuild, docker\n");
    let etc = docker.docker(&["run", "--rm", "--network=none", &archived, "ls", "/etc"]);
    assert!(
        etc.lines().any(|l| l == "passwd") && !etc.lines().any(|l| l == "group"),
        "the whiteout of /etc/group must hide it: {etc}"
    );
    // `xbuild save` of the stored image loads and runs the same.
    let saved = t.path("saved.tar");
    t.xbuild(&["save", &stored, "-o", saved.to_str().unwrap()])
        .ok();
    let loaded = docker.docker(&["load", "-i", saved.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {stored}")),
        "{loaded}"
    );
    assert_eq!(
        docker.docker(&["run", "--rm", "--network=none", &stored]),
        "hello from xbuild, docker\n"
    );
    let docker_id = docker.docker(&["image", "inspect", "--format", "{{.Id}}", &stored]);
    let xbuild_id = t
        .xbuild(&["inspect", &stored, "--format", "{{.Id}}"])
        .ok()
        .stdout;
    assert_eq!(
        docker_id.trim(),
        xbuild_id.trim(),
        "the image ID is the config digest"
    );
    t.finish();
}

#[test]
fn oci_layout_passes_skopeo_and_umoci_unpacks_what_type_local_writes() {
    let t = TestRoot::with_busybox();
    let long = format!("{}/{}", "d".repeat(60), "e".repeat(60));
    let dockerfile = format!(
        "FROM busybox:local
RUN mkdir -p /data/old /keep && echo old > /data/old/f && echo top > /data/top && echo gone > /keep/gone && echo stay > /keep/stay
RUN rm /keep/gone && rm -rf /data && mkdir -p /data/new && echo new > /data/new/f \\
 && echo hi > /hl1 && ln /hl1 /hl2 && ln -s /hl1 /sym && mkfifo /fifo \\
 && mkdir -p /long/{long} && echo deep > /long/{long}/file-with-a-long-name \\
 && echo suid > /suid && chown 1000:1000 /suid && chmod 4755 /suid
RUN true
COPY f.txt /copied
CMD [\"sh\"]
"
    );
    let ctx = t.context("ctx", &[("Dockerfile", &dockerfile), ("f.txt", "copied\n")]);
    let layout = t.path("layout");
    let local = t.path("local");
    let flat = t.path("flat.tar");
    let oci = format!("type=oci,dest={},tar=false", layout.display());
    let loc = format!("type=local,dest={}", local.display());
    let tar = format!("type=tar,dest={}", flat.display());
    t.build(&ctx, &["-t", "umoci:1", "-o", &oci, "-o", &loc, "-o", &tar])
        .ok();

    let raw = stdout(&tool(
        "skopeo",
        &["inspect", "--raw", &format!("oci:{}:1", layout.display())],
    ));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        5,
        "busybox, three RUNs (RUN true makes an empty layer, as in BuildKit) and a COPY: {raw}"
    );
    let blob = |i: usize| {
        layout.join("blobs/sha256").join(
            layers[i]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        )
    };
    let second = layer_names(&blob(2));
    for want in ["keep/.wh.gone", "data/.wh..wh..opq", "hl2", "fifo"] {
        assert!(second.iter().any(|n| n == want), "{want} not in {second:?}");
    }
    assert!(second.iter().any(|n| n.ends_with("file-with-a-long-name")));
    let docker_archive = t.path("skopeo.tar");
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:1", layout.display()),
            &format!("docker-archive:{}:copied:1", docker_archive.display()),
        ],
    );
    assert!(docker_archive.metadata().unwrap().len() > 1_000_000);

    let bundle = t.path("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let from_umoci = tree(&bundle.join("rootfs"));
    let from_local = tree(&local);
    let umoci_only: Vec<&String> = from_umoci
        .keys()
        .filter(|k| !from_local.contains_key(*k))
        .collect();
    let local_only: Vec<&String> = from_local
        .keys()
        .filter(|k| !from_umoci.contains_key(*k))
        .collect();
    assert!(
        umoci_only.is_empty() && local_only.is_empty(),
        "only in umoci's: {umoci_only:?}; only in type=local: {local_only:?}"
    );
    for (k, v) in &from_umoci {
        assert_eq!(Some(v), from_local.get(k), "{k} differs");
    }
    let flat_names: std::collections::BTreeSet<String> = layer_names(&flat)
        .into_iter()
        .map(|n| n.trim_end_matches('/').to_string())
        .collect();
    let local_names: std::collections::BTreeSet<String> = from_local.keys().cloned().collect();
    assert_eq!(
        flat_names, local_names,
        "type=tar and type=local hold the same files"
    );
    assert!(!from_local.contains_key("keep/gone"), "whiteout ignored");
    assert!(from_local.contains_key("keep/stay"));
    assert!(
        !from_local.contains_key("data/old") && !from_local.contains_key("data/top"),
        "opaque directory ignored"
    );
    assert_eq!(
        from_local["data/new/f"].content.as_deref(),
        Some(&b"new\n"[..])
    );
    assert_eq!(
        (from_local["suid"].mode, from_local["suid"].uid),
        (0o4755, 1000)
    );
    assert_eq!(from_local["fifo"].kind, 0o010000);
    assert_eq!(from_local["sym"].link.as_deref(), Some(Path::new("/hl1")));
    for root in [&local, &bundle.join("rootfs")] {
        let (a, b) = (
            root.join("hl1").metadata().unwrap(),
            root.join("hl2").metadata().unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "hardlink lost in {}", root.display());
    }
    t.finish();
}

#[test]
fn source_date_epoch_gives_the_same_image_in_two_roots() {
    let mut layouts = Vec::new();
    let mut ids = Vec::new();
    for (i, mtime) in ["@1000", "@2000"].into_iter().enumerate() {
        let t = TestRoot::new();
        let epoch = [("SOURCE_DATE_EPOCH", "0")];
        let tar = rootfs_tar();
        xbuild_env(
            &t,
            &epoch,
            &["import", tar.to_str().unwrap(), "busybox:local"],
        )
        .ok();
        let ctx = t.context(
            &format!("context-{i}"),
            &[
                (
                    "Dockerfile",
                    "FROM busybox:local\nENV A=1\nRUN echo built > /built && mkdir /made\nCOPY f.txt /f.txt\nCMD [\"cat\", \"/built\"]\n",
                ),
                ("f.txt", "same\n"),
            ],
        );
        // Different file times in the two contexts: only the epoch makes the layers equal.
        tool("touch", &["-d", mtime, ctx.join("f.txt").to_str().unwrap()]);
        let out = t.path("image.tar");
        let spec = format!("type=oci,dest={}", out.display());
        let r = xbuild_env(
            &t,
            &epoch,
            &[
                "build",
                "--progress=quiet",
                "-t",
                "repro:1",
                "-o",
                &spec,
                "-o",
                "type=image",
                ctx.to_str().unwrap(),
            ],
        )
        .ok();
        ids.push(r.stdout.trim().to_string());
        layouts.push(std::fs::read(&out).unwrap());
        let cfg = t
            .xbuild(&[
                "inspect",
                "--raw",
                "repro:1",
                "--format",
                "{{json .Config}}",
            ])
            .ok()
            .stdout;
        let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");
        for h in cfg["history"].as_array().unwrap() {
            assert_eq!(h["created"], "1970-01-01T00:00:00Z", "{h}");
        }
        let export = t.path("export");
        std::fs::create_dir_all(&export).unwrap();
        tool(
            "tar",
            &["-xf", out.to_str().unwrap(), "-C", export.to_str().unwrap()],
        );
        let index = json(&export.join("index.json"));
        let m = json(
            &export.join("blobs/sha256").join(
                index["manifests"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:"),
            ),
        );
        let last = m["layers"].as_array().unwrap().last().unwrap()["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        let listing = stdout(&tool(
            "tar",
            &[
                "--full-time",
                "-tvzf",
                export.join("blobs/sha256").join(last).to_str().unwrap(),
            ],
        ));
        assert!(listing.contains("1970-01-01 00:00:00 f.txt"), "{listing}");
        t.finish();
    }
    assert_eq!(ids[0], ids[1], "the image IDs differ");
    assert!(
        layouts[0] == layouts[1],
        "the two OCI layouts differ byte for byte"
    );
}

#[test]
fn gzip_import_zstd_and_uncompressed_outputs_round_trip() {
    let t = TestRoot::new();
    let gz = t.path("rootfs.tar.gz");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            rootfs_tar().display(),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(out.success());
    let id = t
        .xbuild(&["import", gz.to_str().unwrap(), "bb:gz"])
        .ok()
        .stdout;
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM bb:gz\nRUN echo z > /z\nCMD [\"cat\", \"/z\"]\n",
        )],
    );
    let (z, u) = (t.path("z.tar"), t.path("u.tar"));
    t.build(
        &ctx,
        &[
            "-o",
            &format!("type=oci,dest={},name=zimg:1,compression=zstd", z.display()),
            "-o",
            &format!(
                "type=oci,dest={},name=uimg:1,compression=uncompressed",
                u.display()
            ),
        ],
    )
    .ok();
    for (archive, media) in [
        (&z, "application/vnd.oci.image.layer.v1.tar+zstd"),
        (&u, "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let raw = stdout(&tool(
            "skopeo",
            &[
                "inspect",
                "--raw",
                &format!("oci-archive:{}", archive.display()),
            ],
        ));
        let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(layers[1]["mediaType"], media, "{raw}");
    }
    // A fresh root loads the zstd image and builds on it.
    let t2 = TestRoot::new();
    let loaded = t2.xbuild(&["load", "-i", z.to_str().unwrap()]).ok().stdout;
    assert_eq!(loaded, "Loaded image: zimg:1\n");
    let ctx2 = t2.context("ctx", &[("Dockerfile", "FROM zimg:1\nRUN cat /z > /z2\n")]);
    t2.build(&ctx2, &["-t", "on-zstd:1"]).ok();
    assert_eq!(t2.export("on-zstd:1").text("z2"), "z\n");
    let bad = t2.xbuild(&["load", "-i", ctx2.join("Dockerfile").to_str().unwrap()]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("Dockerfile"), "{}", bad.stderr);
    t2.finish();
    t.finish();
}

fn lines(r: &Run) -> Vec<String> {
    r.stdout.lines().map(str::to_string).collect()
}

#[test]
fn image_commands_behave_like_dockers() {
    let mut docker = DockerImages::new();
    let t = TestRoot::new();
    // Creation times are set with SOURCE_DATE_EPOCH, so before/since do not depend on timing.
    let tar = rootfs_tar();
    xbuild_env(
        &t,
        &[("SOURCE_DATE_EPOCH", "50")],
        &["import", tar.to_str().unwrap(), "busybox:local"],
    )
    .ok();
    let build = |v: &str| {
        let ctx = t.context(
            &format!("ctx{v}"),
            &[(
                "Dockerfile",
                &format!(
                    "FROM busybox:local\nRUN echo {v} > /v && rm /etc/group\nCMD [\"cat\", \"/v\"]\n"
                ),
            )],
        );
        let epoch = format!("{v}00");
        xbuild_env(
            &t,
            &[("SOURCE_DATE_EPOCH", &epoch)],
            &[
                "build",
                "--progress=quiet",
                "-t",
                "app:1",
                ctx.to_str().unwrap(),
            ],
        )
        .ok()
        .stdout
        .trim()
        .to_string()
    };
    let old = build("1");
    let new = build("2");
    let short = |id: &str| id["sha256:".len().."sha256:".len() + 12].to_string();

    // The moved tag leaves the old image untagged.
    let rows = lines(&t.xbuild(&["images"]).ok());
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>()[..3],
        ["REPOSITORY", "TAG", "IMAGE"]
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("app ") && r.contains(&short(&new)))
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("<none> ") && r.contains(&short(&old)))
    );
    let q = |args: &[&str]| lines(&t.xbuild(&[&["images"], args].concat()).ok());
    assert_eq!(q(&["-q", "--filter", "dangling=true"]), [short(&old)]);
    assert_eq!(q(&["-q", "app"]), [short(&new)]);
    assert_eq!(q(&["-q", "--filter", "reference=bus*:loc*"]).len(), 1);
    assert_eq!(
        q(&[
            "--filter",
            "since=busybox:local",
            "--format",
            "{{.Repository}}:{{.Tag}}"
        ]),
        ["app:1", "<none>:<none>"]
    );
    assert_eq!(
        q(&["--filter", "before=app:1", "--format", "{{.Repository}}"]).len(),
        2
    );
    let digests = q(&["--digests"]);
    assert!(
        digests[0].contains("DIGEST") && digests[1].contains("sha256:"),
        "{digests:?}"
    );
    let table = q(&["--format", "table {{.ID}}\t{{.Tag}}", "app"]);
    assert_eq!(
        table,
        ["IMAGE ID       TAG", &format!("{}   1", short(&new))]
    );
    let js: serde_json::Value = serde_json::from_str(&q(&["--format", "json", "app"])[0]).unwrap();
    assert_eq!(
        (js["Repository"].as_str(), js["Tag"].as_str()),
        (Some("app"), Some("1"))
    );
    assert!(js["Size"].as_str().unwrap().ends_with("MB"), "{js}");
    let bad = t.xbuild(&["images", "--filter", "colour=red"]);
    assert_eq!(bad.code, 2, "a usage error");
    assert!(bad.stderr.contains("invalid filter"), "{}", bad.stderr);

    // tag, rmi.
    t.xbuild(&["tag", &short(&new), "other:7"]).ok();
    assert_eq!(
        lines(&t.xbuild(&["rmi", "other:7"]).ok()),
        ["Untagged: other:7"]
    );
    let gone = t.xbuild(&["rmi", &short(&old)]).ok();
    assert_eq!(lines(&gone), [format!("Deleted: {old}")]);
    let missing = t.xbuild(&["rmi", "nope:1"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("No such image: nope:1"),
        "{}",
        missing.stderr
    );

    // history, inspect, diff.
    let h = lines(&t.xbuild(&["history", "app:1"]).ok());
    assert!(
        h[0].starts_with("IMAGE") && h[0].contains("CREATED BY"),
        "{h:?}"
    );
    assert!(
        h[1].starts_with(&short(&new)) && h[1].contains("CMD [\"cat\" \"/v\"]"),
        "{h:?}"
    );
    assert!(
        h[2].starts_with("<missing>") && h[2].contains("RUN /bin/sh -c echo 2"),
        "{h:?}"
    );
    assert!(h[2].contains(" 2B "), "the RUN layer holds 2 bytes: {h:?}");
    let cmd = t
        .xbuild(&["inspect", "app:1", "--format", "{{json .Config.Cmd}}"])
        .ok()
        .stdout;
    assert_eq!(cmd.trim(), r#"["cat","/v"]"#);
    let diff = lines(&t.xbuild(&["diff", "busybox:local", "app:1"]).ok());
    assert_eq!(diff, ["C /etc", "D /etc/group", "A /v"]);

    // save (OCI) and load into another root.
    let saved = t.path("app-oci.tar");
    t.xbuild(&[
        "save",
        "--format",
        "oci",
        "app:1",
        "-o",
        saved.to_str().unwrap(),
    ])
    .ok();
    let t2 = TestRoot::new();
    assert_eq!(
        t2.xbuild(&["load", "-i", saved.to_str().unwrap()])
            .ok()
            .stdout,
        "Loaded image: app:1\n"
    );
    assert_eq!(t2.export("app:1").text("v"), "2\n");
    t2.finish();

    // A real `docker save` (Docker's own layout) with labels loads, and label filters see it.
    let base = unique("xbuild-e2e-base");
    let labeled = unique("xbuild-e2e-labeled");
    docker
        .0
        .extend([format!("{base}:1"), format!("{labeled}:1")]);
    let bb = t.path("bb.tar");
    t.xbuild(&["tag", "busybox:local", &format!("{base}:1")])
        .ok();
    t.xbuild(&["save", &format!("{base}:1"), "-o", bb.to_str().unwrap()])
        .ok();
    docker.docker(&["load", "-i", bb.to_str().unwrap()]);
    let dctx = t.context(
        "docker-ctx",
        &[(
            "Dockerfile",
            &format!("FROM {base}:1\nLABEL team=build tier=\"one two\"\nRUN echo d > /d\n"),
        )],
    );
    let built = Command::new("/usr/bin/docker")
        .args(["build", "--network=none", "-t", &format!("{labeled}:1")])
        .arg(&dctx)
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let dsave = t.path("docker-save.tar");
    docker.docker(&[
        "save",
        "-o",
        dsave.to_str().unwrap(),
        &format!("{labeled}:1"),
    ]);
    assert_eq!(
        t.xbuild(&["load", "-i", dsave.to_str().unwrap()])
            .ok()
            .stdout,
        format!("Loaded image: {labeled}:1\n")
    );
    assert_eq!(
        q(&[
            "--filter",
            "label=team=build",
            "--format",
            "{{.Repository}}"
        ]),
        std::slice::from_ref(&labeled)
    );
    assert_eq!(q(&["-q", "--filter", "label=tier=one two"]).len(), 1);
    assert!(q(&["-q", "--filter", "label=team=other"]).is_empty());
    assert_eq!(t.export(&format!("{labeled}:1")).text("d"), "d\n");

    // prune: nothing without confirmation, dangling ones with -f, everything with -a.
    t.xbuild(&["tag", "app:1", "spare:1"]).ok();
    build("3");
    build("4");
    assert_eq!(q(&["-q", "--filter", "dangling=true"]).len(), 1);
    let asked = t.xbuild(&["image", "prune"]).ok();
    assert!(asked.stderr.contains("Are you sure"), "{}", asked.stderr);
    assert_eq!(q(&["-q", "--filter", "dangling=true"]).len(), 1);
    let pruned = t.xbuild(&["image", "prune", "-f"]).ok().stdout;
    assert!(
        pruned.contains("deleted: sha256:") && pruned.contains("Total reclaimed space"),
        "{pruned}"
    );
    assert!(q(&["-q", "--filter", "dangling=true"]).is_empty());
    assert!(
        q(&["-q", "spare"]).len() == 1,
        "a tagged image survives a plain prune"
    );
    let all = t.xbuild(&["image", "prune", "-a", "-f"]).ok().stdout;
    assert!(all.contains("untagged: spare:1"), "{all}");
    assert!(q(&["-q"]).is_empty());
    let blobs = std::fs::read_dir(t.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "prune -a leaves no blob behind");
    t.finish();
}

/// Issue 16 #9: `COPY --link` made history entries that did not match the layers (the base
/// image was lost under the merge, its layers counted as this build's).
#[test]
fn copy_link_history_matches_the_layers() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "link",
        &[
            ("a", "hi\n"),
            (
                "Dockerfile",
                "FROM busybox:local\nRUN echo 1 > /one\nCOPY --link a /a\nRUN echo 2 > /two\nCOPY --link a /b\n",
            ),
        ],
    );
    let run = t.build(&ctx, &["-t", "link:1"]).ok();
    assert!(
        !run.stderr.contains("do not match"),
        "history and layers disagree:\n{}",
        run.stderr
    );
    let inspect = t.xbuild(&["inspect", "--raw", "link:1"]).ok();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let config = &v[0]["Config"];
    let history = config["history"].as_array().unwrap();
    let with_layer: Vec<&str> = history
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .map(|h| h["created_by"].as_str().unwrap_or(""))
        .collect();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(with_layer.len(), diff_ids.len(), "{history:#?}");
    // The base image's entry comes first, then one entry a step, as without --link.
    assert_eq!(
        &with_layer[with_layer.len() - 4..],
        [
            "RUN /bin/sh -c echo 1 > /one # buildkit",
            "COPY a /a # buildkit",
            "RUN /bin/sh -c echo 2 > /two # buildkit",
            "COPY a /b # buildkit",
        ]
    );
    assert!(
        !with_layer.iter().any(|c| c.contains("created by xbuild")),
        "{with_layer:?}"
    );
    // `history` gives each step its own layer's size: the copies wrote "hi\n".
    let h = t.xbuild(&["history", "link:1"]).ok();
    let copy_b = h.stdout.lines().find(|l| l.contains("COPY a /b")).unwrap();
    assert!(copy_b.contains(" 3B "), "{}", h.stdout);
    t.finish();
}

/// Issue 16 item 12: `xbuild inspect` prints what `docker image inspect` prints for the same
/// image (loaded with `xbuild save` + `docker load`): a JSON array, `Config` holding the
/// container config itself, and `--format` paths such as `{{json .Config.Labels}}` giving the
/// same text; `--raw` keeps the stored manifest and OCI config reachable.
#[test]
fn inspect_config_is_dockers_shape_not_nested_config() {
    let mut docker = DockerImages::new();
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             LABEL org.example.a=\"1\" b=\"two\"\n\
             ENV A=1 B=\"x y\"\n\
             WORKDIR /app\n\
             USER 1000:1000\n\
             EXPOSE 8080/tcp 53/udp\n\
             VOLUME /data\n\
             STOPSIGNAL SIGINT\n\
             HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD true\n\
             ONBUILD RUN echo hi\n\
             SHELL [\"/bin/sh\", \"-c\"]\n\
             MAINTAINER someone\n\
             ENTRYPOINT [\"/bin/sh\"]\n\
             CMD echo hello\n",
        )],
    );
    let tag = unique("xbuild-e2e-inspect") + ":1";
    docker.0.push(tag.clone());
    t.build(&ctx, &["-t", &tag]).ok();
    let saved = t.path("saved.tar");
    t.xbuild(&["save", &tag, "-o", saved.to_str().unwrap()])
        .ok();
    docker.docker(&["load", "-i", saved.to_str().unwrap()]);

    let ours: serde_json::Value =
        serde_json::from_str(&t.xbuild(&["inspect", &tag]).ok().stdout).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(&docker.docker(&["image", "inspect", &tag])).unwrap();
    let (ours, theirs) = (&ours[0], &theirs[0]);
    for field in [
        "Id",
        "RepoTags",
        "Parent",
        "Comment",
        "Created",
        "Container",
        "ContainerConfig",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "RootFS",
        "Size",
        "VirtualSize",
    ] {
        assert_eq!(ours[field], theirs[field], "{field}");
    }
    // Sizes count symlink targets as Docker does, for an image loaded from an archive too.
    let fresh = TestRoot::new();
    fresh.xbuild(&["load", "-i", saved.to_str().unwrap()]).ok();
    let loaded: serde_json::Value =
        serde_json::from_str(&fresh.xbuild(&["inspect", &tag]).ok().stdout).unwrap();
    assert_eq!(loaded[0]["Size"], theirs["Size"], "Size after xbuild load");
    fresh.finish();
    for field in ["Metadata", "RepoDigests"] {
        assert!(ours.get(field).is_some(), "{field} missing: {ours}");
    }
    for format in [
        "{{json .Config.Labels}}",
        "{{.Id}}",
        "{{.Config.Env}}",
        "{{json .Config.Cmd}} {{.Config.WorkingDir}} {{.Config.User}}",
        "{{json .RootFS.Layers}}",
    ] {
        let mine = t.xbuild(&["inspect", &tag, "--format", format]).ok().stdout;
        let docker_says = docker.docker(&["image", "inspect", &tag, "--format", format]);
        assert_eq!(mine, docker_says, "{format}");
    }

    // The stored documents stay reachable.
    let raw: serde_json::Value =
        serde_json::from_str(&t.xbuild(&["inspect", "--raw", &tag]).ok().stdout).unwrap();
    assert_eq!(raw[0]["Config"]["config"]["WorkingDir"], "/app");
    assert_eq!(raw[0]["Manifest"]["schemaVersion"], 2);
    assert_eq!(raw[0]["Digest"], ours["Descriptor"]["digest"]);
    let help = t.xbuild(&["inspect", "--help"]).ok().stdout;
    assert!(help.contains("--raw"), "{help}");
    t.finish();
}
