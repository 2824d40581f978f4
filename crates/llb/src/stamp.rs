//! [`FileStamp`]: what identifies a file's content without reading it, the key of every stat
//! cache (the runtime's context hashing, the store's persistent cache, a worker's context
//! store).

use std::os::unix::fs::MetadataExt;

/// What identifies a file's content without reading it: if none of these changed, the content
/// did not either.
///
/// ```
/// let md = std::fs::metadata("Cargo.toml").unwrap();
/// let stamp = xbuild_llb::FileStamp::of_metadata(&md);
/// assert_eq!(stamp.size, md.len());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileStamp {
    /// The device.
    pub dev: u64,
    /// The inode.
    pub ino: u64,
    /// The size in bytes.
    pub size: u64,
    /// The modification time, in nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// The status change time, in nanoseconds since the epoch.
    pub ctime_ns: i64,
}

impl FileStamp {
    /// The stamp of a file from its metadata.
    pub fn of_metadata(md: &std::fs::Metadata) -> Self {
        FileStamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: nanos(md.mtime(), md.mtime_nsec()),
            ctime_ns: nanos(md.ctime(), md.ctime_nsec()),
        }
    }
}

/// A stat time (seconds and nanoseconds) in nanoseconds since the epoch, saturating.
pub fn nanos(sec: i64, nsec: i64) -> i64 {
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_saturates_instead_of_overflowing() {
        assert_eq!(nanos(1, 5), 1_000_000_005);
        assert_eq!(nanos(i64::MAX, 1), i64::MAX);
        assert_eq!(nanos(i64::MIN, -1), i64::MIN);
    }
}
