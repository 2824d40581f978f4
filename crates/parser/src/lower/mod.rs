//! Lowering: a parsed [`Dockerfile`] plus build options to an [`xbuild_llb::Definition`].
//!
//! Stages are lowered on demand starting from the target, so stages the target does not need
//! never enter the graph. Base images are looked up through an [`ImageResolver`], so this module
//! stays pure. Image config and history follow Docker 20.10's BuildKit byte for byte (the
//! engine the conformance corpus is built with).
//!
//! As BuildKit's dockerfile2llb, the work is split by feature: this module holds the entry
//! points, the per-stage instruction loop and dispatch, and the graph plumbing the features
//! share; `stages` lowers FROM lines, stage references and ONBUILD triggers; `run` RUN and its
//! mounts; `copy` COPY and ADD; `config` the image config instructions; `paths` path and
//! working directory rules; `expand` word expansion and UndefinedVar.

mod config;
mod copy;
mod expand;
mod paths;
mod run;
mod stages;
#[cfg(test)]
mod test_support;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use xbuild_llb::{
    Definition, Digest, FileAction, FileOp, HistoryEntry, ImageConfig, MkfileAction, Op, Output,
    SourceOp, VertexMeta,
};

use crate::ast::{Command, Dockerfile, Instruction};
use crate::checks::meta_args;
use crate::directives::CheckConfig;
use crate::env::{ConfigEnvIndex, Env};
use crate::platform::{Platform, predefined_args};
use crate::shell::{Budget, Lexer};
use crate::span::{Diagnostic, Span};
use expand::expansion_error;
use stages::{Base, BaseState, Progress, StageDef};

pub use crate::platform::host_architecture;
pub use paths::{clean_path, normalize_path, normalize_workdir, parse_chown};

/// The `PATH` every Linux stage gets when its base sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The history comment BuildKit writes on every step.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The build context's name in the graph.
pub const CONTEXT_NAME: &str = "context";

/// A base image as the resolver found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The normalized reference, e.g. `busybox:local`.
    pub reference: String,
    /// The manifest digest it resolved to.
    pub digest: Digest,
    /// Its runtime configuration.
    pub config: ImageConfig,
    /// Its history.
    pub history: Vec<HistoryEntry>,
    /// Its platform, as its config states it.
    pub platform: Platform,
}

/// Finds base images' configurations (the image store or a registry implements it).
pub trait ImageResolver {
    /// Resolves `reference` for `platform` (the stage's `FROM --platform`, else the build's
    /// target platform); the error text says why it could not.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String>;
}

/// Options of a build that change the graph.
#[derive(Clone, Debug)]
pub struct LowerOptions {
    /// The Dockerfile's name as shown in errors and vertex metadata.
    pub file: String,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// The platform of the image to build (`linux/amd64`); an empty OS or architecture is
    /// the host's.
    pub platform: Platform,
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
    /// `--label` values added to the target's image config.
    pub labels: BTreeMap<String, String>,
    /// `.dockerignore` patterns: left out of the build context.
    pub exclude_patterns: Vec<String>,
    /// Lower every stage, not only those the target needs (for `--check` without `--target`,
    /// as BuildKit's lint). The stages the target needs are lowered first; in the others, a
    /// failure only the solve would meet (a `--chown` name with no `/etc/passwd` to look it up
    /// in) is no error, as the build never solves them.
    pub all_stages: bool,
}

impl Default for LowerOptions {
    /// No file name, the host's platform, nothing else set.
    fn default() -> Self {
        LowerOptions::for_host("")
    }
}

impl LowerOptions {
    /// Options for building `file` for the host's platform.
    pub fn for_host(file: impl Into<String>) -> Self {
        LowerOptions {
            file: file.into(),
            build_args: BTreeMap::new(),
            platform: Platform::host(),
            target: None,
            labels: BTreeMap::new(),
            exclude_patterns: Vec::new(),
            all_stages: false,
        }
    }

