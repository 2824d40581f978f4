//! Rendering solver progress: BuildKit-style plain lines, or one JSON object per line.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use xbuild::{Event, ProgressSink};
use xbuild_llb::Digest;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Plain for now (a live tty view is future work).
    Auto,
    /// One line per event, as `docker build --progress=plain`.
    Plain,
    /// One JSON object per event.
    Json,
    /// Nothing.
    Quiet,
}

/// Writes events to stderr.
pub struct Printer {
    mode: Mode,
    start: Instant,
    ids: Mutex<HashMap<Digest, usize>>,
}

impl Printer {
    pub fn new(mode: Mode) -> Self {
        Printer {
            mode,
            start: Instant::now(),
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn id(&self, v: &Digest) -> usize {
        let Ok(mut ids) = self.ids.lock() else {
            return 0;
        };
        let n = ids.len() + 1;
        *ids.entry(v.clone()).or_insert(n)
    }

    /// Prints a line outside of any vertex (export steps, results).
    pub fn note(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => {
                let line = serde_json::json!({"event": "note", "text": text});
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            _ => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }
}

impl ProgressSink for Printer {
    fn event(&self, e: Event) {
        let mut err = std::io::stderr().lock();
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => {
                if let Ok(line) = serde_json::to_string(&e) {
                    let _ = writeln!(err, "{line}");
                }
            }
            Mode::Auto | Mode::Plain => {
                let _ = match &e {
                    Event::Started { vertex, name } => writeln!(err, "#{} {name}", self.id(vertex)),
                    Event::Cached { vertex, name } => {
                        let n = self.id(vertex);
                        writeln!(err, "#{n} {name}\n#{n} CACHED")
                    }
                    Event::Log { vertex, line, .. } => writeln!(
                        err,
                        "#{} {:.3} {line}",
                        self.id(vertex),
                        self.start.elapsed().as_secs_f64()
                    ),
                    Event::Done { vertex, seconds } => {
                        writeln!(err, "#{} DONE {seconds:.1}s", self.id(vertex))
                    }
                    Event::Failed { vertex, error } => {
                        writeln!(err, "#{} ERROR: {error}", self.id(vertex))
                    }
                };
            }
        }
    }
}
