//! `--cache-to`: a build's results as BuildKit-shaped cache — the layer blobs of each result's
//! snapshot chain and a cache config (`application/vnd.buildkit.cacheconfig.v0`) mapping cache
//! keys to them, listed by an OCI index — pushed to a registry or written as an OCI layout.
//! With `export-mounts=true` the contents of `RUN --mount=type=cache` directories go along as
//! extra blobs of the index, annotated with their cache id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use xbuild_cache::Store;
use xbuild_cache::cacheconfig::{
    ANNOTATION_CACHE_MOUNT, ANNOTATION_UNCOMPRESSED, CacheConfig, ChainLayer, ConfigBuilder,
    INLINE_CACHE_KEY, MEDIA_CACHE_CONFIG, cache_index,
};
use xbuild_cache::oci::{Descriptor, MEDIA_INDEX, Manifest};
use xbuild_exporter::{Compression, ExportOptions};
use xbuild_llb::{Definition, Digest, MountKind, Op};
use xbuild_runtime::CacheMounts;
use xbuild_runtime::{LayerSnapshotter, Snapshotter};
use xbuild_solver::VertexResult;

use crate::cachespec::CacheMode;
use crate::{Error, InternalError, io};

/// The layers of cache exports are gzip tars, as BuildKit writes them by default.
const LAYER_OPTS: ExportOptions = ExportOptions {
    compression: Compression::Gzip,
    epoch: None,
};

/// What a build solved, for exporting its cache.
pub(crate) struct Solution<'a> {
    /// The root's store.
    pub store: &'a Store,
    /// The root's snapshots.
    pub snapshots: &'a LayerSnapshotter,
    /// The graph.
    pub def: &'a Definition,
    /// Every vertex's result.
    pub results: &'a HashMap<Digest, VertexResult>,
    /// The vertex of the exported image.
    pub output: &'a Digest,
}

/// An exported cache in the store: the index's blobs, its config and the index itself.
#[derive(Debug)]
pub(crate) struct ExportedCache {
    /// Layer and cache-mount blobs.
    pub blobs: Vec<Descriptor>,
    /// The cache config blob.
    pub config: Descriptor,
    /// The index blob.
    pub index: Descriptor,
    /// How many cache records it holds.
    pub records: usize,
}

impl ExportedCache {
    /// Every blob the index names, and the index last.
    fn all(&self) -> impl Iterator<Item = &Descriptor> {
        self.blobs.iter().chain([&self.config, &self.index])
    }
}

/// The vertices a `mode` export carries: with `Max` every solved vertex; with `Min` those whose
/// layers make up the exported image (the output and, through each step's root filesystem, its
/// ancestors down to the base image), not the stages it copies from.
fn selected(s: &Solution<'_>, mode: CacheMode) -> Result<HashSet<Digest>, Error> {
    if mode == CacheMode::Max {
        return Ok(s.results.keys().cloned().collect());
    }
    let mut out = HashSet::new();
    let mut stack = vec![s.output.clone()];
    while let Some(d) = stack.pop() {
        if !out.insert(d.clone()) {
            continue;
        }
        let v = s
            .def
            .vertex(&d)
            .ok_or_else(|| InternalError::MissingVertex(d.clone()))?;
        match v.op() {
            Op::Exec(_) | Op::File(_) => stack.extend(v.inputs().first().cloned()),
            Op::Merge(_) => stack.extend(v.inputs().iter().cloned()),
            Op::Source(_) => {}
        }
    }
    Ok(out)
}

/// The layer blob of one snapshot's own changes: the blob it was unpacked from, else its diff
/// written (an empty layer when it changed nothing, so the imported chain has the same shape).
fn snapshot_layer(
    store: &Store,
    snapshots: &LayerSnapshotter,
    snap: &str,
) -> Result<ChainLayer, Error> {
    let rec = match store.get_layer(snap)? {
        Some(r) if store.has_blob(&r.digest) => r,
        _ => match xbuild_exporter::layer_of(store, snapshots, snap, LAYER_OPTS)? {
            Some(r) => r,
            None => xbuild_exporter::write_layer(store, &[], LAYER_OPTS)?,
        },
    };
    Ok(ChainLayer {
        blob: Descriptor {
            media_type: rec.media_type,
            digest: rec.digest,
            size: rec.size,
            annotations: None,
            platform: None,
        },
        diff_id: rec.diff_id,
    })
}

