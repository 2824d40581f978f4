//! Lowering: a parsed [`Dockerfile`] plus build options to an [`xbuild_llb::Definition`].
//!
//! Base images are looked up through an [`ImageResolver`], so this module stays pure.

use std::collections::BTreeMap;

use xbuild_llb::{
    Chown, CopyAction, Definition, Digest, ExecOp, FileAction, FileOp, HistoryEntry, IdSpec,
    ImageConfig, MkdirAction, NetworkMode, Op, Output, SourceOp, VertexMeta,
};

use crate::ast::{CmdLine, Command, Dockerfile, Instruction};
use crate::shell::Lexer;
use crate::span::{Diagnostic, Span};

/// The `PATH` every Linux stage gets when its base sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The history comment BuildKit writes on every step.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The build context's name in the graph.
pub const CONTEXT_NAME: &str = "context";

/// A base image as the resolver found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The normalized reference, e.g. `busybox:local`.
    pub reference: String,
    /// The manifest digest it resolved to.
    pub digest: Digest,
    /// Its runtime configuration.
    pub config: ImageConfig,
    /// Its history.
    pub history: Vec<HistoryEntry>,
    /// Its OS.
    pub os: String,
    /// Its architecture.
    pub architecture: String,
}

/// Finds base images' configurations (the image store or a registry implements it).
pub trait ImageResolver {
    /// Resolves `reference`; the error text says why it could not.
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, String>;
}

/// Options of a build that change the graph.
#[derive(Clone, Debug, Default)]
pub struct LowerOptions {
    /// The Dockerfile's name as shown in errors and vertex metadata.
    pub file: String,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// The OS of the image to build (`linux`).
    pub os: String,
    /// The architecture of the image to build, as OCI names it (`amd64`).
    pub architecture: String,
}

impl LowerOptions {
    /// Options for building `file` for the host's platform.
    pub fn for_host(file: impl Into<String>) -> Self {
        LowerOptions {
            file: file.into(),
            build_args: BTreeMap::new(),
            os: "linux".into(),
            architecture: host_architecture().into(),
        }
    }
}

/// The host's architecture, as OCI names it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The stage being lowered.
struct Stage {
    state: Digest,
    config: ImageConfig,
    history: Vec<HistoryEntry>,
    os: String,
    architecture: String,
}

struct Lowerer<'a> {
    def: Definition,
    opts: &'a LowerOptions,
    lexer: Lexer,
    diags: Vec<Diagnostic>,
    context: Option<Digest>,
    step: usize,
    steps: usize,
}

/// Lowers `df` to a graph with one output, or returns every error found.
pub fn lower(
    df: &Dockerfile,
    opts: &LowerOptions,
    resolver: &dyn ImageResolver,
) -> Result<Definition, Vec<Diagnostic>> {
    let mut l = Lowerer {
        def: Definition::new(),
        opts,
        lexer: Lexer::new(df.directives.escape),
        diags: Vec::new(),
        context: None,
        step: 0,
        steps: df.instructions.len(),
    };
    let Some((first, rest)) = df.instructions.split_first() else {
        return Err(vec![
            Diagnostic::error(Span::default(), "the Dockerfile has no instructions")
                .with_hint("start it with FROM <image>"),
        ]);
    };
    let Command::From { image, .. } = &first.command else {
        return Err(vec![
            Diagnostic::error(first.span, "no build stage in current context")
                .with_hint("the first instruction must be FROM"),
        ]);
    };
    if let Some(f) = first.flags.first() {
        l.diags.push(Diagnostic::error(
            f.span,
            format!("FROM --{} is not supported yet", f.name),
        ));
    }
    let Some(mut stage) = l.from(first, &image.text, resolver) else {
        return Err(l.diags);
    };
    for ins in rest {
        l.instruction(&mut stage, ins);
    }
    if l.diags.is_empty() {
        let out = Output {
            name: "default".into(),
            vertex: stage.state,
            config: stage.config,
            history: stage.history,
            os: stage.os,
            architecture: stage.architecture,
            variant: None,
        };
        if let Err(e) = l.def.add_output(out) {
            l.diags
                .push(Diagnostic::error(Span::default(), e.to_string()));
        }
    }
    if l.diags.is_empty() {
        Ok(l.def)
    } else {
        Err(l.diags)
    }
}

