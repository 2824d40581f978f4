//! Images in registries: `pull`, `push`, `login`, and pulling the base images a build names
//! when the local store does not have them (or always, with `--pull`).
//!
//! Lowering is pure and synchronous, so a build lowers, collects the references the store could
//! not answer, pulls them (in parallel), and lowers again until nothing is missing. The manifest
//! digest a reference resolved to is what enters the graph.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;

use xbuild_cache::Store;
use xbuild_cache::lease::Session;
use xbuild_cache::oci::Manifest;
use xbuild_llb::{Definition, Digest, ImageConfig, Platform};
use xbuild_parser::lower::{ImageResolver, ResolvedImage};
use xbuild_registry::{Credentials, MountSources, Pushed, Reference, Registry};

use crate::store::{self, platform_mismatch, resolved_image};
use crate::{BuildOptions, Builder, Error, ImageError, InternalError, lower_text};

/// How many lower → pull rounds a build may take (ONBUILD triggers can name further images).
const MAX_ROUNDS: usize = 8;

/// What `xbuild pull` did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PullSummary {
    /// The name the local store now knows the image by (`alpine:latest`), or the digest
    /// reference pulled.
    pub name: String,
    /// The image manifest's digest (for the build platform).
    pub manifest: Digest,
    /// The image ID (config digest).
    pub id: Digest,
    /// Blobs downloaded.
    pub fetched: usize,
    /// Blobs the store already had.
    pub present: usize,
}

fn parse(name: &str) -> Result<Reference, Error> {
    Ok(xbuild_registry::parse_reference(name)?)
}

impl Builder {
    pub(crate) fn registry(&self) -> Result<Registry, Error> {
        Ok(Registry::new(self.registry.clone())?)
    }

    fn shared_store(&self) -> Result<Arc<Store>, Error> {
        self.store()
    }

    /// Pulls `name` from its registry into the local store and tags it there (by its familiar
    /// name, as `docker pull` shows it).
    pub async fn pull(&self, name: &str) -> Result<PullSummary, Error> {
        let r = parse(name)?;
        let store = self.shared_store()?;
        let registry = self.registry()?;
        let platform = registry.options().platform.clone();
        pull_into(&registry, &store, &r, &platform).await
    }

    /// Pushes the local image `name` to the registry its name points at.
    pub async fn push(&self, name: &str) -> Result<Pushed, Error> {
        let r = parse(name)?;
        if r.digest().is_some() {
            return Err(ImageError::PushDigest(name.to_string()).into());
        }
        let store = self.shared_store()?;
        let tag = match store::lookup(&store, &r.familiar()) {
            Ok((_, t, _, _)) => t,
            Err(Error::NoSuchImage(_)) => store::lookup(&store, name)?.1,
            Err(e) => return Err(e),
        };
        self.push_manifest(&store, &tag.manifest, name).await
    }

