//! `xbuild import`: a flat rootfs tarball becomes a one-layer image, like `docker import`.

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use std::io::{BufRead, BufReader, Read};

use xbuild_cache::oci::{
    ContainerConfig, Descriptor, History, ImageConfigFile, MEDIA_CONFIG, MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST, Manifest, RootFs,
};
use xbuild_cache::{LayerRecord, Store};

use crate::Error;
use crate::hashing::HashingWriter;
use crate::image::BuiltImage;

/// Opens a possibly gzip-compressed stream as plain bytes (gzip is detected by its magic).
pub fn decompressed<'a>(r: impl Read + 'a) -> Result<Box<dyn Read + 'a>, Error> {
    let mut br = BufReader::new(r);
    let head = br
        .fill_buf()
        .map_err(|e| Error::io(std::path::Path::new("<input>"), e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(br)))
    } else {
        Ok(Box::new(br))
    }
}

/// Imports the rootfs tar `input` (plain or gzip) as an image for `os`/`architecture`;
/// `source` names it in the history ("Imported from …").
pub fn import_rootfs(
    store: &Store,
    input: impl Read,
    source: &str,
    os: &str,
    architecture: &str,
    created: &str,
) -> Result<BuiltImage, Error> {
    let mut plain = decompressed(input)?;
    let blob = store.blob_writer()?;
    let mut hw = HashingWriter::new(GzEncoder::new(blob, flate2::Compression::default()));
    std::io::copy(&mut plain, &mut hw).map_err(|e| Error::io(std::path::Path::new(source), e))?;
    let (diff_id, _, gz) = hw.finish();
    let blob = gz
        .finish()
        .map_err(|e| Error::io(std::path::Path::new(source), e))?;
    let size = blob.size();
    let digest = blob.commit(None)?;
    validate_tar(store, &digest, source)?;
    let layer = LayerRecord {
        media_type: MEDIA_LAYER_GZIP.into(),
        digest,
        diff_id,
        size,
    };
    let config_file = ImageConfigFile {
        architecture: architecture.into(),
        config: Some(ContainerConfig::default()),
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
fn validate_tar(store: &Store, digest: &xbuild_llb::Digest, source: &str) -> Result<(), Error> {
    let f = std::fs::File::open(store.blob_path(digest))
        .map_err(|e| Error::io(&store.blob_path(digest), e))?;
    let mut ar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(f)));
    let bad = |m: String| Error::BadInput(format!("{source}: {m}"));
    let mut count = 0u64;
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
        count += 1;
    }
    if count == 0 {
        return Err(bad("the archive has no entries (is it a tar?)".into()));
    }
    Ok(())
}
