//! Snapshots in the style of containerd's: a snapshot is a directory of changes on top of its
//! parent; an active snapshot is writable, a committed one is frozen.
//!
//! Layout under `<root>/snapshots/<id>/`: `fs/` (the changes, in overlay upperdir format),
//! `work/` (the overlay workdir, while active), `meta.json` (parent, committed) and, for long
//! chains, `flat/` (the whole chain up to this snapshot as one tree). Mountpoints live under
//! `<root>/mounts/`.
//!
//! Two ways to mount, one on-disk format: the overlay snapshotter mounts a chain as overlay
//! lowers (chains longer than [`MAX_LOWERS`] use a flattened tree for their bottom part); the
//! copying snapshotter, for machines without overlayfs, materializes the chain into a plain
//! directory and records what a step changed by comparing trees. Either reads the other's
//! snapshots.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::Error;
use crate::mount::{self, MountGuard};
use crate::run_mounts::{ScratchCopy, ScratchDir};
use crate::unpack::UnpackStats;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    parent: Option<String>,
    committed: bool,
}

/// How many lower directories an overlay mount stacks at most; longer chains mount their
/// bottom part as one flattened tree (the kernel's own limit is 500).
pub const MAX_LOWERS: usize = 128;

/// How snapshots are mounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotterKind {
    /// Overlay when the kernel and filesystem allow it, else copying.
    #[default]
    Auto,
    /// overlayfs.
    Overlay,
    /// Plain directories, copied (reflinked where the filesystem can).
    Native,
}

impl std::str::FromStr for SnapshotterKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" => Ok(SnapshotterKind::Auto),
            "overlay" | "overlayfs" => Ok(SnapshotterKind::Overlay),
            "native" => Ok(SnapshotterKind::Native),
            other => Err(Error::UnknownSnapshotter(other.to_string())),
        }
    }
}

/// Makes and mounts snapshots: what the solver needs of them, so that it runs on any
/// implementation (the real one is [`LayerSnapshotter`]).
///
/// Snapshot ids are opaque strings; a committed snapshot is immutable and can be the parent of
/// others or be viewed.
pub trait Snapshotter: Send + Sync + std::fmt::Debug {
    /// Starts a writable snapshot on top of `parent` (a committed snapshot) or of nothing.
    fn prepare(&self, parent: Option<&str>) -> Result<Active, Error>;

    /// Mounts an active snapshot writable, its parent chain below; what is written to it is
    /// recorded in the snapshot by the time the guard is unmounted.
    fn mount(&self, active: &Active) -> Result<MountGuard, Error>;

    /// Freezes an active snapshot; its id can then be a parent and be viewed.
    fn commit(&self, active: Active) -> Result<String, Error>;

    /// A read-only view of a committed snapshot with its ancestors, or of the empty filesystem.
    fn view(&self, id: Option<&str>) -> Result<View, Error>;

    /// True when `id` is a committed snapshot.
    fn exists(&self, id: &str) -> bool;

    /// The ids of a snapshot and its ancestors, the snapshot first.
    fn chain(&self, id: &str) -> Result<Vec<String>, Error>;

    /// A committed snapshot with the same changes as `id`, on top of `parent` instead of `id`'s
    /// own parent: how a merge stacks a layer on another base.
    fn rebase(&self, id: &str, parent: Option<&str>) -> Result<String, Error>;

    /// How it mounts (`Overlay` or `Native`), which decides how a step's scratch copies are
    /// made.
    fn kind(&self) -> SnapshotterKind;

    /// The directory holding committed snapshot `id`'s own changes (overlay upperdir format),
    /// where the implementation keeps one: its files may be hard-linked into another snapshot,
    /// never changed. `None` by default.
    fn changes_dir(&self, id: &str) -> Option<PathBuf> {
        let _ = id;
        None
    }

    /// A file beside snapshot `id` (active or committed) for facts about its changes that are
    /// not part of them, named `note` (lowercase letters and `-`); removed with the snapshot.
    /// `None` by default and for other names.
    fn note_path(&self, id: &str, note: &str) -> Option<PathBuf> {
        let _ = (id, note);
        None
    }

