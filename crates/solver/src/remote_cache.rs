//! Results imported from remote caches (`--cache-from`): cache key → layer chain, and where
//! each cache's blobs come from. The solver asks it on a local miss; a hit is fetched (each
//! blob verified against its digest as it enters the store), unpacked into snapshots and
//! recorded in the local cache, so the step does not run.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use xbuild_cache::Store;
use xbuild_cache::cacheconfig::ChainResult;
use xbuild_cache::oci::Descriptor;
use xbuild_llb::Digest;

use crate::Error;

/// A blob fetch in progress.
pub type BlobFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// Brings blobs of an imported cache into the store, each committed only when it hashes to its
/// digest (a registry repository, a local OCI layout).
pub trait BlobFetcher: Send + Sync {
    /// Fetches `blob` into `store` unless the store has it.
    fn fetch<'a>(&'a self, store: &'a Arc<Store>, blob: &'a Descriptor) -> BlobFuture<'a>;
}

/// One imported cache: its results by cache key and where its blobs are.
pub struct ImportedCache {
    /// Where it came from, for messages (`127.0.0.1:5000/cache:1`, a directory).
    pub name: String,
    /// Fetches its blobs.
    pub fetcher: Arc<dyn BlobFetcher>,
    /// Its results, by cache key.
    pub results: HashMap<Digest, ChainResult>,
}

/// Every imported cache of a build, asked in the order given.
#[derive(Clone, Default)]
pub struct RemoteCache {
    sources: Vec<Arc<ImportedCache>>,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.sources
                    .iter()
                    .map(|s| (s.name.as_str(), s.results.len())),
            )
            .finish()
    }
}

impl RemoteCache {
    /// No imported cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an imported cache, asked after those added before it.
    pub fn add(&mut self, cache: ImportedCache) {
        self.sources.push(Arc::new(cache));
    }

    /// True when no cache was imported.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The first imported result of `key`, with the cache holding it.
    pub fn get(&self, key: &Digest) -> Option<(Arc<ImportedCache>, ChainResult)> {
        self.sources
            .iter()
            .find_map(|s| s.results.get(key).map(|r| (s.clone(), r.clone())))
    }
}
