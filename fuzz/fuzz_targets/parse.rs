//! Fuzzes the Dockerfile parser: no input may panic, and every diagnostic's span must lie
//! within the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = xbuild_parser::parse(text);
    for d in &parsed.diagnostics {
        assert!(d.span.offset + d.span.len <= text.len(), "span out of range: {d:?}");
        assert!(d.span.line >= 1 && d.span.col >= 1, "span not 1-based: {d:?}");
    }
});
