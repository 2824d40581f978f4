//! COPY and ADD: their flags (`--chown`, `--chmod`, `--checksum`, `--link`, `--parents`,
//! `--exclude`, `--unpack`, `--keep-git-dir`), and each kind of source: a path of the build
//! context or of another stage or image (`--from`), a URL, a git repository, a heredoc.

use xbuild_llb::{
    Chmod, Chown, CopyAction, Digest, FileAction, FileOp, MergeOp, Op, SourceOp, VertexMeta,
};

use super::paths::{chown_lookup_name, copy_dest, normalize_path, parse_chown};
use super::{Lowerer, StageCtx, StageOut, history};
use crate::ast::{Command, CopySpec, InlineSource, Instruction, Word};
use crate::gofmt;
use crate::shell::Lexer;
use crate::span::Diagnostic;

/// A COPY or ADD's flags, expanded, and where its paths come from.
struct CopyFlags {
    /// ADD, not COPY.
    is_add: bool,
    /// The destination, absolute.
    dest: String,
    /// `--chown`.
    chown: Option<Chown>,
    /// `--chmod`.
    mode: Option<Chmod>,
    /// `--checksum`, when not empty.
    checksum: Option<String>,
    /// `--exclude` patterns.
    exclude: Vec<String>,
    /// The `--from` stage or image; `None` for the build context.
    from: Option<Digest>,
    /// `--link` without `--chmod`: the files are copied onto scratch, then merged.
    link: bool,
}

/// The file op a COPY or ADD builds.
struct CopyOp {
    /// Its inputs, the state it copies onto first.
    inputs: Vec<Digest>,
    /// A copy action per source.
    actions: Vec<FileAction>,
    /// Its history line.
    created_by: String,
}

impl CopyOp {
    /// The index of `d` among the inputs, added when new (the base, input 0, is never reused).
    fn input(&mut self, d: Digest) -> usize {
        match self.inputs.iter().position(|x| *x == d) {
            Some(p) if p > 0 => p,
            _ => {
                self.inputs.push(d);
                self.inputs.len() - 1
            }
        }
    }
}

