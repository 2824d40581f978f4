//! Build checks (BuildKit's linter rules) that need only the syntax tree. They run on every
//! parse; `UndefinedVar` needs the stage environment and runs during lowering.

use std::collections::BTreeSet;

use crate::ast::{Command, Dockerfile, Instruction};
use crate::directives::CheckConfig;
use crate::env::Env;
use crate::platform::{Platform, predefined_args};
use crate::reference;
use crate::shell::{Budget, Lexer, ShellError};
use crate::span::{Diagnostic, Span};
use crate::suggest;
use xbuild_dockerignore::{PatternMatcher, clean};

/// Rule names with their documentation URLs.
pub const RULES: &[(&str, &str)] = &[
    ("StageNameCasing", "stage-name-casing"),
    ("FromAsCasing", "from-as-casing"),
    ("NoEmptyContinuation", "no-empty-continuation"),
    (
        "ConsistentInstructionCasing",
        "consistent-instruction-casing",
    ),
    ("DuplicateStageName", "duplicate-stage-name"),
    ("ReservedStageName", "reserved-stage-name"),
    ("JSONArgsRecommended", "json-args-recommended"),
    ("MaintainerDeprecated", "maintainer-deprecated"),
    ("UndefinedArgInFrom", "undefined-arg-in-from"),
    ("WorkdirRelativePath", "workdir-relative-path"),
    ("UndefinedVar", "undefined-var"),
    (
        "MultipleInstructionsDisallowed",
        "multiple-instructions-disallowed",
    ),
    ("LegacyKeyValueFormat", "legacy-key-value-format"),
    ("RedundantTargetPlatform", "redundant-target-platform"),
    ("SecretsUsedInArgOrEnv", "secrets-used-in-arg-or-env"),
    ("InvalidDefaultArgInFrom", "invalid-default-arg-in-from"),
    (
        "FromPlatformFlagConstDisallowed",
        "from-platform-flag-const-disallowed",
    ),
    ("ExposeProtoCasing", "expose-proto-casing"),
    ("ExposeInvalidFormat", "expose-invalid-format"),
    ("CopyIgnoredFile", "copy-ignored-file"),
    ("InvalidBaseImagePlatform", "invalid-base-image-platform"),
];

/// The documentation URL of a rule.
pub fn rule_url(rule: &str) -> Option<String> {
    RULES
        .iter()
        .find(|(r, _)| *r == rule)
        .map(|(_, slug)| format!("https://docs.docker.com/go/dockerfile/rule/{slug}/"))
}

/// Collects warnings, honoring the file's and each instruction's check configuration.
pub(crate) struct Linter<'a> {
    pub config: &'a CheckConfig,
    pub out: Vec<Diagnostic>,
}

impl Linter<'_> {
    /// Reports `rule` at `span` unless skipped for `ins`.
    pub fn warn(&mut self, ins: Option<&Instruction>, rule: &'static str, span: Span, msg: String) {
        let enabled = match ins
            .filter(|i| !i.comments.is_empty())
            .and_then(|i| CheckConfig::from_comments(&i.comments))
        {
            Some(l) => self.config.merged(&l).enabled(rule, false),
            None => self.config.enabled(rule, false),
        };
        if enabled {
            self.out
                .push(Diagnostic::check(rule, span, msg).with_hint_opt(rule_url(rule)));
        }
    }
}

/// BuildKit's `InvalidBaseImagePlatform`: the message when the base image `name` resolved to
/// `actual` while the stage asked for `expected` (only OS and architecture are compared, as
/// `validateBaseImagePlatform`); `None` when they match, or when the image does not say its OS
/// or architecture (an image imported from a root filesystem: it matches any, as the local
/// store treats it).
pub fn invalid_base_image_platform(
    name: &str,
    expected: &Platform,
    actual: &Platform,
) -> Option<String> {
    if actual.os.is_empty() || actual.architecture.is_empty() {
        return None;
    }
    if expected.os == actual.os && expected.architecture == actual.architecture {
        return None;
    }
    Some(format!(
        "Base image {name} was pulled with platform {}, expected {} for current build",
        crate::gofmt::quote(&format!("{}/{}", actual.os, actual.architecture)),
        crate::gofmt::quote(&expected.to_string())
    ))
}

