//! An image's layers as a chain of snapshots, unpacked once and shared by chain id — the same
//! records the solver keeps for `FROM`, with every layer compression read (gzip, zstd, none).

use std::io::BufReader;

use xbuild_cache::oci::Manifest;
use xbuild_cache::{LayerRecord, Store};
use xbuild_llb::Digest;
use xbuild_runtime::Snapshotter;

use crate::Error;
use crate::compress::decompress;
use crate::image::load_image;

/// The OCI ChainID of the layers so far (`parent`) plus `diff_id`.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Unpacks the layers of image `manifest` that are not unpacked yet and returns the top
/// snapshot (`None` for an image with no layers).
pub fn unpack_image(
    store: &Store,
    snapshots: &Snapshotter,
    manifest: &Digest,
) -> Result<Option<String>, Error> {
    let (m, config): (Manifest, _) = load_image(store, manifest)?;
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(Error::BadInput(format!(
            "image {manifest}: {} layers but {} diff_ids in its config",
            m.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let mut chain: Option<Digest> = None;
    let mut top: Option<String> = None;
    for (layer, diff_id) in m.layers.iter().zip(&config.rootfs.diff_ids) {
        let c = chain_id(chain.as_ref(), diff_id);
        let snap = match store.get_chain(&c)?.filter(|s| snapshots.exists(s)) {
            Some(s) => s,
            None => {
                let path = store.blob_path(&layer.digest);
                let f = std::fs::File::open(&path)
                    .map_err(|_| xbuild_cache::Error::MissingBlob(layer.digest.clone()))?;
                let active = snapshots.prepare(top.as_deref())?;
                let reader = decompress(BufReader::new(f)).map_err(|e| Error::io(&path, e))?;
                xbuild_runtime::unpack::unpack(reader, &active.upper())?;
                let id = snapshots.commit(active)?;
                store.put_layer(
                    &id,
                    &LayerRecord {
                        media_type: layer.media_type.clone(),
                        digest: layer.digest.clone(),
                        diff_id: diff_id.clone(),
                        size: layer.size,
                    },
                )?;
                store.put_chain(&c, &id)?;
                id
            }
        };
        top = Some(snap);
        chain = Some(c);
    }
    Ok(top)
}
