//! Where a build's result goes: [`OutputSpec`] (`--output`), and writing a solved build's
//! outputs (images, OCI layouts, docker-archives, directories, tars), pushes and cache exports.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use xbuild_cache::Store;
use xbuild_cache::memo::ExportRecord;
use xbuild_cache::oci::Manifest;
use xbuild_exporter::{ArchiveImage, BuiltImage, ExportOptions, StepResult};
use xbuild_runtime::LayerSnapshotter;

use crate::builder::cancellable;
use crate::{
    ArchiveFormat, BuildOptions, BuildResult, Builder, CacheExported, CacheMode, CacheSpec,
    Compression, Conflict, Definition, Digest, Error, InternalError, OutputError, Reference,
    Timings, cache_export, cache_import, io, store,
};

/// Where a build's result goes (`docker build --output` / BuildKit's exporters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    /// Into the local image store, tagged with the build's tags and `names`; with `push`, also
    /// pushed to the registries those names point at (`type=registry` is `push=true`).
    Image {
        /// Extra names (`name=`, repeatable).
        names: Vec<String>,
        /// Layer compression (default: the build's).
        compression: Option<Compression>,
        /// Push the names (`push=true`).
        push: bool,
    },
    /// An OCI image layout: a directory, or a tar (`.tar` path, `tar=true`, or `-`: stdout).
    Oci {
        /// Where.
        dest: PathBuf,
        /// A directory rather than a tar.
        dir: bool,
        /// Names (`name=`, repeatable; default: the build's tags).
        names: Vec<String>,
        /// Layer compression (default: the build's).
        compression: Option<Compression>,
    },
    /// A docker-archive `docker load` accepts (`-`: stdout).
    Docker {
        /// Where.
        dest: PathBuf,
        /// Names (`name=`, repeatable; default: the build's tags).
        names: Vec<String>,
        /// Layer compression (default: the build's).
        compression: Option<Compression>,
    },
    /// The final filesystem written into a directory.
    Local {
        /// Where.
        dest: PathBuf,
    },
    /// The final filesystem as a tar (`-`: stdout).
    Tar {
        /// Where.
        dest: PathBuf,
    },
}

