//! `prune` and `du`: the build cache of a root, what it takes and what can go, safely while
//! builds run.
//!
//! A prune takes the root's GC lock exclusive (builds take it shared for the moments in which
//! they look a result up and lease it, or record one), cleans up after dead sessions, and then
//! deletes every snapshot no live build holds and — unless `--all` — no tagged image is made
//! of, children first; the index records of what it deletes go first, in one transaction.

use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use xbuild_cache::Store;
use xbuild_cache::gc::{Forgotten, GcInput, Plan, PruneOptions, SnapshotInfo, plan};
use xbuild_cache::history::History;
use xbuild_cache::lease::{Session, live_leases};
use xbuild_cache::lock::GcLock;
use xbuild_cache::oci::{ImageConfigFile, Manifest};
use xbuild_llb::Digest;
use xbuild_runtime::{LayerSnapshotter, RootDirs, SnapshotterKind};

use crate::{Error, chain_id};

/// What a prune removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Snapshots deleted.
    pub snapshots: usize,
    /// Bytes they took.
    pub reclaimed: u64,
    /// Cache records forgotten.
    pub records: usize,
    /// Cache mount directories removed (`--all`, when no build was running).
    pub cache_mounts: usize,
    /// Dead builds cleaned up after.
    pub recovered: usize,
}

/// What the build cache of a root takes on disk.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiskUsage {
    /// Snapshots (step results and unpacked image layers).
    pub snapshots: usize,
    /// Bytes they take.
    pub snapshot_bytes: u64,
    /// Snapshots running builds hold, and their bytes.
    pub in_use: (usize, u64),
    /// Snapshots tagged images are made of, and their bytes.
    pub image_layers: (usize, u64),
    /// Cache records.
    pub records: usize,
    /// Bytes `prune` would free.
    pub reclaimable: u64,
    /// Bytes `prune --all` would free.
    pub reclaimable_all: u64,
    /// Cache mount directories (`RUN --mount=type=cache`), and their bytes.
    pub cache_mounts: (usize, u64),
    /// Blobs in the content store (image layers, configs, manifests), and their bytes.
    pub blobs: (usize, u64),
    /// Bytes of metadata: the index, the stat cache, the build history.
    pub metadata: u64,
}

/// The state `prune` and `du` decide from.
struct Inventory {
    snapshots: Vec<SnapshotInfo>,
    leased: HashSet<String>,
    images: HashSet<String>,
    last_used: HashMap<String, u64>,
    records: usize,
    sessions: usize,
}

impl Inventory {
    fn take(store: &Store, snaps: &LayerSnapshotter) -> Result<Self, Error> {
        let mut seen = HashSet::new();
        let snapshots: Vec<SnapshotInfo> = snaps
            .list()?
            .into_iter()
            .map(|s| SnapshotInfo {
                size: snaps.disk_usage(&s.id, &mut seen),
                id: s.id,
                parent: s.parent,
                committed: s.committed,
            })
            .collect();
        let leases = live_leases(store.root())?;
        let entries = store.cache_entries()?;
        let mut last_used: HashMap<String, u64> = HashMap::new();
        for e in &entries {
            if let Some(s) = &e.record.snapshot {
                let t = last_used.entry(s.clone()).or_default();
                *t = (*t).max(e.last_used);
            }
        }
        Ok(Inventory {
            images: image_snapshots(store)?,
            leased: leases.snapshots,
            sessions: leases.sessions.len(),
            last_used,
            records: entries.len(),
            snapshots,
        })
    }

    fn plan(&self, opts: &PruneOptions) -> Plan {
        plan(
            &GcInput {
                snapshots: &self.snapshots,
                leased: &self.leased,
                images: &self.images,
                last_used: &self.last_used,
            },
            opts,
        )
    }
}

