//! The solver and cache end to end (issue 7): multi-stage builds, what the cache reuses and
//! what it reruns, parallel stages, `--no-cache`, `--target`, a build killed with `kill -9`,
//! concurrent builds on one root, `prune` and `du` while builds run, and `debug graph
//! --explain`.
//!
//! The multi-stage tests (`multi_stage_*`, `independent_stages_*`, `target_*`,
//! `changed_file_in_one_stage_*`) need the parser's multi-stage lowering (`AS`, `COPY --from`,
//! `--target`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run, TestRoot};

/// Names of the vertices that reported `kind` (`started`, `cached`, `waiting`).
fn names(r: &Run, kind: &str) -> Vec<String> {
    r.events()
        .iter()
        .filter(|e| e["event"] == kind)
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Log lines the build's steps printed.
fn logs(r: &Run) -> Vec<String> {
    r.events()
        .iter()
        .filter(|e| e["event"] == "log")
        .map(|e| e["line"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|n| n.contains(needle))
}

/// `xbuild --root ROOT build --progress=json ARGS… CONTEXT`, not waited for, stderr piped.
fn spawn_build(t: &TestRoot, context: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress=json"])
        .args(extra)
        .arg(context)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run xbuild")
}

/// Reads `child`'s JSON progress until a step prints `line`; returns what was read.
fn wait_for_log(child: &mut Child, line: &str) -> Vec<String> {
    let err = child.stderr.take().expect("stderr piped");
    let mut seen = Vec::new();
    for l in BufReader::new(err).lines() {
        let l = l.unwrap();
        let hit = serde_json::from_str::<serde_json::Value>(&l)
            .is_ok_and(|e| e["event"] == "log" && e["line"] == line);
        seen.push(l);
        if hit {
            return seen;
        }
    }
    panic!(
        "the build ended before printing {line:?}:\n{}",
        seen.join("\n")
    );
}

fn processes_with(marker: &str) -> Vec<String> {
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(marker) && !l.contains("ps -eo"))
        .map(str::to_string)
        .collect()
}

#[test]
fn multi_stage_build_with_a_scratch_final_stage_is_exact() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local AS builder\nWORKDIR /src\nCOPY hello.txt .\nRUN mkdir -p /out && tr a-z A-Z < hello.txt > /out/hello && chmod 0751 /out/hello\n\nFROM scratch\nCOPY --from=builder /out/hello /hello\nCMD [\"/hello\"]\n",
            ),
            ("hello.txt", "hello world\n"),
        ],
    );
    t.build(&ctx, &["-t", "ms:1"]).ok();
    let fs = t.export("ms:1");
    let paths: Vec<&String> = fs.0.keys().filter(|p| !p.is_empty()).collect();
    assert_eq!(paths, vec!["hello"], "only the copied file is in the image");
    let hello = fs.get("hello");
    assert_eq!(hello.content, b"HELLO WORLD\n");
    assert_eq!(hello.mode & 0o7777, 0o751);
    assert_eq!((hello.uid, hello.gid), (0, 0));
    assert_eq!(hello.kind, tar::EntryType::Regular);
    // What Docker's BuildKit writes for the same Dockerfile.
    let inspect = t.xbuild(&["inspect", "--raw", "ms:1"]).ok();
    let cfg: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let c = &cfg[0]["Config"];
    assert_eq!(
        c["config"],
        serde_json::json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/hello"],
            "WorkingDir": "/",
            "ArgsEscaped": true,
        })
    );
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    let history = c["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        history[0]["created_by"],
        "COPY /out/hello /hello # buildkit"
    );
    assert_eq!(history[1]["created_by"], "CMD [\"/hello\"]");
    assert_eq!(history[1]["empty_layer"], true);
    assert_eq!(
        (c["os"].as_str(), c["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    t.finish();
}

#[test]
fn cache_follows_exactly_what_each_copy_reads() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY a /a\nRUN cat /a > /a2\nCOPY b /b\nRUN cat /b > /b2\n",
            ),
            ("a", "a1"),
            ("b", "b1"),
            ("unused", "u1"),
        ],
    );
    let first = t.build(&ctx, &["-t", "keys:1"]).ok();
    assert_eq!(names(&first, "started").len(), 5, "{}", first.stderr);

    // Unchanged: every step is reported cached and nothing runs.
    let again = t.build(&ctx, &["-t", "keys:1"]).ok();
    assert!(names(&again, "started").is_empty(), "{}", again.stderr);
    assert_eq!(names(&again, "cached").len(), 5, "{}", again.stderr);
    assert_eq!(first.stdout, again.stdout, "the same image");

    // mtimes do not count, and neither does a file no COPY reads.
    for f in ["a", "b", "unused"] {
        filetime::set_file_mtime(ctx.join(f), filetime::FileTime::from_unix_time(1_000, 0))
            .unwrap();
    }
    std::fs::write(ctx.join("unused"), "u2").unwrap();
    let touched = t.build(&ctx, &["-t", "keys:1"]).ok();
    assert!(names(&touched, "started").is_empty(), "{}", touched.stderr);

    // One changed file reruns its COPY and what follows it, nothing before.
    std::fs::write(ctx.join("b"), "b2").unwrap();
    let changed = t.build(&ctx, &["-t", "keys:1"]).ok();
    let ran = names(&changed, "started");
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(has(&ran, "COPY b /b") && has(&ran, "RUN cat /b"), "{ran:?}");
    let cached = names(&changed, "cached");
    assert!(
        has(&cached, "COPY a /a") && has(&cached, "RUN cat /a"),
        "{cached:?}"
    );
    assert_eq!(t.export("keys:1").text("b2"), "b2");

    // explain says which file it was.
    let e = t.xbuild(&["debug", "graph", "--explain"]).ok().stdout;
    assert!(
        e.lines()
            .any(|l| l.contains("files of COPY") && l.contains("changed b")),
        "{e}"
    );
    assert!(e.contains("CACHED    [2/5] COPY a /a"), "{e}");
    t.finish();
}

