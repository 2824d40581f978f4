//! `--cache-from`: reads a cache index and its config (from a registry, a local OCI layout, or
//! an image's inline cache) into the solver's [`RemoteCache`], and seeds the root's cache
//! mounts from the blobs an `export-mounts=true` export carried. Layer blobs are fetched only
//! when a step's key matches; every blob enters the store through a digest-verifying writer.
//!
//! As in BuildKit, a cache that cannot be found or read is skipped with a warning (the build
//! runs its steps); a blob that fails verification once a step uses it fails the build, naming
//! the blob.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use xbuild_cache::Store;
use xbuild_cache::cacheconfig::{
    ANNOTATION_CACHE_MOUNT, CacheConfig, CacheLayer, CacheRecord, ChainResult, INLINE_CACHE_KEY,
    LayerAnnotations, MEDIA_CACHE_CONFIG,
};
use xbuild_cache::oci::{self, Descriptor, Index, Manifest};
use xbuild_llb::Digest;
use xbuild_registry::{Document, Reference, Registry};
use xbuild_runtime::CacheMounts;
use xbuild_solver::remote_cache::BlobFuture;
use xbuild_solver::{BlobFetcher, ImportedCache, RemoteCache};

use crate::cachespec::CacheSpec;
use crate::{BadCacheError, CacheSpecError, Error, InternalError, OptionName};

/// A cache `name` whose documents are not a build cache's.
fn bad_cache(name: &str, problem: BadCacheError) -> Error {
    Error::BadCache {
        name: name.to_string(),
        problem,
    }
}

/// Fetches blobs from a registry repository.
struct RegistryBlobs {
    registry: Registry,
    reference: Reference,
}

impl BlobFetcher for RegistryBlobs {
    fn fetch<'a>(&'a self, store: &'a Arc<Store>, blob: &'a Descriptor) -> BlobFuture<'a> {
        Box::pin(async move {
            self.registry
                .fetch_blob(store, &self.reference, blob)
                .await
                .map(|_| ())
                .map_err(|e| xbuild_solver::Error::CacheImport {
                    name: self.reference.to_string(),
                    message: e.to_string(),
                })
        })
    }
}

/// Copies blobs from a local OCI layout.
struct LocalBlobs {
    dir: PathBuf,
}

impl LocalBlobs {
    fn copy(&self, store: &Store, blob: &Descriptor) -> Result<(), xbuild_cache::Error> {
        if store.has_blob(&blob.digest) {
            return Ok(());
        }
        let src = self.dir.join("blobs/sha256").join(blob.digest.hex());
        let f = open_regular(&src).map_err(|source| xbuild_cache::Error::Io {
            path: src.clone(),
            source,
        })?;
        let mut w = store.blob_writer()?;
        // One byte more than declared is enough to know the blob is not what the index says.
        std::io::copy(&mut std::io::Read::take(f, blob.size + 1), &mut w).map_err(|source| {
            xbuild_cache::Error::Io {
                path: src.clone(),
                source,
            }
        })?;
        w.commit(Some(&blob.digest))?;
        Ok(())
    }
}

impl BlobFetcher for LocalBlobs {
    fn fetch<'a>(&'a self, store: &'a Arc<Store>, blob: &'a Descriptor) -> BlobFuture<'a> {
        Box::pin(async move {
            let (this, store, blob) = (
                LocalBlobs {
                    dir: self.dir.clone(),
                },
                store.clone(),
                blob.clone(),
            );
            tokio::task::spawn_blocking(move || this.copy(&store, &blob))
                .await
                .map_err(|e| xbuild_solver::Error::Task(e.to_string()))?
                .map_err(xbuild_solver::Error::from)
        })
    }
}

/// One cache as read: its results, the blobs its index lists, and where to fetch them.
struct Read {
    name: String,
    fetcher: Arc<dyn BlobFetcher>,
    results: HashMap<Digest, ChainResult>,
    blobs: Vec<Descriptor>,
}

/// Reads every `--cache-from` cache, skipping (with a warning) those that cannot be read, and
/// seeds the root's cache mounts from those that carry them.
pub(crate) async fn import_all(
    registry: impl Fn() -> Result<Registry, Error>,
    store: &Arc<Store>,
    specs: &[CacheSpec],
) -> Result<RemoteCache, Error> {
    let mut remote = RemoteCache::new();
    for spec in specs {
        let read = match spec {
            CacheSpec::Registry { reference, .. } => {
                let r = xbuild_registry::parse_reference(reference)?;
                read_registry(registry()?, store, r).await
            }
            CacheSpec::Local { dir, .. } => read_local(store, dir).await,
            CacheSpec::Inline => {
                return Err(Error::CacheSpec {
                    option: OptionName::CacheFrom,
                    spec: "type=inline".into(),
                    problem: CacheSpecError::InlineImport,
                });
            }
        };
        let read = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cache import skipped: the cache cannot be read");
                continue;
            }
        };
        seed_mounts(store, &read).await?;
        tracing::info!(cache = %read.name, records = read.results.len(), "cache imported");
        remote.add(ImportedCache {
            name: read.name,
            fetcher: read.fetcher,
            results: read.results,
        });
    }
    Ok(remote)
}

