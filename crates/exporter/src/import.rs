//! `xbuild import`: a flat rootfs tarball becomes a one-layer image, like `docker import`.

use std::io::{BufReader, Read};

use xbuild_cache::oci::{
    Descriptor, History, ImageConfig, ImageConfigFile, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest,
    RootFs,
};
use xbuild_cache::{DiffRecord, LayerRecord, Store};

use crate::Error;
use crate::compress::{Compression, Encoder, decompress};
use crate::hashing::HashingWriter;
use crate::image::BuiltImage;

/// Imports the rootfs tar `input` (plain, gzip or zstd) as an image for `os`/`architecture`,
/// its layer compressed with `compression`; `source` names it in the history ("Imported from
/// …").
pub fn import_rootfs(
    store: &Store,
    input: impl Read,
    source: &str,
    os: &str,
    architecture: &str,
    created: &str,
    compression: Compression,
) -> Result<BuiltImage, Error> {
    let src = std::path::Path::new(source);
    let mut plain = decompress(input).map_err(|e| Error::io(src, e))?;
    let blob = store.blob_writer()?;
    let enc = Encoder::new(compression, blob).map_err(|e| Error::io(src, e))?;
    let mut hw = HashingWriter::new(enc);
    std::io::copy(&mut plain, &mut hw).map_err(|e| Error::io(src, e))?;
    let (diff_id, _, enc) = hw.finish();
    let blob = enc.finish().map_err(|e| Error::io(src, e))?;
    let size = blob.size();
    let digest = blob.commit(None)?;
    let content_size = validate_tar(store, &digest, source)?;
    store.put_diff(&diff_id, &DiffRecord { content_size })?;
    let layer = LayerRecord {
        media_type: compression.media_type().into(),
        digest,
        diff_id,
        size,
    };
    let config_file = ImageConfigFile {
        architecture: architecture.into(),
        author: None,
        config: Some(ImageConfig::default()),
        created: Some(created.into()),
        history: vec![History {
            created: Some(created.into()),
            created_by: None,
            author: None,
            comment: Some(format!("Imported from {source}")),
            empty_layer: false,
        }],
        os: os.into(),
        rootfs: RootFs {
            typ: "layers".into(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        variant: None,
    };
    let config = store.put_json(MEDIA_CONFIG, &config_file)?;
    let manifest_doc = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_MANIFEST.into()),
        config: config.clone(),
        layers: vec![Descriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            annotations: None,
            platform: None,
        }],
        annotations: None,
    };
    let manifest = store.put_json(MEDIA_MANIFEST, &manifest_doc)?;
    Ok(BuiltImage {
        manifest,
        config,
        config_file,
    })
}

/// Reads the stored layer back as a tar: every member must parse and stay inside the rootfs.
/// Returns the bytes of file content it holds.
fn validate_tar(store: &Store, digest: &xbuild_llb::Digest, source: &str) -> Result<u64, Error> {
    let path = store.blob_path(digest);
    let f = store.open_blob(digest)?;
    let r = decompress(BufReader::new(f)).map_err(|e| Error::io(&path, e))?;
    let mut ar = tar::Archive::new(r);
    let bad = |m: String| Error::BadInput(format!("{source}: {m}"));
    let mut count = 0u64;
    let mut content = 0u64;
    for e in ar
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?
    {
        let e = e.map_err(|e| bad(format!("not a valid tar archive: {e}")))?;
        let p = e.path_bytes();
        if p.split(|b| *b == b'/').any(|c| c == b"..") {
            return Err(bad(format!(
                "member {:?} has `..` in its name; refusing a tar that writes outside its root",
                String::from_utf8_lossy(&p)
            )));
        }
        content += crate::load::entry_size(&e);
        count += 1;
    }
    if count == 0 {
        return Err(bad("the archive has no entries (is it a tar?)".into()));
    }
    Ok(content)
}