    /// The target platform, the host's OS and architecture filled in where empty.
    fn platform(&self) -> Platform {
        let host = Platform::host();
        let or = |s: &str, default: String| if s.is_empty() { default } else { s.to_string() };
        Platform {
            os: or(&self.platform.os, host.os),
            architecture: or(&self.platform.architecture, host.architecture),
            variant: self.platform.variant.clone(),
        }
    }
}

/// A successful lowering: the graph and the warnings found on the way.
#[derive(Debug)]
pub struct Lowered {
    /// The build graph with one output (the target stage).
    pub definition: Definition,
    /// Build-check warnings that need the stage environment (UndefinedVar) and unused
    /// build arguments.
    pub warnings: Vec<Diagnostic>,
}

/// Everything one lowering found, whether or not it succeeded (for `--check`).
#[derive(Debug, Default)]
pub struct LowerReport {
    /// The build graph, when lowering found no error.
    pub definition: Option<Definition>,
    /// Every error found.
    pub errors: Vec<Diagnostic>,
    /// The warnings found, beside any errors: build-check warnings that need the stage
    /// environment (UndefinedVar) and, when lowering succeeded, unused build arguments.
    pub warnings: Vec<Diagnostic>,
}

/// Lowers `df` to a graph with one output, or returns every error found.
pub fn lower(
    df: &Dockerfile,
    opts: &LowerOptions,
    resolver: &dyn ImageResolver,
) -> Result<Definition, Vec<Diagnostic>> {
    lower_with_warnings(df, opts, resolver).map(|l| l.definition)
}

/// A lowered stage.
#[derive(Clone, Debug)]
struct StageOut {
    /// The stage's state so far.
    state: Digest,
    /// The image config so far.
    config: ImageConfig,
    /// The image history so far.
    history: Vec<HistoryEntry>,
    /// The platform the stage's image is for.
    platform: Platform,
    /// The llb state's environment: image Env plus ARG values.
    env: Env,
    /// The index of `config.env`.
    config_env: ConfigEnvIndex,
    /// ARGs declared so far (key, value), for RUN's history.
    args: Vec<(String, Option<String>)>,
    /// The keys of `args`, for UndefinedVar.
    arg_keys: HashSet<String>,
    /// A WORKDIR was set (in this stage or a stage it builds on), for WorkdirRelativePath.
    workdir_set: bool,
    /// The stage's own ONBUILD triggers (run by stages built on it).
    own_onbuild: Vec<String>,
    /// `MAINTAINER` (the image's `author`); `None` keeps the base image's.
    author: Option<String>,
}

/// The state of one lowering.
struct Lowerer<'a> {
    df: &'a Dockerfile,
    opts: &'a LowerOptions,
    resolver: &'a dyn ImageResolver,
    def: Definition,
    diags: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    stages: Vec<StageDef<'a>>,
    /// Where each stage's lowering is.
    progress: Vec<Progress>,
    /// How many stages are being lowered, each for an instruction of the one before
    /// (`COPY --from`, `RUN --mount=from=`).
    nesting: usize,
    /// How many more undefined variables get a "did you mean" suggestion: each scans the
    /// whole environment, so without a bound a file of n undefined variables costs n².
    suggestions_left: usize,
    /// The expansion work left for this Dockerfile.
    budget: Budget,
    /// The error of the spent budget is reported (it is reported once).
    budget_reported: bool,
    /// The stage being lowered is one the target needs, so its graph is solved; false for the
    /// other stages [`LowerOptions::all_stages`] lowers.
    solved: bool,
    /// The instruction UndefinedVar last reported on (its address) and the variables it
    /// reported there: once per instruction and variable, as BuildKit.
    undefined_reported: (usize, HashSet<String>),
    meta: Env,
    meta_keys: BTreeSet<String>,
    used_args: BTreeSet<String>,
    context: Option<Digest>,
    scratch: Option<Digest>,
    lexer: Lexer,
    platform: Platform,
    /// The `.dockerignore` patterns for CopyIgnoredFile (`None` without patterns).
    ignored: Option<crate::checks::IgnoreMatcher>,
}

