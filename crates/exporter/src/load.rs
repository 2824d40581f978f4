//! Reading images in: a docker-archive (`docker save`, BuildKit's `type=docker`) or an OCI
//! image layout, as a tar stream or a directory.
//!
//! Untrusted input is never unpacked to disk by its own names: a tar's members become blobs of
//! the content store (large ones streamed, small ones held until used), looked up by name only
//! in memory. Every blob is checked against its digest and every layer against its diff_id.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;

use xbuild_cache::oci::{
    Descriptor, ImageConfigFile, Index, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest,
};
use xbuild_cache::{DigestReader, Store};
use xbuild_llb::Digest;

use crate::Error;
use crate::compress::{Compression, decompress};
use crate::layout::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::names;

/// Members up to this size are held in memory (manifests, configs, indexes).
const SMALL: u64 = 4 << 20;
/// The longest chain of symlinks followed between members.
const MAX_LINKS: usize = 16;

/// An image read from an archive and written to the store (not yet tagged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// The manifest's descriptor.
    pub manifest: Descriptor,
    /// The config's digest: the image ID.
    pub config: Digest,
    /// The names the archive gives it (`app:1`), familiar form.
    pub names: Vec<String>,
}

enum Member {
    Small(Vec<u8>),
    Stored(Digest),
    Link(String),
}

/// The members of an archive, by clean relative name.
struct Members<'a> {
    store: &'a Store,
    source: String,
    map: BTreeMap<String, Member>,
    /// A layout directory read in place.
    dir: Option<std::path::PathBuf>,
}

fn bad(source: &str, what: impl std::fmt::Display) -> Error {
    Error::BadInput(format!("{source}: {what}"))
}