    /// The snapshot the copy `vertex` made last, as remembered by [`Snapshotter::remember_copy`]:
    /// a hint only (it may be gone or stale), for linking what that copy wrote. `None` by
    /// default.
    fn last_copy(&self, vertex: &xbuild_llb::Digest) -> Option<String> {
        let _ = vertex;
        None
    }

    /// Remembers that the copy `vertex` made snapshot `id` (a failure only costs the next run
    /// its links). Does nothing by default.
    fn remember_copy(&self, vertex: &xbuild_llb::Digest, id: &str) {
        let _ = (vertex, id);
    }

    /// A fresh path (not created) for something a step mounts for a while (scratch copies,
    /// secrets), where what a dead build left is found and cleaned up.
    fn scratch_path(&self, what: &str) -> PathBuf;

    /// What a step's read-write bind mount of the host path `source` binds: for a directory,
    /// a copy whose writes are thrown away, made at a fresh [`scratch_path`](Self::scratch_path)
    /// (an overlay with a scratch upper directory when [`kind`](Self::kind) is `Overlay`, a
    /// plain copy otherwise); `None` for anything else, which is bound as it is.
    fn scratch_copy(&self, source: &Path) -> Result<Option<ScratchCopy>, Error> {
        if !source.is_dir() {
            return Ok(None);
        }
        let dir = ScratchDir::new(self.scratch_path("run"));
        let overlay = self.kind() == SnapshotterKind::Overlay;
        ScratchCopy::new(source, dir, overlay).map(Some)
    }

    /// Unpacks the uncompressed tar stream `layer` of an image layer into the changes of
    /// active snapshot `active`, OCI whiteouts turned into overlay whiteouts; by default into
    /// [`Active::upper`] (see [`unpack`](fn@crate::unpack)).
    fn unpack_layer(&self, active: &Active, layer: &mut dyn Read) -> Result<UnpackStats, Error> {
        crate::unpack::unpack(layer, &active.upper())
    }

    /// Releases what it keeps for the session using it, once that session is done.
    fn release_owner(&self);
}

/// The snapshotter of one xbuild root: each snapshot a directory of changes in overlay upperdir
/// format, mounted as overlayfs or, where overlay is unavailable, materialized by copying.
#[derive(Debug, Clone)]
pub struct LayerSnapshotter {
    dir: PathBuf,
    mounts: PathBuf,
    root: PathBuf,
    /// Whether overlay mounts work here; probed the first time a mount is needed.
    overlay: Arc<OnceLock<bool>>,
    /// The session that owns what this snapshotter creates (mountpoints are named after it,
    /// snapshots being filled are listed under `<root>/active/<owner>/`), so that what a
    /// killed process left can be found and cleaned up.
    owner: Option<String>,
}

/// One snapshot on disk, as [`LayerSnapshotter::list`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// Its id.
    pub id: String,
    /// Its parent.
    pub parent: Option<String>,
    /// False while it is being filled (or when its builder died).
    pub committed: bool,
}

/// A writable snapshot being filled, as a [`Snapshotter`] hands it out: aborted (its changes
/// removed) when dropped uncommitted.
pub struct Active {
    id: String,
    parent: Option<String>,
    upper: PathBuf,
    /// Removes what the snapshot holds; taken away when it is committed.
    abort: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("id", &self.id)
            .field("parent", &self.parent)
            .field("upper", &self.upper)
            .finish_non_exhaustive()
    }
}

impl Active {
    /// The handle of active snapshot `id` on top of `parent`, filled through the directory
    /// `upper`; `abort` runs if the handle is dropped before [`Active::committed`] (for
    /// [`Snapshotter`] implementations).
    pub fn new(
        id: String,
        parent: Option<String>,
        upper: PathBuf,
        abort: impl FnOnce() + Send + 'static,
    ) -> Self {
        Active {
            id,
            parent,
            upper,
            abort: Some(Box::new(abort)),
        }
    }

    /// The snapshot's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The committed snapshot it is on top of.
    pub fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    /// The directory holding its changes.
    pub fn upper(&self) -> PathBuf {
        self.upper.clone()
    }

