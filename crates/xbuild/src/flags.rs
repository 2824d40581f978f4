//! The command line's build flags, and the rules that turn them into [`BuildOptions`]: an
//! embedder that takes the same flags gets the same behaviour as `xbuild build`.
//!
//! [`BuildFlags`] holds the flags' values as given (`--build-arg KEY=VALUE`, `--allow NAME`,
//! `--ssh default`, …); [`BuildFlags::build_options`] checks them and applies the rules:
//! `SOURCE_DATE_EPOCH` from a build argument wins over the environment's and becomes a build
//! argument itself, `--ssh ID` without a socket means `$SSH_AUTH_SOCK`, `--allow` takes
//! comma-separated entitlements. What the rules read from the environment comes in an
//! [`Environment`], so a caller can pass its own.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xbuild::Error> {
//! use xbuild::{BuildFlags, Builder, Environment};
//! use xbuild::context_input::PreparedContext;
//!
//! let mut flags = BuildFlags::default();
//! flags.tags.push("app:1".into());
//! flags.build_args.push("VERSION=1.2".into());
//! let context = PreparedContext::dir("./app".into());
//! let opts = flags.build_options(&context, &Environment::from_process())?;
//! Builder::new("/var/lib/xbuild").build(&opts).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::context_input::PreparedContext;
use crate::{
    BuildOptions, CacheSpec, Error, OptionError, OptionName, OutputSpec, SecretSource, parse_epoch,
};

/// The build argument (and environment variable) that clamps a build's times.
const EPOCH: &str = "SOURCE_DATE_EPOCH";

/// The flags of one build as a command line gives them, before any is checked.
#[derive(Clone, Debug, Default)]
pub struct BuildFlags {
    /// `--tag`: names for the image (`name:tag`).
    pub tags: Vec<String>,
    /// `--output`: output specs (see [`OutputSpec::parse`]).
    pub outputs: Vec<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--build-arg`: `KEY=VALUE` each.
    pub build_args: Vec<String>,
    /// `--secret`: `id=ID,src=PATH` or `id=ID,env=VAR` each.
    pub secrets: Vec<String>,
    /// `--ssh`: `ID` (the agent of `$SSH_AUTH_SOCK`) or `ID=SOCKET` each.
    pub ssh: Vec<String>,
    /// `--pull`.
    pub pull: bool,
    /// `--push`.
    pub push: bool,
    /// `--cache-from`: cache specs (see [`CacheSpec::parse_from`]).
    pub cache_from: Vec<String>,
    /// `--cache-to`: cache specs (see [`CacheSpec::parse_to`]).
    pub cache_to: Vec<String>,
    /// `--target`: the stage to build.
    pub target: Option<String>,
    /// `--label`: `KEY=VALUE` each.
    pub labels: Vec<String>,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--allow`: entitlements, each maybe a comma-separated list (`security.insecure`,
    /// `network.host`).
    pub allow: Vec<String>,
}

/// What the flag rules read from the environment.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `SOURCE_DATE_EPOCH`; unset when empty.
    pub source_date_epoch: Option<String>,
    /// `SSH_AUTH_SOCK`: the agent `--ssh ID` means.
    pub ssh_auth_sock: Option<PathBuf>,
}

impl Environment {
    /// This process's environment.
    pub fn from_process() -> Self {
        Environment {
            source_date_epoch: std::env::var(EPOCH).ok(),
            ssh_auth_sock: std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
        }
    }

    /// `SOURCE_DATE_EPOCH` parsed, if set and not empty (`xbuild import` takes it as the
    /// image's creation time).
    pub fn epoch(&self) -> Result<Option<i64>, Error> {
        match self.source_date_epoch.as_deref() {
            Some(v) if !v.is_empty() => Ok(Some(parse_epoch(v)?)),
            _ => Ok(None),
        }
    }
}

impl BuildFlags {
    /// The options a check (`build --check`) runs with: the context and Dockerfile of
    /// `context`, the target, platform, entitlements, labels and build arguments. Nothing a
    /// check does not read is parsed.
    pub fn check_options(&self, context: &PreparedContext) -> Result<BuildOptions, Error> {
        let mut opts = BuildOptions::new(&context.context);
        opts.dockerfile = context.dockerfile.clone();
        opts.target = self.target.clone();
        opts.platform = self.platform.clone();
        for a in self.allow.iter().flat_map(|a| a.split(',')) {
            match a {
                "security.insecure" => opts.allow_insecure = true,
                "network.host" => opts.allow_network_host = true,
                other => {
                    return Err(Error::InvalidOption {
                        option: OptionName::Allow,
                        value: other.to_string(),
                        problem: OptionError::UnknownEntitlement,
                    });
                }
            }
        }
        opts.labels = key_values(OptionName::Label, &self.labels)?;
        opts.build_args = key_values(OptionName::BuildArg, &self.build_args)?;
        Ok(opts)
    }