/// A member name without `./`, empty or `.` components; `None` when it climbs with `..`.
fn clean(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl<'a> Members<'a> {
    fn from_tar(store: &'a Store, source: &str, r: impl Read) -> Result<Self, Error> {
        let mut m = Members {
            store,
            source: source.to_string(),
            map: BTreeMap::new(),
            dir: None,
        };
        let mut ar = tar::Archive::new(r);
        let entries = ar
            .entries()
            .map_err(|e| bad(source, format!("not a tar archive: {e}")))?;
        for e in entries {
            let mut e = e.map_err(|e| bad(source, format!("not a valid tar archive: {e}")))?;
            let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let Some(name) = clean(&raw) else {
                return Err(bad(
                    source,
                    format!("member {raw:?} has `..` in its name; refusing the archive"),
                ));
            };
            match e.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = e.header().size().unwrap_or(0);
                    let member = if size <= SMALL {
                        let mut buf = Vec::with_capacity(size as usize);
                        e.read_to_end(&mut buf)
                            .map_err(|err| bad(source, format!("{name}: {err}")))?;
                        Member::Small(buf)
                    } else {
                        let mut w = store.blob_writer()?;
                        std::io::copy(&mut e, &mut w)
                            .map_err(|err| bad(source, format!("{name}: {err}")))?;
                        Member::Stored(w.commit(None)?)
                    };
                    m.map.insert(name, member);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e
                        .link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .unwrap_or_default();
                    let joined = if e.header().entry_type() == tar::EntryType::Symlink
                        && !target.starts_with('/')
                    {
                        match name.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target,
                        }
                    } else {
                        target
                    };
                    let resolved = resolve_dots(&joined).ok_or_else(|| {
                        bad(source, format!("link {name} points outside the archive"))
                    })?;
                    m.map.insert(name, Member::Link(resolved));
                }
                _ => {}
            }
        }
        Ok(m)
    }

    fn from_dir(store: &'a Store, dir: &Path) -> Result<Self, Error> {
        if !dir.join("index.json").is_file() {
            return Err(bad(
                &dir.display().to_string(),
                "not an OCI image layout (no index.json); docker-archives are read as tar files",
            ));
        }
        Ok(Members {
            store,
            source: dir.display().to_string(),
            map: BTreeMap::new(),
            dir: Some(dir.to_path_buf()),
        })
    }

    /// In a layout directory: the file of member `name`, for the few names a layout has
    /// (`index.json`, `manifest.json`, `blobs/sha256/<hex>`); nothing else is opened.
    fn dir_file(&self, name: &str) -> Option<std::path::PathBuf> {
        let dir = self.dir.as_ref()?;
        let ok = matches!(name, "index.json" | "manifest.json" | "oci-layout")
            || name
                .strip_prefix("blobs/sha256/")
                .is_some_and(|h| format!("sha256:{h}").parse::<Digest>().is_ok());
        ok.then(|| dir.join(name)).filter(|p| p.is_file())
    }

    /// Follows links to the member `name` names.
    fn resolve(&self, name: &str) -> Option<(&str, &Member)> {
        let mut name = clean(name)?;
        for _ in 0..MAX_LINKS {
            let (k, m) = self.map.get_key_value(name.as_str())?;
            match m {
                Member::Link(t) => name = t.clone(),
                m => return Some((k.as_str(), m)),
            }
        }
        None
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>, Error> {
        if let Some(p) = self.dir_file(name) {
            return std::fs::read(&p).map_err(|e| Error::io(&p, e));
        }
        match self.resolve(name) {
            Some((_, Member::Small(b))) => Ok(b.clone()),
            Some((_, Member::Stored(d))) => Ok(self.store.read_blob(d)?),
            _ => Err(bad(
                &self.source,
                format!("{name} is missing from the archive"),
            )),
        }
    }

    /// Stores member `name` as a blob (if not already) and returns its digest and size.
    fn blob(&self, name: &str) -> Result<(Digest, u64), Error> {
        if let Some(p) = self.dir_file(name) {
            let f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
            let mut w = self.store.blob_writer()?;
            std::io::copy(&mut BufReader::new(f), &mut w).map_err(|e| Error::io(&p, e))?;
            let size = w.size();
            return Ok((w.commit(None)?, size));
        }
        match self.resolve(name) {
            Some((_, Member::Small(b))) => {
                let d = self.store.put_blob(b)?;
                Ok((d, b.len() as u64))
            }
            Some((_, Member::Stored(d))) => Ok((d.clone(), self.store.blob_size(d)?)),
            _ => Err(bad(
                &self.source,
                format!("{name} is missing from the archive"),
            )),
        }
    }

    /// Stores the blob a descriptor names, checking its digest and size.
    fn descriptor_blob(&self, d: &Descriptor) -> Result<(), Error> {
        let name = format!("blobs/sha256/{}", d.digest.hex());
        let (got, size) = self.blob(&name)?;
        if got != d.digest {
            return Err(bad(
                &self.source,
                format!(
                    "{name} hashes to {got}, not {}; the archive is corrupt",
                    d.digest
                ),
            ));
        }
        if size != d.size {
            return Err(bad(
                &self.source,
                format!("{name} has {size} bytes, its descriptor says {}", d.size),
            ));
        }
        Ok(())
    }
}