/// The COPY layers' diff_ids of `image` (the config's `rootfs.diff_ids`).
fn diff_ids(t: &TestRoot, image: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&t.xbuild(&["inspect", "--raw", image]).ok().stdout)
            .expect("inspect prints JSON");
    v[0]["Config"]["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| d.as_str().unwrap_or_default().to_string())
        .collect()
}

/// (inode, link count) of every `name` file below `<root>/snapshots/*/fs/`.
fn snapshot_inodes(t: &TestRoot, rel: &str) -> Vec<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for e in std::fs::read_dir(t.root().join("snapshots"))
        .unwrap()
        .flatten()
    {
        if let Ok(m) = std::fs::symlink_metadata(e.path().join("fs").join(rel)) {
            out.push((m.ino(), m.nlink()));
        }
    }
    out
}

#[test]
fn a_rerun_copy_links_the_files_that_did_not_change_and_writes_the_same_layer() {
    let t = TestRoot::with_busybox();
    let mut files: Vec<(String, String)> = (0..40)
        .map(|i| (format!("d/f{i:02}"), format!("file {i}\n")))
        .collect();
    files.push(("d/sub/deep".into(), "deep\n".into()));
    files.push((
        "Dockerfile".into(),
        "FROM busybox:local\nCOPY d /src\nCOPY --chmod=640 d /modes\nRUN cat /src/f03 /modes/f04\n"
            .into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let ctx = t.context("ctx", &refs);
    std::os::unix::fs::symlink("f01", ctx.join("d/link")).unwrap();
    // A source is only trusted unchanged by its stamp once its last change is old enough.
    std::thread::sleep(Duration::from_millis(2100));
    t.build(&ctx, &["-t", "reuse:1"]).ok();

    std::fs::write(ctx.join("d/f03"), "changed\n").unwrap();
    filetime::set_file_mtime(
        ctx.join("d/f05"),
        filetime::FileTime::from_unix_time(1_000, 7),
    )
    .unwrap();
    std::fs::remove_file(ctx.join("d/f07")).unwrap();
    std::fs::write(ctx.join("d/new"), "new\n").unwrap();
    let r = t.build(&ctx, &["-t", "reuse:2"]).ok();
    let ran = names(&r, "started");
    assert!(
        has(&ran, "COPY d /src") && has(&ran, "COPY --chmod=640 d /modes"),
        "{ran:?}"
    );
    assert!(has(&logs(&r), "changed"), "{}", r.stderr);

    // Unchanged files are shared by the two runs of each copy; what changed is not.
    for rel in ["src/f01", "src/sub/deep", "modes/f01"] {
        let seen = snapshot_inodes(&t, rel);
        assert_eq!(seen.len(), 2, "{rel}: {seen:?}");
        assert_eq!(seen[0].0, seen[1].0, "{rel} is linked: {seen:?}");
    }
    for rel in ["src/f03", "src/f05", "modes/f03"] {
        let seen = snapshot_inodes(&t, rel);
        assert_eq!(seen.len(), 2, "{rel}: {seen:?}");
        assert_ne!(seen[0].0, seen[1].0, "{rel} changed, so copied: {seen:?}");
    }

    // The image is the one a build from nothing makes, layer for layer.
    let fresh = TestRoot::with_busybox();
    fresh.build(&ctx, &["-t", "reuse:2"]).ok();
    assert_eq!(diff_ids(&t, "reuse:2"), diff_ids(&fresh, "reuse:2"));
    let fs = t.export("reuse:2");
    assert_eq!(fs.text("src/f03"), "changed\n");
    assert_eq!(fs.text("src/new"), "new\n");
    assert!(!fs.has("src/f07") && !fs.has("modes/f07"));
    assert_eq!(fs.get("modes/f01").mode & 0o777, 0o640);
    assert_eq!(fs.get("src/link").link.as_deref(), Some("f01"));
    fresh.finish();
    t.finish();
}

#[test]
fn changed_file_in_one_stage_reruns_only_that_stage_and_its_users() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local AS sa\nCOPY a /a\nRUN cat /a > /a2\n\nFROM busybox:local AS sb\nCOPY b /b\nRUN cat /b > /b2\n\nFROM busybox:local\nCOPY --from=sa /a2 /a2\nCOPY --from=sb /b2 /b2\n",
            ),
            ("a", "a1"),
            ("b", "b1"),
        ],
    );
    t.build(&ctx, &["-t", "stages:1"]).ok();
    let same = t.build(&ctx, &["-t", "stages:1"]).ok();
    assert!(names(&same, "started").is_empty(), "{}", same.stderr);
    std::fs::write(ctx.join("b"), "b2").unwrap();
    let r = t.build(&ctx, &["-t", "stages:1"]).ok();
    let mut ran = names(&r, "started");
    ran.sort();
    assert_eq!(ran.len(), 3, "{ran:?}");
    assert!(has(&ran, "COPY b /b"), "{ran:?}");
    assert!(has(&ran, "RUN cat /b"), "{ran:?}");
    assert!(has(&ran, "/b2 /b2"), "{ran:?}");
    assert!(!has(&ran, "/a"), "stage sa must not rerun: {ran:?}");
    let fs = t.export("stages:1");
    assert_eq!(fs.text("a2"), "a1");
    assert_eq!(fs.text("b2"), "b2");
    t.finish();
}

