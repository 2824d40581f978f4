//! Image references (`alpine`, `docker.io/library/alpine:3.20`, `host:5000/app@sha256:…`): the
//! one reference type of xbuild. It parses and normalizes names as Docker's
//! `distribution/reference` does (`ParseNormalizedNamed`, `ParseDockerRef`, `TagNameOnly`,
//! `FamiliarString`); each front (the Dockerfile parser, the registry client, the local store,
//! the exporters) keeps only its own policy on top of it.
//!
//! ```
//! use xbuild_llb::reference::{Reference, ReferenceError};
//!
//! let r = Reference::parse("alpine:3.20")?;
//! assert_eq!((r.domain(), r.path(), r.tag()), ("docker.io", "library/alpine", Some("3.20")));
//! assert_eq!(r.to_string(), "docker.io/library/alpine:3.20");
//! assert_eq!(r.familiar(), "alpine:3.20");
//!
//! // What `docker pull` asks for: `:latest` by default, and a digest wins over a tag.
//! let pulled = Reference::parse_docker_ref("index.docker.io/team/app")?;
//! assert_eq!(pulled.to_string(), "docker.io/team/app:latest");
//!
//! assert_eq!(Reference::parse("Alpine"), Err(ReferenceError::Uppercase("library/Alpine".into())));
//! # Ok::<(), ReferenceError>(())
//! ```

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

/// Docker Hub's canonical domain, the domain of a name that gives none.
pub const DOCKER_HUB: &str = "docker.io";
/// The legacy name of Docker Hub, folded into [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`alpine` is `library/alpine`).
const OFFICIAL_PREFIX: &str = "library/";
/// The tag of a reference that names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository path a reference may have.
pub const NAME_MAX: usize = 255;

/// Why a string is not an image reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The empty string.
    #[error("an image reference cannot be empty")]
    Empty,
    /// 64 lowercase hex characters: an image ID, which Docker refuses as a repository name.
    #[error("a 64-character hexadecimal string is an image ID, not a repository name")]
    ImageId,
    /// The repository path (after the domain) has uppercase letters.
    #[error("repository name {0:?} must be lowercase")]
    Uppercase(String),
    /// Not `[HOST[:PORT]/]NAME[:TAG][@DIGEST]` in Docker's grammar.
    #[error(
        "invalid reference format: expected [HOST[:PORT]/]NAME[:TAG][@DIGEST] with a lowercase \
         NAME of letters, digits and . _ - separators"
    )]
    Format,
    /// The repository path is longer than [`NAME_MAX`] characters.
    #[error("repository name must not be more than {NAME_MAX} characters")]
    NameTooLong,
    /// A digest whose algorithm is not sha256, sha384 or sha512.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedDigestAlgorithm(String),
    /// A digest of a known algorithm whose hex is not the algorithm's length in lowercase hex.
    #[error("invalid digest {digest:?}: {algorithm} takes {hex_len} lowercase hex digits")]
    InvalidDigest {
        /// The digest as written.
        digest: String,
        /// Its algorithm.
        algorithm: String,
        /// How many hex digits that algorithm takes.
        hex_len: usize,
    },
}

struct Patterns {
    reference: Regex,
    name: Regex,
    identifier: Regex,
}

/// The grammar of `distribution/reference`'s `regexp.go`.
fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let alphanumeric = "[a-z0-9]+";
        let separator = "(?:[._]|__|[-]+)";
        let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
        let domain_name = format!(r"{domain_component}(?:\.{domain_component})*");
        let domain = format!("(?:{domain_name}|{ipv6})(?::[0-9]+)?");
        let path_component = format!("{alphanumeric}(?:{separator}{alphanumeric})*");
        let remote = format!("{path_component}(?:/{path_component})*");
        let name = format!("(?:{domain}/)?{remote}");
        // Go's `\w` is ASCII; Rust's is Unicode (and a Unicode class repeated 128 times makes
        // this the costliest regex of a build to compile).
        let tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
        // The patterns are constants of this function: a failure is a bug here, not bad input.
        let build = |p: String| Regex::new(&p).unwrap_or_else(|e| panic!("pattern {p}: {e}"));
        Patterns {
            reference: build(format!("^({name})(?::({tag}))?(?:@({digest}))?$")),
            name: build(format!("^(?:({domain})/)?({remote})$")),
            identifier: build("^[a-f0-9]{64}$".into()),
        }
    })
}

