//! The local image store seen from the facade: images and their tags, lookups by name or ID,
//! listing with Docker's filters, removal and pruning, and the image resolver for lowering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use xbuild_cache::oci::{self, ImageConfigFile, Index, Manifest};
use xbuild_cache::{ImageRecord, Store, TagRecord};
use xbuild_llb::{Digest, HistoryEntry, Platform};
use xbuild_parser::lower::{ImageResolver, ResolvedImage};

use crate::reference::Reference;
use crate::{Error, ImageError};

/// One row of `xbuild images`: a tag, or an untagged image (`<none>`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    /// The repository (`<none>` for an untagged image).
    pub repository: String,
    /// The tag (`<none>` for an untagged image).
    pub tag: String,
    /// The image ID (config digest).
    pub id: Digest,
    /// The manifest digest.
    pub manifest: Digest,
    /// When it was created (RFC 3339).
    pub created: Option<String>,
    /// Its size: the file content of its layers (compressed size where that is unknown).
    pub size: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

impl ImageSummary {
    /// True for an image no tag points at.
    pub fn dangling(&self) -> bool {
        self.repository == NONE
    }
}

/// What Docker prints for a missing repository, tag or digest.
pub const NONE: &str = "<none>";

/// An image of the store with everything needed to show it.
#[derive(Clone, Debug)]
pub(crate) struct StoredImage {
    pub manifest: Digest,
    pub doc: Manifest,
    pub config: ImageConfigFile,
    pub tags: Vec<Reference>,
}

impl StoredImage {
    /// The image ID.
    pub fn id(&self) -> &Digest {
        &self.doc.config.digest
    }
}

/// Reads an image's manifest and config.
pub(crate) fn read_image(
    store: &Store,
    manifest: &Digest,
) -> Result<(Manifest, ImageConfigFile), Error> {
    let m: Manifest = store.read_json(manifest)?;
    let c: ImageConfigFile = store.read_json(&m.config.digest)?;
    Ok((m, c))
}

/// Every image of the store (recorded, or only tagged in an older root), with its tags.
/// Images whose blobs are gone are left out with a warning.
pub(crate) fn all_images(store: &Store) -> Result<Vec<StoredImage>, Error> {
    let mut records: BTreeSet<Digest> = store.images()?.into_iter().map(|(d, _)| d).collect();
    let mut tags: BTreeMap<Digest, Vec<Reference>> = BTreeMap::new();
    for (name, t) in store.tags()? {
        let Ok(r) = Reference::parse(&name) else {
            tracing::warn!(tag = %name, "ignoring a malformed tag in the store");
            continue;
        };
        records.insert(t.manifest.clone());
        tags.entry(t.manifest).or_default().push(r);
    }
    let mut out = Vec::new();
    for manifest in records {
        let (doc, config) = match read_image(store, &manifest) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(image = %manifest, error = %e, "skipping an unreadable image");
                continue;
            }
        };
        out.push(StoredImage {
            tags: tags.remove(&manifest).unwrap_or_default(),
            manifest,
            doc,
            config,
        });
    }
    Ok(out)
}

/// Records `manifest` as an image of the local store (keeping the first record's time).
pub fn record_image(store: &Store, manifest: &Digest) -> Result<(), Error> {
    if store.get_image(manifest)?.is_some() {
        return Ok(());
    }
    let (m, c) = read_image(store, manifest)?;
    store.put_image(
        manifest,
        &ImageRecord {
            config: m.config.digest,
            created: c.created,
            added: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        },
    )?;
    Ok(())
}

/// Points `name` at a stored manifest (moving it off any other image, which stays untagged).
pub fn tag(store: &Store, name: &str, manifest: &Digest) -> Result<Reference, Error> {
    let r = Reference::parse(name)?;
    if store
        .get_tag(&r.to_string())?
        .is_some_and(|t| &t.manifest == manifest)
    {
        return Ok(r);
    }
    let size = store.blob_size(manifest)?;
    record_image(store, manifest)?;
    store.put_tag(
        &r.to_string(),
        &TagRecord {
            manifest: manifest.clone(),
            size,
        },
    )?;
    Ok(r)
}

/// How a name given on the command line was found.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// The image.
    pub image: StoredImage,
    /// The tag it was named by (`None`: named by ID).
    pub by_tag: Option<Reference>,
}

