//! The content store: corrupt blobs, mismatched diff_ids, removal under running builds, permissions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Run, TestRoot};

/// The blob file of `digest` (`sha256:…`) under the root.
fn blob(t: &TestRoot, digest: &str) -> PathBuf {
    t.root()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The manifest digest of a stored image.
fn manifest_of(t: &TestRoot, image: &str) -> String {
    let r = t
        .xbuild(&["inspect", "--raw", image, "--format", "{{.Digest}}"])
        .ok();
    r.stdout.trim().to_string()
}

/// The stored manifest of `image` as JSON.
fn manifest_json(t: &TestRoot, image: &str) -> serde_json::Value {
    let m = manifest_of(t, image);
    serde_json::from_slice(&std::fs::read(blob(t, &m)).unwrap()).unwrap()
}

/// Flips one byte in the middle of a stored blob, as a failing disk would.
fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn fails_naming(r: &Run, what: &str, digest: &str) {
    assert_ne!(
        r.code, 0,
        "{what} succeeded on a corrupt blob\n{}",
        r.stdout
    );
    assert!(
        r.stderr.contains(digest) && r.stderr.contains("corrupt"),
        "{what}: the error should name the corrupt blob {digest}:\n{}",
        r.stderr
    );
}

/// Files under `dir` whose name contains `part` (half-written outputs).
fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect()
}

#[test]
fn flipped_byte_in_a_stored_layer_fails_save_oci_output_and_unpack_then_verify_removes_it() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[("Dockerfile", "FROM busybox:local\nRUN echo hi > /hi\n")],
    );
    t.build(&ctx, &["-t", "app:1"]).ok();
    let base = manifest_json(&t, "busybox:local");
    let layer = base["layers"][0]["digest"].as_str().unwrap().to_string();
    flip_byte(&blob(&t, &layer));
    let out = t.path("out");
    std::fs::create_dir_all(&out).unwrap();

    // save: fails, names the digest, leaves no archive.
    let saved = out.join("saved.tar");
    let r = t.xbuild(&["save", "app:1", "-o", saved.to_str().unwrap()]);
    fails_naming(&r, "save", &layer);
    assert!(!saved.exists(), "save left a half-written archive");

    // --output type=oci (cached build: only the export reads the blob), as a tar and as a
    // directory.
    let oci_tar = out.join("oci.tar");
    let r = t.build(
        &ctx,
        &["--output", &format!("type=oci,dest={}", oci_tar.display())],
    );
    fails_naming(&r, "--output type=oci (tar)", &layer);
    assert!(!oci_tar.exists(), "the oci output left a half-written tar");
    let oci_dir = out.join("oci-dir");
    let r = t.build(
        &ctx,
        &[
            "--output",
            &format!("type=oci,dest={},tar=false", oci_dir.display()),
        ],
    );
    fails_naming(&r, "--output type=oci (dir)", &layer);
    assert!(
        !oci_dir.join("blobs/sha256").join(&layer[7..]).exists(),
        "the corrupt layer was published into the layout"
    );
    if oci_dir.join("blobs/sha256").exists() {
        assert!(partials(&oci_dir.join("blobs/sha256")).is_empty());
    }
    assert!(partials(&out).is_empty());

    // A build that unpacks the layer (its snapshots pruned first) fails and keeps no snapshot.
    t.xbuild(&["prune", "-a"]).ok();
    let ctx2 = t.context(
        "ctx2",
        &[("Dockerfile", "FROM busybox:local\nRUN echo again > /x\n")],
    );
    let r = t.build(&ctx2, &["-t", "app:2"]);
    fails_naming(&r, "a build FROM the image", &layer);

    // The fsck finds it, removes it, names the images now broken and how to fix them.
    let r = t.xbuild(&["store", "verify"]);
    assert_eq!(r.code, 1, "verify should fail\n{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&layer), "{}", r.stdout);
    assert!(r.stdout.contains("busybox:local"), "{}", r.stdout);
    assert!(r.stdout.contains("app:1"), "{}", r.stdout);
    assert!(r.stdout.contains("pull, load or rebuild"), "{}", r.stdout);
    assert!(
        !blob(&t, &layer).exists(),
        "the corrupt blob is still there"
    );
    // The image that needs it now says the blob is missing, not something confusing.
    let r = t.xbuild(&["save", "busybox:local", "-o", saved.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&layer), "{}", r.stderr);
    t.finish();
}

#[test]
fn config_whose_diff_ids_do_not_match_its_layer_is_refused_at_unpack() {
    let t = TestRoot::with_busybox();
    let base = manifest_json(&t, "busybox:local");
    // A tampered image written straight into the store (as a pull without checks would):
    // the busybox layer, with a config giving it another diff_id.
    let root = t.root();
    let bogus = format!("sha256:{}", "ab".repeat(32));
    {
        let store = xbuild_cache::Store::open(&root).unwrap();
        let config: serde_json::Value = serde_json::from_slice(
            &store
                .read_blob(&base["config"]["digest"].as_str().unwrap().parse().unwrap())
                .unwrap(),
        )
        .unwrap();
        let mut config = config;
        config["rootfs"]["diff_ids"] = serde_json::json!([bogus]);
        let c = store
            .put_json(xbuild_cache::oci::MEDIA_CONFIG, &config)
            .unwrap();
        let mut m = base.clone();
        m["config"]["digest"] = serde_json::json!(c.digest.to_string());
        m["config"]["size"] = serde_json::json!(c.size);
        let md = store
            .put_json(xbuild_cache::oci::MEDIA_MANIFEST, &m)
            .unwrap();
        store
            .put_tag(
                "tampered:1",
                &xbuild_cache::TagRecord {
                    manifest: md.digest,
                    size: md.size,
                },
            )
            .unwrap();
    }
    let ctx = t.context("ctx", &[("Dockerfile", "FROM tampered:1\nRUN true\n")]);
    let r = t.build(&ctx, &[]);
    assert_ne!(r.code, 0, "a layer with the wrong diff_id was used");
    assert!(
        r.stderr.contains(&bogus) && r.stderr.contains("diff_id"),
        "{}",
        r.stderr
    );
    t.finish();
}

