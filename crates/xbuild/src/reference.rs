//! Image references as the local store names them: `name[:tag]`, `:latest` by default. The
//! grammar is that of the one [`xbuild_llb::reference::Reference`]; the store's policy on top
//! keeps the name as written (it is the store's key) and refuses digests.

use xbuild_llb::reference::{self, ReferenceError};

/// A `name:tag` reference split in two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The repository as written (`busybox`, `registry:5000/team/app`).
    pub repository: String,
    /// The tag (`latest` when none was given).
    pub tag: String,
}

impl Reference {
    /// Parses `name[:tag]`; a `:` before the last `/` is a registry port, not a tag. A digest
    /// reference (`name@sha256:…`) is refused: it names no tag (lookups by digest go through
    /// the registry's reference parser and the store's pinned resolution instead).
    pub fn parse(s: &str) -> Result<Self, TagError> {
        if s.is_empty() {
            return Err(TagError::Grammar {
                name: String::new(),
                problem: ReferenceError::Empty,
            });
        }
        if s.contains('@') {
            return Err(TagError::Digest(s.to_string()));
        }
        let parsed = reference::Reference::parse(s).map_err(|e| refusal(s, e))?;
        let (repository, tag) = match parsed.tag() {
            Some(t) => (
                s.strip_suffix(t)
                    .and_then(|r| r.strip_suffix(':'))
                    .unwrap_or(s),
                t,
            ),
            None => (s, reference::DEFAULT_TAG),
        };
        Ok(Reference {
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }
}

/// Why a name is no `name[:tag]` the local store can use ([`Reference::parse`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A digest reference (`name@sha256:…`): it names no tag.
    #[error(
        "{0}: refusing to create a tag with a digest reference; a tag is name[:tag] (images are found by digest with name@sha256:…)"
    )]
    Digest(String),
    /// A valid repository with a tag that is not (`app:-x`).
    #[error("invalid reference format {name:?}: invalid tag {tag:?}")]
    Tag {
        /// The name, as given.
        name: String,
        /// The tag, as given.
        tag: String,
    },
    /// A name outside the grammar of image references.
    /// (The message words `problem` for the store; it is not a separate cause.)
    #[error("{}", grammar_message(name, problem))]
    Grammar {
        /// The name, as given.
        name: String,
        /// What the grammar refuses.
        problem: ReferenceError,
    },
}

impl TagError {
    /// The name refused, as given.
    pub fn name(&self) -> &str {
        match self {
            TagError::Digest(name)
            | TagError::Tag { name, .. }
            | TagError::Grammar { name, .. } => name,
        }
    }
}

/// Which part of `s` the grammar's error `e` is about: the tag when the name before it parses.
fn refusal(s: &str, e: ReferenceError) -> TagError {
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    if let Some(i) = s[slash..].rfind(':') {
        let (repository, tag) = (&s[..slash + i], &s[slash + i + 1..]);
        if reference::Reference::parse(repository).is_ok() {
            return TagError::Tag {
                name: s.to_string(),
                tag: tag.to_string(),
            };
        }
    }
    TagError::Grammar {
        name: s.to_string(),
        problem: e,
    }
}

/// The store's words for why `name` is outside the grammar (`e`).
fn grammar_message(name: &str, e: &ReferenceError) -> String {
    match e {
        ReferenceError::Empty => e.to_string(),
        ReferenceError::Uppercase(_) | ReferenceError::Format => format!(
            "invalid reference format {name:?}: repository name must be lowercase letters, digits and . _ - /"
        ),
        e => format!("invalid reference format {name:?}: {e}"),
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(
            Reference::parse("busybox").unwrap().to_string(),
            "busybox:latest"
        );
        assert_eq!(Reference::parse("demo:1").unwrap().tag, "1");
        let r = Reference::parse("localhost:5000/a/b").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("localhost:5000/a/b", "latest")
        );
        assert!(Reference::parse("Upper:1").is_err());
        assert!(Reference::parse("a:").is_err());
        assert!(Reference::parse("").is_err());
        let pinned = format!("a@sha256:{}", "0".repeat(64));
        let e = Reference::parse(&pinned).unwrap_err();
        assert_eq!(e, TagError::Digest(pinned.clone()));
        assert!(e.to_string().contains("tag"), "{e}");
    }

    #[test]
    fn the_name_is_kept_as_written() {
        let r = Reference::parse("docker.io/library/busybox:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:1");
        let r = Reference::parse("registry:5000/team/app:v2").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("registry:5000/team/app", "v2")
        );
    }

    #[test]
    fn messages_say_which_part_is_wrong() {
        assert_eq!(
            Reference::parse("").unwrap_err().to_string(),
            "an image reference cannot be empty"
        );
        let e = Reference::parse("app:-x").unwrap_err();
        assert!(
            matches!(&e, TagError::Tag { name, tag, .. } if name == "app:-x" && tag == "-x"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "invalid reference format \"app:-x\": invalid tag \"-x\""
        );
        let e = Reference::parse("Upper:1").unwrap_err();
        assert!(
            matches!(
                &e,
                TagError::Grammar { name, problem: ReferenceError::Uppercase(_) } if name == "Upper:1"
            ),
            "{e:?}"
        );
        assert_eq!(e.name(), "Upper:1");
        assert!(e.to_string().contains("repository name must be lowercase"));
    }

    #[test]
    fn names_follow_dockers_grammar() {
        for bad in ["a..b", "-a", "a//b", "a/", "a-/b", "dock_.er"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}a", "a/".repeat(128));
        let e = Reference::parse(&long).unwrap_err();
        assert!(
            matches!(
                e,
                TagError::Grammar {
                    problem: ReferenceError::NameTooLong,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("255"), "{e}");
    }

    #[test]
    fn an_uppercase_first_component_is_a_registry_host() {
        let r = Reference::parse("LOCALDOMAIN/app:1").unwrap();
        assert_eq!(r.repository, "LOCALDOMAIN/app");
    }

    #[test]
    fn a_64_hex_name_is_an_image_id_not_a_tag() {
        let id = "a".repeat(64);
        let e = Reference::parse(&id).unwrap_err();
        assert!(e.to_string().contains("image ID"), "{e}");
    }
}
