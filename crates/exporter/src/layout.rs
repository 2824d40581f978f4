//! Writing images out: an OCI image layout (a directory or a tar of one) and the docker-archive
//! `docker load` reads — BuildKit's shape for both: the OCI layout, plus `manifest.json` for
//! Docker. Tars are deterministic: sorted entries, fixed modes, owners and times.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use xbuild_cache::Store;
use xbuild_cache::oci::{Descriptor, Index, MEDIA_INDEX, Manifest};
use xbuild_llb::Digest;

use crate::Error;
use crate::names;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The annotation holding an image's full name (containerd's, which BuildKit writes).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation holding a manifest's reference (its tag).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The OCI annotation holding when an image was created.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// An image to write out: its manifest and the names it goes by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveImage {
    /// The manifest's descriptor.
    pub manifest: Descriptor,
    /// Its names (`app:1`); may be empty.
    pub names: Vec<String>,
}

/// What kind of archive to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout.
    Oci,
    /// An OCI image layout plus Docker's `manifest.json`: `docker load` and skopeo's
    /// `docker-archive:` read it.
    #[default]
    Docker,
}

/// One file of the archive.
enum Record {
    Dir,
    Bytes(Vec<u8>, u32),
    Blob(Digest),
}

fn json_err(what: &str, e: serde_json::Error) -> Error {
    Error::BadInput(format!("{what}: {e}"))
}

/// The files of the archive, by path.
fn records(
    store: &Store,
    images: &[ArchiveImage],
    format: ArchiveFormat,
    created: Option<&str>,
) -> Result<BTreeMap<String, Record>, Error> {
    let mut out = BTreeMap::new();
    out.insert("blobs/".to_string(), Record::Dir);
    out.insert("blobs/sha256/".to_string(), Record::Dir);
    out.insert(
        "oci-layout".to_string(),
        Record::Bytes(OCI_LAYOUT.to_vec(), 0o444),
    );
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for img in images {
        let m: Manifest = store.read_json(&img.manifest.digest)?;
        for d in [&img.manifest, &m.config].into_iter().chain(&m.layers) {
            if !store.has_blob(&d.digest) {
                return Err(xbuild_cache::Error::MissingBlob(d.digest.clone()).into());
            }
            out.insert(
                format!("blobs/sha256/{}", d.digest.hex()),
                Record::Blob(d.digest.clone()),
            );
        }
        let mut base = img.manifest.clone();
        let mut ann = base.annotations.take().unwrap_or_default();
        if let Some(c) = created {
            ann.insert(ANNOTATION_CREATED.into(), c.to_string());
        }
        if img.names.is_empty() {
            base.annotations = (!ann.is_empty()).then(|| ann.clone());
            index.push(base.clone());
        }
        for n in &img.names {
            let mut d = base.clone();
            let mut a = ann.clone();
            a.insert(ANNOTATION_IMAGE_NAME.into(), names::normalize(n));
            a.insert(ANNOTATION_REF_NAME.into(), names::tag_of(n));
            d.annotations = Some(a);
            index.push(d);
        }
        docker.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", m.config.digest.hex()),
            "RepoTags": img.names.iter().map(|n| names::familiar(n)).collect::<Vec<_>>(),
            "Layers": m.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }));
    }
    let idx = Index {
        schema_version: 2,
        media_type: Some(MEDIA_INDEX.into()),
        manifests: index,
        annotations: None,
    };
    out.insert(
        "index.json".into(),
        Record::Bytes(
            serde_json::to_vec(&idx).map_err(|e| json_err("index.json", e))?,
            0o644,
        ),
    );
    if format == ArchiveFormat::Docker {
        out.insert(
            "manifest.json".into(),
            Record::Bytes(
                serde_json::to_vec(&docker).map_err(|e| json_err("manifest.json", e))?,
                0o644,
            ),
        );
    }
    Ok(out)
}

