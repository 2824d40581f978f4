//! Talks to OCI/Docker registries: pulls images into an xbuild content store and pushes them
//! from it.
//!
//! References are normalized as Docker does ([`Reference`]); credentials come from Docker's
//! `config.json` and its credential helpers ([`DockerConfig`]); auth follows the registry's
//! challenge (Bearer tokens with realm/service/scope, or Basic). The HTTP work is done by the
//! `oci-client` crate; this crate adds what it lacks: Docker's credential store, our own auth
//! negotiation (clear errors, multi-scope tokens for cross-repository mounts), bounded retries,
//! platform selection with a useful error, digest-verified streaming into the store, and pushes
//! that skip what the registry has.
//!
//! Invariant: every blob enters the store through `Store::blob_writer` and is committed only when
//! it hashes to the digest its manifest names; a failed or corrupt download leaves nothing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild_registry::Error> {
//! use std::sync::Arc;
//! use xbuild_registry::{Reference, Registry, RegistryOptions};
//!
//! let store = Arc::new(xbuild_cache::Store::open("/var/lib/xbuild".as_ref())?);
//! let registry = Registry::new(RegistryOptions::default())?;
//! let alpine = Reference::parse("alpine")?;            // docker.io/library/alpine:latest
//! let pulled = registry.pull(&store, &alpine).await?;
//! println!("{} is {}", alpine, pulled.manifest.digest);
//! let target = Reference::parse("127.0.0.1:5000/mirror/alpine:latest")?;
//! registry.push(&store, &pulled.manifest.digest, &target, &Default::default()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod auth;
mod challenge;
mod credentials;
mod platform;
mod pull;
mod push;
mod reference;
mod retry;
mod session;

pub use challenge::{Challenge, parse_challenges};
pub use credentials::{Credentials, DockerConfig};
pub use platform::Platform;
pub use pull::Pulled;
pub use push::{BlobPush, MountSources, Pushed};
pub use reference::{DOCKER_HUB, Reference};
pub use session::{Registry, RegistryOptions};

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
