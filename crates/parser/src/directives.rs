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

/// The frontend a `# syntax=` line or the `BUILDKIT_SYNTAX` build argument names, when xbuild
/// can build with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frontend {
    /// BuildKit's Dockerfile frontend (`docker/dockerfile` or `docker/dockerfile-upstream` at a
    /// published tag or a digest, or `dockerfile.v0`): xbuild builds with its own frontend.
    /// `labs` when the tag asks for the labs channel (`labs`, `1-labs`, `master-labs`, …);
    /// xbuild's frontend is the same for both channels, as every labs feature of current
    /// BuildKit but `RUN --device` (which xbuild refuses in either) is stable.
    Dockerfile {
        /// The tag names the labs channel.
        labs: bool,
    },
}

/// Why xbuild cannot build with the frontend a syntax reference names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// Not an image reference BuildKit could pull.
    #[error("invalid frontend image reference {reference}: {reason}")]
    InvalidReference {
        /// The reference as written.
        reference: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The Dockerfile frontend's repository at a tag it never published.
    #[error("{reference} names the Dockerfile frontend at tag {tag}, which is not a published tag")]
    UnknownTag {
        /// The reference as written.
        reference: String,
        /// Its tag.
        tag: String,
    },
    /// Any other image: a custom frontend, which xbuild cannot run.
    #[error(
        "xbuild has its own Dockerfile frontend and does not run frontend images; cannot use syntax {reference}"
    )]
    CustomFrontend {
        /// The reference as written.
        reference: String,
    },
}

/// The frontend `syntax` (the value of a `# syntax=` line or of the `BUILDKIT_SYNTAX` build
/// argument: an image reference, then optional arguments after a space) names, as BuildKit
/// reads it: `docker.io/` and `index.docker.io/` are the default registry, a tag (`latest`
/// when none) and a digest may both be given.
pub fn syntax_frontend(syntax: &str) -> Result<Frontend, SyntaxError> {
    let reference = syntax.trim().split(' ').next().unwrap_or_default();
    let invalid = |reason| SyntaxError::InvalidReference {
        reference: reference.to_string(),
        reason,
    };
    // `dockerfile.v0` names the built-in frontend (BuildKit's solver takes the gateway to it).
    if reference == "dockerfile.v0" {
        return Ok(Frontend::Dockerfile { labs: false });
    }
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest
        && !valid_digest(d)
    {
        return Err(invalid(
            "a digest is sha256: and 64 lowercase hexadecimal digits",
        ));
    }
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    if repo.is_empty() {
        return Err(invalid("the image name is empty"));
    }
    if let Some(t) = tag
        && !valid_tag(t)
    {
        return Err(invalid(
            "a tag is at most 128 letters, digits, _, . and -, not starting with . or -",
        ));
    }
    let path = ["docker.io/", "index.docker.io/"]
        .iter()
        .find_map(|p| repo.strip_prefix(p))
        .unwrap_or(repo);
    if path != "docker/dockerfile" && path != "docker/dockerfile-upstream" {
        return Err(SyntaxError::CustomFrontend {
            reference: reference.to_string(),
        });
    }
    let tag = match tag {
        None if digest.is_some() => return Ok(Frontend::Dockerfile { labs: false }),
        None => "latest",
        Some(t) => t,
    };
    let (base, labs) = match tag {
        "labs" => ("latest", true),
        t => match t.strip_suffix("-labs") {
            Some(b) => (b, true),
            None => (t, false),
        },
    };
    let published = match base {
        "latest" | "master" => true,
        "experimental" => !labs,
        b => match b.strip_suffix("-experimental") {
            Some(v) => !labs && version_tag(v),
            None => version_tag(b),
        },
    };
    if published {
        Ok(Frontend::Dockerfile { labs })
    } else {
        Err(SyntaxError::UnknownTag {
            reference: reference.to_string(),
            tag: tag.to_string(),
        })
    }
}

/// True when `syntax` names BuildKit's Dockerfile frontend, which xbuild implements itself (see
/// [`syntax_frontend`]).
pub fn is_builtin_syntax(syntax: &str) -> bool {
    syntax_frontend(syntax).is_ok()
}