impl Lowerer<'_> {
    fn meta(&self, ins: &Instruction, text: &str) -> VertexMeta {
        VertexMeta {
            description: format!("[{}/{}] {}", self.step, self.steps, text),
            file: Some(self.opts.file.clone()),
            line: Some(ins.span.line),
        }
    }

    fn add(
        &mut self,
        ins: &Instruction,
        op: Op,
        inputs: Vec<Digest>,
        text: &str,
    ) -> Option<Digest> {
        match self.def.add(op, inputs) {
            Ok(d) => {
                let meta = self.meta(ins, text);
                self.def.set_meta(&d, meta);
                Some(d)
            }
            Err(e) => {
                self.diags.push(Diagnostic::error(ins.span, e.to_string()));
                None
            }
        }
    }

    fn expand(&mut self, word: &str, vars: &[(String, String)], span: Span) -> Option<String> {
        match self.lexer.expand(word, vars) {
            Ok(e) => Some(e.value),
            Err(e) => {
                self.diags.push(Diagnostic::error(span, e.to_string()));
                None
            }
        }
    }

    fn from(
        &mut self,
        ins: &Instruction,
        image: &str,
        resolver: &dyn ImageResolver,
    ) -> Option<Stage> {
        self.step = 1;
        let image = self.expand(image, &[], ins.span)?;
        if image.eq_ignore_ascii_case("scratch") {
            let state = self.add(ins, Op::Source(SourceOp::Scratch), vec![], "FROM scratch")?;
            return Some(Stage {
                state,
                config: ImageConfig {
                    env: vec![format!("PATH={DEFAULT_PATH}")],
                    working_dir: "/".into(),
                    ..Default::default()
                },
                history: Vec::new(),
                os: self.opts.os.clone(),
                architecture: self.opts.architecture.clone(),
            });
        }
        let resolved = match resolver.resolve(&image) {
            Ok(r) => r,
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(ins.span, format!("base image {image}: {e}")).with_hint(
                        "import it first with `xbuild import ROOTFS.tar NAME:TAG`, or use FROM scratch",
                    ),
                );
                return None;
            }
        };
        let text = format!("FROM {}@{}", resolved.reference, resolved.digest);
        let state = self.add(
            ins,
            Op::Source(SourceOp::Image {
                reference: resolved.reference.clone(),
                digest: resolved.digest.clone(),
            }),
            vec![],
            &text,
        )?;
        let mut config = resolved.config;
        if !config
            .env
            .iter()
            .any(|e| e.split('=').next() == Some("PATH"))
        {
            config.env.push(format!("PATH={DEFAULT_PATH}"));
        }
        Some(Stage {
            state,
            config,
            history: resolved.history,
            os: resolved.os,
            architecture: resolved.architecture,
        })
    }

    fn instruction(&mut self, stage: &mut Stage, ins: &Instruction) {
        self.step += 1;
        let vars = env_pairs(&stage.config.env);
        let keyword = ins.keyword.to_ascii_uppercase();
        for f in &ins.flags {
            self.diags.push(Diagnostic::error(
                f.span,
                format!("{keyword} --{} is not supported yet", f.name),
            ));
        }
        match &ins.command {
            Command::From { .. } => self.diags.push(
                Diagnostic::error(ins.span, "multi-stage builds are not supported yet")
                    .with_hint("this build handles one FROM per Dockerfile"),
            ),
            Command::Run(spec) => {
                let args = with_shell(&spec.cmd);
                let shown = args.join(" ");
                let op = Op::Exec(ExecOp {
                    args,
                    env: stage.config.env.clone(),
                    cwd: if stage.config.working_dir.is_empty() {
                        "/".into()
                    } else {
                        stage.config.working_dir.clone()
                    },
                    user: stage.config.user.clone(),
                    network: NetworkMode::Default,
                    security: Default::default(),
                    mounts: vec![],
                });
                let text = format!("RUN {}", original_args(ins));
                if let Some(d) = self.add(ins, op, vec![stage.state.clone()], &text) {
                    stage.state = d.clone();
                    stage
                        .history
                        .push(layer_history(format!("RUN {shown} # buildkit"), d));
                }
            }
            Command::Cmd { cmd } => {
                let args = with_shell(cmd);
                stage
                    .history
                    .push(empty_history(format!("CMD {}", go_quote_list(&args))));
                stage.config.cmd = Some(args);
            }
            Command::Env { pairs } => {
                let mut vars = vars;
                let mut msg = String::from("ENV");
                for kv in pairs {
                    let Some(v) = self.expand(&kv.value.text, &vars, ins.span) else {
                        return;
                    };
                    let Some(k) = self.expand(&kv.key.text, &vars, ins.span) else {
                        return;
                    };
                    msg.push_str(&format!(" {k}={v}"));
                    set_env(&mut stage.config.env, &k, &v);
                    vars.push((k, v));
                }
                stage.history.push(empty_history(msg));
            }
            Command::Workdir { path } => {
                let Some(p) = self.expand(&path.text, &vars, ins.span) else {
                    return;
                };
                let wd = normalize_path(&stage.config.working_dir, &p, false);
                stage.config.working_dir = wd.clone();
                if wd == "/" {
                    stage.history.push(empty_history(format!("WORKDIR {wd}")));
                    return;
                }
                let op = Op::File(FileOp {
                    actions: vec![FileAction::Mkdir(MkdirAction {
                        path: wd.clone(),
                        mode: 0o755,
                        make_parents: true,
                        chown: parse_chown(&stage.config.user),
                    })],
                });
                let text = format!("WORKDIR {wd}");
                if let Some(d) = self.add(ins, op, vec![stage.state.clone()], &text) {
                    stage.state = d.clone();
                    stage.history.push(layer_history(text, d));
                }
            }
            Command::Copy(spec) => {
                let sources: Vec<String> = spec.sources.iter().map(|w| w.text.clone()).collect();
                self.copy(stage, ins, &sources, &spec.dest.text, &vars)
            }
            _ => self.diags.push(
                Diagnostic::error(
                    ins.span,
                    format!("the {keyword} instruction is not supported yet"),
                )
                .with_hint("this build handles FROM, RUN, COPY, ENV, WORKDIR and CMD"),
            ),
        }
    }

    fn copy(
        &mut self,
        stage: &mut Stage,
        ins: &Instruction,
        sources: &[String],
        dest: &str,
        vars: &[(String, String)],
    ) {
        let Some(dest_raw) = self.expand(dest, vars, ins.span) else {
            return;
        };
        let dest = copy_dest(&stage.config.working_dir, &dest_raw);
        let context = match &self.context {
            Some(c) => c.clone(),
            None => {
                let Some(c) = self.add(
                    ins,
                    Op::Source(SourceOp::Local {
                        name: CONTEXT_NAME.into(),
                        include_patterns: vec![],
                        exclude_patterns: vec![],
                    }),
                    vec![],
                    "load build context",
                ) else {
                    return;
                };
                self.context = Some(c.clone());
                c
            }
        };
        let mut actions = Vec::new();
        let mut msg = String::from("COPY");
        for s in sources {
            let Some(src) = self.expand(s, vars, ins.span) else {
                return;
            };
            msg.push(' ');
            msg.push_str(&src);
            actions.push(FileAction::Copy(CopyAction {
                input: 1,
                src: normalize_path("/", &src, false),
                dest: dest.clone(),
                chown: None,
                mode: None,
                follow_symlinks: true,
                dir_copy_contents: true,
                allow_wildcard: true,
                allow_empty_wildcard: true,
                create_dest_path: true,
                include_patterns: vec![],
                exclude_patterns: vec![],
                required_paths: vec![],
                attempt_unpack: false,
            }));
        }
        msg.push(' ');
        msg.push_str(&dest_raw);
        let text = format!("COPY {}", original_args(ins));
        let op = Op::File(FileOp { actions });
        if let Some(d) = self.add(ins, op, vec![stage.state.clone(), context], &text) {
            stage.state = d.clone();
            stage
                .history
                .push(layer_history(format!("{msg} # buildkit"), d));
        }
    }
}

