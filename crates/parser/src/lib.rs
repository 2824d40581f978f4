//! Dockerfile text to an AST with spans, and the AST to an [`xbuild_llb::Definition`].
//!
//! [`parse`] never fails: it returns every instruction it could parse plus a diagnostic for each
//! problem (with a span: line, column, byte range) and the build-check warnings. It follows
//! BuildKit's Dockerfile frontend (dockerfile:1 syntax) exactly: what BuildKit accepts parses,
//! what it rejects is an error. [`lower::lower`] turns the AST, the build options and an
//! [`lower::ImageResolver`] into a build graph.
//!
//! Invariant: this crate is pure. It never touches the filesystem or the network; base image
//! configurations come through the resolver.
//!
//! ```
//! let parsed = xbuild_parser::parse("FROM scratch\nCOPY hello /\nCMD [\"/hello\"]\n");
//! assert!(!parsed.has_errors());
//! assert_eq!(parsed.dockerfile.instructions.len(), 3);
//! let first = &parsed.dockerfile.instructions[0];
//! assert_eq!((first.span.line, first.span.col), (1, 1));
//!
//! let bad = xbuild_parser::parse("FROM scratch\nRUNN echo\n");
//! assert_eq!(bad.diagnostics[0].span.line, 2);
//! assert_eq!(bad.diagnostics[0].message, "unknown instruction: RUNN");
//! assert_eq!(bad.diagnostics[0].hint.as_deref(), Some("did you mean RUN?"));
//! ```
#![forbid(unsafe_code)]

pub mod ast;
pub mod checks;
mod directives;
mod env;
pub mod gofmt;
mod heredoc;
mod instruction;
mod lines;
pub mod lower;
pub mod mount;
mod node;
pub mod platform;
pub mod reference;
mod render;
pub mod shell;
mod span;
mod suggest;
mod words;

pub use ast::{CmdLine, Command, Dockerfile, Flag, Heredoc, Instruction, KeyValue, Word};
pub use directives::{
    CheckConfig, Directives, Frontend, SyntaxError, is_builtin_syntax, syntax_frontend,
};
pub use render::render;
pub use span::{Diagnostic, Severity, Span};
pub use suggest::closest as suggest;

/// What [`parse`] returns: the instructions that parsed and every diagnostic.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The syntax tree.
    pub dockerfile: Dockerfile,
    /// Errors and warnings (build checks), in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The build-check configuration from the `# check=` directive.
    pub checks: CheckConfig,
}

impl Parsed {
    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

impl Dockerfile {
    /// The tree in BuildKit's AST dump format: one `(instruction "arg" …)` line per instruction.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for i in &self.instructions {
            if let Ok(n) =
                node::parse_node(&i.original, 0, i.original.len(), self.directives.escape)
            {
                out.push('(');
                out.push_str(&node::dump(&n));
                out.push_str(")\n");
            }
        }
        out
    }
}

/// Dockerfile bytes that are not UTF-8.
#[derive(Clone, Debug, thiserror::Error)]
#[error("line {}, column {}: {}", .diagnostic.span.line, .diagnostic.span.col, .diagnostic.message)]
pub struct NotUtf8 {
    /// The text with each invalid sequence replaced by U+FFFD, to show the line.
    pub text: String,
    /// The error, at the first invalid byte.
    pub diagnostic: Diagnostic,
}

/// Dockerfile bytes as text; invalid UTF-8 is an error at the line and column of the first
/// invalid byte.
pub fn decode(bytes: Vec<u8>) -> Result<String, NotUtf8> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let bad = bytes.get(at).copied().unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut span = Span::at(&text, at);
            span.len = '\u{fffd}'.len_utf8();
            let diagnostic = Diagnostic::error(
                span,
                format!("the Dockerfile is not valid UTF-8: byte 0x{bad:02x} cannot start or continue a character"),
            )
            .with_hint("save the Dockerfile as UTF-8");
            Err(NotUtf8 { text, diagnostic })
        }
    }
}

/// Parses Dockerfile text and runs the build checks (their warnings are among the
/// diagnostics).
pub fn parse(src: &str) -> Parsed {
    parse_with(src, true, true)
}

