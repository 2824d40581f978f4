//! Shell-word expansion of ARG and ENV values, with the semantics of BuildKit's `shell` lexer.
//!
//! Handles `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v?msg}`,
//! `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`, single and double quotes
//! and the escape character. Quotes are removed (unless [`Lexer::raw_quotes`]); nothing is
//! executed. Patterns follow BuildKit: `*` and `?` become a regular expression (leftmost-first,
//! `.` not matching a newline), so `${v#*}` and friends give exactly BuildKit's results.

use std::collections::BTreeSet;

/// The deepest nesting of `${…}` substitutions one word may have (`${a:-${b:-…}}` counts one
/// level per `${`). Real Dockerfiles nest two or three deep; the limit keeps the recursive
/// lexer far from the end of any thread's stack.
pub const MAX_EXPANSION_DEPTH: usize = 32;

/// The longest string, in bytes, that one expansion may build (1 MiB): the expanded word and
/// every intermediate value (a `${v:-word}` default, a replacement result).
pub const MAX_WORD_LEN: usize = 1 << 20;

/// The total bytes, 64 MiB, that the expansions of one Dockerfile may produce (see [`Budget`]):
/// what stops `ENV E1=${E0}${E0}` … doubling from filling memory.
pub const MAX_EXPANSION_TOTAL: usize = 64 << 20;

/// Which expansion limit an expansion crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// [`MAX_EXPANSION_DEPTH`].
    Depth,
    /// [`MAX_WORD_LEN`].
    WordLength,
    /// [`MAX_EXPANSION_TOTAL`].
    Total,
}

/// An allowance of expansion work shared by every expansion of one Dockerfile: each byte a
/// substitution copies into a result is charged to it.
#[derive(Clone, Debug)]
pub struct Budget {
    left: usize,
    spent: bool,
}

impl Budget {
    /// An allowance of `total` bytes.
    pub fn new(total: usize) -> Self {
        Budget {
            left: total,
            spent: false,
        }
    }

    /// True once a charge has failed: every later expansion fails too.
    pub fn spent(&self) -> bool {
        self.spent
    }

    /// Charges `bytes`; the error names the limit crossed.
    pub(crate) fn charge(&mut self, bytes: usize) -> Result<(), String> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                self.spent = true;
                Err(format!(
                    "variable expansion exceeds the limit of {} MiB for the whole Dockerfile \
                     (MAX_EXPANSION_TOTAL); reduce how often large variables are repeated",
                    MAX_EXPANSION_TOTAL >> 20
                ))
            }
        }
    }
}

impl Default for Budget {
    /// The allowance of one Dockerfile, [`MAX_EXPANSION_TOTAL`].
    fn default() -> Self {
        Budget::new(MAX_EXPANSION_TOTAL)
    }
}

/// Looks variables up by name.
pub trait Vars {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Vars for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Vars for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        <[(String, String)] as Vars>::get(self, name)
    }
}

impl Vars for std::collections::BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::BTreeMap::get(self, name).map(String::as_str)
    }
}

/// No variables at all.
pub struct NoVars;

impl Vars for NoVars {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// What an expansion produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The word with quotes removed and variables substituted.
    pub value: String,
    /// The word split on unquoted whitespace after substitution.
    pub words: Vec<String>,
    /// Variables referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables referenced but not set (for the UndefinedVar check).
    pub unset: BTreeSet<String>,
}

/// An expansion that cannot be done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {}: {message}", snippet(.word))]
pub struct ShellError {
    /// The word as written.
    pub word: String,
    /// What is wrong with it.
    pub message: String,
    /// The byte offset in `word` where the expansion stopped.
    pub offset: usize,
    /// The limit crossed, when that is what stopped it.
    pub limit: Option<Limit>,
}

/// The longest part of a word an error message quotes, in characters.
const SNIPPET_CHARS: usize = 80;

/// `word` quoted for an error message, cut after [`SNIPPET_CHARS`] characters.
fn snippet(word: &str) -> String {
    match word.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{:?}… ({} bytes in all)", &word[..cut], word.len()),
        None => format!("{word:?}"),
    }
}

/// The lexer, parameterized by the escape character (`\` or a backtick) and BuildKit's modes.
#[derive(Clone, Copy, Debug)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters.
    pub skip_quotes: bool,
}

impl Lexer {
    /// A lexer for files using `escape` as their escape character.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` against `vars`, with a budget of its own ([`MAX_EXPANSION_TOTAL`]).
    pub fn expand<V: Vars + ?Sized>(&self, word: &str, vars: &V) -> Result<Expanded, ShellError> {
        self.expand_within(word, vars, &mut Budget::default())
    }

