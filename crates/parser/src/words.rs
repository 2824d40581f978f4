//! Splitting an instruction's text the way BuildKit's parser does: the keyword, the
//! `--flag` words, whitespace-separated lists, quote-keeping words and JSON arrays.
//!
//! Every piece comes with its byte range in the logical line so errors can point at it.

use std::borrow::Cow;

use nom::bytes::complete::take_till1;
use nom::{IResult, Parser};

/// A piece of the logical line: its (processed) text and the byte range it came from.
///
/// The text borrows from the line whenever it is a plain slice of it (almost always); it is
/// owned only when quotes or escapes had to be removed (flags) or JSON was decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece<'a> {
    pub text: Cow<'a, str>,
    pub start: usize,
    pub end: usize,
}

impl<'a> Piece<'a> {
    /// A piece whose text is `text` as written.
    pub fn borrowed(text: &'a str, start: usize, end: usize) -> Self {
        Piece {
            text: Cow::Borrowed(text),
            start,
            end,
        }
    }

    /// The text before and after the first `c`, or `None` when there is no `c`. Borrowed text
    /// stays borrowed.
    pub fn split_once(&self, c: char) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
        match &self.text {
            Cow::Borrowed(t) => t
                .split_once(c)
                .map(|(a, b)| (Cow::Borrowed(a), Cow::Borrowed(b))),
            Cow::Owned(t) => t
                .split_once(c)
                .map(|(a, b)| (Cow::Owned(a.to_string()), Cow::Owned(b.to_string()))),
        }
    }
}

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]`.
pub(crate) fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// [`is_re_space`] on a byte (every such character is ASCII).
fn is_re_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | 0x0b | 0x0c | b'\r' | b' ')
}

fn keyword(i: &str) -> IResult<&str, &str> {
    take_till1(is_re_space).parse(i)
}

/// The parts of an instruction line.
#[derive(Debug)]
pub(crate) struct Split<'a> {
    pub keyword: Piece<'a>,
    pub flags: Vec<Piece<'a>>,
    /// The arguments after the flags, trimmed (byte range in the line).
    pub args_start: usize,
    pub args_end: usize,
}

/// BuildKit's `splitCommand` + `extractBuilderFlags`.
pub(crate) fn split_command(line: &str, escape: char) -> Split<'_> {
    let trimmed_start = line.len() - line.trim_start().len();
    let t = line.trim();
    let end = trimmed_start + t.len();
    let (rest, kw) = keyword(t).unwrap_or((t, ""));
    let kw_piece = Piece::borrowed(kw, trimmed_start, trimmed_start + kw.len());
    let after_kw = trimmed_start + kw.len();
    let rest_trimmed = rest.trim_start_matches(is_re_space);
    let rest_at = after_kw + (rest.len() - rest_trimmed.len());
    if rest.is_empty() {
        return Split {
            keyword: kw_piece,
            flags: Vec::new(),
            args_start: end,
            args_end: end,
        };
    }
    let (args_at, flags) = extract_flags(&line[rest_at..end], rest_at, escape);
    let args = &line[args_at..end];
    let a = args.trim_start();
    let args_start = args_at + (args.len() - a.len());
    let args_end = args_start + a.trim_end().len();
    Split {
        keyword: kw_piece,
        flags,
        args_start,
        args_end,
    }
}

/// Reads `--flag` words from the start of `s`; returns where the arguments start and the flags
/// (quotes removed, escapes applied). A bare `--` ends the flags.
fn extract_flags(s: &str, base: usize, escape: char) -> (usize, Vec<Piece<'_>>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    // The word being read is `s[word_start..pos]` while `plain`; once a quote or an escape
    // is met it is built in `buf` instead.
    fn text<'a>(
        s: &'a str,
        word_start: usize,
        end: usize,
        plain: bool,
        buf: &mut String,
    ) -> Cow<'a, str> {
        if plain {
            Cow::Borrowed(&s[word_start..end])
        } else {
            Cow::Owned(std::mem::take(buf))
        }
    }
    let mut words = Vec::new();
    // Most instructions have no flags: answer those without walking the line.
    if let Some(c) = s.chars().next()
        && !c.is_whitespace()
        && !s.starts_with("--")
    {
        return (base, words);
    }
    let mut phase = Phase::Spaces;
    let mut buf = String::new();
    let mut plain = true;
    let mut blank_ok = false;
    let mut word_start = 0;
    let mut it = s.char_indices();
    while let Some((pos, c)) = it.next() {
        match phase {
            Phase::Spaces => {
                if c.is_whitespace() {
                    continue;
                }
                if !(c == '-' && s[pos + 1..].starts_with('-')) {
                    return (base + pos, words);
                }
                phase = Phase::Word;
                word_start = pos;
                plain = true;
            }
            Phase::Word => {
                if c.is_whitespace() {
                    phase = Phase::Spaces;
                    let t = text(s, word_start, pos, plain, &mut buf);
                    if t == "--" {
                        return (base + pos, words);
                    }
                    if blank_ok || !t.is_empty() {
                        words.push(Piece {
                            text: t,
                            start: base + word_start,
                            end: base + pos,
                        });
                    }
                    buf.clear();
                    blank_ok = false;
                    continue;
                }
                if plain && (c == '\'' || c == '"' || c == escape) {
                    plain = false;
                    buf.push_str(&s[word_start..pos]);
                }
                if c == '\'' || c == '"' {
                    phase = Phase::Quote(c);
                    blank_ok = true;
                    continue;
                }
                if c == escape {
                    match it.next() {
                        Some((_, n)) => buf.push(n),
                        None => continue,
                    }
                    continue;
                }
                if !plain {
                    buf.push(c);
                }
            }
            Phase::Quote(q) => {
                if c == q {
                    phase = Phase::Word;
                    continue;
                }
                if c == escape {
                    match it.next() {
                        Some((_, n)) => buf.push(n),
                        None => {
                            phase = Phase::Word;
                            continue;
                        }
                    }
                    continue;
                }
                buf.push(c);
            }
        }
    }
    if phase != Phase::Spaces {
        let t = text(s, word_start, s.len(), plain, &mut buf);
        if t != "--" && (blank_ok || !t.is_empty()) {
            words.push(Piece {
                text: t,
                start: base + word_start,
                end: base + s.len(),
            });
        }
    }
    (base + s.len(), words)
}

/// BuildKit's `parseWords`: splits on whitespace outside quotes, keeping quotes and escapes.
///
/// Quotes and escapes are kept, so each word is a slice of `rest`; the only character ever
/// left out is an escape that ends `rest` (it escapes nothing).
pub(crate) fn parse_words(rest: &str, base: usize, escape: char) -> Vec<Piece<'_>> {
    let mut words = Vec::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut blank_ok = false;
    let mut start = 0;
    // Set when the last character was an escape with nothing after it.
    let mut dropped_escape = false;
    let mut it = rest.char_indices();
    while let Some((pos, c)) = it.next() {
        if !in_word {
            if c.is_whitespace() {
                continue;
            }
            in_word = true;
            start = pos;
        }
        match quote {
            None => {
                if c.is_whitespace() {
                    if blank_ok || pos > start {
                        words.push(Piece::borrowed(&rest[start..pos], base + start, base + pos));
                    }
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape && it.next().is_none() {
                    dropped_escape = true;
                }
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' && it.next().is_none() {
                    dropped_escape = true;
                }
            }
        }
    }
    let end = if dropped_escape {
        rest.len() - escape.len_utf8()
    } else {
        rest.len()
    };
    if in_word && (blank_ok || end > start) {
        words.push(Piece::borrowed(
            &rest[start..end],
            base + start,
            base + rest.len(),
        ));
    }
    words
}

/// BuildKit's `parseStringsWhitespaceDelimited`: splits on `[\t\v\f\r ]+`, no quoting.
pub(crate) fn split_whitespace(rest: &str, base: usize) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    // The separators are ASCII, so splitting on bytes keeps every piece on char boundaries.
    for (i, &b) in rest.as_bytes().iter().enumerate() {
        if is_re_space_byte(b) {
            if let Some(s) = start.take() {
                out.push(Piece::borrowed(&rest[s..i], base + s, base + i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(Piece::borrowed(&rest[s..], base + s, base + rest.len()));
    }
    out
}

/// What a JSON-array check found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Json {
    /// Not a JSON array: shell form.
    No,
    /// A JSON array of strings.
    Strings(Vec<String>),
    /// A JSON array holding something other than strings: an error in BuildKit.
    NotStrings,
}

/// BuildKit's `parseJSON`: an array of strings is exec form; invalid JSON is shell form; an
/// array holding other values is an error.
pub(crate) fn parse_json(rest: &str) -> Json {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Json::No;
    }
    // The common case, an array of strings, decodes without building a value per element;
    // anything else takes the general path below to tell non-strings from invalid JSON.
    if let Ok(items) = serde_json::from_str::<Vec<String>>(t) {
        return Json::Strings(items);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(t) {
        Ok(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Strings(out)
        }
        Err(e) if e.to_string().contains("recursion limit") && balanced(t) => Json::NotStrings,
        Err(_) => Json::No,
    }
}

/// True when the brackets of `t` (outside string literals) balance and the text ends with the
/// outermost `]`: a deeply nested array that Go's decoder would read to the end.
fn balanced(t: &str) -> bool {
    let mut depth: i64 = 0;
    let mut in_str = false;
    let mut esc = false;
    for (i, c) in t.char_indices() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return t[i + 1..].trim().is_empty();
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(p: &'a [Piece<'_>]) -> Vec<&'a str> {
        p.iter().map(|p| p.text.as_ref()).collect()
    }

    #[test]
    fn split_with_flags() {
        let line = "COPY --from=b --chown=\"a b\" x y";
        let s = split_command(line, '\\');
        assert_eq!(s.keyword.text, "COPY");
        assert_eq!(texts(&s.flags), vec!["--from=b", "--chown=a b"]);
        assert_eq!(&line[s.flags[1].start..s.flags[1].end], "--chown=\"a b\"");
        assert_eq!(&line[s.args_start..s.args_end], "x y");
        let s = split_command("COPY --doit=true -- foo /tmp/", '\\');
        assert_eq!(texts(&s.flags), vec!["--doit=true"]);
        let s = split_command("CMD --doit -- [ ]", '\\');
        assert_eq!(texts(&s.flags), vec!["--doit"]);
        let s = split_command("  RUN  ", '\\');
        assert_eq!(s.keyword.text, "RUN");
        assert_eq!(s.args_start, s.args_end);
    }

    #[test]
    fn words_keep_quotes() {
        let w = parse_words("foo bar 'abc xyz' \"a\\\"b\" c\\ d", 0, '\\');
        assert_eq!(
            texts(&w),
            vec!["foo", "bar", "'abc xyz'", "\"a\\\"b\"", "c\\ d"]
        );
        assert_eq!(texts(&parse_words("föo bàr", 0, '\\')), vec!["föo", "bàr"]);
        assert_eq!(texts(&parse_words("a ''", 0, '\\')), vec!["a", "''"]);
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            parse_json(r#"["a", "b c"]"#),
            Json::Strings(vec!["a".into(), "b c".into()])
        );
        assert_eq!(parse_json("['a']"), Json::No);
        assert_eq!(parse_json(r#"["a",]"#), Json::No);
        assert_eq!(parse_json("[1, 2]"), Json::NotStrings);
        assert_eq!(parse_json(r#"[["a"]]"#), Json::NotStrings);
        assert_eq!(parse_json("[]"), Json::Strings(vec![]));
        let deep = "[".repeat(500);
        assert_eq!(parse_json(&deep), Json::No);
    }
}
