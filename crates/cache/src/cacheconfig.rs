//! BuildKit's remote cache format (`application/vnd.buildkit.cacheconfig.v0`): a list of layer
//! blobs, each naming its parent, and records mapping a cache key to the top layer of its
//! result. An exported cache is an OCI index whose `manifests` are the layer blobs (annotated
//! with their diff_id and creation time) plus one config blob in this format.
//!
//! [`ConfigBuilder`] writes a config from result chains; [`CacheConfig::results`] reads one back
//! into a layer chain per cache key. Our cache keys are xbuild's own digests; the shape is
//! BuildKit's (`cache/remotecache/v1/types/spec.go`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use xbuild_llb::Digest;

use crate::oci::{Descriptor, Index, MEDIA_INDEX};

/// The media type of the cache config blob.
pub const MEDIA_CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";
/// The descriptor annotation holding a layer's diff_id (containerd's label).
pub const ANNOTATION_UNCOMPRESSED: &str = "containerd.io/uncompressed";
/// The descriptor annotation holding when a layer was created.
pub const ANNOTATION_CREATED_AT: &str = "buildkit/createdat";
/// The descriptor annotation naming the `RUN --mount=type=cache` id a blob holds (xbuild's
/// `export-mounts=true`).
pub const ANNOTATION_CACHE_MOUNT: &str = "dev.xbuild.cache-mount.id";
/// The key of an image config holding inline cache records.
pub const INLINE_CACHE_KEY: &str = "moby.buildkit.cache.v0";

/// A cache config: layers and records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// The layer blobs, each with its parent's index (-1: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<CacheLayer>,
    /// The cache records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<CacheRecord>,
}

fn is_zero(i: &i64) -> bool {
    *i == 0
}

/// One layer blob of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLayer {
    /// The compressed blob's digest.
    pub blob: Digest,
    /// The index of the layer below (-1 for a bottom layer; 0 is omitted, as Go does).
    #[serde(default, rename = "parent", skip_serializing_if = "is_zero")]
    pub parent_index: i64,
    /// What BuildKit records of the blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<LayerAnnotations>,
}

/// What a cache config says of a layer blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerAnnotations {
    /// The blob's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The uncompressed tar's digest.
    #[serde(default, rename = "diffID", skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// The blob's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// When the layer was made (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A cache key and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The result: the top layer of its chain.
    #[serde(default, rename = "layers", skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<CacheResult>,
    /// Results as explicit layer lists (BuildKit's inline cache writes these).
    #[serde(default, rename = "chains", skip_serializing_if = "Vec::is_empty")]
    pub chained_results: Vec<ChainedResult>,
    /// The cache key.
    pub digest: Digest,
    /// The records of the inputs, one list per input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Vec<CacheInput>>,
}

/// A result: the top layer of its chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheResult {
    /// The index of the top layer.
    #[serde(rename = "layer")]
    pub layer_index: i64,
    /// When the result was made (RFC 3339).
    pub created_at: String,
}

/// A result given as the indexes of its layers, bottom first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainedResult {
    /// The layer indexes, bottom first.
    pub layers: Vec<i64>,
    /// When the result was made (RFC 3339).
    pub created_at: String,
}

/// A link to an input's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheInput {
    /// Which part of the input is used (`""`: all of it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// The index of the input's record.
    #[serde(rename = "link")]
    pub link_index: i64,
}

/// One layer of a result chain, as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainLayer {
    /// The compressed blob.
    pub blob: Descriptor,
    /// The uncompressed tar's digest.
    pub diff_id: Digest,
}

/// An imported result: its layers, bottom first, and when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainResult {
    /// The layers, bottom first (empty: an empty filesystem).
    pub layers: Vec<ChainLayer>,
    /// When it was made (RFC 3339).
    pub created: String,
}

