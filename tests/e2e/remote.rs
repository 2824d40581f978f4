//! Remote builds: real `xbuild worker` processes on 127.0.0.1 (each with its own root), real
//! clients sending builds to them over gRPC — plain, with mTLS, with a bearer token.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::LocalRegistry;
use crate::support::{Run, TestRoot};

/// A running `xbuild worker` on its own root; killed on drop.
struct Worker {
    child: Child,
    root: Option<TestRoot>,
    addr: String,
}

impl Worker {
    /// What the worker logged so far.
    fn log(&self) -> String {
        self.root
            .as_ref()
            .map(|r| std::fs::read_to_string(r.path("worker.log")).unwrap_or_default())
            .unwrap_or_default()
    }

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
            .env("XBUILD_LOG", "info")
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
        Worker {
            child,
            root: Some(root),
            addr,
        }
    }

    fn root(&self) -> &TestRoot {
        self.root.as_ref().unwrap()
    }

    /// Stops the worker and checks it left nothing mounted or running.
    fn finish(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.root.take().unwrap().finish();
    }

    /// Kills the worker (as a crash would) and cleans up after the build it was running, as
    /// the next xbuild on its root would.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.root().xbuild(&["prune"]).ok();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many context files the worker said it received (`xbuild: built on worker …`).
fn files_received(run: &Run) -> usize {
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("built on worker"))
        .unwrap_or_else(|| panic!("no transfer note in:\n{}", run.stderr));
    let after = line.split("it received ").nth(1).unwrap();
    after.split(' ').next().unwrap().parse().unwrap()
}

/// `N layer(s), B byte(s) came back, P were here already` of a remote run: (N, P).
fn layers_back(run: &Run) -> (usize, usize) {
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("came back"))
        .unwrap_or_else(|| panic!("no layer note in:\n{}", run.stderr));
    let number = |after: &str| -> usize {
        let tail = line.rsplit(after).next().unwrap();
        tail.split(' ')
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (number("; "), number("came back, "))
}

/// The contents the worker's context file store holds.
fn stored_files(w: &Worker) -> usize {
    let store = w.root().root().join("worker/files");
    std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "tmp")
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum()
}

fn remote_build(client: &TestRoot, ctx: &Path, remote: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--remote", remote];
    args.extend_from_slice(extra);
    client.build(ctx, &args)
}

#[test]
fn a_remote_build_sends_only_the_context_files_the_worker_lacks() {
    let w = Worker::start(&[]);
    let client = TestRoot::new();
    let ctx = client.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY . /src\nRUN cat /src/a.txt /src/b.txt > /out && echo ran-on-worker\n",
            ),
            ("a.txt", "alpha\n"),
            ("b.txt", "beta\n"),
            ("c.txt", "gamma\n"),
            ("ignored/big", "left out by .dockerignore\n"),
            (".dockerignore", "ignored\n"),
        ],
    );
    let first = remote_build(&client, &ctx, &w.addr, &["-t", "remote:1"]).ok();
    // Dockerfile, .dockerignore and three files: the worker had none of them.
    assert_eq!(files_received(&first), 5, "{}", first.stderr);
    assert!(first.stderr.contains("ran-on-worker"), "logs stream back");
    assert_eq!(first.count("cached"), 0);
    let tree = client.export("remote:1");
    assert_eq!(tree.text("out"), "alpha\nbeta\n");

    // One file edited: only it is sent.
    std::fs::write(ctx.join("b.txt"), "BETA\n").unwrap();
    let second = remote_build(&client, &ctx, &w.addr, &["-t", "remote:2"]).ok();
    assert_eq!(files_received(&second), 1, "{}", second.stderr);
    assert_eq!(client.export("remote:2").text("out"), "alpha\nBETA\n");
    // The worker drops the old content, which no context lists any more (after the build).
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored_files(&w) != 5 {
        assert!(
            Instant::now() < deadline,
            "the worker keeps {} contents:\n{}",
            stored_files(&w),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Nothing changed: nothing is sent and nothing runs; an OCI layout comes back.
    let oci = client.path("oci");
    let out = format!("type=oci,dest={},tar=false", oci.display());
    let third = remote_build(&client, &ctx, &w.addr, &["--output", &out]).ok();
    assert_eq!(files_received(&third), 0);
    assert!(third.count("cached") >= 2, "{}", third.stderr);
    let st = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}", oci.display()))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    client.finish();
    w.finish();
}

/// The client sent no manifest: the worker held this context (by its manifest digest).
fn context_held(run: &Run) -> bool {
    run.stderr.contains("no manifest was sent")
}