impl Lowerer<'_> {
    /// COPY or ADD: one file op copying every source to the destination, merged onto the
    /// stage's state with `--link`.
    pub(super) fn copy(
        &mut self,
        i: usize,
        out: &mut StageOut,
        ctx: &mut StageCtx,
        ins: &Instruction,
        spec: &CopySpec,
        onbuild: bool,
    ) -> Option<()> {
        let dest_raw = self.expand(out, ins, &spec.dest)?;
        let flags = self.copy_flags(i, out, ins, spec, &dest_raw)?;
        let base = if flags.link {
            self.scratch()?
        } else {
            out.state.clone()
        };
        self.check_chown_base(spec, &flags, &base)?;
        let mut file = CopyOp {
            inputs: vec![base],
            actions: Vec::new(),
            created_by: String::from(if flags.is_add { "ADD" } else { "COPY" }),
        };
        for s in &spec.sources {
            let src = self.expand(out, ins, s)?;
            file.created_by.push(' ');
            file.created_by.push_str(&src);
            if is_git_source(&src) && flags.from.is_none() {
                self.copy_git(spec, &flags, s, &src, &mut file)?;
            } else if is_http_source(&src) && flags.from.is_none() {
                self.copy_url(ins, spec, &flags, s, &src, &mut file)?;
            } else {
                self.copy_path(ins, spec, &flags, &src, &mut file)?;
            }
        }
        for inline in &spec.inline {
            file.created_by.push_str(&format!(" <<{}", inline.name));
            self.copy_heredoc(out, ins, &flags, inline, &mut file)?;
        }
        file.created_by.push(' ');
        file.created_by.push_str(&dest_raw);
        file.created_by.push_str(" # buildkit");
        self.copy_step(out, ctx, ins, onbuild, flags.link, file)
    }

    /// The flags of a COPY or ADD in stage `i` expanded and checked, `--from` lowered.
    fn copy_flags(
        &mut self,
        i: usize,
        out: &StageOut,
        ins: &Instruction,
        spec: &CopySpec,
        dest_raw: &str,
    ) -> Option<CopyFlags> {
        let is_add = matches!(ins.command, Command::Add(_));
        let dest = copy_dest(&out.config.working_dir, dest_raw);
        let chown = match &spec.chown {
            Some(c) => {
                let v = self.expand(out, ins, c)?;
                parse_chown(&v)
            }
            None => None,
        };
        let mode = match &spec.chmod {
            Some(c) => Some(self.copy_mode(out, ins, c)?),
            None => None,
        };
        let checksum = match &spec.checksum {
            Some(c) => Some(self.expand(out, ins, c)?).filter(|s| !s.is_empty()),
            None => None,
        };
        let exclude: Vec<String> = spec.exclude.iter().map(|w| w.text.clone()).collect();
        let from = match &spec.from {
            Some(f) => Some(self.copy_from(i, out, ins, f)?),
            None => None,
        };
        // The source as expanded, as BuildKit checks it after expanding the instruction's
        // words (`ADD --checksum=… $URL /` is a URL source).
        let url_source = match (&checksum, spec.sources.as_slice()) {
            (Some(_), [source]) => {
                let s = self.expand(out, ins, source)?;
                is_http_source(&s) || is_git_source(&s)
            }
            _ => false,
        };
        if checksum.is_some() && !url_source {
            self.diags.push(
                Diagnostic::error(ins.span, "checksum requires HTTP(S) or Git sources")
                    .with_hint("use --checksum with a single URL source"),
            );
            return None;
        }
        let link = spec.link && mode.is_none();
        Some(CopyFlags {
            is_add,
            dest,
            chown,
            mode,
            checksum,
            exclude,
            from,
            link,
        })
    }

    /// `--chmod`, expanded: an octal mode up to 07777 or a symbolic one.
    fn copy_mode(&mut self, out: &StageOut, ins: &Instruction, c: &Word) -> Option<Chmod> {
        let v = self.expand(out, ins, c)?;
        match u32::from_str_radix(&v, 8) {
            Ok(n) if n <= 0o7777 => Some(Chmod::Octal(n)),
            Ok(_) => {
                self.diags.push(Diagnostic::error(c.span, format!("invalid chmod parameter: '{v}'. it should be octal string and between 0 and 07777")));
                None
            }
            Err(_) if valid_symbolic_mode(&v) && !v.bytes().all(|b| b.is_ascii_digit()) => {
                Some(Chmod::Symbolic(v))
            }
            Err(_) => {
                self.diags.push(
                    Diagnostic::error(c.span, format!("invalid chmod parameter: '{v}'. it should be octal string and between 0 and 07777"))
                        .with_hint("write --chmod=0644 or a symbolic mode such as u+x,go-w"),
                );
                None
            }
        }
    }

    /// `--from`, expanded: the state of an earlier stage or an image.
    fn copy_from(
        &mut self,
        i: usize,
        out: &StageOut,
        ins: &Instruction,
        f: &Word,
    ) -> Option<Digest> {
        let name = self.expand(out, ins, f)?;
        if name.is_empty() {
            self.diags.push(
                Diagnostic::error(
                    f.span,
                    format!("--from={} expands to an empty value", f.text),
                )
                .with_hint("declare the ARG in this stage (ARG NAME) or give it a value"),
            );
            return None;
        }
        self.source_of(i, ins, &name, f.span)
    }

    /// A `--chown` name is an error when the copy's base is empty (scratch, or `--link`) and
    /// the stage is solved: there is no `/etc/passwd` or `/etc/group` to look it up in.
    fn check_chown_base(
        &mut self,
        spec: &CopySpec,
        flags: &CopyFlags,
        base: &Digest,
    ) -> Option<()> {
        if let (Some(c), Some(word)) = (&flags.chown, &spec.chown)
            && self.solved
            && self.scratch.as_ref() == Some(base)
            && let Some(name) = chown_lookup_name(c)
        {
            // BuildKit marshals a name lookup against the copy's base input; an empty base
            // has none (index -1) and the solve fails.
            let cmd = if flags.is_add { "ADD" } else { "COPY" };
            let why = if flags.link {
                format!("{cmd} --link starts from an empty filesystem")
            } else {
                format!("nothing comes before this {cmd} on an empty base (FROM scratch)")
            };
            self.diags.push(
                Diagnostic::error(
                    word.span,
                    format!(
                        "invalid user index: -1: --chown={} names {}, but {why}, so there is no /etc/passwd or /etc/group to look it up in",
                        word.text,
                        gofmt::quote(name)
                    ),
                )
                .with_hint(if flags.link {
                    "use numeric ids such as --chown=1000:1000 (or root), or drop --link"
                } else {
                    "use numeric ids such as --chown=1000:1000 (or root)"
                }),
            );
            return None;
        }
        Some(())
    }

    /// `Some` for ADD; for COPY, an error at source `s`, which is `what` (ADD only).
    fn add_only(
        &mut self,
        flags: &CopyFlags,
        s: &Word,
        what: &str,
        hint: &'static str,
    ) -> Option<()> {
        if flags.is_add {
            return Some(());
        }
        self.diags.push(
            Diagnostic::error(s.span, format!("source can't be {what} for COPY")).with_hint(hint),
        );
        None
    }

    /// A git source (ADD only): the repository at `#ref[:subdir]`, copied whole.
    fn copy_git(
        &mut self,
        spec: &CopySpec,
        flags: &CopyFlags,
        s: &Word,
        src: &str,
        file: &mut CopyOp,
    ) -> Option<()> {
        self.add_only(flags, s, "a git ref", "use ADD for git sources")?;
        let (remote, frag) = src.split_once('#').unwrap_or((src, ""));
        let (reference, subdir) = frag.split_once(':').unwrap_or((frag, ""));
        let op = Op::Source(SourceOp::Git {
            remote: remote.to_string(),
            reference: reference.to_string(),
            subdir: (!subdir.is_empty()).then(|| subdir.to_string()),
            keep_git_dir: spec.keep_git_dir.unwrap_or(false),
            checksum: flags.checksum.clone(),
        });
        let g = self.add(op, vec![], None, s.span)?;
        let idx = file.input(g);
        file.actions.push(FileAction::Copy(copy_action(
            idx,
            "/".into(),
            flags,
            false,
            &[],
        )));
        Some(())
    }

    /// A URL source (ADD only): the download, named after the URL's last path segment.
    fn copy_url(
        &mut self,
        ins: &Instruction,
        spec: &CopySpec,
        flags: &CopyFlags,
        s: &Word,
        src: &str,
        file: &mut CopyOp,
    ) -> Option<()> {
        self.add_only(flags, s, "a URL", "use ADD for URLs, or RUN curl")?;
        let filename = url_filename(src);
        let checksum = match &flags.checksum {
            Some(c) => match c.parse::<Digest>() {
                Ok(d) => Some(d),
                Err(e) => {
                    self.diags.push(Diagnostic::error(ins.span, e.to_string()));
                    return None;
                }
            },
            None => None,
        };
        let op = Op::Source(SourceOp::Http {
            url: src.to_string(),
            checksum,
            filename: filename.clone(),
        });
        let h = self.add(op, vec![], None, s.span)?;
        let idx = file.input(h);
        let mut a = copy_action(idx, format!("/{filename}"), flags, false, &flags.exclude);
        a.attempt_unpack = spec.unpack.unwrap_or(false);
        a.follow_symlinks = false;
        a.dir_copy_contents = false;
        a.allow_wildcard = false;
        a.allow_empty_wildcard = false;
        file.actions.push(FileAction::Copy(a));
        Some(())
    }

    /// A path (or pattern) of the build context or, with `--from`, of a stage or image;
    /// CopyIgnoredFile when `.dockerignore` leaves a context path out.
    fn copy_path(
        &mut self,
        ins: &Instruction,
        spec: &CopySpec,
        flags: &CopyFlags,
        src: &str,
        file: &mut CopyOp,
    ) -> Option<()> {
        if flags.from.is_none()
            && let Some(msg) = self
                .ignored
                .as_ref()
                .and_then(|m| m.copy_ignored(flags.is_add, src))
        {
            self.check_warn(ins, "CopyIgnoredFile", ins.span, msg);
        }
        let from_digest = match &flags.from {
            Some(d) => d.clone(),
            None => self.context()?,
        };
        let idx = file.input(from_digest);
        let (src_path, include, required) = if spec.parents {
            parents_source(src)
        } else {
            (normalize_path("/", src, false), vec![], vec![])
        };
        let mut a = copy_action(idx, src_path, flags, true, &flags.exclude);
        a.include_patterns = include;
        a.required_paths = required;
        a.attempt_unpack = flags.is_add && spec.unpack.unwrap_or(true);
        file.actions.push(FileAction::Copy(a));
        Some(())
    }

    /// A heredoc source: the document (expanded unless its marker is quoted) as a file of its
    /// name.
    fn copy_heredoc(
        &mut self,
        out: &StageOut,
        ins: &Instruction,
        flags: &CopyFlags,
        inline: &InlineSource,
        file: &mut CopyOp,
    ) -> Option<()> {
        let data = if inline.expand {
            let mut lex = Lexer::new('\\');
            lex.skip_quotes = true;
            match lex.expand_within(&inline.content, &out.env, &mut self.budget) {
                Ok(e) => e.value,
                Err(e) => {
                    self.error(Diagnostic::error(ins.span, e.to_string()));
                    return None;
                }
            }
        } else {
            inline.content.clone()
        };
        let f = self.inline_document(&inline.name, 0o644, data, ins.span)?;
        let idx = file.input(f);
        file.actions.push(FileAction::Copy(copy_action(
            idx,
            format!("/{}", inline.name),
            flags,
            false,
            &[],
        )));
        Some(())
    }

    /// Adds the copy's file op (and, with `--link`, its merge onto the stage's state) and
    /// its history entry.
    fn copy_step(
        &mut self,
        out: &mut StageOut,
        ctx: &mut StageCtx,
        ins: &Instruction,
        onbuild: bool,
        link: bool,
        file: CopyOp,
    ) -> Option<()> {
        let text = self.describe_text(out, ins, false);
        let desc = ctx.describe(&text, onbuild);
        let meta = ctx.meta(desc, ins);
        let mut d = self.add(
            Op::File(FileOp {
                actions: file.actions,
            }),
            file.inputs,
            Some(meta.clone()),
            ins.span,
        )?;
        if link {
            let merge_meta = VertexMeta {
                description: format!("{} (link)", meta.description),
                ..meta
            };
            let m = self.add(
                Op::Merge(MergeOp {}),
                vec![out.state.clone(), d],
                Some(merge_meta),
                ins.span,
            )?;
            d = m;
        }
        out.state = d.clone();
        let mut h = history(file.created_by, true);
        h.vertex = Some(d);
        out.history.push(h);
        Some(())
    }
}

