//! The build context on both ends: the client lists what its `.dockerignore` selects, named by
//! content (blake3); the worker keeps contents in a content-addressed file store and lays a
//! build's context out from it.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use xbuild_cache::statcache::{Stamp, StatCache};
use xbuild_runtime::dockerignore::{Filter, FilterState};

use super::Error;
use super::proto::{Entry, entry::Kind};

/// A context as the client sends it.
#[derive(Debug, Default)]
pub struct Manifest {
    /// Every selected entry, parents before children.
    pub entries: Vec<Entry>,
    /// Where each content is on the client.
    pub files: HashMap<[u8; 32], PathBuf>,
    /// The file bytes the entries hold.
    pub bytes: u64,
}

/// Lists the context `dir` as `ignore` (`.dockerignore` patterns) selects it, hashing files the
/// stat cache `cache` does not know.
pub fn scan(dir: &Path, ignore: &[String], cache: &StatCache) -> Result<Manifest, Error> {
    let filter = Filter::new(&[], ignore)
        .map_err(|e| Error::Config(format!("{}/.dockerignore: {e}", dir.display())))?;
    let mut m = Manifest::default();
    walk(
        dir,
        "",
        filter.as_ref(),
        &FilterState::default(),
        cache,
        &mut m,
    )?;
    Ok(m)
}

