//! Fuzzes the decoding of registry and cache documents: arbitrary bytes as an image manifest,
//! an index, an image config and a BuildKit cache config (the types `xbuild pull`, `--cache-from`
//! and the store decode). No input may panic; whatever decodes must encode and decode back to
//! the same value; a cache config's chains must stay within its layers.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use xbuild_cache::cacheconfig::CacheConfig;
use xbuild_cache::oci::{Descriptor, ImageConfigFile, Index, Manifest};

/// Decodes `data` as `T`; when it decodes, checks that the value survives a round trip.
fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let bytes = serde_json::to_vec(&value).expect("a decoded value encodes");
    let again: T = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{value:?} encoded as {} does not decode: {e}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(value, again, "{}", String::from_utf8_lossy(&bytes));
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    roundtrip::<Manifest>(data);
    roundtrip::<Index>(data);
    roundtrip::<ImageConfigFile>(data);
    if let Some(config) = roundtrip::<CacheConfig>(data) {
        // The index a cache config comes with lists its layers' blobs.
        let blobs: Vec<Descriptor> = config
            .layers
            .iter()
            .map(|l| Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                digest: l.blob.clone(),
                size: 1,
                annotations: None,
                platform: None,
            })
            .collect();
        if let Ok(results) = config.results(&blobs) {
            for (key, r) in &results {
                // A chain follows parents (at most every layer once) or lists its indexes.
                let listed = config
                    .records
                    .iter()
                    .filter(|rec| rec.digest == *key)
                    .flat_map(|rec| rec.chained_results.iter().map(|c| c.layers.len()))
                    .max()
                    .unwrap_or(0);
                assert!(
                    r.layers.len() <= config.layers.len().max(listed),
                    "{key}: a chain of {} layers from {} layers",
                    r.layers.len(),
                    config.layers.len()
                );
            }
        }
    }
});