#[test]
fn loaded_archive_whose_config_diff_ids_do_not_match_its_layers_is_refused() {
    let t = TestRoot::new();
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    layer.append_data(&mut h, "f", &b"hi"[..]).unwrap();
    let layer = layer.into_inner().unwrap();
    let bogus = format!("sha256:{}", "cd".repeat(32));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [bogus]},
    })
    .to_string();
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": ["evil:1"], "Layers": ["layer.tar"],
    }])
    .to_string();
    let mut ar = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        ("config.json", config.as_bytes()),
        ("layer.tar", layer.as_slice()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        ar.append_data(&mut h, name, data).unwrap();
    }
    let archive = t.path("evil.tar");
    std::fs::write(&archive, ar.into_inner().unwrap()).unwrap();
    let r = t.xbuild(&["load", "-i", archive.to_str().unwrap()]);
    assert_ne!(r.code, 0, "the archive was loaded:\n{}", r.stdout);
    assert!(r.stderr.contains(&bogus), "{}", r.stderr);
    let images = t.xbuild(&["images", "-q"]).ok();
    assert!(images.stdout.trim().is_empty(), "{}", images.stdout);
}

#[test]
fn removing_the_base_image_while_a_build_uses_it_waits_for_the_build_to_free_it() {
    let t = TestRoot::with_busybox();
    t.xbuild(&["tag", "busybox:local", "base:1"]).ok();
    t.xbuild(&["rmi", "busybox:local"]).ok();
    let base = manifest_of(&t, "base:1");
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM base:1\nRUN touch /started && sleep 4\nRUN echo done > /done\n",
        )],
    );
    let build = Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "-t", "app:1", "--progress=json"])
        .arg(&ctx)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the RUN step is running (its runtime bundle exists).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let running = std::fs::read_dir(t.root().join("bundles"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if running {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the build never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = t.xbuild(&["rmi", "-f", "base:1"]).ok();
    assert!(r.stdout.contains("Untagged: base:1"), "{}", r.stdout);
    t.xbuild(&["image", "prune", "-a", "-f"]).ok();
    assert!(
        blob(&t, &base).exists(),
        "the base's manifest was freed under a running build"
    );
    let out = build.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the build failed after its base was removed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.xbuild(&["images", "-q", "base"])
            .ok()
            .stdout
            .trim()
            .is_empty()
    );
    // Once the build is over, a prune frees what only the removed image used.
    t.xbuild(&["image", "prune", "-f"]).ok();
    assert!(
        !blob(&t, &base).exists(),
        "the removed base's manifest outlived the build"
    );
    assert!(t.export("app:1").has("done"));
    t.finish();
}

#[test]
fn root_is_closed_to_other_users_and_a_setuid_file_in_a_snapshot_cannot_be_run() {
    let t = TestRoot::new();
    // The test's own directory is open to others, and so is an existing root (as older
    // versions left it): only the root's own mode protects what is under it.
    std::fs::set_permissions(t.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(t.root()).unwrap();
    std::fs::set_permissions(t.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t.xbuild(&[
        "import",
        crate::support::rootfs_tar().to_str().unwrap(),
        "busybox:local",
    ])
    .ok();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN mkdir /suid && cp /bin/busybox /suid/id && chmod 4755 /suid/id\n",
        )],
    );
    t.build(&ctx, &["-t", "app:1"]).ok();
    let mode = std::fs::metadata(t.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "root mode {mode:o}");
    // The setuid copy exists in some snapshot (found as root)...
    let found = Command::new("find")
        .arg(t.root())
        .args(["-path", "*/suid/id", "-perm", "-4000"])
        .output()
        .unwrap();
    let suid: Vec<&str> = std::str::from_utf8(&found.stdout)
        .unwrap()
        .lines()
        .collect();
    assert!(!suid.is_empty(), "no setuid file in the snapshots");
    let nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(args)
            .output()
            .unwrap()
    };
    // ...but nobody else can run it, list the root or read a blob.
    for p in &suid {
        // Run as `id`, the copy of busybox prints the effective uid and succeeds.
        // Through a shell: setpriv's own exec still walks the path with root's capabilities.
        let o = nobody(&["/bin/sh", "-c", "exec \"$0\" -u", p]);
        assert!(
            !o.status.success(),
            "uid 65534 ran the setuid file {p}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let root = t.root();
    let o = nobody(&["ls", root.to_str().unwrap()]);
    assert!(!o.status.success(), "uid 65534 listed the root");
    let o = nobody(&["find", root.to_str().unwrap()]);
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(
        listed.lines().count() <= 1,
        "uid 65534 saw inside the root:\n{listed}"
    );
    let m = manifest_of(&t, "app:1");
    let o = nobody(&["cat", blob(&t, &m).to_str().unwrap()]);
    assert!(!o.status.success(), "uid 65534 read a blob");
    // New blobs are private to their owner as well.
    let mode = std::fs::metadata(blob(&t, &m))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode & 0o077, 0, "blob mode {mode:o}");
    t.finish();
}
