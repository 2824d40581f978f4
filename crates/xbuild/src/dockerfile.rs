//! A build's Dockerfile: reading it and its `.dockerignore`, the checks (`build --check`),
//! and lowering it to a graph.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xbuild_parser::lower::LowerOptions;

use crate::{BuildOptions, Definition, Diagnostic, Digest, Error, StoreResolver};

pub(crate) fn lower_text(
    file: &str,
    text: &str,
    opts: &BuildOptions,
    resolver: &dyn xbuild_parser::lower::ImageResolver,
) -> Result<Definition, Error> {
    let parsed = match syntax_override(&opts.build_args)? {
        Some(_) => xbuild_parser::parse_ignoring_syntax(text),
        None => xbuild_parser::parse(text),
    };
    let dockerfile_err = |diagnostics: Vec<Diagnostic>| Error::Dockerfile {
        file: file.to_string(),
        source_text: text.to_string(),
        diagnostics,
    };
    if parsed.has_errors() {
        return Err(dockerfile_err(parsed.diagnostics));
    }
    let lopts = lower_options(file, opts)?;
    xbuild_parser::lower::lower(&parsed.dockerfile, &lopts, resolver).map_err(dockerfile_err)
}

/// The one validation behind `build --check` and `debug parse --check`: the parse's errors and
/// build-check warnings, then, when it parsed, the stages lowered with `lopts` (its build
/// arguments and platform) and `resolver`: lowering errors such as a missing base image or an
/// unknown `--mount` type, UndefinedVar, unused build arguments. As BuildKit's lint, with
/// `lopts.target` the stages that target needs are lowered, without it every stage. Every
/// error and warning is reported once, in source order, the warnings found before or beside
/// an error included. A `BUILDKIT_SYNTAX` build argument overrides the `# syntax=` line.
pub fn check_dockerfile(
    text: &str,
    lopts: &LowerOptions,
    resolver: &dyn xbuild_parser::lower::ImageResolver,
) -> Vec<Diagnostic> {
    let parsed = match syntax_override(&lopts.build_args) {
        Ok(None) => xbuild_parser::parse(text),
        Ok(Some(_)) => xbuild_parser::parse_ignoring_syntax(text),
        Err(e) => {
            let mut parsed = xbuild_parser::parse_ignoring_syntax(text);
            parsed
                .diagnostics
                .push(Diagnostic::error(Default::default(), e.to_string()));
            parsed
        }
    };
    let mut diagnostics = parsed.diagnostics;
    if !diagnostics.iter().any(Diagnostic::is_error) {
        let mut lopts = lopts.clone();
        lopts.all_stages = lopts.target.is_none();
        let report = xbuild_parser::lower::lower_report(&parsed.dockerfile, &lopts, resolver);
        diagnostics.extend(report.errors);
        diagnostics.extend(report.warnings);
    }
    diagnostics.sort_by_key(|d| (d.span.offset, d.severity));
    diagnostics
}

/// The build argument that names the frontend, overriding the `# syntax=` line.
const SYNTAX_ARG: &str = "BUILDKIT_SYNTAX";

/// The frontend the `BUILDKIT_SYNTAX` build argument names, if given: as in BuildKit it
/// overrides the Dockerfile's `# syntax=` line. It must be BuildKit's Dockerfile frontend
/// (xbuild's own); any other is a usage error saying so.
pub(crate) fn syntax_override(
    build_args: &BTreeMap<String, String>,
) -> Result<Option<xbuild_parser::Frontend>, Error> {
    let Some(value) = build_args.get(SYNTAX_ARG) else {
        return Ok(None);
    };
    xbuild_parser::syntax_frontend(value)
        .map(Some)
        .map_err(|source| Error::Frontend {
            value: value.clone(),
            source,
        })
}

/// Resolves bases through the local store when it has them, and any other reference as an
/// empty image (for checks that must not need base images).
pub(crate) struct AnyBase<'a> {
    pub(crate) store: Option<StoreResolver<'a>>,
    /// Some reference was answered with an empty image.
    pub(crate) guessed: std::cell::Cell<bool>,
}

impl xbuild_parser::lower::ImageResolver for AnyBase<'_> {
    fn resolve(
        &self,
        reference: &str,
        platform: &xbuild_parser::platform::Platform,
    ) -> Result<xbuild_parser::lower::ResolvedImage, String> {
        if let Some(Ok(img)) = self.store.as_ref().map(|s| s.resolve(reference, platform)) {
            return Ok(img);
        }
        self.guessed.set(true);
        Ok(xbuild_parser::lower::ResolvedImage {
            reference: reference.to_string(),
            digest: Digest::of(reference.as_bytes()),
            config: Default::default(),
            history: Vec::new(),
            platform: xbuild_parser::platform::Platform::new(
                &platform.os,
                &platform.architecture,
                None,
            ),
        })
    }
}

/// The lowering options of a build.
pub(crate) fn lower_options(file: &str, opts: &BuildOptions) -> Result<LowerOptions, Error> {
    let mut lopts = LowerOptions::for_host(file);
    lopts.build_args = opts.build_args.clone();
    lopts.target = opts.target.clone();
    lopts.labels = opts.labels.clone();
    lopts.exclude_patterns = dockerignore(opts)?;
    if let Some(p) = &opts.platform {
        lopts.platform = xbuild_parser::platform::Platform::parse(p).map_err(Error::Platform)?;
    }
    Ok(lopts)
}

/// The patterns of the ignore file `path` (in `context` or named outside it), read as BuildKit
/// reads one (a BOM, comments and blank lines dropped, each pattern cleaned and a leading `/`
/// removed: see [`xbuild_dockerignore::read_ignore_file`]); `None` when there is no
/// such file. The one reader of `.dockerignore` files for local and remote builds and
/// `debug context-checksum`.
pub(crate) fn read_ignore(context: &Path, path: &Path) -> Result<Option<Vec<String>>, Error> {
    Ok(xbuild_runtime::read_build_file(context, path)?
        .map(|bytes| xbuild_dockerignore::read_ignore_file(&String::from_utf8_lossy(&bytes))))
}

/// The `.dockerignore` patterns of a build: `<Dockerfile>.dockerignore` beside the Dockerfile
/// wins over the context's `.dockerignore`.
pub(crate) fn dockerignore(opts: &BuildOptions) -> Result<Vec<String>, Error> {
    if let Some(p) = &opts.ignore_patterns {
        return Ok(p.clone());
    }
    let mut candidates = Vec::new();
    if let Some(df) = &opts.dockerfile {
        let mut name = df.as_os_str().to_owned();
        name.push(".dockerignore");
        candidates.push(PathBuf::from(name));
    }
    candidates.push(opts.context.join(".dockerignore"));
    for c in candidates {
        if let Some(patterns) = read_ignore(&opts.context, &c)? {
            return Ok(patterns);
        }
    }
    Ok(Vec::new())
}

/// Renders diagnostics with the offending source lines and carets.
pub fn render_diagnostics(
    file: &str,
    source: &str,
    diagnostics: &[Diagnostic],
    color: bool,
) -> String {
    xbuild_parser::render(file, source, diagnostics, color)
}
