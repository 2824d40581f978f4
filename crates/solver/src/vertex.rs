//! Solving one vertex: its cache key, a lookup, and on a miss, under the key's lock (so that
//! another process building the same key is waited for), running it and recording the result.

use std::time::Instant;

use tokio_util::sync::CancellationToken;
use xbuild_cache::CacheRecord;
use xbuild_cache::history::ContentRecord;
use xbuild_cache::lock::KeyLock;
use xbuild_llb::{Definition, Digest, Op, SourceOp, Vertex};

use crate::keys::Prefetch;
use crate::{Error, Event, Solved, Solver, VertexResult, blocking, image_source, now_rfc3339};

/// What the scheduler learns about a vertex besides its result, for the build's record.
#[derive(Debug, Default)]
pub(crate) struct Track {
    /// Its cache key, once known.
    pub key: Option<Digest>,
    /// Its inputs' cache keys.
    pub input_keys: Vec<Digest>,
    /// The content checksums its key covers.
    pub contents: Vec<ContentRecord>,
    /// When it started running (it was not cached).
    pub started: Option<Instant>,
}

impl Solver {
    /// The cached result of `key`, leased; `None` on a miss (or when its snapshot is gone).
    pub(crate) async fn lookup(&self, key: &Digest) -> Result<Option<CacheRecord>, Error> {
        if self.store.get_cache(key)?.is_none() {
            return Ok(None);
        }
        // Read again, and lease, where no prune can delete it in between.
        let _gc = self.gc_shared().await?;
        let Some(rec) = self.store.get_cache(key)? else {
            return Ok(None);
        };
        if let Some(s) = &rec.snapshot {
            self.hold(s)?;
            if !self.snapshots.exists(s) {
                return Ok(None);
            }
        }
        Ok(Some(rec))
    }

    /// The result of `key` from an imported cache: its missing blobs fetched, its layers
    /// unpacked (leased) and recorded in the local cache; `None` when no imported cache has it
    /// (or the build ignores the cache).
    pub(crate) async fn import_remote(&self, key: &Digest) -> Result<Option<CacheRecord>, Error> {
        if self.opts.no_cache {
            return Ok(None);
        }
        let Some((source, result)) = self.opts.remote_cache.get(key) else {
            return Ok(None);
        };
        let failed = |e: Error| Error::CacheImport {
            name: source.name.clone(),
            message: e.to_string(),
        };
        let missing: Vec<_> =
            image_source::missing_layers(&self.store, self.snapshots.as_ref(), &result.layers)?
                .into_iter()
                .cloned()
                .collect();
        for blob in &missing {
            source
                .fetcher
                .fetch(&self.store, blob)
                .await
                .map_err(failed)?;
        }
        let _gc = self.gc_shared().await?;
        let (store, snaps, session) = (
            self.store.clone(),
            self.snapshots.clone(),
            self.session.clone(),
        );
        let layers = result.layers.clone();
        let top = blocking(move || {
            let top = image_source::unpack_chain(&store, snaps.as_ref(), &layers)?;
            if let Some(t) = &top {
                session.hold(xbuild_cache::lease::Hold::Snapshot, t)?;
            }
            Ok(top)
        })
        .await
        .map_err(failed)?;
        let rec = CacheRecord {
            snapshot: top,
            created: result.created,
        };
        self.store.put_cache(key, &rec)?;
        tracing::debug!(%key, cache = %source.name, "imported from a remote cache");
        Ok(Some(rec))
    }

    /// The top snapshot of an image whose layers are all unpacked, leased.
    async fn unpacked(&self, manifest: &Digest) -> Result<Option<Option<String>>, Error> {
        let _gc = self.gc_shared().await?;
        let r = image_source::is_unpacked(&self.store, self.snapshots.as_ref(), manifest)?;
        if let Some(Some(top)) = &r {
            self.hold(top)?;
        }
        Ok(r)
    }

    /// Takes the lock of `key`, waiting (and saying so) while another build holds it.
    async fn key_lock(
        &self,
        v: &Vertex,
        name: &str,
        key: &Digest,
        cancel: &CancellationToken,
    ) -> Result<KeyLock, Error> {
        if let Some(l) = KeyLock::try_acquire(&self.opts.root, key)? {
            return Ok(l);
        }
        self.progress.event(Event::Waiting {
            vertex: v.digest().clone(),
            name: name.to_string(),
        });
        let (root, k) = (self.opts.root.clone(), key.clone());
        tokio::select! {
            l = blocking(move || Ok(KeyLock::acquire(&root, &k)?)) => l,
            _ = cancel.cancelled() => Err(Error::Cancelled),
        }
    }

    fn cached(&self, v: &Vertex, name: &str, key: Digest, rec: CacheRecord) -> VertexResult {
        self.progress.event(Event::Cached {
            vertex: v.digest().clone(),
            name: name.to_string(),
        });
        VertexResult {
            snapshot: rec.snapshot,
            created: rec.created,
            cache_key: key,
            cached: true,
        }
    }

