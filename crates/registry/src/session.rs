//! A [`Registry`] handle: transport settings, and per-repository sessions (the negotiated
//! credentials and the HTTP client for one repository and access level).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Auth, AuthRequest, negotiate};
use crate::credentials::{Credentials, DockerConfig};
use crate::limits::{CONNECT_TIMEOUT, STALL_TIMEOUT};
use crate::{Error, Platform, Reference, RegistryAddress, Step};

/// How long a registry may stay silent during a push: longer than [`STALL_TIMEOUT`], as a
/// registry may hash a large upload before it answers.
const PUSH_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How a [`Registry`] connects and what it pulls.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) spoken to over plain HTTP. `localhost` and `127.0.0.1` always are.
    pub insecure: Vec<String>,
    /// Docker's `config.json` (default: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// The platform whose manifest is picked from an index.
    pub platform: Platform,
    /// Attempts per request for transient failures (5xx, resets, timeouts).
    pub attempts: u32,
    /// Blobs transferred at once.
    pub concurrency: usize,
    /// Blobs larger than this are uploaded in chunks; smaller ones in one request.
    pub chunked_upload_above: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            docker_config: None,
            platform: Platform::host(),
            attempts: 4,
            concurrency: 4,
            chunked_upload_above: 64 << 20,
        }
    }
}

/// Whether a session reads or also writes its repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    Pull,
    /// Push, with the repositories blobs may be mounted from.
    Push(Vec<String>),
}

/// An authenticated connection to one repository.
pub(crate) struct Session {
    /// The reference the session was opened for (errors name it).
    pub reference: Reference,
    /// The HTTP client: silent for at most [`STALL_TIMEOUT`] when pulling, [`PUSH_READ_TIMEOUT`]
    /// when pushing (every body read bounded, see `limits`).
    pub http: reqwest::Client,
    /// `scheme://host/`, the registry whose requests carry the credentials.
    pub registry: reqwest::Url,
    /// `scheme://host/v2/repository`, the prefix of the repository's URLs.
    pub base: String,
    /// What requests authenticate with.
    pub auth: Auth,
    /// Attempts per request.
    pub attempts: u32,
}

impl Session {
    /// A GET of `url` carrying the session's credentials.
    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.auth.apply(self.http.get(url))
    }

    /// A `method` request of `url`, carrying the session's credentials only when `url` is on
    /// the registry itself (scheme, host and port): an upload `Location` on another host (a
    /// storage backend) is followed without them, as Docker's client does.
    pub fn request(&self, method: reqwest::Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        let own = url.origin() == self.registry.origin();
        let req = self.http.request(method, url);
        if own { self.auth.apply(req) } else { req }
    }

    /// The URL of the manifest `reference` (of this repository) names.
    pub fn manifest_url(&self, reference: &Reference) -> String {
        format!("{}/manifests/{}", self.base, reference.object())
    }

    /// The URL of blob `digest` of this repository.
    pub fn blob_url(&self, digest: &str) -> String {
        format!("{}/blobs/{digest}", self.base)
    }

    /// An error at `step` for this session's reference.
    pub fn error(&self, step: Step, message: String) -> Error {
        Error::Registry {
            reference: self.reference.to_string(),
            step,
            message,
        }
    }
}

/// Talks to registries: pulls into and pushes from an xbuild content store.
pub struct Registry {
    pub(crate) opts: RegistryOptions,
    http: reqwest::Client,
    push_http: reqwest::Client,
    sessions: tokio::sync::Mutex<HashMap<(String, String, Access), Arc<Session>>>,
}

