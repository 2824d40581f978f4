//! Assembling an image: layers of a snapshot chain, the config, the manifest.

use std::collections::{BTreeMap, HashMap, HashSet};

use xbuild_cache::oci::{
    ContainerConfig, Descriptor, Healthcheck, History, ImageConfigFile, MEDIA_CONFIG,
    MEDIA_MANIFEST, Manifest, RootFs,
};
use xbuild_cache::{LayerRecord, Store};
use xbuild_llb::{Definition, Digest, Op, Output, SourceOp};
use xbuild_runtime::Snapshotter;

use crate::Error;
use crate::layer::{ExportOptions, layer_of};

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

/// The image a build output stands on: the image source at the bottom of its filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseImage {
    /// The image source vertex.
    pub vertex: Digest,
    /// The base image's manifest digest.
    pub manifest: Digest,
}

/// Finds the base image under `vertex`: following each op's first input (its root filesystem)
/// down to a source. `None` for `FROM scratch`.
pub fn base_image(def: &Definition, vertex: &Digest) -> Option<BaseImage> {
    let mut cur = def.vertex(vertex)?;
    for _ in 0..def.len() {
        match cur.op() {
            Op::Source(SourceOp::Image { digest, .. }) => {
                return Some(BaseImage {
                    vertex: cur.digest().clone(),
                    manifest: digest.clone(),
                });
            }
            Op::Source(_) | Op::Merge(_) => return None,
            Op::Exec(_) | Op::File(_) => cur = def.vertex(cur.inputs().first()?)?,
        }
    }
    None
}

/// RFC 3339 text of a Unix time.
pub fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `t` unless it is later than `epoch` (or unreadable): then the epoch.
fn clamp(t: Option<&str>, epoch: i64) -> String {
    let limit = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch.max(0) as u64);
    match t.and_then(|t| humantime::parse_rfc3339_weak(t).ok()) {
        Some(parsed) if parsed <= limit => t.unwrap_or_default().to_string(),
        _ => rfc3339(epoch),
    }
}

/// Fills in missing history times as BuildKit does: entries before this build's first layer
/// take that layer's time, later ones the time of the layer before them.
fn fill_history_times(history: &mut [History]) {
    let mut created: Option<String> = None;
    let mut missing = false;
    for h in history.iter() {
        match &h.created {
            Some(c) => {
                created = Some(c.clone());
                if missing {
                    break;
                }
            }
            None => missing = true,
        }
    }
    missing = false;
    for h in history.iter_mut() {
        match &h.created {
            Some(c) => {
                if missing {
                    created = Some(c.clone());
                }
            }
            None => {
                missing = true;
                h.created = created.clone();
            }
        }
    }
}

/// One layer of an image being assembled.
struct Layer {
    record: LayerRecord,
    /// The snapshot whose diff it is (this build's layers only).
    snapshot: Option<String>,
}

