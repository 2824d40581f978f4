//! Image references as the local store names them: `name[:tag]`, `:latest` by default.

/// A `name:tag` reference split in two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The repository (`busybox`, `registry:5000/team/app`).
    pub repository: String,
    /// The tag (`latest` when none was given).
    pub tag: String,
}

impl Reference {
    /// Parses `name[:tag]`; a `:` before the last `/` is a registry port, not a tag. A digest
    /// reference (`name@sha256:…`) is refused: it names no tag (lookups by digest go through
    /// the registry's reference parser and the store's pinned resolution instead).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("an image reference cannot be empty".into());
        }
        if s.contains('@') {
            return Err(format!(
                "{s}: refusing to create a tag with a digest reference; a tag is name[:tag] (images are found by digest with name@sha256:…)"
            ));
        }
        let slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match s[slash..].rfind(':') {
            Some(i) => (&s[..slash + i], &s[slash + i + 1..]),
            None => (s, "latest"),
        };
        let valid_repo = !repository.is_empty()
            && repository
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c));
        if !valid_repo {
            return Err(format!(
                "invalid reference format {s:?}: repository name must be lowercase letters, digits and . _ - /"
            ));
        }
        let valid_tag = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !tag.starts_with(['.', '-']);
        if !valid_tag {
            return Err(format!(
                "invalid reference format {s:?}: invalid tag {tag:?}"
            ));
        }
        Ok(Reference {
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
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
        assert!(Reference::parse(&pinned).unwrap_err().contains("tag"));
    }
}
