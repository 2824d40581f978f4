//! Rendering solver progress: a live BuildKit-style view on a terminal, plain lines, or one
//! JSON object per line.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use xbuild::{Digest, Event, ProgressSink};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `tty` when stderr is a terminal, else `plain`.
    Auto,
    /// A live view: one line per step, running ones with their last output line.
    Tty,
    /// One line per event, as `docker build --progress=plain`.
    Plain,
    /// One JSON object per event.
    Json,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// `Auto` decided for this process's stderr.
    pub fn resolve(self) -> Mode {
        match self {
            Mode::Auto if console::Term::stderr().is_term() => Mode::Tty,
            Mode::Auto => Mode::Plain,
            m => m,
        }
    }
}

/// The live view's state.
struct Live {
    multi: MultiProgress,
    header: ProgressBar,
    bars: HashMap<Digest, (ProgressBar, String)>,
    done: usize,
}

/// Writes events to stderr.
pub struct Printer {
    mode: Mode,
    start: Instant,
    ids: Mutex<HashMap<Digest, usize>>,
    live: Option<Mutex<Live>>,
}

fn running_style() -> ProgressStyle {
    ProgressStyle::with_template(" => {msg:.bold} {spinner} {elapsed:>4}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn finished_style() -> ProgressStyle {
    ProgressStyle::with_template(" => {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `line` cut to `n` characters.
fn cut(line: &str, n: usize) -> String {
    if line.chars().count() <= n {
        line.to_string()
    } else {
        let mut s: String = line.chars().take(n.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

impl Printer {
    pub fn new(mode: Mode) -> Self {
        let mode = mode.resolve();
        let live = (mode == Mode::Tty).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let header = multi.add(ProgressBar::new_spinner());
            header.set_style(
                ProgressStyle::with_template("[+] Building {elapsed_precise} ({msg})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            header.set_message("0 done");
            header.enable_steady_tick(Duration::from_millis(100));
            Mutex::new(Live {
                multi,
                header,
                bars: HashMap::new(),
                done: 0,
            })
        });
        Printer {
            mode,
            start: Instant::now(),
            ids: Mutex::new(HashMap::new()),
            live,
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
            Mode::Tty => {
                if let Some(Ok(live)) = self.live.as_ref().map(|l| l.lock()) {
                    let _ = live.multi.println(text);
                }
            }
            Mode::Auto | Mode::Plain => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    /// Stops the live view, leaving its last state on the terminal.
    pub fn finish(&self) {
        if let Some(Ok(mut live)) = self.live.as_ref().map(|l| l.lock()) {
            for (_, (bar, _)) in live.bars.drain() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            live.header.finish();
        }
    }

    fn live_event(&self, e: &Event) {
        let Some(Ok(mut live)) = self.live.as_ref().map(|l| l.lock()) else {
            return;
        };
        let live = &mut *live;
        let width = console::Term::stderr().size().1 as usize;
        let finished = |live: &mut Live, bar: &ProgressBar, text: String| {
            bar.set_style(finished_style());
            bar.finish_with_message(text);
            live.done += 1;
            live.header.set_message(format!("{} done", live.done));
        };
        match e {
            Event::Started { vertex, name } | Event::Waiting { vertex, name } => {
                let bar = live
                    .bars
                    .remove(vertex)
                    .map(|(b, _)| b)
                    .unwrap_or_else(|| live.multi.add(ProgressBar::new_spinner()));
                bar.set_style(running_style());
                let label = match e {
                    Event::Waiting { .. } => format!("{name} (waiting for another build)"),
                    _ => name.clone(),
                };
                bar.set_message(cut(&label, width.saturating_sub(12)));
                bar.enable_steady_tick(Duration::from_millis(100));
                live.bars.insert(vertex.clone(), (bar, name.clone()));
            }
            Event::Cached { name, .. } => {
                let bar = live.multi.add(ProgressBar::new_spinner());
                finished(
                    live,
                    &bar,
                    cut(&format!("CACHED {name}"), width.saturating_sub(4)),
                );
            }
            Event::Log { vertex, line, .. } => {
                if let Some((bar, name)) = live.bars.get(vertex) {
                    let room = width.saturating_sub(name.chars().count() + 16);
                    bar.set_message(format!("{name}  # {}", cut(line, room.max(10))));
                }
            }
            Event::Done { vertex, seconds } => {
                if let Some((bar, name)) = live.bars.remove(vertex) {
                    finished(live, &bar, format!("{name}  {seconds:.1}s"));
                }
            }
            Event::Failed { vertex, error } => {
                if let Some((bar, name)) = live.bars.remove(vertex) {
                    let text = cut(&format!("ERROR {name}: {error}"), width.saturating_sub(4));
                    finished(live, &bar, text);
                }
            }
        }
    }
}

impl ProgressSink for Printer {
    fn event(&self, e: Event) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Tty => self.live_event(&e),
            Mode::Json => {
                if let Ok(line) = serde_json::to_string(&e) {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            }
            Mode::Auto | Mode::Plain => {
                let mut err = std::io::stderr().lock();
                let _ = match &e {
                    Event::Started { vertex, name } => writeln!(err, "#{} {name}", self.id(vertex)),
                    Event::Waiting { vertex, name } => writeln!(
                        err,
                        "#{} {name}\n#{} waiting for another build on this root",
                        self.id(vertex),
                        self.id(vertex)
                    ),
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
