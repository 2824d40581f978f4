//! The local image store seen from the facade: tags, listing, lookups, the image resolver.

use std::path::Path;

use xbuild_cache::oci::{ImageConfigFile, Manifest};
use xbuild_cache::{Store, TagRecord};
use xbuild_llb::{Digest, HistoryEntry};
use xbuild_parser::lower::{ImageResolver, ResolvedImage};

use crate::Error;
use crate::reference::Reference;

/// One tagged image, as `xbuild images` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    /// The repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The image ID (config digest).
    pub id: Digest,
    /// The manifest digest.
    pub manifest: Digest,
    /// When it was created (RFC 3339).
    pub created: Option<String>,
    /// Its size: compressed layers plus config.
    pub size: u64,
}

/// Looks `name` up in the store: the manifest, its config and the tag record.
pub fn lookup(
    store: &Store,
    name: &str,
) -> Result<(Reference, TagRecord, Manifest, ImageConfigFile), Error> {
    let r = Reference::parse(name).map_err(Error::Usage)?;
    let tag = store
        .get_tag(&r.to_string())?
        .ok_or_else(|| Error::NoSuchImage(r.to_string()))?;
    let m: Manifest = store.read_json(&tag.manifest)?;
    let c: ImageConfigFile = store.read_json(&m.config.digest)?;
    Ok((r, tag, m, c))
}

/// Every tagged image, sorted by name.
pub fn list(store: &Store) -> Result<Vec<ImageSummary>, Error> {
    let mut out = Vec::new();
    for (name, tag) in store.tags()? {
        let r = Reference::parse(&name).map_err(Error::Usage)?;
        let m: Manifest = store.read_json(&tag.manifest)?;
        let c: ImageConfigFile = store.read_json(&m.config.digest)?;
        let size = m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>();
        out.push(ImageSummary {
            repository: r.repository,
            tag: r.tag,
            id: m.config.digest.clone(),
            manifest: tag.manifest.clone(),
            created: c.created,
            size,
        });
    }
    Ok(out)
}

/// Points `name` at a stored manifest.
pub fn tag(store: &Store, name: &str, manifest: &Digest) -> Result<Reference, Error> {
    let r = Reference::parse(name).map_err(Error::Usage)?;
    if store
        .get_tag(&r.to_string())?
        .is_some_and(|t| &t.manifest == manifest)
    {
        return Ok(r);
    }
    let size = store.blob_size(manifest)?;
    store.put_tag(
        &r.to_string(),
        &TagRecord {
            manifest: manifest.clone(),
            size,
        },
    )?;
    Ok(r)
}

/// Resolves base images from the local store (the lowering's view of it).
pub struct StoreResolver<'a> {
    store: &'a Store,
}

impl<'a> StoreResolver<'a> {
    /// A resolver over `store`.
    pub fn new(store: &'a Store) -> Self {
        StoreResolver { store }
    }
}

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, String> {
        let (r, tag, _, c) = match lookup(self.store, reference) {
            Ok(x) => x,
            Err(Error::NoSuchImage(n)) => {
                return Err(format!("{n} is not in the local image store"));
            }
            Err(e) => return Err(e.to_string()),
        };
        Ok(ResolvedImage {
            reference: r.to_string(),
            digest: tag.manifest,
            config: xbuild_exporter::image_config(&c.config.unwrap_or_default()),
            history: c
                .history
                .into_iter()
                .map(|h| HistoryEntry {
                    created: h.created,
                    created_by: h.created_by.unwrap_or_default(),
                    author: h.author,
                    comment: h.comment,
                    empty_layer: h.empty_layer,
                    vertex: None,
                })
                .collect(),
            os: c.os,
            architecture: c.architecture,
        })
    }
}

/// The default xbuild root: `/var/lib/xbuild` for root, else `$XDG_DATA_HOME/xbuild`.
pub fn default_root() -> std::path::PathBuf {
    if rustix_is_root() {
        return Path::new("/var/lib/xbuild").to_path_buf();
    }
    match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => Path::new(&d).join("xbuild"),
        _ => std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".local/share/xbuild"))
            .unwrap_or_else(|| Path::new("/tmp/xbuild").to_path_buf()),
    }
}

fn rustix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
