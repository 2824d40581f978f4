//! `xbuild images --filter`: Docker's image filters.
//!
//! `dangling=true|false`, `label=KEY` / `label=KEY=VALUE` (every one must match),
//! `before=IMAGE` / `since=IMAGE` (created strictly before / after that image),
//! `reference=PATTERN` (any may match; Go's `path.Match` against `name:tag` or `name`, so `*`
//! stops at `/`). Filters of different kinds must all match.

use crate::store::ImageSummary;
use crate::{Error, FilterError};

/// A parsed set of image filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFilter {
    /// `dangling=`.
    pub dangling: Option<bool>,
    /// `label=` keys with optional values.
    pub labels: Vec<(String, Option<String>)>,
    /// `before=`: an image name or ID.
    pub before: Option<String>,
    /// `since=`: an image name or ID.
    pub since: Option<String>,
    /// `reference=` patterns.
    pub references: Vec<String>,
}

impl ImageFilter {
    /// Parses `KEY=VALUE` filters as `docker images --filter` takes them.
    pub fn parse(filters: &[String]) -> Result<Self, Error> {
        let mut f = ImageFilter::default();
        for s in filters {
            let bad = |problem: FilterError| Error::Filter {
                filter: s.clone(),
                problem,
            };
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| bad(FilterError::NotKeyValue))?;
            match k.trim().to_ascii_lowercase().as_str() {
                "dangling" => {
                    f.dangling = Some(match v.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad(FilterError::Dangling(v.to_string()))),
                    })
                }
                "label" => f.labels.push(match v.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (v.to_string(), None),
                }),
                "before" => f.before = Some(v.to_string()),
                "since" => f.since = Some(v.to_string()),
                "reference" => {
                    check_pattern(v).map_err(|e| bad(e.into()))?;
                    f.references.push(v.to_string())
                }
                other => return Err(bad(FilterError::UnknownName(other.to_string()))),
            }
        }
        Ok(f)
    }

    /// True when the filter keeps `row`; `before`/`since` are given as resolved times.
    pub(crate) fn keeps(
        &self,
        row: &ImageSummary,
        before: Option<std::time::SystemTime>,
        since: Option<std::time::SystemTime>,
    ) -> bool {
        if let Some(d) = self.dangling
            && d != row.dangling()
        {
            return false;
        }
        for (k, v) in &self.labels {
            match (row.labels.get(k), v) {
                (None, _) => return false,
                (Some(have), Some(want)) if have != want => return false,
                _ => {}
            }
        }
        let created = crate::store::time_of(row.created.as_deref());
        if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
            return false;
        }
        if !self.references.is_empty() {
            if row.dangling() {
                return false;
            }
            let full = format!("{}:{}", row.repository, row.tag);
            let hit = self
                .references
                .iter()
                .any(|p| path_match(p, &full) || path_match(p, &row.repository));
            if !hit {
                return false;
            }
        }
        true
    }
}

fn check_pattern(p: &str) -> Result<(), xbuild_dockerignore::BadPattern> {
    for part in p.split('/') {
        xbuild_dockerignore::glob::matches(part, "")?;
    }
    Ok(())
}

/// Go's `path.Match`: wildcards never cross `/`.
pub(crate) fn path_match(pattern: &str, name: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    p.len() == n.len()
        && p.iter()
            .zip(&n)
            .all(|(p, n)| xbuild_dockerignore::glob::matches(p, n).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(repo: &str, tag: &str, created: &str, labels: &[(&str, &str)]) -> ImageSummary {
        ImageSummary {
            repository: repo.into(),
            tag: tag.into(),
            id: xbuild_llb::Digest::of(repo.as_bytes()),
            manifest: xbuild_llb::Digest::of(tag.as_bytes()),
            created: Some(created.into()),
            size: 0,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn f(s: &[&str]) -> ImageFilter {
        ImageFilter::parse(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn reference_is_go_path_match() {
        assert!(path_match("busy*", "busybox"));
        assert!(path_match("busybox:*", "busybox:local"));
        assert!(!path_match("*", "team/app"));
        assert!(path_match("*/*", "team/app"));
        assert!(path_match("team/app:v[0-9]", "team/app:v1"));
        let r = row("team/app", "v1", "2026-01-01T00:00:00Z", &[]);
        assert!(f(&["reference=team/app"]).keeps(&r, None, None));
        assert!(f(&["reference=*/app:v1"]).keeps(&r, None, None));
        assert!(!f(&["reference=app"]).keeps(&r, None, None));
        assert!(f(&["reference=app", "reference=team/*"]).keeps(&r, None, None));
    }

    #[test]
    fn dangling_labels_and_times() {
        let none = row("<none>", "<none>", "2026-01-02T00:00:00Z", &[("a", "1")]);
        let tagged = row("x", "1", "2026-01-03T00:00:00Z", &[("a", "2"), ("b", "")]);
        assert!(f(&["dangling=true"]).keeps(&none, None, None));
        assert!(!f(&["dangling=true"]).keeps(&tagged, None, None));
        assert!(f(&["dangling=false"]).keeps(&tagged, None, None));
        assert!(f(&["label=a"]).keeps(&none, None, None));
        assert!(!f(&["label=a=2"]).keeps(&none, None, None));
        assert!(f(&["label=a=2", "label=b"]).keeps(&tagged, None, None));
        assert!(!f(&["label=a", "label=c"]).keeps(&tagged, None, None));
        let t = crate::store::time_of(Some("2026-01-02T00:00:00Z"));
        assert!(!f(&[]).keeps(&none, Some(t), None), "before is strict");
        assert!(f(&[]).keeps(&tagged, None, Some(t)));
        assert!(!f(&[]).keeps(&none, None, Some(t)), "since is strict");
        assert!(!f(&["reference=*"]).keeps(&none, None, None));
    }

    #[test]
    fn bad_filters_are_usage_errors() {
        for bad in ["nope=1", "dangling=maybe", "novalue", "reference=[a"] {
            let err = ImageFilter::parse(&[bad.to_string()]).unwrap_err();
            assert!(
                matches!(&err, Error::Filter { filter, .. } if filter == bad),
                "{bad}: {err}"
            );
            assert!(err.is_usage(), "{bad}");
        }
    }
}
