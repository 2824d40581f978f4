//! A logical line to a typed [`Instruction`].

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::space0;

use crate::ast::{CmdLine, Command, Flag, Instruction, KeyValue};
use crate::lines::LogicalLine;
use crate::span::Diagnostic;

/// Every instruction keyword BuildKit knows.
const KNOWN: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// The flags each instruction accepts.
fn allowed_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "from" => &["platform"],
        "run" => &["mount", "network", "security"],
        "copy" => &["from", "chown", "chmod", "link", "parents", "exclude"],
        "add" => &[
            "chown",
            "chmod",
            "link",
            "checksum",
            "keep-git-dir",
            "exclude",
            "unpack",
        ],
        _ => &[],
    }
}

fn keyword(input: &str) -> IResult<&str, &str> {
    take_while1(|c: char| !c.is_whitespace()).parse(input)
}

/// One flag word, `--name[=value]`, with quotes in the value removed.
fn flag_word(input: &str) -> IResult<&str, (&str, Option<String>)> {
    let (rest, _) = tag("--").parse(input)?;
    let (rest, name) = take_while(|c: char| !c.is_whitespace() && c != '=').parse(rest)?;
    if let Some(after) = rest.strip_prefix('=') {
        let mut value = String::new();
        let mut quote: Option<char> = None;
        let mut used = 0;
        for c in after.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => value.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => break,
                None => value.push(c),
            }
            used += c.len_utf8();
        }
        Ok((&after[used..], (name, Some(value))))
    } else {
        Ok((rest, (name, None)))
    }
}