    /// The options of the build: those of [`check_options`](Self::check_options), then tags,
    /// secrets, SSH agents, outputs, caches and the epoch. `SOURCE_DATE_EPOCH` given as a
    /// build argument wins over `env`'s; either way it becomes a build argument too.
    pub fn build_options(
        &self,
        context: &PreparedContext,
        env: &Environment,
    ) -> Result<BuildOptions, Error> {
        let mut opts = self.check_options(context)?;
        opts.tags = self.tags.clone();
        opts.no_cache = self.no_cache;
        opts.pull = self.pull;
        opts.push = self.push;
        for sec in &self.secrets {
            let (id, src) = SecretSource::parse(sec).map_err(|e| match e {
                xbuild_solver::Error::SecretSpec { spec, problem } => Error::InvalidOption {
                    option: OptionName::Secret,
                    value: spec,
                    problem: OptionError::Secret(problem),
                },
                e => e.into(),
            })?;
            opts.secrets.insert(id, src);
        }
        for s in &self.ssh {
            let (id, sock) = match s.split_once('=') {
                Some((id, p)) => (id.to_string(), PathBuf::from(p)),
                None => (
                    s.clone(),
                    env.ssh_auth_sock
                        .clone()
                        .ok_or_else(|| Error::InvalidOption {
                            option: OptionName::Ssh,
                            value: s.clone(),
                            problem: OptionError::NoSshAgent,
                        })?,
                ),
            };
            opts.ssh.insert(id, sock);
        }
        for o in &self.outputs {
            opts.outputs.push(OutputSpec::parse(o)?);
        }
        for c in &self.cache_from {
            opts.cache_from.push(CacheSpec::parse_from(c)?);
        }
        for c in &self.cache_to {
            opts.cache_to.push(CacheSpec::parse_to(c)?);
        }
        opts.source_date_epoch = match opts.build_args.get(EPOCH) {
            Some(v) => Some(parse_epoch(v)?),
            None => env.epoch()?,
        };
        if let Some(e) = opts.source_date_epoch {
            opts.build_args
                .entry(EPOCH.into())
                .or_insert_with(|| e.to_string());
        }
        Ok(opts)
    }
}

/// The `KEY=VALUE` values of the repeatable option `option` ([`OptionName::BuildArg`],
/// [`OptionName::Label`]), the last one of a key winning.
pub fn key_values(option: OptionName, items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for a in items {
        let (k, v) = a.split_once('=').ok_or_else(|| Error::InvalidOption {
            option,
            value: a.clone(),
            problem: OptionError::NotKeyValue,
        })?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> PreparedContext {
        PreparedContext::dir("ctx".into())
    }

    #[test]
    fn a_build_argument_epoch_wins_over_the_environment_and_becomes_a_build_argument() {
        let env = Environment {
            source_date_epoch: Some("100".into()),
            ssh_auth_sock: None,
        };
        let opts = BuildFlags::default()
            .build_options(&context(), &env)
            .unwrap();
        assert_eq!(opts.source_date_epoch, Some(100));
        assert_eq!(opts.build_args.get(EPOCH).map(String::as_str), Some("100"));
        let flags = BuildFlags {
            build_args: vec!["SOURCE_DATE_EPOCH=7".into()],
            ..BuildFlags::default()
        };
        let opts = flags.build_options(&context(), &env).unwrap();
        assert_eq!(opts.source_date_epoch, Some(7));
        assert_eq!(opts.build_args.get(EPOCH).map(String::as_str), Some("7"));
        let empty = Environment {
            source_date_epoch: Some(String::new()),
            ssh_auth_sock: None,
        };
        let opts = BuildFlags::default()
            .build_options(&context(), &empty)
            .unwrap();
        assert_eq!(opts.source_date_epoch, None);
        assert!(opts.build_args.is_empty());
        let bad = Environment {
            source_date_epoch: Some("-1".into()),
            ssh_auth_sock: None,
        };
        assert!(
            BuildFlags::default()
                .build_options(&context(), &bad)
                .is_err()
        );
    }

    #[test]
    fn ssh_without_a_socket_is_the_agent_of_ssh_auth_sock() {
        let flags = BuildFlags {
            ssh: vec!["default".into(), "other=/run/other.sock".into()],
            ..BuildFlags::default()
        };
        let err = flags
            .build_options(&context(), &Environment::default())
            .unwrap_err();
        assert!(err.is_usage(), "{err}");
        assert!(
            err.to_string().contains("SSH_AUTH_SOCK is not set"),
            "{err}"
        );
        let env = Environment {
            source_date_epoch: None,
            ssh_auth_sock: Some("/run/agent.sock".into()),
        };
        let opts = flags.build_options(&context(), &env).unwrap();
        assert_eq!(opts.ssh["default"], PathBuf::from("/run/agent.sock"));
        assert_eq!(opts.ssh["other"], PathBuf::from("/run/other.sock"));
    }

    #[test]
    fn allow_takes_comma_separated_entitlements_and_refuses_unknown_ones() {
        let flags = BuildFlags {
            allow: vec!["network.host,security.insecure".into()],
            ..BuildFlags::default()
        };
        let opts = flags.check_options(&context()).unwrap();
        assert!(opts.allow_insecure && opts.allow_network_host);
        let flags = BuildFlags {
            allow: vec!["device".into()],
            ..BuildFlags::default()
        };
        assert!(flags.check_options(&context()).unwrap_err().is_usage());
    }

    #[test]
    fn key_values_need_an_equals_sign_and_the_last_value_wins() {
        let kv = key_values(
            OptionName::Label,
            &["a=1".into(), "b=".into(), "a=2".into()],
        )
        .unwrap();
        assert_eq!(kv["a"], "2");
        assert_eq!(kv["b"], "");
        let err = key_values(OptionName::BuildArg, &["NOVALUE".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "build argument \"NOVALUE\": expected KEY=VALUE"
        );
        assert!(
            matches!(
                &err,
                Error::InvalidOption {
                    option: OptionName::BuildArg,
                    value,
                    problem: OptionError::NotKeyValue,
                } if value == "NOVALUE"
            ),
            "{err:?}"
        );
    }
}
