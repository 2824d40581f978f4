//! Why steps missed the cache: the last build on a root, vertex by vertex, compared with the
//! most recent earlier build that ran the same step (same vertex, else the same Dockerfile
//! line, else the same description).
//!
//! A miss is explained by what its cache key was made of and changed: the command, an
//! environment variable or build argument, the working directory, user, network or mounts, the
//! base image's digest, the files a context copy selected (by path: changed, added, removed),
//! or an input step whose result changed.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use xbuild_cache::history::{BuildRecord, FileSum, History, Outcome, VertexRecord};
use xbuild_llb::{Digest, Op, SourceOp};

use crate::Error;

/// At most this many paths are listed per kind of change.
const MAX_PATHS: usize = 20;

/// Why a step ran instead of coming from the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The build ran with `--no-cache`.
    NoCache,
    /// No earlier build recorded on this root ran this step.
    New,
    /// The key was the same as before, but its result was no longer cached (pruned).
    NotInCache,
    /// The command changed.
    Command {
        /// Before.
        before: String,
        /// Now.
        after: String,
    },
    /// An environment variable of the step changed.
    Env {
        /// The variable.
        name: String,
        /// Its value before (absent: it was not set).
        before: Option<String>,
        /// Its value now.
        after: Option<String>,
    },
    /// A build argument the step sees changed.
    BuildArg {
        /// The argument.
        name: String,
        /// Its value before.
        before: Option<String>,
        /// Its value now.
        after: Option<String>,
    },
    /// Another setting of the step changed (working directory, user, network, mounts).
    Setting {
        /// Which (`workdir`, `user`, `network`, `mounts`, `security`).
        name: String,
        /// Before.
        before: String,
        /// Now.
        after: String,
    },
    /// The base image resolved to another digest.
    BaseImage {
        /// The image reference.
        reference: String,
        /// Its digest before.
        before: String,
        /// Its digest now.
        after: String,
    },
    /// Files a copy from the context selects changed.
    Files {
        /// The copy's source.
        src: String,
        /// Paths whose content, mode or link target changed.
        changed: Vec<String>,
        /// Paths that are new.
        added: Vec<String>,
        /// Paths that are gone.
        removed: Vec<String>,
        /// How many paths changed in all (the lists are cut at 20).
        total: usize,
    },
    /// The files of a context copy changed, but their lists were not kept.
    Content {
        /// The copy's source.
        src: String,
    },
    /// The instruction itself changed (its sources, destination or options).
    Instruction {
        /// Before (the op as JSON).
        before: String,
        /// Now.
        after: String,
    },
    /// What a remote source (URL, git) fetched changed.
    Remote,
    /// An input step's result changed.
    Input {
        /// The input step's description.
        name: String,
        /// Where it is in the Dockerfile.
        location: Option<String>,
    },
    /// The step was cancelled because another one failed.
    Cancelled,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |v: &Option<String>| match v {
            Some(v) => format!("{v:?}"),
            None => "(unset)".into(),
        };
        match self {
            Reason::NoCache => write!(f, "--no-cache"),
            Reason::New => write!(f, "no earlier build on this root ran this step"),
            Reason::NotInCache => write!(f, "same inputs as before, but the result was pruned"),
            Reason::Command { before, after } => {
                write!(f, "command changed: {before:?} -> {after:?}")
            }
            Reason::Env {
                name,
                before,
                after,
            } => write!(f, "env {name} changed: {} -> {}", opt(before), opt(after)),
            Reason::BuildArg {
                name,
                before,
                after,
            } => write!(
                f,
                "build arg {name} changed: {} -> {}",
                opt(before),
                opt(after)
            ),
            Reason::Setting {
                name,
                before,
                after,
            } => write!(f, "{name} changed: {before} -> {after}"),
            Reason::BaseImage {
                reference,
                before,
                after,
            } => write!(f, "base image {reference} changed: {before} -> {after}"),
            Reason::Files {
                src,
                changed,
                added,
                removed,
                total,
            } => {
                let mut parts = Vec::new();
                if !changed.is_empty() {
                    parts.push(format!("changed {}", changed.join(", ")));
                }
                if !added.is_empty() {
                    parts.push(format!("added {}", added.join(", ")));
                }
                if !removed.is_empty() {
                    parts.push(format!("removed {}", removed.join(", ")));
                }
                write!(f, "files of COPY {src}: {}", parts.join("; "))?;
                let shown = changed.len() + added.len() + removed.len();
                if *total > shown {
                    write!(f, " (and {} more)", total - shown)?;
                }
                Ok(())
            }
            Reason::Content { src } => write!(f, "files of COPY {src} changed"),
            Reason::Instruction { before, after } => {
                write!(f, "instruction changed: {before} -> {after}")
            }
            Reason::Remote => write!(f, "the fetched content changed"),
            Reason::Input { name, location } => match location {
                Some(l) => write!(f, "input changed: {name} ({l})"),
                None => write!(f, "input changed: {name}"),
            },
            Reason::Cancelled => write!(f, "cancelled: another step failed"),
        }
    }
}

