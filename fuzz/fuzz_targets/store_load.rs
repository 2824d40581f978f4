//! Loading an archive (docker-archive or OCI layout tar) into a content store: whatever the
//! bytes, no panic, nothing enters the store under a digest it does not hash to, no partial
//! write is left in `tmp/`, and an image that loads has its whole chain stored and verified.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::Digest as _;
use std::sync::OnceLock;

/// One store for the whole run (opening redb per input would dominate); blobs are cleared
/// between inputs.
fn store() -> &'static (tempfile::TempDir, xbuild_cache::Store) {
    static STORE: OnceLock<(tempfile::TempDir, xbuild_cache::Store)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = xbuild_cache::Store::open(dir.path()).unwrap();
        (dir, store)
    })
}

fuzz_target!(|data: &[u8]| {
    let (dir, store) = store();
    let blobs = dir.path().join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let loaded = xbuild_exporter::load_archive(store, "<fuzz>", data, ("linux", "amd64"));
    // Every stored blob is what its name says.
    for e in std::fs::read_dir(&blobs).unwrap() {
        let e = e.unwrap();
        let bytes = std::fs::read(e.path()).unwrap();
        let hex: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            e.file_name().to_str().unwrap(),
            hex,
            "a blob entered the store under another digest"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "a partial blob was left behind"
    );
    if let Ok(images) = loaded {
        for img in images {
            let m: xbuild_cache::oci::Manifest = store.read_json(&img.manifest.digest).unwrap();
            let c: xbuild_cache::oci::ImageConfigFile = store.read_json(&m.config.digest).unwrap();
            assert_eq!(m.config.digest, img.config);
            assert_eq!(c.rootfs.diff_ids.len(), m.layers.len());
            for l in &m.layers {
                store.open_blob(&l.digest).unwrap().finish().unwrap();
            }
        }
    }
});
