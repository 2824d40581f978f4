//! Helpers: a fresh xbuild root per test, the busybox base, running the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository's top directory.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The busybox rootfs tar, made once per test run by `scripts/mkrootfs`.
pub fn rootfs_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join("busybox-rootfs.tar");
        if !out.exists() {
            let tmp = dir.join(format!("busybox-rootfs.{}.tar", std::process::id()));
            let st = Command::new(repo().join("scripts/mkrootfs"))
                .arg(&tmp)
                .status()
                .expect("run scripts/mkrootfs");
            assert!(
                st.success(),
                "scripts/mkrootfs failed: install busybox-static"
            );
            std::fs::rename(&tmp, &out).unwrap();
        }
        out
    })
    .clone()
}

/// The result of one `xbuild` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with the output unless the run succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "xbuild failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The JSON progress events (`--progress=json`) of the run.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stderr
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many events of `kind` the run reported.
    pub fn count(&self, kind: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == kind).count()
    }
}

/// A test's own xbuild root and scratch directory; [`TestRoot::finish`] checks that nothing
/// (mounts, runtime state) was left behind.
pub struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    /// A fresh root. The tests need root (mounts, runc).
    pub fn new() -> Self {
        assert!(
            rustix_is_root(),
            "end-to-end tests run RUN steps through runc on overlayfs: run them as root"
        );
        TestRoot {
            dir: tempfile::Builder::new()
                .prefix("xbuild-e2e-")
                .tempdir()
                .unwrap(),
        }
    }

    /// A fresh root with `busybox:local` imported.
    pub fn with_busybox() -> Self {
        let t = Self::new();
        t.xbuild(&["import", rootfs_tar().to_str().unwrap(), "busybox:local"])
            .ok();
        t
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Runs `xbuild --root ROOT args...`.
    pub fn xbuild(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_xbuild"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .output()
            .expect("run xbuild");
        Run::from(out)
    }

    /// Runs `xbuild --root ROOT args...` with `stdin` piped in. xbuild may stop reading early (a
    /// usage error, the end of a tar archive): a broken pipe is then expected, and the exit code
    /// and output say what happened.
    pub fn xbuild_stdin(&self, stdin: &[u8], args: &[&str]) -> Run {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run xbuild");
        if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        Run::from(child.wait_with_output().unwrap())
    }

    /// Runs `xbuild --root ROOT args...` with extra environment variables and standard input.
    pub fn xbuild_with(&self, env: &[(&str, &str)], stdin: &str, args: &[&str]) -> Run {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run xbuild");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        Run::from(child.wait_with_output().expect("wait for xbuild"))
    }

    /// Writes a context directory `name` with `files` (path, content) and returns its path.
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.path(name);
        for (p, body) in files {
            let f = dir.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, body).unwrap();
        }
        dir
    }

    /// Builds `context` with extra args and JSON progress; returns the run.
    pub fn build(&self, context: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["build"];
        if !extra.iter().any(|a| a.starts_with("--progress")) {
            args.push("--progress=json");
        }
        args.extend_from_slice(extra);
        args.push(context.to_str().unwrap());
        self.xbuild(&args)
    }

    /// The flattened filesystem of `image` as (path → entry).
    pub fn export(&self, image: &str) -> Tree {
        let out = self.path("export.tar");
        self.xbuild(&["export", image, "-o", out.to_str().unwrap()])
            .ok();
        Tree::read(&out)
    }

    /// Asserts that no mount and no runtime state is left under the root.
    pub fn finish(self) {
        let root = self.root();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let left: Vec<&str> = mounts
            .lines()
            .filter(|l| l.contains(root.to_str().unwrap()))
            .collect();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
        let state = root.join("runc");
        if state.exists() {
            let n = std::fs::read_dir(&state).unwrap().count();
            assert_eq!(n, 0, "runc state left in {}", state.display());
        }
        let bundles = root.join("bundles");
        if bundles.exists() {
            assert_eq!(
                std::fs::read_dir(&bundles).unwrap().count(),
                0,
                "bundles left behind"
            );
        }
    }
}

fn rustix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// One entry of an exported filesystem.
#[derive(Debug, Clone)]
pub struct Entry {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub kind: tar::EntryType,
    pub content: Vec<u8>,
    pub link: Option<String>,
}

/// A filesystem read from a tar, keyed by path without a leading `./` or trailing `/`.
pub struct Tree(pub std::collections::BTreeMap<String, Entry>);

impl Tree {
    pub fn read(path: &Path) -> Self {
        let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
        let mut map = std::collections::BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = String::from_utf8_lossy(&e.path_bytes())
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let h = e.header().clone();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut content).unwrap();
            map.insert(
                p,
                Entry {
                    mode: h.mode().unwrap(),
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                    kind: h.entry_type(),
                    content,
                    link: h
                        .link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                },
            );
        }
        Tree(map)
    }

    pub fn get(&self, p: &str) -> &Entry {
        self.0
            .get(p)
            .unwrap_or_else(|| panic!("{p} is not in the image"))
    }

    pub fn text(&self, p: &str) -> String {
        String::from_utf8_lossy(&self.get(p).content).into_owned()
    }

    pub fn has(&self, p: &str) -> bool {
        self.0.contains_key(p)
    }
}
