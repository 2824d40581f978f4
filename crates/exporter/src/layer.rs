//! Snapshot diffs to compressed layer blobs, hashed while streaming.

use flate2::write::GzEncoder;
use std::io::Write;

use xbuild_cache::oci::{MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR};
use xbuild_cache::{LayerRecord, Store};
use xbuild_runtime::Snapshotter;
use xbuild_runtime::diff::{Change, changes};

use crate::Error;
use crate::hashing::HashingWriter;
use crate::tarball::TarWriter;

/// How layers are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// gzip (the default, what every tool reads).
    #[default]
    Gzip,
    /// No compression.
    Uncompressed,
}

impl Compression {
    /// The layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_LAYER_GZIP,
            Compression::Uncompressed => MEDIA_LAYER_TAR,
        }
    }
}

/// Writes `changes` as a layer blob: tar → sha256 (diff_id) → compression → sha256 (digest),
/// in one pass with nothing held in memory but buffers.
pub fn write_layer(
    store: &Store,
    changes: &[Change],
    compression: Compression,
) -> Result<LayerRecord, Error> {
    let blob = store.blob_writer()?;
    let (diff_id, blob) = match compression {
        Compression::Gzip => {
            let gz = GzEncoder::new(blob, flate2::Compression::default());
            let (diff_id, gz) = write_tar(changes, gz)?;
            let blob = gz
                .finish()
                .map_err(|e| Error::io(std::path::Path::new("<gzip>"), e))?;
            (diff_id, blob)
        }
        Compression::Uncompressed => write_tar(changes, blob)?,
    };
    let size = blob.size();
    let digest = blob.commit(None)?;
    Ok(LayerRecord {
        media_type: compression.media_type().to_string(),
        digest,
        diff_id,
        size,
    })
}

fn write_tar<W: Write>(changes: &[Change], w: W) -> Result<(xbuild_llb::Digest, W), Error> {
    let mut tw = TarWriter::new(HashingWriter::new(w));
    for c in changes {
        match c {
            Change::Delete { path } => tw.append_whiteout(path)?,
            Change::Upsert { path, host, opaque } => {
                tw.append_path(path, host)?;
                if *opaque {
                    tw.append_opaque(path)?;
                }
            }
        }
    }
    let (diff_id, _, inner) = tw.finish()?.finish();
    Ok((diff_id, inner))
}

/// The layer of a committed snapshot: the recorded one (an unpacked image layer or an earlier
/// export), else its diff written now and recorded. `None` when the snapshot changed nothing.
pub fn layer_of(
    store: &Store,
    snapshots: &Snapshotter,
    snapshot: &str,
    compression: Compression,
) -> Result<Option<LayerRecord>, Error> {
    if let Some(rec) = store.get_layer(snapshot)?
        && store.has_blob(&rec.digest)
    {
        return Ok(Some(rec));
    }
    let diff = changes(&snapshots.upper(snapshot))?;
    if diff.is_empty() {
        return Ok(None);
    }
    let rec = write_layer(store, &diff, compression)?;
    store.put_layer(snapshot, &rec)?;
    Ok(Some(rec))
}