#[test]
fn independent_stages_build_in_parallel() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local AS one\nRUN sleep 3 && echo 1 > /one\n\nFROM busybox:local AS two\nRUN sleep 3 && echo 2 > /two\n\nFROM busybox:local\nCOPY --from=one /one /one\nCOPY --from=two /two /two\n",
        )],
    );
    let start = Instant::now();
    let r = t.build(&ctx, &["-t", "par:1"]).ok();
    let took = start.elapsed();
    // One after the other the two sleeps alone take 6 s; the margin is for a loaded machine.
    assert!(took < Duration::from_millis(5800), "took {took:?}");
    // The progress shows both sleeps running at once: each started before the other ended.
    let events = r.events();
    let pos = |kind: &str, needle: &str| {
        events
            .iter()
            .position(|e| {
                e["event"] == kind && {
                    let v = e["vertex"].as_str().unwrap_or_default();
                    events.iter().any(|s| {
                        s["event"] == "started"
                            && s["vertex"] == v
                            && s["name"].as_str().unwrap_or_default().contains(needle)
                    })
                }
            })
            .unwrap_or_else(|| panic!("no {kind} for {needle}: {}", r.stderr))
    };
    assert!(pos("started", "echo 1") < pos("done", "echo 2"));
    assert!(pos("started", "echo 2") < pos("done", "echo 1"));
    let fs = t.export("par:1");
    assert_eq!(fs.text("one"), "1\n");
    assert_eq!(fs.text("two"), "2\n");
    t.finish();
}

#[test]
fn no_cache_reruns_everything() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY f /f\nRUN cat /f > /g\nWORKDIR /w\n",
            ),
            ("f", "x"),
        ],
    );
    let steps = |r: &Run| -> Vec<String> {
        names(r, "started")
            .into_iter()
            .filter(|n| !n.contains("FROM"))
            .collect()
    };
    let first = t.build(&ctx, &[]).ok();
    assert_eq!(steps(&first).len(), 3, "{}", first.stderr);
    let again = t.build(&ctx, &["--no-cache"]).ok();
    assert_eq!(steps(&again), steps(&first), "{}", again.stderr);
    let cached = names(&again, "cached");
    assert!(
        cached.iter().all(|c| c.contains("FROM")),
        "only the unpacked base may be reused: {cached:?}"
    );
    // And the cache still serves the next ordinary build.
    let third = t.build(&ctx, &[]).ok();
    assert!(names(&third, "started").is_empty(), "{}", third.stderr);
    t.finish();
}