/// The worker's one context layout.
fn layout_dir(w: &Worker) -> PathBuf {
    let contexts = w.root().root().join("worker/contexts");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(contexts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

#[test]
fn an_unchanged_context_goes_by_its_digest_a_changed_file_alone_is_sent_a_tampered_layout_is_redone()
 {
    let w = Worker::start(&[]);
    let client = TestRoot::new();
    let ctx = client.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY . /src\nRUN cat /src/a.txt /src/b.txt > /out\n",
            ),
            ("a.txt", "alpha\n"),
            ("b.txt", "beta\n"),
        ],
    );
    let first = remote_build(&client, &ctx, &w.addr, &["-t", "d:1"]).ok();
    assert!(!context_held(&first), "{}", first.stderr);
    assert_eq!(files_received(&first), 3);

    // Unchanged: the worker holds it, nothing is sent, nothing runs.
    let second = remote_build(&client, &ctx, &w.addr, &["-t", "d:2"]).ok();
    assert!(context_held(&second), "{}", second.stderr);
    assert_eq!(files_received(&second), 0);
    assert_eq!(executed(&second), 0, "{}", second.stderr);
    assert_eq!(client.export("d:2").text("out"), "alpha\nbeta\n");

    // One file changed: the manifest goes, and only that file.
    std::fs::write(ctx.join("b.txt"), "BETA\n").unwrap();
    let third = remote_build(&client, &ctx, &w.addr, &["-t", "d:3"]).ok();
    assert!(!context_held(&third), "{}", third.stderr);
    assert_eq!(files_received(&third), 1);
    assert_eq!(client.export("d:3").text("out"), "alpha\nBETA\n");
    let fourth = remote_build(&client, &ctx, &w.addr, &["-t", "d:4"]).ok();
    assert!(context_held(&fourth), "{}", fourth.stderr);

    // The layout changed on the worker behind its back (same size, same mtime): it is not
    // trusted. A build that reads it (here every step runs) finds the change, lays the file
    // out again from the content the worker verified, and sees the client's content.
    let a = layout_dir(&w).join("a.txt");
    let mtime = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&a).unwrap());
    std::fs::write(&a, "ALPHA\n").unwrap();
    filetime::set_file_times(&a, mtime, mtime).unwrap();
    let fifth = remote_build(&client, &ctx, &w.addr, &["-t", "d:5", "--no-cache"]).ok();
    assert_eq!(files_received(&fifth), 0);
    assert_eq!(executed(&fifth), 2, "{}", fifth.stderr);
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "alpha\n");
    assert_eq!(client.export("d:5").text("out"), "alpha\nBETA\n");
    assert!(
        w.log().contains("changed outside the worker"),
        "{}",
        w.log()
    );
    client.finish();
    w.finish();
}

#[test]
fn a_worker_refuses_a_context_over_its_size_limit() {
    let w = Worker::start(&["--max-context-size", "1K"]);
    let client = TestRoot::new();
    let ctx = client.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox:local\nCOPY big /\n"),
            ("big", &"x".repeat(4096)),
        ],
    );
    let run = remote_build(&client, &ctx, &w.addr, &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--max-context-size"), "{}", run.stderr);
    assert!(run.stderr.contains(&w.addr), "{}", run.stderr);
}

