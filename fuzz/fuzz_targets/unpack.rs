//! Fuzzes the tar unpacker: arbitrary bytes (a tar, maybe compressed) are unpacked as an image
//! layer (whiteouts applied) and as an `ADD` archive, each into a fresh root inside a sentinel
//! parent. No input may panic, and nothing outside the root may be created, changed or
//! removed: the parent keeps exactly its sentinel entries with their contents.
#![no_main]

use std::os::fd::OwnedFd;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use xbuild_runtime::{TarKind, unpack_into};

/// What the sentinel parent holds: every entry's name, type and content.
fn snapshot(parent: &Path) -> Vec<(String, bool, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            let body = if ft.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (e.file_name().to_string_lossy().into_owned(), ft.is_dir(), body)
        })
        .collect();
    out.sort();
    out
}

fuzz_target!(|data: &[u8]| {
    for kind in [TarKind::Layer, TarKind::Archive] {
        let parent = tempfile::tempdir().unwrap();
        std::fs::write(parent.path().join("sibling"), b"sibling").unwrap();
        std::fs::create_dir(parent.path().join("sibling-dir")).unwrap();
        std::fs::write(parent.path().join("sibling-dir/keep"), b"keep").unwrap();
        let root = parent.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let before = snapshot(parent.path());
        let keep_before = std::fs::read(parent.path().join("sibling-dir/keep")).unwrap();
        let fd: OwnedFd = std::fs::File::open(&root).unwrap().into();
        if let Ok(r) = xbuild_runtime::decompressed(data) {
            // Errors are expected; a panic or an escape is not.
            let _ = unpack_into(r, &fd, kind, Some(64 << 20));
        }
        drop(fd);
        assert!(root.is_dir(), "the root itself was removed ({kind:?})");
        let after = snapshot(parent.path());
        assert_eq!(before, after, "the parent changed ({kind:?})");
        assert_eq!(
            std::fs::read(parent.path().join("sibling-dir/keep")).unwrap(),
            keep_before,
            "a sibling's file changed ({kind:?})"
        );
        assert_eq!(
            std::fs::read_dir(parent.path().join("sibling-dir")).unwrap().count(),
            1,
            "something was created beside the root ({kind:?})"
        );
    }
});
