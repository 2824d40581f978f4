//! An image source's filesystem: its layers unpacked into a chain of snapshots, once.

use flate2::read::MultiGzDecoder;
use std::io::BufReader;

use xbuild_cache::oci::{ImageConfigFile, Manifest};
use xbuild_cache::{LayerRecord, Store};
use xbuild_llb::Digest;
use xbuild_runtime::Snapshotter;

use crate::Error;

/// The OCI ChainID of the layers so far plus `diff_id`.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// True when every layer of the image is already unpacked.
pub fn is_unpacked(
    store: &Store,
    snapshots: &Snapshotter,
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
    snapshots: &Snapshotter,
    manifest: &Digest,
) -> Result<Option<String>, Error> {
    let (m, config) = read(store, manifest)?;
    let mut chain: Option<Digest> = None;
    let mut top: Option<String> = None;
    for (layer, diff_id) in m.layers.iter().zip(&config.rootfs.diff_ids) {
        let c = chain_id(chain.as_ref(), diff_id);
        let have = store.get_chain(&c)?.filter(|s| snapshots.exists(s));
        let snap = match have {
            Some(s) => s,
            None => {
                let path = store.blob_path(&layer.digest);
                let f = std::fs::File::open(&path).map_err(|_| {
                    Error::Store(xbuild_cache::Error::MissingBlob(layer.digest.clone()))
                })?;
                let active = snapshots.prepare(top.as_deref())?;
                let reader: Box<dyn std::io::Read> = if layer.media_type.ends_with("gzip") {
                    Box::new(MultiGzDecoder::new(BufReader::new(f)))
                } else {
                    Box::new(BufReader::new(f))
                };
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
