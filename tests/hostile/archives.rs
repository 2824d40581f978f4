//! Archives, layers, outputs and contexts: symlink, hardlink and whiteout escapes, sparse and special files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run, TestRoot};

/// A directory outside everything a test targets: `project/` (with `.git` and a sibling file)
/// holds the destination a test writes into, and `secret` is what an escape would read.
struct Sentinel {
    dir: PathBuf,
}

impl Sentinel {
    fn new(t: &TestRoot) -> Self {
        let dir = t.path("sentinel");
        std::fs::create_dir_all(dir.join("project/.git/objects")).unwrap();
        std::fs::write(dir.join("project/.git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(dir.join("project/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(dir.join("secret"), "TOP SECRET\n").unwrap();
        Sentinel { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    /// Every file under the sentinel with its content, but `skip` (a test's own output).
    fn listing(&self, skip: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in walkdir(&self.dir) {
            let rel = e
                .strip_prefix(&self.dir)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if !skip.is_empty() && rel.starts_with(skip) {
                continue;
            }
            let body = std::fs::read(&e)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            out.push((rel, body));
        }
        out.sort();
        out
    }
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// Runs `xbuild --root ROOT args…`; a run still going after `limit` is killed and fails the
/// test (a build must never hang on its input).
fn xbuild_within(t: &TestRoot, limit: Duration, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("xbuild {args:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One tar entry as an attacker writes it: the raw name, kind, link target and data.
struct E<'a> {
    name: &'a str,
    kind: tar::EntryType,
    link: &'a str,
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        name,
        kind: tar::EntryType::Regular,
        link: "",
        data,
    }
}

fn dir(name: &str) -> E<'_> {
    E {
        name,
        kind: tar::EntryType::Directory,
        link: "",
        data: b"",
    }
}

fn link<'a>(name: &'a str, kind: tar::EntryType, target: &'a str) -> E<'a> {
    E {
        name,
        kind,
        link: target,
        data: b"",
    }
}

/// A tar with names and link targets written raw (absolute and `..` names reach it unchanged).
fn raw_tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(if e.kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

fn octal(v: u64) -> [u8; 12] {
    let s = format!("{v:011o}\0");
    let mut out = [0u8; 12];
    out.copy_from_slice(s.as_bytes());
    out
}

/// A tar holding `files` and one GNU sparse file `big.img` of `apparent` bytes (512 of data
/// at its end): about 10 KB however large it claims to be.
fn sparse_context(files: &[(&str, &str)], apparent: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    let mut out = b.into_inner().unwrap();
    // Drop the end-of-archive blocks, append the sparse entry and end it again.
    out.truncate(out.len() - 1024);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_path("big.img").unwrap();
    h.set_mode(0o644);
    h.set_size(512);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    let g = h.as_gnu_mut().unwrap();
    g.sparse[0].offset = octal(apparent - 512);
    g.sparse[0].numbytes = octal(512);
    g.realsize = octal(apparent);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&[b'x'; 512]);
    out.extend_from_slice(&[0; 1024]);
    out
}

/// The context scratch directories under the root's `tmp/`.
fn scratch_dirs(t: &TestRoot) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(t.root().join("tmp")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("context-"))
        .map(|e| e.path())
        .collect()
}

/// The names in the tar file at `p`.
fn tar_names(p: &Path) -> Vec<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(p).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            String::from_utf8_lossy(&e.path_bytes()).into_owned()
        })
        .collect()
}

/// A final filesystem holding `.wh...`, `.wh.x` and `d/.wh..`, files a RUN made.
const WH_FILES: &str = "FROM busybox:local AS b\n\
RUN mkdir -p /o/d && echo dotdot > '/o/.wh...' && echo x > /o/.wh.x && echo dot > '/o/d/.wh..' && echo keep > /o/keep\n\
FROM scratch\n\
COPY --from=b /o/ /\n";

