//! The default network of RUN steps: an isolated network namespace, as Docker Engine's builds
//! on its bridge network get, whose only way out is slirp4netns.
//!
//! A step on the default network must not reach the host's loopback services (a database on
//! 127.0.0.1, the Docker socket's TCP twin, a worker's own API) nor its abstract Unix
//! sockets, which live in the host's network namespace. So it gets a namespace of its own, in
//! which slirp4netns provides a tap device (`tap0`, 10.0.2.100/24, default route via
//! 10.0.2.2, DNS at 10.0.2.3) and forwards connections from the host's side as an ordinary
//! user-space process would, with `--disable-host-loopback` so that 10.0.2.2 does not lead to
//! the host's 127.0.0.1. slirp4netns itself runs sandboxed (its own mount namespace, no
//! capabilities, a seccomp filter).
//!
//! One namespace serves every step of a build (an executor): it is made when the first step on
//! the default network runs (a build without one pays nothing), bind-mounted at
//! `<root>/netns/xbuild-<owner>-<random>` so that each step's runtime joins it by path, and
//! torn down when the executor goes. slirp4netns exits by itself when xbuild does, even on
//! `kill -9` (its `--exit-fd` is a pipe xbuild holds), and
//! [`RootDirs::clean_owner`](crate::RootDirs::clean_owner) unmounts and removes what a dead
//! session left.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::Error;

/// The directory under an xbuild root where network namespaces are bind-mounted.
pub(crate) const NETNS_DIR: &str = "netns";

/// The DNS server slirp4netns provides inside the namespace.
const SLIRP_DNS: &str = "10.0.2.3";

/// How long slirp4netns may take to configure the namespace.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of slirp4netns's standard error a failure reports.
const STDERR_LIMIT: u64 = 4096;

/// What a failure to set up the network tells the user to do.
const HINT: &str = "the default network of RUN steps needs slirp4netns (apt-get install \
                    slirp4netns) and util-linux's unshare; RUN --network=none needs neither";

fn failed(action: &'static str, reason: impl std::fmt::Display) -> Error {
    Error::Network {
        action,
        reason: reason.to_string(),
        hint: HINT,
    }
}