/// A copy action from input `input`'s `src` to the flags' destination, owner and mode; a
/// `local` copy (a path, not a download, repository or heredoc) follows symlinks, copies a
/// directory's contents and takes wildcards.
fn copy_action(
    input: usize,
    src: String,
    flags: &CopyFlags,
    local: bool,
    exclude: &[String],
) -> CopyAction {
    CopyAction {
        chown: flags.chown.clone(),
        mode: flags.mode.clone(),
        follow_symlinks: local,
        dir_copy_contents: local,
        allow_wildcard: local,
        allow_empty_wildcard: local,
        exclude_patterns: exclude.to_vec(),
        ..CopyAction::new(input, src, flags.dest.clone())
    }
}

/// `COPY --parents` source `parent/./pattern` as (the parent, the pattern to include, the
/// path required when neither has wildcards); without `/./` the parent is `/`.
fn parents_source(src: &str) -> (String, Vec<String>, Vec<String>) {
    let (parent, pattern) = match src.split_once("/./") {
        Some((p, pat)) => (p.to_string(), pat.to_string()),
        None => ("/".to_string(), src.to_string()),
    };
    let pattern_n = normalize_path("/", &pattern, false);
    let required = if !contains_wildcards(&parent) && !contains_wildcards(&pattern) {
        vec![normalize_path("/", &format!("{parent}/{pattern}"), false)]
    } else {
        vec![]
    };
    (
        normalize_path("/", &parent, false),
        vec![pattern_n.trim_start_matches('/').to_string()],
        required,
    )
}

