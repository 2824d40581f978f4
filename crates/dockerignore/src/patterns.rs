//! moby/patternmatcher: patterns are cleaned like Go's `filepath.Clean`, anchored at the root,
//! `*`/`?` never cross `/`, `**` crosses any number of directories, `!pattern` re-includes,
//! later patterns win, and a pattern that matches a directory matches everything below it.
//!
//! [`Filter`] applies include and exclude patterns to a tree the way BuildKit's fsutil does: a
//! path is kept when it matches an include pattern (or has no include patterns to match) and
//! no exclude pattern; directories that are not kept themselves still exist when something
//! below them is kept.

use regex::Regex;

/// A malformed pattern: a `.dockerignore` line, a copy's exclude, a glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPattern {
    /// A glob Go's `filepath.Match` refuses (`ErrBadPattern`): an unclosed `[`, a `\` at the
    /// end, an empty set.
    #[error("syntax error in pattern {0:?}")]
    Syntax(String),
    /// A pattern that is `!` alone.
    #[error("invalid pattern {0:?}: illegal exclusion pattern: \"!\"")]
    LoneExclusion(String),
    /// A pattern with a path component that is not a valid glob.
    #[error("invalid pattern {pattern:?}: syntax error in pattern {component:?}")]
    Component {
        /// The pattern as given.
        pattern: String,
        /// Its component that is not a valid glob.
        component: String,
    },
    /// A pattern whose translation to a regular expression the regex engine refuses.
    #[error("invalid pattern {pattern:?}: {reason}")]
    Regex {
        /// The pattern as given.
        pattern: String,
        /// The engine's complaint.
        reason: String,
    },
}

/// Reads a `.dockerignore` file's patterns: comments (`#` first) and blank lines are skipped,
/// each pattern is trimmed and cleaned, and a leading `/` is dropped (`!` is kept in front).
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut pattern = String::new();
        if !p.is_empty() {
            pattern = clean(p);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
        }
        if invert {
            pattern.insert(0, '!');
        }
        out.push(pattern);
    }
    out
}

pub use xbuild_llb::path::clean;

#[derive(Debug)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
}

#[derive(Debug)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Kind::Regex(r) => r.is_match(path),
        }
    }

    /// The pattern with a trailing `**` (and `/`) removed, as fsutil compares prefixes.
    fn without_trailing_glob(&self) -> &str {
        let p = self.cleaned.strip_suffix("**").unwrap_or(&self.cleaned);
        p.strip_suffix('/').unwrap_or(p)
    }
}

/// Turns a cleaned pattern into its match kind, as patternmatcher's `compile` does.
fn compile(p: &str) -> Result<Kind, regex::Error> {
    let mut re = String::from("^");
    let mut kind = 0u8; // 0 exact, 1 prefix, 2 suffix, 3 regex
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut iteration = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == 0 {
                        kind = 1;
                    } else {
                        re.push_str(".*");
                        kind = 3;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = 3;
                }
                if iteration == 0 {
                    kind = 2;
                }
            } else {
                re.push_str("[^/]*");
                kind = 3;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = 3;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    re.push('\\');
                    re.push(next);
                    kind = 3;
                }
                None => re.push_str("\\\\"),
            }
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            kind = 3;
        } else {
            re.push(ch);
        }
        iteration += 1;
    }
    Ok(match kind {
        0 => Kind::Exact,
        1 => Kind::Prefix,
        2 => Kind::Suffix,
        _ => {
            re.push('$');
            Kind::Regex(Regex::new(&re)?)
        }
    })
}

