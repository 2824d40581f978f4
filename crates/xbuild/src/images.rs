//! The local image store as Docker's image commands manage it: `import`, `images`, `tag`,
//! `rmi`, `image prune`, `inspect`, `history`, `export`, `diff`, `save`, `load`.

use std::io::{Read, Write};
use std::path::Path;

use xbuild_cache::Store;
use xbuild_cache::oci::{ImageConfigFile, Manifest};
use xbuild_exporter::ArchiveImage;
use xbuild_runtime::{LayerSnapshotter, Snapshotter};

use crate::outputs::{OutputFile, now_rfc3339};
use crate::{
    ArchiveFormat, Builder, Compression, Digest, Error, FileChange, ImageFilter, ImageSummary,
    Reference, Removed, VerifyReport, io, store,
};

/// One row of `xbuild history`: a history entry of the image, newest first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRow {
    /// The image ID on the newest row, `None` (`<missing>`) on the others.
    pub id: Option<Digest>,
    /// When (RFC 3339).
    pub created: Option<String>,
    /// The instruction.
    pub created_by: String,
    /// The layer's size (file content bytes); 0 for an entry without a layer.
    pub size: u64,
    /// The comment.
    pub comment: String,
    /// True when the entry made no layer.
    pub empty_layer: bool,
}

/// An image as `xbuild inspect` shows it.
#[derive(Clone, Debug)]
pub struct ImageDetails {
    /// The image ID (config digest).
    pub id: Digest,
    /// The manifest digest.
    pub manifest_digest: Digest,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// The manifest.
    pub manifest: Manifest,
    /// The config.
    pub config: ImageConfigFile,
    /// The tags pointing at it.
    pub tags: Vec<String>,
    /// File content bytes of its layers.
    pub size: u64,
    /// When it was recorded in the store (RFC 3339; `None` for an image only tagged in an
    /// older root).
    pub added: Option<String>,
}

/// An image `load` brought in: its ID and the names it was tagged with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Loaded {
    /// The image ID.
    pub id: Digest,
    /// The tags written (none: an untagged image).
    pub names: Vec<String>,
}

