//! "Did you mean …?" suggestions: the closest candidate within an edit distance of 2, as
//! BuildKit's `suggest` package picks them.

/// The closest of `candidates` to `word` (Levenshtein distance below 3), or `None` when none is
/// close or `word` is itself a candidate. Case-insensitive matching returns the candidate in
/// `word`'s case when `word` is all lower or all upper case.
pub fn closest<'a, I>(word: &str, candidates: I, case_sensitive: bool) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let w = if case_sensitive {
        word.to_string()
    } else {
        word.to_lowercase()
    };
    let len = w.chars().count();
    let mut best: Option<String> = None;
    let mut min = 3;
    for c in candidates {
        let c: std::borrow::Cow<str> = if case_sensitive {
            c.into()
        } else {
            c.to_lowercase().into()
        };
        if c == w {
            return None;
        }
        // The distance is at least the difference in length.
        if c.chars().count().abs_diff(len) >= min {
            continue;
        }
        let d = distance(&w, &c);
        if d < min {
            min = d;
            best = Some(c.into_owned());
        }
    }
    best.map(|b| {
        if case_sensitive {
            b
        } else if word == word.to_lowercase() {
            b.to_lowercase()
        } else if word == word.to_uppercase() {
            b.to_uppercase()
        } else {
            b
        }
    })
}

/// Levenshtein distance in characters.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_closest() {
        assert_eq!(
            closest("chmodd", ["from", "chown", "chmod"], true).as_deref(),
            Some("chmod")
        );
        assert_eq!(
            closest("RUNN", ["run", "cmd"], false).as_deref(),
            Some("RUN")
        );
        assert_eq!(closest("zzzzzz", ["run"], false), None);
        assert_eq!(closest("run", ["run"], false), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