    /// Marks it committed, so that dropping it no longer aborts it; returns its id (for
    /// [`Snapshotter`] implementations).
    pub fn committed(mut self) -> String {
        self.abort = None;
        std::mem::take(&mut self.id)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if let Some(abort) = self.abort.take() {
            abort();
        }
    }
}

/// A read-only view of a committed snapshot chain: a plain directory or an overlay mount.
#[derive(Debug)]
pub enum View {
    /// The chain is one snapshot (or none): its directory, read in place.
    Dir(PathBuf),
    /// The chain's layers mounted read-only.
    Mounted(MountGuard),
}

impl View {
    /// The view's root directory.
    pub fn path(&self) -> &Path {
        match self {
            View::Dir(p) => p,
            View::Mounted(m) => m.path(),
        }
    }
}

/// True for a snapshot id that names a directory under the snapshots (no separators, no
/// dots).
fn plain_name(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut n: u64 = rand::random();
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n & 31) as usize] as char;
            n >>= 5;
            c
        })
        .collect()
}

impl LayerSnapshotter {
    /// The snapshotter of the xbuild root `root`, overlay when this machine can mount one.
    pub fn new(root: &Path) -> Result<Self, Error> {
        Self::with_kind(root, SnapshotterKind::Auto)
    }

    /// The snapshotter of the xbuild root `root`, of the given kind; `Overlay` fails when this
    /// machine cannot mount an overlay.
    pub fn with_kind(root: &Path, kind: SnapshotterKind) -> Result<Self, Error> {
        let s = LayerSnapshotter {
            dir: root.join("snapshots"),
            mounts: root.join("mounts"),
            root: root.to_path_buf(),
            overlay: Arc::new(OnceLock::new()),
            owner: None,
        };
        for d in [&s.dir, &s.mounts, &s.dir.join("empty")] {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        match kind {
            SnapshotterKind::Native => {
                let _ = s.overlay.set(false);
            }
            SnapshotterKind::Overlay => {
                if !s.overlay() {
                    return Err(Error::OverlayUnsupported);
                }
            }
            // Probed when first needed: a build that mounts nothing never pays for it.
            SnapshotterKind::Auto => {}
        }
        Ok(s)
    }

    /// The same snapshotter, with what it creates from now on owned by session `owner` (see
    /// [`RootDirs::clean_owner`](crate::RootDirs::clean_owner)).
    pub fn with_owner(mut self, owner: &str) -> Self {
        self.owner = Some(owner.to_string());
        self
    }

    fn overlay(&self) -> bool {
        *self.overlay.get_or_init(|| {
            let probe = self.mounts.join(self.mount_name("probe"));
            crate::mount::overlay_works(&probe)
        })
    }

    /// A new mountpoint name under `<root>/mounts/`, carrying the owner's id.
    fn mount_name(&self, what: &str) -> String {
        match &self.owner {
            Some(o) => format!("{o}-{what}-{}", new_id()),
            None => format!("{what}-{}", new_id()),
        }
    }

    /// The changes a committed snapshot made against its parent (added, modified and deleted
    /// paths, opaque directories), for the exporter.
    pub fn diff(&self, id: &str) -> Result<Vec<crate::diff::Change>, Error> {
        crate::diff::changes(&self.upper(id))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("meta.json")
    }

    fn read_meta(&self, id: &str) -> Result<Meta, Error> {
        let p = self.meta_path(id);
        let bytes = std::fs::read(&p).map_err(|_| Error::SnapshotNotFound(id.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::io(&p, std::io::Error::other(e)))
    }

    fn write_meta(&self, id: &str, meta: &Meta) -> Result<(), Error> {
        let p = self.meta_path(id);
        let tmp = p.with_extension("tmp");
        let bytes =
            serde_json::to_vec(meta).map_err(|e| Error::io(&p, std::io::Error::other(e)))?;
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))
    }

    /// The directory holding a snapshot's own changes.
    pub fn upper(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("fs")
    }

    /// A snapshot's parent.
    pub fn parent(&self, id: &str) -> Result<Option<String>, Error> {
        Ok(self.read_meta(id)?.parent)
    }