/// A normalized image reference: registry domain, repository path, and an optional tag and
/// digest. It prints ([`fmt::Display`]) in full (`docker.io/library/alpine:3.20`);
/// [`Reference::familiar`] is the short form Docker shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalizes `s` as Docker's `ParseNormalizedNamed` does: a missing domain is
    /// Docker Hub (`index.docker.io` is folded into `docker.io`), a one-part Docker Hub name
    /// gets `library/`, and the tag and digest are kept as written (neither is added or
    /// dropped).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let p = patterns();
        if p.identifier.is_match(s) {
            return Err(ReferenceError::ImageId);
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or(&remainder);
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase(remote.to_string()));
        }
        let full = format!("{domain}/{remainder}");
        let caps = p.reference.captures(&full).ok_or(ReferenceError::Format)?;
        let name = caps.get(1).map(|m| m.as_str()).unwrap_or_default();
        let tag = caps.get(2).map(|m| m.as_str().to_string());
        let digest = caps.get(3).map(|m| m.as_str().to_string());
        let (domain, path) = match p.name.captures(name) {
            Some(n) => (
                n.get(1).map(|m| m.as_str()).unwrap_or_default(),
                n.get(2).map(|m| m.as_str()).unwrap_or_default(),
            ),
            None => ("", name),
        };
        if path.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(d) = &digest {
            validate_digest(d)?;
        }
        Ok(Reference {
            domain: domain.to_string(),
            path: path.to_string(),
            tag,
            digest,
        })
    }

    /// Parses `s` the way `docker pull` does (`ParseDockerRef`): as [`Reference::parse`], then
    /// a reference with both a tag and a digest keeps only the digest, and one with neither
    /// gets `:latest`.
    pub fn parse_docker_ref(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Reference::parse(s)?;
        if r.digest.is_some() {
            r.tag = None;
        }
        Ok(r.with_default_tag())
    }

    /// The same reference with `:latest` when it names neither a tag nor a digest (Docker's
    /// `TagNameOnly`); a tag and a digest given together are both kept.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository pinned to `digest`, without a tag.
    pub fn with_digest(&self, digest: &str) -> Result<Self, ReferenceError> {
        validate_digest(digest)?;
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        })
    }

    /// The registry domain (`docker.io`, `127.0.0.1:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/alpine`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), if the reference has one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The full repository name without tag or digest (`docker.io/library/alpine`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository name as Docker shows it (`alpine`, `user/app`, `127.0.0.1:5000/base`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DOCKER_HUB {
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The reference as Docker shows it (`alpine:latest`, `127.0.0.1:5000/base:1`,
    /// `alpine@sha256:…`).
    pub fn familiar(&self) -> String {
        self.with_name(self.familiar_name())
    }

    /// `name` followed by the tag and the digest, as the reference has them.
    fn with_name(&self, mut name: String) -> String {
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(d);
        }
        name
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_name(self.name()))
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, ReferenceError> {
        Reference::parse(s)
    }
}

/// Checks `d` as go-digest's `Parse` does: a known algorithm and exactly its length of
/// lowercase hex.
fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let (algorithm, hex) = d.split_once(':').unwrap_or((d, ""));
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => {
            return Err(ReferenceError::UnsupportedDigestAlgorithm(
                other.to_string(),
            ));
        }
    };
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.len() != hex_len || !hex.bytes().all(lower_hex) {
        return Err(ReferenceError::InvalidDigest {
            digest: d.to_string(),
            algorithm: algorithm.to_string(),
            hex_len,
        });
    }
    Ok(())
}