/// True when `s` could be (a prefix of) an image ID.
fn id_like(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (!hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(hex)
}

/// Looks `name` up as a tag: the reference, the tag record, the manifest and its config.
pub(crate) fn lookup(
    store: &Store,
    name: &str,
) -> Result<(Reference, TagRecord, Manifest, ImageConfigFile), Error> {
    let r = Reference::parse(name)?;
    let tag = store
        .get_tag(&r.to_string())?
        .ok_or_else(|| Error::NoSuchImage(r.to_string()))?;
    let (m, c) = read_image(store, &tag.manifest)?;
    Ok((r, tag, m, c))
}

/// Finds an image by `name[:tag]`, by ID (`sha256:…` or a unique prefix), or by manifest
/// digest, as Docker does: a tag first, then an ID.
pub(crate) fn find(store: &Store, name: &str) -> Result<Found, Error> {
    let images = all_images(store)?;
    if name.contains('@') {
        let r = xbuild_registry::parse_reference(name)?;
        let Some((manifest, config)) = pinned(store, &r, &Platform::host())? else {
            return Err(Error::NoSuchImage(name.to_string()));
        };
        let image = match images.into_iter().find(|i| i.manifest == manifest) {
            Some(i) => i,
            None => StoredImage {
                doc: store.read_json(&manifest)?,
                manifest,
                config,
                tags: Vec::new(),
            },
        };
        return Ok(Found {
            image,
            by_tag: None,
        });
    }
    if let Ok(r) = Reference::parse(name)
        && let Some(t) = store.get_tag(&r.to_string())?
        && let Some(image) = images.iter().find(|i| i.manifest == t.manifest)
    {
        return Ok(Found {
            image: image.clone(),
            by_tag: Some(r),
        });
    }
    if let Some(hex) = id_like(name) {
        let hex = hex.to_ascii_lowercase();
        let hits: Vec<&StoredImage> = images
            .iter()
            .filter(|i| i.id().hex().starts_with(&hex) || i.manifest.hex() == hex)
            .collect();
        let ids: BTreeSet<&Digest> = hits.iter().map(|i| i.id()).collect();
        match ids.len() {
            0 => {}
            1 => {
                return Ok(Found {
                    image: hits[0].clone(),
                    by_tag: None,
                });
            }
            _ => {
                return Err(ImageError::AmbiguousId {
                    prefix: name.to_string(),
                    matches: ids.len(),
                }
                .into());
            }
        }
    }
    if let Err(e) = Reference::parse(name)
        && id_like(name).is_none()
    {
        return Err(e.into());
    }
    Err(Error::NoSuchImage(name.to_string()))
}

/// The bytes of file content an image's layers hold (compressed size where unknown).
pub(crate) fn layer_sizes(store: &Store, image: &StoredImage) -> Vec<u64> {
    image
        .doc
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
        .map(|(l, d)| match store.get_diff(d) {
            Ok(Some(r)) => r.content_size,
            _ => l.size,
        })
        .collect()
}

/// The rows `xbuild images` shows: one per tag, one per untagged image; newest first.
pub fn list(store: &Store) -> Result<Vec<ImageSummary>, Error> {
    let mut out = Vec::new();
    for img in all_images(store)? {
        let size = layer_sizes(store, &img).iter().sum();
        let labels = img
            .config
            .config
            .as_ref()
            .map(|c| c.labels.clone())
            .unwrap_or_default();
        let row = |repository: String, tag: String| ImageSummary {
            repository,
            tag,
            id: img.id().clone(),
            manifest: img.manifest.clone(),
            created: img.config.created.clone(),
            size,
            labels: labels.clone(),
        };
        if img.tags.is_empty() {
            out.push(row(NONE.into(), NONE.into()));
        }
        for t in &img.tags {
            out.push(row(t.repository.clone(), t.tag.clone()));
        }
    }
    out.sort_by(|a, b| {
        time_of(b.created.as_deref())
            .cmp(&time_of(a.created.as_deref()))
            .then_with(|| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)))
    });
    Ok(out)
}

