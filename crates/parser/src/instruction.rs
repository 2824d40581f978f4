//! A node to a typed [`Instruction`]: flag validation and each instruction's argument rules,
//! as BuildKit's `instructions` package applies them at parse time.

use std::borrow::Cow;

use crate::ast::{
    ArgDecl, CmdLine, Command, CopySpec, Flag, Heredoc, InlineSource, KeyValue, RunSpec, Word,
};
use xbuild_llb::Healthcheck;

use crate::gofmt;
use crate::heredoc;
use crate::node::{INSTRUCTIONS, Kind, Node};
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

/// Every flag name some instruction accepts.
const KNOWN_FLAGS: &[&[(&str, FlagKind)]] =
    &[ADD_FLAGS, COPY_FLAGS, FROM_FLAGS, RUN_FLAGS, HEALTH_FLAGS];

/// A flag's name as a static string when some instruction knows it (no allocation).
fn flag_name(name: &str) -> Cow<'static, str> {
    KNOWN_FLAGS
        .iter()
        .flat_map(|spec| spec.iter())
        .find(|(n, _)| *n == name)
        .map_or_else(|| Cow::Owned(name.to_string()), |(n, _)| Cow::Borrowed(*n))
}

/// The keyword as written: a static string for the usual spellings (`lower` or `upper`), a
/// copy otherwise.
fn keyword_as_written(kw: &str, lower: &'static str, upper: &'static str) -> Cow<'static, str> {
    if kw == lower {
        Cow::Borrowed(lower)
    } else if kw == upper {
        Cow::Borrowed(upper)
    } else {
        Cow::Owned(kw.to_string())
    }
}

