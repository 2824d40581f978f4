//! The scheduler: every vertex whose inputs are solved runs at once; the first failure cancels
//! the rest, which are waited for, so that when a solve returns nothing it started is still
//! running or mounted.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;
use xbuild_cache::history::{BuildRecord, History, Outcome, VertexRecord};
use xbuild_llb::{Definition, Digest, Op, Vertex};

use crate::keys::Prefetch;
use crate::vertex::Track;
use crate::{Error, Event, Solved, Solver, VertexResult, blocking, now_rfc3339};

/// A vertex's description and place in the Dockerfile.
fn describe(def: &Definition, v: &Vertex) -> (String, Option<String>) {
    let meta = def.meta(v.digest());
    let name = meta
        .map(|m| m.description.clone())
        .unwrap_or_else(|| v.op().kind().to_string());
    let location = meta.and_then(|m| Some(format!("{}:{}", m.file.clone()?, m.line?)));
    (name, location)
}

/// The results of `v`'s inputs.
fn inputs_of(v: &Vertex, solved: &Solved) -> Solved {
    Solved {
        results: v
            .inputs()
            .iter()
            .filter_map(|d| solved.results.get(d).map(|r| (d.clone(), r.clone())))
            .collect(),
        ..Solved::default()
    }
}

impl Solver {
    /// Refuses a graph with a step that needs an entitlement the caller did not grant
    /// (`RUN --security=insecure`: `security.insecure`; `RUN --network=host`: `network.host`),
    /// before anything runs.
    fn check_entitlements(&self, def: &Definition, order: &[&Vertex]) -> Result<(), Error> {
        for v in order {
            let Op::Exec(e) = v.op() else { continue };
            let refused = if e.security == xbuild_llb::Security::Insecure
                && !self.opts.allow_insecure
            {
                Some(("RUN --security=insecure", "security.insecure"))
            } else if e.network == xbuild_llb::NetworkMode::Host && !self.opts.allow_network_host {
                Some(("RUN --network=host", "network.host"))
            } else {
                None
            };
            if let Some((instruction, entitlement)) = refused {
                let (name, location) = describe(def, v);
                return Err(Error::Vertex {
                    name,
                    location,
                    source: Box::new(Error::Entitlement {
                        instruction,
                        entitlement,
                    }),
                });
            }
        }
        Ok(())
    }

