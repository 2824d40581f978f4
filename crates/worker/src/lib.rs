//! xbuild-worker: `xbuild worker`, the server remote builds run on.
//!
//! [`serve`] takes builds over gRPC (the protocol and the client are in
//! [`xbuild::worker`]), keeps the contents clients send in its own file store under
//! `<root>/worker/` ([`context::FileStore`]), checks each context manifest as a whole tree
//! before laying it out ([`context::validate`], [`context::materialize`]), builds with an
//! [`xbuild::Builder`] on the same root, streams progress back, and ships the output back
//! (an image by blobs, offered by manifest and config, the client asking only for the layers
//! it lacks) or pushes it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild_worker::Error> {
//! use xbuild_worker::{WorkerOptions, serve};
//!
//! let builder = xbuild::Builder::new("/var/lib/xbuild").with_max_parallel_steps(4);
//! let opts = WorkerOptions::new("127.0.0.1:7443".parse().expect("an address"));
//! serve(
//!     builder,
//!     opts,
//!     |addr| println!("listening on {addr}"),
//!     async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     },
//! )
//! .await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod context;
mod error;
mod server;

pub use error::{Error, LayoutProblem, TlsSetup};
pub use server::{WorkerOptions, serve};
