//! [`Error`]: what can go wrong in the library, with enough context for a user to act.

use std::path::{Path, PathBuf};

use crate::{Diagnostic, Severity, render_diagnostics};

/// What can go wrong, with enough context for a user to act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile has errors; render them with [`render_diagnostics`] or
    /// [`Error::rendered_diagnostics`].
    #[error("{file}: {} error(s)", diagnostics.iter().filter(|d| d.severity == Severity::Error).count())]
    Dockerfile {
        /// The Dockerfile's path as given.
        file: String,
        /// Its text.
        source_text: String,
        /// Every diagnostic.
        diagnostics: Vec<Diagnostic>,
    },
    /// A step failed.
    #[error(transparent)]
    Solve(#[from] xbuild_solver::Error),
    /// Writing or reading an image failed.
    #[error(transparent)]
    Export(#[from] xbuild_exporter::Error),
    /// Pulling, pushing or logging in failed.
    #[error(transparent)]
    Registry(#[from] xbuild_registry::Error),
    /// A document of a local cache (`--cache-from type=local`) larger than its kind's limit;
    /// it was not read past the limit.
    #[error(
        "{}: the cache's {what} is {size} bytes, more than {limit_name} ({limit} bytes); refused: the cache directory is damaged or not a build cache",
        .path.display(),
        limit_name = .what.limit_name(),
        limit = .what.limit()
    )]
    CacheTooLarge {
        /// The file, or the blob file, read.
        path: PathBuf,
        /// The kind of document, which sets the limit.
        what: xbuild_registry::Document,
        /// Its size (declared by its descriptor, or on disk).
        size: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] xbuild_cache::Error),
    /// The local store holds a pinned reference's (`name@sha256:…`) document, but its content
    /// does not hash to its digest (or cannot be read).
    #[error("{reference}: {source}")]
    Pinned {
        /// The reference, as given.
        reference: String,
        /// What the store found (for corrupt content: the digest expected and the actual one).
        source: xbuild_cache::Error,
    },
    /// An image name that is not in the store.
    #[error("No such image: {0} (see `xbuild images`)")]
    NoSuchImage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Invalid arguments.
    #[error("{0}")]
    Usage(String),
    /// The build was cancelled through [`BuildOptions::cancel`](crate::BuildOptions::cancel); what it started was stopped
    /// and cleaned up.
    #[error("the build was cancelled")]
    Cancelled,
    /// Sending a build to a worker failed (feature `remote`).
    #[cfg(feature = "remote")]
    #[error(transparent)]
    Worker(#[from] Box<crate::worker::Error>),
    /// The build context could not be fetched (a git clone failed).
    #[error("{0}")]
    Context(String),
    /// A build context from standard input holding more bytes than allowed.
    #[error(
        "the build context on standard input holds more than --max-context-size ({limit} bytes){}; pass a larger --max-context-size or send a smaller context",
        entry.as_ref().map(|e| format!(" at member {e:?}")).unwrap_or_default()
    )]
    ContextTooLarge {
        /// The limit, in bytes.
        limit: u64,
        /// The archive member that crossed it (none: the input itself is too long).
        entry: Option<String>,
    },
}

impl From<xbuild_runtime::Error> for Error {
    fn from(e: xbuild_runtime::Error) -> Self {
        Error::Export(e.into())
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Error {
    /// True for a mistake in the arguments or options (a command line exits 2 for it, as
    /// for its own usage errors), false for a build or command that failed.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }

    /// For a Dockerfile with errors: every diagnostic rendered with its source lines
    /// ([`render_diagnostics`]).
    pub fn rendered_diagnostics(&self, color: bool) -> Option<String> {
        match self {
            Error::Dockerfile {
                file,
                source_text,
                diagnostics,
            } => Some(render_diagnostics(file, source_text, diagnostics, color)),
            _ => None,
        }
    }

    /// For a build step that failed: where it is in the Dockerfile and, for a RUN step that
    /// exited non-zero, the last lines it printed.
    pub fn step_failure(&self) -> Option<StepFailure<'_>> {
        let Error::Solve(xbuild_solver::Error::Vertex {
            location, source, ..
        }) = self
        else {
            return None;
        };
        let output_tail = match source.as_ref() {
            xbuild_solver::Error::Runtime(xbuild_runtime::Error::ExecFailed { tail, .. }) => {
                tail.as_slice()
            }
            _ => &[],
        };
        Some(StepFailure {
            location: location.as_deref(),
            output_tail,
        })
    }
}

/// A failed build step, as [`Error::step_failure`] finds it.
#[derive(Clone, Copy, Debug)]
pub struct StepFailure<'a> {
    /// Where the step is in the Dockerfile (`Dockerfile:3`).
    pub location: Option<&'a str>,
    /// The last lines a RUN step printed before it failed (empty for other steps).
    pub output_tail: &'a [String],
}