/// Issue 15 #2: `--output type=local` into `project/out` went through the layer unpacker,
/// which took `.wh...` for a whiteout of `..` and deleted the project around the output.
#[test]
fn local_output_of_whiteout_named_files_keeps_the_project_and_writes_them() {
    let t = TestRoot::with_busybox();
    let s = Sentinel::new(&t);
    let before = s.listing("project/out");
    let ctx = t.context("ctx", &[("Dockerfile", WH_FILES)]);
    let out = s.path("project/out");
    let dest = format!("type=local,dest={}", out.display());
    let r = t.build(&ctx, &["-o", &dest]);
    assert_eq!(s.listing("project/out"), before, "{}", r.stderr);
    r.ok();
    assert_eq!(
        std::fs::read_to_string(out.join(".wh...")).unwrap(),
        "dotdot\n"
    );
    assert_eq!(std::fs::read_to_string(out.join(".wh.x")).unwrap(), "x\n");
    assert_eq!(
        std::fs::read_to_string(out.join("d/.wh..")).unwrap(),
        "dot\n"
    );
    assert_eq!(std::fs::read_to_string(out.join("keep")).unwrap(), "keep\n");
    // Written again over itself: still the same files, still nothing else touched.
    t.build(&ctx, &["-o", &dest]).ok();
    assert_eq!(std::fs::read_to_string(out.join(".wh.x")).unwrap(), "x\n");
    assert_eq!(s.listing("project/out"), before);
    t.finish();
}