/// Splits `name` into a registry domain and the rest, the way Docker's `splitDockerDomain`
/// does: the first component is a domain when it is `localhost`, has a `.` or a `:`, or has an
/// uppercase letter.
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((maybe_domain, rest)) = name.split_once('/') else {
        return (DOCKER_HUB, format!("{OFFICIAL_PREFIX}{name}"));
    };
    let (domain, remote) = if maybe_domain == "localhost" {
        (maybe_domain, rest.to_string())
    } else if maybe_domain == LEGACY_DOCKER_HUB {
        (DOCKER_HUB, rest.to_string())
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
        (maybe_domain, rest.to_string())
    } else {
        (DOCKER_HUB, name.to_string())
    };
    if domain == DOCKER_HUB && !remote.contains('/') {
        return (domain, format!("{OFFICIAL_PREFIX}{remote}"));
    }
    (domain, remote)
}
#[cfg(test)]
mod tests {
    //! Cases from distribution/reference's `normalize_test.go` and `reference_test.go`.
    use super::*;

    #[test]
    fn valid_and_invalid_names() {
        let valid = [
            "docker/docker",
            "library/debian",
            "debian",
            "localhost/library/debian",
            "localhost/debian",
            "LOCALDOMAIN/library/debian",
            "LOCALDOMAIN/debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "192.168.0.1",
            "192.168.0.1:80",
            "192.168.0.1:8/debian",
            "192.168.0.2:25000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker/docker",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "Docker/docker",
            "DOCKER/docker",
            // TestValidateRemoteName
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
        ];
        for n in valid {
            assert!(
                Reference::parse(n).is_ok(),
                "{n} should be valid: {:?}",
                Reference::parse(n)
            );
        }
        let long_ns = format!("{}/docker", "this_is_not_a_valid_namespace_".repeat(9));
        let invalid = [
            "https://github.com/docker/docker",
            "docker/Docker",
            "-docker",
            "-docker/docker",
            "-docker.io/docker/docker",
            "docker///docker",
            "docker.io/docker/Docker",
            "docker.io/docker///docker",
            "[fc00::1]",
            "[fc00::1]:5000",
            "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian",
            "[2001:db8:3:4::192.0.2.33]:5000/debian",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker-/docker",
            "-docker-/docker",
            "____/____",
            "_docker/_docker",
            "dock..er/docker",
            "dock_.er/docker",
            "dock-.er/docker",
            "docker/",
            "busybox:tägé",
            "busybox:ＬＡＴＥＳＴ",
            long_ns.as_str(),
            "",
        ];
        for n in invalid {
            assert!(Reference::parse(n).is_err(), "{n} should be invalid");
        }
    }

    #[test]
    fn repository_info() {
        // (remote name, familiar, full, ambiguous, domain)
        let cases = [
            (
                "fooo",
                "localhost/fooo",
                "localhost/fooo",
                "localhost/fooo",
                "localhost",
            ),
            (
                "fooo/bar",
                "localhost/fooo/bar",
                "localhost/fooo/bar",
                "localhost/fooo/bar",
                "localhost",
            ),
            (
                "fooo",
                "LOCALDOMAIN/fooo",
                "LOCALDOMAIN/fooo",
                "LOCALDOMAIN/fooo",
                "LOCALDOMAIN",
            ),
            (
                "fooo/bar",
                "LOCALDOMAIN/fooo/bar",
                "LOCALDOMAIN/fooo/bar",
                "LOCALDOMAIN/fooo/bar",
                "LOCALDOMAIN",
            ),
            (
                "fooo/bar",
                "fooo/bar",
                "docker.io/fooo/bar",
                "index.docker.io/fooo/bar",
                "docker.io",
            ),
            (
                "library/ubuntu",
                "ubuntu",
                "docker.io/library/ubuntu",
                "library/ubuntu",
                "docker.io",
            ),
            (
                "nonlibrary/ubuntu",
                "nonlibrary/ubuntu",
                "docker.io/nonlibrary/ubuntu",
                "",
                "docker.io",
            ),
            (
                "other/library",
                "other/library",
                "docker.io/other/library",
                "",
                "docker.io",
            ),
            (
                "private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "",
                "127.0.0.1:8000",
            ),
            (
                "privatebase",
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000/privatebase",
                "",
                "127.0.0.1:8000",
            ),
            (
                "private/moonbase",
                "example.com/private/moonbase",
                "example.com/private/moonbase",
                "",
                "example.com",
            ),
            (
                "privatebase",
                "example.com/privatebase",
                "example.com/privatebase",
                "",
                "example.com",
            ),
            (
                "private/moonbase",
                "example.com:8000/private/moonbase",
                "example.com:8000/private/moonbase",
                "",
                "example.com:8000",
            ),
            (
                "privatebasee",
                "example.com:8000/privatebasee",
                "example.com:8000/privatebasee",
                "",
                "example.com:8000",
            ),
            (
                "library/ubuntu-12.04-base",
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base",
                "index.docker.io/library/ubuntu-12.04-base",
                "docker.io",
            ),
            (
                "library/foo",
                "foo",
                "docker.io/library/foo",
                "docker.io/foo",
                "docker.io",
            ),
            (
                "library/foo/bar",
                "library/foo/bar",
                "docker.io/library/foo/bar",
                "",
                "docker.io",
            ),
            (
                "store/foo/bar",
                "store/foo/bar",
                "docker.io/store/foo/bar",
                "",
                "docker.io",
            ),
            ("bar", "Foo/bar", "Foo/bar", "", "Foo"),
            ("bar", "FOO/bar", "FOO/bar", "", "FOO"),
        ];
        for (remote, familiar, full, ambiguous, domain) in cases {
            for input in [familiar, full, ambiguous] {
                if input.is_empty() {
                    continue;
                }
                let r = Reference::parse(input).unwrap();
                assert_eq!(r.familiar_name(), familiar, "familiar name of {input}");
                assert_eq!(r.name(), full, "full name of {input}");
                assert_eq!(r.domain(), domain, "domain of {input}");
                assert_eq!(r.path(), remote, "path of {input}");
            }
        }
    }

