//! The parser corpus (`tests/parser/` at the repository root): every file under `ok/` parses
//! without errors and its tree, heredocs and build-check warnings are snapshotted; every file
//! under `err/` fails and its rendered errors are snapshotted exactly.
#![allow(clippy::unwrap_used, missing_docs)]

use std::fmt::Write as _;

use xbuild_parser::{Severity, parse, render};

fn summary(src: &str) -> String {
    let parsed = parse(src);
    let df = &parsed.dockerfile;
    let mut out = String::new();
    let d = &df.directives;
    let _ = writeln!(
        out,
        "directives: escape={} syntax={} check={}",
        d.escape,
        d.syntax.as_deref().unwrap_or("-"),
        d.check.as_deref().unwrap_or("-")
    );
    let dump = df.dump();
    for (i, line) in df.instructions.iter().zip(dump.lines()) {
        let _ = writeln!(out, "L{}-{} {line}", i.lines.start, i.lines.end);
        for h in &i.heredocs {
            let _ = writeln!(
                out,
                "  heredoc {} fd={} expand={} chomp={} {:?}",
                h.name, h.fd, h.expand, h.chomp, h.content
            );
        }
    }
    let warnings: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect();
    if !warnings.is_empty() {
        out.push_str("warnings:\n");
        for w in warnings {
            let _ = writeln!(out, "  {}", w.one_line("Dockerfile"));
        }
    }
    out
}

#[test]
fn ok_corpus_parses() {
    insta::glob!("../../../tests/parser/ok", "*.Dockerfile", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let parsed = parse(&src);
        let errors: Vec<_> = parsed.errors().cloned().collect();
        assert!(
            errors.is_empty(),
            "{}: {}",
            path.display(),
            render("Dockerfile", &src, &errors, false)
        );
        insta::assert_snapshot!(summary(&src));
    });
}

#[test]
fn ok_corpus_json_is_stable() {
    insta::glob!("../../../tests/parser/ok", "*json*.Dockerfile", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let parsed = parse(&src);
        insta::assert_json_snapshot!(parsed.dockerfile);
    });
}

#[test]
fn err_corpus_fails_with_exact_errors() {
    insta::glob!("../../../tests/parser/err", "*.Dockerfile", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let parsed = parse(&src);
        let errors: Vec<_> = parsed.errors().cloned().collect();
        assert!(
            !errors.is_empty(),
            "{} parsed without errors",
            path.display()
        );
        insta::assert_snapshot!(render("Dockerfile", &src, &errors, false));
    });
}
