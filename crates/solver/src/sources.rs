//! Remote sources: a file downloaded over HTTP(S) (`ADD https://…`) and a git repository at a
//! ref (`ADD https://…git#ref`). Each becomes a one-layer snapshot, keyed by its content (the
//! sha256 of the download, the commit of the checkout).

use sha2::Digest as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use xbuild_cache::CacheRecord;
use xbuild_llb::{Digest, DigestBuilder, Op, SourceOp, Vertex};

use crate::{Error, Solver, VertexResult, blocking, now_rfc3339};

/// Fills a new snapshot's directory with a fetched source.
type Fill = Box<dyn FnOnce(&Path) -> Result<(), Error> + Send>;

/// A download, in a temporary file.
struct Download {
    file: PathBuf,
    sha256: String,
    mtime: Option<i64>,
}

fn remote_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Remote {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// Parses an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, RFC 7231's preferred form).
pub(crate) fn http_date(s: &str) -> Option<i64> {
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

fn download(url: &str, tmp: &Path) -> Result<Download, Error> {
    let resp = ureq::get(url)
        .call()
        .map_err(|e| remote_err(&format!("downloading {url}"), e))?;
    let mtime = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(http_date);
    let mut body = resp.into_body().into_reader();
    let mut f =
        std::fs::File::create(tmp).map_err(|e| remote_err(&tmp.display().to_string(), e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body
            .read(&mut buf)
            .map_err(|e| remote_err(&format!("downloading {url}"), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n])
            .map_err(|e| remote_err(&tmp.display().to_string(), e))?;
    }
    Ok(Download {
        file: tmp.to_path_buf(),
        sha256: format!("sha256:{}", hex::encode(hasher.finalize())),
        mtime,
    })
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| remote_err("running git (install git)", e))?;
    if !out.status.success() {
        return Err(remote_err(
            &format!("git {}", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Clones `remote` at `reference` into `dir`; returns the commit checked out.
fn clone(remote: &str, reference: &str, dir: &Path) -> Result<String, Error> {
    std::fs::create_dir_all(dir).map_err(|e| remote_err(&dir.display().to_string(), e))?;
    git(dir, &["init", "-q"])?;
    git(dir, &["remote", "add", "origin", remote])?;
    let r = if reference.is_empty() {
        "HEAD"
    } else {
        reference
    };
    if git(dir, &["fetch", "-q", "--depth=1", "origin", r]).is_err() {
        // A commit that is not a ref tip needs a full fetch.
        git(dir, &["fetch", "-q", "origin"])?;
        git(dir, &["checkout", "-q", r])?;
    } else {
        git(dir, &["checkout", "-q", "FETCH_HEAD"])?;
    }
    git(dir, &["rev-parse", "HEAD"])
}

impl Solver {
    /// Solves an HTTP or git source vertex: fetches it, keys it by its content, and re-uses a
    /// snapshot of the same content.
    pub(crate) async fn remote_source(
        &self,
        v: &Vertex,
        name: &str,
        key: DigestBuilder,
    ) -> Result<VertexResult, Error> {
        let start = self.started(v, name);
        let scratch = self
            .opts
            .root
            .join("tmp")
            .join(format!("fetch-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&scratch)
            .map_err(|e| remote_err(&scratch.display().to_string(), e))?;
        let r = self.fetch_remote(v, key, &scratch).await;
        let _ = std::fs::remove_dir_all(&scratch);
        let (snapshot, created, cache_key) = r?;
        self.done(v, start);
        Ok(VertexResult {
            snapshot,
            created,
            cache_key,
            cached: false,
        })
    }

    async fn fetch_remote(
        &self,
        v: &Vertex,
        mut key: DigestBuilder,
        scratch: &Path,
    ) -> Result<(Option<String>, String, Digest), Error> {
        let snaps = self.snapshots.clone();
        let (content_key, build): (String, Fill) = match v.op() {
            Op::Source(SourceOp::Http {
                url,
                checksum,
                filename,
            }) => {
                let (url2, tmp) = (url.clone(), scratch.join("download"));
                let d = blocking(move || download(&url2, &tmp)).await?;
                if let Some(want) = checksum
                    && want.as_str() != d.sha256
                {
                    return Err(Error::Pinned {
                        source_ref: url.to_string(),
                        got: format!("checksum mismatch: downloaded {}", d.sha256),
                        expected: want.to_string(),
                    });
                }
                let filename = filename.clone();
                let k = format!("{}:{}", d.sha256, d.mtime.unwrap_or(0));
                (
                    k,
                    Box::new(move |upper: &Path| {
                        let dest = upper.join(&filename);
                        std::fs::rename(&d.file, &dest)
                            .map_err(|e| remote_err(&dest.display().to_string(), e))?;
                        std::fs::set_permissions(
                            &dest,
                            std::os::unix::fs::PermissionsExt::from_mode(0o600),
                        )
                        .map_err(|e| remote_err(&dest.display().to_string(), e))?;
                        if let Some(t) = d.mtime {
                            let ft = filetime_of(t);
                            rustix::fs::utimensat(
                                rustix::fs::CWD,
                                &dest,
                                &rustix::fs::Timestamps {
                                    last_access: ft,
                                    last_modification: ft,
                                },
                                rustix::fs::AtFlags::empty(),
                            )
                            .map_err(|e| remote_err(&dest.display().to_string(), e))?;
                        }
                        Ok(())
                    }),
                )
            }
            Op::Source(SourceOp::Git {
                remote,
                reference,
                subdir,
                keep_git_dir,
                checksum,
            }) => {
                let (remote2, reference2, dir) =
                    (remote.clone(), reference.clone(), scratch.join("checkout"));
                let dir2 = dir.clone();
                let commit = blocking(move || clone(&remote2, &reference2, &dir2)).await?;
                if let Some(want) = checksum
                    && !commit.starts_with(want.as_str())
                {
                    return Err(Error::Pinned {
                        source_ref: format!("{remote}#{reference}"),
                        got: format!("checked out commit {commit}"),
                        expected: want.to_string(),
                    });
                }
                if !keep_git_dir {
                    let g = dir.join(".git");
                    std::fs::remove_dir_all(&g)
                        .map_err(|e| remote_err(&g.display().to_string(), e))?;
                }
                let root = match subdir {
                    Some(s) => {
                        let r = xbuild_runtime::fsops::Root::open(&dir)?;
                        let fd = r.resolve(s, true)?.ok_or_else(|| {
                            remote_err(remote, format!("no directory {s} at {commit}"))
                        })?;
                        std::fs::read_link(format!(
                            "/proc/self/fd/{}",
                            std::os::fd::AsRawFd::as_raw_fd(&fd)
                        ))
                        .map_err(|e| remote_err(s, e))?
                    }
                    None => dir.clone(),
                };
                (
                    commit,
                    Box::new(move |upper: &Path| {
                        let src = xbuild_runtime::fsops::Root::open(&root)?;
                        let dst = xbuild_runtime::fsops::Root::open(upper)?;
                        let tree = xbuild_runtime::copy::SourceTree {
                            root: &src,
                            filter: None,
                            name: "the git checkout",
                        };
                        let req = xbuild_runtime::copy::CopyRequest {
                            src: "/",
                            dest: "/",
                            dir_copy_contents: true,
                            create_dest_path: true,
                            meta: xbuild_runtime::fsops::CopyMeta {
                                keep_owner: false,
                                ..Default::default()
                            },
                            ..Default::default()
                        };
                        xbuild_runtime::copy::copy(&tree, &dst, &req)?;
                        Ok(())
                    }),
                )
            }
            _ => {
                return Err(Error::Unsupported(format!(
                    "fetching {} as a remote source",
                    v.digest()
                )));
            }
        };
        key.part(content_key.as_bytes());
        let cache_key = key.finish();
        if let Some(rec) = self.lookup(&cache_key).await? {
            return Ok((rec.snapshot, rec.created, cache_key));
        }
        let session = self.session.clone();
        let id = blocking(move || {
            let active = snaps.prepare(None)?;
            session.hold(xbuild_cache::lease::Hold::Snapshot, active.id())?;
            build(&active.upper())?;
            Ok(snaps.commit(active)?)
        })
        .await?;
        let rec = CacheRecord {
            snapshot: Some(id),
            created: now_rfc3339(),
        };
        {
            let _gc = self.gc_shared().await?;
            self.store.put_cache(&cache_key, &rec)?;
        }
        Ok((rec.snapshot, rec.created, cache_key))
    }
}

fn filetime_of(t: i64) -> rustix::fs::Timespec {
    rustix::fs::Timespec {
        tv_sec: t,
        tv_nsec: 0,
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
}
