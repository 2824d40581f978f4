//! Helpers the lowering modules' unit tests share: resolvers and one-call lowerings.

#![allow(clippy::unwrap_used)]

use xbuild_llb::{Definition, ExecOp, ImageConfig, Op};

use super::{ImageResolver, LowerOptions, ResolvedImage, lower_with_warnings};
use crate::platform::Platform;
use crate::span::Diagnostic;

/// Knows no image: the tests build `FROM scratch` and from stages.
pub(super) struct NoImages;

impl ImageResolver for NoImages {
    fn resolve(&self, reference: &str, _: &Platform) -> Result<ResolvedImage, String> {
        Err(format!("{reference} is not known to these tests"))
    }
}

/// Answers every reference with an empty `linux/arm64` image.
pub(super) struct Arm64Only;

impl ImageResolver for Arm64Only {
    fn resolve(&self, reference: &str, _: &Platform) -> Result<ResolvedImage, String> {
        Ok(ResolvedImage {
            reference: reference.into(),
            digest: xbuild_llb::Digest::of(reference.as_bytes()),
            config: ImageConfig::default(),
            history: vec![],
            platform: Platform::new("linux", "arm64", None),
        })
    }
}

/// Parses and lowers `src` with `opts` and [`NoImages`]; the parse errors if any.
pub(super) fn lower_opts(src: &str, opts: &LowerOptions) -> Result<Definition, Vec<Diagnostic>> {
    let parsed = crate::parse(src);
    let errors: Vec<Diagnostic> = parsed.errors().cloned().collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    lower_with_warnings(&parsed.dockerfile, opts, &NoImages).map(|l| l.definition)
}

/// [`lower_opts`] for `linux/amd64`.
pub(super) fn lower(src: &str) -> Result<Definition, Vec<Diagnostic>> {
    let mut opts = LowerOptions::for_host("Dockerfile");
    opts.platform.architecture = "amd64".into();
    lower_opts(src, &opts)
}

/// The exec ops of the graph, in graph order.
pub(super) fn execs(def: &Definition) -> Vec<ExecOp> {
    def.vertices()
        .filter_map(|v| match v.op() {
            Op::Exec(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The output image's config.
pub(super) fn config(def: &Definition) -> ImageConfig {
    def.outputs()[0].config.clone()
}

/// The build-check warnings (rule, message) of lowering `src` with [`Arm64Only`].
pub(super) fn check_warnings(src: &str, opts: &LowerOptions) -> Vec<(String, String)> {
    let parsed = crate::parse(src);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    let l = lower_with_warnings(&parsed.dockerfile, opts, &Arm64Only).unwrap();
    l.warnings
        .iter()
        .filter_map(|d| d.rule.map(|r| (r.to_string(), d.message.clone())))
        .collect()
}

/// Options for building `linux/amd64`.
pub(super) fn amd64() -> LowerOptions {
    let mut o = LowerOptions::for_host("Dockerfile");
    o.platform = Platform::new("linux", "amd64", None);
    o
}