/// Issue 15 #2, `type=tar`: the final filesystem is written as it is.
#[test]
fn tar_output_of_whiteout_named_files_holds_them_as_files() {
    let t = TestRoot::with_busybox();
    let s = Sentinel::new(&t);
    let before = s.listing("project/out.tar");
    let ctx = t.context("ctx", &[("Dockerfile", WH_FILES)]);
    let out = s.path("project/out.tar");
    t.build(&ctx, &["-o", &format!("type=tar,dest={}", out.display())])
        .ok();
    let names = tar_names(&out);
    for want in [".wh...", ".wh.x", "d/.wh..", "keep"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert_eq!(s.listing("project/out.tar"), before);
    t.finish();
}

/// Imports `layer` as image `name` (a flat rootfs: one layer whose whiteouts apply when it is
/// unpacked), then builds on it with a local output; returns the build, or the import when it
/// refused the layer already.
fn build_on_layer(t: &TestRoot, s: &Sentinel, name: &str, layer: &[u8]) -> Run {
    let tar = t.path(&format!("{name}.tar"));
    std::fs::write(&tar, layer).unwrap();
    let import = t.xbuild(&["import", tar.to_str().unwrap(), &format!("{name}:1")]);
    if import.code != 0 {
        return import;
    }
    let ctx = t.context(
        &format!("ctx-{name}"),
        &[("Dockerfile", &format!("FROM {name}:1\n"))],
    );
    let out = s.path(&format!("project/{name}"));
    t.build(&ctx, &["-o", &format!("type=local,dest={}", out.display())])
}

/// Layers whose whiteouts name the directory itself or its parent (`.wh..`, `.wh...`, at the
/// top and below) are refused, naming the entry; layers with `../x` names are refused; an
/// absolute name and a whiteout through a symlink stay inside. The root keeps working.
#[test]
fn hostile_whiteouts_and_names_in_layers_are_refused_or_confined() {
    let t = TestRoot::with_busybox();
    let s = Sentinel::new(&t);
    let before = s.listing("project/");
    let refused: [(&str, Vec<u8>, &str); 5] = [
        (
            "whdotdot",
            raw_tar(&[file("a", b"a"), file(".wh...", b"")]),
            ".wh...",
        ),
        (
            "whdot",
            raw_tar(&[dir("d/"), file("d/.wh..", b"")]),
            "d/.wh..",
        ),
        (
            "whempty",
            raw_tar(&[dir("d/"), file("d/.wh.", b"")]),
            "d/.wh.",
        ),
        ("dotdot", raw_tar(&[file("../../x", b"x")]), "../../x"),
        (
            "hardlinkout",
            raw_tar(&[link("h", tar::EntryType::Link, "../../../secret")]),
            "../../../secret",
        ),
    ];
    for (name, layer, entry) in refused {
        let r = build_on_layer(&t, &s, name, &layer);
        assert_ne!(r.code, 0, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(entry), "{name}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{name}: {}", r.stderr);
    }
    // An absolute name lands inside; a whiteout below a symlink does not reach its target.
    let confined = raw_tar(&[
        file("/abs", b"abs"),
        link("ln", tar::EntryType::Symlink, "/"),
        file("ln/.wh.secret", b""),
    ]);
    let r = build_on_layer(&t, &s, "confined", &confined);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("ln/.wh.secret"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(s.path("secret")).unwrap(),
        "TOP SECRET\n"
    );
    assert!(!Path::new("/abs").exists());
    // Nothing outside changed, and the root still builds.
    assert_eq!(
        s.listing("project/")
            .into_iter()
            .filter(|(p, _)| !p.starts_with("project/"))
            .collect::<Vec<_>>(),
        before
            .into_iter()
            .filter(|(p, _)| !p.starts_with("project/"))
            .collect::<Vec<_>>()
    );
    assert!(s.path("project/.git/HEAD").exists());
    let ctx = t.context("ok", &[("Dockerfile", "FROM busybox:local\nRUN true\n")]);
    t.build(&ctx, &[]).ok();
    t.finish();
}

/// `ADD` of hostile archives from the context: `../x` and hardlinks out are refused, `/abs`
/// lands inside, a symlink planted by the archive is not written through; the secret beside
/// the context is never read or changed.
#[test]
fn hostile_add_archives_are_refused_or_confined() {
    let t = TestRoot::with_busybox();
    let s = Sentinel::new(&t);
    let secret = s.path("secret");
    let secret = secret.to_str().unwrap();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("dotdot.tar", raw_tar(&[file("../../../x", b"x")]), false),
        (
            "hardlink.tar",
            raw_tar(&[link("shadow", tar::EntryType::Link, secret)]),
            false,
        ),
        (
            "hardlink-up.tar",
            raw_tar(&[link("shadow", tar::EntryType::Link, "../../../../secret")]),
            false,
        ),
        (
            "symlink-then-file.tar",
            raw_tar(&[
                link("esc", tar::EntryType::Symlink, s.dir.to_str().unwrap()),
                file("esc/secret", b"owned\n"),
            ]),
            false,
        ),
        ("abs.tar", raw_tar(&[file("/etc/added", b"inside\n")]), true),
        (
            "whiteouts.tar",
            raw_tar(&[file(".wh...", b"dd\n"), file(".wh.x", b"x\n")]),
            true,
        ),
    ];
    for (name, bytes, ok) in cases {
        let ctx = t.context(
            &format!("ctx-{name}"),
            &[(
                "Dockerfile",
                &format!("FROM busybox:local\nADD {name} /a/\nRUN ls -la /a\n"),
            )],
        );
        std::fs::write(ctx.join(name), bytes).unwrap();
        let r = t.build(&ctx, &[]);
        assert_eq!(r.code == 0, ok, "{name}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{name}: {}", r.stderr);
        assert!(!r.stderr.contains("TOP SECRET"), "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(s.path("secret")).unwrap(),
        "TOP SECRET\n"
    );
    assert!(!s.path("x").exists() && !t.path("x").exists());
    assert!(!Path::new("/etc/added").exists());
    t.finish();
}

/// An archive with very many entries, and one very deep, is unpacked or refused cleanly.
#[test]
fn giant_and_deep_add_archives_end_cleanly() {
    let t = TestRoot::with_busybox();
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..20_000 {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, format!("many/f{i}"), &b""[..])
            .unwrap();
    }
    let deep = "d/".repeat(5000);
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, format!("{deep}f"), &b"x"[..])
        .unwrap();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nADD big.tar /a/\nRUN ls /a/many | wc -l\n",
        )],
    );
    std::fs::write(ctx.join("big.tar"), b.into_inner().unwrap()).unwrap();
    let r = t.build(&ctx, &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("4096"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    t.finish();
}

/// A context symlink pointing outside it is resolved inside the context by COPY; a hardlink
/// in a tar context to an absolute path outside is confined (its target is missing there).
#[test]
fn context_symlinks_and_hardlinks_do_not_reach_outside() {
    let t = TestRoot::with_busybox();
    let s = Sentinel::new(&t);
    let ctx = t.context("ctx", &[("Dockerfile", "FROM scratch\nCOPY link /got\n")]);
    std::os::unix::fs::symlink(s.path("secret"), ctx.join("link")).unwrap();
    let out = s.path("project/out1");
    let r = t.build(&ctx, &["-o", &format!("type=local,dest={}", out.display())]);
    if r.code == 0 {
        assert_ne!(
            std::fs::read_to_string(out.join("got")).unwrap_or_default(),
            "TOP SECRET\n"
        );
    }
    let secret = s.path("secret");
    let tar = raw_tar(&[
        file("Dockerfile", b"FROM scratch\nCOPY shadow /got\n"),
        link("shadow", tar::EntryType::Link, secret.to_str().unwrap()),
    ]);
    let r = t.xbuild_stdin(&tar, &["build", "--progress=plain", "-"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("shadow"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "TOP SECRET\n");
    assert!(scratch_dirs(&t).is_empty(), "{:?}", scratch_dirs(&t));
    t.finish();
}

/// Issue 15 #9: a 10 KB tar on stdin holding a sparse file of 1 GiB wrote it all out, into a
/// temporary directory outside the root. Now it lands under the root, holes stay holes, and it
/// is gone after the build.
#[test]
fn a_sparse_stdin_context_stays_sparse_under_the_root() {
    let t = TestRoot::with_busybox();
    let df = "FROM busybox:local\n\
RUN --mount=type=bind,target=/ctx sh -c 'ls -l /ctx/big.img; du -k /ctx/big.img; test $(du -k /ctx/big.img | cut -f1) -lt 4096'\n";
    let tar = sparse_context(&[("Dockerfile", df)], 1 << 30);
    assert!(tar.len() < 16 << 10);
    let r = t.xbuild_stdin(&tar, &["build", "--progress=plain", "-"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("1073741824"), "{}", r.stderr);
    assert!(scratch_dirs(&t).is_empty(), "{:?}", scratch_dirs(&t));
    t.finish();
}

/// Issue 15 #9: a stdin context over `--max-context-size` fails with an error naming the limit
/// and leaves nothing; so does an endless standard input.
#[test]
fn a_stdin_context_over_the_limit_fails_cleanly() {
    let t = TestRoot::new();
    let tar = sparse_context(&[("Dockerfile", "FROM scratch\n")], 1 << 30);
    let r = t.xbuild_stdin(
        &tar,
        &["build", "--progress=plain", "--max-context-size", "1M", "-"],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("--max-context-size") && r.stderr.contains("1048576"),
        "{}",
        r.stderr
    );
    assert!(scratch_dirs(&t).is_empty(), "{:?}", scratch_dirs(&t));
    let endless = vec![b'#'; 3 << 20];
    let r = t.xbuild_stdin(
        &endless,
        &["build", "--progress=plain", "--max-context-size", "1M", "-"],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--max-context-size"), "{}", r.stderr);
    assert!(scratch_dirs(&t).is_empty(), "{:?}", scratch_dirs(&t));
}

/// Issue 15 #9: the stdin context of a build killed with SIGKILL is removed by the next run.
#[test]
fn a_killed_builds_stdin_context_is_gone_after_the_next_run() {
    let t = TestRoot::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress=plain", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&[0u8; 4096]).unwrap();
    let start = Instant::now();
    while scratch_dirs(&t).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no scratch context appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let left = scratch_dirs(&t);
    assert_eq!(left.len(), 1, "{left:?}");
    let ctx = t.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")],
    );
    t.build(&ctx, &[]).ok();
    assert!(
        !left[0].exists(),
        "{} survived the next run",
        left[0].display()
    );
    t.finish();
}

fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// Issue 15 #11: a FIFO as Dockerfile or `.dockerignore` hung the build; now it is refused
/// at once with an error naming it. Other special files too.
#[test]
fn special_files_as_dockerfile_or_dockerignore_are_refused_at_once() {
    let t = TestRoot::new();
    let limit = Duration::from_secs(60);
    let ctx = t.context("fifo-df", &[("a", "a")]);
    mkfifo(&ctx.join("Dockerfile"));
    let r = xbuild_within(
        &t,
        limit,
        &["build", "--progress=plain", ctx.to_str().unwrap()],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Dockerfile") && r.stderr.contains("FIFO"),
        "{}",
        r.stderr
    );
    let ctx = t.context("fifo-ignore", &[("Dockerfile", "FROM scratch\n")]);
    mkfifo(&ctx.join(".dockerignore"));
    let r = xbuild_within(
        &t,
        limit,
        &["build", "--progress=plain", ctx.to_str().unwrap()],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(".dockerignore") && r.stderr.contains("FIFO"),
        "{}",
        r.stderr
    );
    // `-f` naming a FIFO outside the context, and a directory as Dockerfile.
    let outside = t.path("outside.fifo");
    mkfifo(&outside);
    let ctx = t.context("plain", &[("a", "a")]);
    let r = xbuild_within(
        &t,
        limit,
        &[
            "build",
            "--progress=plain",
            "-f",
            outside.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("outside.fifo"), "{}", r.stderr);
    std::fs::create_dir(ctx.join("Dockerfile")).unwrap();
    let r = xbuild_within(
        &t,
        limit,
        &["build", "--progress=plain", ctx.to_str().unwrap()],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("directory"), "{}", r.stderr);
}

/// A symlinked Dockerfile resolves inside the context (as BuildKit reads it): to a file in
/// the context it works; to a file outside it is not found there, and never read.
#[test]
fn a_symlinked_dockerfile_resolves_beneath_the_context() {
    let t = TestRoot::new();
    let s = Sentinel::new(&t);
    let ctx = t.context(
        "ctx",
        &[
            ("docker/Dockerfile.real", "FROM scratch\nCOPY a /a\n"),
            ("a", "a"),
        ],
    );
    std::os::unix::fs::symlink("docker/Dockerfile.real", ctx.join("Dockerfile")).unwrap();
    t.build(&ctx, &[]).ok();
    let ctx = t.context("ctx2", &[("a", "a")]);
    std::os::unix::fs::symlink(s.path("secret"), ctx.join("Dockerfile")).unwrap();
    let r = t.build(&ctx, &[]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("TOP SECRET"), "{}", r.stderr);
}

/// A Dockerfile (or `.dockerignore`) of gigabytes was read whole into memory: both are now
/// refused past 16 MiB, with an error naming the file and the limit, before they are read.
#[test]
fn a_huge_dockerfile_or_dockerignore_is_refused_before_it_is_read() {
    let t = TestRoot::new();
    let limit = Duration::from_secs(60);
    for name in ["Dockerfile", ".dockerignore"] {
        let ctx = t.context(
            &format!("huge-{}", name.trim_start_matches('.')),
            &[("Dockerfile", "FROM scratch\n")],
        );
        // Sparse: 4 GiB on paper, nothing on disk.
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(ctx.join(name))
            .unwrap();
        f.set_len(4 << 30).unwrap();
        let r = xbuild_within(
            &t,
            limit,
            &["build", "--progress=plain", ctx.to_str().unwrap()],
        );
        assert_ne!(r.code, 0);
        assert!(
            r.stderr.contains(name) && r.stderr.contains("16777216 bytes"),
            "{}",
            r.stderr
        );
    }
    t.finish();
}

/// A FIFO where a local cache (`--cache-from type=local`) keeps its `index.json` or a blob
/// hung the build on `open`; now it is refused at once, naming the file.
#[test]
fn a_fifo_in_a_local_cache_is_refused_at_once() {
    let t = TestRoot::new();
    let limit = Duration::from_secs(60);
    let ctx = t.context(
        "cache",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")],
    );
    let cache = t.path("cache");
    t.build(
        &ctx,
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", cache.display()),
        ],
    )
    .ok();
    let from = format!("type=local,src={}", cache.display());
    let build = || {
        let fresh = TestRoot::new();
        let r = xbuild_within(
            &fresh,
            limit,
            &[
                "build",
                "--progress=plain",
                "--cache-from",
                &from,
                ctx.to_str().unwrap(),
            ],
        );
        fresh.finish();
        r
    };
    // A blob: the cached layer (the largest blob is not JSON).
    let blobs = cache.join("blobs/sha256");
    let layer = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).is_ok_and(|b| b.first() != Some(&b'{')))
        .expect("the cache holds a layer");
    std::fs::remove_file(&layer).unwrap();
    mkfifo(&layer);
    let r = build();
    let name = layer.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        r.stderr.contains(&name) && r.stderr.contains("not a regular file"),
        "{}",
        r.stderr
    );
    // index.json.
    let index = cache.join("index.json");
    std::fs::remove_file(&index).unwrap();
    mkfifo(&index);
    let r = build();
    assert!(
        r.stderr.contains("index.json") && r.stderr.contains("not a regular file"),
        "{}",
        r.stderr
    );
    t.finish();
}