impl OutputSpec {
    /// Parses `docker build --output` syntax: `type=image`, `type=oci,dest=DIR|FILE.tar`,
    /// `type=docker,dest=FILE.tar[,name=REF]`, `type=local,dest=DIR`, `type=tar,dest=FILE`,
    /// each with `compression=gzip|zstd|uncompressed` where layers are written. A bare path
    /// means `type=local,dest=PATH`, as in Docker.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        if !spec.contains('=') {
            return Ok(match spec {
                "-" => OutputSpec::Tar { dest: "-".into() },
                _ => OutputSpec::Local { dest: spec.into() },
            });
        }
        let bad = |problem: OutputError| Error::Output {
            spec: spec.to_string(),
            problem,
        };
        let mut kv = BTreeMap::new();
        let mut names: Vec<String> = Vec::new();
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad(OutputError::NotKeyValue))?;
            if k.trim() == "name" {
                names.push(v.trim().to_string());
            } else {
                kv.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let typ = kv
            .remove("type")
            .ok_or_else(|| bad(OutputError::MissingType))?;
        let dest = kv.remove("dest").map(PathBuf::from);
        let need_dest = |d: Option<PathBuf>| {
            d.ok_or_else(|| bad(OutputError::MissingDest { kind: typ.clone() }))
        };
        for n in &names {
            Reference::parse(n).map_err(|e| bad(OutputError::Name(e)))?;
        }
        let compression = kv
            .remove("compression")
            .map(|c| Compression::parse(&c).map_err(|_| bad(OutputError::Compression(c))))
            .transpose()?;
        let tar = kv.remove("tar").map(|t| t != "false");
        let push = match kv.remove("push").as_deref() {
            None | Some("false") => typ == "registry",
            Some("true") => true,
            Some(other) => return Err(bad(OutputError::Push(other.to_string()))),
        };
        for ignored in ["oci-mediatypes", "force-compression", "compression-level"] {
            kv.remove(ignored);
        }
        if let Some(k) = kv.keys().next() {
            return Err(bad(OutputError::UnknownKey {
                key: k.clone(),
                kind: typ.clone(),
            }));
        }
        let layered = matches!(typ.as_str(), "image" | "registry" | "oci" | "docker");
        if compression.is_some() && !layered {
            return Err(bad(OutputError::CompressionWithoutLayers {
                kind: typ.clone(),
            }));
        }
        match typ.as_str() {
            "image" | "registry" => Ok(OutputSpec::Image {
                names,
                compression,
                push,
            }),
            "oci" => {
                let dest = need_dest(dest)?;
                let is_tar = tar.unwrap_or_else(|| {
                    dest.as_os_str() == "-" || dest.extension().is_some_and(|e| e == "tar")
                });
                Ok(OutputSpec::Oci {
                    dest,
                    dir: !is_tar,
                    names,
                    compression,
                })
            }
            "docker" => Ok(OutputSpec::Docker {
                dest: need_dest(dest)?,
                names,
                compression,
            }),
            "local" => Ok(OutputSpec::Local {
                dest: need_dest(dest)?,
            }),
            "tar" => Ok(OutputSpec::Tar {
                dest: need_dest(dest)?,
            }),
            other => Err(bad(OutputError::UnknownType(other.to_string()))),
        }
    }

    fn compression(&self) -> Option<Option<Compression>> {
        match self {
            OutputSpec::Image { compression, .. }
            | OutputSpec::Oci { compression, .. }
            | OutputSpec::Docker { compression, .. } => Some(*compression),
            OutputSpec::Local { .. } | OutputSpec::Tar { .. } => None,
        }
    }
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Opens `path` for writing through a `.partial` file, or stdout for `-`; `finish` renames.
pub(crate) struct OutputFile {
    dest: PathBuf,
    tmp: Option<PathBuf>,
    pub(crate) w: Box<dyn Write>,
}

impl OutputFile {
    pub(crate) fn create(dest: &Path) -> Result<Self, Error> {
        if dest.as_os_str() == "-" {
            return Ok(OutputFile {
                dest: dest.to_path_buf(),
                tmp: None,
                w: Box::new(std::io::stdout().lock()),
            });
        }
        let tmp = xbuild_exporter::partial(dest);
        let f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        Ok(OutputFile {
            dest: dest.to_path_buf(),
            tmp: Some(tmp),
            w: Box::new(std::io::BufWriter::with_capacity(1 << 20, f)),
        })
    }

