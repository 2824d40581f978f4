//! Source positions and diagnostics.

use serde::Serialize;

/// A range of the source text: byte offsets plus the 1-based line and column of its start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// 1-based line of the first byte.
    pub line: u32,
    /// 1-based column (in characters) of the first byte.
    pub col: u32,
}

impl Span {
    /// The empty span at byte `offset` of `src`, with its line and column.
    pub fn at(src: &str, offset: usize) -> Span {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let mut col = before[line_start..].chars().count() as u32 + 1;
        if line == 1 && before.starts_with('\u{feff}') {
            col -= 1;
        }
        Span {
            offset,
            len: 0,
            line,
            col,
        }
    }

    /// The byte offset just past the span.
    pub fn end(&self) -> usize {
        self.offset + self.len
    }
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The Dockerfile cannot be built.
    Error,
    /// A build check: builds, but probably not what was meant.
    Warning,
}

/// One problem found in a Dockerfile, with where it is and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The build check's rule name, for warnings (e.g. `JSONArgsRecommended`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
    /// What would be valid, or how to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            rule: None,
            message: message.into(),
            span,
            hint: None,
        }
    }

    /// A warning of build check `rule` at `span`.
    pub fn check(rule: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            rule: Some(rule),
            message: message.into(),
            span,
            hint: None,
        }
    }

    /// A warning that belongs to no build check.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            rule: None,
            message: message.into(),
            span,
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint when there is one.
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: message (hint)` on one line.
    pub fn one_line(&self, file: &str) -> String {
        let mut s = format!(
            "{file}:{}:{}: {}",
            self.span.line, self.span.col, self.message
        );
        if let Some(r) = self.rule {
            s = format!(
                "{file}:{}:{}: {r}: {}",
                self.span.line, self.span.col, self.message
            );
        }
        if let Some(h) = &self.hint {
            s.push_str("; ");
            s.push_str(h);
        }
        s
    }
}
