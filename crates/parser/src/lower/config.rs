//! The image config instructions: WORKDIR, ENV, LABEL, ARG, EXPOSE, VOLUME, USER, STOPSIGNAL,
//! SHELL, CMD, ENTRYPOINT, HEALTHCHECK, ONBUILD and MAINTAINER, each with its history line as
//! BuildKit writes it.

use std::collections::BTreeSet;

use xbuild_llb::{FileAction, FileOp, Healthcheck, MkdirAction, Op};

use super::expand::expansion_error;
use super::paths::{chown_lookup_name, normalize_workdir, parse_chown};
use super::{Lowerer, StageCtx, StageOut, history};
use crate::ast::{ArgDecl, CmdLine, Instruction, KeyValue, Word};
use crate::gofmt;
use crate::span::Diagnostic;

impl Lowerer<'_> {
    /// WORKDIR: the new working directory, created (owned by USER) unless it is `/`.
    pub(super) fn workdir(
        &mut self,
        out: &mut StageOut,
        ctx: &mut StageCtx,
        ins: &Instruction,
        path: &Word,
        onbuild: bool,
    ) -> Option<()> {
        let p = self.expand(out, ins, path)?;
        if let Some(msg) =
            crate::checks::workdir_relative_path(&p, &out.platform.os, out.workdir_set)
        {
            self.check_warn(ins, "WorkdirRelativePath", path.span, msg);
        }
        let wd = normalize_workdir(&out.config.working_dir, &p);
        out.config.working_dir = wd.clone();
        out.workdir_set = true;
        if wd == "/" {
            out.history.push(history(format!("WORKDIR {wd}"), false));
            return Some(());
        }
        let chown = parse_chown(&out.config.user);
        if let Some(c) = &chown
            && self.solved
            && self.scratch.as_ref() == Some(&out.state)
            && let Some(name) = chown_lookup_name(c)
        {
            self.diags.push(
                Diagnostic::error(
                    path.span,
                    format!(
                        "invalid user index: -1: WORKDIR creates {wd} owned by USER {}, but nothing comes before it on an empty base (FROM scratch), so there is no /etc/passwd or /etc/group to look up {} in",
                        out.config.user,
                        gofmt::quote(name)
                    ),
                )
                .with_hint("use a numeric USER such as USER 1000:1000, or put WORKDIR before USER"),
            );
            return None;
        }
        let op = Op::File(FileOp {
            actions: vec![FileAction::Mkdir(MkdirAction {
                path: wd.clone(),
                mode: 0o755,
                make_parents: true,
                chown,
            })],
        });
        let text = self.describe_text(out, ins, false);
        let desc = ctx.describe(&text, onbuild);
        let meta = ctx.meta(desc, ins);
        if let Some(d) = self.add(op, vec![out.state.clone()], Some(meta), ins.span) {
            out.state = d.clone();
            let mut h = history(format!("WORKDIR {wd}"), true);
            h.vertex = Some(d);
            out.history.push(h);
        }
        Some(())
    }

    /// ENV: every pair expands against the environment from before the instruction
    /// (BuildKit's `EnvCommand.Expand`), so `ENV A=2 B=$A` takes the old `$A`.
    pub(super) fn env(
        &mut self,
        out: &mut StageOut,
        ins: &Instruction,
        pairs: &[KeyValue],
    ) -> Option<()> {
        let mut expanded = Vec::with_capacity(pairs.len());
        for kv in pairs {
            let k = self.expand(out, ins, &kv.key)?;
            let v = self.expand(out, ins, &kv.value)?;
            expanded.push((k, v));
        }
        let mut msg = String::from("ENV");
        for (k, v) in expanded {
            msg.push_str(&format!(" {k}={v}"));
            out.env.set(&k, &v);
            out.config_env.set(&mut out.config.env, &k, &v);
        }
        out.history.push(history(msg, false));
        Some(())
    }

    /// LABEL: it changes no environment, so its pairs all expand against the one from before
    /// the instruction, as BuildKit's `LabelCommand.Expand` does.
    pub(super) fn label(
        &mut self,
        out: &mut StageOut,
        ins: &Instruction,
        pairs: &[KeyValue],
    ) -> Option<()> {
        let mut msg = String::from("LABEL");
        for kv in pairs {
            let k = self.expand(out, ins, &kv.key)?;
            let v = self.expand(out, ins, &kv.value)?;
            msg.push_str(&format!(" {k}={v}"));
            out.config.labels.insert(k, v);
        }
        out.history.push(history(msg, false));
        Some(())
    }

    /// ARG: each name is defined in turn, valued by its build argument, else its default, else
    /// the global ARG of that name.
    pub(super) fn arg(
        &mut self,
        out: &mut StageOut,
        ins: &Instruction,
        args: &[ArgDecl],
    ) -> Option<()> {
        let mut parts = Vec::new();
        for a in args {
            let key = self.expand(out, ins, &a.key)?;
            let default = match &a.value {
                Some(v) => Some(self.expand(out, ins, v)?),
                None => None,
            };
            let value = if let Some(b) = self.opts.build_args.get(&key) {
                self.used_args.insert(key.clone());
                Some(b.clone())
            } else if default.is_some() {
                default.clone()
            } else {
                self.meta
                    .get(&key)
                    .filter(|_| self.meta_keys.contains(&key))
                    .map(str::to_string)
            };
            if let Some(v) = &value {
                out.env.set(&key, v);
            }
            out.arg_keys.insert(key.clone());
            out.args.push((key.clone(), value));
            parts.push(match &default {
                Some(d) => format!("{key}={d}"),
                None => key,
            });
        }
        out.history
            .push(history(format!("ARG {}", parts.join(" ")), false));
        Some(())
    }

    /// EXPOSE: each word of each expanded argument is a port or a range.
    pub(super) fn expose(&mut self, out: &mut StageOut, ports: &[Word]) -> Option<()> {
        let mut set = BTreeSet::new();
        for p in ports {
            let words = match self
                .lexer
                .expand_within(&p.text, &out.env, &mut self.budget)
            {
                Ok(e) => e.words,
                Err(e) => {
                    self.error(expansion_error(p, &e, "check the ${…} references"));
                    return None;
                }
            };
            for w in words {
                match parse_ports(&w) {
                    Ok(list) => set.extend(list),
                    Err(e) => {
                        self.diags.push(Diagnostic::error(p.span, e).with_hint(
                            "write EXPOSE <port>[/tcp|udp|sctp] or a range such as 8000-8010",
                        ));
                        return None;
                    }
                }
            }
        }
        let shown: Vec<String> = set.iter().map(|p| format!("{p}:{{}}")).collect();
        out.config.exposed_ports.extend(set);
        out.history
            .push(history(format!("EXPOSE map[{}]", shown.join(" ")), false));
        Some(())
    }

    /// VOLUME: the expanded paths, none of them empty.
    pub(super) fn volume(
        &mut self,
        out: &mut StageOut,
        ins: &Instruction,
        paths: &[Word],
    ) -> Option<()> {
        let mut vols = Vec::new();
        for p in paths {
            let v = self.expand(out, ins, p)?;
            if v.is_empty() {
                self.diags.push(Diagnostic::error(
                    p.span,
                    "VOLUME specified can not be an empty string",
                ));
                return None;
            }
            vols.push(v);
        }
        out.config.volumes.extend(vols.iter().cloned());
        out.history.push(history(
            format!("VOLUME {}", gofmt::plain_list(&vols)),
            false,
        ));
        Some(())
    }

    /// USER, expanded.
    pub(super) fn user(
        &mut self,
        out: &mut StageOut,
        ins: &Instruction,
        user: &Word,
    ) -> Option<()> {
        let u = self.expand(out, ins, user)?;
        out.history.push(history(format!("USER {u}"), false));
        out.config.user = u;
        Some(())
    }

    /// STOPSIGNAL: a signal name or number, kept as written.
    pub(super) fn stopsignal(
        &mut self,
        out: &mut StageOut,
        ins: &Instruction,
        signal: &Word,
    ) -> Option<()> {
        let s = self.expand(out, ins, signal)?;
        if !valid_signal(&s) {
            self.diags.push(
                Diagnostic::error(signal.span, format!("Invalid signal: {s}"))
                    .with_hint("use a signal name such as SIGTERM or a number such as 15"),
            );
            return None;
        }
        out.history.push(history(format!("STOPSIGNAL {s}"), false));
        out.config.stop_signal = Some(s);
        Some(())
    }
}