impl Builder {
    /// Imports a flat rootfs tar (plain, gzip or zstd; `-`: stdin) as an image, like
    /// `docker import`, tagged `name` if given. With an epoch, that is its creation time.
    pub fn import(
        &self,
        tar: &Path,
        name: Option<&str>,
        epoch: Option<i64>,
    ) -> Result<Digest, Error> {
        let r = name.map(Reference::parse).transpose()?;
        let store = self.store()?;
        let _lease = store.lease()?;
        let input: Box<dyn Read> = if tar.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(tar).map_err(io(tar))?)
        };
        let created = epoch
            .map(xbuild_exporter::rfc3339)
            .unwrap_or_else(now_rfc3339);
        let image = xbuild_exporter::import_rootfs(
            &store,
            input,
            &tar.display().to_string(),
            "linux",
            xbuild_parser::lower::host_architecture(),
            &created,
            Compression::Gzip,
        )?;
        store::record_image(&store, &image.manifest.digest)?;
        if let Some(r) = r {
            store::tag(&store, &r.to_string(), &image.manifest.digest)?;
        }
        Ok(image.config.digest)
    }

    /// Every image of the store: a row per tag and per untagged image, newest first.
    pub fn images(&self) -> Result<Vec<ImageSummary>, Error> {
        store::list(&*self.store()?)
    }

    /// The rows of `images` that `filter` keeps.
    pub fn images_filtered(&self, filter: &ImageFilter) -> Result<Vec<ImageSummary>, Error> {
        let store = self.store()?;
        let when = |name: &Option<String>| -> Result<Option<std::time::SystemTime>, Error> {
            name.as_ref()
                .map(|n| {
                    store::find(&store, n)
                        .map(|f| store::time_of(f.image.config.created.as_deref()))
                })
                .transpose()
        };
        let (before, since) = (when(&filter.before)?, when(&filter.since)?);
        Ok(store::list(&store)?
            .into_iter()
            .filter(|r| filter.keeps(r, before, since))
            .collect())
    }

    /// Points tag `target` at the image `source` names (a tag or an ID).
    pub fn tag(&self, source: &str, target: &str) -> Result<(), Error> {
        let store = self.store()?;
        let found = store::find(&store, source)?;
        store::tag(&store, target, &found.image.manifest)?;
        Ok(())
    }

    /// Removes an image or a tag as `docker rmi` does, then the blobs nothing references.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removed>, Error> {
        let store = self.store()?;
        let out = store::remove(&store, name, force)?;
        store.prune_blobs()?;
        Ok(out)
    }

    /// Checks the content store (`xbuild store verify`): every blob against its digest (corrupt
    /// ones are removed) and every image's manifest, config and layers.
    pub fn verify_store(&self) -> Result<VerifyReport, Error> {
        Ok(self.store()?.verify()?)
    }

    /// Removes untagged images (`all`: every image) and the blobs nothing references; returns
    /// what was removed and the bytes reclaimed.
    pub fn prune(&self, all: bool) -> Result<(Vec<Removed>, u64), Error> {
        store::prune(&*self.store()?, all)
    }

    /// An image's manifest, config and tags; [`ImageDetails::docker`] shapes them as
    /// `docker image inspect` does.
    pub fn inspect(&self, name: &str) -> Result<ImageDetails, Error> {
        let store = self.store()?;
        let img = store::find(&store, name)?.image;
        let size = store::layer_sizes(&store, &img).iter().sum();
        Ok(ImageDetails {
            id: img.id().clone(),
            manifest_size: store.blob_size(&img.manifest)?,
            added: store.get_image(&img.manifest)?.map(|r| r.added),
            manifest_digest: img.manifest.clone(),
            tags: img.tags.iter().map(|t| t.to_string()).collect(),
            manifest: img.doc,
            config: img.config,
            size,
        })
    }

    /// An image's history, newest first, with each layer's size.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryRow>, Error> {
        let store = self.store()?;
        let img = store::find(&store, name)?.image;
        let mut sizes = store::layer_sizes(&store, &img).into_iter();
        let mut rows: Vec<HistoryRow> = img
            .config
            .history
            .iter()
            .map(|h| HistoryRow {
                id: None,
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                size: if h.empty_layer {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                },
                comment: h.comment.clone().unwrap_or_default(),
                empty_layer: h.empty_layer,
            })
            .collect();
        rows.reverse();
        if let Some(first) = rows.first_mut() {
            first.id = Some(img.id().clone());
        }
        Ok(rows)
    }

    /// The top snapshot of an image's filesystem, unpacking what is not unpacked yet.
    fn unpacked(
        &self,
        store: &Store,
        snapshots: &LayerSnapshotter,
        name: &str,
    ) -> Result<Option<String>, Error> {
        let img = store::find(store, name)?.image;
        Ok(xbuild_solver::unpack_image(
            store,
            snapshots,
            &img.manifest,
        )?)
    }

    /// Writes an image's flattened filesystem as a tar.
    pub fn export(&self, name: &str, out: impl Write) -> Result<(), Error> {
        let store = self.store()?;
        let snapshots = self.snapshots()?;
        let top = self.unpacked(&store, &snapshots, name)?;
        xbuild_exporter::export_tar(&snapshots, top.as_deref(), out, None)?;
        Ok(())
    }

    /// Writes an image's flattened filesystem as a tar to `dest` (`-`: stdout), through a
    /// `.partial` file renamed into place when it is complete.
    pub fn export_to(&self, name: &str, dest: &Path) -> Result<(), Error> {
        let mut out = OutputFile::create(dest)?;
        self.export(name, &mut out.w)?;
        out.finish()
    }

    /// The changes from image `a`'s filesystem to image `b`'s, as `docker diff` lists them.
    pub fn diff(&self, a: &str, b: &str) -> Result<Vec<FileChange>, Error> {
        let store = self.store()?;
        let snapshots = self.snapshots()?;
        let top_a = self.unpacked(&store, &snapshots, a)?;
        let top_b = self.unpacked(&store, &snapshots, b)?;
        let view_a = snapshots.view(top_a.as_deref())?;
        let view_b = snapshots.view(top_b.as_deref())?;
        Ok(xbuild_exporter::diff_trees(view_a.path(), view_b.path())?)
    }

    /// Writes images as one archive (`docker save`): named by the tags they were given by,
    /// unnamed when given by ID.
    pub fn save(&self, names: &[String], format: ArchiveFormat, dest: &Path) -> Result<(), Error> {
        let store = self.store()?;
        let _lease = store.lease()?;
        let mut images: Vec<ArchiveImage> = Vec::new();
        for n in names {
            let found = store::find(&store, n)?;
            let d = xbuild_cache::oci::Descriptor {
                media_type: found
                    .image
                    .doc
                    .media_type
                    .clone()
                    .unwrap_or_else(|| xbuild_cache::oci::MEDIA_MANIFEST.into()),
                size: store.blob_size(&found.image.manifest)?,
                digest: found.image.manifest.clone(),
                annotations: None,
                platform: None,
            };
            let tag = found.by_tag.map(|t| t.to_string());
            match images.iter_mut().find(|i| i.manifest.digest == d.digest) {
                Some(i) => i.names.extend(tag),
                None => images.push(ArchiveImage {
                    manifest: d,
                    names: tag.into_iter().collect(),
                }),
            }
        }
        let mut out = OutputFile::create(dest)?;
        xbuild_exporter::write_archive(&store, &images, format, None, &mut out.w)?;
        out.finish()
    }

    /// Reads the images of a docker-archive or OCI layout (a tar file, `-` for stdin, or a
    /// layout directory) into the store and tags them with the names it carries.
    pub fn load(&self, input: &Path) -> Result<Vec<Loaded>, Error> {
        let store = self.store()?;
        let _lease = store.lease()?;
        let platform = ("linux", xbuild_parser::lower::host_architecture());
        let loaded = if input.as_os_str() == "-" {
            xbuild_exporter::load_archive(&store, "<stdin>", std::io::stdin().lock(), platform)?
        } else if input.is_dir() {
            xbuild_exporter::load_oci_dir(&store, input, platform)?
        } else {
            let f = std::fs::File::open(input).map_err(io(input))?;
            xbuild_exporter::load_archive(
                &store,
                &input.display().to_string(),
                std::io::BufReader::with_capacity(1 << 20, f),
                platform,
            )?
        };
        let mut out = Vec::new();
        for img in loaded {
            store::record_image(&store, &img.manifest.digest)?;
            let mut names = Vec::new();
            for n in &img.names {
                names.push(store::tag(&store, n, &img.manifest.digest)?.to_string());
            }
            out.push(Loaded {
                id: img.config,
                names,
            });
        }
        Ok(out)
    }
}