    pub(crate) fn finish(mut self) -> Result<(), Error> {
        self.w.flush().map_err(io(&self.dest))?;
        drop(std::mem::replace(&mut self.w, Box::new(std::io::sink())));
        if let Some(tmp) = self.tmp.take() {
            std::fs::rename(&tmp, &self.dest).map_err(io(&self.dest))?;
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl Builder {
    /// Writes the outputs of `output` and pushes what they ask to push.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn export_steps(
        &self,
        store: Arc<Store>,
        snapshots: LayerSnapshotter,
        def: Arc<Definition>,
        output: xbuild_llb::Output,
        steps: HashMap<Digest, StepResult>,
        results: HashMap<Digest, xbuild_solver::VertexResult>,
        top: Option<String>,
        opts: &BuildOptions,
    ) -> Result<BuildResult, Error> {
        if opts.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let started = Instant::now();
        let outputs = if opts.outputs.is_empty() {
            vec![OutputSpec::Image {
                names: vec![],
                compression: None,
                push: false,
            }]
        } else {
            opts.outputs.clone()
        };
        let epoch = opts.source_date_epoch;
        let default = opts.compression;
        let tags = opts.tags.clone();
        let push_names: Vec<String> = if opts.push {
            opts.tags.clone()
        } else {
            Vec::new()
        };
        let push_names: Vec<String> = push_names
            .into_iter()
            .chain(outputs.iter().flat_map(|o| match o {
                OutputSpec::Image {
                    names, push: true, ..
                } => opts.tags.iter().chain(names).cloned().collect(),
                _ => Vec::new(),
            }))
            .collect();
        let export_store = store.clone();
        let output_vertex = output.vertex.clone();
        let export_def = def.clone();
        let export_snapshots = snapshots.clone();
        let (image, tags) = tokio::task::spawn_blocking(move || {
            export_outputs(
                &export_store,
                &export_snapshots,
                &export_def,
                &output,
                &steps,
                top,
                &outputs,
                &tags,
                default,
                epoch,
            )
        })
        .await
        .map_err(|source| InternalError::Task {
            what: "export",
            source,
        })??;
        let exported = started.elapsed();
        let solution = Arc::new(SolvedBuild {
            store: store.clone(),
            snapshots,
            def,
            results,
            output: output_vertex,
        });
        let mut cache_exports = Vec::new();
        let mut pushed = Vec::new();
        if !push_names.is_empty() || opts.push {
            let Some(img) = &image else {
                return Err(Conflict::PushWithoutImageOutput.into());
            };
            if push_names.is_empty() {
                return Err(Conflict::PushWithoutName.into());
            }
            let mut manifest = img.manifest.digest.clone();
            if opts.cache_to.contains(&CacheSpec::Inline) {
                let (m, records) = with_inline_cache(&solution, &manifest).await?;
                if records > 0 {
                    cache_exports.push(CacheExported {
                        target: "inline".into(),
                        index: m.clone(),
                        records,
                        uploaded: 0,
                    });
                }
                manifest = m;
            }
            let mut seen = std::collections::BTreeSet::new();
            for t in push_names.iter().filter(|t| seen.insert(t.as_str())) {
                let p = cancellable(&opts.cancel, self.push_manifest(&store, &manifest, t)).await?;
                pushed.push(p);
            }
        } else if opts.cache_to.contains(&CacheSpec::Inline) {
            tracing::warn!(
                "--cache-to type=inline: the cache is embedded only in a pushed image (use --push or --output type=registry); no inline cache was written"
            );
        }
        for spec in &opts.cache_to {
            if let Some(e) = cancellable(&opts.cancel, self.export_cache(&solution, spec)).await? {
                cache_exports.push(e);
            }
        }
        Ok(BuildResult {
            image_id: image.as_ref().map(|i| i.config.digest.clone()),
            config: image.as_ref().map(|i| i.config_file.clone()),
            manifest: image.as_ref().map(|i| i.manifest.digest.clone()),
            manifest_descriptor: image.map(|i| i.manifest),
            tags,
            pushed,
            cache_exports,
            timings: Timings {
                export: exported,
                push: started.elapsed() - exported,
                ..Timings::default()
            },
            ..BuildResult::default()
        })
    }

    /// Exports the cache of a solved build as `spec` says (not `type=inline`, which goes into
    /// the pushed image); `None` when there was nothing to export.
    async fn export_cache(
        &self,
        solution: &Arc<SolvedBuild>,
        spec: &CacheSpec,
    ) -> Result<Option<CacheExported>, Error> {
        let target = match spec {
            CacheSpec::Inline => return Ok(None),
            CacheSpec::Registry { reference, .. } => reference.clone(),
            CacheSpec::Local { dir, .. } => dir.display().to_string(),
        };
        let (mode, mounts) = (spec.mode(), spec.export_mounts());
        let s = solution.clone();
        let cache =
            tokio::task::spawn_blocking(move || cache_export::collect(&s.view(), mode, mounts))
                .await
                .map_err(|source| InternalError::Task {
                    what: "cache export",
                    source,
                })??;
        let Some(cache) = cache else {
            tracing::warn!(%target, "--cache-to: the build produced no cache to export");
            return Ok(None);
        };
        let uploaded = match spec {
            CacheSpec::Registry { reference, .. } => {
                let r = xbuild_registry::parse_reference(reference)?;
                cache_export::push(&self.registry()?, &solution.store, &cache, &r).await?
            }
            CacheSpec::Local { dir, .. } => {
                let (s, dir) = (solution.clone(), dir.clone());
                let c = std::sync::Arc::new(cache);
                let c2 = c.clone();
                tokio::task::spawn_blocking(move || cache_export::write_local(&s.store, &c2, &dir))
                    .await
                    .map_err(|source| InternalError::Task {
                        what: "cache export",
                        source,
                    })??;
                return Ok(Some(CacheExported {
                    target,
                    index: c.index.digest.clone(),
                    records: c.records,
                    uploaded: 0,
                }));
            }
            CacheSpec::Inline => 0,
        };
        tracing::info!(%target, records = cache.records, uploaded, "cache exported");
        Ok(Some(CacheExported {
            target,
            index: cache.index.digest,
            records: cache.records,
            uploaded,
        }))
    }
}

/// A solved build kept for exporting its cache.
struct SolvedBuild {
    store: Arc<Store>,
    snapshots: LayerSnapshotter,
    def: Arc<Definition>,
    results: HashMap<Digest, xbuild_solver::VertexResult>,
    output: Digest,
}

impl SolvedBuild {
    fn view(&self) -> cache_export::Solution<'_> {
        cache_export::Solution {
            store: &self.store,
            snapshots: &self.snapshots,
            def: &self.def,
            results: &self.results,
            output: &self.output,
        }
    }
}

/// The image `manifest` with the build's inline cache (`moby.buildkit.cache.v0`, mode=min) in
/// its config, stored; and how many records it carries (0: the image is returned as it is).
async fn with_inline_cache(
    solution: &Arc<SolvedBuild>,
    manifest: &Digest,
) -> Result<(Digest, usize), Error> {
    let (s, manifest) = (solution.clone(), manifest.clone());
    tokio::task::spawn_blocking(move || {
        let Some(cache) = cache_export::collect(&s.view(), CacheMode::Min, false)? else {
            return Ok((manifest, 0));
        };
        let config: xbuild_cache::cacheconfig::CacheConfig =
            s.store.read_json(&cache.config.digest)?;
        let m: Manifest = s.store.read_json(&manifest)?;
        let layers: Vec<Digest> = m.layers.iter().map(|l| l.digest.clone()).collect();
        let Some((value, records)) = cache_import::inline_value(&config, &layers) else {
            tracing::warn!("--cache-to type=inline: no step's result matches the image's layers");
            return Ok((manifest, 0));
        };
        cache_export::embed_inline(&s.store, &m, &value).map(|d| (d, records))
    })
    .await
    .map_err(|source| InternalError::Task {
        what: "cache export",
        source,
    })?
}

/// A digest of everything an exported image is made from: its output (config, history,
/// platform), its top snapshot (whose chain gives the layers), the result and time of every
/// step its history names, the compression and the epoch.
fn export_key(
    output: &xbuild_llb::Output,
    top: Option<&str>,
    steps: &HashMap<Digest, StepResult>,
    compression: Compression,
    epoch: Option<i64>,
) -> Digest {
    let mut b = xbuild_llb::DigestBuilder::new("xbuild-export-v2");
    b.part(&serde_json::to_vec(output).unwrap_or_default());
    b.part(top.unwrap_or("").as_bytes());
    for d in output.history.iter().filter_map(|h| h.vertex.as_ref()) {
        b.part(d.as_str().as_bytes());
        if let Some(s) = steps.get(d) {
            b.part(s.snapshot.as_deref().unwrap_or("").as_bytes());
            b.part(s.created.as_bytes());
        }
    }
    b.part(format!("{compression:?}").as_bytes());
    b.part(format!("{epoch:?}").as_bytes());
    b.finish()
}

/// Writes a build's outputs; returns the image (if one was made) and the tags written.
#[allow(clippy::too_many_arguments)]
fn export_outputs(
    store: &Store,
    snapshots: &LayerSnapshotter,
    def: &Definition,
    output: &xbuild_llb::Output,
    steps: &HashMap<Digest, StepResult>,
    top: Option<String>,
    outputs: &[OutputSpec],
    tags: &[String],
    default: Compression,
    epoch: Option<i64>,
) -> Result<(Option<BuiltImage>, Vec<String>), Error> {
    let _lease = store.lease()?;
    let mut images: BTreeMap<Compression, BuiltImage> = BTreeMap::new();
    let mut first: Option<BuiltImage> = None;
    for o in outputs {
        let Some(c) = o.compression() else { continue };
        let c = c.unwrap_or(default);
        if let std::collections::btree_map::Entry::Vacant(slot) = images.entry(c) {
            // An image made from exactly the same results and metadata was written already:
            // reuse it rather than re-reading snapshots and re-writing blobs.
            let memo = export_key(output, top.as_deref(), steps, c, epoch);
            let img = match store.get_export(&memo)? {
                Some(rec) if store.has_blob(&rec.manifest.digest) => BuiltImage {
                    config_file: store.read_json(&rec.config.digest)?,
                    manifest: rec.manifest,
                    config: rec.config,
                },
                _ => {
                    let img = xbuild_exporter::build_image(
                        store,
                        snapshots,
                        def,
                        output,
                        steps,
                        ExportOptions {
                            compression: c,
                            epoch,
                        },
                    )?;
                    store.put_export(
                        &memo,
                        &ExportRecord {
                            manifest: img.manifest.clone(),
                            config: img.config.clone(),
                        },
                    )?;
                    img
                }
            };
            first.get_or_insert_with(|| img.clone());
            slot.insert(img);
        }
    }
    let created = epoch
        .map(xbuild_exporter::rfc3339)
        .unwrap_or_else(now_rfc3339);
    let mut written = Vec::new();
    let image_of = |c: &Option<Compression>| -> Result<&BuiltImage, Error> {
        images
            .get(&c.unwrap_or(default))
            .ok_or_else(|| InternalError::ImageNotBuilt.into())
    };
    let names_or_tags = |names: &[String]| -> Vec<String> {
        if names.is_empty() {
            tags.to_vec()
        } else {
            names.to_vec()
        }
    };
    for o in outputs {
        match o {
            OutputSpec::Image {
                names, compression, ..
            } => {
                let img = image_of(compression)?;
                store::record_image(store, &img.manifest.digest)?;
                for t in tags.iter().chain(names) {
                    written.push(store::tag(store, t, &img.manifest.digest)?.to_string());
                }
            }
            OutputSpec::Oci {
                dest,
                dir,
                names,
                compression,
            } => {
                let img = image_of(compression)?;
                let archive = [ArchiveImage {
                    manifest: img.manifest.clone(),
                    names: names_or_tags(names),
                }];
                if *dir {
                    xbuild_exporter::write_oci_dir(store, &archive, Some(&created), dest)?;
                } else {
                    let mut out = OutputFile::create(dest)?;
                    xbuild_exporter::write_archive(
                        store,
                        &archive,
                        ArchiveFormat::Oci,
                        Some(&created),
                        &mut out.w,
                    )?;
                    out.finish()?;
                }
            }
            OutputSpec::Docker {
                dest,
                names,
                compression,
            } => {
                let img = image_of(compression)?;
                if compression.unwrap_or(default) == Compression::Zstd {
                    tracing::warn!(
                        dest = %dest.display(),
                        "a docker-archive with zstd layers needs Docker 23 or later to load"
                    );
                }
                let archive = [ArchiveImage {
                    manifest: img.manifest.clone(),
                    names: names_or_tags(names),
                }];
                let mut out = OutputFile::create(dest)?;
                xbuild_exporter::write_archive(
                    store,
                    &archive,
                    ArchiveFormat::Docker,
                    Some(&created),
                    &mut out.w,
                )?;
                out.finish()?;
            }
            OutputSpec::Local { dest } => {
                xbuild_exporter::export_local(snapshots, top.as_deref(), dest, epoch)?;
            }
            OutputSpec::Tar { dest } => {
                let mut out = OutputFile::create(dest)?;
                xbuild_exporter::export_tar(snapshots, top.as_deref(), &mut out.w, epoch)?;
                out.finish()?;
            }
        }
    }
    Ok((first, written))
}

impl BuildResult {
    /// The build's result as buildx writes `--metadata-file`: the image's manifest digest
    /// (`containerimage.digest`) and descriptor (`containerimage.descriptor`), its config
    /// digest (`containerimage.config.digest`) and its names spelled out, comma-separated
    /// (`image.name`: `app` is `docker.io/library/app:latest`).
    pub fn metadata(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(d) = &self.manifest_descriptor {
            m.insert("containerimage.digest".into(), d.digest.as_str().into());
            if let Ok(descriptor) = serde_json::to_value(d) {
                m.insert("containerimage.descriptor".into(), descriptor);
            }
        }
        if let Some(id) = &self.image_id {
            m.insert("containerimage.config.digest".into(), id.as_str().into());
        }
        if !self.tags.is_empty() {
            let names: Vec<String> = self.tags.iter().map(|t| full_name(t)).collect();
            m.insert("image.name".into(), names.join(",").into());
        }
        serde_json::Value::Object(m)
    }