/// A creation time as a sortable instant (unreadable: the beginning of time).
pub(crate) fn time_of(created: Option<&str>) -> std::time::SystemTime {
    created
        .and_then(|c| humantime::parse_rfc3339_weak(c).ok())
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// One line of `rmi` or `image prune` output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Removed {
    /// A tag was removed.
    Untagged(String),
    /// An image was removed (its ID).
    Deleted(Digest),
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Removed::Untagged(t) => write!(f, "Untagged: {t}"),
            Removed::Deleted(d) => write!(f, "Deleted: {d}"),
        }
    }
}

/// Removes an image as `docker rmi` does: a tag is untagged, and the image goes when no tag is
/// left; an ID removes the image unless several tags name it (then `force` is needed).
pub(crate) fn remove(store: &Store, name: &str, force: bool) -> Result<Vec<Removed>, Error> {
    let found = find(store, name)?;
    let mut out = Vec::new();
    let img = &found.image;
    let untag: Vec<Reference> = match &found.by_tag {
        Some(t) => vec![t.clone()],
        None if img.tags.len() > 1 && !force => {
            return Err(ImageError::NeedsForce {
                id: img.id().short().to_string(),
            }
            .into());
        }
        None => img.tags.clone(),
    };
    for t in &untag {
        store.delete_tag(&t.to_string())?;
        out.push(Removed::Untagged(t.to_string()));
    }
    if img.tags.len() <= untag.len() {
        store.delete_image(&img.manifest)?;
        out.push(Removed::Deleted(img.id().clone()));
    }
    Ok(out)
}

/// Removes untagged images (with `all`, every image), then the blobs nothing references.
pub(crate) fn prune(store: &Store, all: bool) -> Result<(Vec<Removed>, u64), Error> {
    let mut out = Vec::new();
    for img in all_images(store)? {
        if !all && !img.tags.is_empty() {
            continue;
        }
        for t in &img.tags {
            store.delete_tag(&t.to_string())?;
            out.push(Removed::Untagged(t.to_string()));
        }
        store.delete_image(&img.manifest)?;
        out.push(Removed::Deleted(img.id().clone()));
    }
    let stats = store.prune_blobs()?;
    Ok((out, stats.bytes))
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
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        if reference.contains('@') {
            let r = xbuild_registry::parse_reference(reference).map_err(|e| e.to_string())?;
            // A pinned image is used as it is, whatever its platform (as a build's resolver
            // and BuildKit do).
            return match pinned(self.store, &r, platform).map_err(|e| e.to_string())? {
                Some((manifest, c)) => Ok(resolved_image(r.familiar(), manifest, c)),
                None => Err(format!("{reference} is not in the local image store")),
            };
        }
        let r = Reference::parse(reference).map_err(|e| e.to_string())?;
        let tag = match self.store.get_tag(&r.to_string()) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(format!("{r} is not in the local image store")),
            Err(e) => return Err(e.to_string()),
        };
        let (_, c) = read_image(self.store, &tag.manifest).map_err(|e| e.to_string())?;
        let img = resolved_image(r.to_string(), tag.manifest, c);
        match platform_mismatch(&img, platform) {
            Some(e) => Err(e),
            None => Ok(img),
        }
    }
}

/// The image a pinned reference (`name@sha256:…`, `name:tag@sha256:…`: the tag is ignored)
/// names in the store: its manifest digest and config. The digest may be an image manifest's or
/// an index's the store holds (then `platform`'s manifest is chosen from it). `None` when the
/// store lacks the manifest, its config or a layer (the image is to be pulled by digest). Every
/// document read is checked against its digest: content that does not hash to it is
/// [`Error::Pinned`], naming the reference and both digests.
pub(crate) fn pinned(
    store: &Store,
    r: &xbuild_registry::Reference,
    platform: &Platform,
) -> Result<Option<(Digest, ImageConfigFile)>, Error> {
    let Some(digest) = r.digest() else {
        return Err(ImageError::NotByDigest(r.to_string()).into());
    };
    let Ok(d) = digest.parse::<Digest>() else {
        return Err(ImageError::DigestAlgorithm(r.to_string()).into());
    };
    let in_store = |source: xbuild_cache::Error| Error::Pinned {
        reference: r.to_string(),
        source,
    };
    if !store.has_blob(&d) {
        return Ok(None);
    }
    // A layer's digest is no manifest's: not read into memory.
    let limit = xbuild_registry::Document::Manifest.limit();
    let size = store.blob_size(&d).map_err(in_store)?;
    if size > limit {
        return Err(ImageError::NotAManifest {
            reference: r.to_string(),
            digest: d,
            size,
            limit,
        }
        .into());
    }
    let bytes = store.read_blob(&d).map_err(in_store)?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let media_type = doc.get("mediaType").and_then(|m| m.as_str());
    let is_index = match media_type {
        Some(mt) => mt == oci::MEDIA_INDEX || mt == oci::MEDIA_DOCKER_LIST,
        None => doc.get("manifests").is_some(),
    };
    let manifest = if is_index {
        let idx: Index = store.read_json(&d).map_err(in_store)?;
        match xbuild_registry::select_manifest(platform, &idx) {
            Ok(m) => m.digest.clone(),
            Err(_) => return Ok(None),
        }
    } else {
        d
    };
    if !store.has_blob(&manifest) {
        return Ok(None);
    }
    let m: Manifest = store.read_json(&manifest).map_err(in_store)?;
    if !std::iter::once(&m.config)
        .chain(&m.layers)
        .all(|b| store.has_blob(&b.digest))
    {
        return Ok(None);
    }
    let c: ImageConfigFile = store.read_json(&m.config.digest).map_err(in_store)?;
    Ok(Some((manifest, c)))
}

