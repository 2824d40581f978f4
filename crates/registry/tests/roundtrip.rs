//! The library against Debian's `docker-registry`: a chunked upload (several PATCH requests),
//! the generic blob/manifest entry points, and a pull into a fresh store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xbuild_cache::Store;
use xbuild_cache::oci::{self, ImageConfigFile, Manifest, RootFs};
use xbuild_llb::Digest;
use xbuild_registry::{BlobPush, MountSources, Reference, Registry, RegistryOptions};

struct Server {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("run docker-registry (Debian package docker-registry)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, dir, port }
}

/// A tiny image (a 9 MiB incompressible "layer" and a config) written straight into a store.
fn image(store: &Store) -> Digest {
    let mut layer = Vec::with_capacity(9 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..(9 << 20) / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        layer.extend_from_slice(&x.to_le_bytes());
    }
    let config = ImageConfigFile {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs {
            typ: "layers".into(),
            diff_ids: Vec::new(),
        },
        ..Default::default()
    };
    common::image(store, &layer, config, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_push_then_pull_into_a_fresh_store() {
    let server = start();
    let a = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(a.path()).unwrap());
    let manifest = image(&store);
    let registry = Registry::new(RegistryOptions {
        chunked_upload_above: 1 << 20,
        docker_config: Some(a.path().join("no-config.json")),
        ..Default::default()
    })
    .unwrap();
    let target = Reference::parse(&format!("127.0.0.1:{}/lib/chunky:1", server.port)).unwrap();
    let pushed = registry
        .push(&store, &manifest, &target, &MountSources::new())
        .await
        .unwrap();
    assert_eq!((pushed.uploaded, pushed.present), (2, 0));
    assert_eq!(pushed.manifest, manifest);
    let log = std::fs::read_to_string(server.dir.path().join("log")).unwrap();
    let patches = log.matches("\"PATCH /v2/lib/chunky/blobs/uploads/").count();
    assert!(
        patches >= 3,
        "the 9 MiB layer went up in 4 MiB chunks: {patches} PATCH requests"
    );

    // The generic entry points the cache exporter builds on.
    let m: Manifest = store.read_json(&manifest).unwrap();
    let again = registry
        .push_blob(&store, &target, &m.layers[0], &MountSources::new())
        .await
        .unwrap();
    assert_eq!(again, BlobPush::Present);
    let (bytes, media_type, digest) = registry.fetch_manifest(&target).await.unwrap();
    assert_eq!(
        (media_type.as_str(), &digest),
        (oci::MEDIA_MANIFEST, &manifest)
    );
    assert_eq!(Digest::of(&bytes), manifest);

    let b = tempfile::tempdir().unwrap();
    let fresh = Arc::new(Store::open(b.path()).unwrap());
    let pulled = registry.pull(&fresh, &target).await.unwrap();
    assert_eq!(pulled.manifest.digest, manifest);
    assert_eq!((pulled.fetched, pulled.present), (2, 0));
    assert_eq!(
        fresh.read_blob(&m.layers[0].digest).unwrap(),
        store.read_blob(&m.layers[0].digest).unwrap()
    );
    assert!(
        !registry
            .fetch_blob(&fresh, &target, &m.layers[0])
            .await
            .unwrap(),
        "a blob the store has is not fetched again"
    );
}
