//! Fuzzes decoding, parsing and lowering with variable expansion: no input may panic or
//! overflow a small stack, every diagnostic's span lies within the input, and lowering an
//! accepted file is deterministic (the same graph, byte for byte, twice).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use xbuild_llb::{Digest, ImageConfig};
use xbuild_parser::lower::{ImageResolver, LowerOptions, ResolvedImage, lower_with_warnings};
use xbuild_parser::platform::Platform;
use xbuild_parser::{Diagnostic, decode, parse};

/// Every reference resolves to an image whose config depends only on the reference (some
/// carry ONBUILD triggers and an environment), except references containing `missing`.
struct Placeholder;

impl ImageResolver for Placeholder {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        if reference.contains("missing") {
            return Err(format!("{reference} is not in the local image store"));
        }
        let mut config = ImageConfig {
            env: vec![format!("PATH=/bin"), format!("IMAGE={reference}")],
            ..Default::default()
        };
        if reference.contains("onbuild") {
            config.on_build = vec!["RUN echo $IMAGE".into(), "ENV X=${IMAGE:-y}".into()];
        }
        Ok(ResolvedImage {
            reference: reference.into(),
            digest: Digest::of(reference.as_bytes()),
            config,
            history: vec![],
            platform: Platform::new(&platform.os, &platform.architecture, None),
        })
    }
}

fn check_spans(text: &str, diags: &[Diagnostic], one_based: bool) {
    for d in diags {
        assert!(d.span.offset + d.span.len <= text.len(), "span out of range: {d:?}");
        assert!(text.is_char_boundary(d.span.offset), "span inside a character: {d:?}");
        if one_based {
            assert!(d.span.line >= 1 && d.span.col >= 1, "span not 1-based: {d:?}");
        }
    }
}

fn lower_twice(text: &str) {
    let text = match decode(text.as_bytes().to_vec()) {
        Ok(t) => t,
        Err(e) => unreachable!("valid UTF-8 did not decode: {e}"),
    };
    let parsed = parse(&text);
    check_spans(&text, &parsed.diagnostics, true);
    if parsed.has_errors() {
        return;
    }
    let mut opts = LowerOptions::for_host("Dockerfile");
    opts.build_args = BTreeMap::from([("A".into(), "1".into()), ("B".into(), "x y".into())]);
    opts.all_stages = text.len() % 2 == 0;
    let first = lower_with_warnings(&parsed.dockerfile, &opts, &Placeholder);
    match &first {
        Ok(l) => check_spans(&text, &l.warnings, false),
        Err(diags) => check_spans(&text, diags, false),
    }
    let Ok(first) = first else { return };
    let second = lower_with_warnings(&parsed.dockerfile, &opts, &Placeholder)
        .unwrap_or_else(|e| panic!("lowering succeeded once, then failed: {e:?}"));
    let (a, b) = (first.definition.to_json(), second.definition.to_json());
    assert_eq!(a.ok(), b.ok(), "lowering is not deterministic");
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => {
            let text = text.to_string();
            // A tokio worker thread's stack (2 MiB), where a worker lowers: recursion on input
            // that its limits do not bound shows up as a crash here.
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || lower_twice(&text))
                .and_then(|t| t.join().map_err(|_| std::io::Error::other("panicked")))
                .unwrap_or_else(|e| panic!("lowering thread: {e}"));
        }
        Err(_) => {
            let e = decode(data.to_vec()).expect_err("invalid UTF-8 decoded");
            check_spans(&e.text, std::slice::from_ref(&e.diagnostic), true);
        }
    }
});
