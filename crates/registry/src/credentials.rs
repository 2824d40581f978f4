//! Docker's credential store: `config.json` (`auths` with base64 `auth`, `credsStore`,
//! `credHelpers`) and the `docker-credential-*` helpers it names.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{DOCKER_HUB, Error};

/// The key Docker files Docker Hub's credentials under.
const HUB_SERVER: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

/// A Docker `config.json`, read whole so that writing it back keeps every other setting.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
    helper_path: Option<OsString>,
}

/// The hostname a config key or server address names: `https://host:5000/v2/` → `host:5000`.
fn hostname(server: &str) -> String {
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    s.split('/').next().unwrap_or(s).to_string()
}

/// The server name Docker uses for a registry domain in the config and with helpers.
pub(crate) fn server_key(domain: &str) -> String {
    if matches!(
        domain,
        DOCKER_HUB | "index.docker.io" | "registry-1.docker.io"
    ) {
        HUB_SERVER.to_string()
    } else {
        hostname(domain)
    }
}

impl DockerConfig {
    /// Where Docker keeps the config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Path::new(&d).join("config.json");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        Path::new(&home).join(".docker/config.json")
    }

    /// Reads the config at `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let err = |message: String| Error::Credentials {
            location: path.display().to_string(),
            message,
        };
        let doc = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(err("not a JSON object".into())),
                Err(e) => return Err(err(format!("invalid JSON: {e}"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            doc,
            helper_path: None,
        })
    }

    /// Looks `docker-credential-*` helpers up in `path` (a `PATH`-style list) instead of `PATH`.
    pub fn with_helper_search_path(mut self, path: OsString) -> Self {
        self.helper_path = Some(path);
        self
    }

    /// The config file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn helper_for(&self, host: &str) -> Option<String> {
        self.doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| hostname(k) == host)
                    .and_then(|(_, v)| v.as_str())
            })
            .or_else(|| self.doc.get("credsStore").and_then(Value::as_str))
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// The credentials for a registry domain (`docker.io`, `host:5000`), if any are configured.
    pub fn credentials(&self, domain: &str) -> Result<Option<Credentials>, Error> {
        let server = server_key(domain);
        let host = hostname(&server);
        if let Some(helper) = self.helper_for(&host) {
            return helper_get(self.helper_command(&helper), &helper, &server);
        }
        let Some(auths) = self.doc.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let Some(entry) = auths
            .get(&server)
            .or_else(|| auths.iter().find(|(k, _)| hostname(k) == host).map(|x| x.1))
        else {
            return Ok(None);
        };
        let err = |message: String| Error::Credentials {
            location: format!("{} auths[{server:?}]", self.path.display()),
            message,
        };
        if entry.get("identitytoken").and_then(Value::as_str).is_some() {
            return Err(err(
                "identity tokens (OAuth refresh tokens) are not supported; log in with a password or access token: xbuild login"
                    .into(),
            ));
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let raw = BASE64
                .decode(auth.trim())
                .map_err(|e| err(format!("\"auth\" is not base64: {e}")))?;
            let text = String::from_utf8(raw).map_err(|_| err("\"auth\" is not UTF-8".into()))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| err("\"auth\" must encode USER:PASSWORD".into()))?;
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            })),
            _ => Ok(None),
        }
    }

    /// Records credentials for `domain` the way `docker login` does: through the configured
    /// helper, else as base64 `auth` in `auths`; then writes the file (mode 0600).
    pub fn store(&mut self, domain: &str, creds: &Credentials) -> Result<(), Error> {
        let server = server_key(domain);
        if let Some(helper) = self.helper_for(&hostname(&server)) {
            return helper_store(self.helper_command(&helper), &helper, &server, creds);
        }
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(a) = auths.as_object_mut() {
            let token = BASE64.encode(format!("{}:{}", creds.username, creds.password));
            a.insert(server, json!({ "auth": token }));
        }
        self.write()
    }

    fn helper_command(&self, helper: &str) -> Command {
        let mut c = Command::new(format!("docker-credential-{helper}"));
        if let Some(p) = &self.helper_path {
            c.env("PATH", p);
        }
        c
    }

    fn write(&self) -> Result<(), Error> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let err = |e: std::io::Error| Error::Credentials {
            location: self.path.display().to_string(),
            message: e.to_string(),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let body = serde_json::to_vec_pretty(&Value::Object(self.doc.clone())).map_err(|e| {
            Error::Credentials {
                location: self.path.display().to_string(),
                message: e.to_string(),
            }
        })?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

fn run_helper(
    mut cmd: Command,
    helper: &str,
    action: &str,
    input: &[u8],
) -> Result<(bool, String, String), Error> {
    let err = |message: String| Error::Credentials {
        location: format!("docker-credential-{helper}"),
        message,
    };
    let mut child = cmd
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            err(format!(
                "cannot run it ({e}); install it or fix credsStore/credHelpers"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| err(format!("writing to it: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for it: {e}")))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

fn helper_get(cmd: Command, helper: &str, server: &str) -> Result<Option<Credentials>, Error> {
    let (ok, stdout, stderr) = run_helper(cmd, helper, "get", server.as_bytes())?;
    let location = format!("docker-credential-{helper} get {server}");
    if !ok {
        if stdout.contains("credentials not found") || stderr.contains("credentials not found") {
            return Ok(None);
        }
        return Err(Error::Credentials {
            location,
            message: format!("failed: {stdout} {stderr}").trim().to_string(),
        });
    }
    let v: Value = serde_json::from_str(&stdout).map_err(|e| Error::Credentials {
        location: location.clone(),
        message: format!("output is not JSON: {e}"),
    })?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (username, password) = (field("Username"), field("Secret"));
    if username == "<token>" {
        return Err(Error::Credentials {
            location,
            message: "identity tokens (OAuth refresh tokens) are not supported; log in with a password or access token".into(),
        });
    }
    if username.is_empty() && password.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials { username, password }))
}

fn helper_store(
    cmd: Command,
    helper: &str,
    server: &str,
    creds: &Credentials,
) -> Result<(), Error> {
    let input = json!({"ServerURL": server, "Username": creds.username, "Secret": creds.password});
    let (ok, stdout, stderr) = run_helper(cmd, helper, "store", input.to_string().as_bytes())?;
    if ok {
        Ok(())
    } else {
        Err(Error::Credentials {
            location: format!("docker-credential-{helper} store {server}"),
            message: format!("failed: {stdout} {stderr}").trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, body: &str) -> DockerConfig {
        let p = dir.join("config.json");
        std::fs::write(&p, body).unwrap();
        DockerConfig::load(&p).unwrap()
    }

    #[test]
    fn auths_with_base64_and_url_keys() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            dir.path(),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
                "http://reg.example:5000/v2/":{"auth":"dTpwOmFzcw=="},
                "old.example":{"username":"o","password":"pw"}}}"#,
        );
        let hub = c.credentials("docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let r = c.credentials("reg.example:5000").unwrap().unwrap();
        assert_eq!((r.username.as_str(), r.password.as_str()), ("u", "p:ass"));
        assert_eq!(c.credentials("old.example").unwrap().unwrap().username, "o");
        assert!(c.credentials("other.example").unwrap().is_none());
        assert!(format!("{hub:?}").contains("redacted"));
    }

    #[test]
    fn bad_auth_fields_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), r#"{"auths":{"r.example":{"auth":"!!"}}}"#);
        let e = c.credentials("r.example").unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("base64"), "{e}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        assert!(
            DockerConfig::load(&bad)
                .unwrap_err()
                .to_string()
                .contains("invalid JSON")
        );
    }

    #[test]
    fn store_keeps_other_settings_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), r#"{"proxies":{"default":{}},"auths":{}}"#);
        let creds = Credentials {
            username: "me".into(),
            password: "pw".into(),
        };
        c.store("127.0.0.1:5000", &creds).unwrap();
        let again = DockerConfig::load(c.path()).unwrap();
        assert_eq!(again.credentials("127.0.0.1:5000").unwrap(), Some(creds));
        let text = std::fs::read_to_string(c.path()).unwrap();
        assert!(
            text.contains("proxies") && text.contains("bWU6cHc="),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn helpers_are_run_with_the_server_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-xbtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$server\" = reg.example ]; then echo '{\"ServerURL\":\"reg.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", dir.path().display());
        let c = config(dir.path(), r#"{"credHelpers":{"reg.example":"xbtest"}}"#)
            .with_helper_search_path(path.into());
        let got = c.credentials("reg.example").unwrap().unwrap();
        let missing = c.credentials("other.example");
        assert_eq!((got.username.as_str(), got.password.as_str()), ("hu", "hs"));
        assert!(
            missing.unwrap().is_none(),
            "no helper for other.example and no auths"
        );
    }
}
