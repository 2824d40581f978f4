//! Progress events a solve emits, for the CLI (or an embedder) to render.

use serde::Serialize;
use xbuild_llb::Digest;

/// One thing that happened to a vertex.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The vertex started running.
    Started {
        /// The vertex.
        vertex: Digest,
        /// Its description (`[2/4] RUN make`).
        name: String,
    },
    /// Another build on the same root is running this vertex; this one waits for its result.
    Waiting {
        /// The vertex.
        vertex: Digest,
        /// Its description.
        name: String,
    },
    /// The vertex's result came from the cache; nothing ran.
    Cached {
        /// The vertex.
        vertex: Digest,
        /// Its description.
        name: String,
    },
    /// A line of a running step's output.
    Log {
        /// The vertex.
        vertex: Digest,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The line, without its newline.
        line: String,
    },
    /// The vertex finished.
    Done {
        /// The vertex.
        vertex: Digest,
        /// How long it took, in seconds.
        seconds: f64,
    },
    /// The vertex failed.
    Failed {
        /// The vertex.
        vertex: Digest,
        /// The error.
        error: String,
    },
}

/// Receives progress events (must be cheap: it is called on the solver's tasks).
pub trait ProgressSink: Send + Sync {
    /// Handles one event.
    fn event(&self, e: Event);
}

/// Discards every event.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _: Event) {}
}
