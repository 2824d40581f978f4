//! What each build looked at, kept so that `xbuild debug graph --explain` can say why a step
//! missed the cache: per vertex its op, its inputs' cache keys and the content checksums of
//! what it read from the build context; per context checksum the list of files it covered.
//!
//! On disk: `<root>/history/builds/<seq>.json` (one record per build, the newest
//! [`KEEP_BUILDS`] kept) and `<root>/history/files/<checksum>` (a file list, stored once per
//! distinct checksum, so an unchanged context costs nothing to record). Written to a temp
//! file and renamed into place; a damaged record is reported as unreadable, never trusted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use xbuild_llb::Digest;

use crate::{Error, io};

/// How many build records are kept.
pub const KEEP_BUILDS: usize = 30;

/// What happened to a vertex in a build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its result came from the cache.
    Cached,
    /// It ran.
    Ran,
    /// It ran and failed.
    Failed,
    /// It never ran: an earlier failure cancelled the build.
    Cancelled,
}

/// A context checksum a vertex's key covers: which copy action, what it selected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRecord {
    /// The index of the copy action in the file op.
    pub action: usize,
    /// The copy's source path as written.
    pub src: String,
    /// The checksum (hex) of the files it selected; names a file list.
    pub checksum: String,
}

/// One vertex of a build, with everything its cache key was made of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VertexRecord {
    /// The vertex digest.
    pub digest: Digest,
    /// Its cache key in this build (unknown when it failed before it was computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Digest>,
    /// Its description (`[2/4] RUN make`).
    pub name: String,
    /// Where it is in the Dockerfile (`Dockerfile:3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The op's kind (`exec`, `file`, `image`, …).
    pub kind: String,
    /// The op itself, as JSON.
    pub op: serde_json::Value,
    /// The input vertices' digests.
    pub inputs: Vec<Digest>,
    /// The input vertices' cache keys.
    pub input_keys: Vec<Digest>,
    /// Content checksums of what it read from local sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contents: Vec<ContentRecord>,
    /// What happened.
    pub outcome: Outcome,
    /// Seconds it took, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// One build on the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// When it started (RFC 3339).
    pub started: String,
    /// The Dockerfile, when the build came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// `--build-arg` values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// `--no-cache`.
    #[serde(default)]
    pub no_cache: bool,
    /// Whether it succeeded.
    pub success: bool,
    /// Every vertex it solved, inputs first.
    pub vertices: Vec<VertexRecord>,
}

/// One path of a context checksum's file list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSum {
    /// The path relative to the context.
    pub path: String,
    /// Its checksum.
    pub sum: [u8; 32],
}

/// The build history of a root.
#[derive(Clone, Debug)]
pub struct History {
    builds: PathBuf,
    files: PathBuf,
}

const FILES_MAGIC: &[u8; 8] = b"XBFILES1";

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!(
        "tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    })
}

impl History {
    /// The history of the root `root`.
    pub fn new(root: &Path) -> Self {
        History {
            builds: root.join("history/builds"),
            files: root.join("history/files"),
        }
    }