/// SHELL: the shell of later shell-form commands.
pub(super) fn shell(out: &mut StageOut, shell: &[String]) {
    out.history.push(history(
        format!("SHELL {}", gofmt::plain_list(shell)),
        false,
    ));
    out.config.shell = Some(shell.to_vec());
}

/// CMD, run through the stage's shell in shell form.
pub(super) fn cmd(out: &mut StageOut, ctx: &mut StageCtx, cmd: &CmdLine) {
    let args = with_shell(out, cmd);
    out.history
        .push(history(format!("CMD {}", gofmt::quote_list(&args)), false));
    out.config.cmd = Some(args);
    out.config.args_escaped = true;
    ctx.cmd_set = true;
}

/// ENTRYPOINT, run through the stage's shell in shell form; it clears an inherited CMD (not
/// one set earlier in the stage).
pub(super) fn entrypoint(out: &mut StageOut, ctx: &StageCtx, cmd: &CmdLine) {
    let args = with_shell(out, cmd);
    out.history.push(history(
        format!("ENTRYPOINT {}", gofmt::quote_list(&args)),
        false,
    ));
    out.config.entrypoint = if args.is_empty() && !cmd.is_shell() {
        Some(Vec::new())
    } else {
        Some(args)
    };
    if !ctx.cmd_set {
        out.config.cmd = None;
    }
}

