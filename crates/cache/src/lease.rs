//! Sessions and leases: which `xbuild` process is alive on a root, and what it holds.
//!
//! Every process that builds (or prunes) opens a [`Session`]: a file `<root>/sessions/<id>`
//! that it keeps locked (`flock`, exclusive) as long as it lives. The kernel drops the lock
//! when the process dies, however it dies, so a session file that can be locked belongs to a
//! dead process: [`dead_sessions`] finds them so that what they left (mounts, containers,
//! uncommitted snapshots, named after the session id) can be cleaned up.
//!
//! The session file is also the process's lease: each line names something it uses (`snapshot
//! <id>`, `blob <digest>`), so that `prune` never deletes what a running build needs. A lease line is written
//! before the thing it names can be seen by a pruner (see the GC lock in [`crate::lock`]).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Error, io};

/// What a lease line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hold {
    /// A committed snapshot (its ancestors are held with it).
    Snapshot,
    /// A blob of the content store (by digest).
    Blob,
}

impl Hold {
    fn tag(self) -> &'static str {
        match self {
            Hold::Snapshot => "snapshot",
            Hold::Blob => "blob",
        }
    }

    fn parse(tag: &str) -> Option<Self> {
        match tag {
            "snapshot" => Some(Hold::Snapshot),
            "blob" => Some(Hold::Blob),
            _ => None,
        }
    }
}

/// A live process on a root: a locked session file holding its leases; removed when dropped.
#[derive(Debug)]
pub struct Session {
    id: String,
    path: PathBuf,
    file: File,
    held: Mutex<HashSet<(Hold, String)>>,
}

/// How long a half-opened session file is left alone before it counts as a dead process's.
const HALF_OPEN_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

fn sessions_dir(root: &Path) -> PathBuf {
    root.join("sessions")
}

impl Session {
    /// Opens a new session on the root `root`.
    pub fn start(root: &Path) -> Result<Self, Error> {
        let dir = sessions_dir(root);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let id = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        // Locked before it is visible under its name, so that no one takes it for dead.
        let tmp = dir.join(format!(".{id}.new"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .read(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.lock().map_err(io(&tmp))?;
        let path = dir.join(&id);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(Session {
            id,
            path,
            file,
            held: Mutex::new(HashSet::new()),
        })
    }

    /// The session's id (`<pid>-<random>`); what it creates on the host is named after it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records that this process uses `name`, so that no pruner deletes it while it lives.
    pub fn hold(&self, kind: Hold, name: &str) -> Result<(), Error> {
        let mut held = self.held.lock().map_err(|_| Error::Corrupt {
            key: self.path.display().to_string(),
            message: "lease table poisoned".into(),
        })?;
        if !held.insert((kind, name.to_string())) {
            return Ok(());
        }
        // One append of a whole line: a reader sees it entirely or not at all.
        (&self.file)
            .write_all(format!("{} {name}\n", kind.tag()).as_bytes())
            .map_err(io(&self.path))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The session of a process that died; locked by whoever found it, so that one process cleans
/// it up. [`DeadSession::finish`] removes its record once its leftovers are gone.
#[derive(Debug)]
pub struct DeadSession {
    id: String,
    path: PathBuf,
    _file: File,
}

impl DeadSession {
    /// The dead session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Removes the session record (after its leftovers were cleaned up).
    pub fn finish(self) -> Result<(), Error> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                path: self.path.clone(),
                source: e,
            }),
        }
    }
}

/// The sessions on `root` whose process is gone, each locked for its caller to clean up.
pub fn dead_sessions(root: &Path) -> Result<Vec<DeadSession>, Error> {
    let dir = sessions_dir(root);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                path: dir,
                source: e,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(&dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if name.starts_with('.') {
            // A session being opened is created, then locked, then renamed: until it is
            // locked it looks dead. Only an old one is a process that died while opening.
            let young = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age < HALF_OPEN_GRACE);
            if young {
                continue;
            }
        }
        let Ok(file) = OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        if let Some(tmp) = name.strip_prefix('.') {
            // A process that died while opening its session: nothing can carry its id yet.
            let _ = std::fs::remove_file(&path);
            tracing::debug!(session = tmp, "removed a half-opened session");
            continue;
        }
        out.push(DeadSession {
            id: name,
            path,
            _file: file,
        });
    }
    Ok(out)
}