    /// Checks `username`/`password` against `server` (Docker Hub when empty) and records them in
    /// Docker's config, as `docker login` does. Returns the file written.
    pub async fn login(
        &self,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<PathBuf, Error> {
        let creds = Credentials {
            username: username.to_string(),
            password: password.to_string(),
        };
        Ok(self.registry()?.login(server, &creds).await?)
    }

    /// Pushes a stored manifest to `name`, mounting blobs from other repositories of the same
    /// registry that local tags say hold them.
    pub(crate) async fn push_manifest(
        &self,
        store: &Arc<Store>,
        manifest: &Digest,
        name: &str,
    ) -> Result<Pushed, Error> {
        let target = parse(name)?;
        let sources = mount_sources(store, &target)?;
        let pushed = self
            .registry()?
            .push(store, manifest, &target, &sources)
            .await?;
        tracing::info!(
            target = %target,
            uploaded = pushed.uploaded,
            mounted = pushed.mounted,
            present = pushed.present,
            "pushed"
        );
        Ok(pushed)
    }

    /// Lowers the Dockerfile, pulling the base images the store lacks (all of them with
    /// `opts.pull`), until every reference resolves. With a `lease`, every base image is held
    /// for that session the moment it resolves, so that removing it (`rmi`, prune) from then
    /// on cannot fail the build that lowered it.
    pub(crate) async fn lower_pulling(
        &self,
        store: &Arc<Store>,
        file: &str,
        text: &str,
        opts: &BuildOptions,
        lease: Option<&Session>,
    ) -> Result<Definition, Error> {
        let mut pulled: HashSet<String> = HashSet::new();
        let mut failed: HashMap<String, String> = HashMap::new();
        let mut registry: Option<Registry> = None;
        for _ in 0..MAX_ROUNDS {
            let resolver = PullingResolver {
                store,
                lease,
                force: opts.pull,
                pulled: &pulled,
                failed: &failed,
                missing: Mutex::new(Vec::new()),
            };
            let lowered = lower_text(file, text, opts, &resolver);
            let mut missing = resolver
                .missing
                .into_inner()
                .map_err(|_| InternalError::Poisoned("image resolution state"))?;
            missing.sort_by_key(|(name, p)| pull_key(name, p));
            missing.dedup();
            if missing.is_empty() {
                return lowered;
            }
            let registry = match &registry {
                Some(r) => r,
                None => registry.insert(self.registry()?),
            };
            let results = join_all(missing.iter().map(|(name, platform)| async move {
                let r = parse(name)?;
                pull_into(registry, store, &r, platform).await
            }))
            .await;
            for ((name, platform), res) in missing.into_iter().zip(results) {
                let key = pull_key(&name, &platform);
                match res {
                    Ok(p) => {
                        tracing::info!(image = %name, %platform, manifest = %p.manifest, fetched = p.fetched, "pulled");
                        if let Some(session) = lease {
                            store.hold_image(session, &p.manifest)?;
                        }
                    }
                    Err(e) => {
                        failed.insert(key.clone(), e.to_string());
                    }
                }
                pulled.insert(key);
            }
        }
        Err(InternalError::ResolveRounds {
            file: file.to_string(),
            rounds: MAX_ROUNDS,
        }
        .into())
    }
}

/// The key a base image pull is known by in one build: the reference and the platform.
fn pull_key(reference: &str, platform: &Platform) -> String {
    format!("{reference} {platform}")
}

/// Pulls `r` for `platform` into `store`; a tag reference is tagged locally by its familiar
/// name.
async fn pull_into(
    registry: &Registry,
    store: &Arc<Store>,
    r: &Reference,
    platform: &Platform,
) -> Result<PullSummary, Error> {
    let pulled = registry.pull_for(store, r, platform).await?;
    let name = r.familiar();
    if r.tag().is_some() {
        store::tag(store, &name, &pulled.manifest.digest)?;
    }
    let m: Manifest = store.read_json(&pulled.manifest.digest)?;
    Ok(PullSummary {
        name,
        manifest: pulled.manifest.digest,
        id: m.config.digest,
        fetched: pulled.fetched,
        present: pulled.present,
    })
}

/// Repositories of `target`'s registry that local tags say hold each blob.
fn mount_sources(store: &Store, target: &Reference) -> Result<MountSources, Error> {
    let mut out = MountSources::new();
    for (name, tag) in store.tags()? {
        let Ok(r) = xbuild_registry::parse_reference(&name) else {
            continue;
        };
        if r.domain() != target.domain() || r.path() == target.path() {
            continue;
        }
        let Ok(m) = store.read_json::<Manifest>(&tag.manifest) else {
            continue;
        };
        for d in std::iter::once(&m.config).chain(&m.layers) {
            let repos = out.entry(d.digest.clone()).or_default();
            if !repos.iter().any(|p| p == r.path()) {
                repos.push(r.path().to_string());
            }
        }
    }
    Ok(out)
}

/// Resolves base images from the store, noting those it must pull first.
struct PullingResolver<'a> {
    store: &'a Store,
    /// The build's session, which holds every image resolved (see [`Store::hold_image`]).
    lease: Option<&'a Session>,
    /// `--pull`: re-resolve tags even when the store has them.
    force: bool,
    /// References pulled during this build, by [`pull_key`].
    pulled: &'a HashSet<String>,
    /// References whose pull failed, by [`pull_key`], with the error.
    failed: &'a HashMap<String, String>,
    /// References to pull before the next round, with the platform wanted.
    missing: Mutex<Vec<(String, Platform)>>,
}

impl PullingResolver<'_> {
    fn need(&self, reference: &str, platform: Platform) -> ResolvedImage {
        if let Ok(mut m) = self.missing.lock() {
            m.push((reference.to_string(), platform));
        }
        ResolvedImage {
            reference: reference.to_string(),
            digest: Digest::of(b"xbuild: not resolved yet"),
            config: ImageConfig::default(),
            history: Vec::new(),
            platform: Platform::host(),
        }
    }
}

impl ImageResolver for PullingResolver<'_> {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        let want = platform;
        let key = pull_key(reference, want);
        let r = xbuild_registry::parse_reference(reference).map_err(|e| e.to_string())?;
        let local = match r.digest() {
            Some(_) => from_digest(self.store, &r, want),
            None => from_tag(self.store, &r),
        }?;
        // Held before it is used: an image removed between the lookup and the hold counts
        // as missing (pulled again, or an error naming it).
        let local = match (local, self.lease) {
            (Some(img), Some(session)) => match self.store.hold_image(session, &img.digest) {
                Ok(true) => Some(img),
                Ok(false) => None,
                Err(e) => return Err(e.to_string()),
            },
            (local, _) => local,
        };
        if let Some(e) = self.failed.get(&key) {
            // A local image for another platform is why the pull was tried: say both.
            return Err(
                match local.as_ref().and_then(|i| platform_mismatch(i, platform)) {
                    Some(m) => format!("{m}; pulling the {want} image failed: {e}"),
                    None => e.clone(),
                },
            );
        }
        let fresh = self.pulled.contains(&key);
        match local {
            // What a pull brought is used as it is (a registry may offer one platform only).
            Some(img) if fresh || r.digest().is_some() => Ok(img),
            Some(img) if !self.force && platform_mismatch(&img, platform).is_none() => Ok(img),
            None if fresh => Err(format!("{r} was pulled but is not in the local store")),
            _ => Ok(self.need(reference, want.clone())),
        }
    }
}

fn from_tag(store: &Store, r: &Reference) -> Result<Option<ResolvedImage>, String> {
    let name = r.familiar();
    match store::lookup(store, &name) {
        Ok((local, tag, _, c)) => Ok(Some(resolved_image(local.to_string(), tag.manifest, c))),
        Err(Error::NoSuchImage(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// An image by digest is in the store when its manifest (for an index: `platform`'s),
/// config and layers are; see [`store::pinned`].
fn from_digest(
    store: &Store,
    r: &Reference,
    platform: &Platform,
) -> Result<Option<ResolvedImage>, String> {
    Ok(store::pinned(store, r, platform)
        .map_err(|e| e.to_string())?
        .map(|(manifest, c)| resolved_image(r.familiar(), manifest, c)))
}
