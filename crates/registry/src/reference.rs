//! Image references, normalized as Docker does (`distribution/reference`'s
//! `ParseNormalizedNamed` and `ParseDockerRef`): `alpine` is `docker.io/library/alpine:latest`.

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

use crate::Error;

/// Docker Hub's canonical domain.
pub const DOCKER_HUB: &str = "docker.io";
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;

struct Patterns {
    reference: Regex,
    name: Regex,
    identifier: Regex,
}

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
        let build = |p: String| Regex::new(&p).unwrap_or_else(|e| panic!("pattern {p}: {e}"));
        Patterns {
            reference: build(format!("^({name})(?::({tag}))?(?:@({digest}))?$")),
            name: build(format!("^(?:({domain})/)?({remote})$")),
            identifier: build("^[a-f0-9]{64}$".into()),
        }
    })
}

/// A normalized image reference: registry domain, repository path, and a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses a reference the way `docker pull` does: a missing domain is Docker Hub, a one-part
    /// Docker Hub name gets `library/`, no tag and no digest means `:latest`, and a reference with
    /// both a tag and a digest keeps only the digest.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let invalid = |message: String| Error::InvalidReference {
            reference: s.to_string(),
            message,
        };
        if s.is_empty() {
            return Err(invalid("an image reference cannot be empty".into()));
        }
        let p = patterns();
        if p.identifier.is_match(s) {
            return Err(invalid(
                "a 64-character hexadecimal string is an image ID, not a repository name".into(),
            ));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or(&remainder);
        let remote = remote.split('@').next().unwrap_or(remote);
        if remote.to_lowercase() != remote {
            return Err(invalid(format!(
                "repository name {remote:?} must be lowercase"
            )));
        }
        let full = format!("{domain}/{remainder}");
        let Some(caps) = p.reference.captures(&full) else {
            return Err(invalid(
                "invalid reference format: expected [HOST[:PORT]/]NAME[:TAG][@DIGEST] with a \
                 lowercase NAME of letters, digits and . _ - separators"
                    .into(),
            ));
        };
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
            return Err(invalid(format!(
                "repository name must not be more than {NAME_MAX} characters"
            )));
        }
        if let Some(d) = &digest {
            validate_digest(d).map_err(invalid)?;
        }
        let tag = match (&tag, &digest) {
            (_, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (Some(t), None) => Some(t.clone()),
        };
        Ok(Reference {
            domain: domain.to_string(),
            path: path.to_string(),
            tag,
            digest,
        })
    }

    /// The registry domain as written in the reference (`docker.io`, `127.0.0.1:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The host (and port) to connect to: Docker Hub's API lives at `registry-1.docker.io`.
    pub fn registry_host(&self) -> &str {
        if self.domain == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.domain
        }
    }

    /// The repository path inside the registry (`library/alpine`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, unless the reference is by digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, for a reference by digest.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The tag or digest the registry's manifest endpoint is asked for.
    pub fn object(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The full repository name without tag or digest (`docker.io/library/alpine`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as Docker shows it (`alpine`, `user/app`, `127.0.0.1:5000/base`).
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

    /// The reference as Docker shows it (`alpine:latest`, `127.0.0.1:5000/base:1`); this is the
    /// name the local image store tags pulled images with.
    pub fn familiar(&self) -> String {
        self.with_name(self.familiar_name())
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        Reference::parse(&format!("{}:{tag}", self.name()))
    }

    /// The same repository pinned to `digest`.
    pub fn with_digest(&self, digest: &str) -> Result<Self, Error> {
        Reference::parse(&format!("{}@{digest}", self.name()))
    }

    fn with_name(&self, name: String) -> String {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => format!("{name}@{d}"),
            (Some(t), None) => format!("{name}:{t}"),
            (None, None) => name,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_name(self.name()))
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Reference::parse(s)
    }
}

fn validate_digest(d: &str) -> Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(format!("invalid digest {d:?}"));
    };
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => return Err(format!("unsupported digest algorithm {other:?}")),
    };
    if hex.len() != want {
        return Err(format!(
            "invalid digest {d:?}: {alg} takes {want} hex digits"
        ));
    }
    Ok(())
}

/// Splits `name` into a registry domain and the rest, the way Docker's `splitDockerDomain` does.
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
    //! Cases from distribution/reference's `normalize_test.go`.
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
            let err = Reference::parse(n).expect_err(n);
            assert!(
                err.to_string().contains(n),
                "error names the reference: {err}"
            );
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
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.to_string(), want, "{input}");
            assert_eq!(
                Reference::parse(&r.to_string()).unwrap(),
                r,
                "{input} round-trips"
            );
        }
    }

    #[test]
    fn familiar_forms_and_hosts() {
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(r.familiar(), "alpine:latest");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        let r = Reference::parse("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(r.familiar(), "127.0.0.1:5000/team/app:1");
        assert_eq!((r.registry_host(), r.object()), ("127.0.0.1:5000", "1"));
        let bad = Reference::parse("alpine@sha256:abc").unwrap_err();
        assert!(bad.to_string().contains("alpine@sha256:abc"), "{bad}");
        let bad = Reference::parse("alpine@md5:0123456789abcdef0123456789abcdef").unwrap_err();
        assert!(
            bad.to_string().contains("unsupported digest algorithm"),
            "{bad}"
        );
    }
}
