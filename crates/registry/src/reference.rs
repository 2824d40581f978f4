//! Image references as the registry client takes them: the one
//! [`Reference`](xbuild_llb::reference::Reference) of `xbuild_llb`, parsed as `docker pull`
//! does ([`parse_reference`]: `alpine` is `docker.io/library/alpine:latest`), with what only a
//! registry needs on top ([`RegistryAddress`]: the host to connect to, the manifest to ask for).

use xbuild_llb::reference::{DEFAULT_TAG, DOCKER_HUB, Reference, ReferenceError};

use crate::Error;

/// Parses `s` the way `docker pull` does ([`Reference::parse_docker_ref`]): a missing domain
/// is Docker Hub, a one-part Docker Hub name gets `library/`, no tag and no digest means
/// `:latest`, and a reference with both a tag and a digest keeps only the digest.
pub fn parse_reference(s: &str) -> Result<Reference, Error> {
    Reference::parse_docker_ref(s).map_err(|e| invalid(s, &e))
}

/// `reference` pinned to `digest` (a manifest an index names), or the error naming both.
pub(crate) fn pinned(reference: &Reference, digest: &str) -> Result<Reference, Error> {
    reference
        .with_digest(digest)
        .map_err(|e| invalid(&format!("{}@{digest}", reference.name()), &e))
}

/// The registry's error for `reference`, which does not parse because of `e`.
fn invalid(reference: &str, e: &ReferenceError) -> Error {
    Error::InvalidReference {
        reference: reference.to_string(),
        message: e.to_string(),
    }
}

/// Where a reference lives on the wire: the registry host and the manifest to ask it for.
pub trait RegistryAddress {
    /// The host (and port) to connect to: Docker Hub's API lives at `registry-1.docker.io`.
    fn registry_host(&self) -> &str;

    /// The tag or digest the registry's manifest endpoint is asked for (the digest when the
    /// reference has both; `latest` when it has neither).
    fn object(&self) -> &str;
}

impl RegistryAddress for Reference {
    fn registry_host(&self) -> &str {
        if self.domain() == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            self.domain()
        }
    }

    fn object(&self) -> &str {
        self.digest().or(self.tag()).unwrap_or(DEFAULT_TAG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_reference() {
        for n in [
            "",
            "docker/Docker",
            "-docker",
            "busybox:tägé",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        ] {
            let err = parse_reference(n).expect_err(n);
            assert!(
                err.to_string().contains(&format!("{n:?}")),
                "error names the reference: {err}"
            );
        }
    }

    #[test]
    fn familiar_forms_and_hosts() {
        let r = parse_reference("alpine").unwrap();
        assert_eq!(r.familiar(), "alpine:latest");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        let r = parse_reference("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(r.familiar(), "127.0.0.1:5000/team/app:1");
        assert_eq!((r.registry_host(), r.object()), ("127.0.0.1:5000", "1"));
        let bad = parse_reference("alpine@sha256:abc").unwrap_err();
        assert!(bad.to_string().contains("alpine@sha256:abc"), "{bad}");
        let bad = parse_reference("alpine@md5:0123456789abcdef0123456789abcdef").unwrap_err();
        assert!(
            bad.to_string().contains("unsupported digest algorithm"),
            "{bad}"
        );
    }

    #[test]
    fn an_uppercase_hex_digest_is_refused() {
        let upper = format!("alpine@sha256:{}", "A".repeat(64));
        let err = parse_reference(&upper).unwrap_err();
        assert!(err.to_string().contains("lowercase hex"), "{err}");
        assert!(parse_reference(&upper.to_lowercase()).is_ok());
    }

    #[test]
    fn a_pinned_child_drops_the_tag() {
        let r = parse_reference("127.0.0.1:5000/team/app:1").unwrap();
        let d = format!("sha256:{}", "e".repeat(64));
        let child = pinned(&r, &d).unwrap();
        assert_eq!(child.object(), d);
        assert_eq!(child.to_string(), format!("127.0.0.1:5000/team/app@{d}"));
        let bad = pinned(&r, "sha256:nothex").unwrap_err();
        assert!(bad.to_string().contains("team/app@sha256:nothex"), "{bad}");
    }
}