/// The most layers [`CacheConfig::results`] materializes over all of a config's results: each
/// result holds its whole chain, so a hostile config of N records on an N-layer chain would
/// otherwise expand to N² layers (a 16 MiB config to about 10¹⁰). Real caches hold thousands.
pub const MAX_RESULT_LAYERS: usize = 1 << 18;

/// What is wrong with a cache config.
fn bad(message: String) -> crate::Error {
    crate::Error::Corrupt {
        key: "cache config".into(),
        message,
    }
}

impl CacheConfig {
    /// Every record's result as a layer chain, by cache key. `blobs` are the index's
    /// descriptors (for media types, sizes and diff_ids the config does not carry). A record
    /// with no result is left out; one that points outside the layers is an error.
    pub fn results(
        &self,
        blobs: &[Descriptor],
    ) -> Result<HashMap<Digest, ChainResult>, crate::Error> {
        let by_digest: HashMap<&Digest, &Descriptor> =
            blobs.iter().map(|d| (&d.digest, d)).collect();
        let layer = |i: i64| -> Result<ChainLayer, crate::Error> {
            let l = usize::try_from(i)
                .ok()
                .and_then(|i| self.layers.get(i))
                .ok_or_else(|| bad(format!("layer index {i} is out of range")))?;
            let desc = by_digest.get(&l.blob);
            let ann = l.annotations.as_ref();
            let diff_id = ann
                .and_then(|a| a.diff_id.clone())
                .or_else(|| {
                    desc.and_then(|d| d.annotations.as_ref())
                        .and_then(|a| a.get(ANNOTATION_UNCOMPRESSED))
                        .and_then(|s| s.parse().ok())
                })
                .ok_or_else(|| bad(format!("layer {} has no diff_id", l.blob)))?;
            let media_type = ann
                .and_then(|a| a.media_type.clone())
                .or_else(|| desc.map(|d| d.media_type.clone()))
                .ok_or_else(|| bad(format!("layer {} has no media type", l.blob)))?;
            let size = ann
                .and_then(|a| a.size)
                .or_else(|| desc.map(|d| d.size))
                .ok_or_else(|| bad(format!("layer {} has no size", l.blob)))?;
            Ok(ChainLayer {
                blob: Descriptor {
                    media_type,
                    digest: l.blob.clone(),
                    size,
                    annotations: None,
                    platform: None,
                },
                diff_id,
            })
        };
        let chain_of = |top: i64| -> Result<Vec<ChainLayer>, crate::Error> {
            let mut out = Vec::new();
            let mut cur = top;
            while cur != -1 {
                if out.len() > self.layers.len() {
                    return Err(bad(format!("layer {top} has a parent cycle")));
                }
                out.push(layer(cur)?);
                cur = usize::try_from(cur)
                    .ok()
                    .and_then(|i| self.layers.get(i))
                    .map(|l| l.parent_index)
                    .unwrap_or(-1);
            }
            out.reverse();
            Ok(out)
        };
        let mut out = HashMap::new();
        let mut total = 0usize;
        for r in &self.records {
            let result = if let Some(res) = r.results.first() {
                ChainResult {
                    layers: chain_of(res.layer_index)?,
                    created: res.created_at.clone(),
                }
            } else if let Some(c) = r.chained_results.first() {
                ChainResult {
                    layers: c
                        .layers
                        .iter()
                        .map(|i| layer(*i))
                        .collect::<Result<_, _>>()?,
                    created: c.created_at.clone(),
                }
            } else {
                continue;
            };
            total += result.layers.len();
            if total > MAX_RESULT_LAYERS {
                return Err(bad(format!(
                    "its results chain more than MAX_RESULT_LAYERS ({MAX_RESULT_LAYERS}) layers in all (at record {}); refused as a cache that would not fit in memory",
                    r.digest
                )));
            }
            out.insert(r.digest.clone(), result);
        }
        Ok(out)
    }
}

