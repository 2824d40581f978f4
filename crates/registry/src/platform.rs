//! The build platform, and picking its manifest out of an index or manifest list.

use std::fmt;

use xbuild_cache::oci::{Descriptor, Index};

/// An OS/architecture(/variant) triple as OCI names it (`linux/amd64`, `linux/arm64/v8`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// The OS (`linux`).
    pub os: String,
    /// The architecture (`amd64`).
    pub architecture: String,
    /// The variant (`v8`), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// A platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The machine's own platform (Linux on the host CPU).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new("linux", arch, None)
    }

    fn variant_matches(&self, other: Option<&str>) -> bool {
        let norm = |v: Option<&str>| match (self.architecture.as_str(), v) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        match &self.variant {
            None => true,
            Some(_) => norm(self.variant.as_deref()) == norm(other),
        }
    }

    /// Picks the manifest for this platform from `index`; the error lists the platforms it offers.
    pub fn select<'a>(&self, index: &'a Index) -> Result<&'a Descriptor, Vec<String>> {
        let candidates = index.manifests.iter().filter(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == self.os
                    && p.architecture == self.architecture
                    && self.variant_matches(p.variant.as_deref())
            })
        });
        let mut best: Option<&Descriptor> = None;
        for d in candidates {
            let exact =
                d.platform.as_ref().and_then(|p| p.variant.as_deref()) == self.variant.as_deref();
            if best.is_none() || exact {
                best = Some(d);
                if exact {
                    break;
                }
            }
        }
        best.ok_or_else(|| {
            index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .filter(|p| p.os != "unknown")
                .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()).to_string())
                .collect()
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        serde_json::from_str(
            r#"{"schemaVersion":2,"manifests":[
            {"mediaType":"m","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
            {"mediaType":"m","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"mediaType":"m","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":1,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"m","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn selects_os_arch_and_variant() {
        let i = index();
        let pick = |p: Platform| p.select(&i).map(|d| d.digest.as_str()[7..8].to_string());
        assert_eq!(pick(Platform::new("linux", "amd64", None)).unwrap(), "3");
        assert_eq!(pick(Platform::new("linux", "arm64", None)).unwrap(), "2");
        assert_eq!(
            pick(Platform::new("linux", "arm64", Some("v8"))).unwrap(),
            "2"
        );
        assert_eq!(
            pick(Platform::new("linux", "arm", Some("v7"))).unwrap(),
            "1"
        );
        let offered = pick(Platform::new("linux", "s390x", None)).unwrap_err();
        assert_eq!(
            offered,
            vec!["linux/arm/v7", "linux/arm64/v8", "linux/amd64"]
        );
        assert!(pick(Platform::new("linux", "arm", Some("v6"))).is_err());
    }
}
