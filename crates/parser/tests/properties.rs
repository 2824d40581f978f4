//! Property tests: random and mutated Dockerfiles never panic the parser, and every
//! diagnostic's span lies inside the input, on character boundaries, with the line and column
//! of its offset.
#![allow(clippy::unwrap_used, missing_docs)]

use proptest::prelude::*;
use xbuild_parser::{Span, parse};

fn check_spans(src: &str) {
    let parsed = parse(src);
    for d in &parsed.diagnostics {
        let s = d.span;
        assert!(s.end() <= src.len(), "span out of range: {d:?} in {src:?}");
        assert!(
            src.is_char_boundary(s.offset) && src.is_char_boundary(s.end()),
            "{d:?}"
        );
        let at = Span::at(src, s.offset);
        assert_eq!((s.line, s.col), (at.line, at.col), "{d:?} in {src:?}");
    }
    for i in &parsed.dockerfile.instructions {
        assert!(i.lines.start >= 1 && i.lines.start <= i.lines.end);
        assert!(i.span.end() <= src.len());
    }
    let _ = parsed.dockerfile.dump();
    let _ = serde_json::to_string(&parsed.dockerfile).unwrap();
}

const PIECES: &[&str] = &[
    "FROM ",
    "busybox",
    " AS ",
    "b",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "CMD ",
    "ENTRYPOINT ",
    "SHELL ",
    "EXPOSE ",
    "VOLUME ",
    "USER ",
    "WORKDIR ",
    "HEALTHCHECK ",
    "ONBUILD ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "--mount=type=cache,target=/x ",
    "--from=b ",
    "--chown=1:2 ",
    "--link ",
    "--platform=$X ",
    "--interval=5s ",
    "CMD",
    "NONE",
    "<<EOF",
    "<<-'E'",
    "EOF",
    "E",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\\",
    "\\\n",
    "`",
    "# escape=`\n",
    "# syntax=x\n",
    "# check=error=true\n",
    "#",
    "'",
    "\"",
    "[",
    "]",
    "[\"a\", \"b\"]",
    "[1]",
    "=",
    "a=b",
    "$A",
    "${A:-x}",
    "${",
    "}",
    "é",
    "😀",
    "\u{feff}",
    "\u{a0}",
    "\u{85}",
    "/",
    ":",
    ",",
    "--",
    "-",
];

fn dockerfile() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn random_token_soup_never_panics(src in dockerfile()) {
        check_spans(&src);
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
        check_spans(&src);
    }

    #[test]
    fn mutated_corpus_files_never_panic(
        idx in 0usize..1000,
        cut in 0usize..4000,
        insert in prop::sample::select(PIECES),
        del in 0usize..8,
    ) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/parser/ok");
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let src = std::fs::read_to_string(&files[idx % files.len()]).unwrap();
        let mut at = cut.min(src.len());
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + del).min(src.len());
        while !src.is_char_boundary(end) {
            end += 1;
        }
        let mutated = format!("{}{}{}", &src[..at], insert, &src[end..]);
        check_spans(&mutated);
    }
}