/// Docker's complaint when a local image is for another platform than the one asked for
/// (`FROM --platform`, `--platform`); `None` when it matches. An image whose config leaves
/// its OS or architecture out matches any.
pub(crate) fn platform_mismatch(img: &ResolvedImage, want: &Platform) -> Option<String> {
    let os_ok = img.platform.os.is_empty() || img.platform.os == want.os;
    let arch_ok =
        img.platform.architecture.is_empty() || img.platform.architecture == want.architecture;
    if os_ok && arch_ok {
        return None;
    }
    Some(format!(
        "image with reference {} was found but does not match the specified platform: wanted {}, actual: {}/{}",
        img.reference, want, img.platform.os, img.platform.architecture
    ))
}

/// What the lowering learns of an image: its reference, manifest digest and config.
pub(crate) fn resolved_image(
    reference: String,
    manifest: Digest,
    c: ImageConfigFile,
) -> ResolvedImage {
    ResolvedImage {
        reference,
        digest: manifest,
        config: c.config.unwrap_or_default(),
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
        // The variant is not carried over, as before the platform was one type: a stage on
        // this image keeps the OS and architecture its config states.
        platform: xbuild_llb::Platform::new(&c.os, &c.architecture, None),
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

#[cfg(test)]
mod tests {
    use super::*;
    use xbuild_cache::oci::{History, ImageConfig, MEDIA_CONFIG, MEDIA_MANIFEST, RootFs};

    fn put_image(store: &Store, on_build: Vec<String>, created: &str) -> Digest {
        let config = ImageConfigFile {
            architecture: "amd64".into(),
            config: Some(ImageConfig {
                on_build,
                cmd: Some(vec!["sh".into()]),
                ..ImageConfig::default()
            }),
            created: Some(created.into()),
            history: vec![History {
                created_by: Some("ONBUILD RUN echo child".into()),
                empty_layer: true,
                ..History::default()
            }],
            os: "linux".into(),
            rootfs: RootFs {
                typ: "layers".into(),
                diff_ids: vec![],
            },
            ..ImageConfigFile::default()
        };
        let c = store.put_json(MEDIA_CONFIG, &config).unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_MANIFEST.into()),
            config: c,
            layers: vec![],
            annotations: None,
        };
        store.put_json(MEDIA_MANIFEST, &m).unwrap().digest
    }

    #[test]
    fn resolver_hands_lowering_the_stored_config_with_onbuild_triggers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = put_image(
            &store,
            vec!["RUN echo child".into()],
            "2026-01-01T00:00:00Z",
        );
        tag(&store, "parent:1", &m).unwrap();
        let host = Platform::host();
        let r = StoreResolver::new(&store)
            .resolve("parent:1", &host)
            .unwrap();
        assert_eq!(r.digest, m);
        assert_eq!(r.config.on_build, ["RUN echo child"]);
        assert_eq!(r.config.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(r.history[0].created_by, "ONBUILD RUN echo child");
        let err = StoreResolver::new(&store)
            .resolve("nope:1", &host)
            .unwrap_err();
        assert!(err.contains("nope:1"), "{err}");
        let arm = Platform::parse("linux/arm64").unwrap();
        let err = StoreResolver::new(&store)
            .resolve("parent:1", &arm)
            .unwrap_err();
        assert!(
            err.contains("does not match the specified platform: wanted linux/arm64"),
            "{err}"
        );
    }

    #[test]
    fn moved_tags_leave_untagged_images_and_ids_resolve_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = put_image(&store, vec![], "2026-01-01T00:00:00Z");
        let new = put_image(&store, vec!["X".into()], "2026-01-02T00:00:00Z");
        tag(&store, "app:1", &old).unwrap();
        tag(&store, "app:1", &new).unwrap();
        let rows = list(&store).unwrap();
        let shown: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.repository.as_str(), r.tag.as_str()))
            .collect();
        assert_eq!(shown, [("app", "1"), (NONE, NONE)], "newest first");
        let old_id = rows[1].id.clone();
        let found = find(&store, &old_id.hex()[..8]).unwrap();
        assert_eq!(found.image.manifest, old);
        assert!(found.by_tag.is_none());
        assert!(matches!(
            find(&store, "missing:1"),
            Err(Error::NoSuchImage(_))
        ));
        assert_eq!(
            remove(&store, "app:1", false).unwrap(),
            [
                Removed::Untagged("app:1".into()),
                Removed::Deleted(rows[0].id.clone())
            ]
        );
        let (removed, _) = prune(&store, false).unwrap();
        assert_eq!(removed, [Removed::Deleted(old_id)]);
        assert!(list(&store).unwrap().is_empty());
    }

    /// Issue 16 item 10: a pinned reference resolves from the store (by manifest digest, or by
    /// an index's digest, the platform's manifest chosen), the tag of `name:tag@digest` is
    /// ignored, and content that does not hash to its digest is an error naming the reference
    /// and both digests.
    #[test]
    fn from_pinned_digest_resolves_from_the_store_and_checks_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = put_image(&store, vec![], "2026-01-01T00:00:00Z");
        let host = Platform::host();
        let resolver = StoreResolver::new(&store);
        for reference in [format!("app@{m}"), format!("app:ignored@{m}")] {
            let r = resolver.resolve(&reference, &host).unwrap();
            assert_eq!(r.digest, m, "{reference}");
        }
        let found = find(&store, &format!("registry.test/app@{m}")).unwrap();
        assert_eq!(found.image.manifest, m);

        let size = store.blob_size(&m).unwrap();
        let entry = |os: &str, arch: &str| oci::Descriptor {
            media_type: oci::MEDIA_MANIFEST.into(),
            digest: m.clone(),
            size,
            annotations: None,
            platform: Some(oci::Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: None,
            }),
        };
        let index = Index {
            schema_version: 2,
            media_type: Some(oci::MEDIA_INDEX.into()),
            manifests: vec![entry("linux", "s390x"), entry(&host.os, &host.architecture)],
            annotations: None,
        };
        let idx = store.put_json(oci::MEDIA_INDEX, &index).unwrap().digest;
        let r = resolver.resolve(&format!("app@{idx}"), &host).unwrap();
        assert_eq!(r.digest, m, "the platform's manifest of the index");

        let absent = format!("app@sha256:{}", "0".repeat(64));
        let err = resolver.resolve(&absent, &host).unwrap_err();
        assert!(
            err.contains(&absent) && err.contains("not in the local image store"),
            "{err}"
        );

        // A layer-sized blob is not read as a manifest.
        let limit = xbuild_registry::Document::Manifest.limit();
        let big = store.put_blob(&vec![0u8; limit as usize + 1]).unwrap();
        let err = resolver.resolve(&format!("app@{big}"), &host).unwrap_err();
        assert!(err.contains("not an image manifest"), "{err}");

        let mut bytes = std::fs::read(store.blob_path(&m)).unwrap();
        bytes.push(b' ');
        let actual = Digest::of(&bytes);
        std::fs::write(store.blob_path(&m), &bytes).unwrap();
        let err = resolver.resolve(&format!("app@{m}"), &host).unwrap_err();
        assert!(
            err.contains(&format!("app@{m}")) && err.contains(&actual.to_string()),
            "{err}"
        );
    }
}
