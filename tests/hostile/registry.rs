//! Registries: oversized and endless responses from a fake registry on 127.0.0.1.
//!
//! Each test runs a small HTTP/1.1 server on a loopback port that answers as a broken or hostile
//! registry would, then `xbuild pull` (or a build `FROM` it) under `/usr/bin/time -v` and
//! `timeout`: the run must fail within [`FAST`], with a clear error naming the limit, the
//! reference and the URL, with a peak RSS under [`MAX_RSS_KIB`], and with nothing stored.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::TestRoot;

/// How long a failing pull may take (the never-answering registry needs two stall timeouts).
const FAST: Duration = Duration::from_secs(30);
/// The peak RSS a failing pull may reach, in KiB.
const MAX_RSS_KIB: u64 = 200 << 10;

/// One request as the fake registry saw it.
struct Request {
    path: String,
}

type Handler = dyn Fn(&Request, &mut TcpStream, u16) + Send + Sync;

/// A fake registry on 127.0.0.1: each connection gets one answer from `handler`, then closes.
struct Fake {
    port: u16,
    hits: Arc<AtomicUsize>,
    blob_hits: Arc<AtomicUsize>,
}

impl Fake {
    fn start(handler: impl Fn(&Request, &mut TcpStream, u16) + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handler: Arc<Handler> = Arc::new(handler);
        let hits = Arc::new(AtomicUsize::new(0));
        let blob_hits = Arc::new(AtomicUsize::new(0));
        let (h, b) = (hits.clone(), blob_hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                let (handler, h, b) = (handler.clone(), h.clone(), b.clone());
                std::thread::spawn(move || {
                    let Some(req) = read_request(&s) else { return };
                    h.fetch_add(1, Ordering::SeqCst);
                    if req.path.contains("/blobs/") {
                        b.fetch_add(1, Ordering::SeqCst);
                    }
                    handler(&req, &mut s, port);
                });
            }
        });
        Fake {
            port,
            hits,
            blob_hits,
        }
    }

    /// `127.0.0.1:PORT/x:y`, the image the fake serves.
    fn image(&self) -> String {
        format!("127.0.0.1:{}/x:y", self.port)
    }
}

fn read_request(s: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
    }
    Some(Request { path })
}

fn respond(s: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
}

/// A chunked body that never ends (until the client hangs up).
fn endless_chunked(s: &mut TcpStream, status: &str, headers: &str, prefix: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    if !prefix.is_empty() && write_chunk(s, prefix).is_err() {
        return;
    }
    let chunk = vec![b' '; 64 << 10];
    while write_chunk(s, &chunk).is_ok() {}
}

fn write_chunk(s: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    s.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    s.write_all(data)?;
    s.write_all(b"\r\n")
}

/// Answers `/v2/` with 200; everything else with `other`.
fn registry(
    other: impl Fn(&Request, &mut TcpStream, u16) + Send + Sync + 'static,
) -> impl Fn(&Request, &mut TcpStream, u16) + Send + Sync + 'static {
    move |req, s, port| {
        if req.path == "/v2/" {
            respond(s, "200 OK", "", b"{}");
        } else {
            other(req, s, port)
        }
    }
}

const MANIFEST_PATH: &str = "/v2/x/manifests/y";
const OCI_MANIFEST: &str = "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n";

fn sha256(data: &[u8]) -> String {
    use std::process::Stdio;
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", &hex[..64])
}

/// An image config and a manifest naming it (no layers) with `config_size` as its size.
fn image(config_size: Option<u64>) -> (Vec<u8>, String, Vec<u8>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let digest = sha256(&config);
    let size = config_size.unwrap_or(config.len() as u64);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":{size}}},"layers":[]}}"#
    );
    (config, digest, manifest.into_bytes())
}

/// A registry serving [`image`]'s manifest and answering blob requests with `blob`.
fn serving_image(
    config_size: Option<u64>,
    blob: impl Fn(&[u8], &mut TcpStream) + Send + Sync + 'static,
) -> (Fake, String) {
    let (config, digest, manifest) = image(config_size);
    let fake = Fake::start(registry(move |req, s, _| {
        if req.path == MANIFEST_PATH {
            respond(s, "200 OK", OCI_MANIFEST, &manifest);
        } else if req.path.contains("/blobs/") {
            blob(&config, s);
        } else {
            respond(s, "404 Not Found", "", b"{}");
        }
    }));
    (fake, digest)
}

/// One bounded run of xbuild.
struct Outcome {
    code: i32,
    stderr: String,
    elapsed: Duration,
    rss_kib: u64,
}