fn walk(
    dir: &Path,
    rel: &str,
    filter: Option<&Filter>,
    parent: &FilterState,
    cache: &StatCache,
    m: &mut Manifest,
) -> Result<(), Error> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        names.push(e.map_err(io(dir))?.file_name());
    }
    names.sort();
    for name in names {
        let abs = dir.join(&name);
        let name = name.to_str().ok_or_else(|| {
            Error::Config(format!(
                "{}: the file name is not UTF-8; rename it or list it in .dockerignore",
                abs.display()
            ))
        })?;
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let (verdict, state) = match filter {
            Some(f) => f.check(&path, parent),
            None => (
                xbuild_runtime::dockerignore::Verdict {
                    keep: true,
                    excluded: false,
                },
                FilterState::default(),
            ),
        };
        let md = std::fs::symlink_metadata(&abs).map_err(io(&abs))?;
        let ft = md.file_type();
        let mut entry = Entry {
            path: path.clone(),
            mode: md.mode() & 0o7777,
            size: 0,
            mtime_ns: md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec(),
            ..Entry::default()
        };
        if ft.is_dir() {
            if verdict.keep {
                entry.set_kind(Kind::Dir);
                m.entries.push(entry);
            }
            if verdict.keep || filter.is_some_and(|f| f.descend(&path, verdict)) {
                walk(&abs, &path, filter, &state, cache, m)?;
            }
        } else if !verdict.keep {
            continue;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&abs).map_err(io(&abs))?;
            entry.set_kind(Kind::Symlink);
            entry.target = target
                .to_str()
                .ok_or_else(|| {
                    Error::Config(format!("{}: the link target is not UTF-8", abs.display()))
                })?
                .to_string();
            m.entries.push(entry);
        } else if ft.is_file() {
            let stamp = stamp_of(&md);
            let digest = match cache.get(&stamp) {
                Some(h) => h,
                None => {
                    let mut h = blake3::Hasher::new();
                    let f = std::fs::File::open(&abs).map_err(io(&abs))?;
                    h.update_reader(f).map_err(io(&abs))?;
                    let h = *h.finalize().as_bytes();
                    cache.put(stamp, h);
                    h
                }
            };
            entry.set_kind(Kind::File);
            entry.size = md.size();
            entry.digest = digest.to_vec();
            m.bytes += md.size();
            m.files.entry(digest).or_insert(abs);
            m.entries.push(entry);
        } else {
            return Err(Error::Config(format!(
                "{}: sockets, devices and pipes cannot be sent as build context; list it in .dockerignore",
                abs.display()
            )));
        }
    }
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that every entry's path is relative and stays inside the context (no `..`, no empty
/// or `.` components, no path through a symlink the manifest lists), and that file digests
/// are 32 bytes.
pub fn validate(entries: &[Entry]) -> Result<(), String> {
    let mut links = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for e in entries {
        let p = e.path.as_str();
        if p.is_empty()
            || p.starts_with('/')
            || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
            || p.contains('\0')
        {
            return Err(format!(
                "context entry {p:?}: not a clean relative path inside the context"
            ));
        }
        if !seen.insert(p) {
            return Err(format!("context entry {p:?} is listed twice"));
        }
        let mut prefix = String::new();
        for c in p.split('/') {
            if !prefix.is_empty() && links.contains(prefix.as_str()) {
                return Err(format!(
                    "context entry {p:?} lies below the symlink {prefix:?}"
                ));
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
        }
        match e.kind() {
            Kind::Symlink => {
                links.insert(p);
            }
            Kind::File if e.digest.len() != 32 => {
                return Err(format!("context entry {p:?}: the digest is not 32 bytes"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A worker's content-addressed store of context files: `DIR/ab/abcd…` by blake3 hash.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The store in `dir` (created when missing).
    pub fn open(dir: PathBuf) -> Result<Self, Error> {
        std::fs::create_dir_all(dir.join("tmp")).map_err(io(&dir))?;
        Ok(FileStore { dir })
    }

    /// Where content `digest` is kept.
    pub fn path(&self, digest: &[u8; 32]) -> PathBuf {
        let hex = hex::encode(digest);
        self.dir.join(&hex[..2]).join(hex)
    }

    /// The contents of `entries` this store lacks, each once.
    pub fn missing(&self, entries: &[Entry]) -> Vec<[u8; 32]> {
        let mut out = BTreeSet::new();
        for e in entries {
            if e.kind() != Kind::File {
                continue;
            }
            if let Ok(d) = <[u8; 32]>::try_from(e.digest.as_slice())
                && !self.path(&d).exists()
            {
                out.insert(d);
            }
        }
        out.into_iter().collect()
    }

    /// Starts receiving content `digest`.
    pub fn begin(&self, digest: [u8; 32]) -> Result<Incoming, Error> {
        let tmp =
            self.dir
                .join("tmp")
                .join(format!("{}.{}", hex::encode(digest), rand::random::<u64>()));
        let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        Ok(Incoming {
            digest,
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            bytes: 0,
            dest: self.path(&digest),
        })
    }
}

/// One content being received into a [`FileStore`]; committed only when its hash matches.
#[derive(Debug)]
pub struct Incoming {
    digest: [u8; 32],
    tmp: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    hasher: blake3::Hasher,
    /// Bytes received so far.
    pub bytes: u64,
    dest: PathBuf,
}

impl Incoming {
    /// The content being received.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Appends a chunk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        self.file.write_all(chunk).map_err(io(&self.tmp))
    }

    /// Checks the hash and moves the content into the store.
    pub fn commit(mut self) -> Result<(), String> {
        self.file
            .flush()
            .map_err(|e| format!("{}: {e}", self.tmp.display()))?;
        if self.hasher.finalize().as_bytes() != &self.digest {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(format!(
                "the content sent for {} does not have that blake3 hash",
                hex::encode(self.digest)
            ));
        }
        if let Some(parent) = self.dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| format!("{}: {e}", self.dest.display()))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A digest of everything [`materialize`] lays out from `entries`.
fn fingerprint(entries: &[Entry]) -> String {
    let mut h = blake3::Hasher::new();
    for e in entries {
        h.update(&(e.path.len() as u64).to_le_bytes());
        h.update(e.path.as_bytes());
        h.update(&e.kind.to_le_bytes());
        h.update(&e.mode.to_le_bytes());
        h.update(&e.size.to_le_bytes());
        h.update(&e.mtime_ns.to_le_bytes());
        h.update(&(e.digest.len() as u64).to_le_bytes());
        h.update(&e.digest);
        h.update(&(e.target.len() as u64).to_le_bytes());
        h.update(e.target.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// True when `dir` was laid out from exactly `entries` by [`materialize`] (and marks it used,
/// for [`collect_garbage`]): only the worker writes `dir`, builds only read it, so the same
/// manifest again needs nothing done.
pub fn laid_out(dir: &Path, entries: &[Entry]) -> bool {
    let index_path = dir.with_extension("index");
    let same = dir.is_dir()
        && index_path.is_file()
        && std::fs::read(dir.with_extension("manifest"))
            .is_ok_and(|p| p == fingerprint(entries).as_bytes());
    same && filetime::set_file_mtime(&index_path, filetime::FileTime::now()).is_ok()
}

/// Makes `dir` hold exactly `entries` (contents from `store`): entries whose type, size, mode
/// and mtime already match are left alone, everything else is replaced and what the manifest
/// does not list is removed. Returns how many files were written. What each file holds is
/// recorded beside `dir` (`DIR.index`), so a file changed without changing its size or
/// mtime is still replaced; and a digest of the whole manifest (`DIR.manifest`, see
/// [`laid_out`]). Each file's content hash goes into `hashes` (the stat cache builds read), so
/// hashing the context again reads no file.
pub fn materialize(
    dir: &Path,
    entries: &[Entry],
    store: &FileStore,
    hashes: &StatCache,
) -> Result<usize, Error> {
    let index_path = dir.with_extension("index");
    let manifest_path = dir.with_extension("manifest");
    let print = fingerprint(entries);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let old: HashMap<String, String> = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    // Written again only once the directory matches them.
    let _ = std::fs::remove_file(&manifest_path);
    let _ = std::fs::remove_file(&index_path);
    let mut index = HashMap::new();
    let listed: BTreeSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    remove_unlisted(dir, "", &listed)?;
    let mut written = 0;
    let mut dirs = Vec::new();
    for e in entries {
        let dest = dir.join(&e.path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let have = std::fs::symlink_metadata(&dest).ok();
        match e.kind() {
            Kind::Dir => {
                if !have.as_ref().is_some_and(|m| m.is_dir()) {
                    remove_any(&dest)?;
                    std::fs::create_dir(&dest).map_err(io(&dest))?;
                }
                dirs.push(e);
            }
            Kind::Symlink => {
                let same = have.as_ref().is_some_and(|m| m.file_type().is_symlink())
                    && std::fs::read_link(&dest).ok().as_deref() == Some(Path::new(&e.target));
                if !same {
                    remove_any(&dest)?;
                    std::os::unix::fs::symlink(&e.target, &dest).map_err(io(&dest))?;
                }
            }
            Kind::File => {
                let hex = hex::encode(&e.digest);
                let same = old.get(&e.path) == Some(&hex)
                    && have.as_ref().is_some_and(|m| {
                        m.is_file()
                            && m.size() == e.size
                            && m.mode() & 0o7777 == e.mode
                            && m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec()
                                == e.mtime_ns
                    });
                index.insert(e.path.clone(), hex);
                let digest = <[u8; 32]>::try_from(e.digest.as_slice()).map_err(|_| {
                    Error::Protocol(format!("context entry {:?}: bad digest", e.path))
                })?;
                let md = match have {
                    Some(m) if same => m,
                    _ => {
                        remove_any(&dest)?;
                        let src = store.path(&digest);
                        std::fs::copy(&src, &dest).map_err(io(&src))?;
                        set_meta(&dest, e)?;
                        written += 1;
                        std::fs::symlink_metadata(&dest).map_err(io(&dest))?
                    }
                };
                hashes.put_settled(stamp_of(&md), digest);
            }
        }
    }
    // Directories last, deepest first: writing into them changed their mtimes.
    for e in dirs.iter().rev() {
        set_meta(&dir.join(&e.path), e)?;
    }
    let json = serde_json::to_vec(&index)
        .map_err(|e| Error::Protocol(format!("recording the context index: {e}")))?;
    std::fs::write(&index_path, json).map_err(io(&index_path))?;
    std::fs::write(&manifest_path, print).map_err(io(&manifest_path))?;
    Ok(written)
}

/// What [`collect_garbage`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Contents removed from the file store.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Context layouts removed.
    pub contexts: usize,
}

/// Bounds what a worker keeps between builds: removes the context layouts under `contexts`
/// not used for `retention` (each `DIR` with its `DIR.index`), then every content of `store`
/// that no remaining layout's index lists — what the client of that context would be asked
/// for again. Must not run while a build is between asking for contents and laying its
/// context out.
pub fn collect_garbage(
    store: &FileStore,
    contexts: &Path,
    retention: std::time::Duration,
) -> Result<Collected, Error> {
    let mut out = Collected::default();
    let now = std::time::SystemTime::now();
    let mut keep: BTreeSet<String> = BTreeSet::new();
    for e in std::fs::read_dir(contexts).map_err(io(contexts))? {
        let e = e.map_err(io(contexts))?;
        // Layouts are directories; their records (`DIR.index`, `DIR.manifest`) go with them.
        if !e.file_type().map_err(io(contexts))?.is_dir() {
            continue;
        }
        let path = e.path();
        let index = path.with_extension("index");
        let used = std::fs::metadata(&index)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok());
        // A layout without an index is being laid out, or was cut off: it is left alone
        // (laying it out again replaces it).
        if used.is_some_and(|age| age > retention) {
            remove_any(&path)?;
            let _ = std::fs::remove_file(&index);
            let _ = std::fs::remove_file(path.with_extension("manifest"));
            out.contexts += 1;
            continue;
        }
        let listed: HashMap<String, String> = std::fs::read(&index)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        keep.extend(listed.into_values());
    }
    for shard in std::fs::read_dir(&store.dir).map_err(io(&store.dir))? {
        let shard = shard.map_err(io(&store.dir))?;
        let name = shard.file_name();
        if name == "tmp" || !shard.file_type().map_err(io(&store.dir))?.is_dir() {
            continue;
        }
        let dir = shard.path();
        for f in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let f = f.map_err(io(&dir))?;
            let hex = f.file_name().to_string_lossy().into_owned();
            if keep.contains(&hex) {
                continue;
            }
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            let path = f.path();
            std::fs::remove_file(&path).map_err(io(&path))?;
            out.files += 1;
            out.bytes += size;
        }
    }
    Ok(out)
}

fn stamp_of(md: &std::fs::Metadata) -> Stamp {
    Stamp {
        dev: md.dev(),
        ino: md.ino(),
        size: md.size(),
        mtime_ns: md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec(),
        ctime_ns: md.ctime().saturating_mul(1_000_000_000) + md.ctime_nsec(),
    }
}

fn set_meta(path: &Path, e: &Entry) -> Result<(), Error> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(e.mode)).map_err(io(path))?;
    let t = filetime::FileTime::from_unix_time(
        e.mtime_ns.div_euclid(1_000_000_000),
        e.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_symlink_file_times(path, t, t).map_err(io(path))
}

fn remove_any(path: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(io(path)),
        Ok(_) => std::fs::remove_file(path).map_err(io(path)),
        Err(_) => Ok(()),
    }
}

fn remove_unlisted(dir: &Path, rel: &str, listed: &BTreeSet<&str>) -> Result<(), Error> {
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let name = e.file_name();
        let path = match name.to_str() {
            Some(n) if rel.is_empty() => n.to_string(),
            Some(n) => format!("{rel}/{n}"),
            None => String::new(),
        };
        let abs = e.path();
        if path.is_empty() || !listed.contains(path.as_str()) {
            remove_any(&abs)?;
        } else if e.file_type().map_err(io(&abs))?.is_dir() {
            remove_unlisted(&abs, &path, listed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: Kind) -> Entry {
        let mut e = Entry {
            path: path.into(),
            mode: 0o644,
            digest: vec![0; 32],
            ..Entry::default()
        };
        e.set_kind(kind);
        e
    }

    #[test]
    fn paths_that_leave_the_context_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "a//b", "./a", ""] {
            assert!(validate(&[entry(bad, Kind::File)]).is_err(), "{bad}");
        }
        let through_link = [entry("l", Kind::Symlink), entry("l/passwd", Kind::File)];
        assert!(validate(&through_link).is_err());
        assert!(validate(&[entry("a", Kind::Dir), entry("a/b", Kind::File)]).is_ok());
    }

    #[test]
    fn a_context_round_trips_through_the_store() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("src/ignored")).unwrap();
        std::fs::write(ctx.join("src/a.txt"), "a").unwrap();
        std::fs::write(ctx.join("src/ignored/x"), "x").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "src/ignored\n").unwrap();
        std::os::unix::fs::symlink("a.txt", ctx.join("src/link")).unwrap();
        let cache = StatCache::disabled(t.path());
        let m = scan(&ctx, &["src/ignored".to_string()], &cache).unwrap();
        let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, [".dockerignore", "src", "src/a.txt", "src/link"]);
        validate(&m.entries).unwrap();

        let store = FileStore::open(t.path().join("store")).unwrap();
        let missing = store.missing(&m.entries);
        assert_eq!(missing.len(), 2);
        for d in missing {
            let mut inc = store.begin(d).unwrap();
            inc.write(&std::fs::read(&m.files[&d]).unwrap()).unwrap();
            inc.commit().unwrap();
        }
        assert!(store.missing(&m.entries).is_empty());
        let out = t.path().join("out");
        std::fs::create_dir_all(out.join("stale")).unwrap();
        assert!(!laid_out(&out, &m.entries));
        assert_eq!(materialize(&out, &m.entries, &store, &cache).unwrap(), 2);
        assert!(laid_out(&out, &m.entries));
        assert_eq!(std::fs::read_to_string(out.join("src/a.txt")).unwrap(), "a");
        assert!(!out.join("stale").exists());
        assert!(!out.join("src/ignored").exists());
        // Unchanged entries are not written again.
        assert_eq!(materialize(&out, &m.entries, &store, &cache).unwrap(), 0);
        // A changed manifest is laid out again, even a change only in mode.
        let mut changed = m.entries.clone();
        let a = changed.iter_mut().find(|e| e.path == "src/a.txt").unwrap();
        a.mode = 0o600;
        assert!(!laid_out(&out, &changed));
        materialize(&out, &changed, &store, &cache).unwrap();
        let mode = std::fs::metadata(out.join("src/a.txt")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn garbage_collection_keeps_what_a_layout_lists_and_drops_stale_layouts() {
        let t = tempfile::tempdir().unwrap();
        let store = FileStore::open(t.path().join("store")).unwrap();
        let contexts = t.path().join("contexts");
        let put = |content: &[u8]| {
            let d = *blake3::hash(content).as_bytes();
            let mut inc = store.begin(d).unwrap();
            inc.write(content).unwrap();
            inc.commit().unwrap();
            d
        };
        let file = |path: &str, d: [u8; 32]| {
            let mut e = entry(path, Kind::File);
            e.digest = d.to_vec();
            e.size = 1;
            e
        };
        let (a, b, old) = (put(b"a"), put(b"b"), put(b"o"));
        let cache = StatCache::disabled(t.path());
        materialize(&contexts.join("one"), &[file("a", a)], &store, &cache).unwrap();
        materialize(&contexts.join("stale"), &[file("o", old)], &store, &cache).unwrap();
        let long_ago = filetime::FileTime::from_unix_time(0, 0);
        filetime::set_file_mtime(contexts.join("stale.index"), long_ago).unwrap();
        let day = std::time::Duration::from_secs(86400);
        let got = collect_garbage(&store, &contexts, day).unwrap();
        assert_eq!(
            got,
            Collected {
                files: 2,
                bytes: 2,
                contexts: 1
            }
        );
        assert!(store.path(&a).exists(), "listed by a layout in use");
        assert!(!store.path(&b).exists(), "listed by no layout");
        assert!(!store.path(&old).exists(), "listed only by a stale layout");
        assert!(!contexts.join("stale").exists());
        assert!(!contexts.join("stale.index").exists());
        assert!(!contexts.join("stale.manifest").exists());
        assert!(contexts.join("one/a").exists());
    }

    #[test]
    fn content_with_the_wrong_hash_is_not_stored() {
        let t = tempfile::tempdir().unwrap();
        let store = FileStore::open(t.path().to_path_buf()).unwrap();
        let mut inc = store.begin(*blake3::hash(b"right").as_bytes()).unwrap();
        inc.write(b"wrong").unwrap();
        assert!(inc.commit().is_err());
        assert!(
            store
                .missing(&[{
                    let mut e = entry("f", Kind::File);
                    e.digest = blake3::hash(b"right").as_bytes().to_vec();
                    e
                }])
                .len()
                == 1
        );
    }
}
