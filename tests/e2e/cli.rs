//! The `xbuild build` command line: contexts from standard input and git, `-f -`,
//! `--metadata-file` and exit codes.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::support::{Run, TestRoot};

/// Runs `xbuild --root ROOT build --progress=plain ARGS…` with `stdin` piped in.
fn build_stdin(t: &TestRoot, stdin: &[u8], args: &[&str]) -> Run {
    t.xbuild_stdin(stdin, &[&["build", "--progress=plain"], args].concat())
}

fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

#[test]
fn context_and_dockerfile_from_standard_input() {
    let t = TestRoot::with_busybox();
    // A gzip'd tar context, its Dockerfile named by -f relative to the archive's top.
    let tar = tar_of(&[
        (
            "build/Dockerfile.app",
            "FROM busybox:local\nCOPY app.txt /\n",
        ),
        ("app.txt", "from the tarball\n"),
    ]);
    build_stdin(
        &t,
        &gzip(&tar),
        &["-t", "gz:1", "-f", "build/Dockerfile.app", "-"],
    )
    .ok();
    assert_eq!(t.export("gz:1").text("app.txt"), "from the tarball\n");
    // A plain tar, default Dockerfile.
    let tar = tar_of(&[
        ("Dockerfile", "FROM busybox:local\nCOPY . /ctx/\n"),
        ("a/b.txt", "b\n"),
    ]);
    build_stdin(&t, &tar, &["-t", "plain:1", "-"]).ok();
    let fs = t.export("plain:1");
    assert_eq!(fs.text("ctx/a/b.txt"), "b\n");
    assert!(fs.has("ctx/Dockerfile"));
    // A tar member climbing out of the context is refused, naming it.
    let mut hostile = tar_of(&[("Dockerfile", "FROM busybox:local\n")]);
    hostile.truncate(hostile.len() - 1024);
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.as_old_mut().name[..12].copy_from_slice(b"../../escape");
    h.set_cksum();
    let mut b = tar::Builder::new(hostile);
    b.append(&h, &b"x"[..]).unwrap();
    let r = build_stdin(&t, &b.into_inner().unwrap(), &["-"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("../../escape"), "{}", r.stderr);
    // Not a tar: the Dockerfile of an empty context.
    build_stdin(
        &t,
        b"FROM busybox:local\nRUN ls -A / > /root.txt && echo dockerfile > /df.txt\n",
        &["-t", "df:1", "-"],
    )
    .ok();
    let fs = t.export("df:1");
    assert_eq!(fs.text("df.txt"), "dockerfile\n");
    // `-f -`: the Dockerfile from stdin, the context a directory.
    let ctx = t.context("ctx", &[("hello.txt", "hello\n")]);
    build_stdin(
        &t,
        b"FROM busybox:local\nCOPY hello.txt /\n",
        &["-t", "dash-f:1", "-f", "-", ctx.to_str().unwrap()],
    )
    .ok();
    assert_eq!(t.export("dash-f:1").text("hello.txt"), "hello\n");
    // Both from stdin is a usage error.
    let r = build_stdin(&t, b"FROM busybox:local\n", &["-f", "-", "-"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("both"), "{}", r.stderr);
    t.finish();
}

#[test]
fn context_from_a_git_url_at_a_ref_and_subdirectory() {
    let t = TestRoot::with_busybox();
    let work = t.path("work");
    std::fs::create_dir_all(work.join("app")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("app/Dockerfile"),
        "FROM busybox:local\nCOPY . /app/\n",
    )
    .unwrap();
    std::fs::write(work.join("app/version"), "one\n").unwrap();
    std::fs::write(work.join("outside"), "not in the subdir\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "v1"]);
    std::fs::write(work.join("app/version"), "two\n").unwrap();
    git(&work, &["commit", "-q", "-am", "two"]);
    let bare = t.path("repo.git");
    let st = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&work)
        .arg(&bare)
        .status()
        .unwrap();
    assert!(st.success());
    let url = format!("file://{}", bare.display());

    let r = t.xbuild(&[
        "build",
        "--progress=plain",
        "-t",
        "git:v1",
        &format!("{url}#v1:app"),
    ]);
    r.ok();
    let fs = t.export("git:v1");
    assert_eq!(fs.text("app/version"), "one\n");
    assert!(
        !fs.has("app/outside") && !fs.has("app/.git"),
        "only the subdirectory, without .git"
    );

    t.xbuild(&[
        "build",
        "--progress=plain",
        "-t",
        "git:main",
        "-f",
        "app/Dockerfile",
        &url,
    ])
    .ok();
    let fs = t.export("git:main");
    assert_eq!(fs.text("app/app/version"), "two\n");
    assert_eq!(fs.text("app/outside"), "not in the subdir\n");

    let r = t.xbuild(&["build", "--progress=plain", &format!("{url}#no-such-ref")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("git context") && r.stderr.contains("no-such-ref"),
        "{}",
        r.stderr
    );
    let r = t.xbuild(&["build", "--progress=plain", &format!("{url}#v1:../..")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("leaves the repository"), "{}", r.stderr);
    t.finish();
}

#[test]
fn metadata_file_and_exit_codes() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[("Dockerfile", "FROM busybox:local\nRUN echo hi > /hi\n")],
    );
    let meta = t.path("meta.json");
    let r = t
        .build(
            &ctx,
            &["-t", "meta:1", "--metadata-file", meta.to_str().unwrap()],
        )
        .ok();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let id = r.stdout.trim();
    assert_eq!(m["containerimage.config.digest"], id);
    let inspect: serde_json::Value =
        serde_json::from_str(&t.xbuild(&["inspect", "meta:1"]).ok().stdout).unwrap();
    assert_eq!(
        m["containerimage.digest"],
        inspect[0]["Descriptor"]["digest"]
    );
    let desc = &m["containerimage.descriptor"];
    assert_eq!(desc["digest"], inspect[0]["Descriptor"]["digest"]);
    assert_eq!(
        desc["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(desc["size"].as_u64().unwrap() > 100, "{desc}");
    assert_eq!(m["image.name"], "docker.io/library/meta:1");

    // 1: the build failed.
    let bad = t.context("bad", &[("Dockerfile", "FROM busybox:local\nRUN exit 3\n")]);
    assert_eq!(t.build(&bad, &[]).code, 1);
    // 2: usage errors, clap's and ours.
    assert_eq!(t.build(&ctx, &["--no-such-flag"]).code, 2);
    assert_eq!(t.build(&ctx, &["--build-arg", "NOEQUALS"]).code, 2);
    assert_eq!(t.build(&ctx, &["-t", "Bad Name"]).code, 2);
    assert_eq!(t.build(&ctx, &["--output", "type=nonsense"]).code, 2);
    assert_eq!(t.xbuild(&["build"]).code, 2);
    t.finish();
}

#[test]
fn a_relative_root_is_taken_from_the_current_directory() {
    let t = TestRoot::new();
    let ctx = t.context(
        "ctx",
        &[("Dockerfile", "FROM busybox:local\nRUN echo ok > /ok\n")],
    );
    let xbuild = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_xbuild"))
            .current_dir(t.dir.path())
            .args(["--root", "root"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    xbuild(&[
        "import",
        crate::support::rootfs_tar().to_str().unwrap(),
        "busybox:local",
    ]);
    xbuild(&["build", "-q", "-t", "rel:1", ctx.to_str().unwrap()]);
    assert_eq!(t.export("rel:1").text("ok"), "ok\n");
    t.finish();
}