    /// The layer directories of `id`'s chain, bottom first.
    fn bottom_up(&self, id: &str) -> Result<Vec<PathBuf>, Error> {
        let mut v: Vec<PathBuf> = self.chain(id)?.iter().map(|i| self.upper(i)).collect();
        v.reverse();
        Ok(v)
    }

    /// The overlay lower directories for `id`'s chain, top first: at most [`MAX_LOWERS`], the
    /// bottom of a longer chain replaced by its flattened tree.
    fn lowers(&self, id: &str) -> Result<Vec<PathBuf>, Error> {
        let chain = self.chain(id)?;
        if chain.len() <= MAX_LOWERS {
            return Ok(chain.iter().map(|i| self.upper(i)).collect());
        }
        let keep = MAX_LOWERS - 1;
        let mut out: Vec<PathBuf> = chain[..keep].iter().map(|i| self.upper(i)).collect();
        out.push(self.flat(&chain[keep..])?);
        Ok(out)
    }

    /// The flattened tree of `chain` (top first), made once and kept beside its top snapshot.
    fn flat(&self, chain: &[String]) -> Result<PathBuf, Error> {
        let top = &chain[0];
        let path = self.dir.join(top).join("flat");
        if path.is_dir() {
            return Ok(path);
        }
        // Start from the nearest flattened ancestor, then apply the layers above it.
        let base = chain[1..]
            .iter()
            .position(|i| self.dir.join(i).join("flat").is_dir())
            .map(|n| n + 1);
        let mut layers: Vec<PathBuf> = Vec::new();
        let upto = base.unwrap_or(chain.len());
        if let Some(b) = base {
            layers.push(self.dir.join(&chain[b]).join("flat"));
        }
        layers.extend(chain[..upto].iter().rev().map(|i| self.upper(i)));
        let tmp = self.dir.join(top).join(format!("flat-{}", new_id()));
        let made = crate::native::materialize(&layers, &tmp);
        if let Err(e) = made {
            let _ = crate::native::remove_tree(&tmp);
            return Err(e);
        }
        tracing::debug!(snapshot = %top, layers = chain.len(), "flattened a long chain");
        if std::fs::rename(&tmp, &path).is_err() {
            // Another build flattened it first.
            crate::native::remove_tree(&tmp)?;
        }
        Ok(path)
    }
}

impl Snapshotter for LayerSnapshotter {
    /// Starts a writable snapshot on top of `parent` (a committed snapshot) or of nothing.
    fn prepare(&self, parent: Option<&str>) -> Result<Active, Error> {
        if let Some(p) = parent
            && !self.exists(p)
        {
            return Err(Error::SnapshotNotFound(p.to_string()));
        }
        let id = new_id();
        let marker = match &self.owner {
            Some(o) => {
                let d = self.root.join("active").join(o);
                std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
                let m = d.join(&id);
                std::fs::File::create(&m).map_err(|e| Error::io(&m, e))?;
                Some(m)
            }
            None => None,
        };
        let dir = self.dir.join(&id);
        let aborted = dir.clone();
        let active = Active::new(
            id.clone(),
            parent.map(str::to_string),
            dir.join("fs"),
            move || {
                if let Err(e) = std::fs::remove_dir_all(&aborted)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(dir = %aborted.display(), error = %e, "could not remove an aborted snapshot");
                }
                if let Some(m) = marker {
                    let _ = std::fs::remove_file(m);
                }
            },
        );
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for d in ["fs", "work"] {
            let p = dir.join(d);
            std::fs::create_dir(&p).map_err(|e| Error::io(&p, e))?;
        }
        std::fs::set_permissions(
            dir.join("fs"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| Error::io(&dir, e))?;
        self.write_meta(
            &id,
            &Meta {
                parent: parent.map(str::to_string),
                committed: false,
            },
        )?;
        Ok(active)
    }

