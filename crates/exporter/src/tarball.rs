//! Writing filesystem entries into a tar stream, deterministically: ustar headers with PAX
//! records for long names and link targets, big files, large ids and xattrs; hardlinks (the
//! first name of an inode carries the data), symlinks, devices and fifos; OCI whiteouts.
//!
//! Nothing but the entry's own metadata reaches the stream: no user or group names, no access
//! or change times, modification times in whole seconds, clamped to the epoch when one is set.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// The largest value a ustar numeric field of 12 bytes holds (8 GiB − 1).
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;
/// The largest value a ustar id field of 8 bytes holds.
const USTAR_MAX_ID: u64 = 0o7777777;

/// A tar stream being written, remembering inodes to write later links as hardlinks.
pub(crate) struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), Vec<u8>>,
    epoch: Option<i64>,
    content: u64,
}

fn ioe(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl<W: Write> TarWriter<W> {
    /// A tar stream into `w`; with `epoch`, every time after it is written as the epoch.
    pub(crate) fn new(w: W, epoch: Option<i64>) -> Self {
        TarWriter {
            builder: tar::Builder::new(w),
            links: HashMap::new(),
            epoch,
            content: 0,
        }
    }

    /// Bytes of regular-file content and symlink targets written so far: a layer's size as
    /// Docker counts it (hardlinks once).
    pub(crate) fn content_size(&self) -> u64 {
        self.content
    }

    /// Finishes the archive (two zero blocks) and returns the writer.
    pub(crate) fn finish(self) -> Result<W, Error> {
        self.builder
            .into_inner()
            .map_err(|e| Error::io(Path::new("<tar stream>"), e))
    }

    fn mtime(&self, t: i64) -> u64 {
        let t = match self.epoch {
            Some(e) => t.min(e),
            None => t,
        };
        t.max(0) as u64
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        mut h: tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(String, Vec<u8>)],
        size: u64,
        ids: (u64, u64),
        data: impl Read,
    ) -> std::io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if name.len() > 100 {
            pax.push(("path".into(), name.to_vec()));
        }
        if let Some(l) = link
            && l.len() > 100
        {
            pax.push(("linkpath".into(), l.to_vec()));
        }
        if size > USTAR_MAX_SIZE {
            pax.push(("size".into(), size.to_string().into_bytes()));
            h.set_size(0);
        } else {
            h.set_size(size);
        }
        for (key, v) in [("uid", ids.0), ("gid", ids.1)] {
            if v > USTAR_MAX_ID {
                pax.push((key.into(), v.to_string().into_bytes()));
            }
        }
        h.set_uid(if ids.0 > USTAR_MAX_ID { 0 } else { ids.0 });
        h.set_gid(if ids.1 > USTAR_MAX_ID { 0 } else { ids.1 });
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        let short = &name[..name.len().min(100)];
        h.as_old_mut().name.fill(0);
        h.as_old_mut().name[..short.len()].copy_from_slice(short);
        if let Some(l) = link {
            let l = &l[..l.len().min(100)];
            h.as_old_mut().linkname.fill(0);
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
        }
        h.set_cksum();
        let mut data = data.take(size);
        self.builder.append(&h, &mut data)?;
        if data.limit() != 0 {
            return Err(std::io::Error::other(format!(
                "the file shrank while it was archived ({} bytes missing)",
                data.limit()
            )));
        }
        Ok(())
    }

    /// Appends the entry at `host` under the name `rel` (a directory gets a trailing `/`).
    pub(crate) fn append_path(&mut self, rel: &Path, host: &Path) -> Result<(), Error> {
        let md = host.symlink_metadata().map_err(ioe(host))?;
        let ft = md.file_type();
        let mut name = rel.as_os_str().as_bytes().to_vec();
        let mut h = tar::Header::new_ustar();
        h.set_mode(md.mode() & 0o7777);
        h.set_mtime(self.mtime(md.mtime()));
        let ids = (md.uid() as u64, md.gid() as u64);
        let xattrs = read_xattrs(host);
        let err = ioe(host);
        if ft.is_dir() {
            name.push(b'/');
            h.set_entry_type(tar::EntryType::Directory);
            self.append(h, &name, None, &xattrs, 0, ids, std::io::empty())
                .map_err(err)
        } else if ft.is_symlink() {
            let target = std::fs::read_link(host).map_err(ioe(host))?;
            h.set_entry_type(tar::EntryType::Symlink);
            self.append(
                h,
                &name,
                Some(target.as_os_str().as_bytes()),
                &xattrs,
                0,
                ids,
                std::io::empty(),
            )
            .map_err(err)?;
            // Docker counts a symlink's own size (its target's length) in a layer's size.
            self.content += target.as_os_str().len() as u64;
            Ok(())
        } else if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    h.set_entry_type(tar::EntryType::Link);
                    return self
                        .append(h, &name, Some(&first), &[], 0, ids, std::io::empty())
                        .map_err(err);
                }
                self.links.insert(key, name.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            let f = File::open(host).map_err(ioe(host))?;
            self.append(h, &name, None, &xattrs, md.len(), ids, f)
                .map_err(err)?;
            self.content += md.len();
            Ok(())
        } else {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else if ft.is_fifo() {
                tar::EntryType::Fifo
            } else {
                // Sockets are not archived, as in Docker.
                return Ok(());
            };
            h.set_entry_type(kind);
            let rdev = md.rdev();
            h.set_device_major(rustix::fs::major(rdev))
                .map_err(ioe(host))?;
            h.set_device_minor(rustix::fs::minor(rdev))
                .map_err(ioe(host))?;
            self.append(h, &name, None, &xattrs, 0, ids, std::io::empty())
                .map_err(err)
        }
    }

    /// Appends an OCI whiteout for `rel` (a deleted path).
    pub(crate) fn append_whiteout(&mut self, rel: &Path) -> Result<(), Error> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        let Some(base) = rel.file_name() else {
            return Ok(());
        };
        let mut wh = b".wh.".to_vec();
        wh.extend_from_slice(base.as_bytes());
        let path: PathBuf = parent.join(std::ffi::OsStr::from_bytes(&wh));
        self.append_marker(&path)
    }

    /// Appends the opaque marker for directory `rel`: what the lower layers had below it is
    /// hidden.
    pub(crate) fn append_opaque(&mut self, rel: &Path) -> Result<(), Error> {
        self.append_marker(&rel.join(".wh..wh..opq"))
    }

    fn append_marker(&mut self, path: &Path) -> Result<(), Error> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0);
        h.set_mtime(self.epoch.unwrap_or(0).max(0) as u64);
        self.append(
            h,
            path.as_os_str().as_bytes(),
            None,
            &[],
            0,
            (0, 0),
            std::io::empty(),
        )
        .map_err(ioe(path))
    }
}

/// A path's extended attributes, sorted, without overlay's own.
fn read_xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(names) = xattr::list(p) else {
        return vec![];
    };
    let mut out: Vec<(String, Vec<u8>)> = names
        .filter_map(|n| {
            let name = n.to_string_lossy().to_string();
            if name.starts_with("trusted.overlay.") {
                return None;
            }
            let v = xattr::get(p, &n).ok().flatten()?;
            Some((name, v))
        })
        .collect();
    out.sort();
    out
}
