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

use crate::OptionName;

/// The response header in which a worker lists the protocol features it has.
pub const FEATURES_HEADER: &str = "xbuild-features";
/// The feature of a worker that takes the manifest's digest first (see `proto/worker.proto`).
pub const MANIFEST_DIGEST_FEATURE: &str = "manifest-digest";

/// What can go wrong sending a build to a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The worker could not be reached.
    #[error("worker {addr}: cannot connect: {source}")]
    Connect {
        /// The worker's address.
        addr: String,
        /// Why.
        source: ConnectError,
    },
    /// The connection broke before the build finished (the worker died or was stopped).
    #[error("worker {addr}: the connection was lost before the build finished: {cause}")]
    Lost {
        /// The worker's address.
        addr: String,
        /// How it broke.
        cause: LostCause,
    },
    /// The worker refused the client (authentication) or the request: it ended the call with
    /// `Unauthenticated` or `PermissionDenied`.
    #[error("worker {addr} refused the build: {status}")]
    Refused {
        /// The worker's address.
        addr: String,
        /// The status it ended the call with.
        status: WorkerStatus,
    },
    /// The build ran on the worker and failed there.
    #[error("worker {addr}: {message}")]
    Failed {
        /// The worker's address.
        addr: String,
        /// The worker's error, as the protocol carries it: text (`Outcome.error`), worded by
        /// the worker.
        message: String,
    },
    /// The local content store failed while an image came back.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
    /// No worker address was given.
    #[error("a remote build needs at least one worker address")]
    NoWorker,
    /// A build option a remote build cannot carry.
    #[error("{what}")]
    Unsupported {
        /// The option.
        what: RemoteUnsupported,
    },
    /// TLS settings that cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsProblem),
    /// A bearer token that cannot be sent in a request header.
    #[error("{}: not a valid bearer token", path.display())]
    BadToken {
        /// The token file.
        path: PathBuf,
    },
    /// A build context that cannot be listed as a manifest ([`context::scan`]).
    #[error("{}: {problem}", path.display())]
    Context {
        /// The file or directory of the context at fault (`DIR/.dockerignore` for its
        /// patterns).
        path: PathBuf,
        /// What is wrong with it.
        problem: ContextProblem,
    },
    /// A worker sent something the protocol does not allow.
    #[error("protocol error: worker {worker}: {violation}")]
    Protocol {
        /// The worker's address.
        worker: String,
        /// What it did.
        violation: Box<ProtocolViolation>,
    },
    /// The local content store, where an image comes back, could not be opened.
    #[error(transparent)]
    LocalStore(Box<crate::Error>),
    /// A blocking task that panicked or was cancelled.
    #[error("{what} task failed: {source}")]
    Task {
        /// What the task did.
        what: &'static str,
        /// Why it ended.
        source: tokio::task::JoinError,
    },
    /// A certificate, key or token file named by an option cannot be used.
    #[error(transparent)]
    OptionFile(#[from] OptionFileError),
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

/// Why a worker could not be reached ([`Error::Connect`]).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The transport failed (name resolution, TCP, TLS); the message is the whole chain of
    /// causes, since the transport's own is only "transport error".
    #[error("{}", chain(.0))]
    Transport(#[source] tonic::transport::Error),
    /// The task making the connection panicked or was cancelled.
    #[error("{0}")]
    Task(#[source] tokio::task::JoinError),
}

/// `e` and its causes, joined by `: `.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// How a connection to a worker broke before the build finished ([`Error::Lost`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LostCause {
    /// The call ended with a gRPC status other than a refusal.
    #[error("{0}")]
    Status(WorkerStatus),
    /// The worker ended its answer without the build's outcome.
    #[error("the worker ended the build without an outcome")]
    NoOutcome,
}

/// The gRPC status a worker ended a call with: its code and message (the message, or the
/// code's name when the message is empty).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", if message.is_empty() { format!("{code:?}") } else { message.clone() })]
pub struct WorkerStatus {
    /// The status code.
    pub code: tonic::Code,
    /// The message (empty when the worker gave none).
    pub message: String,
}

impl From<&tonic::Status> for WorkerStatus {
    fn from(s: &tonic::Status) -> Self {
        WorkerStatus {
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}

/// A build option a remote build cannot carry ([`Error::Unsupported`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemoteUnsupported {
    /// Secrets or SSH agents ([`BuildOptions::secrets`](crate::BuildOptions::secrets),
    /// [`BuildOptions::ssh`](crate::BuildOptions::ssh)): they stay on the client.
    #[error("secrets and SSH agents are not sent to remote workers; build locally to use them")]
    SecretsOrSsh,
    /// Cache import or export ([`BuildOptions::cache_from`](crate::BuildOptions::cache_from),
    /// [`BuildOptions::cache_to`](crate::BuildOptions::cache_to)): a worker's cache is its
    /// own setting.
    #[error(
        "cache import and export are set on the worker (its cache registry), not by a remote client"
    )]
    Cache,
    /// More than one output ([`BuildOptions::outputs`](crate::BuildOptions::outputs)).
    #[error("a remote build writes one output; give only one")]
    SeveralOutputs,
}

