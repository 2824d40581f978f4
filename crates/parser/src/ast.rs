//! The syntax tree: instructions with their flags, arguments, heredocs and spans.
//!
//! # JSON form (`xbuild debug parse --format json`)
//!
//! The tree serializes to a stable JSON document:
//!
//! ```text
//! { "directives": { "syntax"?: string, "escape": "\\" | "`", "check"?: string },
//!   "instructions": [ {
//!       "instruction": "RUN",                 // the instruction, upper case
//!       "keyword": "run",                     // as written
//!       "lines": { "start": 3, "end": 5 },    // 1-based, heredoc bodies included
//!       "flags": [ { "name": "mount", "value": "type=cache,target=/x" } ],
//!       "arguments": { ... },                 // instruction-specific, see `Command`
//!       "heredocs": [ { "name", "fd", "expand", "chomp", "content" } ],
//!       "original": "RUN --mount=... make"    // the text with continuations joined
//!   } ] }
//! ```
//!
//! Arguments are as written (quotes kept, variables unexpanded) except where BuildKit itself
//! removes quotes while parsing (flag values, JSON arrays).

use std::borrow::Cow;

use serde::{Serialize, Serializer};

use crate::directives::Directives;
use crate::span::Span;

/// A parsed Dockerfile: its directives and the instructions that parsed.
#[derive(Clone, Debug, Serialize)]
pub struct Dockerfile {
    /// The parser directives at the top.
    pub directives: Directives,
    /// The instructions, in order.
    pub instructions: Vec<Instruction>,
}

/// A piece of text from the Dockerfile with where it is. Serializes as its text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word {
    /// The text as written (or as BuildKit's parser left it).
    pub text: String,
    /// Where it is.
    pub span: Span,
}

impl Word {
    /// A word.
    pub fn new(text: impl Into<String>, span: Span) -> Self {
        Word {
            text: text.into(),
            span,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Serialize for Word {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// The first and last source line of an instruction (1-based, inclusive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lines {
    /// The first line.
    pub start: u32,
    /// The last line, heredoc bodies included.
    pub end: u32,
}

/// One instruction.
#[derive(Clone, Debug, Serialize)]
pub struct Instruction {
    /// The keyword as written (case kept), e.g. `run`. The usual spellings (all lower or all
    /// upper case) are static strings.
    pub keyword: Cow<'static, str>,
    /// The instruction's line range.
    pub lines: Lines,
    /// Where the instruction's text is (its first line to the end of its last continuation).
    #[serde(skip)]
    pub span: Span,
    /// `--name[=value]` flags as written, in order.
    pub flags: Vec<Flag>,
    /// The instruction and its typed arguments.
    #[serde(flatten)]
    pub command: Command,
    /// Heredoc bodies attached to the instruction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub heredocs: Vec<Heredoc>,
    /// The instruction's text with continuations joined.
    pub original: String,
    /// Comment lines directly above the instruction.
    #[serde(skip)]
    pub comments: Vec<String>,
}

impl Instruction {
    /// The instruction's name in upper case (`RUN`).
    pub fn name(&self) -> &'static str {
        self.command.name()
    }

    /// The flag named `name`, if given.
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }
}

/// One `--name[=value]` flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// The name, without the leading `--` (a static string for the flags BuildKit knows).
    pub name: Cow<'static, str>,
    /// The value, quotes removed; `None` for a bare `--name`.
    pub value: Option<String>,
    /// Where the flag is.
    #[serde(skip)]
    pub span: Span,
}

/// A heredoc attached to an instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The terminator word (quotes removed); also the file name for COPY/ADD.
    pub name: String,
    /// The file descriptor before `<<` (0 when none).
    pub fd: u32,
    /// True when the marker was unquoted: ARG/ENV expansion applies to the body.
    pub expand: bool,
    /// `<<-`: leading tabs are removed.
    pub chomp: bool,
    /// The body, as written (line breaks kept, tabs not yet removed).
    pub content: String,
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

impl CmdLine {
    /// True for the shell form.
    pub fn is_shell(&self) -> bool {
        matches!(self, CmdLine::Shell(_))
    }

    /// The arguments as BuildKit's `handleJSONArgs` gives them: the exec array, or the shell
    /// text as one element (none when empty).
    pub fn args(&self) -> Vec<String> {
        match self {
            CmdLine::Exec(a) => a.clone(),
            CmdLine::Shell(s) if s.is_empty() => Vec::new(),
            CmdLine::Shell(s) => vec![s.clone()],
        }
    }
}

/// A `key=value` pair of ENV or LABEL, not yet expanded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key as written.
    pub key: Word,
    /// The raw value (quotes and variables are processed by lowering).
    pub value: Word,
    /// Written in the legacy `ENV key value` form.
    pub legacy: bool,
}