/// Writes the image of `output` (a result of `def`, solved into `steps`) into the store: the
/// base image's layers as they are, one layer per step of this build that changed something,
/// the config with BuildKit-style history, and the manifest. With an epoch, this build's
/// times (history, config, file times in its layers) are clamped to it.
pub fn build_image(
    store: &Store,
    snapshots: &Snapshotter,
    def: &Definition,
    output: &Output,
    steps: &HashMap<Digest, StepResult>,
    opts: ExportOptions,
) -> Result<BuiltImage, Error> {
    let top = steps
        .get(&output.vertex)
        .ok_or_else(|| Error::BadInput(format!("output {} was not solved", output.vertex)))?
        .snapshot
        .clone();
    let mut chain = match &top {
        Some(t) => snapshots.chain(t)?,
        None => vec![],
    };
    chain.reverse();
    let mut layers: Vec<Layer> = Vec::new();
    let mut base_history = 0;
    let mut author = None;
    let mut own: &[String] = &chain;
    if let Some(base) = base_image(def, &output.vertex) {
        let (m, c) = load_image(store, &base.manifest)?;
        if m.layers.len() != c.rootfs.diff_ids.len() {
            return Err(Error::BadInput(format!(
                "base image {}: {} layers but {} diff_ids in its config",
                base.manifest,
                m.layers.len(),
                c.rootfs.diff_ids.len()
            )));
        }
        let base_top = steps.get(&base.vertex).and_then(|s| s.snapshot.clone());
        let split = match &base_top {
            None => Some(0),
            Some(b) => chain.iter().position(|s| s == b).map(|i| i + 1),
        };
        let Some(split) = split else {
            return Err(Error::BadInput(format!(
                "the output's filesystem does not stand on its base image {}",
                base.manifest
            )));
        };
        own = &chain[split..];
        base_history = c.history.len().min(output.history.len());
        author = c.author.clone();
        layers.extend(
            m.layers
                .iter()
                .zip(&c.rootfs.diff_ids)
                .map(|(d, diff_id)| Layer {
                    record: LayerRecord {
                        media_type: d.media_type.clone(),
                        digest: d.digest.clone(),
                        diff_id: diff_id.clone(),
                        size: d.size,
                    },
                    snapshot: None,
                }),
        );
    }
    // Which history entry each snapshot of this build belongs to.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, h) in output.history.iter().enumerate() {
        if let Some(s) = h
            .vertex
            .as_ref()
            .and_then(|v| steps.get(v))
            .and_then(|s| s.snapshot.as_deref())
        {
            owner.entry(s).or_insert(i);
        }
    }
    let mut with_layer: HashSet<usize> = HashSet::new();
    let mut unowned: Vec<(usize, History)> = Vec::new();
    let mut cursor = base_history;
    for s in own {
        let rec = layer_of(store, snapshots, s, opts)?;
        match owner.get(s.as_str()) {
            Some(&i) => {
                if rec.is_some() {
                    with_layer.insert(i);
                }
                cursor = i + 1;
            }
            None if rec.is_some() => unowned.push((
                cursor,
                History {
                    created_by: Some("created by xbuild".into()),
                    comment: Some("buildkit.exporter.image.v0".into()),
                    ..History::default()
                },
            )),
            None => {}
        }
        if let Some(record) = rec {
            layers.push(Layer {
                record,
                snapshot: Some(s.clone()),
            });
        }
    }
    let mut history: Vec<History> = Vec::new();
    let mut extra = unowned.into_iter().peekable();
    for (i, h) in output.history.iter().enumerate() {
        while let Some((_, e)) = extra.next_if(|(at, _)| *at == i) {
            history.push(e);
        }
        let step = h.vertex.as_ref().and_then(|v| steps.get(v));
        let empty_layer = if h.vertex.is_some() {
            !with_layer.contains(&i)
        } else {
            h.empty_layer
        };
        let created = match (&h.created, step) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(s)) if !empty_layer => Some(s.created.clone()),
            _ => None,
        };
        history.push(History {
            created,
            created_by: (!h.created_by.is_empty()).then(|| h.created_by.clone()),
            author: h.author.clone(),
            comment: h.comment.clone(),
            empty_layer,
        });
    }
    history.extend(extra.map(|(_, e)| e));
    fill_history_times(&mut history);
    if let Some(epoch) = opts.epoch {
        for h in history.iter_mut().skip(base_history) {
            h.created = Some(clamp(h.created.as_deref(), epoch));
        }
    }
    let created = history
        .iter()
        .rev()
        .find_map(|h| h.created.clone())
        .or_else(|| steps.get(&output.vertex).map(|s| s.created.clone()))
        .map(|c| match opts.epoch {
            Some(e) => clamp(Some(&c), e),
            None => c,
        });
    let in_history = history.iter().filter(|h| !h.empty_layer).count();
    if in_history != layers.len() {
        tracing::warn!(
            history = in_history,
            layers = layers.len(),
            "history entries with a layer do not match the layers"
        );
    }
    let config_file = ImageConfigFile {
        architecture: output.architecture.clone(),
        author,
        config: Some(container_config(&output.config)),
        created,
        history,
        os: output.os.clone(),
        rootfs: RootFs {
            typ: "layers".into(),
            diff_ids: layers.iter().map(|l| l.record.diff_id.clone()).collect(),
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
                media_type: l.record.media_type.clone(),
                digest: l.record.digest.clone(),
                size: l.record.size,
                annotations: None,
                platform: None,
            })
            .collect(),
        annotations: None,
    };
    let manifest = store.put_json(MEDIA_MANIFEST, &manifest_doc)?;
    // Record each layer chain's snapshot, so `FROM` this image reuses them as they are.
    let mut chain_id: Option<Digest> = None;
    for l in &layers {
        let c = crate::unpack::chain_id(chain_id.as_ref(), &l.record.diff_id);
        if let Some(s) = &l.snapshot
            && store
                .get_chain(&c)?
                .is_none_or(|have| !snapshots.exists(&have))
        {
            store.put_chain(&c, s)?;
        }
        chain_id = Some(c);
    }
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