/// The cache ids of the `RUN --mount=type=cache` mounts of the solved steps, sorted.
fn cache_mount_ids(s: &Solution<'_>) -> Vec<String> {
    let mut ids: Vec<String> = s
        .def
        .vertices()
        .filter(|v| s.results.contains_key(v.digest()))
        .filter_map(|v| match v.op() {
            Op::Exec(e) => Some(e.mounts.iter().filter_map(|m| match &m.kind {
                MountKind::Cache { id, .. } => Some(id.clone()),
                _ => None,
            })),
            _ => None,
        })
        .flatten()
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Writes the cache of a solved build into the store (blocking work): the layers of each
/// selected result, the cache mounts with `export_mounts`, the config and the index. `None`
/// when there is nothing to export.
pub(crate) fn collect(
    s: &Solution<'_>,
    mode: CacheMode,
    export_mounts: bool,
) -> Result<Option<ExportedCache>, Error> {
    let chosen = selected(s, mode)?;
    let mut builder = ConfigBuilder::new();
    let mut layers: HashMap<String, ChainLayer> = HashMap::new();
    let mut records = 0;
    for v in s.def.vertices() {
        if !chosen.contains(v.digest()) {
            continue;
        }
        let Some(r) = s.results.get(v.digest()) else {
            continue;
        };
        let Some(top) = &r.snapshot else { continue };
        let mut chain = Vec::new();
        for snap in s.snapshots.chain(top)?.iter().rev() {
            let l = match layers.get(snap) {
                Some(l) => l.clone(),
                None => {
                    let l = snapshot_layer(s.store, s.snapshots, snap)?;
                    layers.insert(snap.clone(), l.clone());
                    l
                }
            };
            chain.push(l);
        }
        let Some(top_layer) = builder.add_chain(&chain, &r.created) else {
            continue;
        };
        let input_keys: Vec<Digest> = v
            .inputs()
            .iter()
            .filter_map(|i| s.results.get(i))
            .map(|r| r.cache_key.clone())
            .collect();
        builder.add_record(&r.cache_key, &input_keys, top_layer, &r.created);
        records += 1;
    }
    if export_mounts {
        let mounts = CacheMounts::new(s.store.root())?;
        for id in cache_mount_ids(s) {
            let Some(dir) = mounts.existing(&id) else {
                continue;
            };
            let rec = xbuild_exporter::dir_layer(s.store, &dir, LAYER_OPTS)?;
            let mut ann = BTreeMap::new();
            ann.insert(ANNOTATION_CACHE_MOUNT.to_string(), id.clone());
            ann.insert(ANNOTATION_UNCOMPRESSED.to_string(), rec.diff_id.to_string());
            tracing::debug!(%id, blob = %rec.digest, "exporting a cache mount");
            builder.add_blob(Descriptor {
                media_type: rec.media_type,
                digest: rec.digest,
                size: rec.size,
                annotations: Some(ann),
                platform: None,
            });
        }
    }
    if builder.is_empty() {
        return Ok(None);
    }
    let (config, blobs): (CacheConfig, _) = builder.finish();
    let config = s.store.put_json(MEDIA_CACHE_CONFIG, &config)?;
    let index = s
        .store
        .put_json(MEDIA_INDEX, &cache_index(blobs.clone(), config.clone()))?;
    Ok(Some(ExportedCache {
        blobs,
        config,
        index,
        records,
    }))
}

/// Writes a file through a temp file in the same directory, renamed into place.
fn write_atomic(
    dest: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), Error> {
    let tmp = xbuild_exporter::partial(dest);
    let result = std::fs::File::create(&tmp).and_then(|mut f| {
        write(&mut f)?;
        f.sync_all()
    });
    if let Err(e) = result.and_then(|()| std::fs::rename(&tmp, dest)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(dest)(e));
    }
    Ok(())
}