    /// Records a build; the oldest records beyond [`KEEP_BUILDS`] are removed.
    pub fn record(&self, build: &BuildRecord) -> Result<(), Error> {
        std::fs::create_dir_all(&self.builds).map_err(io(&self.builds))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("{now:024}-{}.json", std::process::id());
        let bytes = serde_json::to_vec(build).map_err(|e| Error::Corrupt {
            key: name.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&self.builds.join(&name), &bytes)?;
        let names = self.names()?;
        if names.len() > KEEP_BUILDS {
            for old in &names[..names.len() - KEEP_BUILDS] {
                let _ = std::fs::remove_file(self.builds.join(old));
            }
        }
        Ok(())
    }

    /// Record file names, oldest first.
    fn names(&self) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        let entries = match std::fs::read_dir(&self.builds) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(e) => {
                return Err(Error::Io {
                    path: self.builds.clone(),
                    source: e,
                });
            }
        };
        for e in entries {
            let n = e.map_err(io(&self.builds))?.file_name();
            let n = n.to_string_lossy();
            if n.ends_with(".json") {
                names.push(n.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The recorded builds, newest first (unreadable records are skipped).
    pub fn builds(&self) -> Result<Vec<BuildRecord>, Error> {
        let mut out = Vec::new();
        for n in self.names()?.iter().rev() {
            let p = self.builds.join(n);
            match std::fs::read(&p).map(|b| serde_json::from_slice::<BuildRecord>(&b)) {
                Ok(Ok(r)) => out.push(r),
                Ok(Err(e)) => {
                    tracing::warn!(record = %p.display(), error = %e, "unreadable build record")
                }
                Err(e) => {
                    tracing::warn!(record = %p.display(), error = %e, "unreadable build record")
                }
            }
        }
        Ok(out)
    }

    /// True when the file list of `checksum` is stored.
    pub fn has_files(&self, checksum: &str) -> bool {
        self.files.join(checksum).is_file()
    }

    /// Stores the file list of a context checksum (once).
    pub fn put_files(&self, checksum: &str, files: &[FileSum]) -> Result<(), Error> {
        if self.has_files(checksum) {
            return Ok(());
        }
        std::fs::create_dir_all(&self.files).map_err(io(&self.files))?;
        let mut out = Vec::with_capacity(16 + files.len() * 64);
        out.extend_from_slice(FILES_MAGIC);
        out.extend_from_slice(&(files.len() as u64).to_le_bytes());
        for f in files {
            out.extend_from_slice(&(f.path.len() as u32).to_le_bytes());
            out.extend_from_slice(f.path.as_bytes());
            out.extend_from_slice(&f.sum);
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        write_atomically(&self.files.join(checksum), &out)
    }

    /// The file list of a context checksum; `None` when it was not kept (or is damaged).
    pub fn files(&self, checksum: &str) -> Option<Vec<FileSum>> {
        let bytes = std::fs::read(self.files.join(checksum)).ok()?;
        let body_len = bytes.len().checked_sub(32)?;
        let (body, sum) = bytes.split_at(body_len);
        if blake3::hash(body).as_bytes() != sum || body.get(..8)? != FILES_MAGIC {
            return None;
        }
        let count = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?) as usize;
        let mut at = 16;
        let mut out = Vec::with_capacity(count.min(1 << 20));
        for _ in 0..count {
            let len = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
            at += 4;
            let path = String::from_utf8_lossy(body.get(at..at + len)?).into_owned();
            at += len;
            let sum: [u8; 32] = body.get(at..at + 32)?.try_into().ok()?;
            at += 32;
            out.push(FileSum { path, sum });
        }
        Some(out)
    }

    /// Removes the file lists no kept build record refers to; returns how many.
    pub fn prune_files(&self) -> Result<usize, Error> {
        let keep: std::collections::HashSet<String> = self
            .builds()?
            .iter()
            .flat_map(|b| b.vertices.iter())
            .flat_map(|v| v.contents.iter().map(|c| c.checksum.clone()))
            .collect();
        let entries = match std::fs::read_dir(&self.files) {
            Ok(e) => e,
            Err(_) => return Ok(0),
        };
        let mut n = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !keep.contains(&name) && std::fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Bytes the history takes on disk.
    pub fn size(&self) -> u64 {
        let mut total = 0;
        for d in [&self.builds, &self.files] {
            if let Ok(entries) = std::fs::read_dir(d) {
                total += entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum::<u64>();
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(n: usize) -> BuildRecord {
        BuildRecord {
            started: format!("2026-01-01T00:00:{n:02}Z"),
            dockerfile: Some("Dockerfile".into()),
            build_args: BTreeMap::new(),
            no_cache: false,
            success: true,
            vertices: vec![VertexRecord {
                digest: Digest::of(b"v"),
                key: Some(Digest::of(format!("k{n}").as_bytes())),
                name: "[1/1] COPY . /".into(),
                location: Some("Dockerfile:2".into()),
                kind: "file".into(),
                op: serde_json::json!({"file": {}}),
                inputs: vec![],
                input_keys: vec![],
                contents: vec![ContentRecord {
                    action: 0,
                    src: ".".into(),
                    checksum: format!("c{n}"),
                }],
                outcome: Outcome::Ran,
                seconds: Some(0.5),
            }],
        }
    }

    #[test]
    fn records_are_kept_newest_first_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path());
        for n in 0..KEEP_BUILDS + 3 {
            h.record(&build(n)).unwrap();
        }
        let all = h.builds().unwrap();
        assert_eq!(all.len(), KEEP_BUILDS);
        assert_eq!(all[0], build(KEEP_BUILDS + 2));
    }

    #[test]
    fn file_lists_roundtrip_and_unreferenced_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path());
        let files = vec![
            FileSum {
                path: "a".into(),
                sum: [1; 32],
            },
            FileSum {
                path: "dir/b".into(),
                sum: [2; 32],
            },
        ];
        h.put_files("c1", &files).unwrap();
        h.put_files("orphan", &files).unwrap();
        assert_eq!(h.files("c1").unwrap(), files);
        assert!(h.files("nope").is_none());
        h.record(&build(1)).unwrap();
        assert_eq!(h.prune_files().unwrap(), 1);
        assert!(h.has_files("c1"));
        assert!(!h.has_files("orphan"));
    }
}
