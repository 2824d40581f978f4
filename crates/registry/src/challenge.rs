//! `WWW-Authenticate` challenges (RFC 7235): `Bearer realm="…",service="…",scope="…"`, `Basic
//! realm="…"`, several in one header.

use std::collections::BTreeMap;

/// One authentication challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, keys lowercased (`realm`, `service`, `scope`).
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter's value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges; text that does not follow the
/// grammar ends the parse (what was parsed before it is kept).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_separators();
        let Some(word) = p.token() else { break };
        p.skip_spaces();
        if p.peek() == Some(b'=') && !out.is_empty() && !p.is_token68_tail() {
            p.i += 1;
            p.skip_spaces();
            let Some(value) = p.value() else { break };
            if let Some(last) = out.last_mut() {
                last.params.insert(word.to_ascii_lowercase(), value);
            }
            continue;
        }
        out.push(Challenge {
            scheme: word.to_ascii_lowercase(),
            params: BTreeMap::new(),
        });
        // A scheme is followed by its first parameter on the same run of input.
        p.skip_spaces();
        let Some(key) = p.token() else { continue };
        p.skip_spaces();
        if p.peek() != Some(b'=') {
            // Not a parameter: a token68 credential or the next scheme; rewind to its start.
            p.i -= key.len();
            continue;
        }
        p.i += 1;
        p.skip_spaces();
        let Some(value) = p.value() else { break };
        if let Some(last) = out.last_mut() {
            last.params.insert(key.to_ascii_lowercase(), value);
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// True when the `=` at the cursor is padding of a token68 (`abc==`), not a parameter.
    fn is_token68_tail(&self) -> bool {
        matches!(self.s.get(self.i + 1), Some(b'=') | None)
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn value(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            // Lenient: an unquoted value runs to the next comma or space (servers send URLs).
            let start = self.i;
            while let Some(c) = self.peek() {
                if c == b',' || c == b' ' || c == b'\t' || c == b'"' {
                    break;
                }
                self.i += 1;
            }
            return (self.i > start)
                .then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned());
        }
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(h: &str) -> Challenge {
        let mut c = parse_challenges(h);
        assert_eq!(c.len(), 1, "{h}: {c:?}");
        c.remove(0)
    }

    #[test]
    fn docker_hub_bearer() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/alpine:pull"));
    }

    #[test]
    fn basic_realm_and_case() {
        let c = one(r#"BASIC Realm="Registry Realm""#);
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some("Registry Realm"));
    }

    #[test]
    fn unquoted_values_spaces_and_escapes() {
        let c = one(
            r#"Bearer realm = https://r.example/token , service=reg, error="a \"quoted\" word""#,
        );
        assert_eq!(c.param("realm"), Some("https://r.example/token"));
        assert_eq!(c.param("service"), Some("reg"));
        assert_eq!(c.param("error"), Some(r#"a "quoted" word"#));
    }

    #[test]
    fn several_challenges_in_one_header() {
        let c = parse_challenges(r#"Basic realm="a", Bearer realm="https://t/token",service="s""#);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(
            (c[0].scheme.as_str(), c[0].param("realm")),
            ("basic", Some("a"))
        );
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("s"));
    }

    #[test]
    fn scheme_without_params_and_token68() {
        let c = parse_challenges("Negotiate, Basic realm=x");
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].scheme, "negotiate");
        assert!(c[0].params.is_empty());
        assert_eq!(c[1].param("realm"), Some("x"));
        let c = parse_challenges("Negotiate abc==");
        assert_eq!(c[0].scheme, "negotiate");
    }

    #[test]
    fn malformed_input_keeps_what_parsed() {
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("   ,, ").is_empty());
        let c = parse_challenges(r#"Bearer realm="unterminated"#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), None);
    }
}
