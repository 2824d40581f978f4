//! BuildKit's parser layer: an instruction line to a node (keyword, raw flags, arguments split
//! the way that instruction splits them). The typed layer in `instruction` builds on it.

use std::borrow::Cow;

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

/// Every instruction: its keyword in lower and upper case, and how its arguments split.
pub(crate) const INSTRUCTIONS: &[(&str, &str, Kind)] = &[
    ("add", "ADD", Kind::JsonOrList),
    ("arg", "ARG", Kind::Words),
    ("cmd", "CMD", Kind::JsonOrText),
    ("copy", "COPY", Kind::JsonOrList),
    ("entrypoint", "ENTRYPOINT", Kind::JsonOrText),
    ("env", "ENV", Kind::NameValue),
    ("expose", "EXPOSE", Kind::List),
    ("from", "FROM", Kind::List),
    ("healthcheck", "HEALTHCHECK", Kind::Health),
    ("label", "LABEL", Kind::NameValue),
    ("maintainer", "MAINTAINER", Kind::Text),
    ("onbuild", "ONBUILD", Kind::Sub),
    ("run", "RUN", Kind::JsonOrText),
    ("shell", "SHELL", Kind::JsonOrText),
    ("stopsignal", "STOPSIGNAL", Kind::Text),
    ("user", "USER", Kind::Text),
    ("volume", "VOLUME", Kind::JsonOrList),
    ("workdir", "WORKDIR", Kind::Text),
];

/// The instruction `kw` (any case) names: its lowercase and uppercase keyword and its kind;
/// `("", "", Kind::Unknown)` when it is not an instruction.
pub(crate) fn instruction_of(kw: &str) -> (&'static str, &'static str, Kind) {
    INSTRUCTIONS
        .iter()
        .find(|(lower, _, _)| lower.eq_ignore_ascii_case(kw))
        .copied()
        .unwrap_or(("", "", Kind::Unknown))
}

/// A `k=v` (or legacy `k v`) pair with its pieces.
#[derive(Clone, Debug)]
pub(crate) struct Pair<'a> {
    pub key: Piece<'a>,
    pub value: Piece<'a>,
    pub legacy: bool,
}

/// A parsed node; its pieces borrow from the line it was parsed from.
#[derive(Clone, Debug)]
pub(crate) struct Node<'a> {
    pub keyword: Piece<'a>,
    /// The keyword in lower case (`""` when it is not an instruction).
    pub lower: &'static str,
    /// The keyword in upper case (`""` when it is not an instruction).
    pub upper: &'static str,
    pub kind: Kind,
    pub flags: Vec<Piece<'a>>,
    /// The arguments (for JSON arrays each piece spans the whole array).
    pub args: Vec<Piece<'a>>,
    /// The argument of kinds that take the whole text as one (shell-form commands, `Text`
    /// kinds), kept out of `args` (which stays empty) to spare a list for one piece.
    pub whole: Option<Piece<'a>>,
    pub pairs: Vec<Pair<'a>>,
    /// The arguments were a JSON array.
    pub json: bool,
    /// ONBUILD's instruction.
    pub sub: Option<Box<Node<'a>>>,
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
pub(crate) fn parse_node<'a>(
    text: &'a str,
    start: usize,
    end: usize,
    escape: char,
) -> Result<Node<'a>, NodeError> {
    parse_node_at(text, start, end, escape, false)
}

/// [`parse_node`]; `nested` is set for ONBUILD's instruction. Nesting stops there: the
/// instruction after `ONBUILD ONBUILD` is never parsed (that chaining is an error anyway), so
/// `ONBUILD ONBUILD …` repeated any number of times recurses once.
fn parse_node_at<'a>(
    text: &'a str,
    start: usize,
    end: usize,
    escape: char,
    nested: bool,
) -> Result<Node<'a>, NodeError> {
    let line = &text[start..end];
    let split = words::split_command(line, escape);
    let shift = |mut p: Piece<'a>| {
        p.start += start;
        p.end += start;
        p
    };
    let keyword = shift(split.keyword);
    let flags: Vec<Piece> = split.flags.into_iter().map(shift).collect();
    let a0 = start + split.args_start;
    let a1 = start + split.args_end;
    let rest = &text[a0..a1];
    let (lower, upper, kind) = instruction_of(&keyword.text);
    let mut node = Node {
        keyword,
        lower,
        upper,
        kind,
        flags,
        args: Vec::new(),
        whole: None,
        pairs: Vec::new(),
        json: false,
        sub: None,
        args_start: a0,
        args_end: a1,
    };
    let whole = |r| Piece::borrowed(r, a0, a1);
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
                    Json::No => node.whole = Some(whole(rest)),
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
                node.whole = Some(whole(rest));
            }
        }
        Kind::Words => node.args = words::parse_words(rest, a0, escape),
        Kind::NameValue => node.pairs = name_values(node.lower, rest, a0, escape)?,
        Kind::Health => {
            let sep = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            if sep > 0 {
                node.args.push(Piece::borrowed(&rest[..sep], a0, a0 + sep));
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
                        Json::No => node.args.push(Piece::borrowed(after, at, a1)),
                    }
                }
            }
        }
        Kind::Sub => {
            if !rest.is_empty() && !nested {
                let sub = parse_node_at(text, a0, a1, escape, true)?;
                node.json = sub.json;
                node.sub = Some(Box::new(sub));
            }
        }
    }
    Ok(node)
}

fn whole_str(s: String, start: usize, end: usize) -> Piece<'static> {
    Piece {
        text: Cow::Owned(s),
        start,
        end,
    }
}

/// BuildKit's `parseNameVal`.
fn name_values<'a>(
    keyword: &str,
    rest: &'a str,
    base: usize,
    escape: char,
) -> Result<Vec<Pair<'a>>, NodeError> {
    let upper = || keyword.to_ascii_uppercase();
    let ws = words::parse_words(rest, base, escape);
    let Some(first) = ws.first() else {
        return Ok(Vec::new());
    };
    if !first.text.contains('=') {
        let mut parts = words::split_whitespace(rest, base).into_iter();
        let Some(key) = parts.next() else {
            return Ok(Vec::new());
        };
        let Some(second) = parts.next() else {
            let upper = upper();
            return Err(NodeError {
                message: format!("{upper} must have two arguments"),
                hint: Some(format!("write {upper} {}=value", key.text)),
                start: key.start,
                end: key.end,
            });
        };
        let value = Piece::borrowed(
            &rest[second.start - base..],
            second.start,
            base + rest.len(),
        );
        return Ok(vec![Pair {
            key,
            value,
            legacy: true,
        }]);
    }
    let mut out = Vec::with_capacity(ws.len());
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            let upper = upper();
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
                text: k,
                start: w.start,
                end: key_end,
            },
            value: Piece {
                text: v,
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
        let f: Vec<String> = node.flags.iter().map(|p| p.text.to_string()).collect();
        s.push(' ');
        s.push_str(&gofmt::quote_list(&f));
    }
    if let Some(sub) = &node.sub {
        s.push_str(" (");
        s.push_str(&dump(sub));
        s.push(')');
        return s;
    }
    for a in node.whole.iter().chain(&node.args) {
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
