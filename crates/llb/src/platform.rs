//! Platforms (`linux/amd64`, `linux/arm64/v8`): the one platform type of xbuild. It parses and
//! normalizes what `--platform` and `FROM --platform` say, prints as `os/arch[/variant]`, and
//! serializes as the OCI `platform` object of an index's descriptors.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An OS/architecture/variant triple as OCI names it. Its JSON form is the OCI `platform`
/// object (`{"architecture":"arm64","os":"linux","variant":"v8"}`), fields in that order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// The CPU architecture (`amd64`, `arm64`, …).
    pub architecture: String,
    /// The OS (`linux`).
    pub os: String,
    /// The CPU variant (`v8`, `v7`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A platform string [`Platform::parse`] refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: unknown operating system or architecture: invalid argument")]
pub struct BadPlatform(pub String);

/// The host's architecture, as OCI names it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The operating systems a one-part platform (`--platform windows`) may name.
const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "android",
    "ios",
    "js",
    "plan9",
    "dragonfly",
    "wasip1",
];

impl Platform {
    /// A platform from its parts, taken as given (not normalized).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform this process runs on (Linux on the host CPU).
    pub fn host() -> Self {
        Platform::new("linux", host_architecture(), None)
    }

    /// Parses `os[/arch[/variant]]` (or an architecture alone, or `local`), normalizing
    /// aliases as containerd's `platforms.Normalize` does (`x86_64` → `amd64`, `aarch64` →
    /// `arm64`, `linux/arm64/v8` → `linux/arm64`, `linux/arm` → `linux/arm/v7`).
    pub fn parse(s: &str) -> Result<Self, BadPlatform> {
        if s == "local" {
            return Ok(Self::host());
        }
        let lower = s.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if parts.iter().any(|p| !valid(p)) {
            return Err(BadPlatform(s.to_string()));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [one] if KNOWN_OS.contains(one) => (*one, host_architecture(), None),
            [one] => ("linux", *one, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, v] => (*os, *arch, Some(v.to_string())),
            _ => return Err(BadPlatform(s.to_string())),
        };
        let (architecture, variant) = normalize_arch(arch, variant);
        Ok(Platform {
            architecture,
            os: os.to_string(),
            variant,
        })
    }
}

impl fmt::Display for Platform {
    /// `os/arch[/variant]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = BadPlatform;

    fn from_str(s: &str) -> Result<Self, BadPlatform> {
        Platform::parse(s)
    }
}

/// containerd's architecture normalization.
fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    match arch {
        "i386" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => ("arm64".into(), variant.filter(|v| v != "v8")),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(match variant.as_deref() {
                None | Some("7") => "v7".to_string(),
                Some(v @ ("5" | "6" | "8")) => format!("v{v}"),
                Some(v) => v.to_string(),
            }),
        ),
        other => (other.to_string(), variant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let p = |s: &str| Platform::parse(s).map(|p| p.to_string());
        assert_eq!(p("linux/amd64").unwrap(), "linux/amd64");
        assert_eq!(p("linux/arm64/v8").unwrap(), "linux/arm64");
        assert_eq!(p("linux/arm").unwrap(), "linux/arm/v7");
        assert_eq!(p("linux/arm/6").unwrap(), "linux/arm/v6");
        assert_eq!(p("linux/x86_64").unwrap(), "linux/amd64");
        assert_eq!(p("Linux/AMD64").unwrap(), "linux/amd64");
        assert_eq!(p("arm64").unwrap(), "linux/arm64");
        assert_eq!(p("local").unwrap(), Platform::host().to_string());
        assert_eq!(
            Platform::parse("linux/$X").unwrap_err().to_string(),
            "\"linux/$X\": unknown operating system or architecture: invalid argument"
        );
        assert!(Platform::parse("linux/amd64/v2/x").is_err());
        assert!(Platform::parse("linux//amd64").is_err());
    }

    #[test]
    fn json_is_the_oci_platform_object() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"architecture":"arm64","os":"linux"}"#
        );
        let v: Platform =
            serde_json::from_str(r#"{"os":"linux","architecture":"arm","variant":"v7"}"#).unwrap();
        assert_eq!(v, Platform::new("linux", "arm", Some("v7")));
    }
}