/// BuildKit's `system.IsAbs`: on Windows a path is absolute with a leading `\\` or `/`, after an
/// optional `C:` (another drive, a bare `C:` or a UNC path is not); elsewhere with a leading `/`.
pub fn is_abs_for_os(path: &str, os: &str) -> bool {
    if os != "windows" {
        return path.starts_with('/');
    }
    let slashed = path.replace('\\', "/");
    if (path.len() == 2 && path.ends_with(':')) || slashed.starts_with("//") {
        return false;
    }
    match slashed.split_once(':') {
        None => slashed.starts_with('/'),
        Some((drive, rest)) => drive.eq_ignore_ascii_case("c") && rest.starts_with('/'),
    }
}

/// BuildKit's WorkdirRelativePath message for the expanded WORKDIR `path`, when it is the
/// stage's first WORKDIR (`workdir_set` false: none in it or the stages it builds on) and not
/// absolute for `os`.
pub fn workdir_relative_path(path: &str, os: &str, workdir_set: bool) -> Option<String> {
    (!workdir_set && !is_abs_for_os(path, os)).then(|| {
        format!(
            "Relative workdir {} can have unexpected results if the base image changes",
            crate::gofmt::quote(path)
        )
    })
}

/// The `.dockerignore` patterns as BuildKit's CopyIgnoredFile check reads them: no exception
/// (`!`) patterns, each matching a path or one of its parent directories, through the same
/// [`xbuild_dockerignore::PatternMatcher`] that filters the build context.
#[derive(Debug)]
pub struct IgnoreMatcher {
    matcher: PatternMatcher,
    root_ignored: bool,
}

impl IgnoreMatcher {
    /// The matcher of `patterns`, or `None` when the check does not run: no patterns, an
    /// exception pattern (BuildKit cannot tell statically whether a negated file is copied),
    /// or a pattern that does not compile (the context transfer reports it).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Option<Self> {
        let matcher = PatternMatcher::new(patterns).ok()?;
        if matcher.is_empty() || matcher.exclusions() {
            return None;
        }
        let root_ignored = patterns
            .iter()
            .any(|p| matches!(clean(p.as_ref().trim()).as_str(), "*" | "**" | "**/*"));
        Some(IgnoreMatcher {
            matcher,
            root_ignored,
        })
    }

    /// BuildKit's CopyIgnoredFile message for the context source `src` of a COPY (or ADD),
    /// when `src` or one of its parent directories is excluded.
    pub fn copy_ignored(&self, is_add: bool, src: &str) -> Option<String> {
        let src = clean(src);
        if (src == "." || src == "/") && !self.root_ignored {
            return None;
        }
        self.matcher.matches_or_parent_matches(&src).then(|| {
            format!(
                "Attempting to {} file {} that is excluded by .dockerignore",
                if is_add { "Add" } else { "Copy" },
                crate::gofmt::quote(&src)
            )
        })
    }
}

fn all_lower(s: &str) -> bool {
    !s.chars().any(char::is_uppercase)
}

fn all_upper(s: &str) -> bool {
    !s.chars().any(char::is_lowercase)
}

fn self_consistent(s: &str) -> bool {
    all_lower(s) || all_upper(s)
}

/// BuildKit's secret-name test (`(?i)(?:_|^)(?:token…)(?:_|$)`): one of the `_`-separated
/// words is `password`, `token`, `key`, … and none is `public`, `file` or `version`.
pub fn looks_secret(key: &str) -> bool {
    const DENY: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOW: &[&str] = &["public", "file", "version"];
    let lower = key.to_lowercase();
    let has = |set: &[&str]| lower.split('_').any(|p| set.contains(&p));
    has(DENY) && !has(ALLOW)
}

