//! Remote build workers: [`server::serve`] runs `xbuild worker`, serving builds over gRPC
//! (schema: `proto/worker.proto`); [`client::build`] sends one (`xbuild build --remote`).
//!
//! The client sends the Dockerfile, the options and a manifest of the context its
//! `.dockerignore` selects, with each file named by the blake3 hash of its content; the worker
//! asks only for the contents its file store lacks, lays the context out, builds it with its
//! [`Builder`](crate::Builder) (streaming progress and logs back live), and sends the output
//! back, or pushes it. An image comes back by blobs: the worker offers the manifest and
//! config, the client asks for the layers its content store lacks, and writes the image (or
//! the OCI layout or docker-archive asked for) from its own store; a filesystem output comes
//! back as a tar.
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
pub mod server;

/// The generated protocol types and gRPC stubs (`proto/worker.proto`): what a client sends a
/// worker and what it answers.
#[allow(missing_docs, dead_code, clippy::all, clippy::unwrap_used)]
pub mod proto {
    tonic::include_proto!("xbuild.worker.v1");
}

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong sending a build to a worker or serving one.
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
    /// A peer sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Bad settings (certificates, addresses, options a remote build cannot carry).
    #[error("{0}")]
    Config(String),
    /// A context manifest entry the worker refuses: no scan of a directory lists it so.
    #[error("context manifest entry {index} ({path:?}): {problem}")]
    Manifest {
        /// The entry's position in the manifest.
        index: usize,
        /// Its path (cut short when long).
        path: String,
        /// What is wrong with it.
        problem: context::ManifestProblem,
    },
    /// The context manifest lists more entries than a worker takes.
    #[error(
        "the context manifest lists more than {limit} entries, this worker's limit; leave files out with a .dockerignore"
    )]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// The client asked for an entitlement this worker was not started with.
    #[error(
        "granting entitlement {name} is not allowed by this worker's configuration: start the worker with --allow-insecure-entitlement {name}, or build without --allow {name}"
    )]
    EntitlementNotAllowed {
        /// The entitlement (`security.insecure`, `network.host`).
        name: String,
    },
    /// An entitlement name neither side knows.
    #[error("unknown entitlement {name:?}: expected security.insecure or network.host")]
    UnknownEntitlement {
        /// The name given.
        name: String,
    },
    /// TLS without client authentication on an address others can reach.
    #[error(
        "--listen {addr}: TLS without --tls-client-ca or --token-file lets anyone who reaches {addr} run builds as root on this machine; require client certificates (--tls-client-ca CA.pem) or a token (--token-file FILE), or pass --allow-unauthenticated to serve anyone"
    )]
    Unauthenticated {
        /// The address asked for.
        addr: SocketAddr,
    },
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

/// Reads a file named by a flag, saying which flag when it cannot.
pub(crate) fn read_flag_file(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Config(format!("{flag} {}: {e}", path.display())))
}

/// Reads a bearer token file: its first line, which must not be empty.
pub(crate) fn read_token(flag: &str, path: &std::path::Path) -> Result<String, Error> {
    let bytes = read_flag_file(flag, path)?;
    let text = String::from_utf8_lossy(&bytes);
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "{flag} {}: the file holds no token",
            path.display()
        )));
    }
    Ok(token)
}

/// Makes rustls use the ring provider (tonic's TLS runs on rustls); once per process.
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
