//! `--cache-to` / `--cache-from` specifications in BuildKit's syntax: `type=registry,ref=R`,
//! `type=local,src=DIR` / `dest=DIR`, `type=inline`, or a bare reference (a registry cache).

use std::path::PathBuf;

use crate::{CacheSpecError, Error, OptionName, Reference};

/// Which results a cache export carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Only the results whose layers make up the exported image (BuildKit's default).
    #[default]
    Min,
    /// Every result of every stage the build solved.
    Max,
}

/// Where build cache is exported to or imported from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheSpec {
    /// A cache manifest (an OCI index) and its blobs in a registry repository.
    Registry {
        /// The reference the cache index is pushed to or pulled from.
        reference: String,
        /// Which results to export.
        mode: CacheMode,
        /// Also carry the contents of `RUN --mount=type=cache` directories.
        export_mounts: bool,
    },
    /// The same as an OCI image layout in a local directory.
    Local {
        /// The directory (`dest=` for an export, `src=` for an import).
        dir: PathBuf,
        /// Which results to export.
        mode: CacheMode,
        /// Also carry the contents of `RUN --mount=type=cache` directories.
        export_mounts: bool,
    },
    /// Cache metadata embedded in the pushed image's config (`moby.buildkit.cache.v0`).
    Inline,
}

/// Whether a spec is parsed for `--cache-to` or `--cache-from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    To,
    From,
}

impl Direction {
    fn option(self) -> OptionName {
        match self {
            Direction::To => OptionName::CacheTo,
            Direction::From => OptionName::CacheFrom,
        }
    }

    /// The key naming a local cache's directory.
    fn dir_key(self) -> &'static str {
        match self {
            Direction::To => "dest",
            Direction::From => "src",
        }
    }
}

impl CacheSpec {
    /// Parses a `--cache-to` value.
    pub fn parse_to(spec: &str) -> Result<Self, Error> {
        Self::parse_with(spec, Direction::To)
    }

    /// Parses a `--cache-from` value.
    pub fn parse_from(spec: &str) -> Result<Self, Error> {
        Self::parse_with(spec, Direction::From)
    }

    /// Parses either direction's syntax (`src=` and `dest=` both name a local directory).
    pub fn parse(spec: &str) -> Result<Self, Error> {
        Self::parse_to(spec).or_else(|_| Self::parse_from(spec))
    }

