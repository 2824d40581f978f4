//! Go's `filepath.Match` on one path component: `*`, `?`, `[set]`, `[^set]`, `\` escapes.
//!
//! As in Go (and so in Docker), `[!d]` is the set of `!` and `d`; only `^` negates a set.

use crate::BadPattern;

/// True when `s` has a character `filepath.Match` treats as special.
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Matches `name` (no `/`) against `pattern`, exactly as Go's `filepath.Match`.
pub fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let bad = || BadPattern::Syntax(pattern.to_string());
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    // Go scans star-separated chunks; a straightforward backtracking matcher gives the same
    // answers, with the pattern validated up front as Go validates it.
    validate(&p).map_err(|_| bad())?;
    Ok(match_from(&p, &s))
}

fn validate(p: &[char]) -> Result<(), ()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(());
                }
                i += 2;
            }
            '[' => {
                let (_, next) = class(p, i, None).ok_or(())?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parses the class at `p[start]` (`[`); with `c`, also says whether it matches `c`.
/// Returns (matched, index after `]`).
fn class(p: &[char], start: usize, c: Option<char>) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        if let Some(c) = c
            && lo <= c
            && c <= hi
        {
            matched = true;
        }
    }
    Some((matched != negate, i))
}

fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match *p.get(i)? {
        '-' | ']' => None,
        '\\' => Some((*p.get(i + 1)?, i + 2)),
        c => Some((c, i + 1)),
    }
}

fn match_from(p: &[char], s: &[char]) -> bool {
    let Some(&first) = p.first() else {
        return s.is_empty();
    };
    match first {
        '*' => (0..=s.len()).any(|k| match_from(&p[1..], &s[k..])),
        '?' => !s.is_empty() && match_from(&p[1..], &s[1..]),
        '[' => match s.first() {
            Some(&c) => match class(p, 0, Some(c)) {
                Some((true, next)) => match_from(&p[next..], &s[1..]),
                _ => false,
            },
            None => false,
        },
        '\\' => match (p.get(1), s.first()) {
            (Some(a), Some(b)) if a == b => match_from(&p[2..], &s[1..]),
            _ => false,
        },
        c => s.first() == Some(&c) && match_from(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's own `filepath.Match` test table (the cases that do not involve `/`).
    #[test]
    fn go_match_table() {
        let ok: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true),
            ("a*b*c*d*e*", "axbxcxdxe", true),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
            ("[!d]", "!", true),
            ("[!d]", "d", true),
            ("[!d]", "e", false),
        ];
        for (p, s, want) in ok {
            assert_eq!(matches(p, s), Ok(*want), "pattern {p:?} on {s:?}");
        }
        for p in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            assert!(matches(p, "a").is_err(), "pattern {p:?} should be bad");
        }
    }
}
