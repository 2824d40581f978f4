//! Set-up shared by the registry crate's integration tests.

use xbuild_cache::Store;
use xbuild_cache::oci::{self, Descriptor, ImageConfigFile, Manifest};
use xbuild_llb::Digest;

/// An image of one layer (`layer`'s bytes, stored as an uncompressed tar blob) and `config`,
/// written straight into `store`; returns the manifest's digest. `config` is given the layer's
/// digest as its only diff_id when `with_diff_id`.
pub fn image(
    store: &Store,
    layer: &[u8],
    mut config: ImageConfigFile,
    with_diff_id: bool,
) -> Digest {
    let mut w = store.blob_writer().unwrap();
    std::io::Write::write_all(&mut w, layer).unwrap();
    let size = w.size();
    let layer = w.commit(None).unwrap();
    if with_diff_id {
        config.rootfs.diff_ids = vec![layer.clone()];
    }
    let config = store.put_json(oci::MEDIA_CONFIG, &config).unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::MEDIA_MANIFEST.into()),
        config,
        layers: vec![Descriptor {
            media_type: oci::MEDIA_LAYER_TAR.into(),
            digest: layer,
            size,
            annotations: None,
            platform: None,
        }],
        annotations: None,
    };
    store
        .put_json(oci::MEDIA_MANIFEST, &manifest)
        .unwrap()
        .digest
}
