//! The real-world corpus (`tests/realworld/*.Dockerfile` at the repository root): Dockerfiles
//! written in the styles public projects use. Every file must parse without errors, lower
//! (every stage, as `--check` does) against placeholder base images without errors or panics,
//! and produce exactly the build-check warnings its header states.
//!
//! Header lines (comments anywhere in the file; put them after any parser directives):
//! - `# expect-warning: Rule` — one expected warning (repeat the line for each occurrence);
//!   the rule must be one of BuildKit's documented build checks.
//! - `# dockerignore: PATTERN` — a `.dockerignore` pattern of the build context.
//! - `# build-arg: KEY=VALUE` — a `--build-arg`.
//! - `# platform: os/arch[/variant]` — the target platform (default `linux/amd64`).
//! - `# base-platform: REF=os/arch` — the platform the placeholder registry has `REF` for
//!   (default: whatever platform is asked for).
//! - `# known-bug: WHAT` — xbuild does not match BuildKit on this file today: the file is
//!   checked, its failure printed and not counted (and a known-bug file that passes fails the
//!   test, so the header is removed when the bug is fixed).
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xbuild_llb::{Digest, ImageConfig};
use xbuild_parser::lower::{ImageResolver, LowerOptions, ResolvedImage, lower_with_warnings};
use xbuild_parser::platform::Platform;
use xbuild_parser::{Severity, parse, render};

/// BuildKit's build checks (`frontend/dockerfile/linter/ruleset.go`, documented at
/// <https://docs.docker.com/reference/build-checks/>).
const BUILDKIT_RULES: &[&str] = &[
    "StageNameCasing",
    "FromAsCasing",
    "NoEmptyContinuation",
    "ConsistentInstructionCasing",
    "DuplicateStageName",
    "ReservedStageName",
    "JSONArgsRecommended",
    "MaintainerDeprecated",
    "UndefinedArgInFrom",
    "WorkdirRelativePath",
    "UndefinedVar",
    "MultipleInstructionsDisallowed",
    "LegacyKeyValueFormat",
    "InvalidBaseImagePlatform",
    "RedundantTargetPlatform",
    "SecretsUsedInArgOrEnv",
    "InvalidDefaultArgInFrom",
    "FromPlatformFlagConstDisallowed",
    "CopyIgnoredFile",
    "InvalidDefinitionDescription",
    "ExposeProtoCasing",
    "ExposeInvalidFormat",
];

/// The least number of files the corpus must hold.
const MIN_FILES: usize = 150;

/// Any reference resolves to an empty image, for the platform asked or the one the header
/// names.
struct Placeholder {
    platforms: BTreeMap<String, Platform>,
}

impl ImageResolver for Placeholder {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        let p = self.platforms.get(reference).unwrap_or(platform);
        Ok(ResolvedImage {
            reference: reference.into(),
            digest: Digest::of(format!("{reference} {p}").as_bytes()),
            config: ImageConfig::default(),
            history: vec![],
            platform: Platform::new(&p.os, &p.architecture, None),
        })
    }
}

#[derive(Default)]
struct Header {
    expect: Vec<String>,
    ignore: Vec<String>,
    args: BTreeMap<String, String>,
    platform: Option<String>,
    bases: BTreeMap<String, Platform>,
    known_bug: Vec<String>,
}

fn header(src: &str) -> Result<Header, String> {
    let mut h = Header::default();
    for line in src.lines() {
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        let Some((key, value)) = rest.trim().split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "expect-warning" => {
                if !BUILDKIT_RULES.contains(&value.as_str()) {
                    return Err(format!("{value} is not one of BuildKit's build checks"));
                }
                h.expect.push(value);
            }
            "dockerignore" => h.ignore.push(value),
            "build-arg" => {
                let (k, v) = value.split_once('=').ok_or("build-arg needs KEY=VALUE")?;
                h.args.insert(k.into(), v.into());
            }
            "platform" => h.platform = Some(value),
            "base-platform" => {
                let (r, p) = value
                    .split_once('=')
                    .ok_or("base-platform needs REF=PLATFORM")?;
                h.bases
                    .insert(r.into(), Platform::parse(p).map_err(|e| e.to_string())?);
            }
            "known-bug" => h.known_bug.push(value),
            _ => {}
        }
    }
    Ok(h)
}

/// Checks one file; the error says what differs from what its header expects.
fn check(path: &Path, src: &str) -> Result<(), String> {
    let h = header(src)?;
    let parsed = parse(src);
    let errors: Vec<_> = parsed.errors().cloned().collect();
    if !errors.is_empty() {
        return Err(format!(
            "parse errors:\n{}",
            render("Dockerfile", src, &errors, false)
        ));
    }
    let mut got: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .filter_map(|d| d.rule.map(str::to_string))
        .collect();
    let mut opts = LowerOptions::for_host(path.display().to_string());
    opts.platform.os = "linux".into();
    opts.platform.architecture = "amd64".into();
    if let Some(p) = &h.platform {
        let p = Platform::parse(p).map_err(|e| e.to_string())?;
        opts.platform = p;
    }
    opts.build_args = h.args.clone();
    opts.exclude_patterns = h.ignore.clone();
    opts.all_stages = true;
    let resolver = Placeholder {
        platforms: h.bases.clone(),
    };
    let mut shown: Vec<String> = parsed
        .diagnostics
        .iter()
        .map(|d| d.one_line("Dockerfile"))
        .collect();
    match lower_with_warnings(&parsed.dockerfile, &opts, &resolver) {
        Ok(l) => {
            got.extend(l.warnings.iter().filter_map(|d| d.rule.map(str::to_string)));
            shown.extend(l.warnings.iter().map(|d| d.one_line("Dockerfile")));
        }
        Err(errors) => {
            return Err(format!(
                "lowering errors:\n{}",
                render("Dockerfile", src, &errors, false)
            ));
        }
    }
    let mut expect = h.expect.clone();
    expect.sort();
    got.sort();
    if expect != got {
        return Err(format!(
            "warnings differ: expected {expect:?}, got {got:?}\n  {}",
            shown.join("\n  ")
        ));
    }
    Ok(())
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/realworld");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    files
}

#[test]
fn realworld_corpus_parses_lints_and_lowers_as_buildkit() {
    let files = corpus();
    let mut failures = Vec::new();
    let mut known = Vec::new();
    for path in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let result = std::panic::catch_unwind(|| check(path, &src))
            .unwrap_or_else(|_| Err("panicked".to_string()));
        let bugs = header(&src).map(|h| h.known_bug).unwrap_or_default();
        match (result, bugs.is_empty()) {
            (Ok(()), true) => {}
            (Ok(()), false) => failures.push(format!(
                "{name}: passes now; remove its known-bug header ({})",
                bugs.join("; ")
            )),
            (Err(e), true) => failures.push(format!("{name}: {e}")),
            (Err(e), false) => known.push(format!("{name} ({}): {e}", bugs.join("; "))),
        }
    }
    for k in &known {
        eprintln!("known bug, skipped: {k}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} files fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert!(
        files.len() >= MIN_FILES,
        "tests/realworld holds {} files, fewer than {MIN_FILES}",
        files.len()
    );
}

#[test]
fn realworld_header_rejects_a_warning_buildkit_does_not_have() {
    assert!(header("# expect-warning: NoSuchRule\nFROM scratch\n").is_err());
    assert!(header("# expect-warning: StageNameCasing\nFROM scratch\n").is_ok());
}
