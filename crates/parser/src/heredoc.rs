//! Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`) as BuildKit recognizes them.

use nom::bytes::complete::{tag, take_while};
use nom::combinator::opt;
use nom::{IResult, Parser};

use crate::shell::{Lexer, NoVars};

/// A heredoc marker found in an instruction line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The terminator word, quotes removed.
    pub name: String,
    /// The file descriptor before `<<` (0 when none).
    pub fd: u32,
    /// True when no part of the word was quoted: the body is subject to expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are removed from the body and the terminator.
    pub chomp: bool,
}

fn marker_parts(i: &str) -> IResult<&str, (&str, bool)> {
    let (i, fd) = take_while(|c: char| c.is_ascii_digit()).parse(i)?;
    let (i, _) = tag("<<").parse(i)?;
    let (i, dash) = opt(tag("-")).parse(i)?;
    let (i, _) = take_while(|c| matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')).parse(i)?;
    Ok((i, (fd, dash.is_some())))
}

/// BuildKit's `ParseHeredoc`: `Ok(None)` when `word` is not a heredoc marker.
pub(crate) fn parse_marker(word: &str) -> Result<Option<Marker>, String> {
    let Ok((rest, (fd, chomp))) = marker_parts(word) else {
        return Ok(None);
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let mut lex = Lexer::new('\\');
    lex.skip_unset = true;
    let words = lex.expand(rest, &NoVars).map_err(|e| e.message)?.words;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    lex.raw_quotes = true;
    let raw = lex.expand(rest, &NoVars).map_err(|e| e.message)?.words;
    let [raw_name] = raw.as_slice() else {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    };
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Marker {
        name: name.clone(),
        fd: fd.parse().unwrap_or(0),
        expand: quotes(name) == quotes(raw_name),
        chomp,
    }))
}

/// BuildKit's `heredocsFromLine`: every heredoc marker among the line's words, in order.
pub(crate) fn markers_in_line(line: &str) -> Result<Vec<Marker>, String> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset = true;
    let words = lex
        .expand(line, &NoVars)
        .map(|e| e.words)
        .unwrap_or_default();
    let mut out = Vec::new();
    for w in words {
        if let Some(m) = parse_marker(&w)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// Removes leading tabs from every line (`<<-`).
pub(crate) fn chomp(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    for l in content.split_inclusive('\n') {
        out.push_str(l.trim_start_matches('\t'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(w: &str) -> Option<(String, u32, bool, bool)> {
        parse_marker(w)
            .unwrap()
            .map(|m| (m.name, m.fd, m.expand, m.chomp))
    }

    #[test]
    fn markers() {
        assert_eq!(m("<<EOF"), Some(("EOF".into(), 0, true, false)));
        assert_eq!(m("<<-EOF"), Some(("EOF".into(), 0, true, true)));
        assert_eq!(m("3<<X"), Some(("X".into(), 3, true, false)));
        assert_eq!(
            m("<<'NOEXPAND'"),
            Some(("NOEXPAND".into(), 0, false, false))
        );
        assert_eq!(m("<<eo'f'"), Some(("eof".into(), 0, false, false)));
        assert_eq!(m("<<eo\\'f"), Some(("eo'f".into(), 0, true, false)));
        assert_eq!(m("<<  EOF"), Some(("EOF".into(), 0, true, false)));
        assert_eq!(m("<<$EOF"), Some(("$EOF".into(), 0, true, false)));
        assert_eq!(m("<<'one two'"), Some(("one two".into(), 0, false, false)));
        assert_eq!(m("\"<<NOHEREDOC\""), None);
        assert_eq!(m("<<"), None);
        assert_eq!(m("<<a<b"), None);
    }

    #[test]
    fn line_markers() {
        let ms = markers_in_line("COPY <<FILE1 <<FILE2 /dest").unwrap();
        let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, vec!["FILE1", "FILE2"]);
        let ms = markers_in_line("RUN <<  EOF  > foo").unwrap();
        assert_eq!(ms[0].name, "EOF");
        assert!(markers_in_line("RUN \"<<NOHEREDOC\"").unwrap().is_empty());
        assert_eq!(chomp("\ta\n\t\tb\nc"), "a\nb\nc");
    }
}