    /// Writes [`metadata`](Self::metadata) as pretty JSON to `path`, through a `.partial`
    /// file renamed into place.
    pub fn write_metadata(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(&self.metadata()).unwrap_or_default();
        let tmp = xbuild_exporter::partial(path);
        std::fs::write(&tmp, text + "\n").map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }
}

/// A tag as buildx reports it: registry, repository and tag spelled out
/// (`app` → `docker.io/library/app:latest`).
fn full_name(tag: &str) -> String {
    xbuild_registry::parse_reference(tag).map_or_else(|_| tag.to_string(), |r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(spec: &str) -> OutputError {
        match OutputSpec::parse(spec) {
            Err(Error::Output { spec: s, problem }) if s == spec => problem,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn bad_specs_are_typed_usage_errors() {
        assert_eq!(problem("type=foo"), OutputError::UnknownType("foo".into()));
        assert_eq!(problem("type=oci,dest"), OutputError::NotKeyValue);
        assert_eq!(problem("dest=x"), OutputError::MissingType);
        assert_eq!(
            problem("type=tar"),
            OutputError::MissingDest { kind: "tar".into() }
        );
        assert_eq!(
            problem("type=local,dest=x,colour=red"),
            OutputError::UnknownKey {
                key: "colour".into(),
                kind: "local".into()
            }
        );
        assert_eq!(
            problem("type=image,push=maybe"),
            OutputError::Push("maybe".into())
        );
        assert_eq!(
            problem("type=image,compression=lz4"),
            OutputError::Compression("lz4".into())
        );
        assert_eq!(
            problem("type=local,dest=x,compression=gzip"),
            OutputError::CompressionWithoutLayers {
                kind: "local".into()
            }
        );
        assert!(matches!(
            problem("type=image,name=Bad Name"),
            OutputError::Name(e) if e.name() == "Bad Name"
        ));
        let err = OutputSpec::parse("type=foo").unwrap_err();
        assert!(err.is_usage());
        assert_eq!(
            err.to_string(),
            "output spec \"type=foo\": unknown type \"foo\"; expected one of image, registry, oci, docker, local, tar"
        );
    }
}
