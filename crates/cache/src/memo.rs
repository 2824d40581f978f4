//! The images already exported, by what they were made from: a build whose result and
//! metadata are the same as an earlier one's finds its manifest here and writes nothing.

use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use xbuild_llb::Digest;

use crate::index::Table;
use crate::oci::Descriptor;
use crate::{Error, Store};

/// Export key → [`ExportRecord`].
const EXPORTS: Table = TableDefinition::new("image_exports");

/// An image the exporter wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// The manifest.
    pub manifest: Descriptor,
    /// The config.
    pub config: Descriptor,
}

impl Store {
    /// The image exported for `key` (a digest of everything the image is made from), if its
    /// manifest and config are still in the store.
    pub fn get_export(&self, key: &Digest) -> Result<Option<ExportRecord>, Error> {
        let idx = &self.index;
        let tx = idx.db.begin_read().map_err(|e| idx.err(e))?;
        let t = match tx.open_table(EXPORTS) {
            Ok(t) => t,
            // Not created yet: nothing was exported on this root.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(idx.err(e)),
        };
        let Some(v) = t.get(key.as_str()).map_err(|e| idx.err(e))? else {
            return Ok(None);
        };
        let r: ExportRecord = serde_json::from_slice(v.value()).map_err(|e| Error::Corrupt {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        Ok(
            Some(r)
                .filter(|r| self.has_blob(&r.manifest.digest) && self.has_blob(&r.config.digest)),
        )
    }

    /// Records the image exported for `key`.
    pub fn put_export(&self, key: &Digest, rec: &ExportRecord) -> Result<(), Error> {
        self.index.put(EXPORTS, key.as_str(), rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_found_while_their_blobs_exist() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"k");
        assert!(store.get_export(&key).unwrap().is_none());
        let m = store.put_json("m", &serde_json::json!({"m": 1})).unwrap();
        let c = store.put_json("c", &serde_json::json!({"c": 1})).unwrap();
        let rec = ExportRecord {
            manifest: m.clone(),
            config: c,
        };
        store.put_export(&key, &rec).unwrap();
        assert_eq!(store.get_export(&key).unwrap(), Some(rec));
        std::fs::remove_file(store.blob_path(&m.digest)).unwrap();
        assert!(store.get_export(&key).unwrap().is_none());
    }
}
