//! RUN: the command (shell or exec form, heredocs), its `--mount`s (bind, cache, tmpfs, secret,
//! ssh), `--network` and `--security`, the step's environment and its history line.

use std::collections::BTreeSet;

use xbuild_llb::{CacheSharing, Digest, ExecOp, Mount, MountKind, NetworkMode, Op, Security};

use super::config::stage_shell;
use super::paths::{clean_path, normalize_path};
use super::{Lowerer, StageCtx, StageOut, history};
use crate::ast::{Instruction, RunSpec, Word};
use crate::gofmt;
use crate::mount::{self, MountSpec, MountType};
use crate::span::{Diagnostic, Span};

impl Lowerer<'_> {
    /// RUN: an exec step on the stage's state, with its mounts.
    pub(super) fn run(
        &mut self,
        i: usize,
        out: &mut StageOut,
        ctx: &mut StageCtx,
        ins: &Instruction,
        spec: &RunSpec,
        onbuild: bool,
    ) -> Option<()> {
        if let Some(d) = spec.devices.first() {
            self.diags.push(
                Diagnostic::error(d.span, "RUN --device is not supported by xbuild")
                    .with_hint("remove --device; xbuild runs steps without host devices"),
            );
            return None;
        }
        let mut inputs = vec![out.state.clone()];
        let mut mounts = self.run_mounts(i, out, ins, spec, &mut inputs)?;
        let (args, summary) = self.run_command(out, ins, spec, &mut inputs, &mut mounts)?;
        let env = self.run_env(out, ins, &mounts)?;
        let op = Op::Exec(ExecOp {
            args: args.clone(),
            env,
            cwd: if out.config.working_dir.is_empty() {
                "/".into()
            } else {
                out.config.working_dir.clone()
            },
            user: out.config.user.clone(),
            network: network_mode(spec),
            security: security_mode(spec),
            mounts,
        });
        let mut text = self.describe_text(out, ins, true);
        if let Some(s) = summary {
            text.push_str(&format!(" ({s})"));
        }
        let desc = ctx.describe(&text, onbuild);
        let meta = ctx.meta(desc, ins);
        let d = self.add(op, inputs, Some(meta), ins.span)?;
        out.state = d.clone();
        let created = self.run_history(out, ins, &args)?;
        let mut h = history(created, true);
        h.vertex = Some(d);
        out.history.push(h);
        Some(())
    }

    /// The `--mount`s of a RUN in stage `i`, in order; the states they take are added to
    /// `inputs`.
    fn run_mounts(
        &mut self,
        i: usize,
        out: &StageOut,
        ins: &Instruction,
        spec: &RunSpec,
        inputs: &mut Vec<Digest>,
    ) -> Option<Vec<Mount>> {
        let mut mounts = Vec::new();
        let mut ssh_index = 0;
        for m in &spec.mounts {
            mounts.push(self.run_mount(i, out, ins, m, inputs, &mut ssh_index)?);
        }
        Some(mounts)
    }

    /// One `--mount`: its target joined to the working directory as BuildKit's
    /// `dispatchRunMounts` does, its source (`from=`, else the context) added to `inputs`;
    /// `ssh_index` numbers the default sockets of ssh mounts.
    fn run_mount(
        &mut self,
        i: usize,
        out: &StageOut,
        ins: &Instruction,
        m: &Word,
        inputs: &mut Vec<Digest>,
        ssh_index: &mut usize,
    ) -> Option<Mount> {
        let mut spec_m = self.parse_mount(out, ins, m)?;
        // BuildKit (`dispatchRunMounts`): an empty or relative target is joined to the
        // working directory; only a result of `/` is rejected.
        let target = normalize_path(&out.config.working_dir, &spec_m.target, false);
        if matches!(
            spec_m.kind,
            MountType::Bind | MountType::Cache | MountType::Tmpfs
        ) && target == "/"
        {
            self.diags.push(
                Diagnostic::error(
                    m.span,
                    format!("invalid mount target {}", gofmt::quote(&target)),
                )
                .with_hint("mount somewhere below /: set target= to a directory such as /src"),
            );
            return None;
        }
        let source = clean_path(&format!("/{}", spec_m.source));
        let kind = match spec_m.kind {
            MountType::Bind => {
                let input = self.mount_input(i, ins, spec_m.from.as_deref(), m.span, inputs)?;
                MountKind::Bind {
                    input,
                    source,
                    readonly: spec_m.readonly,
                }
            }
            MountType::Cache => {
                let seed = match spec_m.from.as_deref() {
                    Some(f) => Some((self.mount_input(i, ins, Some(f), m.span, inputs)?, source)),
                    None => None,
                };
                cache_mount(&spec_m, seed)
            }
            MountType::Tmpfs => MountKind::Tmpfs { size: spec_m.size },
            MountType::Secret => secret_mount(&mut spec_m),
            MountType::Ssh => {
                if !spec_m.source.is_empty() {
                    self.diags
                        .push(Diagnostic::error(m.span, "ssh does not support source"));
                    return None;
                }
                ssh_mount(&mut spec_m, ssh_index)
            }
        };
        let target = match spec_m.kind {
            MountType::Secret | MountType::Ssh if spec_m.target.is_empty() => String::new(),
            MountType::Secret | MountType::Ssh => {
                normalize_path(&out.config.working_dir, &spec_m.target, false)
            }
            _ => target,
        };
        Some(Mount { target, kind })
    }

    /// A `--mount` value expanded against the stage environment and parsed.
    fn parse_mount(&mut self, out: &StageOut, ins: &Instruction, m: &Word) -> Option<MountSpec> {
        let lexer = self.lexer;
        let budget = &mut self.budget;
        let env = &out.env;
        let mut unset = BTreeSet::new();
        let parsed = mount::parse(&m.text, &mut |s| {
            lexer
                .expand_within(s, env, budget)
                .map(|e| {
                    unset.extend(e.unset);
                    e.value
                })
                .map_err(|e| e.to_string())
        });
        self.undefined(out, ins, &unset);
        match parsed {
            Ok(x) => Some(x),
            Err(e) => {
                self.error(
                    Diagnostic::error(m.span, e).with_hint(
                        "write --mount=type=bind|cache|tmpfs|secret|ssh,target=PATH[,…]",
                    ),
                );
                None
            }
        }
    }

    /// The input a mount takes its source from (`from`, a stage or image, else the build
    /// context), added to `inputs`; its index there.
    fn mount_input(
        &mut self,
        i: usize,
        ins: &Instruction,
        from: Option<&str>,
        span: Span,
        inputs: &mut Vec<Digest>,
    ) -> Option<usize> {
        let d = match from {
            Some(f) => self.source_of(i, ins, f, span)?,
            None => self.context()?,
        };
        inputs.push(d);
        Some(inputs.len() - 1)
    }

    /// The RUN's argument vector (shell form run by the stage's shell) and, for a heredoc
    /// command, its summary for progress. A heredoc script starting with `#!` is mounted at
    /// `/dev/pipes/` (its state added to `inputs`) and run.
    fn run_command(
        &mut self,
        out: &StageOut,
        ins: &Instruction,
        spec: &RunSpec,
        inputs: &mut Vec<Digest>,
        mounts: &mut Vec<Mount>,
    ) -> Option<(Vec<String>, Option<String>)> {
        let mut args = spec.cmd.args();
        let shell_form = spec.cmd.is_shell();
        let mut summary = None;
        if !ins.heredocs.is_empty() && shell_form {
            let first = args.first().cloned().unwrap_or_default();
            if let Ok(Some(_)) = crate::heredoc::parse_marker(&first) {
                let h = &ins.heredocs[0];
                let data = if h.chomp {
                    crate::heredoc::chomp(&h.content)
                } else {
                    h.content.clone()
                };
                summary = Some(summarize(&h.content));
                if data.starts_with("#!") {
                    let file = self.inline_document(&h.name, 0o755, data, ins.span)?;
                    inputs.push(file);
                    mounts.push(Mount {
                        target: "/dev/pipes/".into(),
                        kind: MountKind::Bind {
                            input: inputs.len() - 1,
                            source: "/".into(),
                            readonly: true,
                        },
                    });
                    args = vec![format!("/dev/pipes/{}", h.name)];
                } else {
                    args = vec![data];
                }
            } else {
                let mut b = first;
                for h in &ins.heredocs {
                    b.push('\n');
                    b.push_str(&h.content);
                    b.push_str(&h.name);
                }
                args = vec![b];
            }
        }
        let args = if shell_form {
            let mut sh = stage_shell(out);
            sh.push(args.join(" "));
            sh
        } else {
            args
        };
        Some((args, summary))
    }

    /// The step's environment: the stage's (charged to the expansion budget), and
    /// `SSH_AUTH_SOCK` for the first ssh mount unless the environment names one.
    fn run_env(
        &mut self,
        out: &StageOut,
        ins: &Instruction,
        mounts: &[Mount],
    ) -> Option<Vec<String>> {
        let mut env: Vec<String> = out.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Every step carries the whole environment: charge it, so that a large environment
        // repeated by many steps cannot fill memory either.
        let env_bytes = env.iter().map(String::len).sum();
        if let Err(e) = self.budget.charge(env_bytes) {
            self.error(
                Diagnostic::error(ins.span, e)
                    .with_hint("the environment is copied into every RUN step; keep it smaller"),
            );
            return None;
        }
        // As BuildKit's llb: the first ssh mount is the step's agent unless the env names one.
        if !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK="))
            && let Some(m) = mounts
                .iter()
                .find(|m| matches!(m.kind, MountKind::Ssh { .. }))
        {
            env.push(format!("SSH_AUTH_SOCK={}", m.target));
        }
        Some(env)
    }

    /// The step's history line: `RUN |n K=V… args # buildkit` with the stage's ARGs (charged to
    /// the expansion budget).
    fn run_history(
        &mut self,
        out: &StageOut,
        ins: &Instruction,
        args: &[String],
    ) -> Option<String> {
        let mut created = String::from("RUN ");
        if !out.args.is_empty() {
            created.push_str(&format!("|{} ", out.args.len()));
            for (k, v) in &out.args {
                let val = out
                    .env
                    .get(k)
                    .map(str::to_string)
                    .or_else(|| v.clone())
                    .unwrap_or_default();
                created.push_str(&format!("{k}={val} "));
            }
        }
        created.push_str(&args.join(" "));
        created.push_str(" # buildkit");
        // The history repeats every ARG: charged like the environment.
        if let Err(e) = self.budget.charge(created.len()) {
            self.error(
                Diagnostic::error(ins.span, e)
                    .with_hint("every RUN step's history lists the stage's ARGs; declare fewer"),
            );
            return None;
        }
        Some(created)
    }
}

