//! Progress for embedders: a sink the build options hold, events as a `Stream`, and the
//! per-step timings a build result reports.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use xbuild_llb::Digest;
use xbuild_solver::{Event, NoProgress, ProgressSink};

/// A progress sink shared by a build's tasks, as [`BuildOptions`](crate::BuildOptions) holds
/// it; [`NoProgress`] by default.
#[derive(Clone)]
pub struct SharedSink(pub Arc<dyn ProgressSink>);

impl SharedSink {
    /// Shares `sink`.
    pub fn new(sink: impl ProgressSink + 'static) -> Self {
        SharedSink(Arc::new(sink))
    }
}

impl Default for SharedSink {
    fn default() -> Self {
        SharedSink(Arc::new(NoProgress))
    }
}

impl std::fmt::Debug for SharedSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSink(..)")
    }
}

impl From<Arc<dyn ProgressSink>> for SharedSink {
    fn from(sink: Arc<dyn ProgressSink>) -> Self {
        SharedSink(sink)
    }
}

impl<T: ProgressSink + 'static> From<Arc<T>> for SharedSink {
    fn from(sink: Arc<T>) -> Self {
        SharedSink(sink)
    }
}

impl ProgressSink for SharedSink {
    fn event(&self, e: Event) {
        self.0.event(e)
    }
}

/// A sink that forwards every event into an [`EventStream`].
#[derive(Clone, Debug)]
pub struct ChannelSink(mpsc::UnboundedSender<Event>);

impl ProgressSink for ChannelSink {
    fn event(&self, e: Event) {
        // A stream nobody reads any more is not the build's problem.
        let _ = self.0.send(e);
    }
}

/// A build's progress events as a [`Stream`](futures_util::Stream); it ends when every
/// [`ChannelSink`] feeding it is dropped (the build finished and its options were dropped).
#[derive(Debug)]
pub struct EventStream(mpsc::UnboundedReceiver<Event>);

impl futures_util::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.0.poll_recv(cx)
    }
}

/// A sink to put in [`BuildOptions::progress`](crate::BuildOptions::progress) and the stream of
/// the events it receives.
///
/// ```no_run
/// # async fn demo(builder: xbuild::Builder) -> Result<(), xbuild::Error> {
/// use futures_util::StreamExt;
/// let (sink, mut events) = xbuild::event_stream();
/// let mut opts = xbuild::BuildOptions::new("./app");
/// opts.progress = sink.into();
/// let build = tokio::spawn(async move { builder.build(&opts).await });
/// while let Some(event) = events.next().await {
///     println!("{event:?}");
/// }
/// let result = build.await.expect("the build task panicked")?;
/// # Ok(()) }
/// ```
pub fn event_stream() -> (Arc<ChannelSink>, EventStream) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(ChannelSink(tx)), EventStream(rx))
}

/// How long each phase of a build took.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    /// Parsing and lowering the Dockerfile, pulling base images it names.
    pub lower: Duration,
    /// Solving the graph (cache lookups and the steps that ran).
    pub solve: Duration,
    /// Writing the outputs.
    pub export: Duration,
    /// Pushing to registries.
    pub push: Duration,
    /// The whole build.
    pub total: Duration,
}

/// One step of a build: whether it ran and how long it took.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StepTiming {
    /// The vertex.
    pub vertex: Digest,
    /// Its description (`[2/4] RUN make`).
    pub name: String,
    /// True when its result came from the cache.
    pub cached: bool,
    /// How long it ran (zero when cached).
    pub seconds: f64,
}

/// Forwards events to the build's sink and keeps each step's outcome for the result.
pub(crate) struct Recorder {
    inner: SharedSink,
    names: Mutex<HashMap<Digest, String>>,
    steps: Mutex<Vec<StepTiming>>,
}

impl Recorder {
    pub(crate) fn new(inner: SharedSink) -> Self {
        Recorder {
            inner,
            names: Mutex::new(HashMap::new()),
            steps: Mutex::new(Vec::new()),
        }
    }

    /// The steps recorded so far.
    pub(crate) fn steps(&self) -> Vec<StepTiming> {
        self.steps.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn push(&self, step: StepTiming) {
        if let Ok(mut s) = self.steps.lock() {
            s.push(step);
        }
    }
}

impl ProgressSink for Recorder {
    fn event(&self, e: Event) {
        match &e {
            Event::Started { vertex, name } => {
                if let Ok(mut n) = self.names.lock() {
                    n.insert(vertex.clone(), name.clone());
                }
            }
            Event::Cached { vertex, name } => self.push(StepTiming {
                vertex: vertex.clone(),
                name: name.clone(),
                cached: true,
                seconds: 0.0,
            }),
            Event::Done { vertex, seconds } => {
                let name = self
                    .names
                    .lock()
                    .ok()
                    .and_then(|mut n| n.remove(vertex))
                    .unwrap_or_default();
                self.push(StepTiming {
                    vertex: vertex.clone(),
                    name,
                    cached: false,
                    seconds: *seconds,
                });
            }
            Event::Waiting { .. } | Event::Log { .. } | Event::Failed { .. } => {}
        }
        self.inner.event(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn the_stream_gets_every_event_and_ends_with_its_sinks() {
        let (sink, mut events) = event_stream();
        let recorder = Recorder::new(sink.clone().into());
        let v = Digest::of(b"v");
        recorder.event(Event::Started {
            vertex: v.clone(),
            name: "RUN x".into(),
        });
        recorder.event(Event::Done {
            vertex: v.clone(),
            seconds: 1.5,
        });
        drop(recorder);
        drop(sink);
        let got: Vec<Event> = events.by_ref().collect().await;
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Event::Done { .. }));
    }

    #[test]
    fn the_recorder_names_steps_that_ran() {
        let r = Recorder::new(SharedSink::default());
        let v = Digest::of(b"v");
        r.event(Event::Started {
            vertex: v.clone(),
            name: "RUN x".into(),
        });
        r.event(Event::Cached {
            vertex: Digest::of(b"w"),
            name: "COPY y".into(),
        });
        r.event(Event::Done {
            vertex: v.clone(),
            seconds: 2.0,
        });
        let steps = r.steps();
        assert_eq!(steps.len(), 2);
        assert!(steps[0].cached);
        assert_eq!(steps[1].name, "RUN x");
        assert_eq!(steps[1].seconds, 2.0);
    }
}