/// One name of an ARG instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// The name.
    pub key: Word,
    /// The default value as written, if any.
    pub value: Option<Word>,
}

/// A heredoc used as a COPY/ADD source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InlineSource {
    /// The file name (the heredoc's terminator word).
    pub name: String,
    /// The content (tabs already removed for `<<-`).
    pub content: String,
    /// Expand ARG/ENV references in the content.
    pub expand: bool,
}

/// COPY and ADD arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopySpec {
    /// The source paths (or URLs), as written.
    pub sources: Vec<Word>,
    /// Heredoc sources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inline: Vec<InlineSource>,
    /// The destination.
    pub dest: Word,
    /// Written as a JSON array.
    pub json: bool,
    /// `--from` (COPY only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Word>,
    /// `--chown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chown: Option<Word>,
    /// `--chmod`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chmod: Option<Word>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (COPY only).
    pub parents: bool,
    /// `--exclude` patterns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Word>,
    /// `--checksum` (ADD only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Word>,
    /// `--keep-git-dir` (ADD only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_git_dir: Option<bool>,
    /// `--unpack` (ADD only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpack: Option<bool>,
}

/// RUN arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunSpec {
    /// The command.
    pub cmd: CmdLine,
    /// `--mount` values, as written (expanded and parsed by lowering).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Word>,
    /// `--network`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Word>,
    /// `--security`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<Word>,
    /// `--device` values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Word>,
}

/// The instruction-specific part of an [`Instruction`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", content = "arguments", rename_all = "UPPERCASE")]
pub enum Command {
    /// `FROM [--platform=p] image [AS name]`.
    From {
        /// The image reference or earlier stage (may hold `$ARG`s).
        image: Word,
        /// The stage name after `AS`, lowercased.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<Word>,
        /// `--platform`.
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<Word>,
    },
    /// `RUN`.
    Run(RunSpec),
    /// `CMD`.
    Cmd {
        /// The command.
        cmd: CmdLine,
    },
    /// `ENTRYPOINT`.
    Entrypoint {
        /// The command.
        cmd: CmdLine,
    },
    /// `SHELL ["exe", "arg"]`.
    Shell {
        /// The shell and its arguments.
        shell: Vec<String>,
    },
    /// `ENV key=value…` (or `ENV key value`).
    Env {
        /// The pairs.
        pairs: Vec<KeyValue>,
    },
    /// `LABEL key=value…`.
    Label {
        /// The pairs.
        pairs: Vec<KeyValue>,
    },
    /// `ARG name[=default]…`.
    Arg {
        /// The names.
        args: Vec<ArgDecl>,
    },
    /// `EXPOSE port[/proto]…` (sorted as BuildKit sorts them).
    Expose {
        /// The ports as written.
        ports: Vec<Word>,
    },
    /// `VOLUME`.
    Volume {
        /// The paths.
        paths: Vec<Word>,
    },
    /// `WORKDIR path`.
    Workdir {
        /// The path (may hold `$VAR`s).
        path: Word,
    },
    /// `USER user[:group]`.
    User {
        /// The user.
        user: Word,
    },
    /// `COPY`.
    Copy(CopySpec),
    /// `ADD`.
    Add(CopySpec),
    /// `HEALTHCHECK`: the image config's health check it sets, as BuildKit's
    /// `HealthCheckCommand` holds one (`NONE` is a test of `["NONE"]`; an unset flag is `None`).
    Healthcheck(xbuild_llb::Healthcheck),
    /// `ONBUILD instruction`.
    Onbuild {
        /// The trigger instruction's keyword, upper case.
        trigger: String,
        /// The trigger as stored in the image config.
        expression: String,
    },
    /// `STOPSIGNAL signal`.
    Stopsignal {
        /// The signal.
        signal: Word,
    },
    /// `MAINTAINER name`.
    Maintainer {
        /// The name.
        name: Word,
    },
}

impl Command {
    /// The instruction's name in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Command::From { .. } => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd { .. } => "CMD",
            Command::Entrypoint { .. } => "ENTRYPOINT",
            Command::Shell { .. } => "SHELL",
            Command::Env { .. } => "ENV",
            Command::Label { .. } => "LABEL",
            Command::Arg { .. } => "ARG",
            Command::Expose { .. } => "EXPOSE",
            Command::Volume { .. } => "VOLUME",
            Command::Workdir { .. } => "WORKDIR",
            Command::User { .. } => "USER",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Onbuild { .. } => "ONBUILD",
            Command::Stopsignal { .. } => "STOPSIGNAL",
            Command::Maintainer { .. } => "MAINTAINER",
        }
    }
}