/// A cache mount; `seed` is the input and path of its `from=` source.
fn cache_mount(spec_m: &MountSpec, seed: Option<(usize, String)>) -> MountKind {
    MountKind::Cache {
        id: if spec_m.id.is_empty() {
            clean_path(&spec_m.target)
        } else {
            spec_m.id.clone()
        },
        sharing: match spec_m.sharing.as_deref() {
            Some("private") => CacheSharing::Private,
            Some("locked") => CacheSharing::Locked,
            _ => CacheSharing::Shared,
        },
        uid: spec_m.uid.unwrap_or(0),
        gid: spec_m.gid.unwrap_or(0),
        mode: spec_m.mode.unwrap_or(0o755),
        readonly: spec_m.readonly,
        seed,
    }
}

/// A secret mount: its id is `source=`, else `id=`, else the target's file name; without
/// `env=` or `target=` it is mounted at `/run/secrets/ID`.
fn secret_mount(spec_m: &mut MountSpec) -> MountKind {
    let id = if !spec_m.source.is_empty() {
        spec_m.source.clone()
    } else if !spec_m.id.is_empty() {
        spec_m.id.clone()
    } else {
        spec_m
            .target
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    if spec_m.env.is_none() && spec_m.target.is_empty() {
        spec_m.target = format!("/run/secrets/{}", id.rsplit('/').next().unwrap_or_default());
    }
    MountKind::Secret {
        id,
        required: spec_m.required,
        uid: spec_m.uid.unwrap_or(0),
        gid: spec_m.gid.unwrap_or(0),
        mode: spec_m.mode.unwrap_or(0o400),
        env: spec_m.env.clone(),
    }
}

/// An ssh mount: without `target=` it is the `ssh_index`th agent socket under
/// `/run/buildkit/`; the id defaults to `default`.
fn ssh_mount(spec_m: &mut MountSpec, ssh_index: &mut usize) -> MountKind {
    if spec_m.target.is_empty() {
        spec_m.target = format!("/run/buildkit/ssh_agent.{ssh_index}");
    }
    *ssh_index += 1;
    MountKind::Ssh {
        id: if spec_m.id.is_empty() {
            "default".into()
        } else {
            spec_m.id.clone()
        },
        required: spec_m.required,
        uid: spec_m.uid.unwrap_or(0),
        gid: spec_m.gid.unwrap_or(0),
        mode: spec_m.mode.unwrap_or(0o600),
    }
}

/// `--network`: `none`, `host`, else the default.
fn network_mode(spec: &RunSpec) -> NetworkMode {
    match spec.network.as_ref().map(|w| w.text.as_str()) {
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        _ => NetworkMode::Default,
    }
}

/// `--security`: `insecure`, else the sandbox.
fn security_mode(spec: &RunSpec) -> Security {
    match spec.security.as_ref().map(|w| w.text.as_str()) {
        Some("insecure") => Security::Insecure,
        _ => Security::Sandbox,
    }
}

/// A heredoc's first line, with `...` when more follow (for progress).
fn summarize(doc: &str) -> String {
    let doc = doc.trim();
    let mut lines = doc.split('\n');
    let first = lines
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
        .to_string();
    if lines.next().is_some() {
        format!("{first}...")
    } else {
        first
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use xbuild_llb::MountKind;

    use super::super::test_support::{execs, lower};

    #[test]
    fn run_mount_without_target_or_relative_resolves_against_workdir() {
        let def = lower(
            "FROM scratch AS x\nFROM scratch\nWORKDIR /app\n\
             RUN --mount=from=x true\n\
             RUN --mount=type=cache true\n\
             RUN --mount=type=cache,target=cache/go true\n\
             RUN --mount=type=bind,target=. true\n",
        )
        .unwrap();
        let mounts: Vec<(String, Option<String>)> = execs(&def)
            .into_iter()
            .flat_map(|e| e.mounts)
            .map(|m| {
                let id = match m.kind {
                    MountKind::Cache { id, .. } => Some(id),
                    _ => None,
                };
                (m.target, id)
            })
            .collect();
        assert_eq!(
            mounts,
            vec![
                ("/app".to_string(), None),
                ("/app".to_string(), Some(".".to_string())),
                ("/app/cache/go".to_string(), Some("cache/go".to_string())),
                ("/app".to_string(), None),
            ]
        );
    }

    #[test]
    fn run_mount_target_resolving_to_root_is_an_error() {
        for m in ["type=cache", "type=bind,target=.", "type=tmpfs,target=/"] {
            let errs = lower(&format!("FROM scratch\nRUN --mount={m} true\n")).unwrap_err();
            assert_eq!(errs[0].message, "invalid mount target \"/\"", "{m}");
            assert_eq!(errs[0].span.line, 2, "{m}");
        }
    }
}
