//! A node to a typed [`Instruction`]: flag validation and each instruction's argument rules,
//! as BuildKit's `instructions` package applies them at parse time.

use crate::ast::{
    ArgDecl, CmdLine, Command, CopySpec, Flag, HealthSpec, Heredoc, InlineSource, Instruction,
    KeyValue, Lines, RunSpec, Word,
};
use crate::gofmt;
use crate::heredoc;
use crate::node::{KEYWORDS, Kind, Node};
use crate::span::{Diagnostic, Span};
use crate::suggest;
use crate::words::Piece;

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    Str,
    Strs,
}

use FlagKind::{Bool, Str, Strs};

const ADD_FLAGS: &[(&str, FlagKind)] = &[
    ("chown", Str),
    ("chmod", Str),
    ("link", Bool),
    ("keep-git-dir", Bool),
    ("checksum", Str),
    ("unpack", Bool),
    ("exclude", Strs),
];
const COPY_FLAGS: &[(&str, FlagKind)] = &[
    ("chown", Str),
    ("from", Str),
    ("chmod", Str),
    ("link", Bool),
    ("exclude", Strs),
    ("parents", Bool),
];
const FROM_FLAGS: &[(&str, FlagKind)] = &[("platform", Str)];
const RUN_FLAGS: &[(&str, FlagKind)] = &[
    ("mount", Strs),
    ("network", Str),
    ("security", Str),
    ("device", Strs),
];
const HEALTH_FLAGS: &[(&str, FlagKind)] = &[
    ("interval", Str),
    ("timeout", Str),
    ("start-period", Str),
    ("start-interval", Str),
    ("retries", Str),
];

/// Flags that passed validation.
#[derive(Default)]
struct Flags {
    values: Vec<(&'static str, Word)>,
    bools: Vec<(&'static str, bool)>,
}

impl Flags {
    fn string(&self, name: &str) -> Option<Word> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, w)| w.clone())
    }
    fn strings(&self, name: &str) -> Vec<Word> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, w)| w.clone())
            .collect()
    }
    fn boolean(&self, name: &str) -> Option<bool> {
        self.bools.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }
}

/// Context for building one instruction.
pub(crate) struct Builder<'a> {
    pub diags: &'a mut Vec<Diagnostic>,
    pub span_of: &'a dyn Fn(usize, usize) -> Span,
}