/// A CA, and certificates it signs (PEM files in `dir`).
struct Pki {
    dir: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        Pki {
            dir,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A certificate for `names` with `usage`, written as NAME.pem and NAME-key.pem.
    fn issue(&self, name: &str, names: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(
            self.dir.join(format!("{name}-key.pem")),
            key.serialize_pem(),
        )
        .unwrap();
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

#[test]
fn mtls_refuses_a_client_without_a_valid_certificate() {
    let t = TestRoot::new();
    let pki = Pki::new(t.path("pki"));
    pki.issue(
        "server",
        &["127.0.0.1", "localhost"],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    pki.issue(
        "client",
        &["client"],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    let rogue = Pki::new(t.path("rogue"));
    rogue.issue(
        "client",
        &["client"],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    let w = Worker::start(&[
        "--tls-cert",
        &pki.path("server.pem"),
        "--tls-key",
        &pki.path("server-key.pem"),
        "--tls-client-ca",
        &pki.path("ca.pem"),
    ]);
    let ctx = t.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox:local\nCOPY a /a\n"),
            ("a", "a"),
        ],
    );
    let ca = pki.path("ca.pem");
    let good = remote_build(
        &t,
        &ctx,
        &w.addr,
        &[
            "--remote-tls-ca",
            &ca,
            "--remote-cert",
            &pki.path("client.pem"),
            "--remote-key",
            &pki.path("client-key.pem"),
        ],
    );
    good.ok();
    let none = remote_build(&t, &ctx, &w.addr, &["--remote-tls-ca", &ca]);
    assert_ne!(none.code, 0, "a client without a certificate was served");
    assert!(none.stderr.contains(&w.addr), "{}", none.stderr);
    let wrong = remote_build(
        &t,
        &ctx,
        &w.addr,
        &[
            "--remote-tls-ca",
            &ca,
            "--remote-cert",
            &rogue.path("client.pem"),
            "--remote-key",
            &rogue.path("client-key.pem"),
        ],
    );
    assert_ne!(
        wrong.code, 0,
        "a client with a certificate of another CA was served"
    );
    // Plain TCP to a TLS worker fails too.
    assert_ne!(remote_build(&t, &ctx, &w.addr, &[]).code, 0);
    w.finish();
    t.finish();
}

#[test]
fn token_mode_refuses_a_wrong_token() {
    let t = TestRoot::new();
    std::fs::write(t.path("token"), "s3cret-token\n").unwrap();
    std::fs::write(t.path("wrong"), "guess\n").unwrap();
    let token = t.path("token").display().to_string();
    let w = Worker::start(&["--token-file", &token]);
    let ctx = t.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox:local\nCOPY a /a\n"),
            ("a", "a"),
        ],
    );
    remote_build(&t, &ctx, &w.addr, &["--remote-token-file", &token]).ok();
    let wrong = t.path("wrong").display().to_string();
    let run = remote_build(&t, &ctx, &w.addr, &["--remote-token-file", &wrong]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    let run = remote_build(&t, &ctx, &w.addr, &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("bearer token"), "{}", run.stderr);
    w.finish();
    t.finish();
}

/// Starts a build in the background and waits until the worker runs its RUN step.
fn build_until_run_starts(client: &TestRoot, ctx: &Path, remote: &str, worker: &Worker) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(client.root())
        .args(["build", "--progress=plain", "--remote", remote])
        .arg(ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = worker.root().root().join("runc");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(&state).is_ok_and(|mut d| d.next().is_some()) {
        assert!(Instant::now() < deadline, "the RUN step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn killing_a_worker_mid_build_fails_cleanly_or_moves_to_the_next() {
    let client = TestRoot::new();
    let ctx = client.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN sleep 3 && echo done > /done\n",
        )],
    );
    let mut a = Worker::start(&[]);
    let child = build_until_run_starts(&client, &ctx, &a.addr, &a);
    a.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build survived its worker");
    assert!(
        stderr.contains(&a.addr) && stderr.contains("connection was lost"),
        "{stderr}"
    );

    let b = Worker::start(&[]);
    let mut a2 = Worker::start(&[]);
    let both = format!("{},{}", a2.addr, b.addr);
    let child = build_until_run_starts(&client, &ctx, &both, &a2);
    a2.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("built on worker {}", b.addr)),
        "{stderr}"
    );
    a.finish();
    a2.finish();
    b.finish();
    client.finish();
}

#[test]
fn a_second_worker_gets_every_step_from_the_shared_registry_cache() {
    let registry = LocalRegistry::start(None);
    let cache = format!("{}/xbuild/cache:remote", registry.host());
    let a = Worker::start(&["--cache-registry", &cache]);
    let b = Worker::start(&["--cache-registry", &cache]);
    // Workers share cache for the same base image: B gets A's busybox:local (each root's own
    // `import` records its own creation time, so the two would differ).
    let (ra, rb) = (a.root.as_ref().unwrap(), b.root.as_ref().unwrap());
    let base = ra.path("base.tar");
    ra.xbuild(&["save", "busybox:local", "-o", base.to_str().unwrap()])
        .ok();
    rb.xbuild(&["load", "-i", base.to_str().unwrap()]).ok();
    let client = TestRoot::new();
    let ctx = client.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY a.txt /a.txt\nRUN cp /a.txt /b.txt\nRUN echo two > /two\n",
            ),
            ("a.txt", "shared\n"),
        ],
    );
    let on_a = remote_build(&client, &ctx, &a.addr, &["-t", "shared:a"]).ok();
    assert_eq!(on_a.count("cached"), 0, "{}", on_a.stderr);
    assert!(on_a.count("done") >= 3, "{}", on_a.stderr);
    let on_b = remote_build(&client, &ctx, &b.addr, &["-t", "shared:b"]).ok();
    assert!(
        on_b.count("cached") >= 3,
        "{}\nworker A:\n{}\nworker B:\n{}",
        on_b.stderr,
        a.log(),
        b.log()
    );
    assert!(
        on_b.stderr.contains("0 step(s) executed"),
        "{}",
        on_b.stderr
    );
    assert_eq!(client.export("shared:b").text("b.txt"), "shared\n");
    a.finish();
    b.finish();
    client.finish();
}

