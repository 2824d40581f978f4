//! [`Error`]: what can go wrong starting a worker or serving a build.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::context::ManifestProblem;

/// What can go wrong starting a worker or serving a build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// TLS settings that cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsSetup),
    /// Plain TCP asked for on an address other than loopback, without
    /// [`WorkerOptions::insecure`](crate::WorkerOptions::insecure).
    #[error(
        "listening on {addr}: plain TCP is only served on loopback; give a TLS certificate and key, or allow insecure connections"
    )]
    PlainTcp {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address to listen on cannot be bound.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Serving failed once listening.
    #[error("serving on {addr}: {source}")]
    Serve {
        /// The address listened on.
        addr: SocketAddr,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// A certificate, key or token file named by an option cannot be used.
    #[error(transparent)]
    OptionFile(#[from] xbuild::worker::OptionFileError),
    /// No client authentication on an address others can reach, without
    /// [`WorkerOptions::allow_unauthenticated`](crate::WorkerOptions::allow_unauthenticated).
    #[error(
        "listening on {addr}: serving without client authentication lets anyone who reaches {addr} run builds as root on this machine; require client certificates (a TLS client CA) or a bearer token file, or allow unauthenticated clients explicitly to serve anyone"
    )]
    Unauthenticated {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The client asked for an entitlement this worker was not started with
    /// ([`WorkerOptions::entitlements`](crate::WorkerOptions::entitlements)).
    #[error(
        "granting entitlement {name} is not allowed by this worker's configuration: start the worker with entitlement {name} allowed, or build without entitlement {name}"
    )]
    EntitlementNotAllowed {
        /// The entitlement (`security.insecure`, `network.host`).
        name: String,
    },
    /// A request without the bearer token this worker requires
    /// ([`WorkerOptions::token_file`](crate::WorkerOptions::token_file)).
    #[error("a valid bearer token is required")]
    TokenRequired,
    /// A build context holding more file bytes than this worker takes
    /// ([`WorkerOptions::max_context_size`](crate::WorkerOptions::max_context_size)).
    #[error(
        "the build context holds {bytes} bytes of files, over this worker's context size limit of {limit} bytes; leave files out with a .dockerignore"
    )]
    ContextTooLarge {
        /// The context's file bytes.
        bytes: u64,
        /// The limit.
        limit: u64,
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
    /// A context layout was changed outside the worker and cannot be laid out again.
    #[error(
        "the context layout {} was changed outside the worker and {problem}; build again to send the context",
        dir.display()
    )]
    LayoutChanged {
        /// The layout's directory.
        dir: PathBuf,
        /// Why it cannot be laid out again.
        problem: LayoutProblem,
    },
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

/// TLS settings of a worker that cannot be used ([`Error::Tls`]).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetup {
    /// A server certificate without its key.
    #[error("TLS server certificate without its key")]
    CertWithoutKey,
    /// A server key without its certificate.
    #[error("TLS server key without its certificate")]
    KeyWithoutCert,
    /// A client CA (mTLS) without a server certificate and key: TLS is on only with them.
    #[error("a TLS client CA needs the server's certificate and key")]
    ClientCaWithoutCert,
    /// A certificate, key or client CA the TLS stack refuses.
    #[error("TLS server certificate and key: {0}")]
    Identity(#[source] tonic::transport::Error),
}

/// Why a context layout changed outside the worker cannot be laid out again
/// ([`Error::LayoutChanged`]).
#[derive(Debug, thiserror::Error)]
pub enum LayoutProblem {
    /// Its record is gone.
    #[error("its record is gone")]
    RecordGone,
    /// Its manifest cannot be decoded.
    #[error("its manifest is damaged")]
    ManifestDamaged,
    /// Its manifest is not the one recorded.
    #[error("its manifest is not the one recorded")]
    ManifestNotRecorded,
    /// Its manifest holds an entry no scan lists.
    #[error("{0}")]
    BadManifest(#[source] Box<Error>),
    /// The worker's file store lacks some of its contents.
    #[error("the worker lacks some of its contents")]
    ContentsMissing,
}