    /// Solves `v`, whose inputs' results are in `inputs`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn solve_one(
        &self,
        def: &Definition,
        v: &Vertex,
        name: &str,
        inputs: &Solved,
        cancel: &CancellationToken,
        prefetch: &Prefetch,
        track: &mut Track,
    ) -> Result<VertexResult, Error> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let parts = self.key_parts(def, v, inputs, prefetch).await?;
        track.input_keys = parts.input_keys;
        track.contents = parts.contents;
        let mut builder = parts.builder;
        match v.op() {
            Op::Source(SourceOp::Scratch) => {
                let key = builder.finish();
                track.key = Some(key.clone());
                return Ok(VertexResult {
                    snapshot: None,
                    created: now_rfc3339(),
                    cache_key: key,
                    cached: true,
                });
            }
            Op::Source(SourceOp::Local { name: ctx, .. }) => {
                if !self.opts.contexts.contains_key(ctx) {
                    return Err(Error::NoLocalSource { name: ctx.clone() });
                }
                let key = builder.finish();
                track.key = Some(key.clone());
                return Ok(VertexResult {
                    snapshot: None,
                    created: now_rfc3339(),
                    cache_key: key,
                    cached: true,
                });
            }
            Op::Source(SourceOp::Image { digest, .. }) => {
                let key = builder.finish();
                track.key = Some(key.clone());
                return self.solve_image(v, name, key, digest, cancel, track).await;
            }
            Op::Source(SourceOp::Http { .. } | SourceOp::Git { .. }) => {
                track.started = Some(Instant::now());
                let r = self.remote_source(v, name, builder).await?;
                track.key = Some(r.cache_key.clone());
                return Ok(r);
            }
            Op::Exec(_) | Op::File(_) | Op::Merge(_) => {}
        }
        let key = std::mem::replace(&mut builder, crate::keys::key_builder()).finish();
        track.key = Some(key.clone());
        if !self.opts.no_cache
            && let Some(rec) = self.lookup(&key).await?
        {
            return Ok(self.cached(v, name, key, rec));
        }
        let lock = self.key_lock(v, name, &key, cancel).await?;
        // Whoever held the lock may just have built it.
        if !self.opts.no_cache
            && let Some(rec) = self.lookup(&key).await?
        {
            return Ok(self.cached(v, name, key, rec));
        }
        if let Some(rec) = self.import_remote(&key).await? {
            return Ok(self.cached(v, name, key, rec));
        }
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let start = self.started(v, name);
        track.started = Some(start);
        let parent = self.input(inputs, v, 0)?.snapshot.clone();
        let snapshot = match v.op() {
            Op::Exec(e) => {
                self.run_exec(def, v, e, inputs, parent.as_deref(), cancel)
                    .await?
            }
            Op::File(f) => self.run_file(def, v, f, inputs, parent.as_deref()).await?,
            Op::Merge(_) => {
                // Rebased layers are committed inside; lease them before a prune can look.
                let _gc = self.gc_shared().await?;
                let top = self.run_merge(v, inputs)?;
                if let Some(t) = &top {
                    for s in self.snapshots.chain(t)? {
                        self.hold(&s)?;
                    }
                }
                top
            }
            Op::Source(_) => {
                return Err(Error::Missing {
                    what: format!("the source {} (solved before any other op)", v.digest()),
                });
            }
        };
        let rec = CacheRecord {
            snapshot,
            created: now_rfc3339(),
        };
        {
            let _gc = self.gc_shared().await?;
            if let Some(s) = &rec.snapshot {
                self.hold(s)?;
            }
            self.store.put_cache(&key, &rec)?;
        }
        drop(lock);
        self.done(v, start);
        Ok(VertexResult {
            snapshot: rec.snapshot,
            created: rec.created,
            cache_key: key,
            cached: false,
        })
    }

    async fn solve_image(
        &self,
        v: &Vertex,
        name: &str,
        key: Digest,
        manifest: &Digest,
        cancel: &CancellationToken,
        track: &mut Track,
    ) -> Result<VertexResult, Error> {
        let cached = |top: Option<String>| {
            self.progress.event(Event::Cached {
                vertex: v.digest().clone(),
                name: name.to_string(),
            });
            VertexResult {
                snapshot: top,
                created: now_rfc3339(),
                cache_key: key.clone(),
                cached: true,
            }
        };
        if let Some(top) = self.unpacked(manifest).await? {
            return Ok(cached(top));
        }
        // One process unpacks an image; the others wait for it.
        let lock_key = xbuild_llb::Digest::of(format!("unpack {manifest}").as_bytes());
        let lock = self.key_lock(v, name, &lock_key, cancel).await?;
        if let Some(top) = self.unpacked(manifest).await? {
            return Ok(cached(top));
        }
        if let Some(rec) = self.import_remote(&key).await? {
            return Ok(cached(rec.snapshot));
        }
        let start = self.started(v, name);
        track.started = Some(start);
        let _gc = self.gc_shared().await?;
        let (store, snaps, digest, session) = (
            self.store.clone(),
            self.snapshots.clone(),
            manifest.clone(),
            self.session.clone(),
        );
        let top = blocking(move || {
            let top = image_source::unpack_image(&store, snaps.as_ref(), &digest)?;
            if let Some(t) = &top {
                session.hold(xbuild_cache::lease::Hold::Snapshot, t)?;
            }
            Ok(top)
        })
        .await?;
        drop(lock);
        self.done(v, start);
        Ok(VertexResult {
            snapshot: top,
            created: now_rfc3339(),
            cache_key: key,
            cached: false,
        })
    }
}
