//! Remote sources fetched onto the host: a file downloaded over HTTP(S) (`ADD https://…`) and
//! a git repository checked out at a ref (`ADD https://…git#ref`), each in a scratch directory
//! and then placed into a snapshot's directory. The solver keys them by their content: the
//! sha256 of the download, the commit of the checkout.

use sha2::Digest as _;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::Error;
use crate::copy::{CopyRequest, SourceTree};
use crate::fsops::{CopyMeta, Root};

/// A scratch directory under `<root>/tmp` for one fetch, removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates a new scratch directory under the xbuild root `root`.
    pub fn new(root: &Path) -> Result<Self, Error> {
        let dir = root
            .join("tmp")
            .join(format!("fetch-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Scratch { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::debug!(path = %self.dir.display(), error = %e, "could not remove a fetch's scratch directory");
        }
    }
}

/// How long a server may take to accept a connection (and its name to resolve).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a server may send nothing, before its response or in the middle of its body,
/// before the download is abandoned: a server that stalls cannot hold a build (or a worker's
/// build slot) forever. A slow but steady download of any length still completes.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A file downloaded over HTTP(S), in a temporary file.
#[derive(Debug)]
pub struct Download {
    file: PathBuf,
    /// The content's digest (`sha256:…`).
    pub sha256: String,
    /// The server's `Last-Modified`, in seconds since the epoch.
    pub mtime: Option<i64>,
}

impl Download {
    /// Downloads `url` into the file `tmp`, hashing it as it arrives; a server silent for
    /// [`STALL_TIMEOUT`] fails it ([`Error::DownloadStalled`]).
    pub fn get(url: &str, tmp: &Path) -> Result<Self, Error> {
        Self::get_with(url, tmp, STALL_TIMEOUT)
    }

    fn get_with(url: &str, tmp: &Path, stall: Duration) -> Result<Self, Error> {
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| Error::Download {
            url: url.to_string(),
            reason: e,
        };
        let stalled = || Error::DownloadStalled {
            url: url.to_string(),
            after: stall,
        };
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_resolve(Some(CONNECT_TIMEOUT))
                .timeout_connect(Some(CONNECT_TIMEOUT))
                .timeout_send_request(Some(stall))
                .timeout_recv_response(Some(stall))
                .timeout_per_read(Some(stall))
                .timeout_per_write(Some(stall))
                .build(),
        );
        let resp = agent.get(url).call().map_err(|e| match e {
            ureq::Error::Timeout(_) => stalled(),
            e => failed(Box::new(e)),
        })?;
        let mtime = resp
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(http_date);
        let mut body = resp.into_body().into_reader();
        let mut f = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = body.read(&mut buf).map_err(|e| {
                if timed_out(&e) {
                    stalled()
                } else {
                    failed(Box::new(e))
                }
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            std::io::Write::write_all(&mut f, &buf[..n]).map_err(|e| Error::io(tmp, e))?;
        }
        Ok(Download {
            file: tmp.to_path_buf(),
            sha256: format!("sha256:{}", hex::encode(hasher.finalize())),
            mtime,
        })
    }

    /// Moves the download to `dest` (a new file in a snapshot's directory), mode 0600, its
    /// mtime the server's `Last-Modified` when it sent one.
    pub fn place(self, dest: &Path) -> Result<(), Error> {
        std::fs::rename(&self.file, dest).map_err(|e| Error::io(dest, e))?;
        std::fs::set_permissions(dest, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| Error::io(dest, e))?;
        if let Some(t) = self.mtime {
            let ft = rustix::fs::Timespec {
                tv_sec: t,
                tv_nsec: 0,
            };
            rustix::fs::utimensat(
                rustix::fs::CWD,
                dest,
                &rustix::fs::Timestamps {
                    last_access: ft,
                    last_modification: ft,
                },
                rustix::fs::AtFlags::empty(),
            )
            .map_err(|e| Error::io(dest, e.into()))?;
        }
        Ok(())
    }
}