    /// Solves the vertices `targets` need: each as soon as its inputs are, all independent
    /// ones at once. On the first failure the others are cancelled (running steps killed) and
    /// waited for; that failure is the error.
    pub async fn solve(&self, def: &Definition, targets: &[Digest]) -> Result<Solved, Error> {
        let started = now_rfc3339();
        let needed = crate::ancestors(def, targets)?;
        let order: Vec<&Vertex> = def
            .vertices()
            .filter(|v| needed.contains(v.digest()))
            .collect();
        self.check_entitlements(def, &order)?;
        // Every base image's blobs are leased before any step runs: removing the image (rmi,
        // image prune) meanwhile untags it, and its content stays until this session ends.
        for v in &order {
            if let Op::Source(xbuild_llb::SourceOp::Image { digest, .. }) = v.op() {
                self.store.hold_image(&self.session, digest)?;
            }
        }
        let mut waiting: HashMap<&Digest, usize> = HashMap::new();
        let mut users: HashMap<&Digest, Vec<&Vertex>> = HashMap::new();
        for v in &order {
            let distinct: HashSet<&Digest> = v.inputs().iter().collect();
            waiting.insert(v.digest(), distinct.len());
            for i in distinct {
                users.entry(i).or_default().push(v);
            }
        }
        let cancel: CancellationToken = self.opts.cancel.child_token();
        let prefetch = self.prefetch(def, &order);
        let mut running = FuturesUnordered::new();
        let mut solved = Solved::default();
        for v in order.iter().filter(|v| waiting[v.digest()] == 0) {
            running.push(self.run_vertex(def, v, Solved::default(), &cancel, &prefetch));
        }
        let mut records: HashMap<Digest, VertexRecord> = HashMap::new();
        let mut failure: Option<Error> = None;
        while let Some((v, track, result)) = running.next().await {
            let (name, location) = describe(def, v);
            let outcome = match &result {
                Ok(r) if r.cached => Outcome::Cached,
                Ok(_) => Outcome::Ran,
                Err(Error::Cancelled) => Outcome::Cancelled,
                Err(_) => Outcome::Failed,
            };
            records.insert(
                v.digest().clone(),
                VertexRecord {
                    digest: v.digest().clone(),
                    key: track.key,
                    name: name.clone(),
                    location: location.clone(),
                    kind: v.op().kind().to_string(),
                    op: serde_json::to_value(v.op()).unwrap_or_default(),
                    inputs: v.inputs().to_vec(),
                    input_keys: track.input_keys,
                    contents: track.contents,
                    outcome,
                    seconds: track.started.map(|s| s.elapsed().as_secs_f64()),
                },
            );
            match result {
                Ok(r) => {
                    if matches!(v.op(), Op::Exec(_) | Op::File(_)) {
                        if r.cached {
                            solved.cached += 1;
                        } else {
                            solved.executed += 1;
                        }
                    }
                    solved.results.insert(v.digest().clone(), r);
                    if failure.is_some() {
                        continue;
                    }
                    for u in users.get(v.digest()).into_iter().flatten() {
                        let n = waiting.entry(u.digest()).or_default();
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            let inputs = inputs_of(u, &solved);
                            running.push(self.run_vertex(def, u, inputs, &cancel, &prefetch));
                        }
                    }
                }
                Err(Error::Cancelled) => {
                    if track.started.is_some() {
                        self.progress.event(Event::Failed {
                            vertex: v.digest().clone(),
                            error: "cancelled".into(),
                        });
                    }
                }
                Err(e) => {
                    self.progress.event(Event::Failed {
                        vertex: v.digest().clone(),
                        error: e.to_string(),
                    });
                    if failure.is_none() {
                        cancel.cancel();
                        // A source (`ADD <url>`, a git repository) has no line of its own: name
                        // the step that reads it, as a failing RUN is named.
                        let reader = match location {
                            Some(_) => None,
                            None => users
                                .get(v.digest())
                                .into_iter()
                                .flatten()
                                .map(|u| describe(def, u))
                                .find(|(_, l)| l.is_some()),
                        };
                        let (name, location) = match reader {
                            Some((user, l)) => (format!("{user} ({name} source)"), l),
                            None => (name, location),
                        };
                        failure = Some(Error::Vertex {
                            name,
                            location,
                            source: Box::new(e),
                        });
                    }
                }
            }
        }
        let interrupted = failure.is_none() && self.opts.cancel.is_cancelled();
        self.record_build(&order, records, started, failure.is_none() && !interrupted)
            .await;
        self.save_stat_cache().await;
        if let Some(e) = failure {
            return Err(e);
        }
        if interrupted {
            return Err(Error::Interrupted);
        }
        let keys: Vec<Digest> = solved
            .results
            .values()
            .map(|r| r.cache_key.clone())
            .collect();
        if let Err(e) = self.store.touch(&keys) {
            tracing::warn!(error = %e, "could not record when cache keys were used");
        }
        Ok(solved)
    }

    async fn run_vertex<'a>(
        &self,
        def: &Definition,
        v: &'a Vertex,
        inputs: Solved,
        cancel: &CancellationToken,
        prefetch: &Prefetch,
    ) -> (&'a Vertex, Track, Result<VertexResult, Error>) {
        let (name, location) = describe(def, v);
        let span =
            tracing::info_span!("vertex", %name, location = location.as_deref().unwrap_or(""));
        let mut track = Track::default();
        let r = tracing::Instrument::instrument(
            self.solve_one(def, v, &name, &inputs, cancel, prefetch, &mut track),
            span,
        )
        .await;
        (v, track, r)
    }

    /// Keeps what this build's keys were made of, for `explain`.
    async fn record_build(
        &self,
        order: &[&Vertex],
        mut records: HashMap<Digest, VertexRecord>,
        started: String,
        success: bool,
    ) {
        let record = BuildRecord {
            started,
            dockerfile: self.opts.dockerfile.clone(),
            build_args: self.opts.build_args.clone(),
            no_cache: self.opts.no_cache,
            success,
            vertices: order
                .iter()
                .filter_map(|v| records.remove(v.digest()))
                .collect(),
        };
        let history = History::new(&self.opts.root);
        let r = blocking(move || Ok(history.record(&record)?)).await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not record the build for explain");
        }
    }
}