/// Builds a cache config (and the index listing its blobs) from result chains; layers shared
/// by several chains are listed once.
#[derive(Debug, Default)]
pub struct ConfigBuilder {
    config: CacheConfig,
    layer_at: HashMap<(Digest, i64), i64>,
    blobs: Vec<Descriptor>,
    record_at: HashMap<Digest, i64>,
}

impl ConfigBuilder {
    /// An empty config.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a result chain (bottom first); returns the index of its top layer (`None` for an
    /// empty chain).
    pub fn add_chain(&mut self, layers: &[ChainLayer], created: &str) -> Option<i64> {
        let mut parent = -1;
        for l in layers {
            let idx = match self.layer_at.get(&(l.blob.digest.clone(), parent)) {
                Some(i) => *i,
                None => {
                    let i = self.config.layers.len() as i64;
                    self.config.layers.push(CacheLayer {
                        blob: l.blob.digest.clone(),
                        parent_index: parent,
                        annotations: Some(LayerAnnotations {
                            media_type: Some(l.blob.media_type.clone()),
                            diff_id: Some(l.diff_id.clone()),
                            size: Some(l.blob.size),
                            created_at: Some(created.to_string()),
                        }),
                    });
                    self.layer_at.insert((l.blob.digest.clone(), parent), i);
                    if !self.blobs.iter().any(|b| b.digest == l.blob.digest) {
                        let mut ann = BTreeMap::new();
                        ann.insert(ANNOTATION_UNCOMPRESSED.into(), l.diff_id.to_string());
                        ann.insert(ANNOTATION_CREATED_AT.into(), created.to_string());
                        self.blobs.push(Descriptor {
                            annotations: Some(ann),
                            ..l.blob.clone()
                        });
                    }
                    i
                }
            };
            parent = idx;
        }
        (parent != -1).then_some(parent)
    }

    /// Adds the record of cache key `key` whose result's top layer is `top`, linked to the
    /// records of `inputs` already added.
    pub fn add_record(&mut self, key: &Digest, inputs: &[Digest], top: i64, created: &str) {
        if self.record_at.contains_key(key) {
            return;
        }
        let inputs = inputs
            .iter()
            .filter_map(|k| self.record_at.get(k))
            .map(|i| {
                vec![CacheInput {
                    selector: String::new(),
                    link_index: *i,
                }]
            })
            .collect();
        self.record_at
            .insert(key.clone(), self.config.records.len() as i64);
        self.config.records.push(CacheRecord {
            results: vec![CacheResult {
                layer_index: top,
                created_at: created.to_string(),
            }],
            chained_results: Vec::new(),
            digest: key.clone(),
            inputs,
        });
    }

    /// Adds a blob to the index that no layer names (a cache mount's contents).
    pub fn add_blob(&mut self, blob: Descriptor) {
        if !self.blobs.iter().any(|b| b.digest == blob.digest) {
            self.blobs.push(blob);
        }
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.config.layers.is_empty() && self.blobs.is_empty()
    }

    /// The config and the blobs the index lists (without the config itself).
    pub fn finish(self) -> (CacheConfig, Vec<Descriptor>) {
        (self.config, self.blobs)
    }
}

