//! Parser directives (`# syntax=`, `# escape=`, `# check=`) and the build-check configuration.

use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::satisfy;
use nom::combinator::recognize;
use nom::sequence::pair;
use nom::{IResult, Parser};
use serde::Serialize;

/// The parser directives found at the top of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=` (the frontend image), if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    /// `# escape=`: the escape character, `\` unless set to a backtick.
    pub escape: char,
    /// `# check=`, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// Go's `\s` in regular expressions.
fn go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

fn directive_key(i: &str) -> IResult<&str, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric()),
    ))
    .parse(i)
}

fn directive_parts(i: &str) -> IResult<&str, (&str, &str)> {
    let (i, key) = directive_key(i)?;
    let (i, _) = take_while(go_space).parse(i)?;
    let (i, _) = tag("=").parse(i)?;
    let (i, _) = take_while(go_space).parse(i)?;
    let (rest, value) = take_while1(|c| c != '\n').parse(i)?;
    Ok((rest, (key, value)))
}

/// Parses a line that may be a directive: `#`, whitespace, `key`, `=`, `value`. Returns the
/// lowercased key and the value with surrounding whitespace removed.
pub(crate) fn parse_directive_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let (_, (key, value)) = directive_parts(rest).ok()?;
    let value = value.trim_end_matches(go_space);
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.to_string()))
}

/// True when `syntax` names BuildKit's Dockerfile frontend at a 1.x version (what xbuild
/// implements itself).
pub fn is_builtin_syntax(syntax: &str) -> bool {
    let first = syntax.split_whitespace().next().unwrap_or_default();
    let no_digest = first.split('@').next().unwrap_or_default();
    let name = no_digest.strip_prefix("docker.io/").unwrap_or(no_digest);
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    if repo != "docker/dockerfile" && repo != "docker/dockerfile-upstream" {
        return false;
    }
    let Some(tag) = tag else { return true };
    if tag == "latest" || tag == "labs" {
        return true;
    }
    let base = tag
        .strip_suffix("-labs")
        .or_else(|| tag.split_once("-rc").map(|(b, _)| b))
        .unwrap_or(tag);
    let mut parts = base.split('.');
    parts.next() == Some("1")
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Which build checks run and how (`# check=skip=A,B;error=true`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`.
    pub skip_all: bool,
    /// Rules named in `skip=`.
    pub skip: Vec<String>,
    /// `experimental=all`.
    pub experimental_all: bool,
    /// Rules named in `experimental=`.
    pub experimental: Vec<String>,
    /// `error=true`: any warning fails the build.
    pub error: bool,
}

impl CheckConfig {
    /// Parses the value of a `check` directive (its first space-separated word), as BuildKit's
    /// `ParseLintOptions` does.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.split(' ').next().unwrap_or_default().trim();
        let mut cfg = CheckConfig::default();
        if value.is_empty() {
            return Ok(cfg);
        }
        for part in value.splitn(3, ';') {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("invalid check option {part:?}"));
            };
            let v = v.trim();
            let list = || v.split(',').map(|r| r.trim().to_string()).collect();
            match k.trim() {
                "skip" if v == "all" => cfg.skip_all = true,
                "skip" => cfg.skip = list(),
                "experimental" if v == "all" => cfg.experimental_all = true,
                "experimental" => cfg.experimental = list(),
                "error" => {
                    cfg.error = parse_go_bool(v).ok_or_else(|| {
                        format!(
                            "failed to parse check option {part:?}: strconv.ParseBool: parsing {v:?}: invalid syntax"
                        )
                    })?;
                }
                other => return Err(format!("invalid check option {other:?}")),
            }
        }
        Ok(cfg)
    }

    /// Merges another configuration (from a comment above an instruction) into this one.
    pub fn merged(&self, other: &CheckConfig) -> CheckConfig {
        let mut out = self.clone();
        out.skip_all |= other.skip_all;
        out.experimental_all |= other.experimental_all;
        out.skip.extend(other.skip.iter().cloned());
        out.experimental.extend(other.experimental.iter().cloned());
        out
    }

    /// True when warnings of `rule` are reported.
    pub fn enabled(&self, rule: &str, experimental: bool) -> bool {
        if experimental {
            self.experimental_all || self.experimental.iter().any(|r| r == rule)
        } else {
            !(self.skip_all || self.skip.iter().any(|r| r == rule))
        }
    }

    /// The configuration a `# check=…` comment just above an instruction adds, if any.
    pub fn from_comments(comments: &[String]) -> Option<CheckConfig> {
        for c in comments {
            let Some((k, v)) = parse_directive_line(&format!("#{c}")) else {
                continue;
            };
            if k != "check" {
                continue;
            }
            return CheckConfig::parse(&v).ok();
        }
        None
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_lines() {
        assert_eq!(
            parse_directive_line("# escape=`"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            parse_directive_line("#Syntax = docker/dockerfile:1  "),
            Some(("syntax".into(), "docker/dockerfile:1".into()))
        );
        assert_eq!(parse_directive_line("# just a comment"), None);
        assert_eq!(parse_directive_line("# key="), None);
        assert_eq!(parse_directive_line("#1a=b"), None);
    }

    #[test]
    fn builtin_syntaxes() {
        for s in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.4",
            "docker/dockerfile:1.7.1",
            "docker/dockerfile:1-labs",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1",
            "docker/dockerfile:1@sha256:abc",
            "docker/dockerfile",
        ] {
            assert!(is_builtin_syntax(s), "{s}");
        }
        for s in [
            "docker/dockerfile:0.1",
            "tonistiigi/dockerfile:foo",
            "example.com/frontend:1",
            "docker/dockerfile:experimental",
        ] {
            assert!(!is_builtin_syntax(s), "{s}");
        }
    }

    #[test]
    fn check_options() {
        let c = CheckConfig::parse("skip=A,B;error=true").unwrap();
        assert_eq!(c.skip, vec!["A", "B"]);
        assert!(c.error);
        assert!(!c.enabled("A", false));
        assert!(c.enabled("C", false));
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert!(CheckConfig::parse("nope=1").is_err());
        assert!(CheckConfig::parse("error=maybe").is_err());
        assert!(CheckConfig::parse("skip").is_err());
    }
}
