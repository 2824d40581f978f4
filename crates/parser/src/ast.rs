//! The syntax tree: instructions with their flags, arguments and spans.

use serde::Serialize;

use crate::lines::Directives;
use crate::span::Span;

/// A parsed Dockerfile: its directives and the instructions that parsed.
#[derive(Clone, Debug, Serialize)]
pub struct Dockerfile {
    /// The parser directives at the top.
    pub directives: Directives,
    /// The instructions, in order.
    pub instructions: Vec<Instruction>,
}

/// One instruction.
#[derive(Clone, Debug, Serialize)]
pub struct Instruction {
    /// The keyword as written (case kept), e.g. `run`.
    pub keyword: String,
    /// Where the instruction starts; `len` covers all its lines.
    pub span: Span,
    /// The last source line of the instruction.
    pub end_line: u32,
    /// `--name=value` flags, in order.
    pub flags: Vec<Flag>,
    /// The typed arguments.
    pub command: Command,
    /// The instruction's text with continuations joined.
    pub original: String,
}

/// One `--name[=value]` flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// The name, without the leading `--`.
    pub name: String,
    /// The value, quotes removed; `None` for a bare `--name`.
    pub value: Option<String>,
    /// Where the flag is.
    pub span: Span,
}

/// A command line in exec (JSON) form or shell form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "form", content = "value")]
pub enum CmdLine {
    /// `["executable", "arg"]`: run as is.
    Exec(Vec<String>),
    /// `command text`: run through the stage's shell.
    Shell(String),
}

/// A `key=value` pair of ENV (or LABEL), value not yet expanded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The raw value (quotes and variables are processed by lowering).
    pub value: String,
    /// Written in the legacy `ENV key value` form.
    pub legacy: bool,
}

/// The instruction-specific part of an [`Instruction`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "instruction")]
pub enum Command {
    /// `FROM image [AS name]`.
    From {
        /// The image reference (may hold `$ARG`s).
        image: String,
        /// The stage name after `AS`.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// `RUN command`.
    Run {
        /// The command.
        cmd: CmdLine,
    },
    /// `CMD command`.
    Cmd {
        /// The command.
        cmd: CmdLine,
    },
    /// `COPY src... dest`.
    Copy {
        /// The sources (may hold wildcards and `$VAR`s).
        sources: Vec<String>,
        /// The destination.
        dest: String,
        /// Written as a JSON array.
        json: bool,
    },
    /// `ENV key=value...`.
    Env {
        /// The pairs.
        pairs: Vec<KeyValue>,
    },
    /// `WORKDIR path`.
    Workdir {
        /// The path (may hold `$VAR`s).
        path: String,
    },
    /// An instruction this parser knows by name but does not build yet.
    Unsupported {
        /// Its arguments, verbatim.
        args: String,
    },
}
