//! Writing an image as an OCI image layout: a directory, or a tar of one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use xbuild_cache::Store;
use xbuild_cache::oci::{Descriptor, Index, MEDIA_INDEX, Manifest};

use crate::Error;
use crate::image::ref_annotation;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn blobs_of(store: &Store, manifest: &Descriptor) -> Result<Vec<Descriptor>, Error> {
    let m: Manifest = store.read_json(&manifest.digest)?;
    let mut out = vec![manifest.clone(), m.config.clone()];
    out.extend(m.layers);
    Ok(out)
}

fn index_json(manifest: &Descriptor, name: Option<&str>) -> Result<Vec<u8>, Error> {
    let mut d = manifest.clone();
    d.annotations = name.map(ref_annotation);
    let idx = Index {
        schema_version: 2,
        media_type: Some(MEDIA_INDEX.into()),
        manifests: vec![d],
        annotations: None,
    };
    serde_json::to_vec(&idx)
        .map_err(|e| Error::io(Path::new("index.json"), std::io::Error::other(e)))
}

/// Writes the image `manifest` as an OCI layout at `dest`: a tar when `dest` ends in `.tar`,
/// else a directory (created if missing). `name` becomes the ref-name annotation.
pub fn write_oci_layout(
    store: &Store,
    manifest: &Descriptor,
    name: Option<&str>,
    dest: &Path,
) -> Result<(), Error> {
    let blobs = blobs_of(store, manifest)?;
    let index = index_json(manifest, name)?;
    if dest.extension().is_some_and(|e| e == "tar") {
        let tmp = dest.with_extension("tar.partial");
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut b = tar::Builder::new(f);
        let mut add = |path: &str, data: &[u8]| -> std::io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, data)
        };
        add("oci-layout", OCI_LAYOUT).map_err(|e| Error::io(&tmp, e))?;
        add("index.json", &index).map_err(|e| Error::io(&tmp, e))?;
        for d in &blobs {
            let p = store.blob_path(&d.digest);
            b.append_path_with_name(&p, format!("blobs/sha256/{}", d.digest.hex()))
                .map_err(|e| Error::io(&p, e))?;
        }
        let mut f = b.into_inner().map_err(|e| Error::io(&tmp, e))?;
        f.flush().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
        return Ok(());
    }
    let blob_dir = dest.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).map_err(|e| Error::io(&blob_dir, e))?;
    for d in &blobs {
        let to = blob_dir.join(d.digest.hex());
        if to.exists() {
            continue;
        }
        // A copy, not a hardlink: editing the output must never corrupt the store.
        std::fs::copy(store.blob_path(&d.digest), &to).map_err(|e| Error::io(&to, e))?;
    }
    let write = |name: &str, data: &[u8]| -> Result<(), Error> {
        let p = dest.join(name);
        std::fs::write(&p, data).map_err(|e| Error::io(&p, e))
    };
    write("oci-layout", OCI_LAYOUT)?;
    write("index.json", &index)
}
