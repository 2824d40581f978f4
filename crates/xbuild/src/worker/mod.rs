//! Remote build workers, the client's side and the protocol: [`client::build`] sends a build
//! to `xbuild worker`s (`xbuild build --remote`); [`proto`] is the gRPC protocol both ends
//! speak (schema: `proto/worker.proto`). The worker itself is the `xbuild-worker` crate,
//! which builds with this crate's [`Builder`](crate::Builder).
//!
//! The client sends the Dockerfile, the options and a manifest of the context its
//! `.dockerignore` selects ([`context::scan`]), with each file named by the blake3 hash of its
//! content; the worker asks only for the contents its file store lacks, lays the context out,
//! builds it (streaming progress and logs back live), and sends the output back, or pushes
//! it. An image comes back by blobs: the worker offers the manifest and config, the client
//! asks for the layers its content store lacks, and writes the image (or the OCI layout or
//! docker-archive asked for) from its own store; a filesystem output comes back as a tar.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild::Error> {
//! use xbuild::worker::client::{self, Remote};
//! let builder = xbuild::Builder::new("/var/lib/xbuild");
//! let mut opts = xbuild::BuildOptions::new("./app");
//! opts.tags.push("app:1".into());
//! let remote = Remote::new(vec!["127.0.0.1:7443".into()]);
//! let result = client::build(&builder, &opts, &remote).await?;
//! println!("built {:?} on a worker", result.result.image_id);
//! # Ok(()) }
//! ```

pub mod client;
pub mod context;
mod image;

/// The generated protocol types and gRPC stubs (`proto/worker.proto`), client and server: what
/// a client sends a worker and what it answers.
#[allow(missing_docs, dead_code, clippy::all, clippy::unwrap_used)]
pub mod proto {
    tonic::include_proto!("xbuild.worker.v1");
}

use std::path::{Path, PathBuf};

/// The response header in which a worker lists the protocol features it has.
pub const FEATURES_HEADER: &str = "xbuild-features";
/// The feature of a worker that takes the manifest's digest first (see `proto/worker.proto`).
pub const MANIFEST_DIGEST_FEATURE: &str = "manifest-digest";

/// What can go wrong sending a build to a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The worker could not be reached.
    #[error("worker {addr}: cannot connect: {message}")]
    Connect {
        /// The worker's address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The connection broke before the build finished (the worker died or was stopped).
    #[error("worker {addr}: the connection was lost before the build finished: {message}")]
    Lost {
        /// The worker's address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The worker refused the client (authentication) or the request.
    #[error("worker {addr} refused the build: {message}")]
    Refused {
        /// The worker's address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The build ran on the worker and failed there.
    #[error("worker {addr}: {message}")]
    Failed {
        /// The worker's address.
        addr: String,
        /// The worker's error.
        message: String,
    },
    /// The local content store failed while an image came back.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
    /// A worker sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Bad settings (addresses, options a remote build cannot carry, a context that cannot be
    /// listed).
    #[error("{0}")]
    Config(String),
    /// A certificate, key or token file named by a flag cannot be used.
    #[error(transparent)]
    FlagFile(#[from] FlagFileError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    /// True when the build may be retried on another worker: it never reached this one, or
    /// the connection broke mid-build.
    pub fn retryable(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Lost { .. })
    }
}

impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        crate::Error::Worker(Box::new(e))
    }
}

/// A certificate, key or token file, named by a flag, that cannot be used (client and worker
/// read them alike).
#[derive(Debug, thiserror::Error)]
pub enum FlagFileError {
    /// The file cannot be read.
    #[error("{flag} {}: {source}", path.display())]
    Unreadable {
        /// The flag that named it (`--tls-cert`).
        flag: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A token file whose first line is empty.
    #[error("{flag} {}: the file holds no token", path.display())]
    NoToken {
        /// The flag that named it (`--token-file`).
        flag: String,
        /// The file.
        path: PathBuf,
    },
}

/// Reads a file named by the flag `flag`, saying which flag when it cannot.
pub fn read_flag_file(flag: &str, path: &Path) -> Result<Vec<u8>, FlagFileError> {
    std::fs::read(path).map_err(|source| FlagFileError::Unreadable {
        flag: flag.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a bearer token file: its first line, which must not be empty.
pub fn read_token(flag: &str, path: &Path) -> Result<String, FlagFileError> {
    let bytes = read_flag_file(flag, path)?;
    let text = String::from_utf8_lossy(&bytes);
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(FlagFileError::NoToken {
            flag: flag.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

/// Makes rustls use the ring provider (tonic's TLS runs on rustls); once per process, before
/// the first connection or listener.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