    /// Expands `word` against `vars`, charging the bytes substitutions produce to `budget`.
    /// Fails past [`MAX_EXPANSION_DEPTH`] nested `${…}`, past [`MAX_WORD_LEN`] bytes in one
    /// value, or when the budget runs out.
    pub fn expand_within<V: Vars + ?Sized>(
        &self,
        word: &str,
        vars: &V,
        budget: &mut Budget,
    ) -> Result<Expanded, ShellError> {
        let mut st = State {
            chars: word.chars().collect(),
            pos: 0,
            depth: 0,
            lex: *self,
            raw_escapes: self.raw_escapes,
            vars,
            budget,
            limit: None,
            matched: BTreeSet::new(),
            unset: BTreeSet::new(),
        };
        match st.stop_on(None, self.raw_escapes) {
            Ok((value, words)) => Ok(Expanded {
                value,
                words,
                matched: st.matched,
                unset: st.unset,
            }),
            Err(message) => {
                let offset = st.chars[..st.pos.min(st.chars.len())]
                    .iter()
                    .map(|c| c.len_utf8())
                    .sum();
                Err(ShellError {
                    word: word.to_string(),
                    message,
                    offset,
                    limit: st.limit,
                })
            }
        }
    }
}

struct State<'a, V: ?Sized> {
    chars: Vec<char>,
    pos: usize,
    /// How many `${…}` enclose the current position.
    depth: usize,
    lex: Lexer,
    raw_escapes: bool,
    vars: &'a V,
    budget: &'a mut Budget,
    /// The limit that stopped the expansion, if one did.
    limit: Option<Limit>,
    matched: BTreeSet<String>,
    unset: BTreeSet<String>,
}

