//! Physical lines to logical lines: parser directives, comments, continuations.

use crate::span::{Diagnostic, Span};

/// One logical line (an instruction with its continuations joined), mapped back to the source.
#[derive(Clone, Debug)]
pub(crate) struct LogicalLine {
    /// The joined text, continuation escapes and newlines removed.
    pub text: String,
    /// For each joined piece: (offset in `text`, offset in source, line, col).
    pieces: Vec<Piece>,
    /// The span covering every physical line of the instruction.
    pub span: Span,
    /// The last physical line (1-based).
    pub end_line: u32,
}

#[derive(Clone, Copy, Debug)]
struct Piece {
    text_at: usize,
    src_at: usize,
    line: u32,
    col: u32,
}

impl LogicalLine {
    /// The source span of `text[start..end]`.
    pub fn span_of(&self, start: usize, end: usize) -> Span {
        let idx = self
            .pieces
            .iter()
            .rposition(|p| p.text_at <= start)
            .unwrap_or(0);
        let Some(p) = self.pieces.get(idx) else {
            return self.span;
        };
        let within = &self.text[p.text_at..start.min(self.text.len()).max(p.text_at)];
        Span {
            offset: p.src_at + within.len(),
            len: end.saturating_sub(start),
            line: p.line,
            col: p.col + within.chars().count() as u32,
        }
    }
}

/// The parser directives found at the top of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Directives {
    /// `# syntax=` (the frontend image), if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    /// `# escape=`: the escape character, `\` unless set to a backtick.
    pub escape: char,
    /// `# check=`, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

/// Splits `src` into physical lines: (text without the line break, byte offset, 1-based number).
fn physical_lines(src: &str) -> Vec<(&str, usize, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    for (n, raw) in (1..).zip(src.split_inclusive('\n')) {
        let body = raw.strip_suffix('\n').unwrap_or(raw);
        let body = body.strip_suffix('\r').unwrap_or(body);
        out.push((body, at, n));
        at += raw.len();
    }
    out
}

fn parse_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let (key, value) = rest.split_once('=')?;
    let key = key.trim_end_matches([' ', '\t']);
    let mut chars = key.chars();
    if !chars.next()?.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((
        key.to_ascii_lowercase(),
        value.trim_matches([' ', '\t']).to_string(),
    ))
}

/// Reads the directives, then joins the remaining lines into logical lines.
pub(crate) fn logical_lines(
    src: &str,
    diags: &mut Vec<Diagnostic>,
) -> (Directives, Vec<LogicalLine>) {
    let src_offset = if src.starts_with('\u{feff}') { 3 } else { 0 };
    let body = &src[src_offset..];
    let lines = physical_lines(body);
    let mut directives = Directives {
        escape: '\\',
        ..Default::default()
    };
    let mut i = 0;
    let mut seen = Vec::new();
    while let Some((text, at, n)) = lines.get(i) {
        let Some((key, value)) = parse_directive(text) else {
            break;
        };
        let span = Span {
            offset: at + src_offset,
            len: text.len(),
            line: *n,
            col: 1,
        };
        if seen.contains(&key) {
            diags.push(Diagnostic::error(
                span,
                format!("only one {key} parser directive can be used"),
            ));
        }
        seen.push(key.clone());
        match key.as_str() {
            "escape" => match value.as_str() {
                "\\" => directives.escape = '\\',
                "`" => directives.escape = '`',
                other => diags.push(
                    Diagnostic::error(span, format!("invalid escape token '{other}'"))
                        .with_hint("the escape directive takes \\ or ` (a backtick)"),
                ),
            },
            "syntax" => directives.syntax = Some(value),
            "check" => directives.check = Some(value),
            _ => {}
        }
        i += 1;
    }

    let escape = directives.escape;
    let mut out = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (text, at, n) in lines.into_iter().skip(i) {
        let at = at + src_offset;
        let trimmed = text.trim_start_matches([' ', '\t']);
        let lead = text.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            // Blank and comment lines are skipped, inside a continuation too.
            continue;
        }
        let (content, continues) = strip_continuation(trimmed, escape);
        let line = current.get_or_insert_with(|| LogicalLine {
            text: String::new(),
            pieces: Vec::new(),
            span: Span {
                offset: at + lead,
                len: 0,
                line: n,
                col: lead as u32 + 1,
            },
            end_line: n,
        });
        line.pieces.push(Piece {
            text_at: line.text.len(),
            src_at: at + lead,
            line: n,
            col: text[..lead].chars().count() as u32 + 1,
        });
        line.text.push_str(content);
        line.end_line = n;
        line.span.len = at + text.len() - line.span.offset;
        if !continues && let Some(done) = current.take() {
            out.push(done);
        }
    }
    if let Some(done) = current.take() {
        out.push(done);
    }
    (directives, out)
}

/// Removes a trailing escape character (and whitespace after it); says whether one was there.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_continuations_skipping_comments_and_blank_lines() {
        let src = "FROM a\nRUN echo \\\n  # comment\n\n  hi\n";
        let mut d = vec![];
        let (_, lines) = logical_lines(src, &mut d);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].text, "RUN echo hi");
        assert_eq!(lines[1].span.line, 2);
        assert_eq!(lines[1].end_line, 5);
        let s = lines[1].span_of(9, 11);
        assert_eq!((s.line, s.col), (5, 3));
        assert_eq!(&src[s.offset..s.offset + s.len], "hi");
    }

    #[test]
    fn escape_directive_backtick() {
        let src = "# escape=`\nFROM a\nRUN dir `\n  c:\\\n";
        let mut d = vec![];
        let (dir, lines) = logical_lines(src, &mut d);
        assert_eq!(dir.escape, '`');
        assert_eq!(lines[1].text, "RUN dir c:\\");
    }

    #[test]
    fn bom_and_crlf() {
        let src = "\u{feff}FROM a\r\nRUN x\r\n";
        let mut d = vec![];
        let (_, lines) = logical_lines(src, &mut d);
        assert_eq!(lines[0].text, "FROM a");
        assert_eq!(lines[1].text, "RUN x");
        assert_eq!(lines[1].span.offset, 3 + 8);
    }
}
