//! Stages: FROM lines and where each stage starts (scratch, an image, an earlier stage),
//! `FROM --platform`, stage names and indexes (`--target`, `--from`, `from=`), lowering stages
//! on demand with the cycle and nesting checks, and the base's ONBUILD triggers.

use std::collections::HashSet;

use xbuild_llb::{Digest, ImageConfig, Op, SourceOp};

use super::expand::expansion_error;
use super::{DEFAULT_PATH, Lowerer, MAX_STAGE_NESTING, StageOut};
use crate::ast::{Command, Instruction, Word};
use crate::env::{ConfigEnvIndex, Env};
use crate::gofmt;
use crate::platform::Platform;
use crate::reference;
use crate::span::{Diagnostic, Span};
use crate::suggest;
use xbuild_llb::reference::Reference;

/// Where a stage starts from.
#[derive(Clone, Debug)]
pub(super) enum Base {
    /// `FROM scratch` (or a base name that could not be parsed, with an error recorded).
    Scratch,
    /// An image, looked up through the resolver.
    Image(Reference),
    /// An earlier stage, by index.
    Stage(usize),
}

/// A stage as the Dockerfile declares it.
pub(super) struct StageDef<'a> {
    /// Its FROM line.
    pub(super) from: &'a Instruction,
    /// `AS name`.
    pub(super) name: Option<String>,
    /// Where it starts.
    pub(super) base: Base,
    /// The base name as written, expanded (for messages).
    pub(super) base_name: String,
    /// `FROM --platform`, expanded and parsed.
    pub(super) platform: Option<Platform>,
    /// Its instructions after FROM.
    pub(super) commands: Vec<&'a Instruction>,
}

/// Where a stage's lowering is.
#[derive(Clone, Debug)]
pub(super) enum Progress {
    /// Not started.
    Todo,
    /// Being lowered (seeing it again is a cycle).
    Running,
    /// Lowered.
    Done(Box<StageOut>),
    /// Lowered with errors (already reported).
    Failed,
}

/// What a stage starts from, before its own instructions.
pub(super) struct BaseState {
    /// The base's state and config.
    pub(super) out: StageOut,
    /// The base's ONBUILD triggers, run before the stage's instructions.
    pub(super) triggers: Vec<String>,
    /// The FROM line is a numbered step of its own (a base image is).
    pub(super) counts_from: bool,
}

impl StageOut {
    /// A stage starting from `state` with `config`, `history` and `platform` and nothing
    /// declared yet.
    fn fresh(
        state: Digest,
        config: ImageConfig,
        history: Vec<xbuild_llb::HistoryEntry>,
        platform: Platform,
    ) -> Self {
        StageOut {
            state,
            config,
            history,
            platform,
            env: Env::default(),
            config_env: ConfigEnvIndex::default(),
            args: Vec::new(),
            arg_keys: HashSet::new(),
            workdir_set: false,
            own_onbuild: Vec::new(),
            author: None,
        }
    }
}

impl<'a> Lowerer<'a> {
    /// Splits the Dockerfile into stages at its FROM lines and finds each one's base.
    pub(super) fn collect_stages(&mut self) {
        let mut cur: Option<StageDef<'a>> = None;
        for ins in &self.df.instructions {
            if let Command::From {
                image,
                name,
                platform,
            } = &ins.command
            {
                if let Some(s) = cur.take() {
                    self.stages.push(s);
                }
                cur = Some(self.stage_def(ins, image, name.as_ref(), platform.as_ref()));
            } else if let Some(s) = cur.as_mut() {
                s.commands.push(ins);
            }
        }
        if let Some(s) = cur.take() {
            self.stages.push(s);
        }
        self.progress = vec![Progress::Todo; self.stages.len()];
    }

