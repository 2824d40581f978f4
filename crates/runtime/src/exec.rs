//! Running a RUN step: the [`Executor`] the solver drives, and [`RuncExecutor`], which runs
//! steps through an OCI runtime (runc by default) in fresh namespaces.

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use xbuild_llb::NetworkMode;

use crate::Error;
use crate::fsops::Root;
use crate::network::Network;
use crate::spec::{self, ExecSpec, HOSTNAME, NetNs};
use crate::user::resolve_user;

/// How many output lines a failure reports.
pub const TAIL_LINES: usize = 20;

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives a step's output, line by line.
pub type LineSink<'a> = &'a (dyn Fn(Stream, &str) + Send + Sync);

/// A step being run ([`Executor::run`]).
pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// Runs a RUN step's process on a rootfs: what the solver needs of an executor, so that it runs
/// on any implementation (the real one is [`RuncExecutor`]).
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Runs `exec` with `rootfs` (a mounted, writable snapshot) as `/`, streaming output lines
    /// to `sink`. A non-zero exit is [`Error::ExecFailed`] with the output's tail. Dropping the
    /// future before it completes cancels the step: its processes are killed and everything it
    /// set up is released.
    fn run<'a>(
        &'a self,
        rootfs: &'a Path,
        exec: &'a ExecSpec,
        sink: LineSink<'a>,
    ) -> ExecFuture<'a>;
}

/// Runs processes through an OCI runtime binary (runc, or one with its command line), with its
/// state under an xbuild root.
#[derive(Clone, Debug)]
pub struct RuncExecutor {
    /// The runtime binary asked for; `runc` on PATH when `None`.
    requested: Option<PathBuf>,
    /// The runtime binary, found (and the state directories made) when the first step runs.
    runtime: OnceLock<PathBuf>,
    state: PathBuf,
    bundles: PathBuf,
    /// The session whose containers these are (container ids, bundles and the network
    /// namespace carry it).
    owner: Option<String>,
    /// The xbuild root.
    root: PathBuf,
    /// The isolated default network, made when the first step on it runs and shared by the
    /// executor's clones; torn down when the last one goes.
    network: Arc<tokio::sync::OnceCell<Network>>,
}

/// Where runc mounts something in every step; with the step's own mount targets, the paths it
/// may have to create as mountpoints. What it creates is removed again after the step, so that
/// no mountpoint stub ends up in a layer.
const MOUNTPOINTS: &[&str] = &["/etc/resolv.conf", "/etc/hosts", "/proc", "/sys", "/dev"];

/// Removes the container and its bundle whatever happens to the step (cancel, panic).
struct Cleanup {
    runtime: PathBuf,
    state: PathBuf,
    id: String,
    bundle: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // `runc run` deletes a container that exited; one left behind (cancelled, killed
        // runtime) still has its state directory.
        if !self.state.join(&self.id).exists() {
            let _ = std::fs::remove_dir_all(&self.bundle);
            return;
        }
        let out = std::process::Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.state)
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = out {
            tracing::warn!(id = %self.id, error = %e, "runtime delete failed");
        }
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