#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        // Runs without whitespace are copied whole: a long value costs one copy, not one call
        // per character.
        let mut rest = s;
        while let Some((i, c)) = rest.char_indices().find(|(_, c)| c.is_whitespace()) {
            if i > 0 {
                self.add_raw_string(&rest[..i]);
            }
            self.add_char(c);
            rest = &rest[i + c.len_utf8()..];
        }
        if !rest.is_empty() {
            self.add_raw_string(rest);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

const MISSING_BRACE: &str = "syntax error: missing '}'";

impl<V: Vars + ?Sized> State<'_, V> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Appends a substitution's result `v` to `out`, charging it to the budget and checking
    /// the length limit.
    fn append(&mut self, out: &mut String, v: &str) -> Result<(), String> {
        if let Err(e) = self.budget.charge(v.len()) {
            self.limit = Some(Limit::Total);
            return Err(e);
        }
        if let Err(e) = check_len(out.len() + v.len()) {
            self.limit = Some(Limit::WordLength);
            return Err(e);
        }
        out.push_str(v);
        Ok(())
    }

    fn var(&mut self, name: &str) -> Option<String> {
        match self.vars.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unset.insert(name.to_string());
                None
            }
        }
    }

    /// Processes until `stop` (consumed) or the end.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let v = self.dollar()?;
                    self.append(&mut result, &v)?;
                    words.add_string(&v);
                }
                '<' => {
                    let v = self.possible_heredoc();
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '\'' if !self.lex.skip_quotes => {
                    let v = self.single_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '"' if !self.lex.skip_quotes => {
                    let v = self.double_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                _ => {
                    self.next();
                    if c == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        let Some(n) = self.next() else { break };
                        words.add_raw_char(n);
                        result.push(n);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some(s) => Err(format!(
                "unexpected end of statement while looking for matching {s}"
            )),
            None => Ok((result, words.finish())),
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            out.push(c);
            self.next();
        }
        out
    }

    fn single_quote(&mut self) -> Result<String, String> {
        self.next();
        let mut out = String::new();
        if self.lex.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        self.next();
        let mut out = String::new();
        if self.lex.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    self.append(&mut out, &v)?;
                }
                Some(mut c) => {
                    self.next();
                    if c == self.lex.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lex.escape => {
                                c = n;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && is_digit(c) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return c.to_string();
            }
            if !c.is_alphabetic() && !is_digit(c) && c != '_' {
                break;
            }
            name.push(c);
            self.next();
        }
        name
    }

    fn dollar(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.var(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(MISSING_BRACE.into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        if self.depth >= MAX_EXPANSION_DEPTH {
            self.limit = Some(Limit::Depth);
            // The error is at the `$` of the `${` one too deep.
            self.pos = start;
            return Err(format!(
                "more than {MAX_EXPANSION_DEPTH} nested ${{…}} substitutions \
                 (MAX_EXPANSION_DEPTH); flatten the expression into several ARG or ENV steps"
            ));
        }
        self.depth += 1;
        let r = self.braced();
        self.depth -= 1;
        r
    }

    /// The rest of a `${…}` after the `{`.
    fn braced(&mut self) -> Result<String, String> {
        let name = self.name();
        let Some(mut c) = self.next() else {
            return Err(MISSING_BRACE.into());
        };
        let mut modifier = c.to_string();
        let mut null_is_unset = false;
        match c {
            '}' => {
                return Ok(match self.var(&name) {
                    Some(v) => v,
                    None if self.lex.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            '/' => return self.replace(&name),
            ':' => {
                null_is_unset = true;
                c = self.next().ok_or(MISSING_BRACE)?;
                modifier.push(c);
            }
            '+' | '-' | '?' | '#' | '%' => {}
            _ => return Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
        let raw = c == '#' || c == '%';
        if null_is_unset && raw {
            return Err(format!("unsupported modifier ({modifier}) in substitution"));
        }
        let (word, _) = self.stop_on(Some('}'), raw).map_err(|e| {
            if self.peek().is_none() {
                MISSING_BRACE.to_string()
            } else {
                e
            }
        })?;
        let value = self.var(&name);
        if self.lex.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty = null_is_unset && value.as_deref() == Some("");
        match c {
            '-' => Ok(match value {
                Some(v) if !empty => v,
                _ => word,
            }),
            '+' => Ok(match value {
                Some(_) if !empty => word,
                _ => String::new(),
            }),
            '?' => match value {
                None => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    }
                )),
                Some(_) if empty => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be empty"
                    } else {
                        &word
                    }
                )),
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                let (greedy, pattern) = match word.strip_prefix(c) {
                    Some(p) => (true, p.to_string()),
                    None => (false, word),
                };
                let value = value.unwrap_or_default();
                if c == '#' {
                    trim_prefix(&pattern, &value, greedy)
                } else {
                    trim_suffix(&pattern, &value, greedy)
                }
            }
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    fn replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let (pattern, _) = self.stop_on(Some('/'), true).map_err(|e| {
            if self.peek().is_none() {
                "syntax error: missing '/' in ${}".to_string()
            } else {
                e
            }
        })?;
        let (replacement, _) = self.stop_on(Some('}'), true).map_err(|e| {
            if self.peek().is_none() {
                MISSING_BRACE.to_string()
            } else {
                e
            }
        })?;
        let value = self.var(name);
        let Some(value) = value else {
            if self.lex.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let re = pattern_regex(&pattern, true, false)
            .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
        // Built piece by piece so that a replacement repeated once per match cannot grow past
        // the limits before they are checked.
        let mut out = String::new();
        let mut last = 0;
        for m in re.find_iter(&value) {
            self.append(&mut out, &value[last..m.start()])?;
            self.append(&mut out, &replacement)?;
            last = m.end();
            if !all {
                break;
            }
        }
        self.append(&mut out, &value[last..])?;
        Ok(out)
    }
}

/// Fails when a value of `len` bytes would be longer than [`MAX_WORD_LEN`].
fn check_len(len: usize) -> Result<(), String> {
    if len > MAX_WORD_LEN {
        return Err(format!(
            "the expanded value would be longer than the limit of {} MiB (MAX_WORD_LEN)",
            MAX_WORD_LEN >> 20
        ));
    }
    Ok(())
}

/// Go's `unicode.IsDigit`: decimal digits of any script.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// A shell pattern (`*`, `?`, `\` escapes) as a regular expression, as BuildKit builds it.
fn pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '*' => {
                out.push_str(star);
                continue;
            }
            '?' => {
                out.push('.');
                continue;
            }
            '\\' => {
                if matches!(it.peek(), Some('}' | '/')) {
                    continue;
                }
                out.push('\\');
                match it.next() {
                    Some(n @ ('*' | '?' | '\\')) => out.push(n),
                    Some(n) => return Err(format!("invalid escape '\\{n}'")),
                    None => return Err("invalid escape '\\'".into()),
                }
                continue;
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    regex::Regex::new(&out).map_err(|e| e.to_string())
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = pattern_regex(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Reverses a pattern keeping `\x` escapes in front of what they escape.
fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = vec![' '; p.len()];
    let last = p.len().saturating_sub(1);
    let mut i = 0;
    while i < p.len() {
        let out_idx = last - i;
        if p[i] == '\\' && i != last {
            out[out_idx - 1] = '\\';
            out[out_idx] = p[i + 1];
            i += 2;
        } else {
            out[out_idx] = p[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let rp = reverse_pattern(pattern);
    let rv: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&rp, &rv, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("KOREAN", "한국어"),
            ("NULL", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn ex(w: &str) -> Result<String, String> {
        Lexer::new('\\')
            .expand(w, &env())
            .map(|e| e.value)
            .map_err(|e| e.message)
    }

    /// BuildKit's `envVarTest` table (the `A` and `U` rows), transcribed: `None` means an error.
    #[test]
    fn buildkit_env_var_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("hello", Some("hello")),
            ("he'll'o", Some("hello")),
            ("he'llo", None),
            ("he\\'llo", Some("he'llo")),
            ("he\\\\'llo", None),
            ("abc\\tdef", Some("abctdef")),
            ("\"abc\\tdef\"", Some("abc\\tdef")),
            ("\"abc\\\\tdef\"", Some("abc\\tdef")),
            ("'abc\\tdef'", Some("abc\\tdef")),
            ("hello\\", Some("hello")),
            ("hello\\\\", Some("hello\\")),
            ("\"hello", None),
            ("\"hello\\\"", None),
            ("\"hel'lo\"", Some("hel'lo")),
            ("'hello", None),
            ("'hello\\'", Some("hello\\")),
            ("'hello\\there'", Some("hello\\there")),
            ("'hello\\\\there'", Some("hello\\\\there")),
            ("\"''\"", Some("''")),
            ("$.", Some("$.")),
            ("he$1x", Some("hex")),
            ("he$.x", Some("he$.x")),
            ("he$pwd.", Some("he.")),
            ("he$PWD", Some("he/home")),
            ("he\\$PWD", Some("he$PWD")),
            ("he\\\\$PWD", Some("he\\/home")),
            ("\"he\\$PWD\"", Some("he$PWD")),
            ("\"he\\\\$PWD\"", Some("he\\/home")),
            ("\\${}", Some("${}")),
            ("\\${}aaa", Some("${}aaa")),
            ("he\\${}", Some("he${}")),
            ("he\\${}xx", Some("he${}xx")),
            ("${}", None),
            ("${}aaa", None),
            ("he${}", None),
            ("he${}xx", None),
            ("he${hi}", Some("he")),
            ("he${hi}xx", Some("hexx")),
            ("he${PWD}", Some("he/home")),
            ("he${.}", None),
            ("he${XXX:-000}xx", Some("he000xx")),
            ("he${PWD:-000}xx", Some("he/homexx")),
            ("he${XXX:-$PWD}xx", Some("he/homexx")),
            ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
            ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
            ("he${XXX:YYY}", None),
            ("he${XXX?}", None),
            ("he${XXX:?}", None),
            ("he${PWD?}", Some("he/home")),
            ("he${PWD:?}", Some("he/home")),
            ("he${NULL?}", Some("he")),
            ("he${NULL:?}", None),
            ("he${XXX:+${PWD}}xx", Some("hexx")),
            ("he${PWD:+${XXX}}xx", Some("hexx")),
            ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
            ("he${XXX:+000}xx", Some("hexx")),
            ("he${PWD:+000}xx", Some("he000xx")),
            ("'he${XX}'", Some("he${XX}")),
            ("\"he${PWD}\"", Some("he/home")),
            ("\"he'$PWD'\"", Some("he'/home'")),
            ("\"$PWD\"", Some("/home")),
            ("'$PWD'", Some("$PWD")),
            ("'\\$PWD'", Some("\\$PWD")),
            ("'\"hello\"'", Some("\"hello\"")),
            ("'he\\$PWD'", Some("he\\$PWD")),
            ("he${PWD", None),
            ("he${PWD:=000}xx", None),
            ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
            ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
            ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
            ("안녕하세요", Some("안녕하세요")),
            ("안'녕'하세요", Some("안녕하세요")),
            ("안'녕하세요", None),
            ("안녕\\'하세요", Some("안녕'하세요")),
            ("안녕$KOREAN", Some("안녕한국어")),
            ("${{aaa}", None),
            ("${aaa}}", Some("}")),
            ("${aaa", None),
            ("${{aaa:-bbb}", None),
            ("${aaa:-bbb}}", Some("bbb}")),
            ("${aaa:-bbb", None),
            ("${aaa:-bbb}", Some("bbb")),
            ("${aaa:-${bbb:-ccc}}", Some("ccc")),
            ("${aaa:-bbb ${foo}", None),
            ("${aaa:-bbb {foo}", Some("bbb {foo")),
            ("${:}", None),
            ("${:-bbb}", None),
            ("${:+bbb}", None),
            ("$1", Some("")),
            ("${1:-bbb}", Some("bbb")),
            ("${9:+bbb}", Some("")),
            ("$999aaa", Some("aaa")),
            ("${999:-bbb}aaa", Some("bbbaaa")),
            ("$001aaa", Some("aaa")),
            ("${001:+bbb}aaa", Some("aaa")),
            ("$@", Some("")),
            ("$@@@", Some("@@")),
            ("${@:-bbb}aaa", Some("bbbaaa")),
            ("$*", Some("")),
            ("${#}", Some("")),
            ("${#:-bbb}", Some("bbb")),
            ("${?:+bbb}", Some("")),
            ("$-", Some("")),
            ("$$", Some("")),
            ("${$:-bbb}", Some("bbb")),
            ("$!", Some("")),
            ("${0}", Some("")),
            ("${0:-bbb}", Some("bbb")),
        ];
        for (input, want) in cases {
            let got = ex(input);
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
                None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
            }
        }
    }

    #[test]
    fn patterns() {
        let cases: &[(&str, &str)] = &[
            ("${PWD#/}", "home"),
            ("${PWD#*o}", "me"),
            ("${PWD##*o}", "me"),
            ("${SHELL%?h}", "ba"),
            ("${SHELL%%a*}", "b"),
            ("${SHELL%a*}", "b"),
            ("${SHELL/a/o}", "bosh"),
            ("${SHELL//[a/o}", "bash"),
            ("${PWD//o/0}", "/h0me"),
            ("${SHELL/#b/o}", "bash"),
            ("${SHELL#\\*}", "bash"),
        ];
        for (input, want) in cases {
            assert_eq!(ex(input).as_deref(), Ok(*want), "input {input:?}");
        }
        assert!(ex("${SHELL#\\x}").is_err());
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
    }

    /// BuildKit's `wordsTest` table, transcribed.
    #[test]
    fn buildkit_words_table() {
        let mut envs: Vec<(String, String)> = Vec::new();
        let rows: &[&str] = &[
            "hello | hello",
            "hello${hi}bye | hellobye",
            "ENV hi=hi",
            "hello${hi}bye | hellohibye",
            "ENV space=abc  def",
            "hello${space}bye | helloabc,defbye",
            "hello\"${space}\"bye | helloabc  defbye",
            "hello \"${space}\"bye | hello,abc  defbye",
            "ENV leading=  ab c",
            "hello${leading}def | hello,ab,cdef",
            "hello\"${leading}\" def | hello  ab c,def",
            "hello\"${leading}\" | hello  ab c",
            "hello${leading} | hello,ab,c",
            "ENV trailing=ab c   ",
            "hello${trailing} | helloab,c",
            "hello${trailing}d | helloab,c,d",
            "hello\"${trailing}\"d | helloab c   d",
            "hello there     | hello,there",
            "hello\\ there | hello there",
            "hello\" there | error",
            "hello\\\" there | hello\",there",
            "hello\"\\\\there\" | hello\\there",
            "hello\"\\there\" | hello\\there",
            "hello'\\\\there' | hello\\\\there",
            "hello'\\there' | hello\\there",
            "hello'$there' | hello$there",
        ];
        for row in rows {
            if let Some(e) = row.strip_prefix("ENV ") {
                let (k, v) = e.split_once('=').unwrap();
                envs.push((k.into(), v.into()));
                continue;
            }
            let (input, want) = row.split_once('|').unwrap();
            let want: Vec<&str> = want.trim_start().split(',').collect();
            let got = match Lexer::new('\\').expand(input.trim(), &envs) {
                Ok(e) => e.words,
                Err(_) => vec!["error".into()],
            };
            assert_eq!(got, want, "row {row:?}");
        }
    }

    #[test]
    fn raw_modes_and_unset_tracking() {
        let mut l = Lexer::new('\\');
        l.raw_quotes = true;
        l.skip_unset = true;
        let e = l
            .expand("echo \"$PWD\" '$X' $NOPE ${NOPE:-d}", &env())
            .unwrap();
        assert_eq!(e.value, "echo \"/home\" '$X' $NOPE ${NOPE:-d}");
        let e = Lexer::new('\\')
            .expand("a \"b c\" $NOPE $PWD", &env())
            .unwrap();
        assert_eq!(e.words, vec!["a", "b c", "/home"]);
        assert!(e.unset.contains("NOPE"));
        assert!(e.matched.contains("PWD"));
        let e = Lexer::new('`').expand("a`$b", &env()).unwrap();
        assert_eq!(e.value, "a$b");
    }

    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    /// Issue 15 #4: nesting recursed once per `${`, overflowing the stack at 3,000 levels.
    #[test]
    fn nesting_past_the_depth_limit_is_an_error_at_the_dollar() {
        for (open, close) in [("${a:-", "}"), ("\"${a:-", "}\""), ("'q'${a:-", "}")] {
            for depth in [MAX_EXPANSION_DEPTH + 1, 3_000, 100_000] {
                let word = open.repeat(depth) + "x" + &close.repeat(depth);
                let e = on_small_stack(move || Lexer::new('\\').expand(&word, &env())).unwrap_err();
                assert_eq!(e.limit, Some(Limit::Depth), "{e}");
                let at = open.len() * MAX_EXPANSION_DEPTH + open.find('$').unwrap();
                assert_eq!(e.offset, at, "{open}");
                assert!(e.to_string().len() < 300, "{e}");
            }
            let word = open.repeat(MAX_EXPANSION_DEPTH) + "x" + &close.repeat(MAX_EXPANSION_DEPTH);
            assert!(on_small_stack(move || ex(&word)).is_ok());
        }
    }

    /// Issue 15 #5: values doubled without bound.
    #[test]
    fn values_longer_than_the_word_limit_are_an_error() {
        let big: Vec<(String, String)> = vec![("B".into(), "b".repeat(MAX_WORD_LEN / 2))];
        let lex = Lexer::new('\\');
        assert_eq!(lex.expand("$B$B", &big).unwrap().value.len(), MAX_WORD_LEN);
        let e = lex.expand("$B$B$B", &big).unwrap_err();
        assert_eq!(e.limit, Some(Limit::WordLength));
        assert!(e.message.contains("1 MiB"), "{e}");
        // Inside a default, in quotes, and through a replacement repeated per match.
        assert!(lex.expand("${X:-$B$B$B}", &big).is_err());
        assert!(lex.expand("\"$B$B-$B\"", &big).is_err());
        let small: Vec<(String, String)> = vec![
            ("A".into(), "a".repeat(2_000)),
            ("R".into(), "r".repeat(1_000)),
        ];
        let e = lex.expand("${A//a/$R}", &small).unwrap_err();
        assert_eq!(e.limit, Some(Limit::WordLength));
        assert_eq!(lex.expand("${A/a/$R}", &small).unwrap().value.len(), 2_999);
    }

    #[test]
    fn a_shared_budget_stops_repeated_expansions() {
        let vars: Vec<(String, String)> = vec![("V".into(), "v".repeat(1_000))];
        let lex = Lexer::new('\\');
        let mut budget = Budget::new(10_000);
        for _ in 0..10 {
            lex.expand_within("$V", &vars, &mut budget).unwrap();
        }
        assert!(!budget.spent());
        let e = lex.expand_within("$V", &vars, &mut budget).unwrap_err();
        assert_eq!(e.limit, Some(Limit::Total));
        assert!(e.message.contains("64 MiB"), "{e}");
        assert!(budget.spent());
        assert!(lex.expand_within("plain", &vars, &mut budget).is_ok());
    }

    #[test]
    fn long_words_are_cut_in_error_messages() {
        let e = ex(&format!("'{}", "w".repeat(10_000))).unwrap_err();
        let shown = ShellError {
            word: format!("'{}", "w".repeat(10_000)),
            message: e,
            offset: 0,
            limit: None,
        }
        .to_string();
        assert!(shown.len() < 300, "{shown}");
        assert!(shown.contains("10001 bytes in all"), "{shown}");
    }

    #[test]
    fn error_messages() {
        assert_eq!(ex("${XXX:?must be set}").unwrap_err(), "XXX: must be set");
        assert_eq!(
            ex("${XXX?}").unwrap_err(),
            "XXX: is not allowed to be unset"
        );
        assert_eq!(ex("${PWD").unwrap_err(), MISSING_BRACE);
        assert_eq!(
            ex("'abc").unwrap_err(),
            "unexpected end of statement while looking for matching single-quote"
        );
    }
}