/// Global ARGs (before the first FROM) evaluated with their defaults and `overrides`, their
/// expansions charged to `budget`. A default that does not expand leaves its ARG empty, except
/// that crossing an expansion limit is an error (the first one is returned with the ARG's
/// value word).
pub(crate) fn meta_args<'a>(
    df: &'a Dockerfile,
    overrides: Option<&std::collections::BTreeMap<String, String>>,
    predefined: &[(String, String)],
    budget: &mut Budget,
) -> MetaArgs<'a> {
    let lexer = Lexer::new(df.directives.escape);
    let mut env = Env::default();
    for (k, v) in predefined {
        let v = overrides.and_then(|o| o.get(k)).unwrap_or(v);
        env.set(k, v);
    }
    let mut limit = None;
    let mut keys: BTreeSet<String> = predefined.iter().map(|(k, _)| k.clone()).collect();
    for ins in &df.instructions {
        let Command::Arg { args } = &ins.command else {
            if matches!(ins.command, Command::From { .. }) {
                break;
            }
            continue;
        };
        for a in args {
            keys.insert(a.key.text.clone());
            let value = match overrides.and_then(|o| o.get(&a.key.text)) {
                Some(v) => Some(v.clone()),
                None => {
                    a.value
                        .as_ref()
                        .map(|v| match lexer.expand_within(&v.text, &env, budget) {
                            Ok(e) => e.value,
                            Err(e) => {
                                if e.limit.is_some() && limit.is_none() {
                                    limit = Some((v, e));
                                }
                                String::new()
                            }
                        })
                }
            };
            if let Some(v) = value {
                env.set(&a.key.text, &v);
            }
        }
    }
    MetaArgs { env, keys, limit }
}

/// What [`meta_args`] found.
pub(crate) struct MetaArgs<'a> {
    /// The global ARGs' values (and the predefined ones).
    pub env: Env,
    /// Every global ARG's name (and the predefined ones).
    pub keys: BTreeSet<String>,
    /// The first expansion that crossed a limit, and the word it was expanding.
    pub limit: Option<(&'a crate::ast::Word, ShellError)>,
}