/// True when a body read failed because the server went silent (ureq reports its timeouts
/// through the reader as `TimedOut`, or as its own `Timeout` error inside an I/O error).
fn timed_out(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

/// Parses an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, RFC 7231's preferred form).
fn http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<i64> = time.split(':').filter_map(|x| x.parse().ok()).collect();
    let [hh, mm, ss] = t.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|source| Error::GitUnavailable { source })?;
    if !out.status.success() {
        return Err(Error::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A git repository checked out at one commit, in a scratch directory.
#[derive(Debug)]
pub struct GitCheckout {
    dir: PathBuf,
    remote: String,
    /// The commit checked out.
    pub commit: String,
}

impl GitCheckout {
    /// Clones `remote` at `reference` (a branch, tag or commit; `HEAD` when empty) into `dir`,
    /// with its submodules (`git` on PATH, never prompting).
    pub fn fetch(remote: &str, reference: &str, dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        git(dir, &["init", "-q"])?;
        git(dir, &["remote", "add", "origin", remote])?;
        let r = if reference.is_empty() {
            "HEAD"
        } else {
            reference
        };
        if git(dir, &["fetch", "-q", "--depth=1", "origin", r]).is_err() {
            // A commit that is not a ref tip (or that the remote will not serve shallowly)
            // needs a full fetch.
            git(dir, &["fetch", "-q", "--tags", "origin"])?;
            git(dir, &["checkout", "-q", r])?;
        } else {
            git(dir, &["checkout", "-q", "FETCH_HEAD"])?;
        }
        // Submodules too, as BuildKit's git source checks them out.
        git(
            dir,
            &[
                "submodule",
                "update",
                "-q",
                "--init",
                "--recursive",
                "--depth=1",
            ],
        )?;
        let commit = git(dir, &["rev-parse", "HEAD"])?;
        Ok(GitCheckout {
            dir: dir.to_path_buf(),
            remote: remote.to_string(),
            commit,
        })
    }

    /// The tree to keep: the checkout without its `.git` unless `keep_git_dir`, narrowed to
    /// `subdir` (resolved inside the checkout) when given.
    pub fn tree(self, subdir: Option<&str>, keep_git_dir: bool) -> Result<GitTree, Error> {
        if !keep_git_dir {
            let g = self.dir.join(".git");
            std::fs::remove_dir_all(&g).map_err(|e| Error::io(&g, e))?;
        }
        let dir = match subdir {
            Some(s) => {
                let r = Root::open(&self.dir)?;
                let fd = r.resolve(s, true)?.ok_or_else(|| Error::GitSubdirMissing {
                    remote: self.remote.clone(),
                    subdir: s.to_string(),
                    commit: self.commit.clone(),
                })?;
                std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map_err(|e| Error::io(Path::new(s), e))?
            }
            None => self.dir,
        };
        Ok(GitTree { dir })
    }
}

/// What of a [`GitCheckout`] a source keeps, ready to be copied into a snapshot.
#[derive(Debug)]
pub struct GitTree {
    dir: PathBuf,
}

impl GitTree {
    /// The tree's directory on the host (inside the checkout).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Copies the tree into `dest` (a snapshot's directory), everything owned by root.
    pub fn copy_into(&self, dest: &Path) -> Result<(), Error> {
        let src = Root::open(&self.dir)?;
        let dst = Root::open(dest)?;
        let tree = SourceTree {
            root: &src,
            filter: None,
            name: "the git checkout",
        };
        let req = CopyRequest {
            src: "/",
            dest: "/",
            dir_copy_contents: true,
            create_dest_path: true,
            meta: CopyMeta {
                keep_owner: false,
                ..Default::default()
            },
            ..Default::default()
        };
        crate::copy::copy(&tree, &dst, &req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1445412480));
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn a_refused_download_names_its_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/file");
        let e = Download::get(&url, &d.path().join("download")).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("downloading {url}: ")),
            "{e}"
        );
    }

    /// A server that answers the request and then goes silent mid-body: once before its
    /// response (`headers == false`), once after it.
    fn stalling_server(headers: bool) -> (String, std::thread::JoinHandle<()>) {
        use std::io::Write as _;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/file", l.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req);
            if headers {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial");
            }
            std::thread::sleep(Duration::from_secs(3));
        });
        (url, t)
    }

    #[test]
    fn download_from_a_server_that_stalls_fails_after_the_stall_timeout() {
        for headers in [false, true] {
            let (url, server) = stalling_server(headers);
            let d = tempfile::tempdir().unwrap();
            let start = std::time::Instant::now();
            let e =
                Download::get_with(&url, &d.path().join("download"), Duration::from_millis(300))
                    .unwrap_err();
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
            assert!(
                matches!(&e, Error::DownloadStalled { url: u, .. } if *u == url),
                "headers={headers}: {e}"
            );
            assert!(e.to_string().contains("sent nothing for 300ms"), "{e}");
            server.join().unwrap();
        }
    }

    #[test]
    fn a_checkout_keeps_a_subdirectory_and_drops_git() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("repo");
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        std::fs::write(repo.join("sub/hello"), "from git\n").unwrap();
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "."],
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "one",
            ],
        ] {
            git(&repo, args).unwrap();
        }
        let fetch = |n: &str| {
            GitCheckout::fetch(repo.to_str().unwrap(), "main", &d.path().join(n)).unwrap()
        };
        let c = fetch("a");
        assert_eq!(c.commit.len(), 40);
        let commit = c.commit.clone();
        let e = c.tree(Some("nope"), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: no directory nope at {commit}", repo.display())
        );
        let tree = fetch("b").tree(Some("sub"), false).unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        tree.copy_into(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("hello")).unwrap(),
            "from git\n"
        );
        assert!(!d.path().join("b/.git").exists());
    }
}
