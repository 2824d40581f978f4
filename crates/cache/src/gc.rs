//! Garbage collection of the build cache: when each cache key was last used, which snapshots
//! `prune` may delete, and forgetting the index records of deleted snapshots.
//!
//! The plan is pure: the caller (the solver, which can read snapshots) describes every
//! snapshot, what live builds hold and what tagged images need, and [`plan`] answers what to
//! delete, children before their parents, so that no kept snapshot ever loses an ancestor.
//! Index records go first ([`Store::forget_snapshots`], one transaction), snapshots after: a
//! crash in between leaves orphan snapshots for the next prune, never a record of a snapshot
//! that is half gone.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap, HashSet};

use xbuild_llb::Digest;

use crate::index::{CACHE, CHAINS, LAYERS, Table};
use crate::{CacheRecord, Error, LayerRecord, Store};

/// Cache key → when it was last used (seconds since the epoch, little-endian u64).
const USAGE: Table = TableDefinition::new("usage");

/// A key's last use is rewritten only when it is older than this, so that rebuilding over and
/// over writes nothing.
const TOUCH_INTERVAL_SECS: u64 = 600;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A cache index entry with its last use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// The cache key.
    pub key: String,
    /// Its result.
    pub record: CacheRecord,
    /// When it was last used (seconds since the epoch; 0 when unknown).
    pub last_used: u64,
}

/// What the index forgot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Cache records removed.
    pub keys: usize,
    /// Unpacked layer chains removed.
    pub chains: usize,
    /// Snapshot layer records removed.
    pub layers: usize,
}

impl Store {
    /// Records that `keys` were used now (only those whose last use is older than a few
    /// minutes are written, in one transaction).
    pub fn touch(&self, keys: &[Digest]) -> Result<(), Error> {
        let now = now_secs();
        let idx = &self.index;
        let stale: Vec<&Digest> = {
            let tx = idx.db.begin_read().map_err(|e| idx.err(e))?;
            match tx.open_table(USAGE) {
                Ok(t) => {
                    let mut out = Vec::new();
                    for k in keys {
                        let last = t
                            .get(k.as_str())
                            .map_err(|e| idx.err(e))?
                            .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
                            .unwrap_or(0);
                        if last + TOUCH_INTERVAL_SECS < now {
                            out.push(k);
                        }
                    }
                    out
                }
                Err(redb::TableError::TableDoesNotExist(_)) => keys.iter().collect(),
                Err(e) => return Err(idx.err(e)),
            }
        };
        if stale.is_empty() {
            return Ok(());
        }
        let bytes = now.to_le_bytes();
        idx.write(|tx| {
            let mut t = tx.open_table(USAGE)?;
            for k in stale {
                t.insert(k.as_str(), bytes.as_slice())?;
            }
            Ok(())
        })
    }

    /// Every cache record with its last use.
    pub fn cache_entries(&self) -> Result<Vec<CacheEntry>, Error> {
        let idx = &self.index;
        let tx = idx.db.begin_read().map_err(|e| idx.err(e))?;
        let usage: HashMap<String, u64> = match tx.open_table(USAGE) {
            Ok(t) => {
                let mut m = HashMap::new();
                for item in t.iter().map_err(|e| idx.err(e))? {
                    let (k, v) = item.map_err(|e| idx.err(e))?;
                    if let Ok(b) = v.value().try_into() {
                        m.insert(k.value().to_string(), u64::from_le_bytes(b));
                    }
                }
                m
            }
            Err(redb::TableError::TableDoesNotExist(_)) => HashMap::new(),
            Err(e) => return Err(idx.err(e)),
        };
        drop(tx);
        Ok(self
            .index
            .all::<CacheRecord>(CACHE)?
            .into_iter()
            .map(|(key, record)| CacheEntry {
                last_used: usage.get(&key).copied().unwrap_or(0),
                key,
                record,
            })
            .collect())
    }

    /// Every unpacked image layer chain: chain id → snapshot.
    pub fn chains(&self) -> Result<Vec<(String, String)>, Error> {
        self.index.all(CHAINS)
    }

    /// Every snapshot's layer record: snapshot → compressed layer.
    pub fn layers(&self) -> Result<Vec<(String, LayerRecord)>, Error> {
        self.index.all(LAYERS)
    }

