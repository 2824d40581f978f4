//! The worker's context manifest handling: arbitrary bytes decoded as a manifest chunk go
//! through the worker's validation, and an accepted manifest is laid out in a scratch root
//! whose top-level names were planted as symlinks to a sentinel directory outside it. The
//! invariants: no panic; the sentinel is never touched; nothing appears beside the layout but
//! its records; the layout holds exactly the manifest's entries (and the directories above
//! them), each of its kind.
#![no_main]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use xbuild_worker::context::{FileStore, materialize, validate};
use xbuild::worker::proto::{Entry, ManifestChunk, entry::Kind};
use xbuild_cache::statcache::StatCache;

/// The scratch directory of this process: `store/`, `outside/victim`, `layout` and its
/// records.
fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let b = std::env::temp_dir().join(format!("xbuild-fuzz-worker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&b);
        std::fs::create_dir_all(b.join("outside")).unwrap();
        std::fs::write(b.join("outside/victim"), "original").unwrap();
        b
    })
}

/// Every path below `dir` (not following symlinks) with its kind.
fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, Kind>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let ft = e.file_type().unwrap();
        let kind = if ft.is_dir() {
            walk(&e.path(), &path, out);
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else {
            assert!(ft.is_file(), "{path}: a special file in the layout");
            Kind::File
        };
        out.insert(path, kind);
    }
}

fn check(entries: &[Entry]) {
    let base = base();
    let layout = base.join("layout");
    let _ = std::fs::remove_dir_all(&layout);
    let _ = std::fs::remove_dir_all(base.join("store"));
    std::fs::create_dir_all(&layout).unwrap();
    let store = FileStore::open(base.join("store")).unwrap();
    // What an earlier manifest could have left: each top-level name a symlink out.
    for e in entries {
        let top = e.path.split('/').next().unwrap_or_default();
        let _ = std::os::unix::fs::symlink(base.join("outside"), layout.join(top));
    }
    // Contents for the files (the store is trusted to hold what it is asked for).
    for e in entries.iter().filter(|e| e.kind() == Kind::File) {
        let d: [u8; 32] = e.digest.as_slice().try_into().unwrap();
        let p = store.path(&d);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &e.path).unwrap();
    }
    let victim = std::fs::metadata(base.join("outside/victim")).unwrap();
    let result = materialize(&layout, entries, &store, &StatCache::disabled(base));
    let names: Vec<_> = std::fs::read_dir(base.join("outside")).unwrap().collect();
    assert_eq!(names.len(), 1, "something was written outside the layout");
    let after = std::fs::metadata(base.join("outside/victim")).unwrap();
    assert_eq!(
        (after.ino(), after.mode(), after.size(), after.mtime()),
        (victim.ino(), victim.mode(), victim.size(), victim.mtime())
    );
    for e in std::fs::read_dir(base).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "store" || name == "outside" || name.starts_with("layout"),
            "{name} beside the layout"
        );
    }
    if result.is_err() {
        return;
    }
    let mut want = BTreeMap::new();
    for e in entries {
        for (i, _) in e.path.match_indices('/') {
            want.entry(e.path[..i].to_string()).or_insert(Kind::Dir);
        }
        want.insert(e.path.clone(), e.kind());
    }
    let mut have = BTreeMap::new();
    walk(&layout, "", &mut have);
    assert_eq!(have, want, "the layout is not the manifest");
}

fuzz_target!(|data: &[u8]| {
    let Ok(chunk) = ManifestChunk::decode(data) else {
        return;
    };
    if validate(&chunk.entries).is_ok() {
        check(&chunk.entries);
    } else {
        // Laying out validates too: a refused manifest touches nothing.
        let base = base();
        let dir = base.join("refused");
        let store = FileStore::open(base.join("store")).unwrap();
        assert!(materialize(&dir, &chunk.entries, &store, &StatCache::disabled(base)).is_err());
        assert!(!dir.exists(), "a refused manifest was laid out");
    }
});
