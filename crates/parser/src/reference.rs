//! Docker image references: validation and normalization (`busybox` →
//! `docker.io/library/busybox:latest`), as `distribution/reference` does it.

/// A parsed reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host, e.g. `docker.io`.
    pub domain: String,
    /// The repository path, e.g. `library/busybox`.
    pub path: String,
    /// The tag, if given.
    pub tag: Option<String>,
    /// The digest, if given.
    pub digest: Option<String>,
}

impl ImageRef {
    /// The fully qualified name with a tag (`latest` when neither tag nor digest was given),
    /// as BuildKit's `TagNameOnly(ParseNormalizedNamed(s))` prints it.
    pub fn normalized(&self) -> String {
        let mut s = format!("{}/{}", self.domain, self.path);
        match (&self.tag, &self.digest) {
            (Some(t), _) => {
                s.push(':');
                s.push_str(t);
            }
            (None, None) => s.push_str(":latest"),
            (None, Some(_)) => {}
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The familiar short form (`busybox:latest`, `example.com/app:1`).
    pub fn familiar(&self) -> String {
        let n = self.normalized();
        let short = n
            .strip_prefix("docker.io/library/")
            .or_else(|| n.strip_prefix("docker.io/"))
            .unwrap_or(&n);
        short.to_string()
    }
}

fn component_ok(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok || sep.is_empty() {
            return false;
        }
    }
    true
}

fn domain_ok(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') {
        return host.ends_with(']');
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Parses and normalizes `s` (`ParseNormalizedNamed`).
pub fn parse(s: &str) -> Result<ImageRef, String> {
    const BAD: &str = "invalid reference format";
    if s.is_empty() {
        return Err(BAD.into());
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (s, None),
    };
    if let Some(d) = &digest {
        let (alg, hex) = d.split_once(':').ok_or(BAD)?;
        if alg.is_empty() || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BAD.into());
        }
    }
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(name_tag[last_slash + i + 1..].to_string()),
        ),
        None => (name_tag, None),
    };
    if let Some(t) = &tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return Err(BAD.into());
        }
    }
    let (domain, path) = match name.split_once('/') {
        Some((d, rest))
            if d.contains('.') || d.contains(':') || d == "localhost" || d.to_lowercase() != d =>
        {
            (d.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    if path.to_lowercase() != path {
        return Err(format!("{BAD}: repository name must be lowercase"));
    }
    if !domain_ok(&domain) || !path.split('/').all(component_ok) {
        return Err(BAD.into());
    }
    if name.len() > 255 {
        return Err("repository name must not be more than 255 characters".into());
    }
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    Ok(ImageRef {
        domain,
        path,
        tag,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(
            parse("busybox").unwrap().normalized(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            parse("busybox:local").unwrap().normalized(),
            "docker.io/library/busybox:local"
        );
        assert_eq!(
            parse("localhost:5000/app:1").unwrap().normalized(),
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
            parse(&d).unwrap().normalized(),
            format!("docker.io/library/{d}")
        );
    }
}
