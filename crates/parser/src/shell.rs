//! Shell-word expansion of ARG and ENV values, with the semantics of BuildKit's `shell` lexer.
//!
//! Handles `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v?msg}`,
//! `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`, single and double quotes
//! and the escape character. Quotes are removed (unless [`Lexer::raw_quotes`]); nothing is
//! executed. Patterns follow BuildKit: `*` and `?` become a regular expression (leftmost-first,
//! `.` not matching a newline), so `${v#*}` and friends give exactly BuildKit's results.

use std::collections::BTreeSet;

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
#[error("failed to process {word:?}: {message}")]
pub struct ShellError {
    /// The word as written.
    pub word: String,
    /// What is wrong with it.
    pub message: String,
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

    /// Expands `word` against `vars`.
    pub fn expand<V: Vars + ?Sized>(&self, word: &str, vars: &V) -> Result<Expanded, ShellError> {
        let mut st = State {
            chars: word.chars().collect(),
            pos: 0,
            lex: *self,
            raw_escapes: self.raw_escapes,
            vars,
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
            Err(message) => Err(ShellError {
                word: word.to_string(),
                message,
            }),
        }
    }
}

struct State<'a, V: ?Sized> {
    chars: Vec<char>,
    pos: usize,
    lex: Lexer,
    raw_escapes: bool,
    vars: &'a V,
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
        s.chars().for_each(|c| self.add_char(c));
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
                    result.push_str(&v);
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
                    out.push_str(&v);
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
        if all {
            Ok(re
                .replace_all(&value, regex::NoExpand(&replacement))
                .into_owned())
        } else {
            Ok(re
                .replace(&value, regex::NoExpand(&replacement))
                .into_owned())
        }
    }
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
