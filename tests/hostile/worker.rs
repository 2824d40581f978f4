//! Remote workers: hostile manifests and requests from an authenticated client, listener policy.
//!
//! Each test runs a real `xbuild worker` on 127.0.0.1 (its own root) and speaks to it with the
//! generated gRPC client, sending what no honest client sends; a sentinel directory outside
//! the worker's root shows that nothing was written, changed or removed outside it.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xbuild::worker::proto::{
    BuildRequest, ClientMessage, Entry, FileData, ManifestChunk, Outcome, client_message, entry,
    worker_client::WorkerClient, worker_message,
};

use crate::support::TestRoot;

/// A running `xbuild worker` on its own root; killed on drop.
struct Worker {
    child: Child,
    root: TestRoot,
    addr: String,
}

impl Worker {
    /// Starts a worker (its root has `busybox:local`) with extra flags.
    fn start(extra: &[&str]) -> Self {
        let root = TestRoot::with_busybox();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(root.path("worker.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
            .arg("--root")
            .arg(root.root())
            .args(["worker", "--listen", &addr])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run xbuild worker");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the worker did not start: {}",
                std::fs::read_to_string(root.path("worker.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Worker { child, root, addr }
    }

    /// Sends one build: `req` (its context key set to `key`), the manifest `entries`, and
    /// whatever content of `contents` the worker asks for. Returns the outcome.
    fn send(&self, key: &str, dockerfile: &str, entries: &[Entry], contents: &[&[u8]]) -> Outcome {
        let req = BuildRequest {
            dockerfile_name: "Dockerfile".into(),
            dockerfile_text: dockerfile.into(),
            context_key: key.into(),
            context_entries: entries.len() as u64,
            context_bytes: entries.iter().map(|e| e.size).fold(0, u64::saturating_add),
            ..BuildRequest::default()
        };
        self.exchange(req, entries, contents)
    }

    /// Sends `req`, then the manifest `entries` and the contents asked for.
    fn exchange(&self, req: BuildRequest, entries: &[Entry], contents: &[&[u8]]) -> Outcome {
        let by_digest: HashMap<Vec<u8>, Vec<u8>> = contents
            .iter()
            .map(|c| (blake3::hash(c).as_bytes().to_vec(), c.to_vec()))
            .collect();
        let addr = format!("http://{}", self.addr);
        let entries = entries.to_vec();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let exchange = async move {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            let m = |msg| ClientMessage { msg: Some(msg) };
            tx.send(m(client_message::Msg::Request(req))).await.unwrap();
            tx.send(m(client_message::Msg::Manifest(ManifestChunk {
                entries,
                last: true,
            })))
            .await
            .unwrap();
            let mut client = WorkerClient::connect(addr).await.unwrap();
            let mut inbound = client
                .build(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .unwrap()
                .into_inner();
            while let Some(reply) = inbound.message().await.unwrap() {
                match reply.msg {
                    Some(worker_message::Msg::Need(need)) => {
                        for d in need.files {
                            let chunk = by_digest.get(&d).cloned().unwrap_or_default();
                            let data = FileData {
                                digest: d,
                                chunk,
                                last: true,
                            };
                            tx.send(m(client_message::Msg::Data(data))).await.unwrap();
                        }
                    }
                    Some(worker_message::Msg::Outcome(o)) => return o,
                    _ => {}
                }
            }
            panic!("the worker sent no outcome")
        };
        rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(60), exchange)
                .await
                .expect("no outcome within 60 s: the worker's session died without one")
        })
    }

    /// The layout directory of the context `key`.
    fn layout(&self, key: &str) -> PathBuf {
        let hex = blake3::hash(key.as_bytes()).to_hex()[..32].to_string();
        self.root.root().join("worker/contexts").join(hex)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn entry(path: &str, kind: entry::Kind) -> Entry {
    let mut e = Entry {
        path: path.into(),
        mode: 0o755,
        ..Entry::default()
    };
    e.set_kind(kind);
    e
}

fn file(path: &str, content: &[u8], mode: u32) -> Entry {
    let mut e = entry(path, entry::Kind::File);
    e.mode = mode;
    e.size = content.len() as u64;
    e.digest = blake3::hash(content).as_bytes().to_vec();
    e
}

fn symlink(path: &str, target: &str) -> Entry {
    let mut e = entry(path, entry::Kind::Symlink);
    e.mode = 0o777;
    e.target = target.into();
    e
}

/// A directory outside every root holding one file, `victim`; checks that nothing in it
/// changed.
struct Sentinel {
    dir: PathBuf,
    before: Vec<(String, u32, u64, Vec<u8>)>,
}

impl Sentinel {
    fn new(t: &TestRoot) -> Self {
        let dir = t.path("sentinel");
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "original").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = Self::listing(&dir);
        Sentinel { dir, before }
    }

    fn listing(dir: &Path) -> Vec<(String, u32, u64, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let md = std::fs::symlink_metadata(e.path()).unwrap();
                let body = if md.is_file() {
                    std::fs::read(e.path()).unwrap()
                } else {
                    Vec::new()
                };
                (
                    e.file_name().to_string_lossy().into_owned(),
                    md.mode(),
                    md.ino(),
                    body,
                )
            })
            .collect();
        out.sort();
        out
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Asserts that nothing in the sentinel directory was written, changed or removed.
    fn unchanged(&self) {
        assert_eq!(
            Self::listing(&self.dir),
            self.before,
            "the worker changed {} (outside its root)",
            self.dir.display()
        );
    }
}

/// A Dockerfile that fails once the context is laid out.
const FAILS: &str = "NOT-AN-INSTRUCTION\n";

/// Lays out `a -> sentinel` for the context `key` in a build that fails: the layout the next
/// request of that key finds.
fn plant_link(w: &Worker, key: &str, target: &str) {
    let o = w.send(key, FAILS, &[symlink("a", target)], &[]);
    assert!(!o.error.is_empty(), "the planting build should fail");
    let link = w.layout(key).join("a");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(target));
}

fn refused(o: &Outcome, what: &str) {
    assert!(
        o.error.contains("context manifest entry") && o.error.contains(what),
        "expected a refusal naming {what:?}, got: {o:?}"
    );
}

#[test]
fn a_file_below_a_symlink_laid_out_by_a_failed_build_is_not_written_outside() {
    let w = Worker::start(&[]);
    let s = Sentinel::new(&w.root);
    plant_link(&w, "k", s.path());
    // The file is listed before the symlink it lies below.
    let entries = [file("a/x", b"planted", 0o644), symlink("a", s.path())];
    let o = w.send("k", FAILS, &entries, &[b"planted"]);
    refused(&o, "a/x");
    s.unchanged();
    // A symlink to `/` in one manifest, then a file below it: refused as well.
    let name = format!("xbuild-hostile-{}", std::process::id());
    let entries = [symlink("r", "/"), file(&format!("r/{name}"), b"x", 0o644)];
    let o = w.send("k", FAILS, &entries, &[b"x"]);
    refused(&o, "symlink");
    assert!(!Path::new("/").join(&name).exists());
}

#[test]
fn a_setuid_file_below_a_symlink_does_not_overwrite_a_file_outside() {
    let w = Worker::start(&[]);
    let s = Sentinel::new(&w.root);
    plant_link(&w, "k", s.path());
    let entries = [file("a/victim", b"evil", 0o4755), symlink("a", s.path())];
    let o = w.send("k", FAILS, &entries, &[b"evil"]);
    refused(&o, "a/victim");
    s.unchanged();
}

#[test]
fn a_directory_below_a_symlink_does_not_delete_a_file_outside() {
    let w = Worker::start(&[]);
    let s = Sentinel::new(&w.root);
    plant_link(&w, "k", s.path());
    let entries = [entry("a/victim", entry::Kind::Dir), symlink("a", s.path())];
    let o = w.send("k", FAILS, &entries, &[]);
    refused(&o, "a/victim");
    s.unchanged();
}

#[test]
fn the_same_hostile_request_twice_after_a_failed_build_changes_nothing_outside() {
    let w = Worker::start(&[]);
    let s = Sentinel::new(&w.root);
    plant_link(&w, "k", s.path());
    let entries = [file("a/victim", b"evil", 0o4755), symlink("a", s.path())];
    for _ in 0..2 {
        let o = w.send("k", FAILS, &entries, &[b"evil"]);
        refused(&o, "a/victim");
        s.unchanged();
        // The refused request did not touch the layout.
        let names: Vec<_> = std::fs::read_dir(w.layout("k"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a"]);
    }
    // An honest manifest of that key replaces the planted link with a directory.
    let o = w.send("k", FAILS, &[file("a/x", b"x", 0o644)], &[b"x"]);
    assert!(!o.error.contains("context manifest"), "{o:?}");
    let a = std::fs::symlink_metadata(w.layout("k").join("a")).unwrap();
    assert!(a.is_dir());
    s.unchanged();
}

#[test]
fn manifests_that_are_not_a_tree_of_clean_paths_are_refused_before_anything_is_written() {
    let w = Worker::start(&[]);
    let s = Sentinel::new(&w.root);
    let f = |p: &str| file(p, b"c", 0o644);
    let mut unknown_kind = f("k");
    unknown_kind.kind = 7;
    let mut device = f("dev");
    device.mode = 0o020644;
    let mut short_digest = f("d");
    short_digest.digest.truncate(16);
    let long = "x".repeat(300);
    let deep = vec!["d"; 300].join("/");
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        ("parent", vec![f("../escape")], "clean relative path"),
        ("absolute", vec![f("/etc/passwd")], "clean relative path"),
        ("dot", vec![f("./a")], "clean relative path"),
        ("empty", vec![f("")], "clean relative path"),
        ("double slash", vec![f("a//b")], "clean relative path"),
        ("nul", vec![f("a\0b")], "NUL"),
        ("twice", vec![f("a"), f("a")], "lists each entry once"),
        (
            "out of order",
            vec![f("b"), f("a")],
            "lists each entry once",
        ),
        (
            "below a file",
            vec![f("a"), f("a/b")],
            "lists as a file, not a directory",
        ),
        (
            "below a symlink",
            vec![symlink("l", s.path()), f("l/victim")],
            "lists as a symlink",
        ),
        ("unknown kind", vec![unknown_kind], "unknown entry kind 7"),
        ("device", vec![device], "mode 0o20644"),
        ("short digest", vec![short_digest], "16 bytes"),
        ("empty target", vec![symlink("l", "")], "symlink target"),
        ("long name", vec![f(&long)], "255 bytes"),
        ("deep", vec![f(&deep)], "256 levels"),
    ];
    for (name, entries, what) in cases {
        let key = format!("case {name}");
        let o = w.send(&key, FAILS, &entries, &[b"c"]);
        assert!(
            o.error.contains("context manifest entry") && o.error.contains(what),
            "{name}: expected a refusal naming {what:?}, got {:?}",
            o.error
        );
        assert!(!w.layout(&key).exists(), "{name}: a layout was started");
    }
    s.unchanged();
}

#[test]
fn file_sizes_that_wrap_around_do_not_pass_the_context_size_limit() {
    let w = Worker::start(&["--max-context-size", "1M"]);
    let mut a = file("a", b"a", 0o644);
    let mut b = file("b", b"b", 0o644);
    a.size = u64::MAX / 2 + 1;
    b.size = u64::MAX / 2 + 1;
    let req = BuildRequest {
        dockerfile_text: FAILS.into(),
        context_key: "wrap".into(),
        context_entries: 2,
        ..BuildRequest::default()
    };
    let o = w.exchange(req, &[a, b], &[b"a", b"b"]);
    assert!(o.error.contains("--max-context-size"), "{o:?}");
}

#[test]
fn the_worker_keeps_clients_files_from_other_local_users() {
    let w = Worker::start(&[]);
    let o = w.send(
        "k",
        FAILS,
        &[file("secret", b"s3cret", 0o644)],
        &[b"s3cret"],
    );
    assert!(!o.error.contains("context manifest"), "{o:?}");
    let worker = w.root.root().join("worker");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    for d in ["", "files", "files/tmp", "contexts", "out"] {
        assert_eq!(mode(&worker.join(d)), 0o700, "worker/{d}");
    }
    let hex = blake3::hash(b"s3cret").to_hex().to_string();
    let shard = worker.join("files").join(&hex[..2]);
    assert_eq!(mode(&shard), 0o700, "{}", shard.display());
    assert_eq!(mode(&shard.join(&hex)) & 0o077, 0, "a stored file");
}

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert, key) paths.
fn certificate(dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

/// Runs `xbuild worker` with `args` until it exits (or `wait` passes: then it is killed and
/// `None` comes back); returns its stderr.
fn worker_exit(t: &TestRoot, args: &[&str], wait: Duration) -> Option<(bool, String)> {
    let log = t.path("listen.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .arg("worker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return Some((st.success(), std::fs::read_to_string(&log).unwrap()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn tls_without_client_authentication_on_a_non_loopback_address_refuses_to_start() {
    let t = TestRoot::new();
    let (cert, key) = certificate(&t.path("pki"));
    let tls = ["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    let mut args = vec!["--listen", "0.0.0.0:0"];
    args.extend(tls);
    let (ok, err) = worker_exit(&t, &args, Duration::from_secs(10))
        .expect("a worker serving anyone on 0.0.0.0 should refuse to start");
    assert!(!ok);
    assert!(
        err.contains("--allow-unauthenticated") && err.contains("--tls-client-ca"),
        "{err}"
    );
    // Plain TCP with --insecure and no token is no better.
    let (ok, err) = worker_exit(
        &t,
        &["--listen", "0.0.0.0:0", "--insecure"],
        Duration::from_secs(10),
    )
    .expect("a worker serving anyone on 0.0.0.0 should refuse to start");
    assert!(!ok && err.contains("--allow-unauthenticated"), "{err}");
    // With the explicit flag it serves (and warns); it is stopped before any traffic.
    args.push("--allow-unauthenticated");
    assert!(
        worker_exit(&t, &args, Duration::from_secs(3)).is_none(),
        "with --allow-unauthenticated the worker serves"
    );
}

#[test]
fn entitlements_are_granted_only_by_a_worker_started_with_them() {
    let t = TestRoot::with_busybox();
    let ctx = t.context("ctx", &[("f", "f")]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:local\nRUN --security=insecure true\n",
    )
    .unwrap();
    let build = |addr: &str| t.build(&ctx, &["--remote", addr, "--allow", "security.insecure"]);
    let plain = Worker::start(&[]);
    let run = build(&plain.addr);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("--allow-insecure-entitlement security.insecure"),
        "{}",
        run.stderr
    );
    let entitled = Worker::start(&["--allow-insecure-entitlement", "security.insecure"]);
    build(&entitled.addr).ok();
    // network.host: refused unless the worker was started with it.
    let req = |key: &str| BuildRequest {
        dockerfile_text: "FROM busybox:local\n".into(),
        context_key: key.into(),
        entitlements: vec!["network.host".into()],
        ..BuildRequest::default()
    };
    let o = entitled.exchange(req("a"), &[], &[]);
    assert!(
        o.error
            .contains("start the worker with --allow-insecure-entitlement network.host"),
        "{o:?}"
    );
    let host = Worker::start(&["--allow-insecure-entitlement", "network.host"]);
    let o = host.exchange(req("b"), &[], &[]);
    assert!(o.error.is_empty(), "{o:?}");
    // The real client carries `--allow network.host`, and the entitled worker's build runs
    // `RUN --network=host`; the worker without it refuses.
    let net = t.context("net", &[("f", "f")]);
    std::fs::write(
        net.join("Dockerfile"),
        "FROM busybox:local\nRUN --network=host true\n",
    )
    .unwrap();
    let build = |addr: &str| t.build(&net, &["--remote", addr, "--allow", "network.host"]);
    build(&host.addr).ok();
    let run = build(&plain.addr);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("--allow-insecure-entitlement network.host"),
        "{}",
        run.stderr
    );
}