/// Runs the syntax-level checks over `df`.
pub(crate) fn run(
    df: &Dockerfile,
    src: &str,
    empty_continuations: &[Span],
    config: &CheckConfig,
) -> Vec<Diagnostic> {
    let mut l = Linter {
        config,
        out: Vec::new(),
    };
    for s in empty_continuations {
        l.warn(
            None,
            "NoEmptyContinuation",
            *s,
            "Empty continuation line".into(),
        );
    }
    let first_from = df
        .instructions
        .iter()
        .position(|i| matches!(i.command, Command::From { .. }));
    let Some(first_from) = first_from else {
        return l.out;
    };
    let staged = &df.instructions[first_from..];

    // ConsistentInstructionCasing.
    let (mut lower, mut upper) = (0, 0);
    for i in staged {
        if self_consistent(&i.keyword) {
            if all_lower(&i.keyword) {
                lower += 1;
            } else {
                upper += 1;
            }
        }
    }
    let majority_lower = lower > upper;
    for i in staged {
        let want = if majority_lower && !all_lower(&i.keyword) {
            Some("lowercase")
        } else if !majority_lower && !all_upper(&i.keyword) {
            Some("uppercase")
        } else {
            None
        };
        if let Some(w) = want {
            l.warn(
                Some(i),
                "ConsistentInstructionCasing",
                keyword_span(i),
                format!(
                    "Command '{}' should match the case of the command majority ({w})",
                    i.keyword
                ),
            );
        }
    }

    // Global ARGs with defaults only, for the FROM checks (only evaluated when a FROM line
    // refers to a variable).
    let needs_args = staged.iter().any(|i| match &i.command {
        Command::From {
            image, platform, ..
        } => image.text.contains('$') || platform.as_ref().is_some_and(|p| p.text.contains('$')),
        _ => false,
    });
    let mut budget = Budget::default();
    let (defaults, declared) = if needs_args {
        let host = Platform::host();
        let m = meta_args(df, None, &predefined_args(&host, &host), &mut budget);
        (m.env, m.keys)
    } else {
        (Env::default(), BTreeSet::new())
    };
    let lexer = Lexer::new(df.directives.escape);

    #[derive(Clone, Default)]
    struct StageState {
        name: Option<String>,
        shell: bool,
    }
    let mut stages: Vec<StageState> = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut cur = StageState::default();
    let mut seen_cmd: Option<&Instruction> = None;
    let mut seen_entry: Option<&Instruction> = None;
    let mut seen_health: Option<&Instruction> = None;
    for (idx, i) in staged.iter().enumerate() {
        match &i.command {
            Command::From {
                image,
                name,
                platform,
            } => {
                if idx > 0 {
                    stages.push(std::mem::take(&mut cur));
                }
                seen_cmd = None;
                seen_entry = None;
                seen_health = None;
                // Inherit SHELL/WORKDIR knowledge from an earlier stage used as base.
                if let Some(base) = stages.iter().rev().find(|s| {
                    s.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&image.text))
                }) {
                    cur.shell = base.shell;
                }
                from_checks(&mut l, i, src, name.as_ref(), &mut names);
                // UndefinedArgInFrom and InvalidDefaultArgInFrom.
                if needs_args
                    && let Ok(e) = lexer.expand_within(&image.text, &defaults, &mut budget)
                {
                    for var in &e.unset {
                        if declared.contains(var) {
                            continue;
                        }
                        let mut msg = format!("FROM argument '{var}' is not declared");
                        if let Some(s) =
                            suggest::closest(var, declared.iter().map(String::as_str), true)
                        {
                            msg.push_str(&format!(" (did you mean {s}?)"));
                        }
                        l.warn(Some(i), "UndefinedArgInFrom", i.span, msg);
                    }
                    if image.text.contains('$')
                        && reference::parse(&e.value).is_err()
                        && !e.value.eq_ignore_ascii_case("scratch")
                        && !stages
                            .iter()
                            .any(|s| s.name.as_deref() == Some(e.value.as_str()))
                    {
                        l.warn(
                            Some(i),
                            "InvalidDefaultArgInFrom",
                            i.span,
                            format!(
                                "Default value for ARG {} results in empty or invalid base image name",
                                image.text
                            ),
                        );
                    }
                }
                if let Some(p) = platform {
                    platform_checks(
                        &mut l,
                        i,
                        p,
                        name.as_ref(),
                        (&lexer, &mut budget),
                        &defaults,
                        &declared,
                    );
                }
                cur.name = name.as_ref().map(|n| n.text.clone());
            }
            Command::Maintainer { .. } => l.warn(
                Some(i),
                "MaintainerDeprecated",
                keyword_span(i),
                "Maintainer instruction is deprecated in favor of using label".into(),
            ),
            Command::Shell { .. } => cur.shell = true,
            Command::Cmd { cmd } | Command::Entrypoint { cmd } => {
                let is_cmd = matches!(i.command, Command::Cmd { .. });
                let slot = if is_cmd {
                    &mut seen_cmd
                } else {
                    &mut seen_entry
                };
                if let Some(prev) = slot.replace(i) {
                    multiple(&mut l, prev, i);
                }
                if cmd.is_shell() && !cur.shell {
                    l.warn(
                        Some(i),
                        "JSONArgsRecommended",
                        i.span,
                        format!(
                            "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                            i.keyword
                        ),
                    );
                }
            }
            Command::Healthcheck(_) => {
                if let Some(prev) = seen_health.replace(i) {
                    multiple(&mut l, prev, i);
                }
            }
            Command::Env { pairs } | Command::Label { pairs } => {
                for p in pairs {
                    if p.legacy {
                        l.warn(
                            Some(i),
                            "LegacyKeyValueFormat",
                            i.span,
                            format!(
                                "\"{k} key=value\" should be used instead of legacy \"{k} key value\" format",
                                k = i.keyword
                            ),
                        );
                    }
                    if matches!(i.command, Command::Env { .. }) && looks_secret(&p.key.text) {
                        secret(&mut l, i, "ENV", &p.key.text, p.key.span);
                    }
                }
            }
            Command::Arg { args } => {
                for a in args {
                    if looks_secret(&a.key.text) {
                        secret(&mut l, i, "ARG", &a.key.text, a.key.span);
                    }
                }
            }
            Command::Expose { ports } => {
                for p in ports {
                    if p.text.contains('$') {
                        continue;
                    }
                    let proto = p.text.rsplit_once('/').map(|(_, pr)| pr).unwrap_or("");
                    if proto != proto.to_lowercase() {
                        l.warn(
                            Some(i),
                            "ExposeProtoCasing",
                            p.span,
                            format!(
                                "Defined protocol '{}' in EXPOSE instruction should be lowercase",
                                p.text
                            ),
                        );
                    }
                    if p.text.contains(':') {
                        l.warn(
                            Some(i),
                            "ExposeInvalidFormat",
                            p.span,
                            format!(
                                "EXPOSE instruction should not define an IP address or host-port mapping, found '{}'",
                                p.text
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    // Secrets in global ARGs are checked too (BuildKit checks them when a stage declares them).
    for i in &df.instructions[..first_from] {
        if let Command::Arg { args } = &i.command {
            for a in args {
                if looks_secret(&a.key.text) {
                    secret(&mut l, i, "ARG", &a.key.text, a.key.span);
                }
            }
        }
    }
    l.out
}

fn secret(l: &mut Linter<'_>, i: &Instruction, what: &str, key: &str, span: Span) {
    l.warn(
        Some(i),
        "SecretsUsedInArgOrEnv",
        span,
        format!(
            "Do not use ARG or ENV instructions for sensitive data ({what} {})",
            crate::gofmt::quote(key)
        ),
    );
}

fn multiple(l: &mut Linter<'_>, prev: &Instruction, cur: &Instruction) {
    l.warn(
        Some(prev),
        "MultipleInstructionsDisallowed",
        prev.span,
        format!(
            "Multiple {} instructions should not be used in the same stage because only the last one will be used",
            cur.keyword
        ),
    );
}

fn keyword_span(i: &Instruction) -> Span {
    Span {
        len: i.keyword.len(),
        ..i.span
    }
}

fn from_checks(
    l: &mut Linter<'_>,
    i: &Instruction,
    src: &str,
    name: Option<&crate::ast::Word>,
    names: &mut BTreeSet<String>,
) {
    let Some(name) = name else { return };
    let raw = src
        .get(name.span.offset..name.span.end())
        .unwrap_or(&name.text);
    if raw != raw.to_lowercase() {
        l.warn(
            Some(i),
            "StageNameCasing",
            name.span,
            format!("Stage name '{raw}' should be lowercase"),
        );
    }
    // FromAsCasing: compare the `as` word with the FROM keyword.
    let kw = &i.keyword;
    let as_word = i
        .original
        .split(|c: char| crate::words::is_re_space(c))
        .filter(|w| !w.is_empty() && !w.starts_with("--"))
        .nth(2)
        .unwrap_or_default();
    let kw_lower = all_lower(kw);
    let kw_upper = all_upper(kw);
    if (kw_lower && !all_lower(as_word)) || (kw_upper && !kw_lower && !all_upper(as_word)) {
        l.warn(
            Some(i),
            "FromAsCasing",
            i.span,
            format!("'{as_word}' and '{kw}' keywords' casing do not match"),
        );
    }
    if matches!(name.text.as_str(), "context" | "scratch") {
        l.warn(
            Some(i),
            "ReservedStageName",
            name.span,
            format!(
                "Stage name should not use the same name as reserved stage {}",
                crate::gofmt::quote(&name.text)
            ),
        );
    }
    if !names.insert(name.text.clone()) {
        l.warn(
            Some(i),
            "DuplicateStageName",
            name.span,
            format!(
                "Duplicate stage name {}, stage names should be unique",
                crate::gofmt::quote(&name.text)
            ),
        );
    }
}

fn platform_checks(
    l: &mut Linter<'_>,
    i: &Instruction,
    p: &crate::ast::Word,
    name: Option<&crate::ast::Word>,
    (lexer, budget): (&Lexer, &mut Budget),
    env: &Env,
    declared: &BTreeSet<String>,
) {
    let Ok(e) = lexer.expand_within(&p.text, env, budget) else {
        return;
    };
    for var in &e.unset {
        if !declared.contains(var) {
            l.warn(
                Some(i),
                "UndefinedArgInFrom",
                p.span,
                format!("FROM argument '{var}' is not declared"),
            );
        }
    }
    if e.matched.len() == 1 && e.unset.is_empty() && e.matched.contains("TARGETPLATFORM") {
        let tp = env.get("TARGETPLATFORM");
        if tp == Some(e.value.as_str()) {
            l.warn(
                Some(i),
                "RedundantTargetPlatform",
                p.span,
                format!(
                    "Setting platform to predefined {} in FROM is redundant as this is the default behavior",
                    p.text
                ),
            );
        }
    }
    if e.matched.is_empty()
        && e.unset.is_empty()
        && let Ok(pl) = Platform::parse(&e.value)
    {
        let stage = name.map(|n| n.text.as_str()).unwrap_or("");
        if !stage.contains(&pl.os) && !stage.contains(&pl.architecture) {
            l.warn(
                Some(i),
                "FromPlatformFlagConstDisallowed",
                p.span,
                format!(
                    "FROM --platform flag should not use constant value {}",
                    crate::gofmt::quote(&e.value)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_relative_path_is_abs_per_os() {
        assert!(is_abs_for_os("/app", "linux"));
        assert!(!is_abs_for_os("app", "linux"));
        assert!(!is_abs_for_os("C:\\app", "linux"));
        assert!(is_abs_for_os("C:\\app", "windows"));
        assert!(is_abs_for_os("c:/app", "windows"));
        assert!(is_abs_for_os("\\app", "windows"));
        assert!(is_abs_for_os("/app", "windows"));
        assert!(!is_abs_for_os("C:", "windows"));
        assert!(!is_abs_for_os("C:app", "windows"));
        assert!(!is_abs_for_os("D:\\app", "windows"));
        assert!(!is_abs_for_os("\\\\server\\share", "windows"));
        assert_eq!(
            workdir_relative_path("", "linux", false).as_deref(),
            Some("Relative workdir \"\" can have unexpected results if the base image changes")
        );
        assert!(workdir_relative_path("app", "linux", true).is_none());
    }

    #[test]
    fn copy_ignored_file_matches_the_source_or_a_parent() {
        let m = IgnoreMatcher::new(&["*.md", "build/**", "secrets", "**/*.log"]).unwrap();
        assert_eq!(
            m.copy_ignored(false, "README.md").as_deref(),
            Some("Attempting to Copy file \"README.md\" that is excluded by .dockerignore")
        );
        assert_eq!(
            m.copy_ignored(true, "./secrets/key.pem").as_deref(),
            Some("Attempting to Add file \"secrets/key.pem\" that is excluded by .dockerignore")
        );
        assert!(m.copy_ignored(false, "build/out/app").is_some());
        assert!(m.copy_ignored(false, "logs/a/x.log").is_some());
        // Negative: not excluded, and the context root is not a file of its own.
        assert!(m.copy_ignored(false, "docs/README.txt").is_none());
        assert!(m.copy_ignored(false, "src").is_none());
        assert!(m.copy_ignored(false, ".").is_none());
        assert!(m.copy_ignored(false, "go.mod").is_none());
    }

    #[test]
    fn copy_ignored_file_root_only_when_everything_is_ignored() {
        let m = IgnoreMatcher::new(&["*"]).unwrap();
        assert!(m.copy_ignored(false, ".").is_some());
        assert!(m.copy_ignored(false, "./").is_some());
    }

    #[test]
    fn copy_ignored_file_is_off_with_exceptions_or_without_patterns() {
        assert!(IgnoreMatcher::new(&["*.md", "!README.md"]).is_none());
        assert!(IgnoreMatcher::new::<&str>(&[]).is_none());
        assert!(IgnoreMatcher::new(&["  "]).is_none());
    }

    #[test]
    fn copy_ignored_file_reads_patterns_as_the_context_filter_does() {
        // A pattern the context filter refuses (bad `filepath.Match` syntax) turns the check off,
        assert!(IgnoreMatcher::new(&["*.md", "a/[x-]"]).is_none());
        // and a `!` that cleaning brings to the front is an exception for both.
        assert!(IgnoreMatcher::new(&["*.md", "./!keep.md"]).is_none());
    }

    #[test]
    fn invalid_base_image_platform_compares_os_and_architecture() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            invalid_base_image_platform("alpine", &amd64, &Platform::new("linux", "arm64", None))
                .as_deref(),
            Some(
                "Base image alpine was pulled with platform \"linux/arm64\", expected \"linux/amd64\" for current build"
            )
        );
        assert!(
            invalid_base_image_platform("alpine", &amd64, &Platform::new("linux", "amd64", None))
                .is_none()
        );
        assert!(
            invalid_base_image_platform("imported", &amd64, &Platform::new("", "", None)).is_none()
        );
        let armv7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(
            invalid_base_image_platform("x", &armv7, &Platform::new("linux", "arm", None))
                .is_none()
        );
        assert_eq!(
            invalid_base_image_platform("x", &armv7, &Platform::new("windows", "arm", None))
                .as_deref(),
            Some(
                "Base image x was pulled with platform \"windows/arm\", expected \"linux/arm/v7\" for current build"
            )
        );
    }

    #[test]
    fn secret_names() {
        for k in [
            "API_KEY",
            "password",
            "GITHUB_TOKEN",
            "secret_MESSAGE",
            "AUTH",
            "db_password",
        ] {
            assert!(looks_secret(k), "{k}");
        }
        for k in ["KEYBOARD", "PUBLIC_KEY", "TOKEN_FILE", "VERSION", "MONKEY"] {
            assert!(!looks_secret(k), "{k}");
        }
    }
}