impl Builder<'_> {
    fn word(&self, p: &Piece) -> Word {
        Word::new(p.text.clone(), (self.span_of)(p.start, p.end))
    }

    fn err(&mut self, start: usize, end: usize, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error((self.span_of)(start, end), msg)
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Validates the node's flags against `spec` (BuildKit's `BFlags.Parse`).
    fn flags(&mut self, node: &Node, upper: &str, spec: &[(&'static str, FlagKind)]) -> Flags {
        let mut out = Flags::default();
        let mut used: Vec<&'static str> = Vec::new();
        for f in &node.flags {
            let span = (self.span_of)(f.start, f.end);
            if f.text == "--" {
                break;
            }
            let body = f.text.strip_prefix("--").unwrap_or(&f.text);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((spec_name, kind)) = spec.iter().find(|(n, _)| *n == name).copied() else {
                let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
                let hint = match suggest::closest(name, names.iter().copied(), true) {
                    Some(s) => format!("did you mean --{s}?"),
                    None if names.is_empty() => format!("{upper} takes no flags"),
                    None => format!(
                        "{upper} accepts {}",
                        names
                            .iter()
                            .map(|n| format!("--{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.push(
                    Diagnostic::error(span, format!("unknown flag --{name} for {upper}"))
                        .with_hint(hint),
                );
                continue;
            };
            if used.contains(&spec_name) && kind != Strs {
                self.push(
                    Diagnostic::error(span, format!("duplicate flag specified: --{name}"))
                        .with_hint(format!("give --{name} once")),
                );
                continue;
            }
            used.push(spec_name);
            match kind {
                Bool => match value {
                    Some("") => self.push(
                        Diagnostic::error(span, format!("missing a value on flag: --{name}"))
                            .with_hint(format!("write --{name} or --{name}=true|false")),
                    ),
                    None => out.bools.push((spec_name, true)),
                    Some(v) => match v.to_ascii_lowercase().as_str() {
                        "true" => out.bools.push((spec_name, true)),
                        "false" => out.bools.push((spec_name, false)),
                        _ => self.push(
                            Diagnostic::error(
                                span,
                                format!("expecting boolean value for flag --{name}, not: {v}"),
                            )
                            .with_hint(format!("write --{name}=true or --{name}=false")),
                        ),
                    },
                },
                Str | Strs => match value {
                    None => self.push(
                        Diagnostic::error(span, format!("missing a value on flag: --{name}"))
                            .with_hint(format!("write --{name}=VALUE")),
                    ),
                    Some(v) => out.values.push((spec_name, Word::new(v, span))),
                },
            }
        }
        out
    }

    /// Warns about flags on instructions whose flags BuildKit never looks at.
    fn ignored_flags(&mut self, node: &Node, upper: &str) {
        for f in &node.flags {
            let span = (self.span_of)(f.start, f.end);
            self.push(
                Diagnostic::warning(span, format!("{upper} ignores the flag {}", f.text))
                    .with_hint(format!("{upper} takes no flags; remove it")),
            );
        }
    }
}

/// The instruction keyword's typed form, or `None` (with diagnostics) when it is invalid.
pub(crate) fn build(
    b: &mut Builder<'_>,
    mut node: Node,
    text: String,
    lines: Lines,
    span: Span,
    heredocs: Vec<Heredoc>,
    comments: Vec<String>,
) -> Option<Instruction> {
    let before = b.diags.iter().filter(|d| d.is_error()).count();
    let upper = crate::node::upper_keyword(node.lower);
    let args_span = if node.args_start == node.args_end {
        (b.span_of)(node.keyword.start, node.keyword.end)
    } else {
        (b.span_of)(node.args_start, node.args_end)
    };
    let node_args = std::mem::take(&mut node.args);
    let arg_count = node_args.len();
    // Commands keep only their text (no spans): skip building words for them.
    let (words, mut texts): (Vec<Word>, Vec<String>) = if node.kind == Kind::JsonOrText {
        (Vec::new(), node_args.into_iter().map(|p| p.text).collect())
    } else {
        let words = node_args
            .into_iter()
            .map(|p| {
                let span = (b.span_of)(p.start, p.end);
                Word::new(p.text, span)
            })
            .collect();
        (words, Vec::new())
    };
    let keyword = std::mem::take(&mut node.keyword.text);
    let node = &node;
    let mut flags_out: Vec<Flag> = Vec::new();
    for f in &node.flags {
        let body = f.text.strip_prefix("--").unwrap_or(&f.text);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        flags_out.push(Flag {
            name,
            value,
            span: (b.span_of)(f.start, f.end),
        });
    }
    let missing = |b: &mut Builder<'_>, what: &str, example: &str| {
        let d = Diagnostic::error(args_span, format!("{upper} requires {what}"))
            .with_hint(format!("write {example}"));
        b.push(d);
    };
    let command = match node.kind {
        Kind::Unknown => {
            let hint = suggest::closest(&keyword, KEYWORDS.iter().copied(), false)
                .map(|s| format!("did you mean {s}?"))
                .unwrap_or_else(|| {
                    "instructions are ADD, ARG, CMD, COPY, ENTRYPOINT, ENV, EXPOSE, FROM, HEALTHCHECK, LABEL, MAINTAINER, ONBUILD, RUN, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR".to_string()
                });
            let kw = &node.keyword;
            let d = b
                .err(kw.start, kw.end, format!("unknown instruction: {keyword}"))
                .with_hint(hint);
            b.push(d);
            None
        }
        Kind::NameValue => {
            b.flags(node, upper, &[]);
            if node.pairs.is_empty() {
                missing(b, "at least one argument", &format!("{upper} key=value"));
                None
            } else {
                let mut pairs = Vec::with_capacity(node.pairs.len());
                for p in &node.pairs {
                    if p.key.text.is_empty() {
                        let d = b
                            .err(
                                p.key.start,
                                p.value.end,
                                format!("{upper} names can not be blank"),
                            )
                            .with_hint(format!("write {upper} name=value"));
                        b.push(d);
                        continue;
                    }
                    pairs.push(KeyValue {
                        key: b.word(&p.key),
                        value: b.word(&p.value),
                        legacy: p.legacy,
                    });
                }
                Some(if node.lower == "env" {
                    Command::Env { pairs }
                } else {
                    Command::Label { pairs }
                })
            }
        }
        Kind::Text => {
            b.flags(node, upper, &[]);
            match words.first() {
                None => {
                    let example = match node.lower {
                        "workdir" => "WORKDIR /path",
                        "user" => "USER name[:group]",
                        "stopsignal" => "STOPSIGNAL SIGTERM",
                        _ => "MAINTAINER name",
                    };
                    missing(b, "exactly one argument", example);
                    None
                }
                Some(w) => {
                    let w = w.clone();
                    Some(match node.lower {
                        "workdir" => Command::Workdir { path: w },
                        "user" => Command::User { user: w },
                        "stopsignal" => Command::Stopsignal { signal: w },
                        _ => Command::Maintainer { name: w },
                    })
                }
            }
        }
        Kind::Words => {
            b.ignored_flags(node, upper);
            if words.is_empty() {
                missing(b, "at least one argument", "ARG NAME[=default]");
                None
            } else {
                let mut out = Vec::with_capacity(words.len());
                for w in words {
                    match w.text.split_once('=') {
                        Some(("", _)) => {
                            let d = Diagnostic::error(w.span, "ARG names can not be blank")
                                .with_hint("write ARG NAME=value");
                            b.push(d);
                        }
                        Some((k, v)) => {
                            let ks = Span {
                                len: k.len(),
                                ..w.span
                            };
                            let vs = Span {
                                offset: w.span.offset + k.len() + 1,
                                len: v.len(),
                                line: w.span.line,
                                col: w.span.col + k.chars().count() as u32 + 1,
                            };
                            out.push(ArgDecl {
                                key: Word::new(k, ks),
                                value: Some(Word::new(v, vs)),
                            });
                        }
                        None => out.push(ArgDecl {
                            key: w,
                            value: None,
                        }),
                    }
                }
                Some(Command::Arg { args: out })
            }
        }
        Kind::List if node.lower == "from" => {
            let f = b.flags(node, upper, FROM_FLAGS);
            let name = if words.len() == 3 && words[1].text.eq_ignore_ascii_case("as") {
                let raw = &words[2];
                let lower = raw.text.to_lowercase();
                if !valid_stage_name(&lower) {
                    let d = Diagnostic::error(
                        raw.span,
                        format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            gofmt::quote(&raw.text)
                        ),
                    )
                    .with_hint("stage names match [a-z][a-z0-9-_.]*");
                    b.push(d);
                }
                Some(Word::new(lower, raw.span))
            } else {
                if words.len() != 1 {
                    let d =
                        Diagnostic::error(args_span, "FROM requires either one or three arguments")
                            .with_hint("write FROM <image> [AS <name>]");
                    b.push(d);
                }
                None
            };
            words.first().cloned().map(|image| Command::From {
                image,
                name,
                platform: f.string("platform"),
            })
        }
        Kind::List => {
            b.flags(node, upper, &[]);
            if words.is_empty() {
                missing(b, "at least one argument", "EXPOSE 80/tcp");
                None
            } else {
                let mut ports = words;
                ports.sort_by(|a, b| a.text.cmp(&b.text));
                Some(Command::Expose { ports })
            }
        }
        Kind::JsonOrList => {
            if node.lower == "volume" {
                b.flags(node, upper, &[]);
                if words.is_empty() {
                    missing(b, "at least one argument", "VOLUME /data");
                    None
                } else {
                    let mut paths = Vec::with_capacity(words.len());
                    for w in &words {
                        let t = w.text.trim();
                        if t.is_empty() {
                            let d = Diagnostic::error(
                                w.span,
                                "VOLUME specified can not be an empty string",
                            )
                            .with_hint("name a path, e.g. VOLUME /data");
                            b.push(d);
                        } else {
                            paths.push(Word::new(t, w.span));
                        }
                    }
                    Some(Command::Volume { paths })
                }
            } else {
                copy_like(b, node, upper, &words, &heredocs, args_span)
            }
        }
        Kind::JsonOrText => {
            let is_run = node.lower == "run";
            let (f, run_flags) = if is_run {
                (b.flags(node, upper, RUN_FLAGS), true)
            } else {
                (b.flags(node, upper, &[]), false)
            };
            let is_shell = node.lower == "shell";
            let cmd = if is_shell {
                CmdLine::Exec(Vec::new())
            } else if node.json {
                CmdLine::Exec(std::mem::take(&mut texts))
            } else if texts.len() == 1 {
                CmdLine::Shell(texts.pop().unwrap_or_default())
            } else {
                CmdLine::Shell(texts.join(" "))
            };
            match node.lower {
                "run" if run_flags => {
                    let network = f.string("network");
                    if let Some(n) = &network
                        && !matches!(n.text.as_str(), "default" | "none" | "host")
                    {
                        let d = Diagnostic::error(
                            n.span,
                            format!("invalid network mode {}", gofmt::quote(&n.text)),
                        )
                        .with_hint("use --network=default, none or host");
                        b.push(d);
                    }
                    let security = f.string("security");
                    if let Some(s) = &security
                        && !matches!(s.text.as_str(), "sandbox" | "insecure")
                    {
                        let d = Diagnostic::error(
                            s.span,
                            format!("security {} is not valid", gofmt::quote(&s.text)),
                        )
                        .with_hint("use --security=sandbox or insecure");
                        b.push(d);
                    }
                    let mounts = f.strings("mount");
                    for m in &mounts {
                        if let Err(e) = crate::mount::check_unexpanded(&m.text) {
                            let d = Diagnostic::error(m.span, e)
                                .with_hint("RUN --mount takes type=…,target=… pairs");
                            b.push(d);
                        }
                    }
                    Some(Command::Run(RunSpec {
                        cmd,
                        mounts,
                        network,
                        security,
                        devices: f.strings("device"),
                    }))
                }
                "cmd" => Some(Command::Cmd { cmd }),
                "entrypoint" => Some(Command::Entrypoint { cmd }),
                _ => {
                    if arg_count == 0 {
                        missing(b, "at least one argument", "SHELL [\"/bin/sh\", \"-c\"]");
                        None
                    } else if !node.json {
                        let d = Diagnostic::error(
                            args_span,
                            "SHELL requires the arguments to be in JSON form",
                        )
                        .with_hint("write SHELL [\"executable\", \"parameters\"]");
                        b.push(d);
                        None
                    } else {
                        Some(Command::Shell { shell: texts })
                    }
                }
            }
        }
        Kind::Health => healthcheck(b, node, upper, &words, args_span),
        Kind::Sub => {
            b.flags(node, upper, &[]);
            match &node.sub {
                None => {
                    missing(b, "at least one argument", "ONBUILD RUN make");
                    None
                }
                Some(sub) => {
                    let trigger = sub.keyword.text.trim().to_uppercase();
                    let bad = match trigger.as_str() {
                        "ONBUILD" => {
                            Some("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string())
                        }
                        "MAINTAINER" | "FROM" => {
                            Some(format!("{trigger} isn't allowed as an ONBUILD trigger"))
                        }
                        _ => None,
                    };
                    if let Some(msg) = bad {
                        let d = b.err(sub.keyword.start, sub.keyword.end, msg).with_hint(
                            "ONBUILD takes any instruction but ONBUILD, FROM and MAINTAINER",
                        );
                        b.push(d);
                        None
                    } else {
                        let mut expression = strip_onbuild(&text).to_string();
                        for h in &heredocs {
                            expression.push('\n');
                            expression.push_str(&h.content);
                            expression.push_str(&h.name);
                        }
                        Some(Command::Onbuild {
                            trigger,
                            expression,
                        })
                    }
                }
            }
        }
    }?;
    if b.diags.iter().filter(|d| d.is_error()).count() > before {
        return None;
    }
    Some(Instruction {
        keyword,
        lines,
        span,
        flags: flags_out,
        command,
        heredocs,
        original: text,
        comments,
    })
}

/// `(?i)^\s*ONBUILD\s*` removed.
fn strip_onbuild(text: &str) -> &str {
    let t = text.trim_start();
    match t.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => t[7..].trim_start(),
        _ => text,
    }
}

/// BuildKit's stage-name rule `^[a-z][a-z0-9-_.]*$`.
pub(crate) fn valid_stage_name(name: &str) -> bool {
    let mut cs = name.chars();
    cs.next().is_some_and(|c| c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn copy_like(
    b: &mut Builder<'_>,
    node: &Node,
    upper: &str,
    words: &[Word],
    heredocs: &[Heredoc],
    args_span: Span,
) -> Option<Command> {
    let is_add = node.lower == "add";
    if words.len() < 2 {
        let d = Diagnostic::error(
            args_span,
            format!(
                "{upper} requires at least two arguments, but only one was provided. Destination could not be determined"
            ),
        )
        .with_hint(format!("write {upper} <src>... <dest>"));
        b.push(d);
        b.flags(node, upper, if is_add { ADD_FLAGS } else { COPY_FLAGS });
        return None;
    }
    let f = b.flags(node, upper, if is_add { ADD_FLAGS } else { COPY_FLAGS });
    let (dest, srcs) = words.split_last()?;
    if let Ok(Some(_)) = heredoc::parse_marker(&dest.text) {
        let d = Diagnostic::error(
            dest.span,
            format!("{upper} cannot accept a heredoc as a destination"),
        )
        .with_hint(format!("write {upper} <<EOF /path/of/file"));
        b.push(d);
        return None;
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for s in srcs {
        match heredoc::parse_marker(&s.text) {
            Ok(Some(m)) => {
                let content = heredocs
                    .iter()
                    .find(|h| h.name == m.name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                inline.push(InlineSource {
                    name: m.name,
                    content: if m.chomp {
                        heredoc::chomp(&content)
                    } else {
                        content
                    },
                    expand: m.expand,
                });
            }
            _ => sources.push(s.clone()),
        }
    }
    let spec = CopySpec {
        sources,
        inline,
        dest: dest.clone(),
        json: node.json,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.boolean("link").unwrap_or(false),
        parents: f.boolean("parents").unwrap_or(false),
        exclude: f.strings("exclude"),
        checksum: f.string("checksum"),
        keep_git_dir: f.boolean("keep-git-dir"),
        unpack: f.boolean("unpack"),
    };
    Some(if is_add {
        Command::Add(spec)
    } else {
        Command::Copy(spec)
    })
}

fn healthcheck(
    b: &mut Builder<'_>,
    node: &Node,
    upper: &str,
    words: &[Word],
    args_span: Span,
) -> Option<Command> {
    let Some((typ, rest)) = words.split_first() else {
        let d = Diagnostic::error(args_span, "HEALTHCHECK requires at least one argument")
            .with_hint("write HEALTHCHECK NONE or HEALTHCHECK [options] CMD command");
        b.push(d);
        return None;
    };
    let t = typ.text.to_uppercase();
    if t == "NONE" {
        b.ignored_flags(node, upper);
        if !rest.is_empty() {
            let d = Diagnostic::error(args_span, "HEALTHCHECK NONE takes no arguments")
                .with_hint("write HEALTHCHECK NONE alone");
            b.push(d);
            return None;
        }
        return Some(Command::Healthcheck(HealthSpec::None));
    }
    let f = b.flags(node, upper, HEALTH_FLAGS);
    if t != "CMD" {
        let d = Diagnostic::error(
            typ.span,
            format!("Unknown type {} in HEALTHCHECK (try CMD)", gofmt::quote(&t)),
        )
        .with_hint("write HEALTHCHECK [options] CMD command, or HEALTHCHECK NONE");
        b.push(d);
        return None;
    }
    let cmd: Vec<String> = if node.json {
        rest.iter().map(|w| w.text.clone()).collect()
    } else if rest.is_empty() {
        Vec::new()
    } else {
        vec![
            rest.iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ]
    };
    if cmd.is_empty() {
        let d = Diagnostic::error(args_span, "Missing command after HEALTHCHECK CMD")
            .with_hint("write HEALTHCHECK CMD command");
        b.push(d);
        return None;
    }
    let mut test = vec![if node.json { "CMD" } else { "CMD-SHELL" }.to_string()];
    test.extend(cmd);
    let mut dur = |name: &str| -> i64 {
        let Some(w) = f.string(name) else { return 0 };
        if w.text.is_empty() {
            return 0;
        }
        match gofmt::parse_duration(&w.text) {
            Ok(0) => 0,
            Ok(d) if d < 1_000_000 => {
                b.push(
                    Diagnostic::error(
                        w.span,
                        format!("Interval {} cannot be less than 1ms", gofmt::quote(name)),
                    )
                    .with_hint(format!("give --{name} at least 1ms, e.g. --{name}=30s")),
                );
                0
            }
            Ok(d) => d,
            Err(e) => {
                b.push(
                    Diagnostic::error(w.span, e)
                        .with_hint(format!("write a duration such as --{name}=30s or 1m30s")),
                );
                0
            }
        }
    };
    let interval = dur("interval");
    let timeout = dur("timeout");
    let start_period = dur("start-period");
    let start_interval = dur("start-interval");
    let retries = match f.string("retries") {
        None => 0,
        Some(w) if w.text.is_empty() => 0,
        Some(w) => match w.text.parse::<i32>() {
            Ok(n) if n < 0 => {
                b.push(
                    Diagnostic::error(w.span, format!("--retries cannot be negative ({n})"))
                        .with_hint("give --retries a count of 0 or more"),
                );
                0
            }
            Ok(n) => i64::from(n),
            Err(_) => {
                b.push(
                    Diagnostic::error(
                        w.span,
                        format!(
                            "strconv.ParseInt: parsing {}: invalid syntax",
                            gofmt::quote(&w.text)
                        ),
                    )
                    .with_hint("give --retries a whole number, e.g. --retries=3"),
                );
                0
            }
        },
    };
    Some(Command::Healthcheck(HealthSpec::Cmd {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names() {
        assert!(valid_stage_name("build-1.x_y"));
        assert!(!valid_stage_name("1build"));
        assert!(!valid_stage_name("a$b"));
        assert!(!valid_stage_name(""));
    }

    #[test]
    fn onbuild_prefix() {
        assert_eq!(strip_onbuild("onbuild  RUN x"), "RUN x");
        assert_eq!(strip_onbuild("ONBUILD COPY a b"), "COPY a b");
    }
}