/// The cache index listing `blobs` and the config blob `config`.
pub fn cache_index(blobs: Vec<Descriptor>, config: Descriptor) -> Index {
    let mut manifests = blobs;
    manifests.push(config);
    Index {
        schema_version: 2,
        media_type: Some(MEDIA_INDEX.into()),
        manifests,
        annotations: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: &str) -> ChainLayer {
        ChainLayer {
            blob: Descriptor {
                media_type: crate::oci::MEDIA_LAYER_GZIP.into(),
                digest: Digest::of(n.as_bytes()),
                size: n.len() as u64,
                annotations: None,
                platform: None,
            },
            diff_id: Digest::of(format!("diff {n}").as_bytes()),
        }
    }

    #[test]
    fn many_records_on_one_long_chain_do_not_expand_quadratically() {
        // 600 records all on the top of a 600-layer chain: 360,000 layers if materialized.
        let n = 600usize;
        let mut builder = ConfigBuilder::new();
        let chain: Vec<ChainLayer> = (0..n).map(|i| layer(&i.to_string())).collect();
        let top = builder.add_chain(&chain, "t").unwrap();
        for i in 0..n {
            builder.add_record(&Digest::of(format!("k{i}").as_bytes()), &[], top, "t");
        }
        let (config, blobs) = builder.finish();
        let e = config.results(&blobs).unwrap_err().to_string();
        assert!(e.contains("MAX_RESULT_LAYERS"), "{e}");
        // Within the limit, the same shape decodes.
        let few = CacheConfig {
            records: config.records[..10].to_vec(),
            ..config
        };
        assert_eq!(few.results(&blobs).unwrap().len(), 10);
    }

    #[test]
    fn chains_round_trip_through_json_sharing_layers() {
        let (a, b, c) = (layer("a"), layer("b"), layer("c"));
        let (k1, k2, k3) = (Digest::of(b"k1"), Digest::of(b"k2"), Digest::of(b"k3"));
        let mut builder = ConfigBuilder::new();
        let t1 = builder.add_chain(std::slice::from_ref(&a), "t1").unwrap();
        builder.add_record(&k1, &[], t1, "t1");
        let t2 = builder.add_chain(&[a.clone(), b.clone()], "t2").unwrap();
        builder.add_record(&k2, std::slice::from_ref(&k1), t2, "t2");
        let t3 = builder.add_chain(&[a.clone(), c.clone()], "t3").unwrap();
        builder.add_record(&k3, std::slice::from_ref(&k1), t3, "t3");
        let (config, blobs) = builder.finish();
        assert_eq!(config.layers.len(), 3, "a is listed once");
        assert_eq!(blobs.len(), 3);
        let json = serde_json::to_string(&config).unwrap();
        // BuildKit's field names; Go omits a parent of 0.
        assert!(json.contains("\"parent\":-1"), "{json}");
        assert!(json.contains("\"inputs\":[[{\"link\":0}]]"), "{json}");
        assert!(
            json.contains("\"layers\":[{\"layer\":1,\"createdAt\":\"t2\"}]"),
            "{json}"
        );
        let back: CacheConfig = serde_json::from_str(&json).unwrap();
        let results = back.results(&blobs).unwrap();
        assert_eq!(results[&k1].layers, vec![a.clone()]);
        assert_eq!(results[&k2].layers, vec![a.clone(), b]);
        assert_eq!(results[&k3].layers, vec![a, c]);
        assert_eq!(results[&k3].created, "t3");
    }

    #[test]
    fn buildkit_shaped_config_reads_diff_ids_from_the_index() {
        let a = layer("a");
        let mut ann = BTreeMap::new();
        ann.insert(ANNOTATION_UNCOMPRESSED.to_string(), a.diff_id.to_string());
        let desc = Descriptor {
            annotations: Some(ann),
            ..a.blob.clone()
        };
        let json = format!(
            r#"{{"layers":[{{"blob":"{}","parent":-1}}],"records":[{{"digest":"{}","layers":[{{"layer":0,"createdAt":"2026-01-01T00:00:00Z"}}]}},{{"digest":"{}"}}]}}"#,
            a.blob.digest,
            Digest::of(b"k"),
            Digest::of(b"no result")
        );
        let config: CacheConfig = serde_json::from_str(&json).unwrap();
        let results = config.results(&[desc]).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[&Digest::of(b"k")].layers, vec![a]);
    }

    #[test]
    fn out_of_range_layers_are_errors() {
        let json = format!(
            r#"{{"layers":[],"records":[{{"digest":"{}","layers":[{{"layer":3,"createdAt":"x"}}]}}]}}"#,
            Digest::of(b"k")
        );
        let config: CacheConfig = serde_json::from_str(&json).unwrap();
        let e = config.results(&[]).unwrap_err().to_string();
        assert!(e.contains("layer index 3 is out of range"), "{e}");
    }
}
