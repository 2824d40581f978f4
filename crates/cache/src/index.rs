//! The redb index: cache keys, tags, snapshot layers, unpacked chains.

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

use xbuild_llb::Digest;

use crate::Error;

pub(crate) type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// Cache key → [`CacheRecord`].
pub(crate) const CACHE: Table = TableDefinition::new("cache");
/// Tag → [`TagRecord`].
pub(crate) const TAGS: Table = TableDefinition::new("tags");
/// Snapshot id → [`LayerRecord`].
pub(crate) const LAYERS: Table = TableDefinition::new("layers");
/// Layer chain id → snapshot id.
pub(crate) const CHAINS: Table = TableDefinition::new("chains");
/// Manifest digest → [`ImageRecord`]: every image of the local image store, tagged or not.
pub(crate) const IMAGES: Table = TableDefinition::new("images");
/// `<snapshot> <variant>` → [`LayerRecord`]: the layer an export wrote for a snapshot's diff, per
/// compression and epoch (`variant`).
pub(crate) const EXPORTS: Table = TableDefinition::new("exports");
/// Layer diff_id → [`DiffRecord`].
pub(crate) const DIFFS: Table = TableDefinition::new("diffs");

/// The result a cache key maps to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The committed snapshot holding the vertex's filesystem; `None` for an empty filesystem.
    pub snapshot: Option<String>,
    /// When the vertex ran (RFC 3339), so a cached build writes the same image.
    pub created: String,
}

/// The compressed layer blob of a snapshot's diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The blob's media type.
    pub media_type: String,
    /// The compressed blob's digest.
    pub digest: Digest,
    /// The uncompressed tar's digest (the image config's diff_id).
    pub diff_id: Digest,
    /// The compressed size in bytes.
    pub size: u64,
}

/// An image of the local image store (named by its manifest digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config's digest: the image ID.
    pub config: Digest,
    /// When the image was created (its config's `created`, RFC 3339).
    #[serde(default)]
    pub created: Option<String>,
    /// When it entered this store (RFC 3339).
    pub added: String,
}

/// What is known of an uncompressed layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRecord {
    /// The bytes of file content the layer holds (what `docker history` shows as its size).
    pub content_size: u64,
}

/// What a tag points at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    /// The manifest's digest.
    pub manifest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
}

pub(crate) struct Index {
    pub(crate) db: Database,
    path: PathBuf,
}

impl Index {
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(path)
            .map_err(|e| Error::Index {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let idx = Index {
            db,
            path: path.to_path_buf(),
        };
        // A write transaction (and its fsync) only the first time: opening must stay cheap.
        let tables = [CACHE, TAGS, LAYERS, CHAINS, IMAGES, DIFFS, EXPORTS];
        let present = idx
            .db
            .begin_read()
            .map(|tx| tables.iter().all(|t| tx.open_table(*t).is_ok()))
            .unwrap_or(false);
        if !present {
            idx.write(|tx| {
                for t in tables {
                    tx.open_table(t)?;
                }
                Ok(())
            })?;
        }
        Ok(idx)
    }

    pub(crate) fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Index {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    pub(crate) fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    pub(crate) fn put<T: Serialize>(
        &self,
        table: Table,
        key: &str,
        value: &T,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| self.err(e))?;
        self.write(|tx| {
            tx.open_table(table)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
    }

    /// Removes `key`; true when it was there.
    pub(crate) fn remove(&self, table: Table, key: &str) -> Result<bool, Error> {
        let mut found = false;
        self.write(|tx| {
            found = tx.open_table(table)?.remove(key)?.is_some();
            Ok(())
        })?;
        Ok(found)
    }

    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &str,
    ) -> Result<Option<T>, Error> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(table).map_err(|e| self.err(e))?;
        let Some(v) = t.get(key).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| Error::Corrupt {
                key: key.to_string(),
                message: e.to_string(),
            })
    }

    pub(crate) fn all<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>, Error> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(table).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let rec = serde_json::from_slice(v.value()).map_err(|e| Error::Corrupt {
                key: k.value().to_string(),
                message: e.to_string(),
            })?;
            out.push((k.value().to_string(), rec));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Store, TagRecord};
    use xbuild_llb::Digest;

    #[test]
    fn two_handles_on_one_root_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path()).unwrap();
        let b = Store::open(dir.path()).unwrap();
        let rec = TagRecord {
            manifest: Digest::of(b"m"),
            size: 1,
        };
        a.put_tag("x:1", &rec).unwrap();
        assert_eq!(b.get_tag("x:1").unwrap(), Some(rec));
        assert_eq!(b.tags().unwrap().len(), 1);
    }
}
