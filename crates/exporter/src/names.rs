//! Image names as registries and Docker spell them: `docker.io/library/busybox:latest` in full,
//! `busybox:latest` familiar.

/// The registry of a name's first component, if it names one (`localhost`, `host:port`,
/// `registry.example`).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first == "localhost" || first.contains('.') || first.contains(':') =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// Adds `:latest` when `name` has neither tag nor digest.
fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// The fully qualified name: `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize(name: &str) -> String {
    let name = with_tag(name);
    match split_domain(&name) {
        (Some(_), _) => name,
        (None, path) if path.contains('/') => format!("docker.io/{path}"),
        (None, path) => format!("docker.io/library/{path}"),
    }
}

/// The short name Docker shows: `docker.io/library/busybox:latest` → `busybox:latest`.
pub fn familiar(name: &str) -> String {
    let name = with_tag(name);
    match split_domain(&name) {
        (Some("docker.io" | "index.docker.io"), path) => path
            .strip_prefix("library/")
            .filter(|p| !p.contains('/'))
            .unwrap_or(path)
            .to_string(),
        _ => name,
    }
}

/// The tag of a name (`latest` when none), for the OCI `ref.name` annotation.
pub fn tag_of(name: &str) -> String {
    let name = with_tag(name);
    let last = name.rsplit('/').next().unwrap_or(&name);
    match last.split_once('@') {
        Some(_) => name.clone(),
        None => last
            .rsplit_once(':')
            .map(|(_, t)| t.to_string())
            .unwrap_or_else(|| "latest".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_familiarize() {
        for (short, full) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("app:1", "docker.io/library/app:1"),
            ("team/app:2", "docker.io/team/app:2"),
            ("localhost:5000/a/b:3", "localhost:5000/a/b:3"),
            ("localhost/x", "localhost/x:latest"),
            ("reg.example/x:4", "reg.example/x:4"),
        ] {
            assert_eq!(normalize(short), full);
            assert_eq!(familiar(full), with_tag(short));
        }
        assert_eq!(tag_of("localhost:5000/a"), "latest");
        assert_eq!(tag_of("a:v1"), "v1");
    }
}
