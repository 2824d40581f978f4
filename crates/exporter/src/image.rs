//! Assembling an image: layers of a snapshot chain, the config, the manifest.

use std::collections::{BTreeMap, HashMap, HashSet};

use xbuild_cache::oci::{
    ContainerConfig, Descriptor, Healthcheck, History, ImageConfigFile, MEDIA_CONFIG,
    MEDIA_MANIFEST, Manifest, RootFs,
};
use xbuild_cache::{LayerRecord, Store};
use xbuild_llb::{Digest, Output};
use xbuild_runtime::Snapshotter;

use crate::Error;
use crate::layer::{Compression, layer_of};

/// What the solver produced for one vertex, as the exporter needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepResult {
    /// The vertex's snapshot (`None`: the empty filesystem).
    pub snapshot: Option<String>,
    /// When it ran (RFC 3339).
    pub created: String,
}

/// An image written to the content store.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    /// The manifest's descriptor (its digest names the image in registries).
    pub manifest: Descriptor,
    /// The config's descriptor (its digest is the image ID).
    pub config: Descriptor,
    /// The config itself.
    pub config_file: ImageConfigFile,
}

impl BuiltImage {
    /// The image ID as `docker images` shows it: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config.digest
    }
}

/// Converts the frontend's config to the image config's `config` object.
pub fn container_config(c: &xbuild_llb::ImageConfig) -> ContainerConfig {
    let set = |s: &std::collections::BTreeSet<String>| {
        (!s.is_empty()).then(|| {
            s.iter()
                .map(|k| (k.clone(), serde_json::json!({})))
                .collect::<BTreeMap<_, _>>()
        })
    };
    ContainerConfig {
        user: c.user.clone(),
        exposed_ports: set(&c.exposed_ports),
        env: Some(c.env.clone()),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        args_escaped: c.args_escaped,
        healthcheck: c.healthcheck.as_ref().map(|h| Healthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        volumes: set(&c.volumes),
        working_dir: c.working_dir.clone(),
        labels: (!c.labels.is_empty()).then(|| c.labels.clone()),
        on_build: (!c.on_build.is_empty()).then(|| c.on_build.clone()),
        stop_signal: c.stop_signal.clone(),
        shell: c.shell.clone(),
    }
}

/// Converts a stored image's `config` object to the frontend's config (for a base image).
pub fn image_config(c: &ContainerConfig) -> xbuild_llb::ImageConfig {
    let keys = |m: &Option<BTreeMap<String, serde_json::Value>>| {
        m.as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    xbuild_llb::ImageConfig {
        user: c.user.clone(),
        env: c.env.clone().unwrap_or_default(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        args_escaped: c.args_escaped,
        working_dir: c.working_dir.clone(),
        labels: c.labels.clone().unwrap_or_default(),
        exposed_ports: keys(&c.exposed_ports),
        volumes: keys(&c.volumes),
        stop_signal: c.stop_signal.clone(),
        healthcheck: c.healthcheck.as_ref().map(|h| xbuild_llb::Healthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        on_build: c.on_build.clone().unwrap_or_default(),
        shell: c.shell.clone(),
    }
}

/// Writes the image of `output`, whose filesystem is the snapshot `top`, into the store.
pub fn build_image(
    store: &Store,
    snapshots: &Snapshotter,
    output: &Output,
    top: Option<&str>,
    steps: &HashMap<Digest, StepResult>,
    compression: Compression,
) -> Result<BuiltImage, Error> {
    let mut chain = match top {
        Some(t) => snapshots.chain(t)?,
        None => vec![],
    };
    chain.reverse();
    let mut layers: Vec<LayerRecord> = Vec::new();
    let mut empty: HashSet<String> = HashSet::new();
    for s in &chain {
        match layer_of(store, snapshots, s, compression)? {
            Some(l) => layers.push(l),
            None => {
                empty.insert(s.clone());
            }
        }
    }
    let layer_times: Vec<&str> = output
        .history
        .iter()
        .filter_map(|h| h.vertex.as_ref())
        .filter_map(|v| steps.get(v))
        .map(|s| s.created.as_str())
        .collect();
    let created = layer_times
        .iter()
        .max()
        .map(|s| s.to_string())
        .or_else(|| output.history.iter().rev().find_map(|h| h.created.clone()))
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string());
    let history: Vec<History> = output
        .history
        .iter()
        .map(|h| {
            let step = h.vertex.as_ref().and_then(|v| steps.get(v));
            let made_nothing = match step {
                Some(s) => s.snapshot.as_ref().is_none_or(|id| empty.contains(id)),
                None => h.vertex.is_some(),
            };
            History {
                created: h
                    .created
                    .clone()
                    .or_else(|| step.map(|s| s.created.clone()))
                    .or_else(|| Some(created.clone())),
                created_by: (!h.created_by.is_empty()).then(|| h.created_by.clone()),
                author: h.author.clone(),
                comment: h.comment.clone(),
                empty_layer: h.empty_layer || made_nothing,
            }
        })
        .collect();
    let with_layer = history.iter().filter(|h| !h.empty_layer).count();
    if with_layer != layers.len() {
        tracing::warn!(
            history = with_layer,
            layers = layers.len(),
            "history entries with a layer do not match the layers"
        );
    }
    let config_file = ImageConfigFile {
        architecture: output.architecture.clone(),
        config: Some(container_config(&output.config)),
        created: Some(created),
        history,
        os: output.os.clone(),
        rootfs: RootFs {
            typ: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        variant: output.variant.clone(),
    };
    let config = store.put_json(MEDIA_CONFIG, &config_file)?;
    let manifest_doc = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_MANIFEST.into()),
        config: config.clone(),
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: l.media_type.clone(),
                digest: l.digest.clone(),
                size: l.size,
                annotations: None,
                platform: None,
            })
            .collect(),
        annotations: None,
    };
    let manifest = store.put_json(MEDIA_MANIFEST, &manifest_doc)?;
    Ok(BuiltImage {
        manifest,
        config,
        config_file,
    })
}

/// Loads a stored image by its manifest digest.
pub fn load_image(store: &Store, manifest: &Digest) -> Result<(Manifest, ImageConfigFile), Error> {
    let m: Manifest = store.read_json(manifest)?;
    let c: ImageConfigFile = store.read_json(&m.config.digest)?;
    Ok((m, c))
}

/// The `org.opencontainers.image.ref.name` annotations map for a tag.
pub(crate) fn ref_annotation(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(
        "org.opencontainers.image.ref.name".to_string(),
        name.to_string(),
    )])
}
