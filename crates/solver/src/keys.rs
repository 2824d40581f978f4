//! Cache keys: a vertex's digest, its inputs' cache keys and, for each copy from a local
//! source (the build context), the checksum of exactly what the copy selects.
//!
//! The context checksum covers each selected path's name, type, permission bits, symlink
//! target and content, and the tree's shape; not mtimes, and not owners: a copy from the
//! context never carries owners over (everything becomes root's, or `--chown`'s, which is part
//! of the op and so of its digest), so counting them would only cause misses that change
//! nothing in the result. Files are hashed in parallel through the root's stat cache.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use tokio::task::JoinHandle;

use xbuild_cache::history::{ContentRecord, FileSum, History};
use xbuild_cache::statcache::StatCache;
use xbuild_dockerignore::Filter;
use xbuild_llb::{Definition, Digest, DigestBuilder, FileAction, Op, Vertex};
use xbuild_runtime::{
    Checksum, ContentHashes, FileStamp, LocalContext, NoContentHashes, Selection, Source,
};

use crate::{Error, Solved, Solver, blocking};

/// The stat cache as the runtime's context hashing sees it.
struct Hashes<'a>(&'a StatCache);

impl ContentHashes for Hashes<'_> {
    fn get(&self, s: &FileStamp) -> Option<[u8; 32]> {
        self.0.get(s)
    }

    fn put(&self, s: FileStamp, hash: [u8; 32]) {
        self.0.put(s, hash)
    }
}

/// The checksum of what `sel` selects in the context at `dir` (seen through its
/// `.dockerignore` `filter`), hashing through `stat_cache` when given; with `paths`, the
/// checksum of each path too.
pub fn context_checksum(
    dir: &Path,
    filter: Option<&Filter>,
    sel: &Selection<'_>,
    stat_cache: Option<&StatCache>,
    paths: bool,
) -> Result<Checksum, Error> {
    let context = LocalContext::new(dir);
    Ok(match stat_cache {
        Some(c) => context.checksum(filter, sel, &Hashes(c), paths)?,
        None => context.checksum(filter, sel, &NoContentHashes, paths)?,
    })
}

/// The builder every cache key starts from.
pub(crate) fn key_builder() -> DigestBuilder {
    DigestBuilder::new("xbuild-cache-key-v2")
}

/// A context checksum being computed.
type ContentJob = JoinHandle<Result<ContentRecord, Error>>;

/// Context checksums being computed ahead, by (vertex, copy action): they depend on nothing
/// but the context, so a solve starts them all at once instead of as each copy's turn comes.
#[derive(Default)]
pub(crate) struct Prefetch(Mutex<HashMap<(Digest, usize), ContentJob>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Ok(m) = self.0.get_mut() {
            for (_, h) in m.drain() {
                h.abort();
            }
        }
    }
}

/// What a vertex's cache key is made of.
pub(crate) struct KeyParts {
    /// The key so far: digest and input keys, then content checksums.
    pub builder: DigestBuilder,
    /// The input vertices' cache keys.
    pub input_keys: Vec<Digest>,
    /// The content checksums of what it reads from local sources.
    pub contents: Vec<ContentRecord>,
}

impl Solver {
    /// Starts the context checksums of every copy from a local source among `vertices`.
    pub(crate) fn prefetch(&self, def: &Definition, vertices: &[&Vertex]) -> Prefetch {
        let p = Prefetch::default();
        let mut m = HashMap::new();
        for v in vertices {
            let Op::File(f) = v.op() else { continue };
            for (n, a) in f.actions.iter().enumerate() {
                if let Ok(Some(job)) = self.content_job(def, v, n, a) {
                    m.insert((v.digest().clone(), n), tokio::task::spawn_blocking(job));
                }
            }
        }
        if let Ok(mut g) = p.0.lock() {
            *g = m;
        }
        p
    }