/// [`parse`] for a build that names its frontend with the `BUILDKIT_SYNTAX` build argument: as
/// in BuildKit, the argument overrides the `# syntax=` line, which is then not looked at (the
/// caller checks the argument with [`syntax_frontend`]).
pub fn parse_ignoring_syntax(src: &str) -> Parsed {
    parse_with(src, true, false)
}

/// Parses Dockerfile text without running the build checks: the syntax tree and the syntax
/// errors only (what [`parse`] returns, minus the build-check warnings).
pub fn parse_syntax(src: &str) -> Parsed {
    parse_with(src, false, true)
}

fn parse_with(src: &str, run_checks: bool, check_syntax: bool) -> Parsed {
    let mut scanner = lines::Scanner::new(src);
    let mut diagnostics = Vec::new();
    // Every instruction starts on its own line, so there are at most as many instructions as
    // lines: reserving that many never regrows (an instruction is a few hundred bytes to move).
    let guess = count_newlines(src) + 1;
    let mut instructions = Vec::with_capacity(guess);
    let mut empty_continuations = Vec::new();
    let mut stages = Structure::default();
    while let Some(line) = scanner.next_logical() {
        let lines::LogicalLine {
            text,
            map,
            start_line,
            comments,
            empty_continuation,
            ..
        } = line;
        let escape = scanner.directives.escape;
        let span_of = |s: usize, e: usize| map.span_of(src, s, e);
        let line_span = map.span(src);
        if let Some(s) = empty_continuation {
            empty_continuations.push(s);
        }
        let node = match node::parse_node(&text, 0, text.len(), escape) {
            Ok(n) => n,
            Err(e) => {
                diagnostics.push(
                    Diagnostic::error(span_of(e.start, e.end), e.message).with_hint_opt(e.hint),
                );
                continue;
            }
        };
        stages.see(node.kind, node.lower == "from", line_span);
        let target = node.sub.as_deref().unwrap_or(&node);
        let mut heredocs = Vec::new();
        if matches!(target.lower, "add" | "copy" | "run") && !target.json && text.contains("<<") {
            match heredoc::markers_in_line(&text) {
                Err(e) => diagnostics.push(
                    Diagnostic::error(line_span, e)
                        .with_hint("write the heredoc marker as <<WORD, <<-WORD or <<\"WORD\""),
                ),
                Ok(markers) => {
                    for m in markers {
                        match scanner.read_heredoc(&m.name, m.chomp) {
                            Some(content) => heredocs.push(ast::Heredoc {
                                name: m.name,
                                fd: m.fd,
                                expand: m.expand,
                                chomp: m.chomp,
                                content,
                            }),
                            None => {
                                diagnostics.push(
                                    Diagnostic::error(line_span, "unterminated heredoc").with_hint(
                                        format!(
                                            "end the heredoc with a line holding only {}",
                                            m.name
                                        ),
                                    ),
                                );
                                break;
                            }
                        }
                    }
                }
            }
        }
        let lines = ast::Lines {
            start: start_line,
            end: scanner.line(),
        };
        let mut b = instruction::Builder {
            diags: &mut diagnostics,
            span_of: &span_of,
        };
        if let Some(built) = instruction::build(&mut b, node, &text, &heredocs) {
            instructions.push(Instruction {
                keyword: built.keyword,
                lines,
                span: line_span,
                flags: built.flags,
                command: built.command,
                heredocs,
                original: text,
                comments,
            });
        }
    }
    diagnostics.append(&mut scanner.diags);
    let directives = std::mem::take(&mut scanner.directives);
    if src.is_empty() {
        diagnostics.push(
            Diagnostic::error(Span::at(src, src.len()), "the Dockerfile cannot be empty")
                .with_hint("start it with FROM <image>"),
        );
    } else if instructions.is_empty() && !diagnostics.iter().any(Diagnostic::is_error) {
        diagnostics.push(
            Diagnostic::error(Span::at(src, src.len()), "file with no instructions")
                .with_hint("start it with FROM <image>"),
        );
    }
    stages.report(&mut diagnostics);
    let mut checks = CheckConfig::default();
    for (key, span) in &scanner.directive_spans {
        match key.as_str() {
            "syntax" if check_syntax => {
                if let Some(s) = &directives.syntax
                    && let Err(e) = syntax_frontend(s)
                {
                    let hint = match e {
                        SyntaxError::CustomFrontend { .. } => {
                            "xbuild builds with its own Dockerfile frontend only: remove the # syntax line, or pass --build-arg BUILDKIT_SYNTAX=docker/dockerfile:1 to override it"
                        }
                        SyntaxError::UnknownTag { .. } => {
                            "use a published tag such as docker/dockerfile:1, 1.7, 1-labs or docker/dockerfile-upstream:master"
                        }
                        SyntaxError::InvalidReference { .. } => {
                            "write the frontend as # syntax=docker/dockerfile:1"
                        }
                    };
                    diagnostics.push(Diagnostic::error(*span, e.to_string()).with_hint(hint));
                }
            }
            "check" => match CheckConfig::parse(directives.check.as_deref().unwrap_or_default()) {
                Ok(c) => checks = c,
                Err(e) => diagnostics.push(
                    Diagnostic::error(*span, format!("failed to parse check options: {e}"))
                        .with_hint("write # check=skip=Rule1,Rule2;error=true"),
                ),
            },
            _ => {}
        }
    }
    let dockerfile = Dockerfile {
        directives,
        instructions,
    };
    let warnings = if run_checks {
        checks::run(&dockerfile, src, &empty_continuations, &checks)
    } else {
        Vec::new()
    };
    if checks.error && !warnings.is_empty() {
        let mut rules: Vec<&str> = warnings.iter().filter_map(|w| w.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        let span = scanner_check_span(&dockerfile, &warnings);
        diagnostics.push(
            Diagnostic::error(
                span,
                format!("lint violation found for rules: {}", rules.join(", ")),
            )
            .with_hint("# check=error=true turns build-check warnings into errors"),
        );
    }
    diagnostics.extend(warnings);
    diagnostics.sort_by_key(|d| (d.span.offset, d.severity));
    Parsed {
        dockerfile,
        diagnostics,
        checks,
    }
}

fn scanner_check_span(_df: &Dockerfile, warnings: &[Diagnostic]) -> Span {
    warnings.first().map(|w| w.span).unwrap_or_default()
}

/// The number of `\n` in `s`. Counts per chunk of 255 bytes in a byte-sized counter, which
/// the compiler turns into wide vector adds.
fn count_newlines(s: &str) -> usize {
    s.as_bytes()
        .chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |n, &c| n.wrapping_add(u8::from(c == b'\n')));
            usize::from(n)
        })
        .sum()
}