    /// The stage the FROM line `from` starts (its instructions still to come): the base name
    /// and `--platform` expanded with the global ARGs.
    fn stage_def(
        &mut self,
        from: &'a Instruction,
        image: &Word,
        name: Option<&Word>,
        platform: Option<&Word>,
    ) -> StageDef<'a> {
        let platform = platform.and_then(|p| self.platform_flag(p));
        let expanded = match self
            .lexer
            .expand_within(&image.text, &self.meta, &mut self.budget)
        {
            Ok(e) => e.value,
            Err(e) => {
                self.error(expansion_error(
                    image,
                    &e,
                    "fix the variable reference in the FROM line",
                ));
                String::new()
            }
        };
        if expanded.is_empty() {
            self.diags.push(
                Diagnostic::error(
                    image.span,
                    format!("base name ({}) should not be blank", image.text),
                )
                .with_hint("give the ARG a default or pass --build-arg"),
            );
        }
        let base = self.base_of(image, &expanded);
        StageDef {
            from,
            name: name.map(|n| n.text.clone()),
            base,
            base_name: expanded,
            platform,
            commands: Vec::new(),
        }
    }

    /// Where a stage whose FROM names `expanded` starts: the last earlier stage of that name,
    /// scratch, or an image; scratch, with an error recorded, when the name is none of them.
    fn base_of(&mut self, image: &Word, expanded: &str) -> Base {
        if let Some(j) = self.stages.iter().rposition(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(expanded))
        }) {
            return Base::Stage(j);
        }
        if expanded.eq_ignore_ascii_case("scratch") {
            return Base::Scratch;
        }
        match reference::parse(expanded) {
            Ok(r) => Base::Image(r),
            Err(e) => {
                if !expanded.is_empty() {
                    let later = self.df.instructions.iter().any(|i| {
                        matches!(&i.command, Command::From { name: Some(n), .. } if n.text.eq_ignore_ascii_case(expanded))
                    });
                    let hint = if later {
                        format!(
                            "a stage named {expanded} is defined later; stages can only use earlier stages"
                        )
                    } else {
                        "write an image reference such as busybox:1.36 or an earlier stage name"
                            .to_string()
                    };
                    self.diags.push(
                        Diagnostic::error(
                            image.span,
                            format!("failed to parse stage name {}: {e}", gofmt::quote(expanded)),
                        )
                        .with_hint(hint),
                    );
                }
                Base::Scratch
            }
        }
    }

    /// A `FROM --platform` value expanded with the global ARGs and parsed, as BuildKit does;
    /// `None` (with an error recorded) when it is empty or no platform.
    fn platform_flag(&mut self, flag: &Word) -> Option<Platform> {
        let expanded = match self
            .lexer
            .expand_within(&flag.text, &self.meta, &mut self.budget)
        {
            Ok(e) => e.value,
            Err(e) => {
                let mut d = expansion_error(flag, &e, "fix the variable reference in --platform");
                d.message = format!("failed to process arguments for platform: {}", d.message);
                self.error(d);
                return None;
            }
        };
        if expanded.is_empty() {
            self.diags.push(
                Diagnostic::error(
                    flag.span,
                    format!("empty platform value from expression {}", flag.text),
                )
                .with_hint("give the ARG a default or pass --build-arg"),
            );
            return None;
        }
        match Platform::parse(&expanded) {
            Ok(p) => Some(p),
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(
                        flag.span,
                        format!("failed to parse platform {}: {e}", flag.text),
                    )
                    .with_hint("write os/arch[/variant], e.g. linux/amd64 or $BUILDPLATFORM"),
                );
                None
            }
        }
    }

    /// The platform stage `i` resolves images for: its `FROM --platform`, else the build's.
    fn stage_platform(&self, i: usize) -> Platform {
        self.stages[i]
            .platform
            .clone()
            .unwrap_or_else(|| self.platform.clone())
    }

    /// Stage `i`'s name, or `stage-i`.
    pub(super) fn stage_name(&self, i: usize) -> String {
        self.stages[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{i}"))
    }

    /// Stage `i`'s name in progress lines; none when the Dockerfile has one stage.
    pub(super) fn stage_label(&self, i: usize) -> Option<String> {
        if self.stages.len() == 1 {
            return None;
        }
        Some(
            self.stages[i]
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{i}")),
        )
    }

    /// The names of the named stages, in order.
    fn stage_names(&self) -> Vec<&str> {
        self.stages
            .iter()
            .filter_map(|s| s.name.as_deref())
            .collect()
    }

    /// The stage to build: `--target` (of stages sharing the name, the last), else the last
    /// stage; `None`, with an error recorded, when no stage has the name.
    pub(super) fn target_index(&mut self) -> Option<usize> {
        let opts = self.opts;
        let Some(t) = &opts.target else {
            return Some(self.stages.len() - 1);
        };
        if let Some(i) = self
            .stages
            .iter()
            .rposition(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t)))
        {
            return Some(i);
        }
        let names = self.stage_names();
        let mut d = Diagnostic::error(
            Span::default(),
            format!("target stage {} could not be found", gofmt::quote(t)),
        );
        d = d.with_hint(match suggest::closest(t, names.iter().copied(), true) {
            Some(s) => format!("did you mean {s}? stages are: {}", names.join(", ")),
            None if names.is_empty() => {
                "this Dockerfile has no named stages; name one with FROM <image> AS <name>"
                    .to_string()
            }
            None => format!("stages are: {}", names.join(", ")),
        });
        self.diags.push(d);
        None
    }

    /// Lowers stage `i` (and, first, the stages it needs); `from` is the instruction that
    /// asked for it (for cycle and nesting errors). A stage is lowered once: later requests
    /// get its result, or `None` when it failed (its errors are reported once).
    pub(super) fn stage(&mut self, i: usize, from: Option<&Instruction>) -> Option<StageOut> {
        // The stages `i` is built on, nearest first, lowered bottom-up so that building on a
        // stage never recurses.
        let mut chain = Vec::new();
        let mut j = i;
        while let Base::Stage(b) = self.stages[j].base {
            if !matches!(self.progress.get(b), Some(Progress::Todo)) {
                break;
            }
            // Stage `b`, asked for by the FROM line of stage `j`.
            chain.push((b, self.stages[j].from));
            j = b;
        }
        for (b, asked_by) in chain.into_iter().rev() {
            self.stage_once(b, Some(asked_by))?;
        }
        self.stage_once(i, from)
    }

    /// [`Lowerer::stage`] for one stage whose bases are lowered.
    fn stage_once(&mut self, i: usize, from: Option<&Instruction>) -> Option<StageOut> {
        match &self.progress[i] {
            Progress::Done(s) => return Some((**s).clone()),
            Progress::Failed => return None,
            Progress::Running => {
                let name = self.stage_name(i);
                let span = from.map_or(self.stages[i].from.span, |f| f.span);
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!("circular dependency detected on stage: {name}"),
                    )
                    .with_hint("a stage cannot copy from or mount itself"),
                );
                return None;
            }
            Progress::Todo => {}
        }
        if self.nesting >= MAX_STAGE_NESTING {
            let span = from.map_or(self.stages[i].from.span, |f| f.span);
            self.diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "stage {} is reached through more than {MAX_STAGE_NESTING} stages that copy from or mount one another (MAX_STAGE_NESTING)",
                        self.stage_name(i)
                    ),
                )
                .with_hint("build on the earlier stage with FROM, or copy from fewer levels of stages"),
            );
            return None;
        }
        self.progress[i] = Progress::Running;
        self.nesting += 1;
        let out = self.lower_stage(i);
        self.nesting -= 1;
        self.progress[i] = match &out {
            Some(o) => Progress::Done(Box::new(o.clone())),
            None => Progress::Failed,
        };
        out
    }

    /// What stage `i` starts from: its base lowered, with a default `PATH` unless the base is
    /// a stage; `None` when the base could not be had (the error is recorded).
    pub(super) fn base_state(&mut self, i: usize) -> Option<BaseState> {
        let from = self.stages[i].from;
        let base = self.stages[i].base.clone();
        let on_stage = matches!(base, Base::Stage(_));
        let mut base = match base {
            Base::Stage(j) => {
                let mut out = self.stage(j, Some(from))?;
                let triggers = std::mem::take(&mut out.own_onbuild);
                out.config.on_build = Vec::new();
                BaseState {
                    out,
                    triggers,
                    counts_from: false,
                }
            }
            Base::Scratch => {
                let state = self.scratch()?;
                let config = ImageConfig {
                    env: vec![format!("PATH={DEFAULT_PATH}")],
                    working_dir: "/".into(),
                    ..Default::default()
                };
                BaseState {
                    out: StageOut::fresh(state, config, Vec::new(), self.platform.clone()),
                    triggers: Vec::new(),
                    counts_from: false,
                }
            }
            Base::Image(r) => self.image_base(i, &r)?,
        };
        if !on_stage {
            let out = &mut base.out;
            if !out
                .config
                .env
                .iter()
                .any(|e| e.split('=').next() == Some("PATH"))
            {
                out.config.env.push(format!("PATH={DEFAULT_PATH}"));
            }
            out.env = Env::from_config(&out.config.env);
            out.config_env = ConfigEnvIndex::of(&out.config.env);
        }
        Some(base)
    }

    /// Stage `i`'s base image, resolved for the stage's platform (InvalidBaseImagePlatform
    /// when it is another).
    fn image_base(&mut self, i: usize, r: &Reference) -> Option<BaseState> {
        let from = self.stages[i].from;
        let familiar = r.familiar();
        let resolved = match self.resolver.resolve(&familiar, &self.stage_platform(i)) {
            Ok(x) => x,
            Err(e) => {
                self.base_image_error(i, &familiar, &e);
                return None;
            }
        };
        let expected = self.stage_platform(i);
        if let Some(msg) = crate::checks::invalid_base_image_platform(
            &self.stages[i].base_name,
            &expected,
            &resolved.platform,
        ) {
            self.check_warn(from, "InvalidBaseImagePlatform", from.span, msg);
        }
        let triggers = resolved.config.on_build.clone();
        let mut config = resolved.config;
        config.on_build = Vec::new();
        let op = Op::Source(SourceOp::Image {
            reference: resolved.reference.clone(),
            digest: resolved.digest.clone(),
        });
        let state = self.add(op, vec![], None, from.span)?;
        Some(BaseState {
            out: StageOut::fresh(state, config, resolved.history, resolved.platform),
            triggers,
            counts_from: true,
        })
    }

    /// Records that stage `i`'s base image `familiar` could not be resolved (`e` says why),
    /// with a hint for the likely cause.
    fn base_image_error(&mut self, i: usize, familiar: &str, e: &str) {
        let from = self.stages[i].from;
        let later = self.stages[i + 1..].iter().any(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| reference::parse(n).is_ok_and(|lr| lr.familiar() == familiar))
        });
        let hint = if later {
            Some(
                "a stage with this name is defined later; a stage can only build on earlier stages"
                    .to_string(),
            )
        } else if e.contains("does not match the specified platform") {
            Some("pull or import an image for that platform, or leave out --platform".to_string())
        } else if e.contains("pull, load or rebuild") {
            // A damaged stored image: its error says what to do.
            None
        } else {
            Some(
                "import it first with `xbuild import ROOTFS.tar NAME:TAG`, or use FROM scratch"
                    .to_string(),
            )
        };
        let d = Diagnostic::error(from.span, format!("base image {familiar}: {e}"));
        self.diags.push(match hint {
            Some(h) => d.with_hint(h),
            None => d,
        });
    }

    /// ONBUILD `triggers` of a base parsed as instructions, placed at the FROM line `from`; a
    /// trigger that does not parse is an error.
    pub(super) fn onbuild_triggers(
        &mut self,
        from: &Instruction,
        triggers: &[String],
    ) -> Vec<Instruction> {
        let mut trigger_ins = Vec::new();
        for t in triggers {
            let parsed = crate::parse(&format!("FROM scratch\n{t}\n"));
            let errs: Vec<&Diagnostic> = parsed.errors().collect();
            if let Some(e) = errs.first() {
                self.diags.push(
                    Diagnostic::error(
                        from.span,
                        format!("ONBUILD trigger {}: {}", gofmt::quote(t), e.message),
                    )
                    .with_hint_opt(e.hint.clone()),
                );
                continue;
            }
            for mut ins in parsed.dockerfile.instructions.into_iter().skip(1) {
                ins.span = from.span;
                ins.lines = crate::ast::Lines {
                    start: from.lines.start,
                    end: from.lines.end,
                };
                trigger_ins.push(ins);
            }
        }
        trigger_ins
    }

    /// Resolves `--from` / `from=`: an earlier stage by name or index, or an image.
    pub(super) fn source_of(
        &mut self,
        i: usize,
        ins: &Instruction,
        name: &str,
        span: Span,
    ) -> Option<Digest> {
        let found = match name.parse::<usize>().ok() {
            Some(n) if n < self.stages.len() => Some(n),
            Some(n) => {
                self.diags.push(
                    Diagnostic::error(span, format!("invalid stage index {n}")).with_hint(format!(
                        "this Dockerfile has stages 0 to {}",
                        self.stages.len() - 1
                    )),
                );
                return None;
            }
            // Of stages sharing a name, the last one wins (BuildKit's `statesByName` map is
            // overwritten; DuplicateStageName warns about it).
            None => self.stages.iter().rposition(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            }),
        };
        match found {
            Some(j) if j == i => {
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "circular dependency detected on stage: {}",
                            self.stage_name(i)
                        ),
                    )
                    .with_hint("a stage cannot copy from itself"),
                );
                None
            }
            Some(j) if j > i => {
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "cannot copy from stage {}, it needs to be defined before current stage {}",
                            gofmt::quote(name),
                            gofmt::quote(&self.stage_name(i))
                        ),
                    )
                    .with_hint("move the stage above this one"),
                );
                None
            }
            Some(j) => self.stage(j, Some(ins)).map(|s| s.state),
            None => self.image_source(i, name, span),
        }
    }

    /// `--from=name` naming no stage: an image, resolved for stage `i`'s platform.
    fn image_source(&mut self, i: usize, name: &str, span: Span) -> Option<Digest> {
        let r = match reference::parse(name) {
            Ok(r) => r,
            Err(e) => {
                let names = self.stage_names();
                let hint = match suggest::closest(name, names.iter().copied(), true) {
                    Some(s) => format!("did you mean stage {s}?"),
                    None => format!("no stage is named {name}; stages are: {}", names.join(", ")),
                };
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!("unknown stage or invalid image {}: {e}", gofmt::quote(name)),
                    )
                    .with_hint(hint),
                );
                return None;
            }
        };
        let familiar = r.familiar();
        match self.resolver.resolve(&familiar, &self.stage_platform(i)) {
            Ok(img) => self.add(
                Op::Source(SourceOp::Image {
                    reference: img.reference,
                    digest: img.digest,
                }),
                vec![],
                None,
                span,
            ),
            Err(e) => {
                let names = self.stage_names();
                let hint = match suggest::closest(name, names.iter().copied(), true) {
                    Some(s) => format!("did you mean stage {s}?"),
                    None => format!(
                        "it is neither a stage ({}) nor a local image",
                        names.join(", ")
                    ),
                };
                self.diags
                    .push(Diagnostic::error(span, format!("--from={name}: {e}")).with_hint(hint));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::lower_with_warnings;
    use super::super::test_support::{Arm64Only, amd64, check_warnings};

    #[test]
    fn invalid_base_image_platform_warns_when_the_base_is_another_platform() {
        let w = check_warnings("FROM alpine:3.20\nRUN true\n", &amd64());
        assert_eq!(
            w,
            vec![(
                "InvalidBaseImagePlatform".to_string(),
                "Base image alpine:3.20 was pulled with platform \"linux/arm64\", expected \"linux/amd64\" for current build".to_string()
            )]
        );
    }

    #[test]
    fn invalid_base_image_platform_is_quiet_when_platforms_match_or_skipped() {
        assert!(check_warnings("FROM --platform=linux/arm64 alpine\n", &amd64()).is_empty());
        let mut arm = amd64();
        arm.platform.architecture = "arm64".into();
        assert!(check_warnings("FROM alpine\n", &arm).is_empty());
        assert!(
            check_warnings(
                "# check=skip=InvalidBaseImagePlatform\nFROM alpine\n",
                &amd64()
            )
            .is_empty()
        );
        assert!(check_warnings("FROM scratch\nCOPY a /\n", &amd64()).is_empty());
    }

    /// Regression: stages sharing a name were an "ambiguous" error for `COPY --from` and
    /// `--target` picked the first; Docker 20.10's BuildKit builds them, the last stage of the
    /// name winning (DuplicateStageName only warns).
    #[test]
    fn duplicate_stage_name_refers_to_the_last_stage() {
        let src = "FROM scratch AS build\nCOPY a /one\nFROM scratch AS build\nCOPY b /two\nFROM scratch\nCOPY --from=build /two /x\n";
        let parsed = crate::parse(src);
        let l = lower_with_warnings(&parsed.dockerfile, &amd64(), &Arm64Only).unwrap();
        let copies: Vec<String> = l
            .definition
            .vertices()
            .filter_map(|v| l.definition.meta(v.digest()).map(|m| m.description.clone()))
            .filter(|d| d.contains("COPY"))
            .collect();
        assert!(
            copies.iter().any(|d| d.contains("COPY b /two")),
            "{copies:?}"
        );
        assert!(
            !copies.iter().any(|d| d.contains("COPY a /one")),
            "{copies:?}"
        );
        let mut o = amd64();
        o.target = Some("build".into());
        let l = lower_with_warnings(&parsed.dockerfile, &o, &Arm64Only).unwrap();
        assert_eq!(l.definition.outputs()[0].history.len(), 1);
        let last = l.definition.outputs()[0].history[0].created_by.clone();
        assert!(last.contains("COPY b /two"), "{last}");
    }
}
