//! Physical lines to logical lines, exactly as BuildKit's parser reads them: parser directives,
//! comments, line continuations (with comment and blank lines inside them), CRLF, a UTF-8 BOM,
//! and heredoc bodies read on demand.

use crate::directives::{Directives, parse_directive_line};
use crate::span::{Diagnostic, Span};

/// BuildKit reads lines with Go's `bufio.Scanner`, which refuses lines longer than this.
pub(crate) const MAX_LINE: usize = 65535;

/// One logical line (an instruction with its continuations joined), mapped back to the source.
#[derive(Clone, Debug)]
pub(crate) struct LogicalLine {
    /// The joined text: continuation escapes removed, the first line's leading whitespace
    /// removed, later lines kept as written.
    pub text: String,
    /// Maps offsets in `text` back to the source.
    pub map: LineMap,
    /// The first physical line (1-based).
    pub start_line: u32,
    /// The last physical line of the text (heredoc bodies come after it).
    pub end_line: u32,
    /// Comment lines just above the instruction (BuildKit's `PrevComment`).
    pub comments: Vec<String>,
    /// The first empty line inside the continuation, if any.
    pub empty_continuation: Option<Span>,
}

/// Where each joined piece of a logical line came from.
#[derive(Clone, Debug, Default)]
pub(crate) struct LineMap {
    /// The first piece (most instructions have only this one, so it needs no allocation).
    first: Piece,
    /// The pieces from continuation lines.
    more: Vec<Piece>,
    len: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct Piece {
    text_at: usize,
    src_at: usize,
    line_start: usize,
    line: u32,
}

impl LineMap {
    fn piece_for(&self, at: usize) -> Option<&Piece> {
        match self.more.iter().rposition(|p| p.text_at <= at) {
            Some(idx) => self.more.get(idx),
            None => (self.first.text_at <= at).then_some(&self.first),
        }
    }

    fn src_offset(&self, at: usize) -> usize {
        match self.piece_for(at) {
            Some(p) => p.src_at + (at - p.text_at),
            None => 0,
        }
    }

    /// The source span of `text[start..end]` (byte offsets on character boundaries).
    pub fn span_of(&self, src: &str, start: usize, end: usize) -> Span {
        let start = start.min(self.len);
        let end = end.clamp(start, self.len);
        let Some(p) = self.piece_for(start).copied() else {
            return Span::default();
        };
        let offset = p.src_at + (start - p.text_at);
        // A character never straddles two pieces, so the source offset of the text's last
        // byte plus one is the end of its last character.
        let end_src = if end > start {
            self.src_offset(end - 1) + 1
        } else {
            offset
        };
        let col = src
            .get(p.line_start..offset)
            .map_or(0, |s| s.chars().count()) as u32
            + 1;
        Span {
            offset,
            len: end_src.saturating_sub(offset),
            line: p.line,
            col,
        }
    }

    /// The span of the whole text.
    pub fn span(&self, src: &str) -> Span {
        self.span_of(src, 0, self.len)
    }
}

/// A physical line: its text with the line break, without it, its offset and number.
#[derive(Clone, Copy, Debug)]
struct Physical<'a> {
    raw: &'a str,
    body: &'a str,
    at: usize,
    line: u32,
}

/// Reads a Dockerfile line by line, tracking directives, comments and the escape character.
pub(crate) struct Scanner<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    directives_done: bool,
    seen: Vec<String>,
    /// The directives read so far.
    pub directives: Directives,
    /// Where each directive was (for errors about their values).
    pub directive_spans: Vec<(String, Span)>,
    comments: Vec<String>,
    /// Problems found while reading lines.
    pub diags: Vec<Diagnostic>,
}

/// The index of the first `\n` in `bytes`. Tests 16 bytes at a time (a test the compiler
/// turns into one vector compare) before looking for the exact byte.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    for chunk in bytes.chunks_exact(16) {
        if chunk.iter().fold(false, |any, &b| any | (b == b'\n')) {
            break;
        }
        at += 16;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| at + i)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing escape character (and blanks after it) that continues the line, as
/// BuildKit's `lineContinuationRegex` does: an escape preceded by another escape does not
/// continue the line.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some("") => ("", false),
        Some(before) if before.ends_with(escape) => (line, true),
        Some(before) => (before, false),
        None => (line, true),
    }
}