#[test]
fn target_builds_only_the_stages_it_needs() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local AS base\nRUN echo base-ran > /base\n\nFROM base AS app\nRUN echo app-ran > /app\n\nFROM busybox:local AS other\nRUN echo other-ran > /other\n\nFROM app AS final\nRUN echo final-ran > /final\n",
        )],
    );
    let r = t.build(&ctx, &["--target", "app", "-t", "tgt:1"]).ok();
    let ran = names(&r, "started");
    assert!(has(&ran, "base-ran") && has(&ran, "app-ran"), "{ran:?}");
    assert!(!has(&ran, "other-ran"), "stage other never runs: {ran:?}");
    assert!(!has(&ran, "final-ran"), "stage final never runs: {ran:?}");
    let fs = t.export("tgt:1");
    assert_eq!(fs.text("app"), "app-ran\n");
    assert!(!fs.has("final") && !fs.has("other"));
    let bad = t.build(&ctx, &["--target", "nope"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("nope"), "{}", bad.stderr);
    t.finish();
}

#[test]
fn kill_9_mid_run_then_the_same_build_succeeds_with_the_cache_intact() {
    let t = TestRoot::with_busybox();
    let marker = format!("killed-run-{}", std::process::id());
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM busybox:local\nCOPY f /f\nRUN echo {marker} && sleep 3 && cat /f > /g\n"
                ),
            ),
            ("f", "content"),
        ],
    );
    let mut child = spawn_build(&t, &ctx, &["-t", "k9:1"]);
    let seen = wait_for_log(&mut child, &marker);
    let copy_ran = seen
        .iter()
        .any(|l| l.contains("\"started\"") && l.contains("COPY f /f"));
    assert!(copy_ran, "{seen:?}");
    // SIGKILL: nothing of xbuild's own cleanup runs.
    child.kill().unwrap();
    child.wait().unwrap();
    let root = t.root();
    let left = |d: &str| {
        std::fs::read_dir(root.join(d))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    assert!(left("runc") > 0, "the killed build left its container");
    assert!(left("mounts") > 0, "the killed build left its mounts");
    assert!(left("active") > 0, "the killed build left its snapshot");

    let again = t.build(&ctx, &["-t", "k9:1"]).ok();
    assert!(
        has(&names(&again, "cached"), "COPY f /f"),
        "the COPY finished before the kill and stays cached: {}",
        again.stderr
    );
    assert!(has(&names(&again, "started"), &marker), "{}", again.stderr);
    assert_eq!(t.export("k9:1").text("g"), "content");
    assert!(
        processes_with(&marker).is_empty(),
        "the killed build's container survived: {:?}",
        processes_with(&marker)
    );
    assert_eq!(left("active"), 0, "uncommitted snapshots are gone");
    assert_eq!(left("sessions"), 0, "the dead session is gone");
    let du = t.xbuild(&["du", "--format", "json"]).ok();
    let du: serde_json::Value = serde_json::from_str(&du.stdout).unwrap();
    assert_eq!(du["in_use"][0], 0, "no snapshot is held by a dead build");
    t.finish();
}

#[test]
fn four_concurrent_builds_on_one_root_run_the_shared_step_once() {
    let t = TestRoot::with_busybox();
    let marker = format!("shared-step-{}", std::process::id());
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM busybox:local\nCOPY f /f\nRUN echo {marker} && sleep 1 && cat /f > /g\n"
                ),
            ),
            ("f", "shared"),
        ],
    );
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_build(&t, &ctx, &["-t", "four:1"]))
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            Run {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            }
        })
        .collect();
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let count = |kind: &str, needle: &str| -> usize {
        runs.iter()
            .map(|r| names(r, kind).iter().filter(|n| n.contains(needle)).count())
            .sum()
    };
    // Each build reports every step either as run or as cached, and across the four each
    // step ran exactly once.
    for step in ["FROM docker.io/library/busybox:local", "COPY f /f", &marker] {
        assert_eq!(
            count("started", step),
            1,
            "{step}: {:#?}",
            runs.iter().map(|r| &r.stderr).collect::<Vec<_>>()
        );
        assert_eq!(count("cached", step), 3, "{step}");
    }
    let printed: usize = runs
        .iter()
        .map(|r| logs(r).iter().filter(|l| **l == marker).count())
        .sum();
    assert_eq!(printed, 1, "the shared RUN's output appears once");
    let ids: Vec<&str> = runs.iter().map(|r| r.stdout.trim()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one image: {ids:?}");
    assert_eq!(t.export("four:1").text("g"), "shared");
    t.finish();
}