/// One vertex of the last build, explained.
#[derive(Clone, Debug, Serialize)]
pub struct VertexExplanation {
    /// The vertex digest.
    pub digest: Digest,
    /// Its description.
    pub name: String,
    /// Where it is in the Dockerfile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The op's kind.
    pub kind: String,
    /// What happened.
    pub outcome: Outcome,
    /// How long it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Why it was not cached (empty when it was).
    pub reasons: Vec<Reason>,
}

/// The last build on a root, explained.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// When it started.
    pub started: String,
    /// Its Dockerfile.
    pub dockerfile: Option<String>,
    /// Whether it succeeded.
    pub success: bool,
    /// Every vertex, inputs first.
    pub vertices: Vec<VertexExplanation>,
}

/// Explains the last build recorded on the root `root`; `None` when there is none.
pub fn explain(root: &Path) -> Result<Option<Explanation>, Error> {
    let history = History::new(root);
    let builds = history.builds()?;
    let Some((last, earlier)) = builds.split_first() else {
        return Ok(None);
    };
    let by_digest: HashMap<&Digest, &VertexRecord> =
        last.vertices.iter().map(|v| (&v.digest, v)).collect();
    let mut out = Vec::new();
    for v in &last.vertices {
        let reasons = match v.outcome {
            Outcome::Cached => Vec::new(),
            Outcome::Cancelled => vec![Reason::Cancelled],
            Outcome::Ran | Outcome::Failed => {
                why(&history, last, v, earlier, &by_digest).unwrap_or_default()
            }
        };
        out.push(VertexExplanation {
            digest: v.digest.clone(),
            name: v.name.clone(),
            location: v.location.clone(),
            kind: v.kind.clone(),
            outcome: v.outcome,
            seconds: v.seconds,
            reasons,
        });
    }
    Ok(Some(Explanation {
        started: last.started.clone(),
        dockerfile: last.dockerfile.clone(),
        success: last.success,
        vertices: out,
    }))
}

/// The same step in the most recent earlier build that has it: the same vertex, else (in a
/// build of the same Dockerfile) the same op, the same line, or the same description.
fn previous<'a>(
    build: &BuildRecord,
    v: &VertexRecord,
    earlier: &'a [BuildRecord],
) -> Option<(&'a BuildRecord, &'a VertexRecord)> {
    let same: [&dyn Fn(&VertexRecord) -> bool; 4] = [
        &|p| p.digest == v.digest,
        &|p| p.kind == v.kind && p.op == v.op,
        &|p| v.location.is_some() && p.location == v.location && p.kind == v.kind,
        &|p| p.name == v.name && p.kind == v.kind,
    ];
    for b in earlier {
        for (n, test) in same.iter().enumerate() {
            if n > 0 && b.dockerfile != build.dockerfile {
                continue;
            }
            if let Some(p) = b.vertices.iter().find(|p| test(p)) {
                return Some((b, p));
            }
        }
    }
    None
}

fn why(
    history: &History,
    build: &BuildRecord,
    v: &VertexRecord,
    earlier: &[BuildRecord],
    by_digest: &HashMap<&Digest, &VertexRecord>,
) -> Option<Vec<Reason>> {
    let mut reasons = Vec::new();
    if build.no_cache {
        reasons.push(Reason::NoCache);
    }
    let Some((pbuild, prev)) = previous(build, v, earlier) else {
        if reasons.is_empty() {
            reasons.push(Reason::New);
        }
        return Some(reasons);
    };
    if v.key.is_some() && v.key == prev.key {
        if reasons.is_empty() {
            reasons.push(Reason::NotInCache);
        }
        return Some(reasons);
    }
    reasons.extend(direct(history, build, pbuild, v, prev));
    let n = v.input_keys.len().max(prev.input_keys.len());
    for i in 0..n {
        if v.input_keys.get(i) == prev.input_keys.get(i) {
            continue;
        }
        let Some(input) = v.inputs.get(i).and_then(|d| by_digest.get(d)) else {
            continue;
        };
        // A base image that moved is said as such, even when its layers were unpacked already.
        let base: Vec<Reason> = match previous(build, input, earlier) {
            Some((pb, pi)) if input.kind == "image" => direct(history, build, pb, input, pi),
            _ => Vec::new(),
        };
        if base.is_empty() {
            reasons.push(Reason::Input {
                name: input.name.clone(),
                location: input.location.clone(),
            });
        } else {
            reasons.extend(base);
        }
    }
    if reasons.is_empty() {
        reasons.push(match v.kind.as_str() {
            "http" | "git" => Reason::Remote,
            _ => Reason::NotInCache,
        });
    }
    reasons.dedup();
    Some(reasons)
}

