//! The solver and runtime for real, driven with hand-built graphs: RUN through runc on
//! overlayfs (and the copying snapshotter), mounts, secrets, merges, file actions, remote
//! sources, cancellation. They need root and a busybox rootfs (`scripts/mkrootfs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use xbuild_cache::Store;
use xbuild_llb::{
    CacheSharing, Definition, Digest, ExecOp, FileAction, FileOp, MergeOp, MkfileAction, Mount,
    MountKind, NetworkMode, Op, RmAction, SourceOp, SymlinkAction,
};
use xbuild_runtime::Change;
use xbuild_runtime::{LayerSnapshotter, SnapshotterKind};
use xbuild_solver::{Event, ProgressSink, SecretSource, Solved, Solver, SolverOptions};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn rootfs_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join("solver-busybox-rootfs.tar");
        if !out.exists() {
            let tmp = dir.join(format!("solver-busybox.{}.tar", std::process::id()));
            let st =
                Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkrootfs"))
                    .arg(&tmp)
                    .status()
                    .unwrap();
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

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl ProgressSink for Lines {
    fn event(&self, e: Event) {
        if let Event::Log { line, .. } = e {
            self.0.lock().unwrap().push(line);
        }
    }
}

struct Env {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    image: Digest,
    kind: SnapshotterKind,
}

impl Env {
    fn new(kind: SnapshotterKind) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("xbuild-solver-")
            .tempdir()
            .unwrap();
        let store = Arc::new(Store::open(&dir.path().join("root")).unwrap());
        let img = xbuild_exporter::import_rootfs(
            &store,
            std::fs::File::open(rootfs_tar()).unwrap(),
            "busybox",
            "linux",
            "amd64",
            "2026-01-01T00:00:00Z",
            xbuild_exporter::Compression::Gzip,
        )
        .unwrap();
        Env {
            dir,
            store,
            image: img.manifest.digest,
            kind,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The root's snapshots as the exporter reads them (layers of changes).
    fn layers(&self) -> LayerSnapshotter {
        LayerSnapshotter::with_kind(&self.root(), self.kind).unwrap()
    }

    fn opts(&self) -> SolverOptions {
        let mut o = SolverOptions::new(&self.root());
        o.snapshotter = self.kind;
        o
    }

    fn base(&self, def: &mut Definition) -> Digest {
        def.add(
            Op::Source(SourceOp::Image {
                reference: "busybox:local".into(),
                digest: self.image.clone(),
            }),
            vec![],
        )
        .unwrap()
    }

    async fn solve(
        &self,
        def: &Definition,
        target: &Digest,
        opts: SolverOptions,
    ) -> (Result<Solved, xbuild_solver::Error>, Vec<String>, Solver) {
        let lines = Arc::new(Lines::default());
        let solver = Solver::new(self.store.clone(), opts, lines.clone()).unwrap();
        let r = solver.solve(def, std::slice::from_ref(target)).await;
        let out = lines.0.lock().unwrap().clone();
        (r, out, solver)
    }

    /// Asserts that nothing is mounted under the root and no runtime state is left.
    fn finish(self) {
        let root = self.root();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let left: Vec<&str> = mounts
            .lines()
            .filter(|l| l.contains(root.to_str().unwrap()))
            .collect();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
        for d in ["runc", "bundles", "netns"] {
            let p = root.join(d);
            if p.exists() {
                assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0, "{d} left behind");
            }
        }
    }
}

fn exec(cmd: &str) -> ExecOp {
    ExecOp {
        args: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        cwd: "/".into(),
        user: String::new(),
        network: NetworkMode::None,
        security: Default::default(),
        mounts: vec![],
    }
}

fn run(def: &mut Definition, on: &Digest, e: ExecOp) -> Digest {
    def.add(Op::Exec(e), vec![on.clone()]).unwrap()
}

fn diff_of(env: &Env, solved: &Solved, d: &Digest) -> Vec<String> {
    let snap = solved.results[d].snapshot.clone().unwrap();
    env.layers()
        .diff(&snap)
        .unwrap()
        .into_iter()
        .map(|c| match c {
            Change::Delete { path } => format!("D {}", path.display()),
            Change::Upsert {
                path, opaque: true, ..
            } => format!("O {}", path.display()),
            Change::Upsert { path, .. } => format!("U {}", path.display()),
        })
        .collect()
}

async fn changes_and_process_identity(kind: SnapshotterKind) {
    let env = Env::new(kind);
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let a = run(
        &mut def,
        &base,
        exec("echo 1 > /added && mkdir -p /data/old && echo x > /data/old/f && echo v1 > /data/v"),
    );
    let b = run(
        &mut def,
        &a,
        exec(
            "rm /bin/vi && echo v2 > /data/v && rm -rf /data/old && mkdir /data/old && echo y > /data/old/g",
        ),
    );
    let mut who = exec("id; pwd; env | sort; ls /sys/class/net");
    who.user = "app".into();
    who.cwd = "/work/dir".into();
    who.env.push("GREETING=hello world".into());
    let c = run(&mut def, &b, who);
    let (r, lines, solver) = env.solve(&def, &c, env.opts()).await;
    let solved = r.unwrap();
    assert_eq!(
        diff_of(&env, &solved, &b),
        vec![
            "U bin",
            "D bin/vi",
            "U data",
            "O data/old",
            "U data/old/g",
            "U data/v",
            // runc's /etc/hosts stubs are removed, but /etc itself changed, as with BuildKit.
            "U etc",
        ]
    );
    let da = diff_of(&env, &solved, &a);
    assert!(
        da.contains(&"U added".to_string()) && da.contains(&"U data/old/f".to_string()),
        "{da:?}"
    );
    assert!(
        lines.contains(&"uid=1000(app) gid=1000(app)".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"/work/dir".to_string()), "{lines:?}");
    assert!(
        lines.contains(&"GREETING=hello world".to_string()),
        "{lines:?}"
    );
    let nets: Vec<&String> = lines
        .iter()
        .filter(|l| !l.contains('=') && !l.starts_with('/') && !l.starts_with("uid"))
        .collect();
    assert_eq!(
        nets,
        vec!["lo"],
        "--network=none has only loopback: {lines:?}"
    );
    // The created working directory is in the step's layer; runc's mountpoints are not.
    let dc = diff_of(&env, &solved, &c);
    assert_eq!(dc, vec!["U etc", "U work", "U work/dir"], "{dc:?}");
    drop(solver);
    env.finish();
}

#[tokio::test]
async fn run_changes_and_identity_overlay() {
    if is_root() {
        changes_and_process_identity(SnapshotterKind::Overlay).await;
    }
}

#[tokio::test]
async fn run_changes_and_identity_native() {
    if is_root() {
        changes_and_process_identity(SnapshotterKind::Native).await;
    }
}

#[tokio::test]
async fn failures_unknown_users_and_host_network() {
    if !is_root() {
        return;
    }
    let env = Env::new(SnapshotterKind::Auto);
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let bad = run(
        &mut def,
        &base,
        exec("echo first-line; echo to-stderr >&2; exit 3"),
    );
    let (r, _, _) = env.solve(&def, &bad, env.opts()).await;
    let err = r.unwrap_err();
    let text = format!("{err}");
    assert!(text.contains("exit code 3"), "{text}");
    let xbuild_solver::Error::Vertex { source, .. } = err else {
        panic!("{text}")
    };
    let xbuild_solver::Error::Runtime(xbuild_runtime::Error::ExecFailed { tail, code, .. }) =
        *source
    else {
        panic!("{text}")
    };
    assert_eq!(code, 3);
    let mut tail = tail;
    tail.sort();
    assert_eq!(tail, vec!["first-line", "to-stderr"]);
    let mut ghost = exec("true");
    ghost.user = "ghost".into();
    let g = run(&mut def, &base, ghost);
    let (r, _, _) = env.solve(&def, &g, env.opts()).await;
    assert!(format!("{}", r.unwrap_err()).contains("unable to find user ghost"));
    let mut host = exec("ls /sys/class/net | wc -l");
    host.network = NetworkMode::Host;
    let h = run(&mut def, &base, host);
    let (r, lines, _) = env.solve(&def, &h, env.opts()).await;
    let refused = format!("{}", r.unwrap_err());
    assert!(refused.contains("--allow network.host"), "{refused}");
    assert!(lines.is_empty(), "nothing ran: {lines:?}");
    let mut entitled = env.opts();
    entitled.allow_network_host = true;
    let (r, lines, _) = env.solve(&def, &h, entitled).await;
    r.unwrap();
    let host_ifaces = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert_eq!(lines, vec![host_ifaces.to_string()]);
    env.finish();
}

const SECRET: &str = "s3cr3t-value-4c1d";

#[tokio::test]
async fn cache_mounts_persist_and_secrets_leave_no_trace() {
    if !is_root() {
        return;
    }
    let env = Env::new(SnapshotterKind::Auto);
    let secret_file = env.dir.path().join("token");
    std::fs::write(&secret_file, SECRET).unwrap();
    let cache = |cmd: &str| {
        let mut e = exec(cmd);
        e.mounts = vec![Mount {
            target: "/cache".into(),
            kind: MountKind::Cache {
                id: "build-cache".into(),
                sharing: CacheSharing::Locked,
                uid: 1000,
                gid: 1000,
                mode: 0o755,
                readonly: false,
                seed: None,
            },
        }];
        e
    };
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let first = run(
        &mut def,
        &base,
        cache("echo kept > /cache/x; stat -c %u /cache"),
    );
    let (r, lines, _) = env.solve(&def, &first, env.opts()).await;
    r.unwrap();
    assert_eq!(lines, vec!["1000"]);
    let mut def2 = Definition::new();
    let base2 = env.base(&mut def2);
    let second = run(&mut def2, &base2, cache("cat /cache/x"));
    let (r, lines, _solver) = env.solve(&def2, &second, env.opts()).await;
    let solved = r.unwrap();
    assert_eq!(lines, vec!["kept"], "a cache mount persists across builds");
    assert_eq!(
        diff_of(&env, &solved, &second),
        vec!["U etc"],
        "the cache is not in the layer"
    );

    // The command names the secret by its hash only: commands are recorded (image history,
    // the build record `explain` reads), secrets must not be.
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(SECRET.as_bytes()));
    let mut e = exec(&format!(
        "test \"$(sha256sum < /run/secrets/token | cut -d' ' -f1)\" = {hash} && test \"$(printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1)\" = {hash} && stat -c '%u %a' /run/secrets/token && echo read-ok > /proof"
    ));
    e.mounts = vec![Mount {
        target: "/run/secrets/token".into(),
        kind: MountKind::Secret {
            id: "token".into(),
            required: true,
            uid: 1000,
            gid: 1000,
            mode: 0o400,
            env: Some("TOKEN".into()),
        },
    }];
    let mut def3 = Definition::new();
    let base3 = env.base(&mut def3);
    let s = run(&mut def3, &base3, e.clone());
    let mut opts = env.opts();
    let (r, _, _) = env.solve(&def3, &s, opts.clone()).await;
    assert!(format!("{}", r.unwrap_err()).contains("--secret id=token"));
    opts.secrets = HashMap::from([("token".into(), SecretSource::File(secret_file.clone()))]);
    let (r, lines, solver) = env.solve(&def3, &s, opts).await;
    let solved = r.unwrap();
    assert_eq!(lines, vec!["1000 400"]);
    assert_eq!(
        diff_of(&env, &solved, &s),
        vec!["U etc", "U proof"],
        "no /run/secrets stub in the layer"
    );
    // Export the layers, then look for the secret in every file under the root (blobs
    // decompressed).
    let snap = solved.results[&s].snapshot.clone().unwrap();
    for id in solver.snapshots().chain(&snap).unwrap() {
        xbuild_exporter::layer_of(
            &env.store,
            &env.layers(),
            &id,
            xbuild_exporter::ExportOptions {
                compression: xbuild_exporter::Compression::Gzip,
                epoch: None,
            },
        )
        .unwrap();
    }
    drop(solver);
    std::fs::remove_file(&secret_file).unwrap();
    for entry in walk(&env.root()) {
        let mut bytes = std::fs::read(&entry).unwrap_or_default();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            let _ = flate2_decode(&bytes, &mut plain);
            bytes.extend(plain);
        }
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret is in {}",
            entry.display()
        );
    }
    env.finish();
}

