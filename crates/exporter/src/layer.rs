//! Snapshot diffs to compressed layer blobs: tar → sha256 (diff_id) → compression → sha256
//! (digest) → the content store, in one streaming pass.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use xbuild_cache::{DiffRecord, LayerRecord, Store};
use xbuild_runtime::{Change, changes};
use xbuild_runtime::{LayerSnapshotter, Snapshotter};

use crate::Error;
use crate::compress::{Compression, Encoder};
use crate::hashing::HashingWriter;
use crate::tarball::TarWriter;

/// How images and their layers are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// The compression.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: file times after it are written as it.
    pub epoch: Option<i64>,
}

impl ExportOptions {
    /// The name of this variant of a snapshot's layer, for the store's records.
    fn variant(&self) -> String {
        match self.epoch {
            Some(e) => format!("{}@{e}", self.compression.name()),
            None => self.compression.name().to_string(),
        }
    }
}

fn stream_err(e: std::io::Error) -> Error {
    Error::io(std::path::Path::new("<layer stream>"), e)
}

/// Writes `changes` as a layer blob and records its content size; nothing is held in memory
/// but buffers.
pub fn write_layer(
    store: &Store,
    changes: &[Change],
    opts: ExportOptions,
) -> Result<LayerRecord, Error> {
    let blob = store.blob_writer()?;
    let enc = Encoder::new(opts.compression, blob).map_err(stream_err)?;
    let mut tw = TarWriter::new(
        BufWriter::with_capacity(1 << 20, HashingWriter::new(enc)),
        opts.epoch,
    );
    for c in changes {
        match c {
            Change::Delete { path } => tw.append_whiteout(path)?,
            Change::Upsert { path, host, opaque } => {
                tw.append_path(path, host)?;
                if *opaque {
                    tw.append_opaque(path)?;
                }
            }
        }
    }
    let content_size = tw.content_size();
    let hashing = tw
        .finish()?
        .into_inner()
        .map_err(|e| stream_err(e.into_error()))?;
    let (diff_id, _, enc) = hashing.finish();
    let mut blob = enc.finish().map_err(stream_err)?;
    blob.flush().map_err(stream_err)?;
    let size = blob.size();
    let digest = blob.commit(None)?;
    store.put_diff(&diff_id, &DiffRecord { content_size })?;
    Ok(LayerRecord {
        media_type: opts.compression.media_type().to_string(),
        digest,
        diff_id,
        size,
    })
}

/// Writes everything under the directory `dir` (not `dir` itself) as a layer blob, entries in
/// name order, so the same tree gives the same blob.
pub fn dir_layer(store: &Store, dir: &Path, opts: ExportOptions) -> Result<LayerRecord, Error> {
    let mut changes = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for e in walker {
        let e = e.map_err(|e| Error::io(dir, std::io::Error::other(e)))?;
        let path = e
            .path()
            .strip_prefix(dir)
            .map_err(|_| Error::io(e.path(), std::io::Error::other("outside the tree")))?
            .to_path_buf();
        changes.push(Change::Upsert {
            path,
            host: e.path().to_path_buf(),
            opaque: false,
        });
    }
    write_layer(store, &changes, opts)
}

/// The changes of a snapshot that matter, as BuildKit's overlay differ finds them: an entry
/// that is the same as below it (a directory copied up only because something under it
/// changed, or touched by the runtime) is left out unless a change beneath needs it as a
/// parent; whiteouts and everything in an opaque directory always count.
pub fn significant_changes(
    snapshots: &LayerSnapshotter,
    snapshot: &str,
) -> Result<Vec<Change>, Error> {
    let all = changes(&snapshots.upper(snapshot))?;
    let Some(parent) = snapshots.parent(snapshot)? else {
        return Ok(all);
    };
    let view = snapshots.view(Some(&parent))?;
    let base = view.path();
    let mut keep: HashSet<PathBuf> = HashSet::new();
    let mut opaque: Vec<&Path> = Vec::new();
    for c in &all {
        match c {
            Change::Delete { path } => {
                keep.insert(path.clone());
            }
            Change::Upsert {
                path,
                host,
                opaque: o,
            } => {
                let inside_opaque = opaque.iter().any(|d| path.starts_with(d) && path != d);
                if *o {
                    opaque.push(path);
                }
                if *o || inside_opaque || !same_as_below(&base.join(path), host)? {
                    keep.insert(path.clone());
                }
            }
        }
    }
    let mut needed = keep.clone();
    for p in &keep {
        needed.extend(p.ancestors().skip(1).map(Path::to_path_buf));
    }
    Ok(all
        .into_iter()
        .filter(|c| match c {
            Change::Delete { path } | Change::Upsert { path, .. } => needed.contains(path),
        })
        .collect())
}

