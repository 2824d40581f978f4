//! `.dockerignore` patterns and the include/exclude patterns of contexts and copies, with
//! moby/patternmatcher's exact behaviour, and Go's `filepath.Match` on one path component.
//!
//! This is the one implementation of those rules in xbuild: the runtime filters contexts and
//! copies with it, the worker client selects what it sends with it, and the parser's
//! CopyIgnoredFile build check asks it whether a COPY source is excluded, so the check and the
//! build cannot disagree.
//!
//! Invariant: the crate is pure — no file, network or process I/O. Reading a `.dockerignore`
//! file (its size limit, refusing FIFOs) is the caller's; [`read_ignore_file`] takes its text.
//!
//! ```
//! use xbuild_dockerignore::{PatternMatcher, read_ignore_file};
//!
//! let patterns = read_ignore_file("# build output\ntarget/\n*.md\n!README.md\n");
//! assert_eq!(patterns, ["target", "*.md", "!README.md"]);
//! let matcher = PatternMatcher::new(&patterns)?;
//! assert!(matcher.matches_or_parent_matches("target/debug/xbuild"));
//! assert!(matcher.matches_or_parent_matches("NOTES.md"));
//! assert!(!matcher.matches_or_parent_matches("README.md"));
//! # Ok::<(), xbuild_dockerignore::BadPattern>(())
//! ```

pub mod glob;
mod patterns;

pub use patterns::{
    BadPattern, Filter, FilterState, MatchInfo, PatternMatcher, Verdict, clean, read_ignore_file,
};