impl<'a> Scanner<'a> {
    /// A scanner over `src`.
    pub fn new(src: &'a str) -> Self {
        let pos = if src.starts_with('\u{feff}') { 3 } else { 0 };
        Scanner {
            src,
            pos,
            line: 0,
            directives_done: false,
            seen: Vec::new(),
            directives: Directives::default(),
            directive_spans: Vec::new(),
            comments: Vec::new(),
            diags: Vec::new(),
        }
    }

    /// The number of physical lines read so far (the current line).
    pub fn line(&self) -> u32 {
        self.line
    }

    fn next_physical(&mut self) -> Option<Physical<'a>> {
        if self.pos >= self.src.len() {
            return None;
        }
        let rest = &self.src[self.pos..];
        let raw = match find_newline(rest.as_bytes()) {
            Some(i) => &rest[..=i],
            None => rest,
        };
        let body_len = raw.len()
            - raw
                .bytes()
                .rev()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
        let body = &raw[..body_len];
        let at = self.pos;
        self.pos += raw.len();
        self.line += 1;
        if body.len() > MAX_LINE {
            self.diags.push(
                Diagnostic::error(
                    Span {
                        offset: at,
                        len: body.len(),
                        line: self.line,
                        col: 1,
                    },
                    format!("line {} is longer than {MAX_LINE} bytes", self.line),
                )
                .with_hint("BuildKit rejects such lines too; split it with line continuations"),
            );
        }
        Some(Physical {
            raw,
            body,
            at,
            line: self.line,
        })
    }

    /// BuildKit's `processLine`: strips the line break (and leading whitespace when asked),
    /// reads a directive while directives are still allowed, and blanks out comments
    /// (`comment`: the line is one, as [`is_comment`] says).
    fn process_line(
        &mut self,
        p: Physical<'a>,
        strip_left: bool,
        comment: bool,
    ) -> (&'a str, usize, bool) {
        let t = if strip_left {
            p.body.trim_start()
        } else {
            p.body
        };
        let lead = p.body.len() - t.len();
        let mut directive = false;
        if !self.directives_done {
            match parse_directive_line(t) {
                Some((key, value)) if matches!(key.as_str(), "syntax" | "escape" | "check") => {
                    let span = Span {
                        offset: p.at + lead,
                        len: t.len(),
                        line: p.line,
                        col: p.body[..lead].chars().count() as u32 + 1,
                    };
                    if self.seen.contains(&key) {
                        self.diags.push(
                            Diagnostic::error(
                                span,
                                format!("only one {key} parser directive can be used"),
                            )
                            .with_hint("remove the repeated directive"),
                        );
                    } else {
                        self.seen.push(key.clone());
                        match key.as_str() {
                            "escape" => match value.as_str() {
                                "\\" => self.directives.escape = '\\',
                                "`" => self.directives.escape = '`',
                                other => self.diags.push(
                                    Diagnostic::error(
                                        span,
                                        format!(
                                            "invalid escape token '{other}' does not match ` or \\"
                                        ),
                                    )
                                    .with_hint("write # escape=\\ or # escape=` (a backtick)"),
                                ),
                            },
                            "syntax" => self.directives.syntax = Some(value),
                            _ => self.directives.check = Some(value),
                        }
                        self.directive_spans.push((key, span));
                    }
                    directive = true;
                }
                _ => self.directives_done = true,
            }
        }
        let out = if comment { "" } else { t };
        (out, p.at + lead, directive)
    }

    /// The next logical line, or `None` at the end of the file.
    pub fn next_logical(&mut self) -> Option<LogicalLine> {
        loop {
            let p = self.next_physical()?;
            let comment = is_comment(p.body);
            if comment {
                let comment = p.raw.get(1..).unwrap_or_default().trim();
                if comment.is_empty() {
                    self.comments.clear();
                } else {
                    self.comments.push(comment.to_string());
                }
            }
            let (processed, src_at, directive) = self.process_line(p, true, comment);
            if directive {
                self.comments.pop();
            }
            let escape = self.directives.escape;
            let (text, end) = trim_continuation(processed, escape);
            if end && text.is_empty() {
                continue;
            }
            let mut line = LogicalLine {
                text: String::with_capacity(text.len()),
                map: LineMap::default(),
                start_line: p.line,
                end_line: p.line,
                comments: std::mem::take(&mut self.comments),
                empty_continuation: None,
            };
            line.map.first = Piece {
                text_at: 0,
                src_at,
                line_start: p.at,
                line: p.line,
            };
            line.text.push_str(text);
            let mut end = end;
            while !end {
                let Some(p) = self.next_physical() else { break };
                let comment = is_comment(p.body);
                let (processed, src_at, _) = self.process_line(p, false, comment);
                line.end_line = p.line;
                if comment {
                    continue;
                }
                if processed.trim_start().is_empty() {
                    line.empty_continuation.get_or_insert(Span {
                        offset: p.at,
                        len: 0,
                        line: p.line,
                        col: 1,
                    });
                    continue;
                }
                let (text, e) = trim_continuation(processed, escape);
                end = e;
                line.map.more.push(Piece {
                    text_at: line.text.len(),
                    src_at,
                    line_start: p.at,
                    line: p.line,
                });
                line.text.push_str(text);
            }
            line.map.len = line.text.len();
            return Some(line);
        }
    }

    /// Reads a heredoc body up to the line equal to `name` (after removing leading tabs when
    /// `chomp`). Returns the body (line breaks kept) or `None` when the file ends first.
    pub fn read_heredoc(&mut self, name: &str, chomp: bool) -> Option<String> {
        let mut content = String::new();
        while let Some(p) = self.next_physical() {
            let term = if chomp {
                p.body.trim_start_matches('\t')
            } else {
                p.body
            };
            if term == name {
                return Some(content);
            }
            content.push_str(p.raw);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(src: &str) -> (Scanner<'_>, Vec<LogicalLine>) {
        let mut s = Scanner::new(src);
        let mut out = Vec::new();
        while let Some(l) = s.next_logical() {
            out.push(l);
        }
        (s, out)
    }

    #[test]
    fn joins_continuations_keeping_indentation() {
        let src = "FROM a\nRUN echo \\\n  # comment\n\n  hi\n";
        let (_, ls) = lines(src);
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[1].text, "RUN echo   hi");
        assert_eq!((ls[1].start_line, ls[1].end_line), (2, 5));
        assert_eq!(ls[1].empty_continuation.map(|s| s.line), Some(4));
        let s = ls[1].map.span_of(src, 11, 13);
        assert_eq!((s.line, s.col), (5, 3));
        assert_eq!(&src[s.offset..s.end()], "hi");
    }

    #[test]
    fn finds_newlines_in_and_after_whole_chunks() {
        for len in 0..40 {
            for at in 0..len {
                let mut s = vec![b'a'; len];
                s[at] = b'\n';
                assert_eq!(find_newline(&s), Some(at), "{len} {at}");
            }
            assert_eq!(find_newline(&vec![b'a'; len]), None);
        }
    }

    #[test]
    fn escaped_escape_does_not_continue() {
        assert_eq!(trim_continuation("a \\\\", '\\'), ("a \\\\", true));
        assert_eq!(trim_continuation("a \\  ", '\\'), ("a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a`", '`'), ("a", false));
    }

    #[test]
    fn escape_directive_backtick() {
        let src = "# escape=`\nFROM a\nRUN dir `\n  c:\\\n";
        let (s, ls) = lines(src);
        assert_eq!(s.directives.escape, '`');
        assert_eq!(ls[1].text, "RUN dir   c:\\");
    }

    #[test]
    fn directives_stop_at_the_first_other_line() {
        let src = "# syntax=docker/dockerfile:1\n# hello\n# escape=`\nFROM a\n";
        let (s, _) = lines(src);
        assert_eq!(s.directives.escape, '\\');
        assert_eq!(s.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        let (s, _) = lines("\n# escape=`\nFROM a\n");
        assert_eq!(s.directives.escape, '\\');
    }

    #[test]
    fn bom_crlf_and_comments() {
        let src = "\u{feff}# doc\nFROM a\r\nRUN x\r\n";
        let (_, ls) = lines(src);
        assert_eq!(ls[0].text, "FROM a");
        assert_eq!(ls[0].comments, vec!["doc".to_string()]);
        assert_eq!(ls[1].text, "RUN x");
        assert!(ls[1].comments.is_empty());
        let sp = ls[1].map.span(src);
        assert_eq!(&src[sp.offset..sp.end()], "RUN x");
    }

    #[test]
    fn heredoc_bodies() {
        let src = "RUN <<EOF\n\tline\nEOF\nRUN <<-X\n\ty\n\tX\n";
        let mut s = Scanner::new(src);
        s.next_logical().unwrap();
        assert_eq!(s.read_heredoc("EOF", false).as_deref(), Some("\tline\n"));
        s.next_logical().unwrap();
        assert_eq!(s.read_heredoc("X", true).as_deref(), Some("\ty\n"));
        let mut s = Scanner::new("RUN <<A\nnever\n");
        s.next_logical().unwrap();
        assert_eq!(s.read_heredoc("A", false), None);
    }
}