/// [`lower`], also returning the warnings.
pub fn lower_with_warnings(
    df: &Dockerfile,
    opts: &LowerOptions,
    resolver: &dyn ImageResolver,
) -> Result<Lowered, Vec<Diagnostic>> {
    let report = lower_report(df, opts, resolver);
    match report.definition {
        Some(definition) if report.errors.is_empty() => Ok(Lowered {
            definition,
            warnings: report.warnings,
        }),
        _ => Err(report.errors),
    }
}

/// [`lower`], returning every error and warning found, with the graph when there was no
/// error: the warnings found before or beside an error are kept (what `--check` reports).
pub fn lower_report(
    df: &Dockerfile,
    opts: &LowerOptions,
    resolver: &dyn ImageResolver,
) -> LowerReport {
    let platform = opts.platform();
    // BuildKit's `defaultArgs`: BUILD* name the platform the build runs on (the host), TARGET*
    // the one it builds for.
    let predefined = predefined_args(&Platform::host(), &platform);
    let mut budget = Budget::default();
    let m = meta_args(df, Some(&opts.build_args), &predefined, &mut budget);
    if let Some((word, e)) = m.limit {
        return LowerReport {
            errors: vec![expansion_error(word, &e, "fix the global ARG's default")],
            ..Default::default()
        };
    }
    let (meta, meta_keys) = (m.env, m.keys);
    let lexer = Lexer::new(df.directives.escape);
    let mut l = Lowerer {
        df,
        opts,
        resolver,
        def: Definition::new(),
        diags: Vec::new(),
        warnings: Vec::new(),
        stages: Vec::new(),
        progress: Vec::new(),
        nesting: 0,
        suggestions_left: MAX_SUGGESTIONS,
        budget,
        budget_reported: false,
        solved: true,
        undefined_reported: (0, HashSet::new()),
        meta,
        meta_keys,
        used_args: BTreeSet::new(),
        context: None,
        scratch: None,
        lexer,
        platform,
        ignored: crate::checks::IgnoreMatcher::new(&opts.exclude_patterns),
    };
    let definition = l.lower_target();
    LowerReport {
        definition,
        errors: l.diags,
        warnings: l.warnings,
    }
}