impl RuncExecutor {
    /// An executor using `runtime` (`runc` on PATH when `None`) with state under `root`. The
    /// runtime is looked for when the first step runs, so that a build without RUN needs none.
    pub fn new(root: &Path, runtime: Option<PathBuf>) -> Self {
        RuncExecutor {
            requested: runtime,
            runtime: OnceLock::new(),
            state: root.join("runc"),
            bundles: root.join("bundles"),
            owner: None,
            root: root.to_path_buf(),
            network: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// The same executor, with its containers owned by session `owner` (see
    /// [`RootDirs::clean_owner`](crate::RootDirs::clean_owner)).
    pub fn with_owner(mut self, owner: &str) -> Self {
        self.owner = Some(owner.to_string());
        self
    }

    /// The OCI runtime binary; the first call finds it and makes the state directories.
    pub fn runtime(&self) -> Result<&Path, Error> {
        if let Some(r) = self.runtime.get() {
            return Ok(r);
        }
        let runtime = match &self.requested {
            Some(r) => r.clone(),
            None => find_on_path("runc").ok_or(Error::RuntimeNotFound)?,
        };
        for d in [&self.state, &self.bundles] {
            std::fs::create_dir_all(d).map_err(|err| Error::io(d, err))?;
        }
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// The default network's namespace, made on first use.
    async fn default_network(&self) -> Result<&Network, Error> {
        self.network
            .get_or_try_init(|| async {
                let name = match &self.owner {
                    Some(o) => format!("xbuild-{o}-{:016x}", rand::random::<u64>()),
                    None => format!("xbuild-{:016x}", rand::random::<u64>()),
                };
                Network::start(&self.root, &name).await
            })
            .await
    }

    /// The runtime's state directory (empty when no step is running).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// Runs a step (see [`Executor::run`]).
    async fn run_step(
        &self,
        rootfs: &Path,
        exec: &ExecSpec,
        sink: LineSink<'_>,
    ) -> Result<(), Error> {
        let runtime = self.runtime()?.to_path_buf();
        let root = Root::open(rootfs)?;
        let identity = resolve_user(&root, &exec.user)?;
        root.ensure_dir(&exec.cwd, 0o755, None)?;
        let targets: Vec<&str> = MOUNTPOINTS
            .iter()
            .copied()
            .chain(exec.mounts.iter().map(|m| m.target()))
            .collect();
        let stubs = missing_paths(&root, &targets)?;

        let id = match &self.owner {
            Some(o) => format!("xbuild-{o}-{:016x}", rand::random::<u64>()),
            None => format!("xbuild-{:016x}", rand::random::<u64>()),
        };
        let bundle = self.bundles.join(&id);
        std::fs::create_dir(&bundle).map_err(|e| Error::io(&bundle, e))?;
        let _cleanup = Cleanup {
            runtime: runtime.clone(),
            state: self.state.clone(),
            id: id.clone(),
            bundle: bundle.clone(),
        };
        let net = match exec.network {
            NetworkMode::Default => NetNs::Join(self.default_network().await?.path()),
            NetworkMode::None => NetNs::Loopback,
            NetworkMode::Host => NetNs::Host,
        };
        write_etc(&bundle, exec.network)?;
        let spec = spec::build(rootfs, exec, &identity, &bundle, net)?;
        let config = bundle.join("config.json");
        spec.save(&config)
            .map_err(|e| Error::io(&config, std::io::Error::other(e)))?;

        let mut child = tokio::process::Command::new(&runtime)
            .arg("--root")
            .arg(&self.state)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a terminal's Ctrl-C reaches xbuild, which then stops the
            // container and cleans up, instead of killing the runtime half-way.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::RuntimeProcess {
                action: "starting",
                runtime: runtime.clone(),
                source,
            })?;
        let tail = std::sync::Mutex::new(VecDeque::with_capacity(TAIL_LINES));
        let out = child.stdout.take();
        let err = child.stderr.take();
        let (status, (), ()) = tokio::join!(
            child.wait(),
            pump(out, Stream::Stdout, sink, &tail),
            pump(err, Stream::Stderr, sink, &tail),
        );
        let status = status.map_err(|source| Error::RuntimeProcess {
            action: "waiting for",
            runtime: runtime.clone(),
            source,
        })?;
        remove_stubs(&root, &stubs);
        if status.success() {
            return Ok(());
        }
        let code = status.code().unwrap_or(-1);
        let tail = tail
            .into_inner()
            .map(|t| t.into_iter().collect())
            .unwrap_or_default();
        Err(Error::ExecFailed {
            command: exec.args.clone(),
            code,
            tail,
        })
    }
}

impl Executor for RuncExecutor {
    fn run<'a>(
        &'a self,
        rootfs: &'a Path,
        exec: &'a ExecSpec,
        sink: LineSink<'a>,
    ) -> ExecFuture<'a> {
        Box::pin(self.run_step(rootfs, exec, sink))
    }
}

async fn pump(
    r: Option<impl AsyncRead + Unpin>,
    stream: Stream,
    sink: LineSink<'_>,
    tail: &std::sync::Mutex<VecDeque<String>>,
) {
    let Some(r) = r else { return };
    let mut lines = BufReader::new(r).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        sink(stream, text);
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(text.to_string());
        }
    }
}

fn write_etc(bundle: &Path, network: NetworkMode) -> Result<(), Error> {
    let hosts =
        format!("127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let host = || std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = match network {
        NetworkMode::None => String::new(),
        NetworkMode::Default => crate::network::resolv_conf(&host()),
        NetworkMode::Host => host(),
    };
    for (name, body) in [("hosts", hosts), ("resolv.conf", resolv)] {
        let p = bundle.join(name);
        std::fs::write(&p, body).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// The paths on the way to each of `targets` that do not exist in the rootfs yet, deepest
/// first: the mountpoints runc will create.
fn missing_paths(root: &Root, targets: &[&str]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for t in targets {
        let mut path = String::new();
        for comp in crate::fsops::rel(t).components() {
            path.push('/');
            path.push_str(&comp.as_os_str().to_string_lossy());
            if !out.contains(&path) && root.resolve(&path, false)?.is_none() {
                out.push(path.clone());
            }
        }
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    Ok(out)
}

/// Removes the mountpoints runc created: empty files and empty directories that did not exist
/// before the step (anything the step itself put there stays).
fn remove_stubs(root: &Root, stubs: &[String]) {
    for p in stubs {
        let path = std::path::Path::new(p);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let Ok(Some(dir)) = root.resolve(&parent.to_string_lossy(), true) else {
            continue;
        };
        let Ok(dir) = Root::reopen(&dir, true) else {
            continue;
        };
        match crate::fsops::stat_at(std::os::fd::AsFd::as_fd(&dir), name) {
            Ok(Some(st)) => {
                let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
                let flags = match ft {
                    rustix::fs::FileType::Directory => rustix::fs::AtFlags::REMOVEDIR,
                    rustix::fs::FileType::RegularFile if st.st_size == 0 => {
                        rustix::fs::AtFlags::empty()
                    }
                    _ => continue,
                };
                let _ = rustix::fs::unlinkat(&dir, name, flags);
            }
            _ => continue,
        }
    }
}

/// The first executable named `name` on PATH.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