/// HEALTHCHECK, with its history line as Go prints the config struct.
pub(super) fn healthcheck(out: &mut StageOut, hc: &Healthcheck) {
    let mut text = format!(
        "HEALTHCHECK &{{{} {} {} {}",
        gofmt::quote_list(&hc.test),
        gofmt::quote(&gofmt::duration(hc.interval.unwrap_or(0))),
        gofmt::quote(&gofmt::duration(hc.timeout.unwrap_or(0))),
        gofmt::quote(&gofmt::duration(hc.start_period.unwrap_or(0))),
    );
    if let Some(si) = hc.start_interval {
        text.push_str(&format!(" {}", gofmt::quote(&gofmt::duration(si))));
    }
    text.push_str(&format!(
        " {}}}",
        gofmt::quote_rune(hc.retries.unwrap_or(0))
    ));
    out.history.push(history(text, false));
    out.config.healthcheck = Some(hc.clone());
}

/// ONBUILD: a trigger for the stages and images built on this one.
pub(super) fn onbuild(out: &mut StageOut, expression: &str) {
    out.config.on_build.push(expression.to_string());
    out.own_onbuild.push(expression.to_string());
}

/// MAINTAINER: the image's author.
pub(super) fn maintainer(out: &mut StageOut, name: &Word) {
    out.author = Some(name.text.clone());
    out.history
        .push(history(format!("MAINTAINER {}", name.text), false));
}

/// The stage's shell (SHELL, else `/bin/sh -c`).
pub(super) fn stage_shell(out: &StageOut) -> Vec<String> {
    out.config
        .shell
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// A CMD or ENTRYPOINT as the argument vector: exec form as written, shell form run by the
/// stage's shell.
fn with_shell(out: &StageOut, cmd: &CmdLine) -> Vec<String> {
    match cmd {
        CmdLine::Exec(a) => a.clone(),
        CmdLine::Shell(s) => {
            let mut sh = stage_shell(out);
            sh.push(s.clone());
            sh
        }
    }
}

/// Go's `signal.ParseSignal`: a number or a known name, with or without `SIG`.
fn valid_signal(s: &str) -> bool {
    // As moby/sys/signal's ParseSignal: any non-zero integer, or a name in any case.
    if let Ok(n) = s.parse::<i64>() {
        return n != 0;
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
        "XFSZ",
    ];
    if NAMES.contains(&name) {
        return true;
    }
    if let Some(r) = name.strip_prefix("RTMIN") {
        return r.is_empty()
            || r.strip_prefix('+')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= 15);
    }
    if let Some(r) = name.strip_prefix("RTMAX") {
        return r.is_empty()
            || r.strip_prefix('-')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= 14);
    }
    false
}