/// Creates the cache mounts a cache carries that the root does not have yet.
async fn seed_mounts(store: &Arc<Store>, read: &Read) -> Result<(), Error> {
    let mounts = CacheMounts::new(store.root())?;
    for b in &read.blobs {
        let Some(id) = b
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_CACHE_MOUNT))
        else {
            continue;
        };
        if mounts.existing(id).is_some() {
            continue;
        }
        read.fetcher
            .fetch(store, b)
            .await
            .map_err(|e| xbuild_solver::Error::CacheImport {
                name: read.name.clone(),
                message: e.to_string(),
            })?;
        // Verified as it streams: a corrupt blob fails the import at its end.
        let blob = store.open_blob(&b.digest)?;
        let (mounts, id) = (mounts.clone(), id.clone());
        let created = tokio::task::spawn_blocking(move || {
            Ok::<_, Error>(mounts.import(&id, std::io::BufReader::new(blob))?)
        })
        .await
        .map_err(|source| InternalError::Task {
            what: "cache mount import",
            source,
        })??;
        tracing::info!(id = %id_of(b), created, "cache mount imported");
    }
    Ok(())
}

fn id_of(b: &Descriptor) -> &str {
    b.annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CACHE_MOUNT))
        .map(String::as_str)
        .unwrap_or("")
}

/// The cache config a cache index lists, its results and the other blobs.
fn read_index(
    name: &str,
    store: &Store,
    index: &Index,
) -> Result<(HashMap<Digest, ChainResult>, Vec<Descriptor>), Error> {
    let config = index
        .manifests
        .iter()
        .find(|d| d.media_type == MEDIA_CACHE_CONFIG)
        .ok_or_else(|| bad_cache(name, BadCacheError::NoConfig))?;
    let config: CacheConfig = store.read_json(&config.digest)?;
    let blobs: Vec<Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.media_type != MEDIA_CACHE_CONFIG)
        .cloned()
        .collect();
    Ok((config.results(&blobs)?, blobs))
}

async fn read_registry(
    registry: Registry,
    store: &Arc<Store>,
    reference: Reference,
) -> Result<Read, Error> {
    let name = reference.to_string();
    let (bytes, media_type, digest) = registry.fetch_manifest(&reference).await?;
    let json = |document: String| {
        let name = &name;
        move |source| bad_cache(name, BadCacheError::Json { document, source })
    };
    let (results, blobs) = if media_type == oci::MEDIA_INDEX || media_type == oci::MEDIA_DOCKER_LIST
    {
        let index: Index =
            serde_json::from_slice(&bytes).map_err(json(format!("cache index {digest}")))?;
        if let Some(config) = index
            .manifests
            .iter()
            .find(|d| d.media_type == MEDIA_CACHE_CONFIG)
        {
            registry.fetch_config(store, &reference, config).await?;
        }
        read_index(&name, store, &index)?
    } else {
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(json(format!("manifest {digest}")))?;
        registry.fetch_config(store, &reference, &m.config).await?;
        (inline_results(&name, store, &m)?, Vec::new())
    };
    Ok(Read {
        name,
        fetcher: Arc::new(RegistryBlobs {
            registry,
            reference,
        }),
        results,
        blobs,
    })
}

/// The results of an image's inline cache (`moby.buildkit.cache.v0` in its config): records
/// whose layer indexes are the image's layers.
fn inline_results(
    name: &str,
    store: &Store,
    m: &Manifest,
) -> Result<HashMap<Digest, ChainResult>, Error> {
    let config: serde_json::Value = store.read_json(&m.config.digest)?;
    let digest = &m.config.digest;
    let bad = |problem| bad_cache(name, problem);
    let Some(encoded) = config.get(INLINE_CACHE_KEY).and_then(|v| v.as_str()) else {
        return Err(bad(BadCacheError::NoInlineCache(digest.clone())));
    };
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|source| {
            bad(BadCacheError::Base64 {
                digest: digest.clone(),
                source,
            })
        })?;
    let records: Vec<CacheRecord> = serde_json::from_slice(&json).map_err(|source| {
        bad(BadCacheError::Json {
            document: format!("image config {digest}: {INLINE_CACHE_KEY}"),
            source,
        })
    })?;
    let diff_ids: Vec<Digest> = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| serde_json::from_value(d.clone()).ok())
        .ok_or_else(|| bad(BadCacheError::NoDiffIds(digest.clone())))?;
    if diff_ids.len() != m.layers.len() {
        return Err(bad(BadCacheError::LayerCount {
            digest: digest.clone(),
            layers: m.layers.len(),
            diff_ids: diff_ids.len(),
        }));
    }
    let layers = m
        .layers
        .iter()
        .zip(&diff_ids)
        .enumerate()
        .map(|(i, (d, diff_id))| CacheLayer {
            blob: d.digest.clone(),
            parent_index: i as i64 - 1,
            annotations: Some(LayerAnnotations {
                media_type: Some(d.media_type.clone()),
                diff_id: Some(diff_id.clone()),
                size: Some(d.size),
                created_at: None,
            }),
        })
        .collect();
    Ok(CacheConfig { layers, records }.results(&m.layers)?)
}