/// The instruction's text after its keyword, as shown in progress.
fn original_args(ins: &Instruction) -> &str {
    ins.original
        .get(ins.keyword.len()..)
        .map(str::trim)
        .unwrap_or_default()
}

fn with_shell(cmd: &CmdLine) -> Vec<String> {
    match cmd {
        CmdLine::Exec(args) => args.clone(),
        CmdLine::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
    }
}

fn layer_history(created_by: String, vertex: Digest) -> HistoryEntry {
    HistoryEntry {
        created: None,
        created_by,
        author: None,
        comment: Some(HISTORY_COMMENT.into()),
        empty_layer: false,
        vertex: Some(vertex),
    }
}

fn empty_history(created_by: String) -> HistoryEntry {
    HistoryEntry {
        created: None,
        created_by,
        author: None,
        comment: Some(HISTORY_COMMENT.into()),
        empty_layer: true,
        vertex: None,
    }
}

fn env_pairs(env: &[String]) -> Vec<(String, String)> {
    env.iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map(|(k, _)| k) == Some(key) || e.as_str() == key)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// `user[:group]` as a chown spec; `None` for an empty user.
pub fn parse_chown(user: &str) -> Option<Chown> {
    if user.is_empty() {
        return None;
    }
    let id = |s: &str| match s.parse::<u32>() {
        Ok(n) => IdSpec::Id(n),
        Err(_) => IdSpec::Name(s.to_string()),
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    Some(Chown {
        user: id(u),
        group: g.map(id),
    })
}

/// Go's `path.Clean` for slash-separated paths.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `p` made absolute against `base` (a directory) and cleaned; a trailing `/` kept when asked.
pub fn normalize_path(base: &str, p: &str, keep_slash: bool) -> String {
    let base = if base.is_empty() { "/" } else { base };
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{base}/{p}")
    };
    let mut out = clean_path(&format!("/{joined}"));
    if keep_slash && (p.ends_with('/') || p.ends_with("/.")) && out != "/" {
        out.push('/');
    }
    out
}

