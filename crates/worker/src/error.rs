//! [`Error`]: what can go wrong starting a worker or serving a build.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::context::ManifestProblem;

/// What can go wrong starting a worker or serving a build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad settings (certificates, the address to listen on).
    #[error("{0}")]
    Config(String),
    /// A certificate, key or token file named by a flag cannot be used.
    #[error(transparent)]
    FlagFile(#[from] xbuild::worker::FlagFileError),
    /// TLS without client authentication on an address others can reach.
    #[error(
        "--listen {addr}: TLS without --tls-client-ca or --token-file lets anyone who reaches {addr} run builds as root on this machine; require client certificates (--tls-client-ca CA.pem) or a token (--token-file FILE), or pass --allow-unauthenticated to serve anyone"
    )]
    Unauthenticated {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The client asked for an entitlement this worker was not started with.
    #[error(
        "granting entitlement {name} is not allowed by this worker's configuration: start the worker with --allow-insecure-entitlement {name}, or build without --allow {name}"
    )]
    EntitlementNotAllowed {
        /// The entitlement (`security.insecure`, `network.host`).
        name: String,
    },
    /// An entitlement name the worker does not know.
    #[error("unknown entitlement {name:?}: expected security.insecure or network.host")]
    UnknownEntitlement {
        /// The name given.
        name: String,
    },
    /// A context manifest entry the worker refuses: no scan of a directory lists it so.
    #[error("context manifest entry {index} ({path:?}): {problem}")]
    Manifest {
        /// The entry's position in the manifest.
        index: usize,
        /// Its path (cut short when long).
        path: String,
        /// What is wrong with it.
        problem: ManifestProblem,
    },
    /// The context manifest lists more entries than a worker takes.
    #[error(
        "the context manifest lists more than {limit} entries, this worker's limit; leave files out with a .dockerignore"
    )]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// A client sent something the protocol does not allow, or a context layout was changed
    /// outside the worker and cannot be laid out again.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The worker's stat cache or a store failed.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