    /// The job computing the context checksum of action `n` of `v`, when it copies from a
    /// local source.
    #[allow(clippy::type_complexity)]
    fn content_job(
        &self,
        def: &Definition,
        v: &Vertex,
        n: usize,
        a: &FileAction,
    ) -> Result<Option<Box<dyn FnOnce() -> Result<ContentRecord, Error> + Send>>, Error> {
        let FileAction::Copy(c) = a else {
            return Ok(None);
        };
        let Some(d) = v.inputs().get(c.input) else {
            return Ok(None);
        };
        let Some((source, filter)) = self.local_source(def, d)? else {
            return Ok(None);
        };
        let c = c.clone();
        let history = History::new(&self.opts.root);
        // A source that knows the checksum needs no walk, and no stat cache loaded (unless
        // `explain` lacks the file list of that checksum).
        let sel = Selection::of(&c);
        if let Some(total) = source.known_checksum(filter.as_deref(), &sel) {
            let hex = hex::encode(total);
            if history.has_files(&hex) {
                return Ok(Some(Box::new(move || {
                    Ok(ContentRecord {
                        action: n,
                        src: c.src.clone(),
                        checksum: hex,
                    })
                })));
            }
        }
        let cache = self.stat_cache();
        Ok(Some(Box::new(move || {
            let sel = Selection::of(&c);
            let hashes = Hashes(&cache);
            let sum = source.checksum(filter.as_deref(), &sel, &hashes, false)?;
            let hex = hex::encode(sum.total);
            // The file list is kept once per distinct checksum, for `explain`: walked again
            // (the stat cache has every file now) only when the checksum is new.
            if !history.has_files(&hex) {
                let again = source.checksum(filter.as_deref(), &sel, &hashes, true)?;
                if again.total != sum.total {
                    return Err(Error::ContextChanged { src: c.src.clone() });
                }
                let files: Vec<FileSum> = again
                    .paths
                    .into_iter()
                    .map(|p| FileSum {
                        path: p.path,
                        sum: p.sum,
                    })
                    .collect();
                if let Err(e) = history.put_files(&hex, &files) {
                    tracing::warn!(error = %e, "could not record a context file list");
                }
            }
            Ok(ContentRecord {
                action: n,
                src: c.src.clone(),
                checksum: hex,
            })
        })))
    }

    /// The parts of `v`'s cache key that are known before it runs (remote sources add the
    /// checksum of what they fetch).
    pub(crate) async fn key_parts(
        &self,
        def: &Definition,
        v: &Vertex,
        inputs: &Solved,
        prefetch: &Prefetch,
    ) -> Result<KeyParts, Error> {
        let mut builder = key_builder();
        builder.part(v.digest().as_str().as_bytes());
        let mut input_keys = Vec::with_capacity(v.inputs().len());
        for i in v.inputs() {
            let r = inputs.results.get(i).ok_or_else(|| Error::Missing {
                what: format!("input {i}"),
            })?;
            builder.part(r.cache_key.as_str().as_bytes());
            input_keys.push(r.cache_key.clone());
        }
        let mut contents = Vec::new();
        if let Op::File(f) = v.op() {
            for (n, a) in f.actions.iter().enumerate() {
                let started = prefetch
                    .0
                    .lock()
                    .ok()
                    .and_then(|mut m| m.remove(&(v.digest().clone(), n)));
                let record = match started {
                    Some(h) => h.await.map_err(|e| Error::Task(e.to_string()))??,
                    None => match self.content_job(def, v, n, a)? {
                        Some(job) => blocking(job).await?,
                        None => continue,
                    },
                };
                builder.part(record.checksum.as_bytes());
                contents.push(record);
            }
        }
        Ok(KeyParts {
            builder,
            input_keys,
            contents,
        })
    }

    /// Writes what the stat cache learned (off the async threads).
    pub(crate) async fn save_stat_cache(&self) {
        let Some(cache) = self.stat_cache.get().cloned() else {
            return;
        };
        let r: Result<usize, Error> = blocking(move || Ok(cache.save()?)).await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not save the stat cache");
        }
    }
}