    /// Mounts an active snapshot writable: its parent chain as lowers, its own dir as upper
    /// (overlay), or the chain copied into a directory whose changes are recorded when the
    /// guard is unmounted (copying).
    fn mount(&self, active: &Active) -> Result<MountGuard, Error> {
        let target = self.mounts.join(self.mount_name(active.id()));
        if !self.overlay() {
            let layers = match active.parent() {
                Some(p) => self.bottom_up(p)?,
                None => vec![],
            };
            let mut guard = MountGuard::tree(target.clone());
            crate::native::materialize(&layers, &target)?;
            guard.capture = Some(crate::native::Capture::take(&target, active.upper())?);
            return Ok(guard);
        }
        match active.parent() {
            None => mount::bind(&active.upper(), &target),
            Some(p) => {
                let lowers = self.lowers(p)?;
                let work = self.dir.join(active.id()).join("work");
                mount::overlay(&lowers, Some((&active.upper(), &work)), &target)
            }
        }
    }

    /// Freezes an active snapshot; its id can then be a parent and be viewed.
    fn commit(&self, active: Active) -> Result<String, Error> {
        let work = self.dir.join(active.id()).join("work");
        if work.exists() {
            std::fs::remove_dir_all(&work).map_err(|e| Error::io(&work, e))?;
        }
        sync_dir(&active.upper())?;
        self.write_meta(
            active.id(),
            &Meta {
                parent: active.parent().map(str::to_string),
                committed: true,
            },
        )?;
        let id = active.committed();
        if let Some(o) = &self.owner {
            let _ = std::fs::remove_file(self.root.join("active").join(o).join(&id));
        }
        Ok(id)
    }

    /// A read-only view of a committed snapshot with its ancestors, or of the empty filesystem.
    fn view(&self, id: Option<&str>) -> Result<View, Error> {
        let Some(id) = id else {
            return Ok(View::Dir(self.dir.join("empty")));
        };
        let chain = self.chain(id)?;
        if chain.len() == 1 {
            return Ok(View::Dir(self.upper(id)));
        }
        let target = self.mounts.join(self.mount_name("view"));
        if !self.overlay() {
            let guard = MountGuard::tree(target.clone());
            crate::native::materialize(&self.bottom_up(id)?, &target)?;
            return Ok(View::Mounted(guard));
        }
        let lowers = self.lowers(id)?;
        mount::overlay(&lowers, None, &target).map(View::Mounted)
    }

    /// True when `id` is a committed snapshot.
    fn exists(&self, id: &str) -> bool {
        self.read_meta(id).map(|m| m.committed).unwrap_or(false)
    }

    /// The ids of a snapshot and its ancestors, the snapshot first.
    fn chain(&self, id: &str) -> Result<Vec<String>, Error> {
        let mut out = vec![id.to_string()];
        let mut cur = self.read_meta(id)?.parent;
        while let Some(p) = cur {
            if out.contains(&p) {
                return Err(Error::SnapshotNotFound(format!("{p} (parent cycle)")));
            }
            cur = self.read_meta(&p)?.parent;
            out.push(p);
        }
        Ok(out)
    }

    /// A new committed snapshot with the same changes as `id`, on top of `parent` instead of
    /// `id`'s own parent (files are hard-linked, not copied): how a merge stacks a layer on
    /// another base.
    fn rebase(&self, id: &str, parent: Option<&str>) -> Result<String, Error> {
        if !self.exists(id) {
            return Err(Error::SnapshotNotFound(id.to_string()));
        }
        if self.parent(id)?.as_deref() == parent {
            return Ok(id.to_string());
        }
        let active = self.prepare(parent)?;
        let upper = active.upper();
        std::fs::remove_dir(&upper).map_err(|e| Error::io(&upper, e))?;
        crate::native::link_layer(&self.upper(id), &upper)?;
        self.commit(active)
    }

    /// The kind in use (`Overlay` or `Native`).
    fn kind(&self) -> SnapshotterKind {
        if self.overlay() {
            SnapshotterKind::Overlay
        } else {
            SnapshotterKind::Native
        }
    }

    /// `<root>/snapshots/<id>/fs` when `id` is committed.
    fn changes_dir(&self, id: &str) -> Option<PathBuf> {
        (plain_name(id) && self.exists(id)).then(|| self.upper(id))
    }

    /// `<root>/snapshots/<id>/note-<note>`.
    fn note_path(&self, id: &str, note: &str) -> Option<PathBuf> {
        let word = !note.is_empty() && note.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
        (plain_name(id) && word).then(|| self.dir.join(id).join(format!("note-{note}")))
    }