/// What the live sessions on `root` hold, and their ids.
#[derive(Clone, Debug, Default)]
pub struct LiveLeases {
    /// The ids of the live sessions.
    pub sessions: Vec<String>,
    /// Every snapshot some live session holds.
    pub snapshots: HashSet<String>,
    /// Every blob (digest) some live session holds.
    pub blobs: HashSet<String>,
}

/// The leases of every live session on `root`.
pub fn live_leases(root: &Path) -> Result<LiveLeases, Error> {
    let dir = sessions_dir(root);
    let mut out = LiveLeases::default();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(Error::Io {
                path: dir,
                source: e,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(io(&dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        let Ok(file) = OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if file.try_lock_shared().is_ok() {
            // Nobody holds it: a dead session, whose leases count for nothing.
            continue;
        }
        let text = std::io::read_to_string(&file).map_err(io(&path))?;
        // Only whole lines: a line being appended right now is not a lease yet.
        let complete = text.rfind('\n').map(|i| &text[..=i]).unwrap_or("");
        for line in complete.lines() {
            let Some((tag, value)) = line.split_once(' ') else {
                continue;
            };
            match Hold::parse(tag) {
                Some(Hold::Snapshot) => {
                    out.snapshots.insert(value.to_string());
                }
                Some(Hold::Blob) => {
                    out.blobs.insert(value.to_string());
                }
                None => {}
            }
        }
        if !name.starts_with('.') {
            out.sessions.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_sessions_hold_and_dead_ones_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let a = Session::start(dir.path()).unwrap();
        a.hold(Hold::Snapshot, "s1").unwrap();
        a.hold(Hold::Snapshot, "s1").unwrap();
        a.hold(Hold::Snapshot, "s2").unwrap();
        assert!(dead_sessions(dir.path()).unwrap().is_empty());
        let live = live_leases(dir.path()).unwrap();
        assert_eq!(live.sessions, vec![a.id().to_string()]);
        assert_eq!(live.snapshots.len(), 2);
        // A session record nobody holds is a dead process's.
        let path = dir.path().join("sessions").join("999-dead");
        std::fs::write(&path, "snapshot s9\n").unwrap();
        let live = live_leases(dir.path()).unwrap();
        assert!(!live.snapshots.contains("s9"));
        let dead = dead_sessions(dir.path()).unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].id(), "999-dead");
        // While one process cleans it up, no other one sees it as dead.
        assert!(dead_sessions(dir.path()).unwrap().is_empty());
        for d in dead {
            d.finish().unwrap();
        }
        assert!(!path.exists());
        drop(a);
        assert_eq!(
            std::fs::read_dir(dir.path().join("sessions"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn a_session_being_opened_is_not_taken_for_dead() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("sessions");
        std::fs::create_dir_all(&sessions).unwrap();
        // Created but not locked yet by its (live) opener: left alone.
        let young = sessions.join(".123-abc.new");
        std::fs::write(&young, "").unwrap();
        assert!(dead_sessions(dir.path()).unwrap().is_empty());
        assert!(young.exists());
        // Left half-opened long ago by a process that died: removed.
        let old = sessions.join(".456-def.new");
        std::fs::write(&old, "").unwrap();
        let past = std::time::SystemTime::now() - 2 * HALF_OPEN_GRACE;
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        assert!(dead_sessions(dir.path()).unwrap().is_empty());
        assert!(!old.exists());
        assert!(young.exists());
    }
}