impl Registry {
    /// A registry handle with `opts`.
    pub fn new(opts: RegistryOptions) -> Result<Self, Error> {
        let setup = |e: reqwest::Error| Error::Registry {
            reference: "(registry client)".into(),
            step: Step::Resolve,
            message: format!("cannot set up HTTP: {e}"),
        };
        let http = http_client().map_err(setup)?;
        let push_http = client_with(PUSH_READ_TIMEOUT).map_err(setup)?;
        Ok(Registry {
            opts,
            http,
            push_http,
            sessions: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// True when `host` is spoken to over plain HTTP.
    pub fn is_insecure(&self, host: &str) -> bool {
        let bare = |h: &str| -> String {
            if let Some(rest) = h.strip_prefix('[') {
                return rest.split(']').next().unwrap_or(rest).to_string();
            }
            h.rsplit_once(':').map(|(a, _)| a).unwrap_or(h).to_string()
        };
        let name = bare(host);
        if matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1") {
            return true;
        }
        self.opts
            .insecure
            .iter()
            .any(|i| i == host || (!i.contains(':') && *i == name))
    }

    fn docker_config(&self) -> PathBuf {
        self.opts
            .docker_config
            .clone()
            .unwrap_or_else(DockerConfig::default_path)
    }

    /// The credentials configured for `domain`.
    pub fn credentials(&self, domain: &str) -> Result<Option<Credentials>, Error> {
        let path = self.docker_config();
        let domain = domain.to_string();
        DockerConfig::load(&path)?.credentials(&domain)
    }

    /// Checks `creds` against the registry `server` (as `docker login` does) and records them in
    /// the Docker config. Returns the config file written.
    pub async fn login(&self, server: &str, creds: &Credentials) -> Result<PathBuf, Error> {
        let domain = server_domain(server);
        let probe =
            Reference::parse_docker_ref(&format!("{domain}/xbuild-login-probe")).map_err(|_| {
                Error::InvalidReference {
                    reference: server.to_string(),
                    message: "not a registry host name".into(),
                }
            })?;
        let host = probe.registry_host().to_string();
        let scheme = if self.is_insecure(&host) {
            "http"
        } else {
            "https"
        };
        let path = self.docker_config();
        negotiate(
            &self.http,
            &AuthRequest {
                reference: server,
                scheme,
                host: &host,
                scopes: Vec::new(),
                credentials: Some(creds.clone()),
                config_hint: "the login arguments".into(),
                attempts: self.opts.attempts,
            },
        )
        .await?;
        let mut cfg = DockerConfig::load(&path)?;
        cfg.store(&domain, creds)?;
        Ok(path)
    }

    /// An authenticated session for `reference`'s repository.
    pub(crate) async fn session(
        &self,
        reference: &Reference,
        access: Access,
    ) -> Result<Arc<Session>, Error> {
        let key = (
            reference.domain().to_string(),
            reference.path().to_string(),
            access.clone(),
        );
        let mut sessions = self.sessions.lock().await;
        if let Some(s) = sessions.get(&key) {
            return Ok(s.clone());
        }
        let host = reference.registry_host().to_string();
        let insecure = self.is_insecure(&host);
        let scheme = if insecure { "http" } else { "https" };
        let config_path = self.docker_config();
        let domain = reference.domain().to_string();
        let cfg_path = config_path.clone();
        let credentials = tokio::task::spawn_blocking(move || {
            DockerConfig::load(&cfg_path)?.credentials(&domain)
        })
        .await
        .map_err(|e| Error::Credentials {
            location: config_path.display().to_string(),
            message: e.to_string(),
        })??;
        let scopes = match &access {
            Access::Pull => vec![format!("repository:{}:pull", reference.path())],
            Access::Push(sources) => {
                std::iter::once(format!("repository:{}:pull,push", reference.path()))
                    .chain(sources.iter().map(|s| format!("repository:{s}:pull")))
                    .collect()
            }
        };
        let auth = negotiate(
            &self.http,
            &AuthRequest {
                reference: &reference.to_string(),
                scheme,
                host: &host,
                scopes,
                credentials,
                config_hint: config_path.display().to_string(),
                attempts: self.opts.attempts,
            },
        )
        .await?;
        let registry = reqwest::Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
            Error::InvalidReference {
                reference: reference.to_string(),
                message: format!("{host} is not a registry address: {e}"),
            }
        })?;
        let session = Arc::new(Session {
            reference: reference.clone(),
            http: match access {
                Access::Pull => self.http.clone(),
                Access::Push(_) => self.push_http.clone(),
            },
            registry,
            base: format!("{scheme}://{host}/v2/{}", reference.path()),
            auth,
            attempts: self.opts.attempts,
        });
        sessions.insert(key, session.clone());
        Ok(session)
    }
}

/// The HTTP client auth negotiation and pulls use (TLS through rustls with the ring provider,
/// which reqwest is built without): silent for at most [`STALL_TIMEOUT`].
pub(crate) fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    client_with(STALL_TIMEOUT)
}

/// An HTTP client that gives up on a registry silent for `read_timeout`.
fn client_with(read_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("xbuild/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout)
        .build()
}

/// The registry domain a `login` argument names (`https://host:5000/v2/` → `host:5000`; none or
/// Docker Hub's addresses → `docker.io`).
fn server_domain(server: &str) -> String {
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            crate::DOCKER_HUB.to_string()
        }
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_named_registries() {
        let r = Registry::new(RegistryOptions {
            insecure: vec!["reg.lan:5000".into(), "other.lan".into()],
            ..Default::default()
        })
        .unwrap();
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:41234",
            "[::1]:5000",
            "reg.lan:5000",
            "other.lan:8080",
        ] {
            assert!(r.is_insecure(h), "{h}");
        }
        for h in [
            "registry-1.docker.io",
            "reg.lan:5001",
            "reg.lan",
            "127.0.0.2:5000",
            "example.com",
        ] {
            assert!(!r.is_insecure(h), "{h}");
        }
    }

    #[test]
    fn login_servers() {
        assert_eq!(server_domain(""), "docker.io");
        assert_eq!(server_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_domain("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(server_domain("reg.example"), "reg.example");
    }
}
