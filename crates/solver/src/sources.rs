//! Remote sources: a file downloaded over HTTP(S) (`ADD https://…`) and a git repository at a
//! ref (`ADD https://…git#ref`). Each becomes a one-layer snapshot, keyed by its content (the
//! sha256 of the download, the commit of the checkout).

use std::path::Path;

use xbuild_cache::CacheRecord;
use xbuild_llb::{Digest, DigestBuilder, Op, SourceOp, Vertex};
use xbuild_runtime::{Download, GitCheckout, Scratch};

use crate::{Error, Solver, VertexResult, blocking, now_rfc3339};

/// Fills a new snapshot's directory with a fetched source.
type Fill = Box<dyn FnOnce(&Path) -> Result<(), xbuild_runtime::Error> + Send>;

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
        let scratch = Scratch::new(&self.opts.root)?;
        let r = self.fetch_remote(v, key, scratch.path()).await;
        drop(scratch);
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
                let d = blocking(move || Ok(Download::get(&url2, &tmp)?)).await?;
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
                    Box::new(move |upper: &Path| d.place(&upper.join(&filename))),
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
                let checkout =
                    blocking(move || Ok(GitCheckout::fetch(&remote2, &reference2, &dir)?)).await?;
                if let Some(want) = checksum
                    && !checkout.commit.starts_with(want.as_str())
                {
                    return Err(Error::Pinned {
                        source_ref: format!("{remote}#{reference}"),
                        got: format!("checked out commit {}", checkout.commit),
                        expected: want.to_string(),
                    });
                }
                let commit = checkout.commit.clone();
                let tree = checkout.tree(subdir.as_deref(), *keep_git_dir)?;
                (commit, Box::new(move |upper: &Path| tree.copy_into(upper)))
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