    fn parse_with(spec: &str, dir: Direction) -> Result<Self, Error> {
        let usage = |problem: CacheSpecError| Error::CacheSpec {
            option: dir.option(),
            spec: spec.to_string(),
            problem,
        };
        let bad_reference = |e| usage(CacheSpecError::Reference(e));
        let spec_t = spec.trim();
        if spec_t.is_empty() {
            return Err(usage(CacheSpecError::Empty));
        }
        if !spec_t.contains('=') {
            Reference::parse(spec_t).map_err(bad_reference)?;
            return Ok(CacheSpec::Registry {
                reference: spec_t.to_string(),
                mode: CacheMode::Min,
                export_mounts: false,
            });
        }
        let mut typ = None;
        let mut reference = None;
        let mut path = None;
        let mut mode = CacheMode::Min;
        let mut export_mounts = false;
        for part in spec_t.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| usage(CacheSpecError::NotKeyValue(part.to_string())))?;
            let (k, v) = (k.trim(), v.trim());
            match k {
                "type" => typ = Some(v.to_string()),
                "ref" => reference = Some(v.to_string()),
                "dest" if dir == Direction::To => path = Some(PathBuf::from(v)),
                "src" if dir == Direction::From => path = Some(PathBuf::from(v)),
                "mode" if dir == Direction::To => {
                    mode = match v {
                        "min" => CacheMode::Min,
                        "max" => CacheMode::Max,
                        other => return Err(usage(CacheSpecError::Mode(other.to_string()))),
                    }
                }
                "export-mounts" if dir == Direction::To => {
                    export_mounts = match v {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(usage(CacheSpecError::ExportMounts(other.to_string())));
                        }
                    }
                }
                // Accepted by BuildKit and meaningless here: xbuild writes OCI media types and
                // gzip layers, and ignores cache errors only where BuildKit does.
                "oci-mediatypes" | "compression" | "compression-level" | "force-compression"
                | "ignore-error" | "image-manifest" | "tag"
                    if dir == Direction::To => {}
                other => return Err(usage(CacheSpecError::UnknownKey(other.to_string()))),
            }
        }
        let typ = typ.ok_or_else(|| usage(CacheSpecError::MissingType))?;
        match typ.as_str() {
            "registry" => {
                let reference = reference.ok_or_else(|| usage(CacheSpecError::MissingRef))?;
                Reference::parse(&reference).map_err(bad_reference)?;
                if path.is_some() {
                    return Err(usage(CacheSpecError::DirOnRegistry));
                }
                Ok(CacheSpec::Registry {
                    reference,
                    mode,
                    export_mounts,
                })
            }
            "local" => {
                let dir_path =
                    path.ok_or_else(|| usage(CacheSpecError::MissingDir { key: dir.dir_key() }))?;
                if reference.is_some() {
                    return Err(usage(CacheSpecError::RefOnLocal));
                }
                Ok(CacheSpec::Local {
                    dir: dir_path,
                    mode,
                    export_mounts,
                })
            }
            "inline" => {
                if reference.is_some() || path.is_some() || export_mounts {
                    return Err(usage(CacheSpecError::InlineWithOptions));
                }
                if mode == CacheMode::Max {
                    return Err(usage(CacheSpecError::InlineMax));
                }
                Ok(CacheSpec::Inline)
            }
            other => Err(usage(CacheSpecError::UnknownType(other.to_string()))),
        }
    }

    /// The export mode (`Min` for an import or an inline cache).
    pub fn mode(&self) -> CacheMode {
        match self {
            CacheSpec::Registry { mode, .. } | CacheSpec::Local { mode, .. } => *mode,
            CacheSpec::Inline => CacheMode::Min,
        }
    }

    /// True when `RUN --mount=type=cache` contents travel with the cache.
    pub fn export_mounts(&self) -> bool {
        match self {
            CacheSpec::Registry { export_mounts, .. } | CacheSpec::Local { export_mounts, .. } => {
                *export_mounts
            }
            CacheSpec::Inline => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_forms() {
        assert_eq!(
            CacheSpec::parse_to("type=registry,ref=127.0.0.1:5000/c:1,mode=max").unwrap(),
            CacheSpec::Registry {
                reference: "127.0.0.1:5000/c:1".into(),
                mode: CacheMode::Max,
                export_mounts: false,
            }
        );
        assert_eq!(
            CacheSpec::parse_from("127.0.0.1:5000/c:1").unwrap(),
            CacheSpec::Registry {
                reference: "127.0.0.1:5000/c:1".into(),
                mode: CacheMode::Min,
                export_mounts: false,
            }
        );
        let s = CacheSpec::parse_to("type=registry,ref=r/c,export-mounts=true").unwrap();
        assert!(s.export_mounts());
        assert_eq!(s.mode(), CacheMode::Min);
    }

    #[test]
    fn local_forms() {
        assert_eq!(
            CacheSpec::parse_to("type=local,dest=/tmp/c").unwrap(),
            CacheSpec::Local {
                dir: "/tmp/c".into(),
                mode: CacheMode::Min,
                export_mounts: false,
            }
        );
        assert_eq!(
            CacheSpec::parse_from("type=local,src=/tmp/c").unwrap(),
            CacheSpec::Local {
                dir: "/tmp/c".into(),
                mode: CacheMode::Min,
                export_mounts: false,
            }
        );
        assert!(CacheSpec::parse("type=local,src=/tmp/c").is_ok());
        assert!(CacheSpec::parse("type=local,dest=/tmp/c").is_ok());
    }

    #[test]
    fn inline() {
        assert_eq!(
            CacheSpec::parse_to("type=inline").unwrap(),
            CacheSpec::Inline
        );
        assert_eq!(
            CacheSpec::parse_from("type=inline").unwrap(),
            CacheSpec::Inline
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let msg = |s: &str, to: bool| {
            let r = if to {
                CacheSpec::parse_to(s)
            } else {
                CacheSpec::parse_from(s)
            };
            r.unwrap_err().to_string()
        };
        assert!(msg("type=s3,ref=x", true).contains("type=s3 is not supported"));
        assert!(msg("type=registry,ref=x,colour=red", true).contains("unknown option colour="));
        assert!(msg("type=registry", true).contains("needs ref="));
        assert!(msg("type=local", true).contains("needs dest=DIR"));
        assert!(msg("type=local,dest=/x", false).contains("unknown option dest="));
        assert!(msg("type=local,src=/x", true).contains("unknown option src="));
        assert!(msg("mode=max", true).contains("type= is required"));
        assert!(msg("type=registry,ref=r,mode=all", true).contains("mode=all must be min or max"));
        assert!(msg("type=inline,mode=max", true).contains("mode=min"));
        assert!(msg("", false).contains("empty value"));
        assert!(msg("type=registry,ref=r,mode=max", false).contains("unknown option mode="));
        assert!(msg("UPPER/Case", false).starts_with("cache import spec \"UPPER/Case\": "));
    }

    #[test]
    fn errors_are_typed() {
        let err = CacheSpec::parse_to("type=s3").unwrap_err();
        assert!(
            matches!(
                &err,
                Error::CacheSpec { option: OptionName::CacheTo, spec, problem: CacheSpecError::UnknownType(t) }
                    if spec == "type=s3" && t == "s3"
            ),
            "{err:?}"
        );
        assert!(err.is_usage());
        assert_eq!(err.option(), Some(OptionName::CacheTo));
        let err = CacheSpec::parse_from("type=local").unwrap_err();
        assert!(
            matches!(
                err,
                Error::CacheSpec {
                    option: OptionName::CacheFrom,
                    problem: CacheSpecError::MissingDir { key: "src" },
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
