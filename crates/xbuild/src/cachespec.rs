//! Build cache import/export specs (`--cache-from`, `--cache-to`), as BuildKit writes them:
//! `type=registry,ref=HOST/REPO:TAG[,mode=min|max]`, `type=local,src|dest=DIR`,
//! `type=inline`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::Error;

/// How much cache an export writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Only the layers of the result (BuildKit's default).
    #[default]
    Min,
    /// Every intermediate step.
    Max,
}

/// Where build cache comes from or goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheSpec {
    /// A cache manifest in a registry.
    Registry {
        /// `HOST/REPO:TAG`.
        reference: String,
        /// How much an export writes.
        mode: CacheMode,
        /// Also export the contents of cache mounts.
        export_mounts: bool,
    },
    /// A directory (an OCI layout).
    Local {
        /// The directory (`src=` to import, `dest=` to export).
        dir: PathBuf,
        /// How much an export writes.
        mode: CacheMode,
        /// Also export the contents of cache mounts.
        export_mounts: bool,
    },
    /// Cache metadata inside the image itself.
    Inline,
}

impl CacheSpec {
    /// Parses BuildKit's `--cache-from`/`--cache-to` syntax. A bare reference means
    /// `type=registry,ref=REF`.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Usage(format!("invalid cache spec {spec:?}: {why}"));
        if !spec.contains('=') {
            return Ok(CacheSpec::Registry {
                reference: spec.trim().to_string(),
                mode: CacheMode::Min,
                export_mounts: false,
            });
        }
        let mut kv = BTreeMap::new();
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad("expected key=value pairs such as type=registry,ref=REF"))?;
            kv.insert(k.trim().to_string(), v.trim().to_string());
        }
        let mode = match kv.remove("mode").as_deref() {
            None | Some("min") => CacheMode::Min,
            Some("max") => CacheMode::Max,
            Some(other) => return Err(bad(&format!("mode={other} must be min or max"))),
        };
        let typ = kv.remove("type").unwrap_or_else(|| "registry".into());
        let spec = match typ.as_str() {
            "registry" => CacheSpec::Registry {
                reference: kv.remove("ref").ok_or_else(|| bad("ref= is required"))?,
                mode,
                export_mounts: false,
            },
            "local" => CacheSpec::Local {
                dir: kv
                    .remove("src")
                    .or_else(|| kv.remove("dest"))
                    .ok_or_else(|| bad("src= or dest= is required"))?
                    .into(),
                mode,
                export_mounts: false,
            },
            "inline" => CacheSpec::Inline,
            other => {
                return Err(bad(&format!(
                    "type={other} is not supported; use registry, local or inline"
                )));
            }
        };
        if let Some(k) = kv.keys().next() {
            return Err(bad(&format!("unknown option {k}=")));
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_local_and_inline() {
        assert_eq!(
            CacheSpec::parse("type=registry,ref=127.0.0.1:5000/cache:x,mode=max").unwrap(),
            CacheSpec::Registry {
                reference: "127.0.0.1:5000/cache:x".into(),
                mode: CacheMode::Max,
                export_mounts: false,
            }
        );
        assert_eq!(
            CacheSpec::parse("type=local,dest=/tmp/c").unwrap(),
            CacheSpec::Local {
                dir: "/tmp/c".into(),
                mode: CacheMode::Min,
                export_mounts: false,
            }
        );
        assert_eq!(CacheSpec::parse("type=inline").unwrap(), CacheSpec::Inline);
        assert!(CacheSpec::parse("type=registry").is_err());
        assert!(CacheSpec::parse("type=s3,ref=x").is_err());
        assert!(CacheSpec::parse("type=registry,ref=x,mode=all").is_err());
    }
}