/// Writes `images` as an archive of `format` to `out`, streaming the blobs. `created` becomes
/// each manifest's `org.opencontainers.image.created` annotation in `index.json`.
pub fn write_archive(
    store: &Store,
    images: &[ArchiveImage],
    format: ArchiveFormat,
    created: Option<&str>,
    out: impl Write,
) -> Result<(), Error> {
    let recs = records(store, images, format, created)?;
    let mut b = tar::Builder::new(out);
    let sink = Path::new("<archive>");
    for (name, rec) in &recs {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match rec {
            Record::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty())
                    .map_err(|e| Error::io(sink, e))?;
            }
            Record::Bytes(data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, data.as_slice())
                    .map_err(|e| Error::io(sink, e))?;
            }
            Record::Blob(d) => {
                // Verified as it streams: a corrupt blob fails the archive at its end.
                let mut r = store.open_blob(d)?;
                let len = r.size_on_disk()?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o444);
                h.set_size(len);
                b.append_data(&mut h, name, std::io::Read::take(&mut r, len))
                    .map_err(|e| blob_err(store, d, e))?;
                r.finish()?;
            }
        }
    }
    let mut out = b.into_inner().map_err(|e| Error::io(sink, e))?;
    out.flush().map_err(|e| Error::io(sink, e))
}

/// Writes `images` as an OCI layout directory at `dest` (created if missing; blobs already
/// there are kept, `index.json` is replaced).
pub fn write_oci_dir(
    store: &Store,
    images: &[ArchiveImage],
    created: Option<&str>,
    dest: &Path,
) -> Result<(), Error> {
    let recs = records(store, images, ArchiveFormat::Oci, created)?;
    for (name, rec) in &recs {
        let p = dest.join(name);
        match rec {
            Record::Dir => std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?,
            Record::Bytes(data, _) => write_atomic(&p, data)?,
            Record::Blob(d) => {
                if p.exists() {
                    continue;
                }
                // A copy, not a hardlink: editing the output must never corrupt the store.
                // Verified as it is copied, renamed into place only once the digest matched.
                let tmp = partial(&p);
                let copied = copy_verified(store, d, &tmp);
                if let Err(e) = copied {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))?;
            }
        }
    }
    Ok(())
}

/// A store error for a failed read of blob `d` (a corrupt blob's error comes out whole).
fn blob_err(store: &Store, d: &Digest, e: std::io::Error) -> Error {
    xbuild_cache::into_store_error(e, &store.blob_path(d)).into()
}

/// Copies blob `d` to a new file `tmp`, checking its digest on the way.
fn copy_verified(store: &Store, d: &Digest, tmp: &Path) -> Result<(), Error> {
    let mut r = store.open_blob(d)?;
    let mut f = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut r, &mut buf).map_err(|e| blob_err(store, d, e))?;
        if n == 0 {
            break;
        }
        f.write_all(&buf[..n]).map_err(|e| Error::io(tmp, e))?;
    }
    r.finish()?;
    f.sync_all().map_err(|e| Error::io(tmp, e))
}

/// `path` with `.partial` appended to its name: where a file is written before it is renamed.
pub fn partial(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".partial");
    PathBuf::from(s)
}

fn write_atomic(p: &Path, data: &[u8]) -> Result<(), Error> {
    let tmp = partial(p);
    std::fs::write(&tmp, data).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, p).map_err(|e| Error::io(p, e))
}

/// Writes an archive to the file `dest` through a `.partial` file renamed into place, so a
/// failed write never leaves a half-written archive under the final name.
pub fn write_archive_file(
    store: &Store,
    images: &[ArchiveImage],
    format: ArchiveFormat,
    created: Option<&str>,
    dest: &Path,
) -> Result<(), Error> {
    let tmp = partial(dest);
    let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let res = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        write_archive(store, images, format, created, &mut w)?;
        let f = w
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))
    })();
    match res {
        Ok(()) => std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