fn flate2_decode(bytes: &[u8], out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut d = xbuild_runtime::decompressed(bytes)?;
    d.read_to_end(out)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(walk(&e.path()));
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn bind_and_tmpfs_mounts_merge_and_file_actions() {
    if !is_root() {
        return;
    }
    let env = Env::new(SnapshotterKind::Auto);
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let scratch = def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap();
    let files = def
        .add(
            Op::File(FileOp {
                actions: vec![
                    FileAction::Mkfile(MkfileAction {
                        path: "/tool.sh".into(),
                        mode: 0o755,
                        data: b"#!/bin/sh\necho tool\n".to_vec(),
                        chown: None,
                    }),
                    FileAction::Symlink(SymlinkAction {
                        oldpath: "tool.sh".into(),
                        newpath: "/tool".into(),
                    }),
                ],
            }),
            vec![scratch.clone()],
        )
        .unwrap();
    let mut e =
        exec("/src/tool; echo scribble > /src/new; echo t > /tmpfs/x; mount | grep -c ' /tmpfs '");
    e.mounts = vec![
        Mount {
            target: "/src".into(),
            kind: MountKind::Bind {
                input: 1,
                source: "/".into(),
                readonly: false,
            },
        },
        Mount {
            target: "/tmpfs".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
            },
        },
    ];
    let step = def
        .add(Op::Exec(e), vec![base.clone(), files.clone()])
        .unwrap();
    let linked = def
        .add(Op::Merge(MergeOp {}), vec![step.clone(), files.clone()])
        .unwrap();
    let rm = def
        .add(
            Op::File(FileOp {
                actions: vec![FileAction::Rm(RmAction {
                    path: "/bin/[vw]*".into(),
                    allow_not_found: false,
                    allow_wildcard: true,
                })],
            }),
            vec![linked.clone()],
        )
        .unwrap();
    let (r, lines, solver) = env.solve(&def, &rm, env.opts()).await;
    let solved = r.unwrap();
    assert_eq!(lines, vec!["tool", "1"]);
    assert_eq!(
        diff_of(&env, &solved, &step),
        vec!["U etc"],
        "rw bind writes and tmpfs are discarded"
    );
    let top = solved.results[&rm].snapshot.clone().unwrap();
    let chain = solver.snapshots().chain(&top).unwrap();
    assert_eq!(chain.len(), 4, "base + RUN + linked layer + rm");
    let v = solver.snapshots().view(Some(&top)).unwrap();
    assert_eq!(
        std::fs::read_link(v.path().join("tool")).unwrap(),
        Path::new("tool.sh")
    );
    assert_eq!(
        std::fs::metadata(v.path().join("tool.sh")).unwrap().mode() & 0o777,
        0o755
    );
    assert!(!v.path().join("bin/vi").exists() && !v.path().join("bin/wc").exists());
    assert!(v.path().join("bin/sh").exists());
    drop(v);
    drop(solver);
    env.finish();
}

