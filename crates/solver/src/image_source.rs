//! Layer chains unpacked into chains of snapshots, once, shared by chain id: an image
//! source's filesystem, and results imported from a remote cache. The one place layer blobs
//! become snapshots; compression (gzip, zstd, none) is detected from the content, whatever
//! the media type says.

use std::io::BufReader;

use xbuild_cache::cacheconfig::ChainLayer;
use xbuild_cache::oci::{Descriptor, ImageConfigFile, Manifest, chain_id};
use xbuild_cache::{DigestReader, LayerRecord, Store};
use xbuild_llb::Digest;
use xbuild_runtime::Snapshotter;

use crate::Error;

/// True when every layer of the image is already unpacked.
pub fn is_unpacked(
    store: &Store,
    snapshots: &dyn Snapshotter,
    manifest: &Digest,
) -> Result<Option<Option<String>>, Error> {
    let (_, config) = read(store, manifest)?;
    let mut chain: Option<Digest> = None;
    let mut top = None;
    for d in &config.rootfs.diff_ids {
        let c = chain_id(chain.as_ref(), d);
        match store.get_chain(&c)? {
            Some(s) if snapshots.exists(&s) => top = Some(s),
            _ => return Ok(None),
        }
        chain = Some(c);
    }
    Ok(Some(top))
}

fn read(store: &Store, manifest: &Digest) -> Result<(Manifest, ImageConfigFile), Error> {
    let m: Manifest = store.read_json(manifest)?;
    let c: ImageConfigFile = store.read_json(&m.config.digest)?;
    if c.rootfs.diff_ids.len() != m.layers.len() {
        return Err(Error::BadImage {
            manifest: manifest.clone(),
            message: format!(
                "{} layers but {} diff_ids in the config",
                m.layers.len(),
                c.rootfs.diff_ids.len()
            ),
        });
    }
    Ok((m, c))
}

/// Unpacks the image's layers that are not unpacked yet; returns the top snapshot (`None` for
/// an image with no layers).
pub fn unpack_image(
    store: &Store,
    snapshots: &dyn Snapshotter,
    manifest: &Digest,
) -> Result<Option<String>, Error> {
    let (m, config) = read(store, manifest)?;
    let layers: Vec<ChainLayer> = m
        .layers
        .into_iter()
        .zip(config.rootfs.diff_ids)
        .map(|(blob, diff_id)| ChainLayer { blob, diff_id })
        .collect();
    unpack_chain(store, snapshots, &layers)
}

/// The layers of `layers` (bottom first) that have no snapshot yet, so their blobs must be in
/// the store before [`unpack_chain`].
pub fn missing_layers<'a>(
    store: &Store,
    snapshots: &dyn Snapshotter,
    layers: &'a [ChainLayer],
) -> Result<Vec<&'a Descriptor>, Error> {
    let mut chain: Option<Digest> = None;
    let mut out = Vec::new();
    for l in layers {
        let c = chain_id(chain.as_ref(), &l.diff_id);
        if store
            .get_chain(&c)?
            .filter(|s| snapshots.exists(s))
            .is_none()
        {
            out.push(&l.blob);
        }
        chain = Some(c);
    }
    Ok(out)
}

/// The name of the export variant a layer of `media_type` is (the exporter's compression
/// names), so an export reuses an unpacked layer's blob rather than writing it again.
fn variant_of(media_type: &str) -> Option<&'static str> {
    if media_type.ends_with("gzip") {
        Some("gzip")
    } else if media_type.ends_with("zstd") {
        Some("zstd")
    } else if media_type.ends_with(".tar") {
        Some("uncompressed")
    } else {
        None
    }
}

/// Unpacks the layers of a chain (bottom first) that are not unpacked yet, each onto the one
/// below, and records them by chain id; returns the top snapshot (`None`: no layers). A layer
/// is committed only once completely unpacked.
pub fn unpack_chain(
    store: &Store,
    snapshots: &dyn Snapshotter,
    layers: &[ChainLayer],
) -> Result<Option<String>, Error> {
    let mut chain: Option<Digest> = None;
    let mut top: Option<String> = None;
    for l in layers {
        let c = chain_id(chain.as_ref(), &l.diff_id);
        let have = store.get_chain(&c)?.filter(|s| snapshots.exists(s));
        let snap = match have {
            Some(s) => s,
            None => {
                // The blob's digest is checked as it streams and the decompressed stream's
                // against the diff_id; the snapshot is committed only once both matched.
                let mut blob = store.open_blob(&l.blob.digest)?;
                let path = store.blob_path(&l.blob.digest);
                let read_err = |e: std::io::Error| xbuild_cache::into_store_error(e, &path);
                let active = snapshots.prepare(top.as_deref())?;
                let unpacked = (|| -> Result<Digest, Error> {
                    let reader = xbuild_runtime::decompressed(BufReader::new(&mut blob))
                        .map_err(read_err)?;
                    let mut diff = DigestReader::new(reader);
                    snapshots.unpack_layer(&active, &mut diff)?;
                    Ok(diff.finish().map_err(read_err)?)
                })();
                // A corrupt blob often makes the decompressor or the unpacker fail first: the
                // blob's digest is checked before any other error is believed.
                blob.finish()?;
                let diff_id = unpacked?;
                if diff_id != l.diff_id {
                    return Err(xbuild_cache::Error::DiffIdMismatch {
                        layer: l.blob.digest.clone(),
                        expected: l.diff_id.clone(),
                        actual: diff_id,
                    }
                    .into());
                }
                let id = snapshots.commit(active)?;
                let rec = LayerRecord {
                    media_type: l.blob.media_type.clone(),
                    digest: l.blob.digest.clone(),
                    diff_id: l.diff_id.clone(),
                    size: l.blob.size,
                };
                store.put_layer(&id, &rec)?;
                if let Some(v) = variant_of(&l.blob.media_type) {
                    store.put_exported_layer(&id, v, &rec)?;
                }
                store.put_chain(&c, &id)?;
                id
            }
        };
        top = Some(snap);
        chain = Some(c);
    }
    Ok(top)
}