impl Lowerer<'_> {
    /// Lowers the target stage (and the stages it needs; then every other stage with
    /// [`LowerOptions::all_stages`]); the graph when no error was found.
    fn lower_target(&mut self) -> Option<Definition> {
        let opts = self.opts;
        self.collect_stages();
        if self.stages.is_empty() {
            self.diags.push(
                Diagnostic::error(Span::default(), "dockerfile contains no stages to build")
                    .with_hint("add a FROM <image> line"),
            );
            return None;
        }
        if !self.diags.is_empty() {
            return None;
        }
        let target = self.target_index()?;
        let out = self.stage(target, None);
        if opts.all_stages {
            // The stages the target needs are lowered; the rest are never solved.
            self.solved = false;
            for i in 0..self.stages.len() {
                self.stage(i, None);
            }
            self.solved = true;
        }
        let Some(mut out) = out.filter(|_| self.diags.is_empty()) else {
            if self.diags.is_empty() {
                self.diags.push(Diagnostic::error(
                    self.stages[target].from.span,
                    format!("stage {} could not be lowered", self.stage_name(target)),
                ));
            }
            return None;
        };
        for (k, v) in &opts.labels {
            out.config.labels.insert(k.clone(), v.clone());
        }
        let name = self.stages[target]
            .name
            .clone()
            .unwrap_or_else(|| "default".into());
        let output = Output {
            name,
            vertex: out.state,
            config: out.config,
            history: out.history,
            os: out.platform.os,
            architecture: out.platform.architecture,
            variant: out.platform.variant,
            author: out.author,
        };
        if let Err(e) = self.def.add_output(output) {
            self.diags
                .push(Diagnostic::error(Span::default(), e.to_string()));
            return None;
        }
        self.def.set_proxy_env(proxy_env(&opts.build_args));
        self.warn_unused_build_args();
        Some(std::mem::replace(&mut self.def, Definition::new()))
    }

    /// Warns about each `--build-arg` no stage declared (the predefined ones aside).
    fn warn_unused_build_args(&mut self) {
        for k in self.opts.build_args.keys() {
            let predefined = PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(k))
                || self.meta_keys.contains(k)
                || k == "BUILDKIT_INLINE_CACHE"
                || k == "BUILDKIT_SYNTAX"
                || k == "SOURCE_DATE_EPOCH";
            if !predefined && !self.used_args.contains(k) {
                self.warnings.push(
                    Diagnostic::warning(
                        Span::default(),
                        format!("build argument {k} was not consumed by any stage"),
                    )
                    .with_hint(format!("declare it with ARG {k} in the stage that uses it")),
                );
            }
        }
    }

    /// Lowers stage `i` on its base: the base's ONBUILD triggers, then its instructions.
    fn lower_stage(&mut self, i: usize) -> Option<StageOut> {
        let from = self.stages[i].from;
        let commands = self.stages[i].commands.clone();
        let label = self.stage_label(i);
        let file = self.opts.file.clone();
        let BaseState {
            mut out,
            triggers,
            counts_from,
        } = self.base_state(i)?;
        let trigger_ins = self.onbuild_triggers(from, &triggers);
        let layer_cmds = |c: &Instruction| {
            matches!(
                c.command,
                Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::Workdir { .. }
            )
        };
        let total = usize::from(counts_from)
            + commands.iter().filter(|c| layer_cmds(c)).count()
            + trigger_ins.iter().filter(|t| layer_cmds(t)).count();
        let mut ctx = StageCtx {
            label,
            total,
            index: 0,
            file,
            cmd_set: false,
        };
        if counts_from && let Base::Image(r) = &self.stages[i].base {
            let desc = ctx.describe(&format!("FROM {r}"), false);
            let m = ctx.meta(desc, from);
            self.def.set_meta(&out.state, m);
        }
        for t in &trigger_ins {
            let (errors, warnings) = (self.diags.len(), self.warnings.len());
            let _ = self.dispatch(i, &mut out, &mut ctx, t, true);
            // A trigger's words have spans in the trigger's own text: point at the FROM line.
            for d in self.diags[errors..]
                .iter_mut()
                .chain(&mut self.warnings[warnings..])
            {
                d.span = from.span;
            }
        }
        for c in commands {
            let _ = self.dispatch(i, &mut out, &mut ctx, c, false);
        }
        Some(out)
    }

    /// Lowers one instruction of stage `i` onto `out`; `onbuild` for a base's trigger. `None`
    /// when it failed (the error is recorded).
    fn dispatch(
        &mut self,
        i: usize,
        out: &mut StageOut,
        ctx: &mut StageCtx,
        ins: &Instruction,
        onbuild: bool,
    ) -> Option<()> {
        match &ins.command {
            Command::From { .. } => {}
            Command::Run(spec) => return self.run(i, out, ctx, ins, spec, onbuild),
            Command::Copy(spec) | Command::Add(spec) => {
                return self.copy(i, out, ctx, ins, spec, onbuild);
            }
            Command::Workdir { path } => return self.workdir(out, ctx, ins, path, onbuild),
            Command::Env { pairs } => return self.env(out, ins, pairs),
            Command::Label { pairs } => return self.label(out, ins, pairs),
            Command::Arg { args } => return self.arg(out, ins, args),
            Command::Expose { ports } => return self.expose(out, ports),
            Command::Volume { paths } => return self.volume(out, ins, paths),
            Command::User { user } => return self.user(out, ins, user),
            Command::Stopsignal { signal } => return self.stopsignal(out, ins, signal),
            Command::Shell { shell } => config::shell(out, shell),
            Command::Cmd { cmd } => config::cmd(out, ctx, cmd),
            Command::Entrypoint { cmd } => config::entrypoint(out, ctx, cmd),
            Command::Healthcheck(h) => config::healthcheck(out, h),
            Command::Onbuild { expression, .. } => config::onbuild(out, expression),
            Command::Maintainer { name } => config::maintainer(out, name),
        }
        Some(())
    }

    /// Adds `op` on `inputs` to the graph, with `meta`; an error at `span` when the graph
    /// refuses it.
    fn add(
        &mut self,
        op: Op,
        inputs: Vec<Digest>,
        meta: Option<VertexMeta>,
        span: Span,
    ) -> Option<Digest> {
        match self.def.add(op, inputs) {
            Ok(d) => {
                if let Some(m) = meta {
                    self.def.set_meta(&d, m);
                }
                Some(d)
            }
            Err(e) => {
                self.diags.push(Diagnostic::error(span, e.to_string()));
                None
            }
        }
    }

    /// Records an error. Once the expansion budget is spent every expansion fails: only the
    /// first of those errors is kept.
    fn error(&mut self, d: Diagnostic) {
        if self.budget.spent() {
            if self.budget_reported {
                return;
            }
            self.budget_reported = true;
        }
        self.diags.push(d);
    }

    /// Reports build check `rule` unless the file's `# check=` directive or a `# check=`
    /// comment above `ins` skips it.
    fn check_warn(&mut self, ins: &Instruction, rule: &'static str, span: Span, msg: String) {
        let file = self
            .df
            .directives
            .check
            .as_deref()
            .and_then(|c| crate::CheckConfig::parse(c).ok())
            .unwrap_or_default();
        let config = match CheckConfig::from_comments(&ins.comments) {
            Some(c) => file.merged(&c),
            None => file,
        };
        if config.enabled(rule, false) {
            self.warnings.push(
                Diagnostic::check(rule, span, msg).with_hint_opt(crate::checks::rule_url(rule)),
            );
        }
    }

    /// The empty filesystem, added once.
    fn scratch(&mut self) -> Option<Digest> {
        if let Some(s) = &self.scratch {
            return Some(s.clone());
        }
        let d = self.add(Op::Source(SourceOp::Scratch), vec![], None, Span::default())?;
        self.scratch = Some(d.clone());
        Some(d)
    }

    /// A vertex holding one heredoc as the file `/NAME` (mode `mode`) on scratch.
    fn inline_document(
        &mut self,
        name: &str,
        mode: u32,
        data: String,
        span: Span,
    ) -> Option<Digest> {
        let scratch = self.scratch()?;
        let op = Op::File(FileOp {
            actions: vec![FileAction::Mkfile(MkfileAction {
                path: format!("/{name}"),
                mode,
                data: data.into_bytes(),
                chown: None,
            })],
        });
        self.add(
            op,
            vec![scratch],
            Some(internal("[internal] preparing inline document")),
            span,
        )
    }

    /// The build context (less the `.dockerignore` patterns), added once.
    fn context(&mut self) -> Option<Digest> {
        if let Some(c) = &self.context {
            return Some(c.clone());
        }
        let op = Op::Source(SourceOp::Local {
            name: CONTEXT_NAME.into(),
            include_patterns: vec![],
            exclude_patterns: self.opts.exclude_patterns.clone(),
        });
        let meta = VertexMeta {
            description: "[internal] load build context".into(),
            file: None,
            line: None,
        };
        let d = self.add(op, vec![], Some(meta), Span::default())?;
        self.context = Some(d.clone());
        Some(d)
    }
}