#[test]
fn prune_and_du_are_safe_while_builds_run() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY f /f\nRUN cat /f > /g\n",
            ),
            ("f", "kept"),
        ],
    );
    t.build(&ctx, &["-t", "keep:1"]).ok();
    let du = t.xbuild(&["du", "--format", "json"]).ok();
    let du: serde_json::Value = serde_json::from_str(&du.stdout).unwrap();
    assert!(du["snapshots"].as_u64().unwrap() >= 3, "{du}");
    assert!(du["image_layers"][0].as_u64().unwrap() >= 3, "{du}");

    // A build that is running while everything is pruned keeps what it uses and succeeds.
    let marker = format!("prune-during-{}", std::process::id());
    let busy = t.context(
        "busy",
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM busybox:local\nCOPY f /f\nRUN echo {marker} && sleep 2 && cat /f > /g\n"
                ),
            ),
            ("f", "busy"),
        ],
    );
    let mut child = spawn_build(&t, &busy, &["-t", "busy:1"]);
    wait_for_log(&mut child, &marker);
    t.xbuild(&["prune", "--all", "-f"]).ok();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the running build failed after a prune"
    );
    assert_eq!(t.export("busy:1").text("g"), "busy");

    // The default prune keeps what tagged images are made of: their rebuild is cached.
    t.build(&ctx, &["-t", "keep:1"]).ok();
    let p = t.xbuild(&["prune"]).ok();
    assert!(p.stdout.contains("Total reclaimed space"), "{}", p.stdout);
    let cached = t.build(&ctx, &["-t", "keep:1"]).ok();
    assert!(names(&cached, "started").is_empty(), "{}", cached.stderr);

    // --keep-storage above what the cache takes deletes nothing; --all deletes the rest.
    let kept = t.xbuild(&["prune", "--keep-storage", "10GB"]).ok();
    assert!(
        kept.stdout.contains("Deleted 0 snapshot(s)"),
        "{}",
        kept.stdout
    );
    let all = t.xbuild(&["prune", "--all"]).ok();
    assert!(
        !all.stdout.contains("Deleted 0 snapshot(s)"),
        "{}",
        all.stdout
    );
    let du = t.xbuild(&["du", "--format", "json"]).ok();
    let du: serde_json::Value = serde_json::from_str(&du.stdout).unwrap();
    assert_eq!(du["snapshots"], 0, "{du}");
    let rebuilt = t.build(&ctx, &["-t", "keep:1"]).ok();
    assert_eq!(names(&rebuilt, "started").len(), 3, "{}", rebuilt.stderr);
    assert_eq!(t.export("keep:1").text("g"), "kept");
    t.finish();
}

#[test]
fn explain_names_the_input_that_changed() {
    let t = TestRoot::with_busybox();
    let write = |env: &str, cmd: &str| {
        t.context(
            "ctx",
            &[(
                "Dockerfile",
                &format!("FROM busybox:local\nENV GREETING={env}\nRUN {cmd}\n"),
            )],
        )
    };
    let ctx = write("hello", "echo $GREETING > /g");
    t.build(&ctx, &[]).ok();
    write("bye", "echo $GREETING > /g");
    t.build(&ctx, &[]).ok();
    let e = t.xbuild(&["debug", "graph", "--explain"]).ok().stdout;
    assert!(
        e.contains("env GREETING changed: \"hello\" -> \"bye\""),
        "{e}"
    );
    write("bye", "echo $GREETING > /h");
    t.build(&ctx, &[]).ok();
    let e = t.xbuild(&["debug", "graph", "--explain"]).ok().stdout;
    assert!(e.contains("command changed"), "{e}");
    assert!(e.contains("> /h"), "{e}");

    // A base image that moved: same reference, another digest.
    let tar = t.path("other-rootfs.tar");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cp {} {tar} && mkdir -p {d}/extra && echo x > {d}/extra/file && tar -rf {tar} -C {d} extra",
            crate::support::rootfs_tar().display(),
            tar = tar.display(),
            d = t.path("extra-dir").display(),
        ))
        .status()
        .unwrap();
    assert!(st.success());
    t.xbuild(&["import", tar.to_str().unwrap(), "busybox:local"])
        .ok();
    t.build(&ctx, &[]).ok();
    let e = t
        .xbuild(&["debug", "graph", "--explain", "--format", "json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&e.stdout).unwrap();
    let run = v["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "exec")
        .unwrap();
    assert!(
        run["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "base_image"),
        "{run}"
    );
    t.finish();
}