/// Flags that passed validation: each value names its flag in `all` (the instruction's
/// flags, parsed once), so a [`Word`] is made only for the values a command keeps.
struct Flags<'f> {
    all: &'f [Flag],
    values: Vec<(&'static str, usize)>,
    bools: Vec<(&'static str, bool)>,
}

impl Flags<'_> {
    /// The value of flag `i` as a word spanning the whole flag.
    fn word(&self, i: usize) -> Option<Word> {
        let f = self.all.get(i)?;
        Some(Word::new(f.value.clone().unwrap_or_default(), f.span))
    }
    fn string(&self, name: &str) -> Option<Word> {
        let (_, i) = self.values.iter().rev().find(|(n, _)| *n == name)?;
        self.word(*i)
    }
    fn strings(&self, name: &str) -> Vec<Word> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, i)| self.word(*i))
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
    fn word(&self, p: Piece<'_>) -> Word {
        Word::new(p.text, (self.span_of)(p.start, p.end))
    }

    /// Where the node's arguments are (its keyword when it has none), for errors about them.
    fn args_span(&self, node: &Node<'_>) -> Span {
        if node.args_start == node.args_end {
            (self.span_of)(node.keyword.start, node.keyword.end)
        } else {
            (self.span_of)(node.args_start, node.args_end)
        }
    }

    fn err(&mut self, start: usize, end: usize, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error((self.span_of)(start, end), msg)
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Validates the instruction's flags against `spec` (BuildKit's `BFlags.Parse`).
    fn flags<'f>(
        &mut self,
        all: &'f [Flag],
        upper: &str,
        spec: &[(&'static str, FlagKind)],
    ) -> Flags<'f> {
        let mut out = Flags {
            all,
            values: Vec::new(),
            bools: Vec::new(),
        };
        // Bit `k` set: `spec[k]` was given (specs have far fewer than 64 flags).
        let mut used: u64 = 0;
        for (i, f) in all.iter().enumerate() {
            let span = f.span;
            // A bare `--` (no name, no value) ends the flags.
            if f.name.is_empty() && f.value.is_none() {
                break;
            }
            let (name, value) = (&*f.name, f.value.as_deref());
            let Some((k, &(spec_name, kind))) =
                spec.iter().enumerate().find(|(_, (n, _))| *n == name)
            else {
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
            let bit = 1u64 << k.min(63);
            if used & bit != 0 && kind != Strs {
                self.push(
                    Diagnostic::error(span, format!("duplicate flag specified: --{name}"))
                        .with_hint(format!("give --{name} once")),
                );
                continue;
            }
            used |= bit;
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
                    Some(_) => out.values.push((spec_name, i)),
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

/// What [`build`] makes of a node; the caller adds what it owns (text, lines, heredocs).
pub(crate) struct Built {
    /// The keyword as written.
    pub keyword: Cow<'static, str>,
    /// The flags as written.
    pub flags: Vec<Flag>,
    /// The typed instruction.
    pub command: Command,
}

/// The instruction's typed form, or `None` (with diagnostics) when it is invalid. `text` is
/// the logical line `node` was parsed from.
pub(crate) fn build(
    b: &mut Builder<'_>,
    mut node: Node<'_>,
    text: &str,
    heredocs: &[Heredoc],
) -> Option<Built> {
    let before = b.diags.iter().filter(|d| d.is_error()).count();
    let upper = node.upper;
    // Each kind turns the pieces it keeps into words itself (no intermediate list).
    let args = std::mem::take(&mut node.args);
    let whole = node.whole.take();
    let node_pairs = std::mem::take(&mut node.pairs);
    let keyword = keyword_as_written(&node.keyword.text, node.lower, node.upper);
    let node = &node;
    let mut flags_out: Vec<Flag> = Vec::with_capacity(node.flags.len());
    for f in &node.flags {
        let body = f.text.strip_prefix("--").unwrap_or(&f.text);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (flag_name(n), Some(v.to_string())),
            None => (flag_name(body), None),
        };
        flags_out.push(Flag {
            name,
            value,
            span: (b.span_of)(f.start, f.end),
        });
    }
    let missing = |b: &mut Builder<'_>, what: &str, example: &str| {
        let d = Diagnostic::error(b.args_span(node), format!("{upper} requires {what}"))
            .with_hint(format!("write {example}"));
        b.push(d);
    };
    let command = match node.kind {
        Kind::Unknown => {
            let hint = suggest::closest(&keyword, INSTRUCTIONS.iter().map(|i| i.1), false)
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
            b.flags(&flags_out, upper, &[]);
            if node_pairs.is_empty() {
                missing(b, "at least one argument", &format!("{upper} key=value"));
                None
            } else {
                let mut pairs = Vec::with_capacity(node_pairs.len());
                for p in node_pairs {
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
                        key: b.word(p.key),
                        value: b.word(p.value),
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
            b.flags(&flags_out, upper, &[]);
            match whole {
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
                Some(p) => {
                    let w = b.word(p);
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
            if args.is_empty() {
                missing(b, "at least one argument", "ARG NAME[=default]");
                None
            } else {
                let mut out = Vec::with_capacity(args.len());
                for p in args {
                    let span = (b.span_of)(p.start, p.end);
                    match p.split_once('=') {
                        Some((k, _)) if k.is_empty() => {
                            let d = Diagnostic::error(span, "ARG names can not be blank")
                                .with_hint("write ARG NAME=value");
                            b.push(d);
                        }
                        Some((k, v)) => {
                            let ks = Span {
                                len: k.len(),
                                ..span
                            };
                            let vs = Span {
                                offset: span.offset + k.len() + 1,
                                len: v.len(),
                                line: span.line,
                                col: span.col + k.chars().count() as u32 + 1,
                            };
                            out.push(ArgDecl {
                                key: Word::new(k, ks),
                                value: Some(Word::new(v, vs)),
                            });
                        }
                        None => out.push(ArgDecl {
                            key: Word::new(p.text, span),
                            value: None,
                        }),
                    }
                }
                Some(Command::Arg { args: out })
            }
        }
        Kind::List if node.lower == "from" => {
            let f = b.flags(&flags_out, upper, FROM_FLAGS);
            let name = if args.len() == 3 && args[1].text.eq_ignore_ascii_case("as") {
                let raw = &args[2];
                let raw_span = (b.span_of)(raw.start, raw.end);
                let lower = raw.text.to_lowercase();
                if !valid_stage_name(&lower) {
                    let d = Diagnostic::error(
                        raw_span,
                        format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            gofmt::quote(&raw.text)
                        ),
                    )
                    .with_hint("stage names match [a-z][a-z0-9-_.]*");
                    b.push(d);
                }
                Some(Word::new(lower, raw_span))
            } else {
                if args.len() != 1 {
                    let d = Diagnostic::error(
                        b.args_span(node),
                        "FROM requires either one or three arguments",
                    )
                    .with_hint("write FROM <image> [AS <name>]");
                    b.push(d);
                }
                None
            };
            args.into_iter().next().map(|image| Command::From {
                image: b.word(image),
                name,
                platform: f.string("platform"),
            })
        }
        Kind::List => {
            b.flags(&flags_out, upper, &[]);
            if args.is_empty() {
                missing(b, "at least one argument", "EXPOSE 80/tcp");
                None
            } else {
                let mut ports: Vec<Word> = args.into_iter().map(|p| b.word(p)).collect();
                ports.sort_by(|a, b| a.text.cmp(&b.text));
                Some(Command::Expose { ports })
            }
        }
        Kind::JsonOrList => {
            if node.lower == "volume" {
                b.flags(&flags_out, upper, &[]);
                if args.is_empty() {
                    missing(b, "at least one argument", "VOLUME /data");
                    None
                } else {
                    let mut paths = Vec::with_capacity(args.len());
                    for p in args {
                        let span = (b.span_of)(p.start, p.end);
                        let t = p.text.trim();
                        if t.is_empty() {
                            let d = Diagnostic::error(
                                span,
                                "VOLUME specified can not be an empty string",
                            )
                            .with_hint("name a path, e.g. VOLUME /data");
                            b.push(d);
                        } else {
                            paths.push(Word::new(t, span));
                        }
                    }
                    Some(Command::Volume { paths })
                }
            } else {
                copy_like(b, node, upper, &flags_out, args, heredocs)
            }
        }
        Kind::JsonOrText => {
            let is_run = node.lower == "run";
            let (f, run_flags) = if is_run {
                (b.flags(&flags_out, upper, RUN_FLAGS), true)
            } else {
                (b.flags(&flags_out, upper, &[]), false)
            };
            let is_shell = node.lower == "shell";
            // Commands keep only their text (no spans). Shell form has at most the whole
            // text; exec form (JSON) has its strings in `args`.
            let arg_count = args.len() + usize::from(whole.is_some());
            let mut texts: Vec<String> = args.into_iter().map(|p| p.text.into_owned()).collect();
            let cmd = if is_shell {
                CmdLine::Exec(Vec::new())
            } else if node.json {
                CmdLine::Exec(std::mem::take(&mut texts))
            } else {
                CmdLine::Shell(whole.map(|p| p.text.into_owned()).unwrap_or_default())
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
                            b.args_span(node),
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
        Kind::Health => {
            let words = args.into_iter().map(|p| b.word(p)).collect();
            healthcheck(b, node, upper, &flags_out, words)
        }
        Kind::Sub => {
            b.flags(&flags_out, upper, &[]);
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
                        let mut expression = strip_onbuild(text).to_string();
                        for h in heredocs {
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
    Some(Built {
        keyword,
        flags: flags_out,
        command,
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
    node: &Node<'_>,
    upper: &str,
    flags: &[Flag],
    mut args: Vec<Piece<'_>>,
    heredocs: &[Heredoc],
) -> Option<Command> {
    let is_add = node.lower == "add";
    if args.len() < 2 {
        let d = Diagnostic::error(
            b.args_span(node),
            format!(
                "{upper} requires at least two arguments, but only one was provided. Destination could not be determined"
            ),
        )
        .with_hint(format!("write {upper} <src>... <dest>"));
        b.push(d);
        b.flags(flags, upper, if is_add { ADD_FLAGS } else { COPY_FLAGS });
        return None;
    }
    let f = b.flags(flags, upper, if is_add { ADD_FLAGS } else { COPY_FLAGS });
    let dest = b.word(args.pop()?);
    if let Ok(Some(_)) = heredoc::parse_marker(&dest.text) {
        let d = Diagnostic::error(
            dest.span,
            format!("{upper} cannot accept a heredoc as a destination"),
        )
        .with_hint(format!("write {upper} <<EOF /path/of/file"));
        b.push(d);
        return None;
    }
    let mut sources = Vec::with_capacity(args.len());
    let mut inline = Vec::new();
    for s in args {
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
            _ => sources.push(b.word(s)),
        }
    }
    let spec = CopySpec {
        sources,
        inline,
        dest,
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
    node: &Node<'_>,
    upper: &str,
    flags: &[Flag],
    words: Vec<Word>,
) -> Option<Command> {
    let args_span = b.args_span(node);
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
        return Some(Command::Healthcheck(Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        }));
    }
    let f = b.flags(flags, upper, HEALTH_FLAGS);
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
    // A flag left out, empty or zero is not set (`None`).
    let mut dur = |name: &str| -> Option<i64> {
        let w = f.string(name).filter(|w| !w.text.is_empty())?;
        match gofmt::parse_duration(&w.text) {
            Ok(0) => None,
            Ok(d) if d < 1_000_000 => {
                b.push(
                    Diagnostic::error(
                        w.span,
                        format!("Interval {} cannot be less than 1ms", gofmt::quote(name)),
                    )
                    .with_hint(format!("give --{name} at least 1ms, e.g. --{name}=30s")),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                b.push(
                    Diagnostic::error(w.span, e)
                        .with_hint(format!("write a duration such as --{name}=30s or 1m30s")),
                );
                None
            }
        }
    };
    let interval = dur("interval");
    let timeout = dur("timeout");
    let start_period = dur("start-period");
    let start_interval = dur("start-interval");
    let retries = match f.string("retries") {
        None => None,
        Some(w) if w.text.is_empty() => None,
        Some(w) => match w.text.parse::<i32>() {
            Ok(n) if n < 0 => {
                b.push(
                    Diagnostic::error(w.span, format!("--retries cannot be negative ({n})"))
                        .with_hint("give --retries a count of 0 or more"),
                );
                None
            }
            Ok(0) => None,
            Ok(n) => Some(i64::from(n)),
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
                None
            }
        },
    };
    Some(Command::Healthcheck(Healthcheck {
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
