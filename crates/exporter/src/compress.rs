//! Layer compression: gzip (parallel, pigz-style), zstd (multi-threaded) or none.
//!
//! Both compressors give the same bytes whatever the number of threads, so a layer's digest
//! never depends on the machine that wrote it: gzip splits the stream into fixed 128 KiB blocks
//! compressed independently and joined into one member (as `pigz -i` does), zstd's
//! multi-threaded mode is deterministic for any worker count of one or more. Nothing flushes
//! mid-stream.

use std::io::{self, Write};

use gzp::ZWriter;
use gzp::deflate::Gzip;
use gzp::par::compress::{ParCompress, ParCompressBuilder};

use xbuild_cache::oci::{MEDIA_DOCKER_LAYER, MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_LAYER_ZSTD};

use crate::Error;

/// How layers are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    /// gzip (the default, what every tool reads).
    #[default]
    Gzip,
    /// zstd: faster to write and read; needs Docker ≥ 23 or containerd to run.
    Zstd,
    /// No compression.
    Uncompressed,
}

/// gzip level 6, as Go's `gzip.DefaultCompression` (BuildKit) and pigz use.
const GZIP_LEVEL: u32 = 6;
/// zstd level 3, BuildKit's default.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_LAYER_GZIP,
            Compression::Zstd => MEDIA_LAYER_ZSTD,
            Compression::Uncompressed => MEDIA_LAYER_TAR,
        }
    }

    /// The name used in `--output …,compression=NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Uncompressed => "uncompressed",
        }
    }

    /// Parses `gzip`, `zstd` or `uncompressed`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "uncompressed" => Ok(Compression::Uncompressed),
            other => Err(Error::BadInput(format!(
                "compression={other}: expected gzip, zstd or uncompressed"
            ))),
        }
    }

    /// The compression a layer media type names (OCI or Docker), if it is a layer type.
    pub fn of_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            MEDIA_LAYER_GZIP | MEDIA_DOCKER_LAYER => Some(Compression::Gzip),
            MEDIA_LAYER_ZSTD => Some(Compression::Zstd),
            MEDIA_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => {
                Some(Compression::Uncompressed)
            }
            _ => None,
        }
    }

    /// Detects the compression of a stream from its first bytes.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::Uncompressed
        }
    }
}

/// How many threads compress: every core this process may use.
fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A compressing writer over `W`; [`finish`](Self::finish) ends the stream and gives `W` back.
pub(crate) struct Encoder<W: Write + Send + 'static> {
    inner: Option<Inner<W>>,
}

enum Inner<W: Write + Send + 'static> {
    Gzip(ParCompress<'static, Gzip, W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Plain(W),
}

fn gzp_io(e: gzp::GzpError) -> io::Error {
    match e {
        gzp::GzpError::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<W: Write + Send + 'static> Encoder<W> {
    /// Starts a stream compressed with `c` into `w`.
    pub(crate) fn new(c: Compression, w: W) -> io::Result<Self> {
        let inner = match c {
            Compression::Gzip => Inner::Gzip(
                ParCompressBuilder::<Gzip>::new()
                    .num_threads(threads())
                    .map_err(gzp_io)?
                    .compression_level(flate2::Compression::new(GZIP_LEVEL))
                    .from_writer(w),
            ),
            Compression::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(w, ZSTD_LEVEL)?;
                z.multithread(threads().max(1) as u32)?;
                Inner::Zstd(z)
            }
            Compression::Uncompressed => Inner::Plain(w),
        };
        Ok(Encoder { inner: Some(inner) })
    }

    /// Ends the compressed stream and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        match self.inner.take() {
            Some(Inner::Gzip(mut g)) => g.finish().map_err(gzp_io),
            Some(Inner::Zstd(z)) => z.finish(),
            Some(Inner::Plain(w)) => Ok(w),
            None => Err(io::Error::other("compressed stream already finished")),
        }
    }
}

impl<W: Write + Send + 'static> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.as_mut() {
            Some(Inner::Gzip(g)) => g.write(buf),
            Some(Inner::Zstd(z)) => z.write(buf),
            Some(Inner::Plain(w)) => w.write(buf),
            None => Err(io::Error::other("compressed stream already finished")),
        }
    }

    /// A no-op: a flush would end a compressed block early and make the output depend on when
    /// it was called. [`finish`](Self::finish) writes everything.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for Encoder<W> {
    fn drop(&mut self) {
        // gzp's own drop would panic on a write error; end its threads here instead.
        if let Some(Inner::Gzip(mut g)) = self.inner.take() {
            let _ = g.finish();
        }
    }
}

/// A reader decompressing `r`, whose compression is detected from its first bytes.
pub fn decompress<'a>(r: impl io::Read + 'a) -> io::Result<Box<dyn io::Read + 'a>> {
    use std::io::BufRead;
    let mut br = io::BufReader::with_capacity(1 << 16, r);
    let head = br.fill_buf()?;
    Ok(match Compression::sniff(head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
        Compression::Uncompressed => Box::new(br),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    (x % 251) as u8
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect()
    }

    fn compress(c: Compression, data: &[u8], chunk: usize) -> Vec<u8> {
        let mut e = Encoder::new(c, Vec::new()).unwrap();
        for part in data.chunks(chunk) {
            e.write_all(part).unwrap();
            e.flush().unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn round_trips_and_is_independent_of_write_sizes() {
        let data = sample(3 << 20);
        for c in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Uncompressed,
        ] {
            let a = compress(c, &data, 4096);
            let b = compress(c, &data, 100_003);
            assert_eq!(a, b, "{c:?}: output depends on how the stream was written");
            let mut back = Vec::new();
            decompress(a.as_slice())
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{c:?}");
        }
    }

    #[test]
    fn gzip_is_independent_of_thread_count() {
        let data = sample(1 << 20);
        let one = {
            let mut p = ParCompressBuilder::<Gzip>::new()
                .num_threads(1)
                .unwrap()
                .compression_level(flate2::Compression::new(GZIP_LEVEL))
                .from_writer(Vec::new());
            p.write_all(&data).unwrap();
            p.finish().unwrap()
        };
        assert_eq!(one, compress(Compression::Gzip, &data, 65536));
    }

    #[test]
    fn zstd_is_independent_of_worker_count() {
        let data = sample(20 << 20);
        let with = |n: u32| {
            let mut z = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).unwrap();
            z.multithread(n).unwrap();
            z.write_all(&data).unwrap();
            z.finish().unwrap()
        };
        assert_eq!(with(1), with(3));
    }

    #[test]
    fn media_types_and_names() {
        for c in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Uncompressed,
        ] {
            assert_eq!(Compression::parse(c.name()).unwrap(), c);
            assert_eq!(Compression::of_media_type(c.media_type()), Some(c));
        }
        assert!(Compression::parse("lz4").is_err());
        assert_eq!(Compression::sniff(b"\x1f\x8b\x08"), Compression::Gzip);
    }
}
