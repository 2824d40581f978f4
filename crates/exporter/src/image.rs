//! Assembling an image: layers of a snapshot chain, the config, the manifest.

use std::collections::{HashMap, HashSet};

use xbuild_cache::oci::{
    Descriptor, History, ImageConfigFile, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest, RootFs,
};
use xbuild_cache::{LayerRecord, Store};
use xbuild_llb::{Definition, Digest, Op, Output, SourceOp};
use xbuild_runtime::{LayerSnapshotter, Snapshotter};

use crate::Error;
use crate::layer::{ExportOptions, layer_of, write_layer};

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

/// The image a build output stands on: the image source at the bottom of its filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseImage {
    /// The image source vertex.
    pub vertex: Digest,
    /// The base image's manifest digest.
    pub manifest: Digest,
}

/// Finds the base image under `vertex`: following each op's first input (its root filesystem)
/// down to a source. A merge (`COPY --link`) stands on its first input too: the solver stacks
/// the other inputs' layers on top of that input's chain. `None` for `FROM scratch`.
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
            Op::Source(_) => return None,
            Op::Exec(_) | Op::File(_) | Op::Merge(_) => cur = def.vertex(cur.inputs().first()?)?,
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
    snapshots: &LayerSnapshotter,
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
        let mut rec = layer_of(store, snapshots, s, opts)?;
        match owner.get(s.as_str()) {
            Some(&i) => {
                // A step that makes a layer keeps it even when it changed nothing: BuildKit
                // writes the empty layer (RUN true, WORKDIR of an existing directory, a COPY
                // whose wildcard matched nothing) and its history entry is not empty_layer.
                if rec.is_none() {
                    rec = Some(write_layer(store, &[], opts)?);
                }
                with_layer.insert(i);
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
        author: output.author.clone().or(author),
        config: Some(output.config.clone()),
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
        let c = xbuild_cache::oci::chain_id(chain_id.as_ref(), &l.record.diff_id);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use xbuild_llb::{ExecOp, HistoryEntry, ImageConfig, NetworkMode, Security};

    fn run(def: &mut Definition, input: &Digest, cmd: &str) -> Digest {
        def.add(
            Op::Exec(ExecOp {
                args: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
                env: vec![],
                cwd: "/".into(),
                user: String::new(),
                network: NetworkMode::None,
                security: Security::Sandbox,
                mounts: vec![],
            }),
            vec![input.clone()],
        )
        .unwrap()
    }

    fn layer(vertex: &Digest, by: &str) -> HistoryEntry {
        HistoryEntry {
            created_by: by.into(),
            comment: Some("buildkit.dockerfile.v0".into()),
            vertex: Some(vertex.clone()),
            ..HistoryEntry::default()
        }
    }

    fn meta(by: &str) -> HistoryEntry {
        HistoryEntry {
            created_by: by.into(),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: true,
            ..HistoryEntry::default()
        }
    }

    fn full_config() -> ImageConfig {
        ImageConfig {
            user: "app".into(),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["run".into()]),
            args_escaped: true,
            working_dir: "/srv".into(),
            labels: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
            exposed_ports: BTreeSet::from(["80/tcp".into(), "53/udp".into()]),
            volumes: BTreeSet::from(["/data".into()]),
            stop_signal: Some("SIGTERM".into()),
            healthcheck: Some(xbuild_llb::Healthcheck {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval: Some(5_000_000_000),
                retries: Some(2),
                ..Default::default()
            }),
            on_build: vec!["RUN echo child".into()],
            shell: Some(vec!["/bin/bash".into(), "-c".into()]),
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        snaps: LayerSnapshotter,
        def: Definition,
        output: Output,
        steps: HashMap<Digest, StepResult>,
    }

    /// scratch → RUN (writes a file) → LABEL → RUN (changes nothing).
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let snaps = LayerSnapshotter::new(dir.path()).unwrap();
        let mut def = Definition::new();
        let scratch = def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap();
        let first = run(&mut def, &scratch, "echo hi > /f");
        let second = run(&mut def, &first, "true");
        let a = snaps.prepare(None).unwrap();
        std::fs::write(a.upper().join("f"), "hi\n").unwrap();
        let a = snaps.commit(a).unwrap();
        let b = snaps.commit(snaps.prepare(Some(&a)).unwrap()).unwrap();
        let output = Output {
            name: "default".into(),
            vertex: second.clone(),
            config: full_config(),
            history: vec![
                layer(&first, "RUN /bin/sh -c echo hi > /f # buildkit"),
                meta("LABEL a=1 b=2"),
                layer(&second, "RUN /bin/sh -c true # buildkit"),
                meta("CMD [\"run\"]"),
            ],
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            author: None,
        };
        let at = |snapshot: Option<String>, t: &str| StepResult {
            snapshot,
            created: t.into(),
        };
        let steps = HashMap::from([
            (scratch, at(None, "2026-01-01T00:00:01Z")),
            (first, at(Some(a), "2026-01-01T00:00:02Z")),
            (second, at(Some(b), "2026-01-01T00:00:03Z")),
        ]);
        Fixture {
            _dir: dir,
            store,
            snaps,
            def,
            output,
            steps,
        }
    }

    fn build(f: &Fixture, opts: ExportOptions) -> BuiltImage {
        build_image(&f.store, &f.snaps, &f.def, &f.output, &f.steps, opts).unwrap()
    }

    #[test]
    fn config_history_and_layers_as_buildkit_writes_them() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let f = fixture();
        let img = build(&f, ExportOptions::default());
        let c = &img.config_file;
        assert_eq!(
            c.rootfs.diff_ids.len(),
            2,
            "the no-change RUN makes an empty layer, as BuildKit does"
        );
        assert_eq!(
            c.rootfs.diff_ids[1].as_str(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
            "the empty layer is the empty tar"
        );
        let empty: Vec<bool> = c.history.iter().map(|h| h.empty_layer).collect();
        assert_eq!(empty, [false, true, false, true]);
        let created: Vec<&str> = c
            .history
            .iter()
            .map(|h| h.created.as_deref().unwrap())
            .collect();
        assert_eq!(
            created,
            [
                "2026-01-01T00:00:02Z",
                "2026-01-01T00:00:03Z",
                "2026-01-01T00:00:03Z",
                "2026-01-01T00:00:03Z"
            ],
            "BuildKit fills a metadata entry with the first new layer time after it"
        );
        assert_eq!(c.created.as_deref(), Some("2026-01-01T00:00:03Z"));
        let json = String::from_utf8(f.store.read_blob(&img.config.digest).unwrap()).unwrap();
        let order = [
            "\"User\"",
            "\"ExposedPorts\"",
            "\"Env\"",
            "\"Entrypoint\"",
            "\"Cmd\"",
            "\"Volumes\"",
            "\"WorkingDir\"",
            "\"Labels\"",
            "\"StopSignal\"",
            "\"Healthcheck\"",
            "\"ArgsEscaped\"",
            "\"OnBuild\"",
            "\"Shell\"",
        ];
        let at: Vec<usize> = order.iter().map(|k| json.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "field order: {json}");
        assert!(
            json.starts_with("{\"architecture\":\"amd64\",\"config\":"),
            "{json}"
        );
        assert!(json.contains("\"ExposedPorts\":{\"53/udp\":{},\"80/tcp\":{}}"));
        assert!(json.contains("\"Labels\":{\"a\":\"1\",\"b\":\"2\"}"));
        assert!(json.contains("\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":5000000000,\"Retries\":2}"));
        // The manifest names the config and both layers; the store knows the layer's chain.
        let (m, _) = load_image(&f.store, &img.manifest.digest).unwrap();
        assert_eq!(m.config.digest, img.config.digest);
        assert_eq!(m.layers.len(), 2);
        assert!(f.store.get_chain(&c.rootfs.diff_ids[0]).unwrap().is_some());
        // Back to the frontend's config, nothing is lost.
        assert_eq!(c.config.as_ref(), Some(&full_config()));
    }

    #[test]
    fn epoch_clamps_times_and_gives_the_same_digest() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let f = fixture();
        let opts = ExportOptions {
            compression: crate::Compression::Gzip,
            epoch: Some(0),
        };
        let a = build(&f, opts);
        assert!(
            a.config_file
                .history
                .iter()
                .all(|h| h.created.as_deref() == Some("1970-01-01T00:00:00Z"))
        );
        assert_eq!(
            a.config_file.created.as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        // File times in the layer are clamped too: a later touch changes nothing.
        let snap = f.steps.values().find_map(|s| {
            s.snapshot
                .as_ref()
                .filter(|id| f.snaps.parent(id).unwrap().is_none())
        });
        let file = f.snaps.upper(snap.unwrap()).join("f");
        filetime::set_file_mtime(&file, filetime::FileTime::from_unix_time(1_900_000_000, 0))
            .unwrap();
        let fresh = fixture_like(&f);
        let b = build(&fresh, opts);
        assert_eq!(a.manifest.digest, b.manifest.digest);
        assert_ne!(
            a.manifest.digest,
            build(&f, ExportOptions::default()).manifest.digest
        );
    }

    /// The same build in a new store over the same snapshots (no recorded layers to reuse).
    fn fixture_like(f: &Fixture) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        Fixture {
            _dir: dir,
            store,
            snaps: f.snaps.clone(),
            def: f.def.clone(),
            output: f.output.clone(),
            steps: f.steps.clone(),
        }
    }

    #[test]
    fn base_layers_and_history_are_kept_as_they_are() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let snaps = LayerSnapshotter::new(dir.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_900_000_000);
        h.set_cksum();
        tar.append_data(&mut h, "base.txt", &b"base\n"[..]).unwrap();
        let base = crate::import_rootfs(
            &store,
            tar.into_inner().unwrap().as_slice(),
            "base.tar",
            "linux",
            "amd64",
            "2030-01-01T00:00:00Z",
            crate::Compression::Gzip,
        )
        .unwrap();
        // The base's single layer, unpacked as the solver does for `FROM`.
        let (bm, _) = load_image(&store, &base.manifest.digest).unwrap();
        let blob = std::fs::File::open(store.blob_path(&bm.layers[0].digest)).unwrap();
        let active = snaps.prepare(None).unwrap();
        xbuild_runtime::unpack(crate::decompress(blob).unwrap(), &active.upper()).unwrap();
        let top_base = Some(snaps.commit(active).unwrap());
        let mut def = Definition::new();
        let src = def
            .add(
                Op::Source(SourceOp::Image {
                    reference: "base:1".into(),
                    digest: base.manifest.digest.clone(),
                }),
                vec![],
            )
            .unwrap();
        let step = run(&mut def, &src, "echo own > /own");
        let active = snaps.prepare(top_base.as_deref()).unwrap();
        std::fs::write(active.upper().join("own"), "own\n").unwrap();
        let own = snaps.commit(active).unwrap();
        let output = Output {
            name: "default".into(),
            vertex: step.clone(),
            config: ImageConfig::default(),
            history: vec![
                HistoryEntry {
                    created: Some("2030-01-01T00:00:00Z".into()),
                    comment: Some("Imported from base.tar".into()),
                    ..HistoryEntry::default()
                },
                layer(&step, "RUN /bin/sh -c echo own > /own # buildkit"),
            ],
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            author: None,
        };
        let steps = HashMap::from([
            (
                src,
                StepResult {
                    snapshot: top_base,
                    created: "2031-01-01T00:00:00Z".into(),
                },
            ),
            (
                step,
                StepResult {
                    snapshot: Some(own),
                    created: "2031-01-01T00:00:00Z".into(),
                },
            ),
        ]);
        let img = build_image(
            &store,
            &snaps,
            &def,
            &output,
            &steps,
            ExportOptions {
                compression: crate::Compression::Zstd,
                epoch: Some(100),
            },
        )
        .unwrap();
        let (m, _) = load_image(&store, &img.manifest.digest).unwrap();
        let (bm, bc) = load_image(&store, &base.manifest.digest).unwrap();
        assert_eq!(
            m.layers[0], bm.layers[0],
            "the base layer is reused as it is"
        );
        assert_eq!(img.config_file.rootfs.diff_ids[0], bc.rootfs.diff_ids[0]);
        assert_eq!(
            m.layers[1].media_type,
            crate::Compression::Zstd.media_type()
        );
        let h = &img.config_file.history;
        assert_eq!(
            h[0].created.as_deref(),
            Some("2030-01-01T00:00:00Z"),
            "base kept"
        );
        assert_eq!(
            h[1].created.as_deref(),
            Some("1970-01-01T00:01:40Z"),
            "own clamped"
        );
    }
}