/// The build arguments BuildKit predefines for proxies: case-insensitive, usable without `ARG`.
const PROXY_ARGS: [&str; 5] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// The environment every RUN gets from the proxy build arguments, as BuildKit's `ProxyEnv`:
/// each non-empty one under its upper- and lower-case name (of keys differing only in case, the
/// last in sorted order wins), in the order `HTTP`, `HTTPS`, `FTP`, `NO`, `ALL`.
pub fn proxy_env(build_args: &BTreeMap<String, String>) -> Vec<String> {
    let mut values: [&str; 5] = [""; 5];
    for (k, v) in build_args {
        if let Some(i) = PROXY_ARGS.iter().position(|p| p.eq_ignore_ascii_case(k)) {
            values[i] = v;
        }
    }
    let mut env = Vec::new();
    for (name, v) in PROXY_ARGS.iter().zip(values) {
        if !v.is_empty() {
            env.push(format!("{name}={v}"));
            env.push(format!("{}={v}", name.to_ascii_lowercase()));
        }
    }
    env
}

/// The deepest chain of stages reached through one another's instructions (`COPY --from`,
/// `RUN --mount=from=`) that lowering follows. A stage built on another (`FROM stage`) does not
/// count: such chains are lowered in a loop, at any length.
pub const MAX_STAGE_NESTING: usize = 24;