/// Writes an exported cache as an OCI layout in `dir` (BuildKit's `type=local`): the blobs
/// first, then `index.json` naming the cache index as `latest`, so a reader never sees an
/// index whose blobs are missing.
pub(crate) fn write_local(store: &Store, cache: &ExportedCache, dir: &Path) -> Result<(), Error> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    for d in cache.all() {
        let dest = blobs.join(d.digest.hex());
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == d.size) {
            continue;
        }
        // Verified as it is copied: a corrupt blob fails before the rename.
        let mut r = store.open_blob(&d.digest)?;
        write_atomic(&dest, |f| std::io::copy(&mut r, f).map(|_| ()))?;
    }
    write_atomic(&dir.join("oci-layout"), |f| {
        f.write_all(br#"{"imageLayoutVersion":"1.0.0"}"#)
    })?;
    let mut ann = BTreeMap::new();
    ann.insert(
        xbuild_exporter::ANNOTATION_REF_NAME.to_string(),
        "latest".to_string(),
    );
    let layout_index = xbuild_cache::oci::Index {
        schema_version: 2,
        media_type: Some(MEDIA_INDEX.into()),
        manifests: vec![Descriptor {
            annotations: Some(ann),
            ..cache.index.clone()
        }],
        annotations: None,
    };
    let bytes = serde_json::to_vec(&layout_index).map_err(|source| InternalError::Encode {
        what: "the cache index",
        source,
    })?;
    write_atomic(&dir.join("index.json"), |f| f.write_all(&bytes))
}

/// Pushes an exported cache to `target`: every blob the registry lacks, then the index as the
/// manifest the reference names. Returns how many blobs were uploaded.
pub(crate) async fn push(
    registry: &xbuild_registry::Registry,
    store: &Arc<Store>,
    cache: &ExportedCache,
    target: &xbuild_registry::Reference,
) -> Result<usize, Error> {
    use futures_util::{StreamExt, TryStreamExt, stream};
    let none = xbuild_registry::MountSources::new();
    // Futures made up front, not by a closure in the stream: a closure over borrowed
    // descriptors makes the build future fail `Send` checks in spawned tasks (a worker's).
    let pushes: Vec<_> = cache
        .blobs
        .iter()
        .chain([&cache.config])
        .map(|b| registry.push_blob(store, target, b, &none))
        .collect();
    let outcomes: Vec<xbuild_registry::BlobPush> = stream::iter(pushes)
        .buffer_unordered(registry.options().concurrency.max(1))
        .try_collect()
        .await?;
    let bytes = store.read_blob(&cache.index.digest)?;
    registry
        .push_manifest(target, bytes::Bytes::from(bytes), MEDIA_INDEX)
        .await?;
    Ok(outcomes
        .iter()
        .filter(|o| **o == xbuild_registry::BlobPush::Uploaded)
        .count())
}

/// Stores a copy of the image `m` whose config carries `value` under
/// `moby.buildkit.cache.v0`; returns the new manifest's digest.
pub(crate) fn embed_inline(store: &Store, m: &Manifest, value: &str) -> Result<Digest, Error> {
    let mut config: serde_json::Map<String, serde_json::Value> =
        store.read_json(&m.config.digest)?;
    config.insert(
        INLINE_CACHE_KEY.to_string(),
        serde_json::Value::String(value.to_string()),
    );
    let config = store.put_json(&m.config.media_type, &config)?;
    let manifest = Manifest {
        config,
        ..m.clone()
    };
    let media_type = m
        .media_type
        .clone()
        .unwrap_or_else(|| xbuild_cache::oci::MEDIA_MANIFEST.to_string());
    Ok(store.put_json(&media_type, &manifest)?.digest)
}
