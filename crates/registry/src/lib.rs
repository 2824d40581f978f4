//! Talks to OCI/Docker registries: pulls images into an xbuild content store and pushes them
//! from it.
//!
//! References are the one [`Reference`] of `xbuild_llb`, parsed as `docker pull` does
//! ([`parse_reference`]); credentials come from Docker's
//! `config.json` and its credential helpers ([`DockerConfig`]); auth follows the registry's
//! challenge (Bearer tokens with realm/service/scope, or Basic). The OCI distribution protocol
//! is spoken here over `reqwest`, pulls and pushes alike, with every response body read bounded
//! (see [`MAX_ERROR_BODY`] and the other limits): clear errors, multi-scope tokens for
//! cross-repository mounts, bounded retries, platform selection with a useful error,
//! digest-verified streaming into the store, and pushes that skip what the registry has.
//!
//! Invariant: every blob enters the store through `Store::blob_writer` and is committed only when
//! it hashes to the digest its manifest names; a failed or corrupt download leaves nothing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild_registry::Error> {
//! use std::sync::Arc;
//! use xbuild_registry::{Registry, RegistryOptions, parse_reference};
//!
//! let store = Arc::new(xbuild_cache::Store::open("/var/lib/xbuild".as_ref())?);
//! let registry = Registry::new(RegistryOptions::default())?;
//! let alpine = parse_reference("alpine")?;            // docker.io/library/alpine:latest
//! let pulled = registry.pull(&store, &alpine).await?;
//! println!("{} is {}", alpine, pulled.manifest.digest);
//! let target = parse_reference("127.0.0.1:5000/mirror/alpine:latest")?;
//! registry.push(&store, &pulled.manifest.digest, &target, &Default::default()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod auth;
mod challenge;
mod credentials;
mod limits;
mod platform;
mod pull;
mod push;
mod reference;
mod retry;
mod session;

pub use challenge::{Challenge, parse_challenges};
pub use credentials::{Credentials, DockerConfig};
pub use limits::{
    CONNECT_TIMEOUT, DOCUMENT_TIMEOUT, Document, MAX_CONFIG_SIZE, MAX_ERROR_BODY,
    MAX_MANIFEST_SIZE, MAX_STALLED_ATTEMPTS, MAX_TOKEN_SIZE, STALL_TIMEOUT,
};
pub use platform::select_manifest;
pub use pull::Pulled;
pub use push::{BlobPush, MountSources, Pushed};
pub use reference::{RegistryAddress, parse_reference};
pub use session::{Registry, RegistryOptions};
pub use xbuild_llb::Platform;
pub use xbuild_llb::reference::{DOCKER_HUB, Reference, ReferenceError};

use std::fmt;

/// The step of a registry exchange that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Finding the registry and the image's manifest digest.
    Resolve,
    /// Getting credentials or a token.
    Auth,
    /// Fetching or pushing a manifest.
    Manifest,
    /// Fetching a blob (digest).
    Blob(String),
    /// Uploading a blob (digest).
    Upload(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Resolve => f.write_str("resolve"),
            Step::Auth => f.write_str("auth"),
            Step::Manifest => f.write_str("manifest"),
            Step::Blob(d) => write!(f, "blob {d}"),
            Step::Upload(d) => write!(f, "upload of blob {d}"),
        }
    }
}

/// How a blob's length differed from its descriptor's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobLength {
    /// The response's `Content-Length` declared this many bytes (nothing was read).
    Declared(u64),
    /// The registry sent more bytes than the descriptor's size (the transfer was cut there).
    More,
    /// The registry ended the blob after this many bytes.
    Fewer(u64),
}

impl fmt::Display for BlobLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobLength::Declared(n) => {
                write!(f, "the registry declares {n} bytes (Content-Length)")
            }
            BlobLength::More => f.write_str("the registry sent more bytes than that"),
            BlobLength::Fewer(n) => write!(f, "the registry sent only {n} bytes"),
        }
    }
}

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference that does not parse.
    #[error("invalid image reference {reference:?}: {message}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        message: String,
    },
    /// The registry (or the connection to it) failed; `message` carries the registry's words.
    #[error("{reference}: {step}: {message}")]
    Registry {
        /// The image reference.
        reference: String,
        /// The step that failed.
        step: Step,
        /// What happened, with the registry's own message.
        message: String,
    },
    /// A blob's content does not hash to its digest; nothing of it was stored.
    #[error(
        "{reference}: blob {blob}: digest mismatch: the registry sent content that hashes to {actual}; nothing of it was stored"
    )]
    DigestMismatch {
        /// The image reference.
        reference: String,
        /// The blob's digest, as the manifest names it.
        blob: String,
        /// What the received content hashes to.
        actual: String,
    },
    /// A document larger than xbuild accepts for its kind; it was not read past the limit and
    /// nothing of it was stored.
    #[error(
        "{reference}: the {what} at {url} is larger than {limit_name} ({limit} bytes){}; xbuild refuses it and stored nothing: the registry is broken or hostile, or the reference names something that is not a container image",
        .declared.map(|n| format!(": it declares {n} bytes")).unwrap_or_default(),
        limit_name = .what.limit_name(),
        limit = .what.limit()
    )]
    TooLarge {
        /// The image reference.
        reference: String,
        /// The kind of document, which sets the limit.
        what: Document,
        /// Where it came from.
        url: String,
        /// Its `Content-Length`, when that alone showed it too large.
        declared: Option<u64>,
    },
    /// A blob whose length is not its descriptor's size; nothing of it was stored.
    #[error(
        "{reference}: blob {blob} at {url}: the manifest declares {expected} bytes but {got}; nothing of it was stored: the registry is broken or hostile"
    )]
    BlobLength {
        /// The image reference.
        reference: String,
        /// The blob's digest.
        blob: String,
        /// Where it came from.
        url: String,
        /// The size its descriptor declares.
        expected: u64,
        /// What the registry sent instead.
        got: BlobLength,
    },
    /// A registry that stopped answering: nothing for [`STALL_TIMEOUT`], or no whole document
    /// within [`DOCUMENT_TIMEOUT`], in each of [`MAX_STALLED_ATTEMPTS`] attempts.
    #[error(
        "{reference}: {step}: {url} stalled: no answer for {stall} s (STALL_TIMEOUT) or no whole document in {document} s (DOCUMENT_TIMEOUT), {attempts} times; check that the registry is up and reachable, then retry",
        stall = STALL_TIMEOUT.as_secs(),
        document = DOCUMENT_TIMEOUT.as_secs()
    )]
    Stalled {
        /// The image reference.
        reference: String,
        /// The step that stalled.
        step: Step,
        /// The URL that did not answer.
        url: String,
        /// Attempts made.
        attempts: u32,
    },
    /// An index with no image for the build platform.
    #[error("{reference}: no image for platform {wanted}; the index offers: {}", available.join(", "))]
    NoPlatform {
        /// The image reference.
        reference: String,
        /// The build platform.
        wanted: String,
        /// The platforms the index lists.
        available: Vec<String>,
    },
    /// Something the registry returned that xbuild does not handle.
    #[error("{reference}: {message}")]
    Unsupported {
        /// The image reference.
        reference: String,
        /// What is not supported.
        message: String,
    },
    /// Docker's credential store could not be read or written.
    #[error("docker credentials ({location}): {message}")]
    Credentials {
        /// The config file or helper.
        location: String,
        /// What failed.
        message: String,
    },
    /// The local content store failed.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
}