/// How many undefined variables of one Dockerfile get a "did you mean" suggestion (the rest are
/// reported without one; the renderer shows ten of a rule anyway).
pub const MAX_SUGGESTIONS: usize = 100;

/// A history entry as BuildKit writes it; `layer` when the step made a layer.
fn history(created_by: String, layer: bool) -> HistoryEntry {
    HistoryEntry {
        created: None,
        created_by,
        author: None,
        comment: Some(HISTORY_COMMENT.into()),
        empty_layer: !layer,
        vertex: None,
    }
}

/// Metadata of an internal vertex (no Dockerfile line).
fn internal(description: &str) -> VertexMeta {
    VertexMeta {
        description: description.to_string(),
        file: None,
        line: None,
    }
}

/// Per-stage progress numbering (`[stage-1 2/5] RUN …`).
struct StageCtx {
    /// The stage's name, when the Dockerfile has several.
    label: Option<String>,
    /// How many numbered steps the stage has.
    total: usize,
    /// The number of the last step described.
    index: usize,
    /// The Dockerfile's name, for vertex metadata.
    file: String,
    /// A CMD was set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl StageCtx {
    /// The next step's progress description: `[label i/total] text`.
    fn describe(&mut self, text: &str, onbuild: bool) -> String {
        if self.total == 0 {
            return text.to_string();
        }
        self.index += 1;
        let width = (self.total as f64).log10() as usize + 1;
        let mut out = String::from("[");
        if let Some(l) = &self.label {
            out.push_str(l);
            out.push(' ');
        }
        out.push_str(&format!("{:>width$}/{}] ", self.index, self.total));
        if onbuild {
            out.push_str("ONBUILD ");
        }
        out.push_str(text);
        out
    }