/// The snapshots tagged images are made of: those their layers were made from (build
/// results) and those their layers were unpacked into (bases).
fn image_snapshots(store: &Store) -> Result<HashSet<String>, Error> {
    let mut by_layer: HashMap<Digest, Vec<String>> = HashMap::new();
    for (snap, layer) in store.layers()? {
        by_layer.entry(layer.digest).or_default().push(snap);
    }
    let chains: HashMap<String, String> = store.chains()?.into_iter().collect();
    let mut out = HashSet::new();
    for (name, tag) in store.tags()? {
        let Ok(m) = store.read_json::<Manifest>(&tag.manifest) else {
            tracing::warn!(tag = %name, "a tagged image's manifest is unreadable");
            continue;
        };
        for l in &m.layers {
            out.extend(by_layer.get(&l.digest).into_iter().flatten().cloned());
        }
        if let Ok(c) = store.read_json::<ImageConfigFile>(&m.config.digest) {
            let mut chain: Option<Digest> = None;
            for d in &c.rootfs.diff_ids {
                let id = chain_id(chain.as_ref(), d);
                if let Some(s) = chains.get(id.as_str()) {
                    out.insert(s.clone());
                }
                chain = Some(id);
            }
        }
    }
    Ok(out)
}

/// Deletes build cache on the root of `store` (see the module doc); `runtime` is the OCI
/// runtime used to kill what dead builds left running.
pub fn prune(
    store: &Store,
    opts: &PruneOptions,
    runtime: Option<&Path>,
) -> Result<PruneReport, Error> {
    let root = store.root().to_path_buf();
    let dirs = RootDirs::new(&root);
    let _session = Session::start(&root)?;
    let _gc = GcLock::exclusive(&root)?;
    let recovered = crate::recover(&root, runtime)?;
    let snaps = LayerSnapshotter::with_kind(&root, SnapshotterKind::Native)?;
    snaps.empty_trash()?;
    let inv = Inventory::take(store, &snaps)?;
    let plan = inv.plan(opts);
    // Records of snapshots that are gone (or never finished) are forgotten too.
    let committed: HashSet<&str> = inv
        .snapshots
        .iter()
        .filter(|s| s.committed)
        .map(|s| s.id.as_str())
        .collect();
    let mut forget: HashSet<String> = plan.delete.iter().cloned().collect();
    for e in store.cache_entries()? {
        if let Some(s) = e.record.snapshot
            && !committed.contains(s.as_str())
        {
            forget.insert(s);
        }
    }
    for (_, s) in store.chains()? {
        if !committed.contains(s.as_str()) {
            forget.insert(s);
        }
    }
    let Forgotten { keys, .. } = store.forget_snapshots(&forget)?;
    let mut report = PruneReport {
        recovered,
        records: keys,
        ..PruneReport::default()
    };
    for id in &plan.delete {
        snaps.remove(id)?;
    }
    snaps.forget_copies_unless(|id| committed.contains(id) && !forget.contains(id));
    report.snapshots = plan.delete.len();
    report.reclaimed = plan.reclaimed;
    if opts.all && opts.keep_storage.is_none() {
        report.records += store.forget_empty_results()?;
        // Cache mounts have no lease: only removed when no build at all is running.
        if inv.sessions <= 1 {
            report.cache_mounts += dirs.cache_mounts().remove_all()?;
        }
    }
    History::new(&root).prune_files()?;
    // Temp files of writes that a crash interrupted (live writers are younger than this).
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    dirs.remove_tmp_before(hour_ago);
    Ok(report)
}

/// What the build cache and content store of the root of `store` take.
pub fn disk_usage(store: &Store) -> Result<DiskUsage, Error> {
    let root = store.root();
    let snaps = LayerSnapshotter::with_kind(root, SnapshotterKind::Native)?;
    let inv = Inventory::take(store, &snaps)?;
    let sum = |f: &dyn Fn(&SnapshotInfo) -> bool| -> (usize, u64) {
        inv.snapshots
            .iter()
            .filter(|s| f(s))
            .fold((0, 0), |(n, b), s| (n + 1, b + s.size))
    };
    let mut du = DiskUsage {
        snapshots: inv.snapshots.len(),
        snapshot_bytes: inv.snapshots.iter().map(|s| s.size).sum(),
        in_use: sum(&|s| inv.leased.contains(&s.id) || !s.committed),
        image_layers: sum(&|s| inv.images.contains(&s.id)),
        records: inv.records,
        reclaimable: inv.plan(&PruneOptions::default()).reclaimed,
        reclaimable_all: inv
            .plan(&PruneOptions {
                all: true,
                keep_storage: None,
            })
            .reclaimed,
        ..DiskUsage::default()
    };
    du.cache_mounts = RootDirs::new(root).cache_mounts().usage();
    let store_usage = store.usage();
    du.blobs = store_usage.blobs;
    du.metadata = store_usage.metadata;
    Ok(du)
}