/// Serves one file over HTTP on 127.0.0.1 for `n` requests.
fn serve(body: &'static [u8], n: usize) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}/files/app.tar.gz")
}

#[tokio::test]
async fn http_and_git_sources() {
    if !is_root() {
        return;
    }
    let env = Env::new(SnapshotterKind::Auto);
    let url = serve(b"downloaded content\n", 2);
    let sum: Digest = format!("sha256:{}", sha256_hex(b"downloaded content\n"))
        .parse()
        .unwrap();
    let mut def = Definition::new();
    let http = def
        .add(
            Op::Source(SourceOp::Http {
                url: url.clone(),
                checksum: Some(sum),
                filename: "app.tar.gz".into(),
            }),
            vec![],
        )
        .unwrap();
    let (r, _, _solver) = env.solve(&def, &http, env.opts()).await;
    let solved = r.unwrap();
    let snap = solved.results[&http].snapshot.clone().unwrap();
    let f = env.layers().upper(&snap).join("app.tar.gz");
    let md = std::fs::metadata(&f).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    assert_eq!(md.mtime(), 1445412480, "mtime from Last-Modified");
    assert_eq!(std::fs::read(&f).unwrap(), b"downloaded content\n");
    let mut bad = Definition::new();
    let wrong = bad
        .add(
            Op::Source(SourceOp::Http {
                url,
                checksum: Some(Digest::of(b"something else")),
                filename: "x".into(),
            }),
            vec![],
        )
        .unwrap();
    let (r, _, _) = env.solve(&bad, &wrong, env.opts()).await;
    assert!(format!("{}", r.unwrap_err()).contains("checksum mismatch"));

    let repo = env.dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@e"])
            .args(args)
            .status()
            .expect("git must be installed (scripts/test installs it)");
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::create_dir(repo.join("sub")).unwrap();
    std::fs::write(repo.join("sub/hello"), "from git\n").unwrap();
    std::fs::write(repo.join("top"), "t\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    let mut def = Definition::new();
    let g = def
        .add(
            Op::Source(SourceOp::Git {
                remote: format!("file://{}", repo.display()),
                reference: "main".into(),
                subdir: None,
                keep_git_dir: false,
                checksum: None,
            }),
            vec![],
        )
        .unwrap();
    let (r, _, _solver) = env.solve(&def, &g, env.opts()).await;
    let solved = r.unwrap();
    let up = env
        .layers()
        .upper(solved.results[&g].snapshot.as_deref().unwrap());
    assert_eq!(
        std::fs::read_to_string(up.join("sub/hello")).unwrap(),
        "from git\n"
    );
    assert!(!up.join(".git").exists(), "no .git unless keep_git_dir");
    env.finish();
}

fn sha256_hex(b: &[u8]) -> String {
    Digest::of(b).hex().to_string()
}

#[tokio::test]
async fn cancelling_a_solve_kills_the_container_and_cleans_up() {
    if !is_root() {
        return;
    }
    let env = Env::new(SnapshotterKind::Auto);
    let mut def = Definition::new();
    let base = env.base(&mut def);
    let marker = format!("sleep 4242{}", std::process::id() % 10);
    let step = run(&mut def, &base, exec(&marker));
    let lines = Arc::new(Lines::default());
    let solver = Solver::new(env.store.clone(), env.opts(), lines).unwrap();
    let r = tokio::time::timeout(
        std::time::Duration::from_millis(1500),
        solver.solve(&def, std::slice::from_ref(&step)),
    )
    .await;
    assert!(r.is_err(), "the step was still running");
    drop(solver);
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.lines().any(|l| l.trim() == marker),
        "the container's process survived:\n{ps}"
    );
    let snaps = std::fs::read_dir(env.root().join("snapshots"))
        .unwrap()
        .count();
    // Only the image layer and the empty dir remain: the aborted step's snapshot is gone.
    assert_eq!(snaps, 2);
    env.finish();
}
