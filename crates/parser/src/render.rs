//! Diagnostics rendered for people: `file:line:col: message`, the source line with a caret
//! under the problem, and the hint.
//!
//! The output stays small whatever the input: at most [`MAX_REPEATS`] warnings of one rule are
//! shown (then one line counts the rest), and a snippet shows at most [`SNIPPET_WIDTH`]
//! characters of the line around the problem.

use std::collections::HashMap;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::span::{Diagnostic, Severity};

/// How many warnings of one rule are rendered; the rest are counted on one line.
pub const MAX_REPEATS: usize = 10;

/// The most characters of a source line a snippet shows.
pub const SNIPPET_WIDTH: usize = 160;

/// Renders `diagnostics` against `source` (the file's text), in color when asked.
pub fn render(file: &str, source: &str, diagnostics: &[Diagnostic], color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    // Warnings shown per rule (those of no rule count as one kind).
    let mut shown: HashMap<Option<&str>, usize> = HashMap::new();
    let mut left_out: Vec<(Option<&str>, usize)> = Vec::new();
    for d in diagnostics {
        if d.severity == Severity::Warning {
            let n = shown.entry(d.rule).or_default();
            *n += 1;
            if *n > MAX_REPEATS {
                match left_out.iter_mut().find(|(r, _)| *r == d.rule) {
                    Some((_, c)) => *c += 1,
                    None => left_out.push((d.rule, 1)),
                }
                continue;
            }
        }
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let message = match d.rule {
            Some(rule) => format!("{rule}: {}", d.message),
            None => d.message.clone(),
        };
        let title = format!("{}:{}:{}: {}", file, d.span.line, d.span.col, message);
        let excerpt = Excerpt::of(source, d.span.offset, d.span.len);
        let mut groups = vec![
            level.primary_title(title).element(
                Snippet::source(&excerpt.text)
                    .line_start(d.span.line.saturating_sub(excerpt.lines_back).max(1) as usize)
                    .path(file)
                    .annotation(AnnotationKind::Primary.span(excerpt.start..excerpt.end)),
            ),
        ];
        if let Some(h) = &d.hint {
            groups.push(Group::with_title(Level::HELP.secondary_title(h.clone())));
        }
        out.push_str(&renderer.render(&groups).to_string());
        out.push('\n');
    }
    for (rule, n) in left_out {
        let kind = rule.unwrap_or("other");
        out.push_str(&format!(
            "{file}: … and {n} more {kind} warning(s) not shown\n"
        ));
    }
    out
}

/// The part of the source a snippet shows: the line the span starts on, cut to
/// [`SNIPPET_WIDTH`] characters around the span's start, with the span inside it.
struct Excerpt {
    text: String,
    start: usize,
    end: usize,
    /// How many lines before the span's line the excerpt is (1 for the end of the file).
    lines_back: u32,
}

impl Excerpt {
    fn of(source: &str, offset: usize, len: usize) -> Excerpt {
        let mut at = offset.min(source.len());
        while !source.is_char_boundary(at) {
            at -= 1;
        }
        // The end of a file that ends its last line: show the end of that line.
        let mut lines_back = 0;
        if at == source.len() && at > 0 && source.ends_with('\n') {
            at -= 1;
            lines_back = 1;
        }
        let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[at..].find('\n').map_or(source.len(), |i| at + i);
        let line = &source[line_start..line_end];
        let rel = at - line_start;
        // Characters before the span shown: at most a third of the width.
        let before: Vec<(usize, char)> = line[..rel].char_indices().collect();
        let keep_before = SNIPPET_WIDTH / 3;
        let (cut_start, lead) = if before.len() > keep_before {
            (before[before.len() - keep_before].0, "…")
        } else {
            (0, "")
        };
        let shown_before = line[cut_start..rel].chars().count();
        let room = SNIPPET_WIDTH.saturating_sub(shown_before);
        let cut_end = line[rel..]
            .char_indices()
            .nth(room)
            .map_or(line.len(), |(i, _)| rel + i);
        let tail = if cut_end < line.len() { "…" } else { "" };
        let text = format!("{lead}{}{tail}", &line[cut_start..cut_end]);
        let start = lead.len() + (rel - cut_start);
        let span_end = (at + len).min(line_start + cut_end);
        let end = (lead.len() + span_end.saturating_sub(line_start + cut_start)).max(start);
        Excerpt {
            text,
            start,
            end,
            lines_back,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

    #[test]
    fn long_lines_are_cut_around_the_span() {
        let src = format!(
            "FROM scratch\nRUN {}$X{}\n",
            "a".repeat(5000),
            "b".repeat(5000)
        );
        let at = src.find('$').unwrap();
        let e = Excerpt::of(&src, at, 2);
        assert!(
            e.text.chars().count() <= SNIPPET_WIDTH + 2,
            "{}",
            e.text.len()
        );
        assert_eq!(&e.text[e.start..e.end], "$X");
        let e = Excerpt::of(&src, 13, src.len());
        assert!(e.text.starts_with("RUN aaa"));
        assert!(e.end <= e.text.len());
        let e = Excerpt::of("RUN é$X", 6, 3);
        assert_eq!(&e.text[e.start..e.end], "$X");
    }

    /// 10k warnings of one rule on a 100 KiB line used to render 10k copies of the line.
    #[test]
    fn repeated_warnings_and_long_lines_render_small() {
        let line = format!("RUN echo {}", "$U ".repeat(30_000));
        let src = format!("FROM scratch\n{line}\n");
        let span = Span {
            offset: 13,
            len: line.len(),
            line: 2,
            col: 1,
        };
        let ds: Vec<Diagnostic> = (0..10_000)
            .map(|i| Diagnostic::check("UndefinedVar", span, format!("undefined {i}")))
            .collect();
        let out = render("Dockerfile", &src, &ds, false);
        assert!(out.len() < 10_000, "{} bytes", out.len());
        assert_eq!(out.matches("UndefinedVar: undefined").count(), MAX_REPEATS);
        assert!(out.contains("… and 9990 more UndefinedVar warning(s) not shown"));
    }
}