/// A network namespace bind-mounted at a path; unmounted and removed when dropped.
#[derive(Debug)]
struct Pinned {
    path: PathBuf,
    mounted: bool,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if self.mounted
            && let Err(e) = rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not unmount a network namespace");
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The isolated default network of one executor's steps (see the module documentation).
#[derive(Debug)]
pub(crate) struct Network {
    /// slirp4netns; it exits when `exit` is closed.
    slirp: Child,
    /// The write end of slirp4netns's `--exit-fd`.
    exit: Option<ChildStdin>,
    /// Declared last: unmounted after slirp4netns is stopped.
    pinned: Pinned,
}

impl Network {
    /// Makes the namespace at `<root>/netns/<name>` and starts slirp4netns in it; returns once
    /// the namespace is configured.
    pub(crate) async fn start(root: &Path, name: &str) -> Result<Network, Error> {
        let slirp = crate::exec::find_on_path("slirp4netns")
            .ok_or_else(|| failed("finding slirp4netns", "not found on PATH"))?;
        let unshare = crate::exec::find_on_path("unshare")
            .ok_or_else(|| failed("finding unshare", "not found on PATH"))?;
        let dir = root.join(NETNS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut pinned = Pinned {
            path,
            mounted: false,
        };
        let out = Command::new(&unshare)
            .arg(format!("--net={}", pinned.path.display()))
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| {
                failed(
                    "creating the namespace",
                    format!("running {}: {e}", unshare.display()),
                )
            })?;
        if !out.status.success() {
            return Err(failed(
                "creating the namespace",
                format!(
                    "{} --net={}: {}: {}",
                    unshare.display(),
                    pinned.path.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        pinned.mounted = true;
        let mut child = Command::new(&slirp)
            .args([
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-sandbox",
                "--enable-seccomp",
                "--netns-type=path",
                "--ready-fd=1",
                "--exit-fd=0",
            ])
            .arg(&pinned.path)
            .arg("tap0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a terminal's Ctrl-C reaches xbuild, which stops the steps
            // before their network.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed("starting slirp4netns", format!("{}: {e}", slirp.display())))?;
        let exit = child.stdin.take();
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
        else {
            return Err(failed("starting slirp4netns", "its output is not piped"));
        };
        match tokio::time::timeout(READY_TIMEOUT, ready(&mut stdout)).await {
            Ok(Ok(true)) => {}
            waited => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let mut text = String::new();
                let _ = (&mut stderr)
                    .take(STDERR_LIMIT)
                    .read_to_string(&mut text)
                    .await;
                let why = match waited {
                    Err(_) => format!("not ready after {}s", READY_TIMEOUT.as_secs()),
                    Ok(Err(e)) => format!("reading its ready signal: {e}"),
                    Ok(Ok(_)) => "exited before configuring the namespace".into(),
                };
                return Err(failed(
                    "starting slirp4netns",
                    format!("{why}: {}", text.trim()),
                ));
            }
        }
        // Whatever it says later goes to the log, so that its pipes never fill up.
        tokio::spawn(log_lines(stdout));
        tokio::spawn(log_lines(stderr));
        tracing::debug!(netns = %pinned.path.display(), "default RUN network up");
        Ok(Network {
            slirp: child,
            exit,
            pinned,
        })
    }

    /// Where the namespace is bind-mounted: what a step's runtime joins.
    pub(crate) fn path(&self) -> &Path {
        &self.pinned.path
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Closing the exit fd stops slirp4netns; killing it makes sure.
        drop(self.exit.take());
        let _ = self.slirp.start_kill();
    }
}

/// Reads slirp4netns's standard output until its ready signal: a `1` at the start of a line
/// (it may print a warning line first). False when it closed its output without one.
async fn ready(stdout: &mut (impl AsyncRead + Unpin)) -> std::io::Result<bool> {
    let mut line_start = true;
    let mut byte = [0u8; 1];
    loop {
        if stdout.read(&mut byte).await? == 0 {
            return Ok(false);
        }
        if line_start && byte[0] == b'1' {
            return Ok(true);
        }
        line_start = byte[0] == b'\n';
    }
}

async fn log_lines(r: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "slirp4netns", "{line}");
    }
}

/// The `resolv.conf` of a step on the default network, from the host's: nameservers that the
/// namespace cannot reach (the host's loopback, IPv6, which slirp4netns is not given) are
/// dropped, as BuildKit does, and slirp4netns's DNS forwarder stands in when none is left.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines().map(|l| l.trim_end_matches('\r')) {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let usable = words
                .next()
                .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                .is_some_and(|a| a.is_ipv4() && !a.is_loopback() && !a.is_unspecified());
            if !usable {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str(&format!("nameserver {SLIRP_DNS}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_what_the_namespace_cannot_reach() {
        let host = "# generated\nsearch example.test\nnameserver 127.0.0.53\nnameserver ::1\n\
                    nameserver 2001:db8::1\nnameserver 192.0.2.53\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "# generated\nsearch example.test\nnameserver 192.0.2.53\noptions edns0\n"
        );
    }

    #[test]
    fn resolv_conf_falls_back_to_slirps_dns() {
        let host = "nameserver 127.0.0.53\noptions trust-ad\n";
        assert_eq!(resolv_conf(host), "options trust-ad\nnameserver 10.0.2.3\n");
        assert_eq!(resolv_conf(""), "nameserver 10.0.2.3\n");
        assert_eq!(
            resolv_conf("nameserver\nnameserver bogus\n"),
            "nameserver 10.0.2.3\n"
        );
    }

    #[tokio::test]
    async fn ready_signal_after_a_warning_line() {
        let mut warned: &[u8] = b"WARNING: Support for seccomp is experimental\n1";
        assert!(ready(&mut warned).await.unwrap());
        let mut plain: &[u8] = b"1";
        assert!(ready(&mut plain).await.unwrap());
        let mut none: &[u8] = b"exiting after error 1\n";
        assert!(!ready(&mut none).await.unwrap());
    }
}