/// The RSS at which the watchdog kills xbuild (so that a regression cannot take the machine
/// down), in KiB.
const KILL_RSS_KIB: u64 = 1 << 20;
/// How long the watchdog lets xbuild run.
const KILL_AFTER: Duration = Duration::from_secs(90);

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `xbuild --root ROOT args…` under `/usr/bin/time -v`, with a watchdog that kills xbuild
/// once it passes [`KILL_RSS_KIB`] or [`KILL_AFTER`].
fn run(t: &TestRoot, args: &[&str]) -> Outcome {
    use std::io::Read;
    use std::process::Stdio;
    let start = Instant::now();
    let mut time = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run xbuild under /usr/bin/time");
    let mut err = time.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let children = format!("/proc/{0}/task/{0}/children", time.id());
    let status = loop {
        if let Some(st) = time.try_wait().unwrap() {
            break st;
        }
        let xbuild: Option<u32> = std::fs::read_to_string(&children)
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
        if let Some(pid) = xbuild
            && (rss_kib(pid).unwrap_or(0) > KILL_RSS_KIB || start.elapsed() > KILL_AFTER)
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let stderr = reader.join().unwrap();
    let rss_kib = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS in /usr/bin/time's output:\n{stderr}"));
    Outcome {
        code: status.code().unwrap_or(-1),
        stderr,
        elapsed,
        rss_kib,
    }
}

/// Asserts a fast, bounded, clean failure whose message has every one of `words`, and that
/// nothing was stored under the root.
fn assert_refused(t: &TestRoot, o: &Outcome, image: &str, words: &[&str]) {
    assert!(
        o.code != 0 && o.code != 137,
        "expected a clean failure, got exit {}:\n{}",
        o.code,
        o.stderr
    );
    assert!(
        o.elapsed < FAST,
        "took {:?} (limit {FAST:?}):\n{}",
        o.elapsed,
        o.stderr
    );
    assert!(
        o.rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB (limit {MAX_RSS_KIB} KiB):\n{}",
        o.rss_kib,
        o.stderr
    );
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    for w in words {
        assert!(o.stderr.contains(w), "{w:?} missing from:\n{}", o.stderr);
    }
    for dir in ["blobs/sha256", "tmp"] {
        let d = t.root().join(dir);
        if let Ok(entries) = std::fs::read_dir(&d) {
            let left: Vec<_> = entries.map(|e| e.unwrap().file_name()).collect();
            assert!(left.is_empty(), "{} holds {left:?}", d.display());
        }
    }
    let images = t.xbuild(&["images"]);
    assert!(
        !images.stdout.contains(image) && !images.stdout.contains("/x "),
        "{}",
        images.stdout
    );
}

fn pull(t: &TestRoot, image: &str) -> Outcome {
    run(t, &["pull", image])
}

fn build_from(t: &TestRoot, image: &str) -> Outcome {
    let ctx = t.context("ctx", &[("Dockerfile", &format!("FROM {image}\n"))]);
    run(t, &["build", "-t", "out:1", ctx.to_str().unwrap()])
}

#[test]
fn an_endless_manifest_body_is_cut_at_the_manifest_limit() {
    let fake = Fake::start(registry(|req, s, _| {
        if req.path == MANIFEST_PATH {
            endless_chunked(s, "200 OK", OCI_MANIFEST, b"{\"schemaVersion\":2,");
        }
    }));
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    let url = format!("http://{}/v2/x/manifests/y", image.trim_end_matches("/x:y"));
    assert_refused(&t, &o, &image, &["MAX_MANIFEST_SIZE", &image, &url]);
    // A build FROM the same image fails the same way.
    let o = build_from(&t, &image);
    assert_refused(&t, &o, &image, &["MAX_MANIFEST_SIZE", &url]);
}

#[test]
fn a_100_mib_manifest_is_refused_by_its_content_length() {
    let fake = Fake::start(registry(|req, s, _| {
        if req.path == MANIFEST_PATH {
            let n = 100u64 << 20;
            let head = format!(
                "HTTP/1.1 200 OK\r\n{OCI_MANIFEST}Content-Length: {n}\r\nConnection: close\r\n\r\n"
            );
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b' '; 1 << 20];
            for _ in 0..100 {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
    }));
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(
        &t,
        &o,
        &image,
        &["MAX_MANIFEST_SIZE", "declares 104857600 bytes", &image],
    );
}

#[test]
fn a_100_mib_chunked_manifest_is_cut_at_the_limit() {
    let fake = Fake::start(registry(|req, s, _| {
        if req.path == MANIFEST_PATH {
            let head = format!(
                "HTTP/1.1 200 OK\r\n{OCI_MANIFEST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b' '; 1 << 20];
            for _ in 0..100 {
                if write_chunk(s, &chunk).is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n");
        }
    }));
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(&t, &o, &image, &["MAX_MANIFEST_SIZE", &image]);
}

#[test]
fn a_content_length_lie_reads_no_more_than_declared() {
    // Declares 200 bytes, then sends without end: xbuild reads 200 and finds no manifest.
    let fake = Fake::start(registry(|req, s, _| {
        if req.path == MANIFEST_PATH {
            let head = format!(
                "HTTP/1.1 200 OK\r\n{OCI_MANIFEST}Content-Length: 200\r\nConnection: close\r\n\r\n"
            );
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b' '; 64 << 10];
            while s.write_all(&chunk).is_ok() {}
        }
    }));
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(&t, &o, &image, &["not a manifest (200 bytes)", &image]);
}

#[test]
fn an_endless_error_body_is_truncated() {
    let fake = Fake::start(registry(|req, s, _| {
        if req.path == MANIFEST_PATH {
            endless_chunked(s, "404 Not Found", "", b"MANIFEST_UNKNOWN ");
        }
    }));
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(&t, &o, &image, &["HTTP 404", &image]);
    assert!(
        o.stderr.len() < 64 << 10,
        "{} bytes of error",
        o.stderr.len()
    );
}

#[test]
fn an_endless_token_response_is_cut_at_the_token_limit() {
    let fake = Fake::start(|req, s, port| {
        if req.path == "/v2/" {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"\r\n"
            );
            respond(s, "401 Unauthorized", &challenge, b"{}");
        } else if req.path.starts_with("/token") {
            endless_chunked(s, "200 OK", "", b"{\"token\":\"");
        }
    });
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(
        &t,
        &o,
        &image,
        &["MAX_TOKEN_SIZE", "token response", &image, "/token?"],
    );
}

#[test]
fn a_blob_longer_than_its_descriptor_is_cut_there() {
    let (fake, digest) = serving_image(None, |config, s| {
        endless_chunked(s, "200 OK", "", config);
    });
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(
        &t,
        &o,
        &image,
        &[&digest, "sent more bytes than that", "/v2/x/blobs/"],
    );
}

#[test]
fn a_blob_whose_content_length_exceeds_its_descriptor_is_not_read() {
    let (fake, digest) = serving_image(None, |config, s| {
        let mut body = config.to_vec();
        body.extend_from_slice(&[b' '; 1000]);
        respond(s, "200 OK", "", &body);
    });
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(&t, &o, &image, &[&digest, "Content-Length"]);
}

#[test]
fn a_blob_shorter_than_its_descriptor_is_refused() {
    let (fake, digest) = serving_image(None, |config, s| {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        let _ = s.write_all(head.as_bytes());
        let _ = write_chunk(s, &config[..10]);
        let _ = s.write_all(b"0\r\n\r\n");
    });
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(&t, &o, &image, &[&digest, "sent only 10 bytes"]);
}

#[test]
fn a_blob_with_the_wrong_digest_is_not_stored() {
    let (fake, digest) = serving_image(None, |config, s| {
        let mut wrong = config.to_vec();
        wrong[2] ^= 1;
        respond(s, "200 OK", "", &wrong);
    });
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(&t, &o, &image, &[&digest, "digest mismatch"]);
    let o = build_from(&t, &image);
    assert_refused(&t, &o, &image, &[&digest, "digest mismatch"]);
}

#[test]
fn a_config_descriptor_over_the_config_limit_is_not_fetched() {
    let (fake, digest) = serving_image(Some(1 << 40), |config, s| {
        respond(s, "200 OK", "", config);
    });
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(&t, &o, &image, &["MAX_CONFIG_SIZE", &digest]);
    assert_eq!(
        fake.blob_hits.load(Ordering::SeqCst),
        0,
        "the blob was asked for"
    );
}

#[test]
fn a_registry_that_never_answers_is_given_up_quickly() {
    let fake = Fake::start(|_, s, _| {
        // Hold the connection open, answering nothing.
        let _keep = s.try_clone();
        std::thread::sleep(Duration::from_secs(120));
    });
    let t = TestRoot::new();
    let image = fake.image();
    let o = pull(&t, &image);
    assert_refused(&t, &o, &image, &["stalled", &image, "STALL_TIMEOUT"]);
    assert!(fake.hits.load(Ordering::SeqCst) >= 1);
}

/// Issue 16 item 10: a registry answering a pinned reference (`x@sha256:…`) with a manifest
/// that hashes to another digest is refused, naming the reference and both digests, and
/// nothing is stored.
#[test]
fn a_pinned_manifest_whose_content_has_another_digest_is_refused() {
    let (config, _, manifest) = image(None);
    let actual = sha256(&manifest);
    let pinned_digest = format!("sha256:{}", "ab".repeat(32));
    let fake = Fake::start(registry(move |req, s, _| {
        if req.path.starts_with("/v2/x/manifests/") {
            respond(s, "200 OK", OCI_MANIFEST, &manifest);
        } else if req.path.contains("/blobs/") {
            respond(s, "200 OK", "", &config);
        } else {
            respond(s, "404 Not Found", "", b"{}");
        }
    }));
    let t = TestRoot::new();
    let name = fake.image();
    let pinned = format!(
        "{}@{pinned_digest}",
        name.strip_suffix(":y").expect("the fake's image is x:y")
    );
    let want = [pinned.as_str(), actual.as_str(), "digest mismatch"];
    let o = pull(&t, &pinned);
    assert_refused(&t, &o, &pinned, &want);
    let o = build_from(&t, &pinned);
    assert_refused(&t, &o, &pinned, &want);
}
