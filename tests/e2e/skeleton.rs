//! The walking skeleton: one thin build through every crate.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::TestRoot;

#[test]
fn run_output_is_in_the_image_and_deleted_files_are_not() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo hello > /out && mkdir -p /data && echo keep > /data/k\nRUN rm /bin/vi /data/k && echo gone > /data/gone\n",
        )],
    );
    t.build(&ctx, &["-t", "t:1"]).ok();
    let fs = t.export("t:1");
    assert_eq!(fs.text("out"), "hello\n");
    assert!(!fs.has("bin/vi"), "a file deleted by RUN must be gone");
    assert!(
        !fs.has("data/k"),
        "a file deleted by a later RUN must be gone"
    );
    assert_eq!(fs.text("data/gone"), "gone\n");
    assert_eq!(fs.get("bin/sh").link.as_deref(), Some("busybox"));
    assert!(
        !fs.has("etc/hosts"),
        "RUN's /etc/hosts mount must not end up in the image"
    );
    t.finish();
}

#[test]
fn copy_keeps_the_tree_and_modes() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY tree /opt/tree\nCOPY top.txt /\n",
            ),
            ("tree/a.txt", "a"),
            ("tree/bin/tool", "#!/bin/sh\necho tool\n"),
            ("tree/deep/er/x", "x"),
            ("top.txt", "top"),
        ],
    );
    let set = |p: &str, mode: u32| {
        std::fs::set_permissions(ctx.join(p), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set("tree/bin/tool", 0o751);
    set("tree/a.txt", 0o600);
    set("tree/deep", 0o700);
    t.build(&ctx, &["-t", "copy:1"]).ok();
    let fs = t.export("copy:1");
    assert_eq!(fs.text("opt/tree/a.txt"), "a");
    assert_eq!(fs.get("opt/tree/a.txt").mode & 0o7777, 0o600);
    assert_eq!(fs.get("opt/tree/bin/tool").mode & 0o7777, 0o751);
    assert_eq!(fs.get("opt/tree/deep").mode & 0o7777, 0o700);
    assert_eq!(fs.text("opt/tree/deep/er/x"), "x");
    let a = fs.get("opt/tree/a.txt");
    assert_eq!((a.uid, a.gid), (0, 0), "context files are owned by root");
    assert_eq!(fs.text("top.txt"), "top");
    t.finish();
}

#[test]
fn env_reaches_later_runs_and_workdir_is_created() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nENV GREETING=\"hello world\" N=1\nWORKDIR /srv/app\nRUN echo \"$GREETING $N\" > env.txt && pwd > /pwd\nWORKDIR sub\nRUN pwd > /pwd2\n",
        )],
    );
    t.build(&ctx, &["-t", "env:1"]).ok();
    let fs = t.export("env:1");
    assert_eq!(fs.text("srv/app/env.txt"), "hello world 1\n");
    assert_eq!(fs.text("pwd"), "/srv/app\n");
    assert_eq!(fs.text("pwd2"), "/srv/app/sub\n");
    assert_eq!(fs.get("srv/app").kind, tar::EntryType::Directory);
    let inspect = t.xbuild(&["inspect", "env:1"]).ok();
    let cfg: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(cfg[0]["Config"]["WorkingDir"], "/srv/app/sub");
    let env = cfg[0]["Config"]["Env"].as_array().unwrap();
    assert!(env.contains(&serde_json::json!("GREETING=hello world")));
    t.finish();
}

#[test]
fn second_identical_build_runs_nothing() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY f /f\nRUN cat /f > /g\nCMD [\"cat\", \"/g\"]\n",
            ),
            ("f", "content"),
        ],
    );
    let first = t.build(&ctx, &["-t", "c:1"]).ok();
    assert!(
        first.count("started") >= 2,
        "the first build runs the COPY and the RUN"
    );
    let second = t.build(&ctx, &["-t", "c:1"]).ok();
    assert_eq!(
        second.count("started"),
        0,
        "nothing may run: {}",
        second.stderr
    );
    assert!(second.count("cached") >= 2);
    assert!(
        second.stderr.contains("0 step(s) executed, 2 cached"),
        "{}",
        second.stderr
    );
    assert_eq!(
        first.stdout, second.stdout,
        "a fully cached build gives the same image id"
    );
    // A changed input runs again.
    std::fs::write(ctx.join("f"), "changed").unwrap();
    let third = t.build(&ctx, &["-t", "c:1"]).ok();
    assert_eq!(third.count("started"), 2, "{}", third.stderr);
    assert_eq!(t.export("c:1").text("g"), "changed");
    t.finish();
}

