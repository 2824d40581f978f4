//! Platforms (`linux/amd64`, `linux/arm64/v8`) and the build arguments BuildKit predefines from
//! them (`TARGETPLATFORM`, `BUILDARCH`, …).

/// An OS/architecture/variant triple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, … as OCI names them.
    pub architecture: String,
    /// The CPU variant (`v8`, `v7`), if any.
    pub variant: Option<String>,
}

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

impl Platform {
    /// The platform this process runs on.
    pub fn host() -> Self {
        Platform {
            os: "linux".into(),
            architecture: host_architecture().into(),
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]` (or an architecture alone, or `local`), normalizing
    /// aliases as containerd does (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(s: &str) -> Result<Self, String> {
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
        if parts.iter().any(|p| !valid(p)) || parts.len() > 3 {
            return Err(format!(
                "{s:?}: unknown operating system or architecture: invalid argument"
            ));
        }
        let known_os = [
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
        let (os, arch, variant) = match parts.as_slice() {
            [one] if known_os.contains(one) => (one.to_string(), host_architecture().into(), None),
            [one] => ("linux".to_string(), one.to_string(), None),
            [os, arch] => (os.to_string(), arch.to_string(), None),
            [os, arch, v] => (os.to_string(), arch.to_string(), Some(v.to_string())),
            _ => return Err(format!("{s:?}: invalid platform")),
        };
        let (arch, variant) = normalize_arch(&arch, variant);
        Ok(Platform {
            os,
            architecture: arch,
            variant,
        })
    }

    /// `os/arch[/variant]`.
    pub fn format(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

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
                Some("5") | Some("6") | Some("8") => format!("v{}", variant.unwrap_or_default()),
                Some(v) => v.to_string(),
            }),
        ),
        other => (other.to_string(), variant),
    }
}

/// The build arguments BuildKit predefines for FROM lines (and for stages that declare them).
pub fn predefined_args(build: &Platform, target: &Platform) -> Vec<(String, String)> {
    vec![
        ("BUILDPLATFORM".into(), build.format()),
        ("BUILDOS".into(), build.os.clone()),
        ("BUILDARCH".into(), build.architecture.clone()),
        (
            "BUILDVARIANT".into(),
            build.variant.clone().unwrap_or_default(),
        ),
        ("TARGETPLATFORM".into(), target.format()),
        ("TARGETOS".into(), target.os.clone()),
        ("TARGETARCH".into(), target.architecture.clone()),
        (
            "TARGETVARIANT".into(),
            target.variant.clone().unwrap_or_default(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().format(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().format(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().format(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().format(),
            "linux/amd64"
        );
        assert!(Platform::parse("linux/$X").is_err());
    }
}
