//! Pushes against scripted registries: raw HTTP served from a `TcpListener` on 127.0.0.1, one
//! request per connection. A hostile one (an endless error body), and one that sends every
//! form of upload `Location` (absolute path, relative, another host).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xbuild_cache::Store;
use xbuild_cache::oci::{ImageConfigFile, Manifest};
use xbuild_llb::Digest;
use xbuild_registry::{MAX_ERROR_BODY, MountSources, Reference, Registry, RegistryOptions};

/// Where the endless body stops if a client keeps reading (so that a broken client fails the
/// test instead of exhausting the machine).
const GIVE_UP: u64 = 256 << 20;

/// A small image (a config and one layer of `layer_size` bytes) written into `store`.
fn image(store: &Store, layer_size: usize) -> Digest {
    let bytes: Vec<u8> = (0..layer_size).map(|i| (i % 251) as u8).collect();
    common::image(store, &bytes, ImageConfigFile::default(), false)
}

/// Reads one request: its head, and how many bytes of body followed (its `Content-Length`).
async fn request(s: &mut tokio::net::TcpStream) -> (String, usize) {
    let mut data = Vec::new();
    let mut buf = [0u8; 64 << 10];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return (String::from_utf8_lossy(&data).into_owned(), 0),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = data.len() - end;
    while body < length {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body += n,
        }
    }
    (head, body)
}