/// BuildKit's `sameDirent`: same type, mode, owner, device and capabilities; for non
/// directories also the same size and modification time (and content or link target when the
/// times have no sub-second part to tell them apart).
fn same_as_below(below: &Path, upper: &Path) -> Result<bool, Error> {
    let Ok(a) = below.symlink_metadata() else {
        return Ok(false);
    };
    let b = upper.symlink_metadata().map_err(|e| Error::io(upper, e))?;
    let cap = |p: &Path| xattr::get(p, "security.capability").ok().flatten();
    if a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
        || a.rdev() != b.rdev()
        || cap(below) != cap(upper)
    {
        return Ok(false);
    }
    if a.is_dir() {
        return Ok(true);
    }
    if a.len() != b.len() || a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec() {
        return Ok(false);
    }
    if a.mtime_nsec() != 0 {
        return Ok(true);
    }
    if a.file_type().is_symlink() {
        return Ok(std::fs::read_link(below).ok() == std::fs::read_link(upper).ok());
    }
    if a.len() == 0 || !a.is_file() {
        return Ok(true);
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(p, e));
    Ok(read(below)? == read(upper)?)
}

/// The layer of a committed snapshot's own changes: the one an earlier export wrote in the
/// same variant, else written now and recorded. `None` when the snapshot changed nothing.
pub fn layer_of(
    store: &Store,
    snapshots: &LayerSnapshotter,
    snapshot: &str,
    opts: ExportOptions,
) -> Result<Option<LayerRecord>, Error> {
    let variant = opts.variant();
    if let Some(rec) = store.get_exported_layer(snapshot, &variant)?
        && store.has_blob(&rec.digest)
    {
        return Ok(Some(rec));
    }
    let diff = significant_changes(snapshots, snapshot)?;
    if diff.is_empty() {
        return Ok(None);
    }
    let rec = write_layer(store, &diff, opts)?;
    store.put_exported_layer(snapshot, &variant, &rec)?;
    Ok(Some(rec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    struct Entry {
        path: String,
        kind: tar::EntryType,
        mode: u32,
        uid: u64,
        mtime: u64,
        link: Option<String>,
        data: Vec<u8>,
        xattrs: Vec<(String, Vec<u8>)>,
    }

    fn read_layer(store: &Store, rec: &LayerRecord) -> Vec<Entry> {
        let f = std::fs::File::open(store.blob_path(&rec.digest)).unwrap();
        let mut ar = tar::Archive::new(crate::compress::decompress(f).unwrap());
        let mut out = vec![];
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let xattrs = e
                .pax_extensions()
                .unwrap()
                .map(|x| {
                    x.map(|x| x.unwrap())
                        .filter(|x| x.key().unwrap().starts_with("SCHILY.xattr."))
                        .map(|x| (x.key().unwrap().to_string(), x.value_bytes().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            let h = e.header().clone();
            let path = String::from_utf8(e.path_bytes().to_vec()).unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.to_vec()).unwrap());
            let mut data = vec![];
            e.read_to_end(&mut data).unwrap();
            out.push(Entry {
                path,
                kind: h.entry_type(),
                mode: h.mode().unwrap(),
                uid: e.header().uid().unwrap(),
                mtime: h.mtime().unwrap(),
                link,
                data,
                xattrs,
            });
        }
        out
    }

    fn upsert(root: &std::path::Path, p: &str) -> Change {
        Change::Upsert {
            path: PathBuf::from(p),
            host: root.join(p),
            opaque: false,
        }
    }

    #[test]
    fn entries_keep_metadata_links_and_long_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("root")).unwrap();
        let fs = dir.path().join("fs");
        let long = format!("d/{}", "n".repeat(150));
        std::fs::create_dir_all(fs.join("d")).unwrap();
        std::fs::write(fs.join("d/a"), "hello").unwrap();
        std::fs::set_permissions(fs.join("d/a"), PermissionsExt::from_mode(0o4751)).unwrap();
        std::fs::hard_link(fs.join("d/a"), fs.join("d/b")).unwrap();
        std::fs::write(fs.join(&long), "long").unwrap();
        let target = "t".repeat(120);
        std::os::unix::fs::symlink(&target, fs.join("d/s")).unwrap();
        let _ = xattr::set(fs.join("d/a"), "user.note", b"v1");
        let changes: Vec<Change> = ["d", "d/a", "d/b", long.as_str(), "d/s"]
            .iter()
            .map(|p| upsert(&fs, p))
            .chain([Change::Delete {
                path: PathBuf::from("d/gone"),
            }])
            .collect();
        let opts = ExportOptions {
            compression: Compression::Gzip,
            epoch: Some(1000),
        };
        let rec = write_layer(&store, &changes, opts).unwrap();
        assert_eq!(rec.media_type, Compression::Gzip.media_type());
        assert_eq!(store.blob_size(&rec.digest).unwrap(), rec.size);
        let entries = read_layer(&store, &rec);
        let names: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            names,
            ["d/", "d/a", "d/b", long.as_str(), "d/s", "d/.wh.gone"]
        );
        let a = &entries[1];
        assert_eq!((a.mode, a.data.as_slice()), (0o4751, b"hello".as_slice()));
        assert_eq!(
            a.uid as u32,
            std::fs::metadata(fs.join("d/a")).unwrap().uid()
        );
        if xattr::get(fs.join("d/a"), "user.note")
            .ok()
            .flatten()
            .is_some()
        {
            assert_eq!(
                a.xattrs,
                [("SCHILY.xattr.user.note".to_string(), b"v1".to_vec())]
            );
        }
        assert_eq!(entries[2].kind, tar::EntryType::Link);
        assert_eq!(entries[2].link.as_deref(), Some("d/a"));
        assert_eq!(entries[3].data, b"long");
        assert_eq!(entries[4].link.as_deref(), Some(target.as_str()));
        assert!(entries.iter().all(|e| e.mtime <= 1000), "times are clamped");
        // Docker's size: file content once per inode (5 + 4) and the symlink's target (120).
        assert_eq!(
            store.get_diff(&rec.diff_id).unwrap().unwrap().content_size,
            9 + 120
        );
        // The diff_id is the digest of the uncompressed tar.
        let mut plain = vec![];
        crate::compress::decompress(std::fs::File::open(store.blob_path(&rec.digest)).unwrap())
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(xbuild_llb::Digest::of(&plain), rec.diff_id);
        // Same input, same bytes; other compressions, same diff_id.
        assert_eq!(write_layer(&store, &changes, opts).unwrap(), rec);
        for c in [Compression::Zstd, Compression::Uncompressed] {
            let other = write_layer(
                &store,
                &changes,
                ExportOptions {
                    compression: c,
                    ..opts
                },
            )
            .unwrap();
            assert_eq!(other.diff_id, rec.diff_id);
            assert_eq!(other.media_type, c.media_type());
        }
        let plain_rec = write_layer(
            &store,
            &changes,
            ExportOptions {
                compression: Compression::Uncompressed,
                epoch: Some(1000),
            },
        )
        .unwrap();
        assert_eq!(plain_rec.digest, plain_rec.diff_id);
    }

    #[test]
    fn opaque_directories_get_a_marker_after_their_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("root")).unwrap();
        let fs = dir.path().join("fs");
        std::fs::create_dir_all(fs.join("etc")).unwrap();
        std::fs::write(fs.join("etc/new"), "n").unwrap();
        let changes = vec![
            Change::Upsert {
                path: PathBuf::from("etc"),
                host: fs.join("etc"),
                opaque: true,
            },
            upsert(&fs, "etc/new"),
        ];
        let rec = write_layer(&store, &changes, ExportOptions::default()).unwrap();
        let names: Vec<String> = read_layer(&store, &rec)
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(names, ["etc/", "etc/.wh..wh..opq", "etc/new"]);
    }

    #[test]
    fn devices_and_fifos_are_archived() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("root")).unwrap();
        let fs = dir.path().join("fs");
        std::fs::create_dir_all(&fs).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fs.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fs.join("pipe"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let changes = vec![upsert(&fs, "null"), upsert(&fs, "pipe")];
        let rec = write_layer(&store, &changes, ExportOptions::default()).unwrap();
        let f = std::fs::File::open(store.blob_path(&rec.digest)).unwrap();
        let mut ar = tar::Archive::new(crate::compress::decompress(f).unwrap());
        let hs: Vec<tar::Header> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().clone())
            .collect();
        assert_eq!(hs[0].entry_type(), tar::EntryType::Char);
        assert_eq!(
            (hs[0].device_major().unwrap(), hs[0].device_minor().unwrap()),
            (Some(1), Some(3))
        );
        assert_eq!(hs[1].entry_type(), tar::EntryType::Fifo);
    }

    #[test]
    fn file_capabilities_survive_export_and_unpack() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("root")).unwrap();
        let fs = dir.path().join("fs");
        std::fs::create_dir_all(&fs).unwrap();
        std::fs::write(fs.join("ping"), "bin").unwrap();
        // vfs_cap_data v2: effective, cap_net_raw (13) permitted.
        let cap: Vec<u8> = [0x0200_0001u32, 1 << 13, 0, 0, 0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        xattr::set(fs.join("ping"), "security.capability", &cap).unwrap();
        let rec = write_layer(&store, &[upsert(&fs, "ping")], ExportOptions::default()).unwrap();
        let e = read_layer(&store, &rec);
        assert_eq!(
            e[0].xattrs,
            [("SCHILY.xattr.security.capability".to_string(), cap.clone())]
        );
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let f = std::fs::File::open(store.blob_path(&rec.digest)).unwrap();
        xbuild_runtime::unpack(crate::compress::decompress(f).unwrap(), &out).unwrap();
        assert_eq!(
            xattr::get(out.join("ping"), "security.capability").unwrap(),
            Some(cap)
        );
    }

    /// Keeps the first bytes written and counts the rest.
    struct Head(Vec<u8>, u64);

    impl Write for Head {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = 4096usize.saturating_sub(self.0.len());
            self.0.extend_from_slice(&buf[..room.min(buf.len())]);
            self.1 += buf.len() as u64;
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn files_over_8_gib_get_a_pax_size() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let size = (8u64 << 30) + 1;
        std::fs::File::create(&big).unwrap().set_len(size).unwrap();
        let mut tw = TarWriter::new(Head(Vec::new(), 0), None);
        tw.append_path(Path::new("big"), &big).unwrap();
        let head = tw.finish().unwrap();
        let pax = tar::Header::from_byte_slice(&head.0[..512]);
        assert_eq!(pax.entry_type(), tar::EntryType::XHeader);
        let record = String::from_utf8_lossy(&head.0[512..1024]).into_owned();
        assert!(record.contains(&format!("size={size}\n")), "{record:?}");
        let entry = tar::Header::from_byte_slice(&head.0[1024..1536]);
        assert_eq!(entry.path_bytes().as_ref(), b"big");
        let padded = size.div_ceil(512) * 512;
        assert_eq!(
            head.1,
            3 * 512 + padded + 1024,
            "PAX header, entry, data, end"
        );
    }
}
