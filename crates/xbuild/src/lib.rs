//! xbuild: a Dockerfile build engine, embeddable.
//!
//! [`Builder`] is the facade the `xbuild` binary is a thin layer over: it parses and lowers a
//! Dockerfile ([`xbuild_parser`]), solves the graph ([`xbuild_solver`]) against an xbuild root
//! (content store and snapshots), and exports the result ([`xbuild_exporter`]) into the local
//! image store, an OCI layout, a docker-archive, a directory or a filesystem tar. It also
//! manages the local image store the way Docker's image commands do (`images`, `tag`, `rmi`,
//! `image prune`, `history`, `save`, `load`, `import`, `export`, `diff`), and sends builds to
//! remote workers (`worker`, with the Cargo feature `remote`; the worker itself is the
//! `xbuild-worker` crate).
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild::Error> {
//! use xbuild::{BuildOptions, Builder, OutputSpec};
//!
//! let builder = Builder::new("/var/lib/xbuild");
//! let mut opts = BuildOptions::new("./app");
//! opts.tags.push("app:1".into());
//! opts.outputs.push(OutputSpec::parse("type=oci,dest=app-oci")?);
//! let result = builder.build(&opts).await?;
//! println!("built {:?}: {} steps ran, {} cached, in {:?}",
//!     result.image_id, result.executed, result.cached, result.timings.total);
//! # Ok(()) }
//! ```
//!
//! Lower-level entry points: [`parse`] (a Dockerfile's syntax tree), [`Builder::lower`]
//! (the [`Definition`] to inspect or edit), [`Builder::solve`] and [`Builder::export_solution`]
//! (run any graph, hand-built ones included, then write its outputs), and
//! [`Builder::export_snapshot`] (an image from a snapshot). Progress comes to a
//! [`ProgressSink`] or, through [`event_stream`], as a [`Stream`](futures_util::Stream) of
//! [`Event`]s; [`BuildOptions::cancel`] stops a build and cleans up what it started.
//!
//! A front end that takes `xbuild build`'s flags gets the command line's rules
//! (`SOURCE_DATE_EPOCH`, `--ssh` from `SSH_AUTH_SOCK`, `--allow`, `--build-arg`) through
//! [`BuildFlags`], and reads what it shows a user from an [`Error`] through
//! [`Error::is_usage`], [`Error::rendered_diagnostics`] and [`Error::step_failure`]; errors
//! about an option say which ([`Error::option`]), for a front end to name it its own way.
#![forbid(unsafe_code)]

mod builder;
mod cache_export;
mod cache_import;
mod cachespec;
pub mod context_input;
mod dockerfile;
mod error;
mod events;
mod filter;
mod flags;
mod images;
mod inspect;
mod options;
mod outputs;
mod reference;
mod remote;
mod store;
#[cfg(feature = "remote")]
pub mod worker;

pub use builder::{BuildResult, Builder, CacheExported, CheckReport, Solution};
pub use cachespec::{CacheMode, CacheSpec};
pub use dockerfile::{check_dockerfile, render_diagnostics};
pub use error::{
    BadCacheError, CacheSpecError, Conflict, ContextError, Error, FilterError, GitContextError,
    ImageError, InternalError, OptionError, OptionName, OutputError, StepFailure,
};
pub use events::{ChannelSink, EventStream, SharedSink, StepTiming, Timings, event_stream};
pub use filter::ImageFilter;
pub use flags::{BuildFlags, Environment, key_values};
pub use images::{HistoryRow, ImageDetails, Loaded};
pub use inspect::{
    DockerConfig, DockerDescriptor, DockerImage, DockerMetadata, DockerRootFs, RawImage,
};
pub use reference::{Reference, TagError};
pub use remote::PullSummary;
pub use store::{ImageSummary, NONE, Removed, StoreResolver, default_root};
pub use tokio_util::sync::CancellationToken;
pub use xbuild_cache::gc::PruneOptions;
/// Whether a step of a recorded build ran, came from the cache, failed or was cancelled
/// ([`Explanation`]).
pub use xbuild_cache::history::Outcome as StepOutcome;
pub use xbuild_cache::verify::{BrokenImage, CorruptBlob, VerifyReport};
pub use xbuild_exporter::{ArchiveFormat, Compression, FileChange};
/// The graph types ([`Definition`], [`llb::Op`], …) for building graphs by hand.
pub use xbuild_llb as llb;
pub use xbuild_llb::{Definition, Digest};
/// The Dockerfile parser and lowering, for tools that only read Dockerfiles.
pub use xbuild_parser as parser;
pub use xbuild_parser::{Diagnostic, Parsed, Severity, parse};
pub use xbuild_registry::{Pushed, RegistryOptions};
pub use xbuild_runtime::SnapshotterKind;
/// The solver, for running graphs with your own progress sinks and options.
pub use xbuild_solver as solver;
pub use xbuild_solver::explain::Explanation;
pub use xbuild_solver::gc::{DiskUsage, PruneReport};
pub use xbuild_solver::{Event, NoProgress, ProgressSink, SecretSource};

pub use options::{BuildOptions, parse_epoch};
pub use outputs::OutputSpec;

pub(crate) use dockerfile::lower_text;
pub(crate) use error::io;