/// The value of header `name` in a request head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// A registry that grants anonymous access, has no blob, and answers every upload POST with a
/// 500 whose chunked body never ends. Returns its host and the most bytes of error body it
/// managed to write on one connection.
async fn endless_error_registry() -> (String, Arc<AtomicU64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = l.local_addr().unwrap().to_string();
    let most = Arc::new(AtomicU64::new(0));
    let seen = most.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let most = seen.clone();
            tokio::spawn(async move {
                let (head, _) = request(&mut s).await;
                let close = "Content-Length: 0\r\nConnection: close\r\n\r\n";
                let answer = if head.starts_with("GET /v2/ ") {
                    format!("HTTP/1.1 200 OK\r\n{close}")
                } else if head.starts_with("HEAD ") {
                    format!("HTTP/1.1 404 Not Found\r\n{close}")
                } else if head.starts_with("POST ") {
                    "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_string()
                } else {
                    format!("HTTP/1.1 400 Bad Request\r\n{close}")
                };
                if s.write_all(answer.as_bytes()).await.is_err() || !head.starts_with("POST ") {
                    return;
                }
                let mut chunk = b"1000\r\n".to_vec();
                chunk.extend(b"endless error ".iter().cycle().take(4096));
                chunk.extend_from_slice(b"\r\n");
                let mut written = 0u64;
                while written < GIVE_UP && s.write_all(&chunk).await.is_ok() {
                    written += chunk.len() as u64;
                }
                most.fetch_max(written, Ordering::Relaxed);
            });
        }
    });
    (host, most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_reads_at_most_max_error_body_of_an_endless_error_response() {
    let (host, most) = endless_error_registry().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let manifest = image(&store, 16);
    let registry = Registry::new(RegistryOptions {
        docker_config: Some(dir.path().join("no-config.json")),
        ..Default::default()
    })
    .unwrap();
    let target = Reference::parse(&format!("{host}/hostile/app:1")).unwrap();
    let pushed = tokio::time::timeout(
        Duration::from_secs(60),
        registry.push(&store, &manifest, &target, &MountSources::new()),
    )
    .await
    .expect("the push returns instead of reading the endless body");
    let msg = pushed.unwrap_err().to_string();
    assert!(
        msg.contains(": upload of blob sha256:")
            && msg.contains("POST http://")
            && msg.contains("/v2/hostile/app/blobs/uploads/: HTTP 500: endless error")
            && msg.contains("(after 4 attempts)"),
        "{msg}"
    );
    assert!(
        msg.len() < 2048,
        "the message is bounded: {} bytes",
        msg.len()
    );
    // What the client did not read stays in socket buffers (a few MiB on loopback) until it
    // hangs up: far less than a client reading on would have taken. (A moment for the server
    // to see the last hang-up.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let most = most.load(Ordering::Relaxed);
    assert!(
        (MAX_ERROR_BODY..32 << 20).contains(&most),
        "the registry wrote {most} bytes of error body on one connection"
    );
}

/// One request as the registry saw it.
#[derive(Debug)]
struct Seen {
    /// `METHOD /path?query`.
    line: String,
    /// Its `Host` header.
    host: String,
    /// Its `Authorization` header.
    authorization: Option<String>,
    /// Its `Content-Range` header.
    range: Option<String>,
    /// Bytes of body.
    body: usize,
}

/// A registry that wants a Bearer token, mounts any blob asked for, and leads a chunked upload
/// through an absolute-path `Location`, then a relative one, then one on another host
/// (`localhost` instead of `127.0.0.1`), then none (the upload goes on where it is).
async fn relocating_registry() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        let patches = Arc::new(AtomicU64::new(0));
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let (log, patches) = (log.clone(), patches.clone());
            tokio::spawn(async move {
                let (head, body) = request(&mut s).await;
                let line = head.split(' ').take(2).collect::<Vec<_>>().join(" ");
                let (status, headers, text) = if line == "GET /v2/" {
                    (
                        "401 Unauthorized",
                        format!(
                            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"\r\n"
                        ),
                        "{}",
                    )
                } else if line.starts_with("GET /token?") {
                    ("200 OK", String::new(), r#"{"token":"tok"}"#)
                } else if line.starts_with("HEAD ") {
                    ("404 Not Found", String::new(), "")
                } else if line.starts_with("POST /v2/app/blobs/uploads/?mount=") {
                    ("201 Created", String::new(), "")
                } else if line == "POST /v2/app/blobs/uploads/" {
                    (
                        "202 Accepted",
                        "Location: /v2/app/blobs/uploads/one?_state=s1\r\n".into(),
                        "",
                    )
                } else if line.starts_with("PATCH ") {
                    let location = match patches.fetch_add(1, Ordering::Relaxed) {
                        0 => "Location: two?_state=s2\r\n".to_string(),
                        1 => format!(
                            "Location: http://localhost:{port}/elsewhere/three?_state=s3\r\n"
                        ),
                        _ => String::new(),
                    };
                    ("202 Accepted", location, "")
                } else if line.starts_with("PUT ") {
                    ("201 Created", String::new(), "")
                } else {
                    ("400 Bad Request", String::new(), "")
                };
                log.lock().unwrap().push(Seen {
                    line,
                    host: header(&head, "host").unwrap_or_default(),
                    authorization: header(&head, "authorization"),
                    range: header(&head, "content-range"),
                    body,
                });
                let answer = format!(
                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("127.0.0.1:{port}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_follows_absolute_path_relative_and_other_host_locations_without_leaking_the_token() {
    let (host, seen) = relocating_registry().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let manifest = image(&store, 9 << 20);
    let m: Manifest = store.read_json(&manifest).unwrap();
    let registry = Registry::new(RegistryOptions {
        docker_config: Some(dir.path().join("no-config.json")),
        chunked_upload_above: 1 << 20,
        ..Default::default()
    })
    .unwrap();
    let target = Reference::parse(&format!("{host}/app:1")).unwrap();
    let sources = MountSources::from([(m.config.digest.clone(), vec!["base/img".to_string()])]);
    let pushed = tokio::time::timeout(
        Duration::from_secs(60),
        registry.push(&store, &manifest, &target, &sources),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((pushed.mounted, pushed.uploaded, pushed.present), (1, 1, 0));
    assert_eq!(pushed.manifest, manifest);

    let seen = seen.lock().unwrap();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    let layer = m.layers[0].digest.as_str().replace(':', "%3A");
    let config = m.config.digest.as_str().replace(':', "%3A");
    let want_patches = [
        ("PATCH /v2/app/blobs/uploads/one?_state=s1", "0-4194303"),
        (
            "PATCH /v2/app/blobs/uploads/two?_state=s2",
            "4194304-8388607",
        ),
        ("PATCH /elsewhere/three?_state=s3", "8388608-9437183"),
    ];
    for (line, range) in want_patches {
        let p = seen
            .iter()
            .find(|s| s.line == line)
            .unwrap_or_else(|| panic!("no {line} in {lines:?}"));
        assert_eq!(p.range.as_deref(), Some(range), "{p:?}");
        let (start, end) = range.split_once('-').unwrap();
        let len = end.parse::<usize>().unwrap() - start.parse::<usize>().unwrap() + 1;
        assert_eq!(p.body, len, "{p:?}");
    }
    let commit = format!("PUT /elsewhere/three?_state=s3&digest={layer}");
    assert!(lines.contains(&commit.as_str()), "{lines:?}");
    let mount = format!("POST /v2/app/blobs/uploads/?mount={config}&from=base%2Fimg");
    assert!(lines.contains(&mount.as_str()), "{lines:?}");
    assert!(lines.contains(&"PUT /v2/app/manifests/1"), "{lines:?}");
    for s in seen.iter() {
        let elsewhere = s.host.starts_with("localhost:");
        assert_eq!(elsewhere, s.line.contains(" /elsewhere/"), "{s:?}");
        if s.line.contains(" /v2/app/") {
            assert_eq!(s.authorization.as_deref(), Some("Bearer tok"), "{s:?}");
        }
        if elsewhere {
            assert_eq!(
                s.authorization, None,
                "the token stays with the registry: {s:?}"
            );
        }
    }
}
