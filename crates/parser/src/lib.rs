//! Dockerfile text to an AST with spans, and the AST to an [`xbuild_llb::Definition`].
//!
//! [`parse`] never fails: it returns every instruction it could parse plus a diagnostic for each
//! problem (with a span: line, column, byte range). [`lower::lower`] turns the AST, the build
//! options and an [`lower::ImageResolver`] into a build graph.
//!
//! Invariant: this crate is pure. It never touches the filesystem or the network; base image
//! configurations come through the resolver.
//!
//! ```
//! let parsed = xbuild_parser::parse("FROM scratch\nCOPY hello /\nCMD [\"/hello\"]\n");
//! assert!(parsed.diagnostics.is_empty());
//! assert_eq!(parsed.dockerfile.instructions.len(), 3);
//! let first = &parsed.dockerfile.instructions[0];
//! assert_eq!((first.span.line, first.span.col), (1, 1));
//!
//! let bad = xbuild_parser::parse("FROM scratch\nRUNN echo\n");
//! assert_eq!(bad.diagnostics[0].span.line, 2);
//! assert_eq!(bad.diagnostics[0].message, "unknown instruction: RUNN");
//! ```
#![forbid(unsafe_code)]

pub mod ast;
mod instruction;
mod lines;
pub mod lower;
pub mod shell;
mod span;

pub use ast::{CmdLine, Command, Dockerfile, Flag, Instruction, KeyValue};
pub use lines::Directives;
pub use span::{Diagnostic, Severity, Span};

/// What [`parse`] returns: the instructions that parsed and every diagnostic.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The syntax tree.
    pub dockerfile: Dockerfile,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Parses Dockerfile text.
pub fn parse(src: &str) -> Parsed {
    let mut diagnostics = Vec::new();
    let (directives, lines) = lines::logical_lines(src, &mut diagnostics);
    let instructions = lines
        .iter()
        .filter_map(|l| instruction::parse_instruction(l, directives.escape, &mut diagnostics))
        .collect();
    diagnostics.sort_by_key(|d| d.span.offset);
    Parsed {
        dockerfile: Dockerfile {
            directives,
            instructions,
        },
        diagnostics,
    }
}