    /// Removes, in one transaction, every cache record, unpacked chain and layer record that
    /// refers to one of `snapshots` (and their last-use entries).
    pub fn forget_snapshots(&self, snapshots: &HashSet<String>) -> Result<Forgotten, Error> {
        let keys: Vec<String> = self
            .index
            .all::<CacheRecord>(CACHE)?
            .into_iter()
            .filter(|(_, r)| r.snapshot.as_ref().is_some_and(|s| snapshots.contains(s)))
            .map(|(k, _)| k)
            .collect();
        let chains: Vec<String> = self
            .chains()?
            .into_iter()
            .filter(|(_, s)| snapshots.contains(s))
            .map(|(c, _)| c)
            .collect();
        let layers: Vec<String> = self
            .layers()?
            .into_iter()
            .filter(|(s, _)| snapshots.contains(s))
            .map(|(s, _)| s)
            .collect();
        let out = Forgotten {
            keys: keys.len(),
            chains: chains.len(),
            layers: layers.len(),
        };
        if keys.is_empty() && chains.is_empty() && layers.is_empty() {
            return Ok(out);
        }
        self.index.write(|tx| {
            {
                let mut t = tx.open_table(CACHE)?;
                for k in &keys {
                    t.remove(k.as_str())?;
                }
            }
            {
                let mut t = tx.open_table(USAGE)?;
                for k in &keys {
                    t.remove(k.as_str())?;
                }
            }
            {
                let mut t = tx.open_table(CHAINS)?;
                for c in &chains {
                    t.remove(c.as_str())?;
                }
            }
            let mut t = tx.open_table(LAYERS)?;
            for s in &layers {
                t.remove(s.as_str())?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Removes every cache record whose result is the empty filesystem (they hold no space,
    /// but `prune --all` forgets everything).
    pub fn forget_empty_results(&self) -> Result<usize, Error> {
        let keys: Vec<String> = self
            .index
            .all::<CacheRecord>(CACHE)?
            .into_iter()
            .filter(|(_, r)| r.snapshot.is_none())
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        self.index.write(|tx| {
            let mut t = tx.open_table(CACHE)?;
            for k in &keys {
                t.remove(k.as_str())?;
            }
            Ok(())
        })?;
        Ok(keys.len())
    }
}

/// One snapshot as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its id.
    pub id: String,
    /// Its parent.
    pub parent: Option<String>,
    /// False while a build is still filling it.
    pub committed: bool,
    /// Bytes it takes on disk.
    pub size: u64,
}

/// What `prune` removes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also the unpacked layers of tagged images (everything no live build holds).
    pub all: bool,
    /// Stop once the cache takes at most this many bytes, least recently used first.
    pub keep_storage: Option<u64>,
}

/// What the planner is told.
#[derive(Clone, Copy, Debug)]
pub struct GcInput<'a> {
    /// Every snapshot on the root.
    pub snapshots: &'a [SnapshotInfo],
    /// Snapshots live builds hold (kept, with their ancestors).
    pub leased: &'a HashSet<String>,
    /// Snapshots tagged images are made of (kept unless [`PruneOptions::all`]).
    pub images: &'a HashSet<String>,
    /// When each snapshot was last used (seconds since the epoch).
    pub last_used: &'a HashMap<String, u64>,
}

/// What to delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Snapshots to delete, each before its ancestors.
    pub delete: Vec<String>,
    /// Bytes they take.
    pub reclaimed: u64,
    /// Bytes every snapshot takes now.
    pub total: u64,
}

/// Decides which snapshots `prune` deletes.
pub fn plan(input: &GcInput<'_>, opts: &PruneOptions) -> Plan {
    let by_id: HashMap<&str, &SnapshotInfo> =
        input.snapshots.iter().map(|s| (s.id.as_str(), s)).collect();
    let total: u64 = input.snapshots.iter().map(|s| s.size).sum();
    // Kept: leased, uncommitted (a live build is filling it), image layers unless --all, and
    // every ancestor of something kept.
    let mut keep: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = input
        .snapshots
        .iter()
        .filter(|s| {
            !s.committed
                || input.leased.contains(&s.id)
                || (!opts.all && input.images.contains(&s.id))
        })
        .map(|s| s.id.as_str())
        .collect();
    while let Some(id) = stack.pop() {
        if !keep.insert(id) {
            continue;
        }
        if let Some(p) = by_id.get(id).and_then(|s| s.parent.as_deref()) {
            stack.push(p);
        }
    }
    let candidates: Vec<&SnapshotInfo> = input
        .snapshots
        .iter()
        .filter(|s| !keep.contains(s.id.as_str()))
        .collect();
    // A snapshot's effective last use is the latest of its own and its descendants', and its
    // depth orders it after them: deleting in this order never strands a child.
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in &candidates {
        if let Some(p) = s.parent.as_deref() {
            children.entry(p).or_default().push(s.id.as_str());
        }
    }
    let mut effective: BTreeMap<&str, u64> = BTreeMap::new();
    fn eff<'a>(
        id: &'a str,
        children: &HashMap<&'a str, Vec<&'a str>>,
        last_used: &HashMap<String, u64>,
        memo: &mut BTreeMap<&'a str, u64>,
        depth: usize,
    ) -> u64 {
        if let Some(v) = memo.get(id) {
            return *v;
        }
        let mut v = last_used.get(id).copied().unwrap_or(0);
        if depth < 10_000 {
            for c in children.get(id).into_iter().flatten() {
                v = v.max(eff(c, children, last_used, memo, depth + 1));
            }
        }
        memo.insert(id, v);
        v
    }
    let depth = |id: &str| {
        let mut d = 0usize;
        let mut cur = by_id.get(id).and_then(|s| s.parent.as_deref());
        while let Some(p) = cur {
            d += 1;
            if d > input.snapshots.len() {
                break;
            }
            cur = by_id.get(p).and_then(|s| s.parent.as_deref());
        }
        d
    };
    let mut order: Vec<(u64, std::cmp::Reverse<usize>, &str, u64)> = candidates
        .iter()
        .map(|s| {
            (
                eff(&s.id, &children, input.last_used, &mut effective, 0),
                std::cmp::Reverse(depth(&s.id)),
                s.id.as_str(),
                s.size,
            )
        })
        .collect();
    order.sort();
    let mut plan = Plan {
        total,
        ..Plan::default()
    };
    for (_, _, id, size) in order {
        if let Some(limit) = opts.keep_storage
            && total - plan.reclaimed <= limit
        {
            break;
        }
        plan.delete.push(id.to_string());
        plan.reclaimed += size;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn snap(id: &str, parent: Option<&str>, size: u64) -> SnapshotInfo {
        SnapshotInfo {
            id: id.into(),
            parent: parent.map(str::to_string),
            committed: true,
            size,
        }
    }

    #[test]
    fn plan_keeps_leases_images_and_their_ancestors() {
        // base ← a ← b, base ← c; x uncommitted on c; img is a tagged image's layer.
        let mut snaps = vec![
            snap("base", None, 10),
            snap("a", Some("base"), 1),
            snap("b", Some("a"), 2),
            snap("c", Some("base"), 4),
            snap("img", None, 100),
        ];
        snaps.push(SnapshotInfo {
            committed: false,
            ..snap("x", Some("c"), 8)
        });
        let leased: HashSet<String> = ["b".to_string()].into();
        let images: HashSet<String> = ["img".to_string()].into();
        let last_used = HashMap::new();
        let input = GcInput {
            snapshots: &snaps,
            leased: &leased,
            images: &images,
            last_used: &last_used,
        };
        let p = plan(&input, &PruneOptions::default());
        assert!(p.delete.is_empty(), "{p:?}");
        let none: HashSet<String> = HashSet::new();
        let input = GcInput {
            leased: &none,
            ..input
        };
        let p = plan(&input, &PruneOptions::default());
        assert_eq!(p.delete, vec!["b", "a"], "children first; c holds x");
        let p = plan(
            &input,
            &PruneOptions {
                all: true,
                keep_storage: None,
            },
        );
        assert!(p.delete.contains(&"img".to_string()));
        assert!(!p.delete.contains(&"base".to_string()), "x's ancestor");
    }

    #[test]
    fn keep_storage_deletes_least_recently_used_first() {
        let snaps = vec![
            snap("old", None, 50),
            snap("old-child", Some("old"), 10),
            snap("new", None, 50),
        ];
        let last_used: HashMap<String, u64> = [
            ("old".to_string(), 1),
            ("old-child".to_string(), 2),
            ("new".to_string(), 100),
        ]
        .into();
        let empty = HashSet::new();
        let input = GcInput {
            snapshots: &snaps,
            leased: &empty,
            images: &empty,
            last_used: &last_used,
        };
        let p = plan(
            &input,
            &PruneOptions {
                all: false,
                keep_storage: Some(60),
            },
        );
        assert_eq!(p.delete, vec!["old-child", "old"]);
        assert_eq!(p.reclaimed, 60);
        assert_eq!(p.total, 110);
    }

    #[test]
    fn touch_writes_once_and_forget_removes_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let k = Digest::of(b"k");
        let rec = CacheRecord {
            snapshot: Some("s1".into()),
            created: "2026-01-01T00:00:00Z".into(),
        };
        store.put_cache(&k, &rec).unwrap();
        store.put_chain(&Digest::of(b"c"), "s1").unwrap();
        assert_eq!(store.cache_entries().unwrap()[0].last_used, 0);
        store.touch(std::slice::from_ref(&k)).unwrap();
        let used = store.cache_entries().unwrap()[0].last_used;
        assert!(used > 0);
        let gone: HashSet<String> = ["s1".to_string()].into();
        let f = store.forget_snapshots(&gone).unwrap();
        assert_eq!((f.keys, f.chains, f.layers), (1, 1, 0));
        assert!(store.get_cache(&k).unwrap().is_none());
        assert!(store.chains().unwrap().is_empty());
    }
}