    /// A fresh path under `<root>/mounts/` for something mounted for a while (a step's
    /// scratch copies, secrets): named after the owner, so that it is cleaned up if the owner
    /// dies. Not created.
    fn last_copy(&self, vertex: &xbuild_llb::Digest) -> Option<String> {
        crate::reuse::last_copy(&self.root, vertex)
    }

    fn remember_copy(&self, vertex: &xbuild_llb::Digest, id: &str) {
        crate::reuse::remember_copy(&self.root, vertex, id);
    }

    fn scratch_path(&self, what: &str) -> PathBuf {
        self.mounts.join(self.mount_name(what))
    }

    /// Removes the owner's (empty) list of snapshots being filled, when the owner is done.
    fn release_owner(&self) {
        if let Some(o) = &self.owner {
            let _ = std::fs::remove_dir(self.root.join("active").join(o));
        }
    }
}

impl LayerSnapshotter {
    /// Every snapshot on disk, committed or not.
    pub fn list(&self) -> Result<Vec<SnapshotEntry>, Error> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))? {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let id = entry.file_name().to_string_lossy().to_string();
            if id == "empty" || id.contains('.') {
                continue;
            }
            match self.read_meta(&id) {
                Ok(m) => out.push(SnapshotEntry {
                    id,
                    parent: m.parent,
                    committed: m.committed,
                }),
                // Being created right now, or its creator died before writing anything.
                Err(_) => out.push(SnapshotEntry {
                    id,
                    parent: None,
                    committed: false,
                }),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The bytes a snapshot takes on disk (its changes, and its flattened tree if any); files
    /// already counted in `seen` (hard links shared with other snapshots) count once.
    pub fn disk_usage(&self, id: &str, seen: &mut HashSet<(u64, u64)>) -> u64 {
        disk_usage(&self.dir.join(id), seen)
    }

    /// Forgets the copy hints ([`Snapshotter::remember_copy`]) naming a snapshot `keep` does
    /// not accept (for prune).
    pub fn forget_copies_unless(&self, keep: impl Fn(&str) -> bool) {
        crate::reuse::forget_copies_unless(&self.root, keep);
    }

    /// Deletes a snapshot: it disappears at once (moved to `<root>/trash/`), then its files
    /// are removed. The caller makes sure nothing uses it or stands on it.
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        if id.is_empty() || id == "empty" || id.contains(['/', '.']) {
            return Err(Error::SnapshotNotFound(id.to_string()));
        }
        let trash = self.root.join("trash");
        std::fs::create_dir_all(&trash).map_err(|e| Error::io(&trash, e))?;
        let from = self.dir.join(id);
        let to = trash.join(format!("{id}-{}", new_id()));
        match std::fs::rename(&from, &to) {
            Ok(()) => crate::native::remove_tree(&to),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&from, e)),
        }
    }

    /// Removes what a deletion interrupted by a crash left in `<root>/trash/`.
    pub fn empty_trash(&self) -> Result<(), Error> {
        let trash = self.root.join("trash");
        let Ok(entries) = std::fs::read_dir(&trash) else {
            return Ok(());
        };
        for e in entries.flatten() {
            crate::native::remove_tree(&e.path())?;
        }
        Ok(())
    }
}

/// The bytes the tree at `p` takes on disk, without crossing into other filesystems; inodes in
/// `seen` are not counted again.
pub(crate) fn disk_usage(p: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    let dev = top.dev();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            if m.is_dir() {
                stack.push(e.path());
            }
            if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            total += m.blocks() * 512;
        }
    }
    total
}