/// Opens a file of a local cache for reading without ever blocking: a FIFO (or a device, a
/// socket, a directory) where a blob or `index.json` should be is refused at once instead of
/// hanging the build.
fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a local cache holds only regular files)",
        ));
    }
    Ok(f)
}

/// Reads a local layout's `index.json`, at most [`MAX_MANIFEST_SIZE`] bytes (it is an index).
///
/// [`MAX_MANIFEST_SIZE`]: xbuild_registry::MAX_MANIFEST_SIZE
fn read_layout_index(path: &Path) -> Result<Vec<u8>, Error> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let f = open_regular(path).map_err(io)?;
    let limit = Document::Manifest.limit();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, limit + 1), &mut out).map_err(io)?;
    if out.len() as u64 > limit {
        let size = std::fs::metadata(path).map_err(io)?.len();
        return Err(Error::CacheTooLarge {
            path: path.to_path_buf(),
            what: Document::Manifest,
            size,
        });
    }
    Ok(out)
}

/// Refuses a descriptor of a local cache larger than `what`'s limit, before its blob is read.
fn check_size(dir: &Path, d: &Descriptor, what: Document) -> Result<(), Error> {
    if d.size > what.limit() {
        return Err(Error::CacheTooLarge {
            path: dir.join("blobs/sha256").join(d.digest.hex()),
            what,
            size: d.size,
        });
    }
    Ok(())
}

async fn read_local(store: &Arc<Store>, dir: &Path) -> Result<Read, Error> {
    let name = dir.display().to_string();
    let layout: Index = serde_json::from_slice(&read_layout_index(&dir.join("index.json"))?)
        .map_err(|source| {
            bad_cache(
                &name,
                BadCacheError::Json {
                    document: "index.json".into(),
                    source,
                },
            )
        })?;
    let named = |d: &&Descriptor| {
        d.annotations
            .as_ref()
            .and_then(|a| a.get(xbuild_exporter::ANNOTATION_REF_NAME))
            .is_some_and(|n| n == "latest")
    };
    let entry = layout
        .manifests
        .iter()
        .find(named)
        .or_else(|| layout.manifests.first())
        .ok_or_else(|| bad_cache(&name, BadCacheError::Empty))?
        .clone();
    check_size(dir, &entry, Document::Manifest)?;
    let fetcher = LocalBlobs {
        dir: dir.to_path_buf(),
    };
    let s = store.clone();
    let index: Index = tokio::task::spawn_blocking(move || -> Result<Index, Error> {
        fetcher.copy(&s, &entry)?;
        let index: Index = s.read_json(&entry.digest)?;
        if let Some(c) = index
            .manifests
            .iter()
            .find(|d| d.media_type == MEDIA_CACHE_CONFIG)
        {
            check_size(&fetcher.dir, c, Document::Config)?;
            fetcher.copy(&s, c)?;
        }
        Ok(index)
    })
    .await
    .map_err(|source| InternalError::Task {
        what: "cache import",
        source,
    })??;
    let (results, blobs) = read_index(&name, store, &index)?;
    Ok(Read {
        name,
        fetcher: Arc::new(LocalBlobs {
            dir: dir.to_path_buf(),
        }),
        results,
        blobs,
    })
}

/// The inline cache of an image built from `layers` (the image's layer digests, in order):
/// BuildKit's `moby.buildkit.cache.v0` value, the records of `config` re-pointed at the image's
/// layers, base64 of their JSON — and how many records it holds. Records whose chain is not a prefix of the image's layers are
/// left out.
pub(crate) fn inline_value(config: &CacheConfig, layers: &[Digest]) -> Option<(String, usize)> {
    let position: BTreeMap<&Digest, usize> =
        layers.iter().enumerate().map(|(i, d)| (d, i)).collect();
    let chain_of = |mut idx: i64| {
        let mut out = Vec::new();
        while let Some(l) = usize::try_from(idx).ok().and_then(|i| config.layers.get(i)) {
            out.push(l.blob.clone());
            idx = l.parent_index;
            if out.len() > config.layers.len() {
                break;
            }
        }
        out.reverse();
        out
    };
    let mut records = Vec::new();
    for r in &config.records {
        let Some(res) = r.results.first() else {
            continue;
        };
        let chain = chain_of(res.layer_index);
        let is_prefix = chain.len() <= layers.len()
            && chain
                .iter()
                .enumerate()
                .all(|(i, d)| position.get(d) == Some(&i));
        if !is_prefix || chain.is_empty() {
            continue;
        }
        let mut rec = r.clone();
        rec.inputs.clear();
        rec.results = vec![xbuild_cache::cacheconfig::CacheResult {
            layer_index: chain.len() as i64 - 1,
            created_at: res.created_at.clone(),
        }];
        records.push(rec);
    }
    if records.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(&records).ok()?;
    Some((
        base64::engine::general_purpose::STANDARD.encode(json),
        records.len(),
    ))
}
