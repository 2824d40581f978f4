//! `RUN --mount=…` values: CSV fields of `key=value` options, as BuildKit reads them.

use crate::suggest;

/// The kinds of mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountType {
    /// `type=bind` (the default).
    Bind,
    /// `type=cache`.
    Cache,
    /// `type=tmpfs`.
    Tmpfs,
    /// `type=secret`.
    Secret,
    /// `type=ssh`.
    Ssh,
}

impl MountType {
    fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// A parsed `--mount`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// The type.
    pub kind: MountType,
    /// `from=`: a stage or image to take the source from.
    pub from: Option<String>,
    /// `source=`.
    pub source: String,
    /// `target=`.
    pub target: String,
    /// Read-only (after BuildKit's defaults: bind, secret and ssh are read-only).
    pub readonly: bool,
    /// `size=` for tmpfs, in bytes.
    pub size: Option<u64>,
    /// `id=`.
    pub id: String,
    /// `sharing=`.
    pub sharing: Option<String>,
    /// `required=`.
    pub required: bool,
    /// `env=` (secrets).
    pub env: Option<String>,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
}

/// Splits one CSV record (Go's `encoding/csv` rules for a single line).
pub fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut at_start = true;
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') => {}
                        Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
                    }
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            ',' => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            '"' if at_start => quoted = true,
            '"' => return Err("bare \" in non-quoted-field".into()),
            c => cur.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("extraneous or missing \" in quoted-field".into());
    }
    out.push(cur);
    Ok(out)
}

/// The parse-time check BuildKit makes before any expansion: CSV syntax, and no variables in
/// `from=`.
pub(crate) fn check_unexpanded(value: &str) -> Result<(), String> {
    // Only a quote can make the CSV invalid and only a `$` can be a variable: most values
    // have neither and need no splitting.
    if !value.contains(['"', '$']) {
        return Ok(());
    }
    let fields = csv_fields(value).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    for f in fields {
        if let Some((k, v)) = f.split_once('=')
            && k.eq_ignore_ascii_case("from")
            && v.find('$').is_some_and(|i| i != v.len() - 1)
        {
            return Err(
                "'from' doesn't support variable expansion, define alias stage instead".into(),
            );
        }
    }
    Ok(())
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    crate::directives::parse_go_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"))
}

/// Go's `units.RAMInBytes`: `64m`, `1g`, `512k`, `1024`, with an optional `b`/`ib` suffix.
fn ram_in_bytes(v: &str) -> Option<u64> {
    let lower = v.trim().to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as u64)
}

const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// Parses a `--mount` value whose variables `expand` replaces (BuildKit's `parseMount`).
pub fn parse(
    value: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<MountSpec, String> {
    let fields = csv_fields(value).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = MountSpec {
        kind: MountType::Bind,
        from: None,
        source: String::new(),
        target: String::new(),
        readonly: false,
        size: None,
        id: String::new(),
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(raw) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(format!(
                        "unexpected key 'required' for mount type '{}'",
                        m.kind.name()
                    ));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let v = expand(raw)?;
        match key.as_str() {
            "type" => {
                m.kind = match v.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let mut e = format!("unsupported mount type {}", crate::gofmt::quote(&v));
                        if let Some(s) =
                            suggest::closest(&v, ["bind", "cache", "tmpfs", "secret", "ssh"], true)
                        {
                            e.push_str(&format!(" (did you mean {s}?)"));
                        }
                        return Err(e);
                    }
                }
            }
            "from" => m.from = Some(v),
            "source" | "src" => m.source = v,
            "target" | "dst" | "destination" => m.target = v,
            "readonly" | "ro" => {
                m.readonly = parse_bool(&key, &v)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !parse_bool(&key, &v)?;
                ro_auto = false;
            }
            "required" => {
                if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    m.required = parse_bool(&key, &v)?;
                } else {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.name()
                    ));
                }
            }
            "size" => {
                if m.kind == MountType::Tmpfs {
                    m.size = Some(
                        ram_in_bytes(&v).ok_or_else(|| format!("invalid value for {key}: {v}"))?,
                    );
                } else {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.name()
                    ));
                }
            }
            "id" => m.id = v,
            "sharing" => {
                let s = v.to_ascii_lowercase();
                if !matches!(s.as_str(), "shared" | "private" | "locked") {
                    return Err(format!(
                        "unsupported sharing value {}",
                        crate::gofmt::quote(&v)
                    ));
                }
                m.sharing = Some(s);
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&v, 8)
                        .map_err(|_| format!("invalid value {v} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    v.parse()
                        .map_err(|_| format!("invalid value {v} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    v.parse()
                        .map_err(|_| format!("invalid value {v} for gid"))?,
                )
            }
            "env" => m.env = Some(v),
            _ => {
                let mut e = format!("unexpected key '{key}' in '{field}'");
                if let Some(s) = suggest::closest(&key, KEYS.iter().copied(), true) {
                    e.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(e);
            }
        }
    }
    let file_info = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(format!(
                    "{what} not allowed for \"{}\" type mounts",
                    m.kind.name()
                ));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_empty() && m.target.is_empty() && m.id.is_empty() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if !m.source.is_empty() && !m.id.is_empty() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            m.kind.name()
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> Result<MountSpec, String> {
        parse(v, &mut |s| Ok(s.to_string()))
    }

    #[test]
    fn csv() {
        assert_eq!(csv_fields("a=1,b=2").unwrap(), vec!["a=1", "b=2"]);
        assert_eq!(csv_fields("\"a=1,2\",b").unwrap(), vec!["a=1,2", "b"]);
        assert!(csv_fields("a\"b").is_err());
        assert!(csv_fields("\"a").is_err());
    }

    #[test]
    fn mounts() {
        let m = p("type=cache,target=/root/.cache,sharing=locked").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert!(!m.readonly);
        assert_eq!(m.sharing.as_deref(), Some("locked"));
        let m = p("target=/src").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.readonly);
        let m = p("type=bind,source=/a,target=/b,rw").unwrap();
        assert!(!m.readonly);
        let m = p("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size, Some(64 * 1024 * 1024));
        let m = p("type=secret,id=tok,required").unwrap();
        assert!(m.required && m.readonly);
        assert!(
            p("type=secret")
                .unwrap_err()
                .contains("one of source, target")
        );
        assert!(p("type=bnd").unwrap_err().contains("did you mean bind?"));
        assert!(p("type=bind,mode=0700,target=/x").is_err());
        assert!(
            p("type=cache,taget=/x")
                .unwrap_err()
                .contains("did you mean target?")
        );
        assert!(check_unexpanded("type=bind,from=$X,target=/").is_err());
        assert!(check_unexpanded("type=bind,from=x$,target=/").is_ok());
    }
}