/// BuildKit's EXPOSE port parsing: `port[-end][/proto]`, with an optional host part.
fn parse_ports(raw: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let container = parts.last().copied().unwrap_or_default();
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(format!(
            "invalid port: {}: no port specified",
            gofmt::quote(raw)
        ));
    }
    let proto = match proto.to_ascii_lowercase().as_str() {
        "" => "tcp".to_string(),
        p @ ("tcp" | "udp" | "sctp") => p.to_string(),
        _ => {
            return Err(format!(
                "invalid port: {}: invalid proto: {proto}",
                gofmt::quote(raw)
            ));
        }
    };
    let num = |s: &str| -> Result<u32, String> {
        s.parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| format!("invalid containerPort: {port}"))
    };
    let (start, end) = match port.split_once('-') {
        Some((a, b)) if a != b => (num(a)?, num(b)?),
        Some((a, _)) => (num(a)?, num(a)?),
        None => (num(port)?, num(port)?),
    };
    if end < start {
        return Err(format!("invalid port range: {port}"));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::LowerOptions;
    use super::super::test_support::{amd64, check_warnings, config, lower};

    /// `STOPSIGNAL sigint` was refused: BuildKit (moby/sys/signal's ParseSignal) upper-cases
    /// the name before looking it up, takes any non-zero number, and keeps the text as written.
    #[test]
    fn stopsignal_takes_names_in_any_case_and_any_nonzero_number() {
        for sig in [
            "sigint", "hup", "SigTerm", "rtmin+3", "100", "-9", "SIGKILL",
        ] {
            let def = lower(&format!("FROM scratch\nSTOPSIGNAL {sig}\n"))
                .unwrap_or_else(|e| panic!("STOPSIGNAL {sig}: {e:?}"));
            assert_eq!(config(&def).stop_signal.as_deref(), Some(sig));
        }
        for sig in ["0", "SIGNOPE", "sig", "1.5"] {
            let errs = lower(&format!("FROM scratch\nSTOPSIGNAL {sig}\n")).unwrap_err();
            assert!(errs[0].message.contains("Invalid signal"), "{errs:?}");
        }
    }

    #[test]
    fn env_pairs_of_one_instruction_expand_against_the_env_before_it() {
        let def = lower(
            "FROM scratch\nENV A=1\nENV A=2 B=$A C=${A}0\n\
             LABEL l1=$A l2=${B}\nARG X=1 Y=$X\nENV Y2=$Y\n",
        )
        .unwrap();
        let c = config(&def);
        let env: Vec<&str> = c.env.iter().map(String::as_str).collect();
        assert!(env.contains(&"A=2"), "{env:?}");
        assert!(env.contains(&"B=1"), "{env:?}");
        assert!(env.contains(&"C=10"), "{env:?}");
        // ARG pairs are defined one after the other.
        assert!(env.contains(&"Y2=1"), "{env:?}");
        assert_eq!(c.labels.get("l1").map(String::as_str), Some("2"));
        assert_eq!(c.labels.get("l2").map(String::as_str), Some("1"));
        let h: Vec<&str> = def.outputs()[0]
            .history
            .iter()
            .map(|h| h.created_by.as_str())
            .collect();
        assert!(h.contains(&"ENV A=2 B=1 C=10"), "{h:?}");
    }

    /// Regression: WorkdirRelativePath was checked on the raw word, so a quoted absolute path
    /// (`WORKDIR "/app"`) or a variable holding one warned, and a Windows stage's `C:\app` did;
    /// BuildKit checks the expanded path with the stage OS's rules.
    #[test]
    fn workdir_relative_path_uses_the_expanded_path_and_the_stage_os() {
        let rules = |src: &str, o: &LowerOptions| -> Vec<String> {
            check_warnings(src, o).into_iter().map(|(r, _)| r).collect()
        };
        let o = amd64();
        assert!(rules("FROM scratch\nWORKDIR \"/app\"\n", &o).is_empty());
        assert!(
            rules(
                "FROM scratch\nENV D=/srv\nWORKDIR ${D}/app\nWORKDIR rel\n",
                &o
            )
            .is_empty()
        );
        assert_eq!(
            rules("FROM scratch\nWORKDIR app\nWORKDIR other\n", &o),
            vec!["WorkdirRelativePath"]
        );
        // An undefined variable expands to nothing: relative (and UndefinedVar).
        let w = check_warnings("FROM scratch\nWORKDIR $NOPE\n", &o);
        assert!(w.iter().any(|(r, m)| r == "WorkdirRelativePath"
            && m == "Relative workdir \"\" can have unexpected results if the base image changes"));
        // A stage built on a stage with a WORKDIR inherits it.
        assert!(rules("FROM scratch AS a\nWORKDIR /a\nFROM a\nWORKDIR b\n", &o).is_empty());
        let mut win = amd64();
        win.platform.os = "windows".into();
        let src = "# escape=`\nFROM scratch\nWORKDIR C:\\app\n";
        assert!(rules(src, &win).is_empty());
        assert_eq!(rules(src, &o), vec!["WorkdirRelativePath"]);
    }
}
