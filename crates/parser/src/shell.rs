//! Shell-word expansion of ARG and ENV values, with the semantics of BuildKit's `shell` lexer.
//!
//! Handles `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v?msg}`,
//! `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`, single and double quotes
//! and the escape character. Quotes are removed; nothing is executed.

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

/// What an expansion produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The word with quotes removed and variables substituted.
    pub value: String,
    /// The word split on unquoted whitespace after substitution.
    pub words: Vec<String>,
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

/// The lexer, parameterized by the escape character (`\` or a backtick).
#[derive(Clone, Copy, Debug)]
pub struct Lexer {
    escape: char,
}

impl Lexer {
    /// A lexer for files using `escape` as their escape character.
    pub fn new(escape: char) -> Self {
        Lexer { escape }
    }

    /// Expands `word` against `vars`.
    pub fn expand<V: Vars + ?Sized>(&self, word: &str, vars: &V) -> Result<Expanded, ShellError> {
        let mut st = State {
            chars: word.chars().collect(),
            pos: 0,
            escape: self.escape,
            vars,
            unset: BTreeSet::new(),
        };
        match st.stop_on(None, false) {
            Ok((value, words)) => Ok(Expanded {
                value,
                words,
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
    escape: char,
    vars: &'a V,
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
            Some(v) => Some(v.to_string()),
            None => {
                self.unset.insert(name.to_string());
                None
            }
        }
    }

    /// Processes until `stop` (consumed) or the end; `raw_escapes` keeps escape characters.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
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
                '\'' => {
                    let v = self.single_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '"' => {
                    let v = self.double_quote(raw_escapes)?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                _ => {
                    self.next();
                    if c == self.escape {
                        if raw_escapes {
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

    fn single_quote(&mut self) -> Result<String, String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self, raw_escapes: bool) -> Result<String, String> {
        self.next();
        let mut out = String::new();
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
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut c = self.next().unwrap_or_default();
                    if c == self.escape {
                        if raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
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
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
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
            return Ok(self.var(&name).unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let Some(mut c) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut modifier = c.to_string();
        let mut null_is_unset = false;
        match c {
            '}' => return Ok(self.var(&name).unwrap_or_default()),
            ':' => {
                null_is_unset = true;
                c = self.next().ok_or("syntax error: missing '}'")?;
                modifier.push(c);
            }
            '/' => return self.replace(&name),
            _ => {}
        }
        if !matches!(c, '+' | '-' | '?' | '#' | '%') {
            return Err(format!("unsupported modifier ({modifier}) in substitution"));
        }
        let raw = c == '#' || c == '%';
        if null_is_unset && raw {
            return Err(format!("unsupported modifier ({modifier}) in substitution"));
        }
        let (word, _) = self.stop_on(Some('}'), raw).map_err(|e| {
            if self.peek().is_none() {
                "syntax error: missing '}'".to_string()
            } else {
                e
            }
        })?;
        let value = self.var(&name);
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
            _ => {
                let (greedy, pattern) = match word.strip_prefix(c) {
                    Some(p) => (true, p.to_string()),
                    None => (false, word),
                };
                let pattern = Pattern::parse(&pattern)?;
                let value = value.unwrap_or_default();
                let chars: Vec<char> = value.chars().collect();
                Ok(if c == '#' {
                    pattern.trim_prefix(&chars, greedy)
                } else {
                    pattern.trim_suffix(&chars, greedy)
                })
            }
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
                "syntax error: missing '}'".to_string()
            } else {
                e
            }
        })?;
        let value = self.var(name).unwrap_or_default();
        let pattern = Pattern::parse(&pattern)?;
        Ok(pattern.replace(&value, &replacement, all))
    }
}

/// A shell pattern: `*` any string, `?` any character, `\c` the literal `c`.
#[derive(Debug)]
struct Pattern(Vec<Tok>);

#[derive(Debug, PartialEq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

impl Pattern {
    fn parse(p: &str) -> Result<Self, String> {
        let mut toks = Vec::new();
        let mut it = p.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match it.peek().copied() {
                    Some('}' | '/') => {}
                    Some(n @ ('*' | '?' | '\\')) => {
                        it.next();
                        toks.push(Tok::Lit(n));
                    }
                    Some(n) => {
                        return Err(format!(
                            "invalid pattern ({p}) in substitution: invalid escape '\\{n}'"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "invalid pattern ({p}) in substitution: trailing escape"
                        ));
                    }
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    /// True when the whole of `s` matches.
    fn matches(&self, s: &[char]) -> bool {
        fn go(t: &[Tok], s: &[char]) -> bool {
            match t.split_first() {
                None => s.is_empty(),
                Some((Tok::Star, rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
                Some((Tok::Any, rest)) => !s.is_empty() && go(rest, &s[1..]),
                Some((Tok::Lit(c), rest)) => s.first() == Some(c) && go(rest, &s[1..]),
            }
        }
        go(&self.0, s)
    }

    fn trim_prefix(&self, v: &[char], greedy: bool) -> String {
        let mut ends: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new((0..=v.len()).rev())
        } else {
            Box::new(0..=v.len())
        };
        match ends.find(|&i| self.matches(&v[..i])) {
            Some(i) => v[i..].iter().collect(),
            None => v.iter().collect(),
        }
    }

    fn trim_suffix(&self, v: &[char], greedy: bool) -> String {
        let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new(0..=v.len())
        } else {
            Box::new((0..=v.len()).rev())
        };
        match starts.find(|&i| self.matches(&v[i..])) {
            Some(i) => v[..i].iter().collect(),
            None => v.iter().collect(),
        }
    }

    /// Leftmost-longest match replaced, once or everywhere.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            if replaced && !all {
                break;
            }
            let found = (i..=v.len()).rev().find(|&e| self.matches(&v[i..e]));
            match found {
                Some(e) => {
                    out.push_str(replacement);
                    replaced = true;
                    if e == i {
                        if let Some(c) = v.get(i) {
                            out.push(*c);
                        }
                        i += 1;
                    } else {
                        i = e;
                    }
                }
                None => {
                    if let Some(c) = v.get(i) {
                        out.push(*c);
                    }
                    i += 1;
                }
            }
        }
        if i < v.len() {
            out.extend(&v[i..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("KOREAN", "한국어"),
            ("EMPTY", ""),
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

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("hello", "hello"),
            ("he'll'o", "hello"),
            ("he\"l\"lo", "hello"),
            ("'$PWD'", "$PWD"),
            ("\"$PWD\"", "/home"),
            ("$PWD", "/home"),
            ("${PWD}", "/home"),
            ("${PWD:-x}", "/home"),
            ("${XXX:-x}", "x"),
            ("${EMPTY:-x}", "x"),
            ("${EMPTY-x}", ""),
            ("${PWD:+x}", "x"),
            ("${XXX:+x}", ""),
            ("${PWD#/}", "home"),
            ("${PWD#*o}", "me"),
            ("${PWD##*o}", "me"),
            ("${SHELL%?h}", "ba"),
            ("${SHELL%%a*}", "b"),
            ("${SHELL/a/o}", "bosh"),
            ("${SHELL//[a/o}", "bash"),
            ("\\$PWD", "$PWD"),
            ("$KOREAN", "한국어"),
            ("a$", "a$"),
            ("\"\\q\"", "\\q"),
            ("${PWD}_${SHELL}", "/home_bash"),
        ];
        for (input, want) in cases {
            assert_eq!(ex(input).as_deref(), Ok(*want), "input {input:?}");
        }
    }

    #[test]
    fn errors() {
        assert!(ex("${PWD").is_err());
        assert!(ex("${}").is_err());
        assert!(ex("'abc").is_err());
        assert_eq!(ex("${XXX:?must be set}").unwrap_err(), "XXX: must be set");
        assert_eq!(
            ex("${XXX?}").unwrap_err(),
            "XXX: is not allowed to be unset"
        );
    }

    #[test]
    fn words_and_unset() {
        let e = Lexer::new('\\')
            .expand("a \"b c\" $NOPE $PWD", &env())
            .unwrap();
        assert_eq!(e.words, vec!["a", "b c", "/home"]);
        assert!(e.unset.contains("NOPE"));
    }
}