/// `a/./b/../c` → `a/c`; `None` when it climbs above the top.
fn resolve_dots(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Checks that each layer decompresses to its diff_id.
fn verify_layers(
    store: &Store,
    source: &str,
    m: &Manifest,
    c: &ImageConfigFile,
) -> Result<(), Error> {
    verify_layers_where(store, source, m, c, |_| true)
}

/// Checks that the image's layers (all in `store`) and its config's diff_ids agree in number,
/// and that each layer `check` selects decompresses to its diff_id, recording its content
/// size as a layer read in would. `source` names where the image came from in errors.
pub fn verify_layers_where(
    store: &Store,
    source: &str,
    m: &Manifest,
    c: &ImageConfigFile,
    check: impl Fn(&Descriptor) -> bool,
) -> Result<(), Error> {
    if m.layers.len() != c.rootfs.diff_ids.len() {
        return Err(bad(
            source,
            format!(
                "{} layers but {} diff_ids in the config",
                m.layers.len(),
                c.rootfs.diff_ids.len()
            ),
        ));
    }
    for (l, diff_id) in m.layers.iter().zip(&c.rootfs.diff_ids) {
        if !check(l) {
            continue;
        }
        // The blob's digest is checked as it streams, the decompressed stream's against the
        // diff_id.
        let mut blob = store.open_blob(&l.digest)?;
        let p = store.blob_path(&l.digest);
        let layer_err = |e: std::io::Error| match xbuild_cache::into_store_error(e, &p) {
            corrupt @ xbuild_cache::Error::CorruptBlob { .. } => Error::Store(corrupt),
            other => bad(source, format!("layer {}: {other}", l.digest)),
        };
        let mut content = 0u64;
        let got = (|| -> Result<Digest, Error> {
            let r = decompress(BufReader::new(&mut blob)).map_err(layer_err)?;
            let mut hashing = DigestReader::new(r);
            {
                let mut ar = tar::Archive::new(&mut hashing);
                for e in ar.entries().map_err(layer_err)? {
                    let e = e.map_err(layer_err)?;
                    content += entry_size(&e);
                }
            }
            hashing.finish().map_err(layer_err)
        })();
        // A corrupt blob often makes the decompressor fail first: its digest is checked
        // before any other error is believed.
        blob.finish()?;
        let got = got?;
        if &got != diff_id {
            return Err(bad(
                source,
                format!(
                    "layer {} unpacks to {got}, but the config says {diff_id}",
                    l.digest
                ),
            ));
        }
        store.put_diff(
            diff_id,
            &xbuild_cache::DiffRecord {
                content_size: content,
            },
        )?;
    }
    Ok(())
}

fn parse_config(source: &str, bytes: &[u8]) -> Result<ImageConfigFile, Error> {
    serde_json::from_slice(bytes).map_err(|e| bad(source, format!("image config: {e}")))
}

/// A name an OCI index entry gives its manifest, familiar form.
fn name_of(d: &Descriptor) -> Option<String> {
    let a = d.annotations.as_ref()?;
    if let Some(n) = a.get(ANNOTATION_IMAGE_NAME) {
        return Some(names::familiar(n));
    }
    a.get(ANNOTATION_REF_NAME)
        .filter(|r| r.contains(':') || r.contains('/'))
        .map(|r| names::familiar(r))
}

fn load_oci(m: &Members<'_>, platform: (&str, &str)) -> Result<Vec<LoadedImage>, Error> {
    let index: Index = serde_json::from_slice(&m.bytes("index.json")?)
        .map_err(|e| bad(&m.source, format!("index.json: {e}")))?;
    let mut by_manifest: BTreeMap<Digest, LoadedImage> = BTreeMap::new();
    let mut order = Vec::new();
    for top in &index.manifests {
        let mut d = top.clone();
        // A nested index (several platforms): take the manifest for this platform.
        for _ in 0..MAX_LINKS {
            if !d.media_type.contains("index") && !d.media_type.contains("manifest.list") {
                break;
            }
            m.descriptor_blob(&d)?;
            let idx: Index = m.store.read_json(&d.digest)?;
            d = idx
                .manifests
                .into_iter()
                .find(|c| {
                    c.platform
                        .as_ref()
                        .is_none_or(|p| p.os == platform.0 && p.architecture == platform.1)
                })
                .ok_or_else(|| {
                    bad(
                        &m.source,
                        format!(
                            "index {} has no manifest for {}/{}",
                            top.digest, platform.0, platform.1
                        ),
                    )
                })?;
        }
        m.descriptor_blob(&d)?;
        let manifest: Manifest = m.store.read_json(&d.digest)?;
        m.descriptor_blob(&manifest.config)?;
        for l in &manifest.layers {
            m.descriptor_blob(l)?;
        }
        let config = parse_config(&m.source, &m.store.read_blob(&manifest.config.digest)?)?;
        verify_layers(m.store, &m.source, &manifest, &config)?;
        let entry = by_manifest.entry(d.digest.clone()).or_insert_with(|| {
            order.push(d.digest.clone());
            LoadedImage {
                manifest: Descriptor {
                    annotations: None,
                    platform: None,
                    ..d.clone()
                },
                config: manifest.config.digest.clone(),
                names: vec![],
            }
        });
        if let Some(n) = name_of(top)
            && !entry.names.contains(&n)
        {
            entry.names.push(n);
        }
    }
    // BuildKit's docker archives carry the names in manifest.json too.
    if let Ok(bytes) = m.bytes("manifest.json")
        && let Ok(entries) = serde_json::from_slice::<Vec<DockerEntry>>(&bytes)
    {
        for e in entries {
            let cfg = e
                .config
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".json");
            for img in by_manifest.values_mut() {
                if img.config.hex() == cfg && img.names.is_empty() {
                    img.names = e.repo_tags.iter().map(|t| names::familiar(t)).collect();
                }
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|d| by_manifest.remove(&d))
        .collect())
}

#[derive(serde::Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn load_docker(m: &Members<'_>) -> Result<Vec<LoadedImage>, Error> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(&m.bytes("manifest.json")?)
        .map_err(|e| bad(&m.source, format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let config_bytes = m.bytes(&e.config)?;
        let config = parse_config(&m.source, &config_bytes)?;
        let config_digest = m.store.put_blob(&config_bytes)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let (digest, size) = m.blob(l)?;
            let p = m.store.blob_path(&digest);
            let mut head = [0u8; 4];
            let n = std::fs::File::open(&p)
                .and_then(|mut f| f.read(&mut head))
                .map_err(|err| Error::io(&p, err))?;
            layers.push(Descriptor {
                media_type: Compression::sniff(&head[..n]).media_type().into(),
                digest,
                size,
                annotations: None,
                platform: None,
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_CONFIG.into(),
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
                annotations: None,
                platform: None,
            },
            layers,
            annotations: None,
        };
        verify_layers(m.store, &m.source, &manifest, &config)?;
        let desc = m.store.put_json(MEDIA_MANIFEST, &manifest)?;
        out.push(LoadedImage {
            manifest: desc,
            config: config_digest,
            names: e.repo_tags.iter().map(|t| names::familiar(t)).collect(),
        });
    }
    Ok(out)
}

/// Reads the images of an archive (`docker save`/`type=docker` or an OCI layout tar) from `r`
/// into the store. `source` names the input in errors; `platform` (os, architecture) picks
/// the manifest of a multi-platform index.
pub fn load_archive(
    store: &Store,
    source: &str,
    r: impl Read,
    platform: (&str, &str),
) -> Result<Vec<LoadedImage>, Error> {
    let members = Members::from_tar(store, source, r)?;
    load_members(&members, platform)
}

/// Reads the images of an OCI layout directory into the store.
pub fn load_oci_dir(
    store: &Store,
    dir: &Path,
    platform: (&str, &str),
) -> Result<Vec<LoadedImage>, Error> {
    let members = Members::from_dir(store, dir)?;
    load_members(&members, platform)
}

fn load_members(m: &Members<'_>, platform: (&str, &str)) -> Result<Vec<LoadedImage>, Error> {
    let has = |n: &str| m.resolve(n).is_some() || m.dir_file(n).is_some();
    let images = if has("index.json") {
        load_oci(m, platform)?
    } else if has("manifest.json") {
        load_docker(m)?
    } else {
        return Err(bad(
            &m.source,
            "neither an OCI image layout (index.json) nor a docker-archive (manifest.json)",
        ));
    };
    if images.is_empty() {
        return Err(bad(&m.source, "the archive holds no image"));
    }
    Ok(images)
}

/// What a tar entry adds to a layer's size as Docker counts it: a regular file's content, a
/// symlink's target length; nothing for the rest (a hardlink's data is counted once, with its
/// first name).
pub(crate) fn entry_size<R: std::io::Read>(e: &tar::Entry<'_, R>) -> u64 {
    let kind = e.header().entry_type();
    if kind.is_file() {
        e.size()
    } else if kind.is_symlink() {
        e.link_name_bytes().map_or(0, |l| l.len() as u64)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{ArchiveFormat, ArchiveImage, write_archive};

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn image(store: &Store) -> ArchiveImage {
        let mut layer = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        layer.append_data(&mut h, "f", &b"f\n"[..]).unwrap();
        let img = crate::import_rootfs(
            store,
            layer.into_inner().unwrap().as_slice(),
            "layer.tar",
            "linux",
            "amd64",
            "2026-01-01T00:00:00Z",
            Compression::Gzip,
        )
        .unwrap();
        ArchiveImage {
            manifest: img.manifest,
            names: vec!["app:1".into()],
        }
    }

    #[test]
    fn archives_round_trip_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let from = Store::open(&dir.path().join("a")).unwrap();
        let img = image(&from);
        for format in [ArchiveFormat::Docker, ArchiveFormat::Oci] {
            let mut bytes = Vec::new();
            write_archive(&from, std::slice::from_ref(&img), format, None, &mut bytes).unwrap();
            let to = Store::open(&dir.path().join(format!("{format:?}"))).unwrap();
            let loaded = load_archive(&to, "x.tar", bytes.as_slice(), ("linux", "amd64")).unwrap();
            assert_eq!(loaded.len(), 1);
            assert_eq!(loaded[0].manifest.digest, img.manifest.digest, "{format:?}");
            assert_eq!(loaded[0].names, ["app:1"]);
            // Writing it out again gives the same bytes.
            let mut again = Vec::new();
            write_archive(&to, std::slice::from_ref(&img), format, None, &mut again).unwrap();
            assert!(again == bytes, "{format:?}");
        }
    }

    #[test]
    fn hostile_or_broken_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let platform = ("linux", "amd64");
        let escape = tar_of(&[("../../etc/passwd", b"x")]);
        let err = load_archive(&store, "evil.tar", escape.as_slice(), platform).unwrap_err();
        assert!(
            err.to_string().contains("evil.tar") && err.to_string().contains(".."),
            "{err}"
        );

        let err =
            load_archive(&store, "empty.tar", &b"not a tar at all"[..], platform).unwrap_err();
        assert!(err.to_string().contains("empty.tar"), "{err}");

        // A blob that is not what its name says.
        let wrong = xbuild_llb::Digest::of(b"something else");
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{wrong}","size":3}}]}}"#
        );
        let blob = format!("blobs/sha256/{}", wrong.hex());
        let bad = tar_of(&[("index.json", index.as_bytes()), (&blob, b"abc")]);
        let err = load_archive(&store, "bad.tar", bad.as_slice(), platform).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");

        // A docker-archive whose layer does not match the config's diff_id.
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
        let layer = tar_of(&[("f", b"f")]);
        let manifest = br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#;
        let bad = tar_of(&[
            ("manifest.json", manifest),
            ("c.json", config),
            ("l/layer.tar", &layer),
        ]);
        let err = load_archive(&store, "mismatch.tar", bad.as_slice(), platform).unwrap_err();
        assert!(err.to_string().contains("unpacks to"), "{err}");

        let neither = tar_of(&[("hello.txt", b"hi")]);
        let err = load_archive(&store, "plain.tar", neither.as_slice(), platform).unwrap_err();
        assert!(
            err.to_string().contains("neither an OCI image layout"),
            "{err}"
        );
    }
}
