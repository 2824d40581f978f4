//! Image names as registries and Docker spell them (`docker.io/library/busybox:latest` in full,
//! `busybox:latest` familiar): thin uses of the one
//! [`Reference`] of `xbuild_llb`, with `:latest` when a name has neither tag nor digest. A name
//! that is no reference (an archive being loaded may carry anything) is kept as given.

use xbuild_llb::reference::{DEFAULT_TAG, Reference};

/// `name` parsed, with `:latest` when it has neither tag nor digest.
fn parsed(name: &str) -> Option<Reference> {
    Reference::parse(name).ok().map(Reference::with_default_tag)
}

/// The fully qualified name: `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize(name: &str) -> String {
    parsed(name).map_or_else(|| name.to_string(), |r| r.to_string())
}

/// The short name Docker shows: `docker.io/library/busybox:latest` → `busybox:latest`.
pub fn familiar(name: &str) -> String {
    parsed(name).map_or_else(|| name.to_string(), |r| r.familiar())
}

/// The tag of a name (`latest` when none), for the OCI `ref.name` annotation; a name with a
/// digest is its own `ref.name`.
pub fn tag_of(name: &str) -> String {
    match parsed(name) {
        Some(r) if r.digest().is_none() => r.tag().unwrap_or(DEFAULT_TAG).to_string(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_familiarize() {
        for (short, full, familiar_form) in [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("app:1", "docker.io/library/app:1", "app:1"),
            ("team/app:2", "docker.io/team/app:2", "team/app:2"),
            (
                "localhost:5000/a/b:3",
                "localhost:5000/a/b:3",
                "localhost:5000/a/b:3",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            ("reg.example/x:4", "reg.example/x:4", "reg.example/x:4"),
        ] {
            assert_eq!(normalize(short), full);
            assert_eq!(familiar(full), familiar_form);
        }
        assert_eq!(tag_of("localhost:5000/a"), "latest");
        assert_eq!(tag_of("a:v1"), "v1");
        let pinned = format!("a@sha256:{}", "0".repeat(64));
        assert_eq!(tag_of(&pinned), pinned);
        assert_eq!(normalize(&pinned), format!("docker.io/library/{pinned}"));
    }

    #[test]
    fn normalize_folds_index_docker_io() {
        assert_eq!(
            normalize("index.docker.io/team/app:1"),
            "docker.io/team/app:1"
        );
        assert_eq!(
            normalize("index.docker.io/app"),
            "docker.io/library/app:latest"
        );
    }

    #[test]
    fn names_that_are_no_reference_are_kept_as_given() {
        for bad in ["Team/App", "a..b", "-x:1"] {
            assert_eq!(normalize(bad), bad);
            assert_eq!(familiar(bad), bad);
            assert_eq!(tag_of(bad), bad);
        }
    }
}
