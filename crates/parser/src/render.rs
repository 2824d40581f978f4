//! Diagnostics rendered for people: `file:line:col: message`, the source line with a caret
//! under the problem, and the hint.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::span::{Diagnostic, Severity};

/// Renders `diagnostics` against `source` (the file's text), in color when asked.
pub fn render(file: &str, source: &str, diagnostics: &[Diagnostic], color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let message = match d.rule {
            Some(rule) => format!("{rule}: {}", d.message),
            None => d.message.clone(),
        };
        let title = format!("{}:{}:{}: {}", file, d.span.line, d.span.col, message);
        let start = d.span.offset.min(source.len());
        let end = (d.span.offset + d.span.len).min(source.len()).max(start);
        let mut groups = vec![
            level.primary_title(title).element(
                Snippet::source(source)
                    .path(file)
                    .annotation(AnnotationKind::Primary.span(start..end)),
            ),
        ];
        if let Some(h) = &d.hint {
            groups.push(Group::with_title(Level::HELP.secondary_title(h.clone())));
        }
        out.push_str(&renderer.render(&groups).to_string());
        out.push('\n');
    }
    out
}
