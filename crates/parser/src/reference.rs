//! `FROM` names and `--from` images as image references: the one
//! [`Reference`] of `xbuild_llb`, parsed as BuildKit's Dockerfile frontend does
//! (`TagNameOnly(ParseNormalizedNamed(s))`: `busybox` → `docker.io/library/busybox:latest`),
//! with the parser's own diagnostic texts for what does not parse.

use xbuild_llb::reference::{Reference, ReferenceError};

/// The text of most reference diagnostics, as Docker words it.
const BAD: &str = "invalid reference format";

/// Parses and normalizes `s`, with `:latest` when it names neither a tag nor a digest (a tag
/// and a digest given together are both kept); the error is the diagnostic's text.
pub fn parse(s: &str) -> Result<Reference, String> {
    Reference::parse(s)
        .map(Reference::with_default_tag)
        .map_err(|e| diagnostic(&e))
}

/// The parser's words for why a name is not a reference.
fn diagnostic(e: &ReferenceError) -> String {
    match e {
        ReferenceError::Uppercase(_) => format!("{BAD}: repository name must be lowercase"),
        ReferenceError::NameTooLong | ReferenceError::ImageId => format!("{BAD}: {e}"),
        _ => BAD.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(
            parse("busybox").unwrap().to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            parse("busybox:local").unwrap().to_string(),
            "docker.io/library/busybox:local"
        );
        assert_eq!(
            parse("localhost:5000/app:1").unwrap().to_string(),
            "localhost:5000/app:1"
        );
        assert_eq!(
            parse("gcr.io/distroless/static").unwrap().familiar(),
            "gcr.io/distroless/static:latest"
        );
        assert_eq!(parse("nginx:latest").unwrap().familiar(), "nginx:latest");
        assert!(parse("Busybox").unwrap_err().contains("lowercase"));
        assert!(parse("${X}").is_err());
        assert!(parse(":tag").is_err());
        assert!(parse("a:b:c").is_err());
        assert!(parse("a//b").is_err());
        let d = format!("alpine@sha256:{}", "a".repeat(64));
        assert_eq!(
            parse(&d).unwrap().to_string(),
            format!("docker.io/library/{d}")
        );
        let pinned = format!("alpine:3@sha256:{}", "a".repeat(64));
        assert_eq!(parse(&pinned).unwrap().familiar(), pinned);
    }

    #[test]
    fn diagnostics_keep_the_parsers_texts() {
        assert_eq!(parse("").unwrap_err(), BAD);
        assert_eq!(parse("a//b").unwrap_err(), BAD);
        assert_eq!(
            parse("Busybox").unwrap_err(),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(
            parse(&format!("{}a", "a/".repeat(128))).unwrap_err(),
            "invalid reference format: repository name must not be more than 255 characters"
        );
    }

    #[test]
    fn index_docker_io_is_docker_hub() {
        let r = parse("index.docker.io/library/alpine").unwrap();
        assert_eq!(r.familiar(), "alpine:latest");
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
    }

    #[test]
    fn a_nested_library_path_stays_in_the_familiar_form() {
        assert_eq!(
            parse("docker.io/library/foo/bar").unwrap().familiar(),
            "library/foo/bar:latest"
        );
    }

    #[test]
    fn an_image_id_is_no_stage_image() {
        let id = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
        assert!(parse(id).unwrap_err().contains("image ID"));
    }

    #[test]
    fn digests_need_a_known_algorithm_and_its_exact_lowercase_hex() {
        for bad in [
            format!("alpine@md5:{}", "0".repeat(32)),
            format!("alpine@sha256:{}", "0".repeat(40)),
            format!("alpine@sha256:{}", "A".repeat(64)),
        ] {
            assert_eq!(parse(&bad).unwrap_err(), BAD, "{bad}");
        }
    }

    #[test]
    fn the_length_limit_counts_the_path_not_the_domain() {
        let name = format!("registry.example.com/{}", "a".repeat(250));
        assert!(parse(&name).is_ok());
    }
}