/// A release of the 1.x frontend: `1`, `1.N` or `1.N.M`, optionally a release candidate
/// (`1.7-rc`, `1.7.0-rc1`).
fn version_tag(tag: &str) -> bool {
    let version = match tag.split_once("-rc") {
        Some((v, rc)) if rc.bytes().all(|b| b.is_ascii_digit()) => v,
        Some(_) => return false,
        None => tag,
    };
    let mut parts = version.split('.');
    parts.next() == Some("1")
        && parts.clone().count() <= 2
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A tag as the reference grammar allows it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    matches!(bytes.first(), Some(&b) if word(b))
        && bytes.len() <= 128
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// A digest BuildKit accepts in a reference: a known algorithm and its length of lowercase hex.
fn valid_digest(digest: &str) -> bool {
    let Some((alg, hex)) = digest.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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

    /// Issue 16: `# syntax=docker/dockerfile-upstream:master` (and master-labs, 1.x-rc-labs,
    /// index.docker.io/…) was refused as a frontend image; every published tag or digest of
    /// BuildKit's Dockerfile frontend is xbuild's own frontend.
    #[test]
    fn every_official_dockerfile_frontend_reference_is_the_builtin_frontend() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        let stable = [
            "docker/dockerfile".to_string(),
            "docker/dockerfile:latest".into(),
            "docker/dockerfile:1".into(),
            "docker/dockerfile:1.4".into(),
            "docker/dockerfile:1.7.1".into(),
            "docker/dockerfile:1.7-rc".into(),
            "docker/dockerfile:1.17.0-rc1".into(),
            "docker/dockerfile:experimental".into(),
            "docker/dockerfile:1.0-experimental".into(),
            "docker/dockerfile:1.2.1-experimental".into(),
            "docker/dockerfile-upstream:master".into(),
            "docker/dockerfile-upstream:1.7".into(),
            "docker.io/docker/dockerfile:1".into(),
            "index.docker.io/docker/dockerfile:1".into(),
            "docker.io/docker/dockerfile-upstream:master".into(),
            format!("docker/dockerfile:1@{digest}"),
            format!("docker/dockerfile@{digest}"),
            format!("docker.io/docker/dockerfile-upstream@{digest}"),
            "docker/dockerfile:1 --some-frontend-arg".into(),
            "dockerfile.v0".into(),
        ];
        for s in &stable {
            assert_eq!(
                syntax_frontend(s),
                Ok(Frontend::Dockerfile { labs: false }),
                "{s}"
            );
            assert!(is_builtin_syntax(s), "{s}");
        }
        let labs = [
            "docker/dockerfile:labs".to_string(),
            "docker/dockerfile:1-labs".into(),
            "docker/dockerfile:1.7-labs".into(),
            "docker/dockerfile:1.7.1-labs".into(),
            "docker/dockerfile:1.17.0-rc1-labs".into(),
            "docker/dockerfile-upstream:master-labs".into(),
            "docker/dockerfile-upstream:1.7-labs".into(),
            format!("docker.io/docker/dockerfile-upstream:master-labs@{digest}"),
        ];
        for s in &labs {
            assert_eq!(
                syntax_frontend(s),
                Ok(Frontend::Dockerfile { labs: true }),
                "{s}"
            );
        }
    }

    #[test]
    fn other_frontends_and_unpublished_tags_are_errors() {
        for s in [
            "tonistiigi/dockerfile:foo",
            "example.com/frontend:1",
            "example.com:5000/docker/dockerfile:1",
            "docker.io/library/docker/dockerfile:1",
            "dockerfile",
            "x",
        ] {
            assert!(
                matches!(syntax_frontend(s), Err(SyntaxError::CustomFrontend { .. })),
                "{s}"
            );
        }
        for s in [
            "docker/dockerfile:0.1",
            "docker/dockerfile:2",
            "docker/dockerfile:1.2.3.4",
            "docker/dockerfile:1.x",
            "docker/dockerfile:1-rcx",
            "docker/dockerfile:experimental-labs",
            "docker/dockerfile:nope",
        ] {
            assert!(
                matches!(syntax_frontend(s), Err(SyntaxError::UnknownTag { .. })),
                "{s}"
            );
        }
        for s in [
            "docker/dockerfile:1@sha256:abc",
            "docker/dockerfile@md5:0123",
            "docker/dockerfile:-1",
            ":1",
        ] {
            assert!(
                matches!(
                    syntax_frontend(s),
                    Err(SyntaxError::InvalidReference { .. })
                ),
                "{s}"
            );
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