/// The closest of `candidates` to `word`, if it is close enough to suggest.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: edits, with a swap of neighbours counting as one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// Parses one logical line. Errors go to `diags`; `None` when the line is not usable.
pub(crate) fn parse_instruction(
    line: &LogicalLine,
    escape: char,
    diags: &mut Vec<Diagnostic>,
) -> Option<Instruction> {
    let text = line.text.as_str();
    let Ok((after_kw, kw)) = keyword(text) else {
        diags.push(Diagnostic::error(line.span, "expected an instruction"));
        return None;
    };
    let lower = kw.to_ascii_lowercase();
    let kw_span = line.span_of(0, kw.len());
    if !KNOWN.contains(&lower.as_str()) {
        let mut d = Diagnostic::error(kw_span, format!("unknown instruction: {kw}"));
        if let Some(s) = suggest(&lower, KNOWN) {
            d = d.with_hint(format!("did you mean {}?", s.to_ascii_uppercase()));
        }
        diags.push(d);
        return None;
    }

    // Flags come first, each `--name[=value]`, separated by whitespace.
    let mut rest = after_kw;
    let mut flags = Vec::new();
    let mut bad = false;
    while let Ok((r, _)) = space0::<&str, nom::error::Error<&str>>(rest) {
        rest = r;
        if !rest.starts_with("--") {
            break;
        }
        let start = text.len() - rest.len();
        let Ok((r, (name, value))) = flag_word(rest) else {
            break;
        };
        rest = r;
        let span = line.span_of(start, text.len() - rest.len());
        if name.is_empty() {
            // A bare `--` ends the flags.
            break;
        }
        let allowed = allowed_flags(&lower);
        if !allowed.contains(&name) {
            let mut d = Diagnostic::error(
                span,
                format!("unknown flag --{name} for {}", lower.to_ascii_uppercase()),
            );
            d = match suggest(name, allowed) {
                Some(s) => d.with_hint(format!("did you mean --{s}?")),
                None if allowed.is_empty() => {
                    d.with_hint(format!("{} takes no flags", lower.to_ascii_uppercase()))
                }
                None => d.with_hint(format!(
                    "{} accepts {}",
                    lower.to_ascii_uppercase(),
                    allowed
                        .iter()
                        .map(|f| format!("--{f}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            diags.push(d);
            bad = true;
            continue;
        }
        flags.push(Flag {
            name: name.to_string(),
            value,
            span,
        });
    }
    let args = rest.trim();
    let args_at = text.len() - rest.len() + (rest.len() - rest.trim_start().len());
    let args_span = line.span_of(args_at, text.len());
    let upper = lower.to_ascii_uppercase();
    let missing = |what: &str| {
        Diagnostic::error(args_span, format!("{upper} requires {what}"))
            .with_hint(format!("write {upper} {what}"))
    };

    let command = match lower.as_str() {
        "from" => {
            let words: Vec<&str> = args.split_whitespace().collect();
            match words.as_slice() {
                [image] => Ok(Command::From {
                    image: image.to_string(),
                    name: None,
                }),
                [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => Ok(Command::From {
                    image: image.to_string(),
                    name: Some(name.to_string()),
                }),
                [] => Err(missing("an image, e.g. FROM busybox or FROM scratch")),
                _ => Err(Diagnostic::error(
                    args_span,
                    "FROM requires either one argument, or three: FROM <source> [AS <name>]",
                )),
            }
        }
        "run" | "cmd" => match maybe_json(args) {
            Err(e) => Err(Diagnostic::error(args_span, e)),
            Ok(_) if args.is_empty() && lower == "run" => Err(missing("a command")),
            Ok(cmd) => Ok(if lower == "run" {
                Command::Run { cmd }
            } else {
                Command::Cmd { cmd }
            }),
        },
        "copy" => {
            let (words, json) = match maybe_json(args) {
                Ok(CmdLine::Exec(words)) => (words, true),
                Ok(CmdLine::Shell(s)) => (
                    s.split_whitespace().map(str::to_string).collect::<Vec<_>>(),
                    false,
                ),
                Err(e) => return push(diags, Diagnostic::error(args_span, e)),
            };
            match words.split_last() {
                Some((dest, sources)) if !sources.is_empty() => Ok(Command::Copy {
                    sources: sources.to_vec(),
                    dest: dest.clone(),
                    json,
                }),
                _ => Err(Diagnostic::error(
                    args_span,
                    "COPY requires at least two arguments, but got fewer",
                )
                .with_hint("write COPY <src>... <dest>")),
            }
        }
        "env" => parse_env(args, escape).map_err(|m| Diagnostic::error(args_span, m)),
        "workdir" => {
            if args.is_empty() {
                Err(missing("exactly one argument, a path"))
            } else {
                Ok(Command::Workdir {
                    path: args.to_string(),
                })
            }
        }
        _ => Ok(Command::Unsupported {
            args: args.to_string(),
        }),
    };
    match command {
        Ok(command) if !bad => Some(Instruction {
            keyword: kw.to_string(),
            span: line.span,
            end_line: line.end_line,
            flags,
            command,
            original: text.to_string(),
        }),
        Ok(_) => None,
        Err(d) => push(diags, d),
    }
}

fn push(diags: &mut Vec<Diagnostic>, d: Diagnostic) -> Option<Instruction> {
    diags.push(d);
    None
}

/// Docker's exec-or-shell decision: a JSON array of strings is exec form, any other text
/// (invalid JSON included) is shell form, but a JSON array holding a non-string is an error.
pub(crate) fn maybe_json(args: &str) -> Result<CmdLine, String> {
    if args.starts_with('[')
        && let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(args)
    {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                serde_json::Value::String(s) => out.push(s),
                _ => return Err("JSON array must hold only strings".to_string()),
            }
        }
        return Ok(CmdLine::Exec(out));
    }
    Ok(CmdLine::Shell(args.to_string()))
}

/// Splits on whitespace outside quotes, keeping quotes and escapes (Docker's `parseWords`).
pub(crate) fn words_keeping_quotes(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                blank_ok = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    match chars.next() {
                        Some(n) => {
                            cur.push(c);
                            cur.push(n);
                        }
                        None => break,
                    }
                    continue;
                }
                cur.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    match chars.next() {
                        Some(n) => {
                            cur.push(c);
                            cur.push(n);
                        }
                        None => {
                            quote = None;
                        }
                    }
                    continue;
                }
                cur.push(c);
            }
        }
    }
    if blank_ok || !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn parse_env(args: &str, escape: char) -> Result<Command, String> {
    let words = words_keeping_quotes(args, escape);
    let Some(first) = words.first() else {
        return Err("ENV requires at least one argument".to_string());
    };
    if !first.contains('=') {
        let mut parts = args.splitn(2, char::is_whitespace);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().map(str::trim_start).unwrap_or_default();
        if value.is_empty() {
            return Err("ENV must have two arguments".to_string());
        }
        return Ok(Command::Env {
            pairs: vec![KeyValue {
                key: key.to_string(),
                value: value.to_string(),
                legacy: true,
            }],
        });
    }
    let mut pairs = Vec::with_capacity(words.len());
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        if k.is_empty() {
            return Err("ENV names can not be blank".to_string());
        }
        pairs.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
            legacy: false,
        });
    }
    Ok(Command::Env { pairs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_or_shell() {
        assert_eq!(
            maybe_json(r#"["a", "b c"]"#).unwrap(),
            CmdLine::Exec(vec!["a".into(), "b c".into()])
        );
        assert_eq!(
            maybe_json("['a']").unwrap(),
            CmdLine::Shell("['a']".into()),
            "single quotes are not JSON: shell form"
        );
        assert_eq!(
            maybe_json(r#"["a",]"#).unwrap(),
            CmdLine::Shell(r#"["a",]"#.into())
        );
        assert!(maybe_json("[1, 2]").is_err());
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            parse_env(r#"A=1 B="two words" C=x\ y"#, '\\').unwrap(),
            Command::Env {
                pairs: vec![
                    KeyValue {
                        key: "A".into(),
                        value: "1".into(),
                        legacy: false
                    },
                    KeyValue {
                        key: "B".into(),
                        value: "\"two words\"".into(),
                        legacy: false
                    },
                    KeyValue {
                        key: "C".into(),
                        value: "x\\ y".into(),
                        legacy: false
                    },
                ]
            }
        );
        assert_eq!(
            parse_env("KEY some value", '\\').unwrap(),
            Command::Env {
                pairs: vec![KeyValue {
                    key: "KEY".into(),
                    value: "some value".into(),
                    legacy: true
                }]
            }
        );
        assert!(parse_env("KEY", '\\').is_err());
        assert!(parse_env("=x", '\\').is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("chmodd", &["from", "chown", "chmod"]),
            Some("chmod")
        );
        assert_eq!(suggest("rnu", KNOWN), Some("run"));
        assert_eq!(suggest("zzzzzzzz", KNOWN), None);
    }
}