/// BuildKit's `instructions.Parse` structure rules: only ARG may come before the first FROM,
/// and there must be a FROM. Every instruction is seen in order (including instructions that
/// had errors, so one bad FROM does not cascade).
#[derive(Default)]
struct Structure {
    has_from: bool,
    /// The first instruction other than ARG before any FROM.
    before_from: Option<Span>,
    /// The last instruction seen.
    last: Option<Span>,
}

impl Structure {
    /// Notes the next instruction: its kind, whether it is FROM and its span.
    fn see(&mut self, kind: node::Kind, is_from: bool, span: Span) {
        if self.before_from.is_some() {
            return;
        }
        if is_from {
            self.has_from = true;
        } else if !self.has_from && !matches!(kind, node::Kind::Words | node::Kind::Unknown) {
            self.before_from = Some(span);
        }
        self.last = Some(span);
    }

    /// The structure error, if any (at most one).
    fn report(&self, diags: &mut Vec<Diagnostic>) {
        if let Some(span) = self.before_from {
            diags.push(
                Diagnostic::error(span, "no build stage in current context").with_hint(
                    "only ARG can come before the first FROM; move this instruction below a FROM line",
                ),
            );
        } else if !self.has_from
            && let Some(span) = self.last
        {
            diags.push(
                Diagnostic::error(span, "dockerfile contains no stages to build")
                    .with_hint("add a FROM <image> line after the global ARGs"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_newlines_across_chunks() {
        for n in [0, 1, 254, 255, 256, 600] {
            let s = "x\n".repeat(n) + &"\n".repeat(n);
            assert_eq!(super::count_newlines(&s), 2 * n);
        }
    }
}
