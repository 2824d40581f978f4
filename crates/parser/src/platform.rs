//! Platforms (`linux/amd64`, `linux/arm64/v8`; the type is [`xbuild_llb::Platform`]) and the
//! build arguments BuildKit predefines from them (`TARGETPLATFORM`, `BUILDARCH`, …).

pub use xbuild_llb::platform::{Platform, host_architecture};

/// The build arguments BuildKit predefines for FROM lines (and for stages that declare them).
pub fn predefined_args(build: &Platform, target: &Platform) -> Vec<(String, String)> {
    vec![
        ("BUILDPLATFORM".into(), build.to_string()),
        ("BUILDOS".into(), build.os.clone()),
        ("BUILDARCH".into(), build.architecture.clone()),
        (
            "BUILDVARIANT".into(),
            build.variant.clone().unwrap_or_default(),
        ),
        ("TARGETPLATFORM".into(), target.to_string()),
        ("TARGETOS".into(), target.os.clone()),
        ("TARGETARCH".into(), target.architecture.clone()),
        (
            "TARGETVARIANT".into(),
            target.variant.clone().unwrap_or_default(),
        ),
    ]
}
