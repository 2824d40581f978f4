//! Paths: joining and normalising them against the working directory (WORKDIR, COPY
//! destinations, `RUN --mount` targets), and the owner (`--chown`, `USER`) of the paths lowering
//! creates.

use xbuild_llb::{Chown, IdSpec};

pub use xbuild_llb::path::clean as clean_path;

/// `p` made absolute against `base` (a directory) and cleaned; a trailing `/` kept when asked.
pub fn normalize_path(base: &str, p: &str, keep_slash: bool) -> String {
    let base = if base.is_empty() { "/" } else { base };
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{base}/{p}")
    };
    let mut out = clean_path(&format!("/{joined}"));
    if keep_slash && (p.ends_with('/') || p.ends_with("/.")) && out != "/" {
        out.push('/');
    }
    out
}

/// A WORKDIR against the current one, as BuildKit's `NormalizeWorkdir`: an absolute path is kept
/// exactly as written (`/srv/../opt` stays so in the image config and history); a relative one is
/// joined to the current directory and cleaned.
pub fn normalize_workdir(current: &str, requested: &str) -> String {
    if requested.starts_with('/') {
        return requested.to_string();
    }
    let base = if current.is_empty() { "/" } else { current };
    if requested.is_empty() {
        return base.to_string();
    }
    clean_path(&format!("/{base}/{requested}"))
}

/// A COPY destination against the working directory: `.` and `` mean the directory itself.
pub(super) fn copy_dest(working_dir: &str, dest: &str) -> String {
    let d = if dest == "." || dest.is_empty() {
        "./"
    } else {
        dest
    };
    normalize_path(working_dir, d, true)
}

/// `user[:group]` as a chown spec; `None` for an empty user. An empty part is id 0, as in
/// BuildKit (an empty name marshals as id 0): `--chown=1000:` is 1000:0, `--chown=:g` 0:g.
pub fn parse_chown(user: &str) -> Option<Chown> {
    if user.is_empty() {
        return None;
    }
    let id = |s: &str| match s.parse::<u32>() {
        Ok(n) => IdSpec::Id(n),
        Err(_) if s.is_empty() => IdSpec::Id(0),
        Err(_) => IdSpec::Name(s.to_string()),
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    Some(Chown {
        user: id(u),
        group: g.map(id),
    })
}

/// The first name of `chown` that BuildKit looks up in the destination's `/etc/passwd` or
/// `/etc/group`; `None` when it needs no lookup (numbers and `root`, as llb's `WithUser`).
pub(super) fn chown_lookup_name(chown: &Chown) -> Option<&str> {
    fn name(s: &IdSpec) -> Option<&str> {
        match s {
            IdSpec::Name(n) if n != "root" => Some(n.as_str()),
            _ => None,
        }
    }
    name(&chown.user).or_else(|| chown.group.as_ref().and_then(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{normalize_workdir, parse_chown};

    /// `--chown=1000:` gave the user's gid; BuildKit's empty group name marshals as id 0.
    #[test]
    fn chown_with_an_empty_group_or_user_is_id_0() {
        use xbuild_llb::IdSpec;
        let c = parse_chown("1000:").unwrap();
        assert_eq!((c.user, c.group), (IdSpec::Id(1000), Some(IdSpec::Id(0))));
        let c = parse_chown("app:").unwrap();
        assert_eq!(
            (c.user, c.group),
            (IdSpec::Name("app".into()), Some(IdSpec::Id(0)))
        );
        let c = parse_chown(":staff").unwrap();
        assert_eq!(
            (c.user, c.group),
            (IdSpec::Id(0), Some(IdSpec::Name("staff".into())))
        );
    }

    #[test]
    fn workdir_absolute_is_kept_as_written() {
        assert_eq!(normalize_workdir("/", "/srv/../opt/x"), "/srv/../opt/x");
        assert_eq!(normalize_workdir("/a", "/b/"), "/b/");
    }

    #[test]
    fn workdir_relative_is_joined_and_cleaned() {
        assert_eq!(normalize_workdir("/srv/../opt/x", "y"), "/opt/x/y");
        assert_eq!(normalize_workdir("", "app"), "/app");
        assert_eq!(normalize_workdir("/a/b", "../c/"), "/a/c");
        assert_eq!(normalize_workdir("/a", ""), "/a");
    }
}