#[test]
fn unknown_instruction_fails_with_file_and_line() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[("Dockerfile", "FROM busybox:local\nRUN true\nFOO bar\n")],
    );
    let r = t.build(&ctx, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Dockerfile:3:1: unknown instruction: FOO"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.count("started"),
        0,
        "nothing runs when the Dockerfile is invalid"
    );
    t.finish();
}

#[test]
fn failing_run_reports_exit_code_and_output_tail() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo first-line && echo to-stderr >&2 && exit 3\n",
        )],
    );
    let r = t.build(&ctx, &["--progress=plain"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("exit code 3"), "{}", r.stderr);
    assert!(r.stderr.contains("Dockerfile:2"), "{}", r.stderr);
    let tail = r.stderr.split("last output:").nth(1).unwrap_or_default();
    assert!(
        tail.contains("first-line") && tail.contains("to-stderr"),
        "{}",
        r.stderr
    );
    t.finish();
}

#[test]
fn oci_layout_output_is_accepted_by_skopeo() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo x > /x\nCMD [\"cat\", \"/x\"]\n",
        )],
    );
    let dest = t.path("layout");
    let spec = format!("type=oci,dest={}", dest.display());
    let r = t.build(&ctx, &["-t", "oci:1", "--output", &spec]).ok();
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}", dest.display()))
        .output()
        .expect("skopeo must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    let config = Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}", dest.display()))
        .output()
        .unwrap();
    let c: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(c["config"]["Cmd"], serde_json::json!(["cat", "/x"]));
    let id = r.stdout.trim();
    let digest = Command::new("sha256sum")
        .arg(
            dest.join("blobs/sha256")
                .join(v["Digest"].as_str().unwrap().trim_start_matches("sha256:")),
        )
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&digest.stdout)
            .starts_with(v["Digest"].as_str().unwrap().trim_start_matches("sha256:"))
    );
    assert!(id.starts_with("sha256:"));
    t.finish();
}

#[test]
fn images_lists_tags_and_inspect_prints_config() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n"),
            ("f", "x"),
        ],
    );
    let id = t
        .build(&ctx, &["-t", "scratchy:2"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let images = t.xbuild(&["images"]).ok().stdout;
    let short = &id["sha256:".len().."sha256:".len() + 12];
    assert!(
        images.contains("scratchy") && images.contains(short),
        "{images}"
    );
    assert!(
        images.contains("busybox") && images.contains("local"),
        "{images}"
    );
    let inspect = t.xbuild(&["inspect", "scratchy:2"]).ok();
    let cfg: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(cfg[0]["Id"], id.as_str());
    assert_eq!(cfg[0]["Config"]["WorkingDir"], "/");
    let missing = t.xbuild(&["inspect", "nope:1"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("nope:1"), "{}", missing.stderr);
    t.finish();
}

/// Directories runc creates for mount targets are removed again, recursively, as BuildKit ≥ 0.11
/// does (`RemoveMountStubsRecursive`); what the step itself wrote next to them stays.
#[test]
fn run_mount_targets_leave_no_stub_directories() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[
            ("input.txt", "in\n"),
            (
                "Dockerfile",
                "FROM busybox:local\n\
                 RUN --mount=type=tmpfs,target=/stub/deep/tmp touch /stub/deep/tmp/x\n\
                 RUN --mount=type=bind,target=/ctx cat /ctx/input.txt > /from-ctx\n\
                 RUN --mount=type=cache,target=/var/cache/thing mkdir -p /var/kept && echo k > /var/kept/f\n",
            ),
        ],
    );
    t.build(&ctx, &["-t", "stubs:1"]).ok();
    let fs = t.export("stubs:1");
    assert_eq!(fs.text("from-ctx"), "in\n");
    assert_eq!(fs.text("var/kept/f"), "k\n");
    for stub in ["stub", "ctx", "var/cache/thing"] {
        assert!(!fs.has(stub), "mount stub /{stub} left in the image");
    }
    t.finish();
}