/// Per-pattern results of a directory, so its children need not re-check its parents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// A list of patterns checked in order (moby's `PatternMatcher`).
#[derive(Debug)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compiles `patterns` (blank ones are skipped; `!` marks an exception).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, BadPattern> {
        let mut out = PatternMatcher {
            patterns: Vec::new(),
            exclusions: false,
        };
        for raw in patterns {
            let raw = raw.as_ref();
            let p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(BadPattern::LoneExclusion(raw.to_string()));
                }
                exclusion = true;
                p = rest.to_string();
                out.exclusions = true;
            }
            for part in p.split('/') {
                crate::glob::matches(part, ".").map_err(|_| BadPattern::Component {
                    pattern: raw.to_string(),
                    component: part.to_string(),
                })?;
            }
            let kind = compile(&p).map_err(|e| BadPattern::Regex {
                pattern: raw.to_string(),
                reason: e.to_string(),
            })?;
            out.patterns.push(Pattern {
                cleaned: p,
                exclusion,
                kind,
            });
        }
        Ok(out)
    }

    /// True when some pattern is an exception (`!…`).
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// True when no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `file` (slash-separated, relative) or one of its parent directories matches,
    /// the last matching pattern deciding.
    pub fn matches_or_parent_matches(&self, file: &str) -> bool {
        let parent = parent_of(file);
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(file);
            if !m && parent != "." {
                let dirs: Vec<&str> = parent.split('/').collect();
                m = (1..=dirs.len()).any(|n| p.matches(&dirs[..n].join("/")));
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Like [`matches_or_parent_matches`](Self::matches_or_parent_matches) with the parent
    /// directory's results given (the default for a path whose parents are unknown); returns
    /// the results to pass to `file`'s children.
    pub fn matches_using_parent_results(
        &self,
        file: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let known = parent.parent_matched.len() == self.patterns.len() && !self.patterns.is_empty();
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = known && parent.parent_matched[i];
            if !m {
                if p.exclusion != matched {
                    continue;
                }
                m = p.matches(file);
                if !m && !known {
                    let par = parent_of(file);
                    if par != "." {
                        let dirs: Vec<&str> = par.split('/').collect();
                        m = (1..=dirs.len()).any(|n| p.matches(&dirs[..n].join("/")));
                    }
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !p.exclusion;
            }
        }
        (matched, info)
    }
}

fn parent_of(file: &str) -> &str {
    match file.rfind('/') {
        Some(0) => "/",
        Some(i) => &file[..i],
        None => ".",
    }
}

/// What a walk remembers of a directory for its children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterState {
    include: MatchInfo,
    exclude: MatchInfo,
}

/// The verdict on one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The path itself is kept.
    pub keep: bool,
    /// It matched an exclude pattern.
    pub excluded: bool,
}

/// Include and exclude patterns over a tree, applied as BuildKit's fsutil applies them.
#[derive(Debug)]
pub struct Filter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
}

impl Filter {
    /// A filter, or `None` when there is nothing to filter.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Option<Self>, BadPattern> {
        let include = PatternMatcher::new(include)?;
        let exclude = PatternMatcher::new(exclude)?;
        if include.is_empty() && exclude.is_empty() {
            return Ok(None);
        }
        Ok(Some(Filter {
            include: (!include.is_empty()).then_some(include),
            exclude: (!exclude.is_empty()).then_some(exclude),
        }))
    }

    /// Checks `path` (relative, slash-separated) given its parent directory's state; returns
    /// the verdict and the state for `path`'s children.
    pub fn check(&self, path: &str, parent: &FilterState) -> (Verdict, FilterState) {
        let mut state = FilterState::default();
        let mut keep = true;
        if let Some(inc) = &self.include {
            let (m, info) = inc.matches_using_parent_results(path, &parent.include);
            state.include = info;
            keep = m;
        }
        let mut excluded = false;
        if let Some(exc) = &self.exclude {
            let (m, info) = exc.matches_using_parent_results(path, &parent.exclude);
            state.exclude = info;
            if m {
                keep = false;
                excluded = true;
            }
        }
        (Verdict { keep, excluded }, state)
    }

    /// Whether a walk must look inside directory `path` although the directory itself is not
    /// kept: something below it may still be.
    pub fn descend(&self, path: &str, verdict: Verdict) -> bool {
        if verdict.excluded {
            let Some(exc) = &self.exclude else {
                return false;
            };
            if !exc.exclusions() {
                return false;
            }
            return could_match_below(exc, path, true);
        }
        match &self.include {
            Some(inc) if !verdict.keep => could_match_below(inc, path, false),
            _ => true,
        }
    }

    /// The state of `path` whose parents were not walked (the root of a copy inside a tree).
    pub fn state_of(&self, path: &str) -> (Verdict, FilterState) {
        self.check(path, &FilterState::default())
    }
}

