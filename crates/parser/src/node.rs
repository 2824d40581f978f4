//! BuildKit's parser layer: an instruction line to a node (keyword, raw flags, arguments split
//! the way that instruction splits them). The typed layer in `instruction` builds on it.

use crate::gofmt;
use crate::words::{self, Json, Piece};

/// How an instruction's arguments are split (BuildKit's dispatch table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// ADD, COPY, VOLUME: a JSON array, or whitespace-separated words.
    JsonOrList,
    /// ARG: quote-aware words.
    Words,
    /// CMD, ENTRYPOINT, RUN, SHELL: a JSON array, or the whole text.
    JsonOrText,
    /// ENV, LABEL: `k=v` pairs or the legacy `k v`.
    NameValue,
    /// EXPOSE, FROM: whitespace-separated words.
    List,
    /// HEALTHCHECK: a type word then a command.
    Health,
    /// MAINTAINER, STOPSIGNAL, USER, WORKDIR: the whole text.
    Text,
    /// ONBUILD: another instruction.
    Sub,
    /// Not an instruction.
    Unknown,
}

/// The kind for a lowercase keyword.
pub(crate) fn kind_of(keyword: &str) -> Kind {
    match keyword {
        "add" | "copy" | "volume" => Kind::JsonOrList,
        "arg" => Kind::Words,
        "cmd" | "entrypoint" | "run" | "shell" => Kind::JsonOrText,
        "env" | "label" => Kind::NameValue,
        "expose" | "from" => Kind::List,
        "healthcheck" => Kind::Health,
        "maintainer" | "stopsignal" | "user" | "workdir" => Kind::Text,
        "onbuild" => Kind::Sub,
        _ => Kind::Unknown,
    }
}

/// The lowercase keyword for `kw` (any case), or `""` when it is not an instruction.
pub(crate) fn lower_keyword(kw: &str) -> &'static str {
    const LOWER: &[&str] = &[
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
    LOWER
        .iter()
        .find(|k| k.eq_ignore_ascii_case(kw))
        .copied()
        .unwrap_or("")
}

/// The uppercase name of a lowercase keyword.
pub(crate) fn upper_keyword(lower: &str) -> &'static str {
    KEYWORDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(lower))
        .copied()
        .unwrap_or("")
}

/// Every instruction keyword, upper case.
pub(crate) const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A `k=v` (or legacy `k v`) pair with its pieces.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub key: Piece,
    pub value: Piece,
    pub legacy: bool,
}

/// A parsed node.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub keyword: Piece,
    /// The keyword in lower case (`""` when it is not an instruction).
    pub lower: &'static str,
    pub kind: Kind,
    pub flags: Vec<Piece>,
    /// The arguments (for JSON arrays each piece spans the whole array).
    pub args: Vec<Piece>,
    pub pairs: Vec<Pair>,
    /// The arguments were a JSON array.
    pub json: bool,
    /// ONBUILD's instruction.
    pub sub: Option<Box<Node>>,
    /// The arguments' text range (after flags).
    pub args_start: usize,
    pub args_end: usize,
}