/// The file name of a download: the URL path's last segment, `__unnamed__` when it has none.
fn url_filename(src: &str) -> String {
    let path = src.split(['?', '#']).next().unwrap_or(src);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    let base = after_host
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    if base.is_empty() || base == "." {
        "__unnamed__".to_string()
    } else {
        base.to_string()
    }
}

/// Symbolic chmod (`u+x,go-w`, `a=rx`), as `dchapes/mode` accepts it.
fn valid_symbolic_mode(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|clause| {
            let who_end = clause
                .find(|c: char| !"ugoa".contains(c))
                .unwrap_or(clause.len());
            let rest = &clause[who_end..];
            !rest.is_empty()
                && rest.starts_with(['+', '-', '='])
                && rest.chars().all(|c| "+-=rwxXstugo".contains(c))
        })
}

/// A git source: `git://`, `ssh://`, an http(s) URL ending in `.git`, or scp-like
/// `user@host:path`.
fn is_git_source(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    if lower.starts_with("git://") || lower.starts_with("ssh://") {
        return true;
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let no_frag = src.split('#').next().unwrap_or(src);
        let path = no_frag.split('?').next().unwrap_or(no_frag);
        return path.ends_with(".git");
    }
    // scp-like user@host:path
    if let Some((userhost, _)) = src.split_once(':')
        && let Some((user, host)) = userhost.split_once('@')
    {
        return !user.is_empty() && !host.is_empty() && !userhost.contains('/');
    }
    false
}

/// An http(s) URL that is no git source.
fn is_http_source(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !is_git_source(src)
}