/// Whether some (exception, when `exceptions`) pattern could match a path below `dir`: any
/// pattern with wildcards might; a literal one only when it lies below `dir`.
fn could_match_below(m: &PatternMatcher, dir: &str, exceptions: bool) -> bool {
    let prefix = format!("{dir}/");
    m.patterns
        .iter()
        .filter(|p| p.exclusion == exceptions)
        .any(|p| {
            let lit = p.without_trailing_glob();
            lit.contains(['*', '?', '[', ']', '^', '\\']) || format!("{lit}/").starts_with(&prefix)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], path: &str) -> bool {
        PatternMatcher::new(patterns)
            .unwrap()
            .matches_or_parent_matches(path)
    }

    /// moby/patternmatcher's `TestMatches` table, plus the multi-pattern cases.
    #[test]
    fn patternmatcher_table() {
        let single: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
        ];
        let multi: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (
                &[
                    "**",
                    "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                ],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            (
                &["**", "!dist/*.whl"],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            // TestPatternMatches… and friends.
            (&["*"], "fileutils.go", true),
            (&["*.go"], "fileutils.go", true),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (&[], "/any/path/there", false),
        ];
        for (p, path, want) in single {
            assert_eq!(m(&[p], path), *want, "pattern {p:?} on {path:?}");
            // The walking form, with parents' results carried down, agrees.
            let pm = PatternMatcher::new(&[p]).unwrap();
            assert_eq!(
                walk_match(&pm, path),
                *want,
                "pattern {p:?} on {path:?} (walk)"
            );
        }
        for (ps, path, want) in multi {
            assert_eq!(m(ps, path), *want, "patterns {ps:?} on {path:?}");
            let pm = PatternMatcher::new(ps).unwrap();
            assert_eq!(walk_match(&pm, path), *want, "patterns {ps:?} on {path:?}");
        }
        assert!(single.len() + multi.len() >= 40);
    }

    fn walk_match(pm: &PatternMatcher, path: &str) -> bool {
        let parent = parent_of(path);
        let mut info = MatchInfo::default();
        if parent != "." {
            let dirs: Vec<&str> = parent.split('/').collect();
            for n in 1..=dirs.len() {
                info = pm
                    .matches_using_parent_results(&dirs[..n].join("/"), &info)
                    .1;
            }
        }
        pm.matches_using_parent_results(path, &info).0
    }

    #[test]
    fn bad_patterns() {
        assert!(PatternMatcher::new(&["!"]).is_err());
        assert!(PatternMatcher::new(&["["]).is_err());
        assert!(PatternMatcher::new(&["a/[x-]"]).is_err());
    }

    /// The `.dockerignore` rules of Docker's documentation.
    #[test]
    fn dockerignore_file_rules() {
        let text = "\u{feff}# comment\n  \n*/temp*\n*/*/temp*\ntemp?\n/abs/path/\n! keep.md\n*.md\n!README*.md\nREADME-secret.md\n  spaced  \n./out/\n";
        let p = read_ignore_file(text);
        assert_eq!(
            p,
            vec![
                "*/temp*",
                "*/*/temp*",
                "temp?",
                "abs/path",
                "!keep.md",
                "*.md",
                "!README*.md",
                "README-secret.md",
                "spaced",
                "out"
            ]
        );
        let pm = PatternMatcher::new(&p).unwrap();
        let cases = [
            ("somedir/temporary.txt", true),
            ("somedir/subdir/temporary.txt", true),
            ("tempa", true),
            ("tempab", false),
            ("abs/path/x", true),
            ("notes.md", true),
            ("README-public.md", false),
            ("README-secret.md", true),
            ("docs/notes.md", false),
            ("out", true),
            ("out/bin/tool", true),
            ("spaced", true),
            ("main.go", false),
        ];
        for (path, want) in cases {
            assert_eq!(pm.matches_or_parent_matches(path), want, "{path}");
        }
    }

    #[test]
    fn filter_keeps_exceptions_below_excluded_dirs() {
        let f = Filter::new(&[], &["docs".into(), "!docs/keep.md".into()])
            .unwrap()
            .unwrap();
        let (v, st) = f.state_of("docs");
        assert!(!v.keep && v.excluded);
        assert!(f.descend("docs", v));
        assert!(f.check("docs/keep.md", &st).0.keep);
        assert!(!f.check("docs/other.md", &st).0.keep);
        let g = Filter::new(&[], &["node_modules".into()]).unwrap().unwrap();
        let (v, _) = g.state_of("node_modules");
        assert!(!g.descend("node_modules", v), "nothing below can come back");
        let inc = Filter::new(&["src/*.rs".into()], &[]).unwrap().unwrap();
        let (v, st) = inc.state_of("src");
        assert!(!v.keep && inc.descend("src", v));
        assert!(inc.check("src/main.rs", &st).0.keep);
        assert!(!inc.check("src/notes.txt", &st).0.keep);
    }

    #[test]
    fn clean_is_go_clean() {
        for (a, b) in [
            ("", "."),
            ("a/b/../c", "a/c"),
            ("/../a", "/a"),
            ("../a", "../a"),
            ("a//b/./", "a/b"),
            ("/", "/"),
            ("./", "."),
        ] {
            assert_eq!(clean(a), b, "{a}");
        }
    }
}