/// TLS settings of a [`Remote`](client::Remote) that cannot be used ([`Error::Tls`]).
#[derive(Debug, thiserror::Error)]
pub enum TlsProblem {
    /// A client certificate without its key.
    #[error("TLS client certificate without its key")]
    CertWithoutKey,
    /// A client key without its certificate.
    #[error("TLS client key without its certificate")]
    KeyWithoutCert,
    /// A client certificate or key without the CA of the workers' certificates: TLS is on
    /// only with that CA.
    #[error("a TLS client certificate needs the CA of the worker's certificate")]
    CertWithoutCa,
    /// A worker address, or TLS settings, that the connection cannot be set up with.
    #[error("worker {addr}: {source}")]
    Endpoint {
        /// The worker's address.
        addr: String,
        /// Why.
        source: tonic::transport::Error,
    },
}

/// What is wrong with a build context that cannot be listed ([`Error::Context`]).
#[derive(Debug, thiserror::Error)]
pub enum ContextProblem {
    /// Its `.dockerignore` holds a pattern that cannot be parsed.
    #[error("{0}")]
    Ignore(#[source] xbuild_dockerignore::BadPattern),
    /// A directory holding a name that is not UTF-8.
    #[error("a file name in it is not UTF-8; rename it or list it in .dockerignore")]
    NonUtf8Name,
    /// A symlink whose target is not UTF-8.
    #[error("the link target is not UTF-8")]
    NonUtf8LinkTarget,
    /// A socket, device or pipe.
    #[error("sockets, devices and pipes cannot be sent as build context; list it in .dockerignore")]
    SpecialFile,
    /// A file that was replaced while it was hashed.
    #[error("changed while the context was scanned; build again")]
    Changed,
}

/// What a worker sent that the protocol does not allow ([`Error::Protocol`]).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolViolation {
    /// A context status the client did not ask for (the worker does not take the manifest's
    /// digest first, or the manifest is on its way already).
    #[error("sent a context status it was not asked for")]
    UnrequestedStatus,
    /// A content digest asked for that is not 32 bytes long.
    #[error("asked for a digest that is not 32 bytes")]
    DigestLength,
    /// A content asked for that the context does not hold.
    #[error("asked for {} which the context does not hold", hex::encode(.0))]
    UnknownContent([u8; 32]),
    /// An image offered, or an archive sent, after an output already came.
    #[error("offered a second output")]
    SecondOutput,
    /// A blob sent before an image was offered.
    #[error("sent a blob before offering an image")]
    BlobBeforeOffer,
    /// A message with nothing in it.
    #[error("sent an empty message")]
    EmptyMessage,
    /// An outcome naming another image than the one offered.
    #[error("offered image {offered} but reported {reported:?}")]
    ImageMismatch {
        /// The manifest digest offered.
        offered: xbuild_llb::Digest,
        /// The one the outcome reported.
        reported: String,
    },
    /// A push reported with a reference or digest that cannot be parsed.
    #[error("reported a bad push: {reference:?} at {manifest:?}")]
    BadPush {
        /// The reference reported.
        reference: String,
        /// The manifest digest reported.
        manifest: String,
    },
    /// An image offered with a manifest digest that is not a sha256 digest.
    #[error("offered an image whose manifest digest {0:?} is not a sha256 digest")]
    ManifestDigest(String),
    /// A manifest offered that does not hash to the digest offered with it.
    #[error("the manifest it sent hashes to {got}, not {offered}; nothing was stored")]
    ManifestHash {
        /// The digest offered.
        offered: xbuild_llb::Digest,
        /// The manifest's hash.
        got: xbuild_llb::Digest,
    },
    /// A manifest offered that is not an image manifest.
    #[error("manifest {digest} is not an image manifest: {source}")]
    NotAManifest {
        /// Its digest.
        digest: xbuild_llb::Digest,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A config offered that is not the one the manifest names.
    #[error(
        "the config it sent ({got}, {size} bytes) is not the one manifest {manifest} names ({named}, {named_size} bytes); nothing was stored"
    )]
    ConfigMismatch {
        /// The manifest's digest.
        manifest: xbuild_llb::Digest,
        /// The config's hash.
        got: xbuild_llb::Digest,
        /// Its size.
        size: u64,
        /// The config digest the manifest names.
        named: xbuild_llb::Digest,
        /// The config size the manifest names.
        named_size: u64,
    },
    /// A config offered that is not an image config.
    #[error("config {digest}: {source}")]
    NotAConfig {
        /// Its digest.
        digest: xbuild_llb::Digest,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A blob sent after every wanted layer came.
    #[error("sent blob {0} after every wanted layer")]
    ExtraBlob(String),
    /// A blob sent out of turn.
    #[error("sent blob {sent:?} where layer {due} was due")]
    BlobOutOfTurn {
        /// The blob's digest, as sent.
        sent: String,
        /// The layer due.
        due: xbuild_llb::Digest,
    },
    /// More or fewer bytes for a layer than its descriptor says.
    #[error(
        "sent {sent} bytes for layer {layer}, whose descriptor says {size}; nothing was stored"
    )]
    LayerSize {
        /// The layer.
        layer: xbuild_llb::Digest,
        /// The bytes sent (so far).
        sent: u64,
        /// Its descriptor's size.
        size: u64,
    },
    /// A layer whose content does not hash to its digest.
    #[error("layer {layer}: {source}; the transfer was corrupted, nothing was stored")]
    CorruptLayer {
        /// The layer.
        layer: xbuild_llb::Digest,
        /// What the store found.
        source: xbuild_cache::Error,
    },
    /// The build ended before a layer asked for was sent.
    #[error("ended the build before sending layer {0}")]
    LayerNotSent(xbuild_llb::Digest),
    /// The layers received do not match the image config's diff IDs.
    #[error(transparent)]
    Layers(Box<xbuild_exporter::Error>),
}

impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        crate::Error::Worker(Box::new(e))
    }
}

/// A certificate, key or token file, named by an option of a remote build or a worker, that
/// cannot be used (client and worker read them alike). The message starts with the option's
/// name ([`OptionName`]'s `Display`); a command line may swap it for its flag.
#[derive(Debug, thiserror::Error)]
pub enum OptionFileError {
    /// The file cannot be read.
    #[error("{option} {}: {source}", path.display())]
    Unreadable {
        /// The option that named it ([`OptionName::WorkerTlsCert`], …).
        option: OptionName,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A token file whose first line is empty.
    #[error("{option} {}: the file holds no token", path.display())]
    NoToken {
        /// The option that named it ([`OptionName::RemoteTokenFile`] or
        /// [`OptionName::WorkerTokenFile`]).
        option: OptionName,
        /// The file.
        path: PathBuf,
    },
}

impl OptionFileError {
    /// The option that named the file.
    pub fn option(&self) -> OptionName {
        match self {
            OptionFileError::Unreadable { option, .. }
            | OptionFileError::NoToken { option, .. } => *option,
        }
    }
}

/// Reads a file named by the option `option`, saying which option when it cannot.
pub fn read_option_file(option: OptionName, path: &Path) -> Result<Vec<u8>, OptionFileError> {
    std::fs::read(path).map_err(|source| OptionFileError::Unreadable {
        option,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a bearer token file, named by the option `option`: its first line, which must not be
/// empty.
pub fn read_token(option: OptionName, path: &Path) -> Result<String, OptionFileError> {
    let bytes = read_option_file(option, path)?;
    let text = String::from_utf8_lossy(&bytes);
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(OptionFileError::NoToken {
            option,
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