fn env_map(env: &[String]) -> BTreeMap<&str, &str> {
    env.iter()
        .map(|e| e.split_once('=').unwrap_or((e.as_str(), "")))
        .collect()
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

/// What changed in the step itself (not in its inputs).
fn direct(
    history: &History,
    build: &BuildRecord,
    pbuild: &BuildRecord,
    v: &VertexRecord,
    prev: &VertexRecord,
) -> Vec<Reason> {
    let mut out = Vec::new();
    let (Ok(op), Ok(pop)) = (
        serde_json::from_value::<Op>(v.op.clone()),
        serde_json::from_value::<Op>(prev.op.clone()),
    ) else {
        if v.op != prev.op {
            out.push(Reason::Instruction {
                before: short(&prev.op),
                after: short(&v.op),
            });
        }
        return out;
    };
    match (&op, &pop) {
        (Op::Exec(e), Op::Exec(p)) => {
            if e.args != p.args {
                out.push(Reason::Command {
                    before: p.args.join(" "),
                    after: e.args.join(" "),
                });
            }
            let (now, before) = (env_map(&e.env), env_map(&p.env));
            let mut names: Vec<&str> = now.keys().chain(before.keys()).copied().collect();
            names.sort();
            names.dedup();
            for name in names {
                let (a, b) = (now.get(name), before.get(name));
                if a == b {
                    continue;
                }
                let (after, before) = (a.map(|s| s.to_string()), b.map(|s| s.to_string()));
                let is_arg =
                    build.build_args.contains_key(name) || pbuild.build_args.contains_key(name);
                out.push(if is_arg {
                    Reason::BuildArg {
                        name: name.to_string(),
                        before,
                        after,
                    }
                } else {
                    Reason::Env {
                        name: name.to_string(),
                        before,
                        after,
                    }
                });
            }
            let settings = [
                ("workdir", json(&p.cwd), json(&e.cwd)),
                ("user", json(&p.user), json(&e.user)),
                ("network", json(&p.network), json(&e.network)),
                ("security", json(&p.security), json(&e.security)),
                ("mounts", json(&p.mounts), json(&e.mounts)),
            ];
            for (name, before, after) in settings {
                if before != after {
                    out.push(Reason::Setting {
                        name: name.into(),
                        before,
                        after,
                    });
                }
            }
        }
        (
            Op::Source(SourceOp::Image { reference, digest }),
            Op::Source(SourceOp::Image {
                digest: pdigest, ..
            }),
        ) => {
            if digest != pdigest {
                out.push(Reason::BaseImage {
                    reference: reference.clone(),
                    before: pdigest.to_string(),
                    after: digest.to_string(),
                });
            }
        }
        (Op::File(_), Op::File(_)) => {
            if v.op != prev.op {
                out.push(Reason::Instruction {
                    before: short(&prev.op),
                    after: short(&v.op),
                });
            }
            for c in &v.contents {
                let Some(pc) = prev.contents.iter().find(|p| p.action == c.action) else {
                    continue;
                };
                if pc.checksum == c.checksum {
                    continue;
                }
                out.push(files_reason(history, &c.src, &pc.checksum, &c.checksum));
            }
        }
        _ => {
            if v.op != prev.op {
                out.push(Reason::Instruction {
                    before: short(&prev.op),
                    after: short(&v.op),
                });
            }
        }
    }
    out
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Which paths differ between two file lists of a copy.
fn files_reason(history: &History, src: &str, before: &str, after: &str) -> Reason {
    let (Some(b), Some(a)) = (history.files(before), history.files(after)) else {
        return Reason::Content {
            src: src.to_string(),
        };
    };
    let map = |l: Vec<FileSum>| -> BTreeMap<String, [u8; 32]> {
        l.into_iter().map(|f| (f.path, f.sum)).collect()
    };
    let (b, a) = (map(b), map(a));
    let (mut changed, mut added, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let mut total = 0;
    for (p, s) in &a {
        match b.get(p) {
            Some(old) if old == s => continue,
            Some(_) => {
                total += 1;
                if changed.len() < MAX_PATHS {
                    changed.push(p.clone());
                }
            }
            None => {
                total += 1;
                if added.len() < MAX_PATHS {
                    added.push(p.clone());
                }
            }
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        total += 1;
        if removed.len() < MAX_PATHS {
            removed.push(p.clone());
        }
    }
    Reason::Files {
        src: src.to_string(),
        changed,
        added,
        removed,
        total,
    }
}
