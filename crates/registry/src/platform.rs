//! Picking the build platform's manifest out of an index or manifest list. The platform type
//! is [`xbuild_llb::Platform`] (re-exported as `xbuild_registry::Platform`).

use xbuild_cache::oci::{Descriptor, Index};
use xbuild_llb::Platform;

/// Whether an index entry's `offered` variant serves `want` (no variant wanted: any; `arm64`
/// without a variant is `v8`).
fn variant_matches(want: &Platform, offered: Option<&str>) -> bool {
    let norm = |v: Option<&str>| match (want.architecture.as_str(), v) {
        ("arm64", None) => Some("v8".to_string()),
        (_, v) => v.map(str::to_string),
    };
    match &want.variant {
        None => true,
        Some(_) => norm(want.variant.as_deref()) == norm(offered),
    }
}

/// Picks the manifest for `want` from `index`; the error lists the platforms it offers.
pub fn select_manifest<'a>(
    want: &Platform,
    index: &'a Index,
) -> Result<&'a Descriptor, Vec<String>> {
    let candidates = index.manifests.iter().filter(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && variant_matches(want, p.variant.as_deref())
        })
    });
    let mut best: Option<&Descriptor> = None;
    for d in candidates {
        let exact =
            d.platform.as_ref().and_then(|p| p.variant.as_deref()) == want.variant.as_deref();
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
            .map(Platform::to_string)
            .collect()
    })
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
        let pick =
            |p: Platform| select_manifest(&p, &i).map(|d| d.digest.as_str()[7..8].to_string());
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