/// `xbuild: N step(s) executed, M cached` of a run.
fn executed(run: &Run) -> usize {
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("step(s) executed"))
        .unwrap_or_else(|| panic!("no summary in:\n{}", run.stderr));
    let after = line.split("xbuild: ").nth(1).unwrap();
    after.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn concurrent_builds_on_one_worker_run_a_shared_step_once() {
    let w = Worker::start(&["--max-parallel", "2"]);
    let clients = [TestRoot::new(), TestRoot::new()];
    let dockerfile = "FROM busybox:local\nRUN sleep 1 && date +%s%N > /stamp\n";
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ctx = c.context(&format!("ctx{i}"), &[("Dockerfile", dockerfile)]);
                let addr = w.addr.clone();
                s.spawn(move || remote_build(c, &ctx, &addr, &["-t", "shared:1"]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let runs: Vec<Run> = runs.into_iter().map(Run::ok).collect();
    assert_eq!(
        executed(&runs[0]) + executed(&runs[1]),
        1,
        "the RUN ran twice:\n{}\n{}",
        runs[0].stderr,
        runs[1].stderr
    );
    assert_eq!(
        clients[0].export("shared:1").text("stamp"),
        clients[1].export("shared:1").text("stamp")
    );
    for c in clients {
        c.finish();
    }
    w.finish();
}

#[test]
fn an_image_comes_back_with_only_the_layers_the_client_lacks_and_archives_match() {
    let w = Worker::start(&[]);
    let client = TestRoot::new();
    let ctx = client.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY a /a\nRUN echo x > /x\n",
            ),
            ("a", "a\n"),
        ],
    );
    let first = remote_build(&client, &ctx, &w.addr, &["-t", "blobs:1"]).ok();
    let (got, had) = layers_back(&first);
    assert!(got >= 2 && had == 0, "{}", first.stderr);
    // Nothing changed: no layer comes back, the image is tagged from the client's store.
    let again = remote_build(&client, &ctx, &w.addr, &["-t", "blobs:2"]).ok();
    assert_eq!(layers_back(&again), (0, got), "{}", again.stderr);
    assert_eq!(client.export("blobs:2").text("x"), "x\n");
    // Archives the client writes from its store are, byte for byte, what the worker writes.
    for kind in ["oci", "docker"] {
        let remote = client.path(&format!("remote-{kind}.tar"));
        let local = w.root().path(&format!("local-{kind}.tar"));
        let output = |dest: &Path| format!("type={kind},dest={}", dest.display());
        let args = ["--build-arg", "SOURCE_DATE_EPOCH=0", "-t", "blobs:1"];
        let (ro, lo) = (output(&remote), output(&local));
        let mut remote_args = args.to_vec();
        remote_args.extend(["--output", &ro]);
        remote_build(&client, &ctx, &w.addr, &remote_args).ok();
        let mut local_args = args.to_vec();
        local_args.extend(["--output", &lo]);
        w.root().build(&ctx, &local_args).ok();
        assert!(
            std::fs::read(&remote).unwrap() == std::fs::read(&local).unwrap(),
            "type={kind}: the archives differ"
        );
    }
    let st = Command::new("skopeo")
        .arg("inspect")
        .arg(format!(
            "oci-archive:{}",
            client.path("remote-oci.tar").display()
        ))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    client.finish();
    w.finish();
}

#[test]
fn max_parallel_one_runs_the_steps_of_concurrent_builds_one_after_the_other() {
    let w = Worker::start(&["--max-parallel", "1"]);
    let clients = [TestRoot::new(), TestRoot::new()];
    std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let dockerfile = format!(
                    "FROM busybox:local\nRUN cut -d' ' -f1 /proc/uptime > /start && sleep 1 && cut -d' ' -f1 /proc/uptime > /end && echo {i} > /who\n"
                );
                let ctx = c.context("ctx", &[("Dockerfile", &dockerfile)]);
                let addr = w.addr.clone();
                s.spawn(move || remote_build(c, &ctx, &addr, &["-t", "par:1"]))
            })
            .collect();
        for h in handles {
            h.join().unwrap().ok();
        }
    });
    // The host's uptime (seconds, to 10 ms) as each step began and ended.
    let mut spans: Vec<(f64, f64)> = clients
        .iter()
        .map(|c| {
            let t = c.export("par:1");
            let n = |f: &str| t.text(f).trim().parse::<f64>().unwrap();
            (n("start"), n("end"))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        spans[0].1 <= spans[1].0,
        "the RUN steps overlapped under --max-parallel 1: {spans:?}"
    );
    for c in clients {
        c.finish();
    }
    w.finish();
}