/// `s` has an unescaped glob metacharacter (`*`, `?`, `[`).
fn contains_wildcards(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' | b'?' | b'[' => return true,
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::test_support::{amd64, check_warnings, lower};

    #[test]
    fn add_checksum_checks_the_expanded_source() {
        let ok = "FROM scratch\nARG URL=https://example.com/a.tgz\n\
                  ADD --checksum=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef $URL /a\n";
        lower(ok).unwrap();
        let local = "FROM scratch\nARG SRC=a.tgz\n\
                     ADD --checksum=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef $SRC /a\n";
        let errs = lower(local).unwrap_err();
        assert_eq!(errs[0].message, "checksum requires HTTP(S) or Git sources");
        assert_eq!((errs[0].span.line, errs[0].span.col), (3, 1));
    }

    #[test]
    fn copy_chown_name_onto_an_empty_base_is_an_error() {
        let cases = [
            ("FROM scratch\nCOPY --chown=app f /f\n", 2, 6),
            ("FROM scratch\nCOPY --chown=0:app f /f\n", 2, 6),
            ("FROM scratch\nENV U=app\nADD --chown=$U f /f\n", 3, 5),
            ("FROM scratch AS a\nFROM a\nCOPY --chown=app f /f\n", 3, 6),
            ("FROM scratch\nCOPY --link --chown=app f /f\n", 2, 13),
            (
                "FROM scratch\nCOPY f /f\nCOPY --link --chown=app g /g\n",
                3,
                13,
            ),
            ("FROM scratch\nUSER app\nWORKDIR /x\n", 3, 9),
        ];
        for (src, line, col) in cases {
            let errs = lower(src).unwrap_err();
            assert!(
                errs[0].message.starts_with("invalid user index: -1"),
                "{src}: {errs:?}"
            );
            assert_eq!((errs[0].span.line, errs[0].span.col), (line, col), "{src}");
        }
    }

    #[test]
    fn copy_chown_without_lookup_or_onto_a_non_empty_base_builds() {
        for src in [
            "FROM scratch\nCOPY --chown=root f /f\n",
            "FROM scratch\nCOPY --chown=12:34 f /f\n",
            "FROM scratch\nCOPY --link --chown=12 f /f\n",
            "FROM scratch\nWORKDIR /app\nCOPY --chown=app f .\n",
            "FROM scratch\nCOPY f /f\nCOPY --chown=app:grp g /g\n",
            "FROM scratch\nCOPY f /f\nCOPY --link --chmod=644 --chown=app g /g\n",
            "FROM scratch\nUSER 1000\nWORKDIR /x\n",
            "FROM scratch\nWORKDIR /x\nUSER app\nWORKDIR /y\n",
        ] {
            if let Err(e) = lower(src) {
                panic!("{src}: {e:?}");
            }
        }
    }

    #[test]
    fn copy_ignored_file_warns_for_context_sources_only() {
        let mut o = amd64();
        o.exclude_patterns = vec!["*.md".into(), "dist".into()];
        let w = check_warnings(
            "FROM scratch AS b\nCOPY README.md /\nFROM scratch\nCOPY --from=b README.md /x\nADD dist/app.js /app/\nCOPY src /src\nCOPY <<EOF /notes.md\nhi\nEOF\n",
            &o,
        );
        assert_eq!(
            w,
            vec![
                (
                    "CopyIgnoredFile".to_string(),
                    "Attempting to Copy file \"README.md\" that is excluded by .dockerignore"
                        .to_string()
                ),
                (
                    "CopyIgnoredFile".to_string(),
                    "Attempting to Add file \"dist/app.js\" that is excluded by .dockerignore"
                        .to_string()
                ),
            ]
        );
        o.all_stages = true;
        let w = check_warnings("FROM scratch\nCOPY README.md /\n", &o);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn copy_ignored_file_is_quiet_with_exceptions_or_a_skip() {
        let mut o = amd64();
        o.exclude_patterns = vec!["*.md".into(), "!README.md".into()];
        assert!(check_warnings("FROM scratch\nCOPY CHANGELOG.md /\n", &o).is_empty());
        o.exclude_patterns = vec!["*.md".into()];
        assert!(
            check_warnings(
                "FROM scratch\n# check=skip=CopyIgnoredFile\nCOPY CHANGELOG.md /\n",
                &o
            )
            .is_empty()
        );
        assert!(
            check_warnings(
                "# check=skip=CopyIgnoredFile\nFROM scratch\nCOPY a.md /\n",
                &o
            )
            .is_empty()
        );
    }
}