/// A COPY destination against the working directory: `.` and `` mean the directory itself.
fn copy_dest(working_dir: &str, dest: &str) -> String {
    let d = if dest == "." || dest.is_empty() {
        "./"
    } else {
        dest
    };
    normalize_path(working_dir, d, true)
}

/// Go's `fmt.Sprintf("%q", []string)`: `["a" "b"]`.
fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    struct Canned;
    impl ImageResolver for Canned {
        fn resolve(&self, reference: &str) -> Result<ResolvedImage, String> {
            if reference != "busybox:local" {
                return Err(format!("{reference} not found"));
            }
            Ok(ResolvedImage {
                reference: reference.into(),
                digest: Digest::of(b"busybox"),
                config: ImageConfig {
                    env: vec![],
                    cmd: Some(vec!["sh".into()]),
                    ..Default::default()
                },
                history: vec![],
                os: "linux".into(),
                architecture: "amd64".into(),
            })
        }
    }

    fn lower_text(src: &str) -> Result<Definition, Vec<Diagnostic>> {
        let parsed = parse(src);
        assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
        lower(
            &parsed.dockerfile,
            &LowerOptions::for_host("Dockerfile"),
            &Canned,
        )
    }

    #[test]
    fn paths() {
        assert_eq!(clean_path("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean_path("a/../.."), "..");
        assert_eq!(normalize_path("/app", "sub/", true), "/app/sub/");
        assert_eq!(normalize_path("", "x", false), "/x");
        assert_eq!(copy_dest("/app", "."), "/app/");
        assert_eq!(copy_dest("", "."), "/");
    }

    #[test]
    fn go_quoting() {
        assert_eq!(
            go_quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"\n".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\"\n"]"#
        );
    }

    #[test]
    fn single_stage_graph_and_config() {
        let def = lower_text(
            "FROM busybox:local\nENV A=1 B=\"$A two\"\nWORKDIR app\nCOPY . .\nRUN echo $A\nCMD echo done\n",
        )
        .unwrap();
        let out = &def.outputs()[0];
        assert_eq!(
            out.config.env,
            vec![
                format!("PATH={DEFAULT_PATH}"),
                "A=1".into(),
                "B=1 two".into()
            ]
        );
        assert_eq!(out.config.working_dir, "/app");
        assert_eq!(
            out.config.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo done".into()])
        );
        let created: Vec<&str> = out.history.iter().map(|h| h.created_by.as_str()).collect();
        assert_eq!(
            created,
            vec![
                "ENV A=1 B=1 two",
                "WORKDIR /app",
                "COPY . . # buildkit",
                "RUN /bin/sh -c echo $A # buildkit",
                r#"CMD ["/bin/sh" "-c" "echo done"]"#,
            ]
        );
        // image source, mkdir, context, copy, exec
        assert_eq!(def.len(), 5);
        let run = def.vertex(&out.vertex).unwrap();
        let Op::Exec(e) = run.op() else {
            panic!("not exec")
        };
        assert_eq!(e.cwd, "/app");
        assert!(e.env.contains(&"A=1".to_string()));
    }

    #[test]
    fn scratch_gets_path_and_root_workdir() {
        let def = lower_text("FROM scratch\nCOPY a /a\n").unwrap();
        let out = &def.outputs()[0];
        assert_eq!(out.config.working_dir, "/");
        assert_eq!(out.config.env, vec![format!("PATH={DEFAULT_PATH}")]);
    }

    #[test]
    fn comment_edits_keep_digests() {
        let a = lower_text("FROM busybox:local\nRUN echo hi\n").unwrap();
        let b = lower_text("# a comment\nFROM busybox:local\n\n# more\nRUN echo hi\n").unwrap();
        assert_eq!(a.outputs()[0].vertex, b.outputs()[0].vertex);
        let c = lower_text("FROM busybox:local\nRUN echo ho\n").unwrap();
        assert_ne!(a.outputs()[0].vertex, c.outputs()[0].vertex);
    }

    #[test]
    fn errors_name_the_line() {
        let parsed = parse("FROM busybox:local\nUSER app\n");
        let errs = lower(
            &parsed.dockerfile,
            &LowerOptions::for_host("Dockerfile"),
            &Canned,
        )
        .unwrap_err();
        assert_eq!(errs[0].span.line, 2);
        assert!(errs[0].message.contains("USER"));
        let parsed = parse("FROM nope:1\n");
        let errs = lower(
            &parsed.dockerfile,
            &LowerOptions::for_host("Dockerfile"),
            &Canned,
        )
        .unwrap_err();
        assert!(errs[0].message.contains("nope:1 not found"), "{:?}", errs);
    }
}