    /// A step's vertex metadata: `description` at `ins`'s line.
    fn meta(&self, description: String, ins: &Instruction) -> VertexMeta {
        VertexMeta {
            description,
            file: Some(self.file.clone()),
            line: Some(ins.lines.start),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::test_support::{NoImages, execs, lower_opts};
    use super::{LowerOptions, lower_with_warnings};
    use crate::platform::Platform;

    #[test]
    fn buildplatform_is_the_host_and_targetplatform_the_target() {
        let host = Platform::host();
        let target = if host.architecture == "arm64" {
            "amd64"
        } else {
            "arm64"
        };
        let mut opts = LowerOptions::for_host("Dockerfile");
        opts.platform.architecture = target.into();
        let src = "FROM scratch\n\
                   ARG BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\n\
                   ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT\n\
                   RUN echo b=$BUILDPLATFORM,$BUILDOS,$BUILDARCH,$BUILDVARIANT \
                   t=$TARGETPLATFORM,$TARGETOS,$TARGETARCH,$TARGETVARIANT\n";
        let def = lower_opts(src, &opts).unwrap();
        let run = execs(&def).pop().unwrap();
        let env = |k: &str| {
            run.env
                .iter()
                .find_map(|e| e.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        assert_eq!(env("BUILDPLATFORM"), Some(host.to_string()));
        assert_eq!(env("BUILDOS").as_deref(), Some("linux"));
        assert_eq!(
            env("BUILDARCH").as_deref(),
            Some(host.architecture.as_str())
        );
        assert_eq!(env("BUILDVARIANT").as_deref(), Some(""));
        assert_eq!(env("TARGETPLATFORM"), Some(format!("linux/{target}")));
        assert_eq!(env("TARGETOS").as_deref(), Some("linux"));
        assert_eq!(env("TARGETARCH").as_deref(), Some(target));
        assert_eq!(env("TARGETVARIANT").as_deref(), Some(""));
        assert_eq!(def.outputs()[0].architecture, target);
    }

    #[test]
    fn targetvariant_and_targetplatform_keep_the_target_variant() {
        let mut opts = LowerOptions::for_host("Dockerfile");
        opts.platform = Platform::new("linux", "arm", Some("v7"));
        let src = "FROM scratch\nARG TARGETPLATFORM TARGETVARIANT\nRUN echo $TARGETPLATFORM\n";
        let def = lower_opts(src, &opts).unwrap();
        let run = execs(&def).pop().unwrap();
        assert!(
            run.env.contains(&"TARGETPLATFORM=linux/arm/v7".to_string()),
            "{:?}",
            run.env
        );
        assert!(
            run.env.contains(&"TARGETVARIANT=v7".to_string()),
            "{:?}",
            run.env
        );
        assert_eq!(def.outputs()[0].variant.as_deref(), Some("v7"));
    }

    /// `build --check` lost the warnings lowering had found once it met an error: an
    /// UndefinedVar before a missing base image was not reported.
    #[test]
    fn lower_report_keeps_the_warnings_found_beside_an_error() {
        let src = "FROM scratch AS a\nENV X=$UNDEF\nFROM nosuch:1\nCOPY --from=a /x /y\n";
        let parsed = crate::parse(src);
        assert!(!parsed.has_errors());
        let mut opts = LowerOptions::for_host("Dockerfile");
        opts.all_stages = true;
        let report = super::lower_report(&parsed.dockerfile, &opts, &NoImages);
        assert!(report.definition.is_none());
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert_eq!(report.errors[0].span.line, 3);
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert_eq!(report.warnings[0].rule, Some("UndefinedVar"));
        assert_eq!(report.warnings[0].span.line, 2);
        // The same file as a build: errors only.
        let errors = lower_with_warnings(&parsed.dockerfile, &opts, &NoImages).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    /// With every stage lowered (`--check` without `--target`), a `--chown` name that only the
    /// solve of a stage the target does not need would fail on was an error; BuildKit's check
    /// resolves no user names, and the build never solves that stage.
    #[test]
    fn all_stages_reports_no_solve_failure_in_a_stage_the_target_does_not_need() {
        let src = "FROM scratch AS unused\nCOPY --chown=app f /f\nUSER app\nWORKDIR /w\n\
                   FROM scratch\nCOPY g /g\n";
        let parsed = crate::parse(src);
        let mut opts = LowerOptions::for_host("Dockerfile");
        opts.all_stages = true;
        let report = super::lower_report(&parsed.dockerfile, &opts, &NoImages);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        // The stage the target needs still fails, lowered first.
        let src = "FROM scratch AS base\nCOPY --chown=app f /f\nFROM scratch AS other\n\
                   FROM scratch\nCOPY --from=base /f /f\n";
        let parsed = crate::parse(src);
        let report = super::lower_report(&parsed.dockerfile, &opts, &NoImages);
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(
            report.errors[0]
                .message
                .starts_with("invalid user index: -1")
        );
        // Building that unused stage as the target fails as before.
        opts.target = Some("unused".into());
        opts.all_stages = false;
        let src = "FROM scratch AS unused\nCOPY --chown=app f /f\nFROM scratch\n";
        let parsed = crate::parse(src);
        let report = super::lower_report(&parsed.dockerfile, &opts, &NoImages);
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    }
}