    #[test]
    fn split_hostname() {
        let cases = [
            ("test.com/foo", "test.com", "foo"),
            ("test_com/foo", "docker.io", "test_com/foo"),
            ("docker/migrator", "docker.io", "docker/migrator"),
            ("test.com:8080/foo", "test.com:8080", "foo"),
            ("test-com:8080/foo", "test-com:8080", "foo"),
            ("foo", "docker.io", "library/foo"),
            ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
            ("docker.io/foo", "docker.io", "library/foo"),
            ("docker.io/library/foo", "docker.io", "library/foo"),
            ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
        ];
        for (input, domain, path) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!((r.domain(), r.path()), (domain, path), "{input}");
        }
    }

    #[test]
    fn docker_ref() {
        let d = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
        let cases = [
            ("busybox", "docker.io/library/busybox:latest".to_string()),
            ("busybox:latest", "docker.io/library/busybox:latest".into()),
            (
                &*format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            ("library/busybox", "docker.io/library/busybox:latest".into()),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox:latest",
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "library/busybox:latest",
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "gcr.io/library/busybox",
                "gcr.io/library/busybox:latest".into(),
            ),
            (
                &*format!("gcr.io/library/busybox:latest@{d}"),
                format!("gcr.io/library/busybox@{d}"),
            ),
        ];
        for (input, want) in cases {
            let r = Reference::parse_docker_ref(input).unwrap();
            assert_eq!(r.to_string(), want, "{input}");
            assert_eq!(
                Reference::parse_docker_ref(&r.to_string()).unwrap(),
                r,
                "{input} round-trips"
            );
        }
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse_docker_ref("alpine").unwrap();
        assert_eq!(r.familiar(), "alpine:latest");
        let r = Reference::parse("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(r.familiar(), "127.0.0.1:5000/team/app:1");
        assert_eq!(Reference::parse("alpine").unwrap().familiar(), "alpine");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("alpine:3@{d}")).unwrap();
        assert_eq!(r.familiar(), format!("alpine:3@{d}"));
        assert_eq!(r.to_string(), format!("docker.io/library/alpine:3@{d}"));
    }

    #[test]
    fn typed_errors() {
        use ReferenceError as E;
        assert_eq!(Reference::parse(""), Err(E::Empty));
        assert_eq!(Reference::parse(&"a".repeat(64)), Err(E::ImageId));
        assert_eq!(
            Reference::parse("Uppercase:tag"),
            Err(E::Uppercase("library/Uppercase".into()))
        );
        assert_eq!(Reference::parse("aa/asdf$$^/aa"), Err(E::Format));
        assert_eq!(Reference::parse(":justtag"), Err(E::Format));
        assert_eq!(
            Reference::parse(&format!("@sha256:{}", "f".repeat(64))),
            Err(E::Format)
        );
        assert_eq!(
            Reference::parse(&format!("validname@invaliddigest:{}", "f".repeat(64))),
            Err(E::UnsupportedDigestAlgorithm("invaliddigest".into()))
        );
        assert_eq!(
            Reference::parse("alpine@sha256:abc"),
            Err(E::Format),
            "under 32 hex digits is no digest at all in the grammar"
        );
        assert!(matches!(
            Reference::parse(&format!("alpine@sha256:{}", "a".repeat(40))),
            Err(E::InvalidDigest { hex_len: 64, .. })
        ));
        assert_eq!(
            Reference::parse(&format!("{}a:tag", "a/".repeat(128))),
            Err(E::NameTooLong)
        );
        assert!(Reference::parse(&format!("{}a:tag-puts-this-over-max", "a/".repeat(127))).is_ok());
    }

    #[test]
    fn tags_and_digests_as_written() {
        let d = format!("sha256:{}", "f".repeat(64));
        let cases = [
            ("test_com", "docker.io", "library/test_com", None, None),
            (
                "test.com:tag",
                "docker.io",
                "library/test.com",
                Some("tag"),
                None,
            ),
            (
                "test.com:5000",
                "docker.io",
                "library/test.com",
                Some("5000"),
                None,
            ),
            ("test.com/repo:tag", "test.com", "repo", Some("tag"), None),
            ("test:5000/repo", "test:5000", "repo", None, None),
            ("test:5000/repo:tag", "test:5000", "repo", Some("tag"), None),
            (
                &*format!("test:5000/repo@{d}"),
                "test:5000",
                "repo",
                None,
                Some(d.as_str()),
            ),
            (
                &*format!("test:5000/repo:tag@{d}"),
                "test:5000",
                "repo",
                Some("tag"),
                Some(d.as_str()),
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux",
                "sub-dom1.foo.com",
                "bar/baz/quux",
                None,
                None,
            ),
            (
                "[2001:db8::1]:5000/repo",
                "[2001:db8::1]:5000",
                "repo",
                None,
                None,
            ),
        ];
        for (input, domain, path, tag, digest) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(
                (r.domain(), r.path(), r.tag(), r.digest()),
                (domain, path, tag, digest),
                "{input}"
            );
        }
        let tag = "a".repeat(128);
        assert!(Reference::parse(&format!("app:{tag}")).is_ok());
        assert_eq!(
            Reference::parse(&format!("app:{tag}a")),
            Err(ReferenceError::Format)
        );
    }

    #[test]
    fn with_default_tag_keeps_a_tag_beside_a_digest() {
        let d = format!("sha256:{}", "b".repeat(64));
        let r = Reference::parse("alpine").unwrap().with_default_tag();
        assert_eq!(r.tag(), Some("latest"));
        let r = Reference::parse(&format!("alpine@{d}"))
            .unwrap()
            .with_default_tag();
        assert_eq!((r.tag(), r.digest()), (None, Some(d.as_str())));
        let r = Reference::parse(&format!("alpine:3@{d}"))
            .unwrap()
            .with_default_tag();
        assert_eq!((r.tag(), r.digest()), (Some("3"), Some(d.as_str())));
        let r = Reference::parse_docker_ref(&format!("alpine:3@{d}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(d.as_str())));
    }

    #[test]
    fn digests_take_a_known_algorithm_and_its_lowercase_hex() {
        for ok in [
            format!("sha256:{}", "0".repeat(64)),
            format!("sha384:{}", "0".repeat(96)),
            format!("sha512:{}", "0".repeat(128)),
        ] {
            assert!(Reference::parse(&format!("a@{ok}")).is_ok(), "{ok}");
        }
        for bad in [
            format!("md5:{}", "0".repeat(32)),
            format!("sha256:{}", "0".repeat(65)),
            format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(Reference::parse(&format!("a@{bad}")).is_err(), "{bad}");
        }
        let r = Reference::parse("a:1").unwrap();
        let pinned = r
            .with_digest(&format!("sha256:{}", "c".repeat(64)))
            .unwrap();
        assert_eq!(pinned.tag(), None);
        assert!(r.with_digest("sha256:abc").is_err());
    }
}