/// syncfs on the filesystem holding `dir`, so committed content survives a crash.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    rustix::fs::syncfs(&f).map_err(|e| Error::io(dir, e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn chain_and_abort() {
        let dir = tempfile::tempdir().unwrap();
        let s = LayerSnapshotter::new(dir.path()).unwrap();
        let a = s.prepare(None).unwrap();
        std::fs::write(a.upper().join("f"), "1").unwrap();
        let a = s.commit(a).unwrap();
        let b = s.prepare(Some(&a)).unwrap();
        let b_id = b.id().to_string();
        drop(b);
        assert!(!dir.path().join("snapshots").join(&b_id).exists());
        let c = s.commit(s.prepare(Some(&a)).unwrap()).unwrap();
        assert_eq!(s.chain(&c).unwrap(), vec![c.clone(), a.clone()]);
        assert!(s.prepare(Some("nope")).is_err());
    }

    /// What a step does to the base below, and what its diff must say.
    fn run_scenario(kind: SnapshotterKind) {
        use crate::diff::Change;
        let dir = tempfile::tempdir().unwrap();
        let s = LayerSnapshotter::with_kind(dir.path(), kind).unwrap();
        assert_eq!(s.kind(), kind);
        let a = s.prepare(None).unwrap();
        let up = a.upper();
        for d in ["dir", "opq", "dtof"] {
            std::fs::create_dir(up.join(d)).unwrap();
        }
        for (f, body) in [
            ("keep", "k"),
            ("mod", "m"),
            ("del", "d"),
            ("dir/a", "a"),
            ("dir/b", "b"),
            ("opq/x", "x"),
            ("opq/y", "y"),
            ("ftod", "f"),
            ("dtof/z", "z"),
        ] {
            std::fs::write(up.join(f), body).unwrap();
        }
        let base = s.commit(a).unwrap();
        let b = s.prepare(Some(&base)).unwrap();
        let m = s.mount(&b).unwrap();
        let root = m.path().to_path_buf();
        assert_eq!(std::fs::read_to_string(root.join("dir/b")).unwrap(), "b");
        std::fs::write(root.join("mod"), "m2").unwrap();
        std::fs::remove_file(root.join("del")).unwrap();
        std::fs::write(root.join("new"), "n").unwrap();
        std::fs::remove_dir_all(root.join("opq")).unwrap();
        std::fs::create_dir(root.join("opq")).unwrap();
        std::fs::write(root.join("opq/fresh"), "f").unwrap();
        std::fs::remove_file(root.join("dir/a")).unwrap();
        std::fs::remove_file(root.join("ftod")).unwrap();
        std::fs::create_dir(root.join("ftod")).unwrap();
        std::fs::remove_dir_all(root.join("dtof")).unwrap();
        std::fs::write(root.join("dtof"), "now a file").unwrap();
        m.unmount().unwrap();
        let top = s.commit(b).unwrap();
        let diff: Vec<String> = s
            .diff(&top)
            .unwrap()
            .into_iter()
            .map(|c| match c {
                Change::Delete { path } => format!("D {}", path.display()),
                Change::Upsert { path, opaque, .. } if path.as_os_str() == "opq" => {
                    format!("U opq opaque={opaque}")
                }
                Change::Upsert { path, .. } => format!("U {}", path.display()),
            })
            .collect();
        assert_eq!(
            diff,
            vec![
                "D del",
                "U dir",
                "D dir/a",
                "U dtof",
                "U ftod",
                "U mod",
                "U new",
                "U opq opaque=true",
                "U opq/fresh",
            ],
            "{kind:?}"
        );
        let v = s.view(Some(&top)).unwrap();
        let r = |p: &str| std::fs::read_to_string(v.path().join(p)).ok();
        assert_eq!(r("mod").as_deref(), Some("m2"));
        assert_eq!(r("keep").as_deref(), Some("k"));
        assert_eq!(r("del"), None);
        assert_eq!(r("opq/x"), None);
        assert_eq!(r("opq/fresh").as_deref(), Some("f"));
        assert_eq!(r("dtof").as_deref(), Some("now a file"));
        assert!(v.path().join("ftod").is_dir());
        drop(v);
        // A merge re-uses the step's layer on another base.
        let other = s.commit(s.prepare(None).unwrap()).unwrap();
        let moved = s.rebase(&top, Some(&other)).unwrap();
        assert_eq!(s.chain(&moved).unwrap(), vec![moved.clone(), other]);
        assert_eq!(s.diff(&moved).unwrap().len(), 9);
        assert!(
            std::fs::read_dir(dir.path().join("mounts"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn diffs_of_every_kind_of_change_overlay() {
        if is_root() {
            run_scenario(SnapshotterKind::Overlay);
        }
    }

    #[test]
    fn diffs_of_every_kind_of_change_native() {
        if is_root() {
            run_scenario(SnapshotterKind::Native);
        }
    }

    #[test]
    fn long_chains_mount() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for kind in [SnapshotterKind::Overlay, SnapshotterKind::Native] {
            let s = LayerSnapshotter::with_kind(dir.path(), kind).unwrap();
            let mut top: Option<String> = None;
            let n = MAX_LOWERS + 20;
            for i in 0..n {
                let a = s.prepare(top.as_deref()).unwrap();
                std::fs::write(a.upper().join(format!("f{i}")), format!("{i}")).unwrap();
                top = Some(s.commit(a).unwrap());
            }
            let b = s.prepare(top.as_deref()).unwrap();
            let m = s.mount(&b).unwrap();
            for i in [0, MAX_LOWERS / 2, n - 1] {
                assert_eq!(
                    std::fs::read_to_string(m.path().join(format!("f{i}"))).unwrap(),
                    i.to_string()
                );
            }
            std::fs::write(m.path().join("last"), "x").unwrap();
            m.unmount().unwrap();
            let last = s.commit(b).unwrap();
            assert_eq!(s.diff(&last).unwrap().len(), 1);
            let v = s.view(Some(&last)).unwrap();
            assert_eq!(std::fs::read_dir(v.path()).unwrap().count(), n + 1);
        }
    }

    #[test]
    fn layers_unpack_into_active_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let s = LayerSnapshotter::with_kind(dir.path(), SnapshotterKind::Native).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tar.append_data(&mut h, "etc/hello", &b"hello"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let a = s.prepare(None).unwrap();
        let stats = s.unpack_layer(&a, &mut &tar[..]).unwrap();
        assert_eq!((stats.bytes, stats.whiteouts), (5, 0));
        let id = s.commit(a).unwrap();
        assert_eq!(
            std::fs::read_to_string(s.upper(&id).join("etc/hello")).unwrap(),
            "hello"
        );
        let a = s.prepare(Some(&id)).unwrap();
        assert!(s.unpack_layer(&a, &mut &b"not a tar"[..]).is_err());
    }

    #[test]
    fn scratch_copies_of_directories_only() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = LayerSnapshotter::new(dir.path()).unwrap();
        let source = dir.path().join("source");
        std::fs::create_dir(&source).unwrap();
        std::fs::write(source.join("f"), "f").unwrap();
        assert!(s.scratch_copy(&source.join("f")).unwrap().is_none());
        assert!(s.scratch_copy(&source.join("missing")).unwrap().is_none());
        let copy = s.scratch_copy(&source).unwrap().unwrap();
        assert!(copy.path().starts_with(dir.path().join("mounts")));
        std::fs::write(copy.path().join("f"), "changed").unwrap();
        drop(copy);
        assert_eq!(std::fs::read_to_string(source.join("f")).unwrap(), "f");
        assert_eq!(
            std::fs::read_dir(dir.path().join("mounts"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn overlay_mount_and_view() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = LayerSnapshotter::new(dir.path()).unwrap();
        let a = s.prepare(None).unwrap();
        std::fs::write(a.upper().join("base"), "base").unwrap();
        let a = s.commit(a).unwrap();
        let b = s.prepare(Some(&a)).unwrap();
        {
            let m = s.mount(&b).unwrap();
            assert_eq!(
                std::fs::read_to_string(m.path().join("base")).unwrap(),
                "base"
            );
            std::fs::write(m.path().join("new"), "new").unwrap();
            m.unmount().unwrap();
        }
        assert!(b.upper().join("new").exists());
        assert!(!b.upper().join("base").exists());
        let b = s.commit(b).unwrap();
        let v = s.view(Some(&b)).unwrap();
        assert_eq!(
            std::fs::read_to_string(v.path().join("new")).unwrap(),
            "new"
        );
        assert_eq!(
            std::fs::read_to_string(v.path().join("base")).unwrap(),
            "base"
        );
        let p = v.path().to_path_buf();
        drop(v);
        assert!(!p.exists());
    }
}
