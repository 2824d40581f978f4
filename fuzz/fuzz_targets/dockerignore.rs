//! Fuzzes `.dockerignore` reading and matching: the first line of the input is a path, the rest
//! the file. No input may panic; a comment line appended changes nothing; and, for pattern lists
//! without exclusions, matching a path directly agrees with matching it component by component
//! from the root (the walk's way). With exclusions the two may differ, as in moby's
//! patternmatcher, whose walk skips patterns it need not evaluate and so forgets their parents'
//! results (`src`, `!src/x`, `src` excludes `src/x/y` directly but not when walked); the walk is
//! what a build does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xbuild_dockerignore::{MatchInfo, PatternMatcher, clean, read_ignore_file};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, file) = text.split_once('\n').unwrap_or((text, ""));
    let patterns = read_ignore_file(file);
    assert_eq!(
        read_ignore_file(&format!("{file}\n# an unrelated comment\n")),
        patterns,
        "a comment line changed the patterns"
    );
    let Ok(matcher) = PatternMatcher::new(&patterns) else {
        return;
    };
    let path = clean(path);
    if path.is_empty() || path == "." || path.starts_with('/') || path.starts_with("..") {
        return;
    }
    let direct = matcher.matches_or_parent_matches(&path);
    let mut info = MatchInfo::default();
    let mut walked = false;
    let mut prefix = String::new();
    for part in path.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        let (m, next) = matcher.matches_using_parent_results(&prefix, &info);
        walked = m;
        info = next;
    }
    if !patterns.iter().any(|p| p.starts_with('!')) {
        assert_eq!(direct, walked, "{path:?} against {patterns:?}");
    }
});