/// A node-level error: message and the text range it is about.
#[derive(Clone, Debug)]
pub(crate) struct NodeError {
    pub message: String,
    pub hint: Option<String>,
    pub start: usize,
    pub end: usize,
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// BuildKit's `newNodeFromLine` on `text[start..end]` (offsets stay relative to `text`).
pub(crate) fn parse_node(
    text: &str,
    start: usize,
    end: usize,
    escape: char,
) -> Result<Node, NodeError> {
    let line = &text[start..end];
    let split = words::split_command(line, escape);
    let shift = |mut p: Piece| {
        p.start += start;
        p.end += start;
        p
    };
    let keyword = shift(split.keyword);
    let flags: Vec<Piece> = split.flags.into_iter().map(shift).collect();
    let a0 = start + split.args_start;
    let a1 = start + split.args_end;
    let rest = &text[a0..a1];
    let lower = lower_keyword(&keyword.text);
    let kind = kind_of(lower);
    let mut node = Node {
        keyword,
        lower,
        kind,
        flags,
        args: Vec::new(),
        pairs: Vec::new(),
        json: false,
        sub: None,
        args_start: a0,
        args_end: a1,
    };
    let whole = |r: &str| Piece {
        text: r.to_string(),
        start: a0,
        end: a1,
    };
    let not_strings = || NodeError {
        message: NOT_STRINGS.into(),
        hint: Some("quote every element, e.g. [\"sh\", \"-c\", \"echo 1\"]".into()),
        start: a0,
        end: a1,
    };
    match kind {
        Kind::Unknown => {}
        Kind::JsonOrText => {
            if !rest.is_empty() {
                match words::parse_json(rest) {
                    Json::Strings(items) => {
                        node.json = true;
                        node.args = items.into_iter().map(|s| whole_str(s, a0, a1)).collect();
                    }
                    Json::NotStrings => return Err(not_strings()),
                    Json::No => node.args.push(whole(rest)),
                }
            }
        }
        Kind::JsonOrList => match words::parse_json(rest) {
            Json::Strings(items) => {
                node.json = true;
                node.args = items.into_iter().map(|s| whole_str(s, a0, a1)).collect();
            }
            Json::NotStrings => return Err(not_strings()),
            Json::No => node.args = words::split_whitespace(rest, a0),
        },
        Kind::List => node.args = words::split_whitespace(rest, a0),
        Kind::Text => {
            if !rest.is_empty() {
                node.args.push(whole(rest));
            }
        }
        Kind::Words => node.args = words::parse_words(rest, a0, escape),
        Kind::NameValue => node.pairs = name_values(node.lower, rest, a0, escape)?,
        Kind::Health => {
            let sep = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            if sep > 0 {
                node.args.push(Piece {
                    text: rest[..sep].to_string(),
                    start: a0,
                    end: a0 + sep,
                });
                let after = rest[sep..].trim_start();
                let at = a1 - after.len();
                if !after.is_empty() {
                    match words::parse_json(after) {
                        Json::Strings(items) => {
                            node.json = true;
                            node.args
                                .extend(items.into_iter().map(|s| whole_str(s, at, a1)));
                        }
                        Json::NotStrings => {
                            return Err(NodeError {
                                start: at,
                                ..not_strings()
                            });
                        }
                        Json::No => node.args.push(Piece {
                            text: after.to_string(),
                            start: at,
                            end: a1,
                        }),
                    }
                }
            }
        }
        Kind::Sub => {
            if !rest.is_empty() {
                let sub = parse_node(text, a0, a1, escape)?;
                node.json = sub.json;
                node.sub = Some(Box::new(sub));
            }
        }
    }
    Ok(node)
}

fn whole_str(s: String, start: usize, end: usize) -> Piece {
    Piece {
        text: s,
        start,
        end,
    }
}

/// BuildKit's `parseNameVal`.
fn name_values(
    keyword: &str,
    rest: &str,
    base: usize,
    escape: char,
) -> Result<Vec<Pair>, NodeError> {
    let upper = keyword.to_ascii_uppercase();
    let ws = words::parse_words(rest, base, escape);
    let Some(first) = ws.first() else {
        return Ok(Vec::new());
    };
    if !first.text.contains('=') {
        let parts = words::split_whitespace(rest, base);
        let Some(key) = parts.first().cloned() else {
            return Ok(Vec::new());
        };
        let Some(second) = parts.get(1) else {
            return Err(NodeError {
                message: format!("{upper} must have two arguments"),
                hint: Some(format!("write {upper} {}=value", key.text)),
                start: key.start,
                end: key.end,
            });
        };
        let value = Piece {
            text: rest[second.start - base..].to_string(),
            start: second.start,
            end: base + rest.len(),
        };
        return Ok(vec![Pair {
            key,
            value,
            legacy: true,
        }]);
    }
    let mut out = Vec::with_capacity(ws.len());
    for w in ws {
        let Some((k, v)) = w.text.split_once('=') else {
            return Err(NodeError {
                message: format!(
                    "Syntax error - can't find = in {}. Must be of the form: name=value",
                    gofmt::quote(&w.text)
                ),
                hint: Some(format!(
                    "quote values that hold spaces, e.g. {upper} key=\"a b\""
                )),
                start: w.start,
                end: w.end,
            });
        };
        let key_end = w.start + raw_len_of_prefix(&w, k.len());
        out.push(Pair {
            key: Piece {
                text: k.to_string(),
                start: w.start,
                end: key_end,
            },
            value: Piece {
                text: v.to_string(),
                start: (key_end + 1).min(w.end),
                end: w.end,
            },
            legacy: false,
        });
    }
    Ok(out)
}

/// Words keep their source text, so the prefix length in the word is its length in the source.
fn raw_len_of_prefix(w: &Piece, n: usize) -> usize {
    n.min(w.end - w.start)
}

/// Formats a node the way BuildKit's `Node.Dump` does (one line, no trailing newline).
pub(crate) fn dump(node: &Node) -> String {
    let mut s = if node.lower.is_empty() {
        node.keyword.text.to_lowercase()
    } else {
        node.lower.to_string()
    };
    if !node.flags.is_empty() {
        let f: Vec<String> = node.flags.iter().map(|p| p.text.clone()).collect();
        s.push(' ');
        s.push_str(&gofmt::quote_list(&f));
    }
    if let Some(sub) = &node.sub {
        s.push_str(" (");
        s.push_str(&dump(sub));
        s.push(')');
        return s;
    }
    for a in &node.args {
        s.push(' ');
        s.push_str(&gofmt::quote(&a.text));
    }
    for p in &node.pairs {
        s.push(' ');
        s.push_str(&gofmt::quote(&p.key.text));
        s.push(' ');
        s.push_str(&gofmt::quote(&p.value.text));
        s.push(' ');
        s.push_str(if p.legacy { "\"\"" } else { "\"=\"" });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(line: &str) -> String {
        match parse_node(line, 0, line.len(), '\\') {
            Ok(n) => dump(&n),
            Err(e) => format!("error: {}", e.message),
        }
    }

    #[test]
    fn dumps_like_buildkit() {
        assert_eq!(
            d("COPY --user=me foo /tmp/"),
            "copy [\"--user=me\"] \"foo\" \"/tmp/\""
        );
        assert_eq!(d("CMD --doit -- [ ]"), "cmd [\"--doit\"]");
        assert_eq!(d("HEALTHCHECK   CMD   a b"), "healthcheck \"CMD\" \"a b\"");
        assert_eq!(d("HEALTHCHECK"), "healthcheck");
        assert_eq!(d("ENV name value"), "env \"name\" \"value\" \"\"");
        assert_eq!(
            d("ENV a=1 b=\"x y\""),
            "env \"a\" \"1\" \"=\" \"b\" \"\\\"x y\\\"\" \"=\""
        );
        assert_eq!(d("ONBUILD RUN echo hi"), "onbuild (run \"echo hi\")");
        assert_eq!(d("CMD [\"a\", 1]"), format!("error: {NOT_STRINGS}"));
        assert_eq!(d("ENV x"), "error: ENV must have two arguments");
        assert_eq!(d("FROM  a   AS b"), "from \"a\" \"AS\" \"b\"");
    }
}
