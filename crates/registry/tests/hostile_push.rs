//! A push against a hostile registry: raw HTTP served from a `TcpListener` on 127.0.0.1, one
//! request per connection, scripted by method.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xbuild_cache::Store;
use xbuild_cache::oci::{self, Descriptor, ImageConfigFile, Manifest};
use xbuild_llb::Digest;
use xbuild_registry::{MAX_ERROR_BODY, MountSources, Reference, Registry, RegistryOptions};

/// Where the endless body stops if a client keeps reading (so that a broken client fails the
/// test instead of exhausting the machine).
const GIVE_UP: u64 = 256 << 20;

/// A small image (a config and one layer) written into `store`.
fn image(store: &Store) -> Digest {
    let mut layer = store.blob_writer().unwrap();
    std::io::Write::write_all(&mut layer, b"not really a tar").unwrap();
    let size = layer.size();
    let layer = layer.commit(None).unwrap();
    let config = store
        .put_json(oci::MEDIA_CONFIG, &ImageConfigFile::default())
        .unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::MEDIA_MANIFEST.into()),
        config,
        layers: vec![Descriptor {
            media_type: oci::MEDIA_LAYER_TAR.into(),
            digest: layer,
            size,
            annotations: None,
            platform: None,
        }],
        annotations: None,
    };
    store
        .put_json(oci::MEDIA_MANIFEST, &manifest)
        .unwrap()
        .digest
}

/// Reads one request head (the requests answered here have no body).
async fn request_head(s: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
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
                let head = request_head(&mut s).await;
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
    let manifest = image(&store);
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
