//! Auth negotiation: ask the registry's `/v2/` endpoint what it wants, then fetch a Bearer token
//! (realm/service/scope, with the user's credentials when there are any) or use Basic auth.
//!
//! Token-server errors are kept (not reduced to a bare 401), a token may carry several
//! repository scopes (a cross-repository mount needs `pull` on the source too), and credentials
//! come from Docker's credential store. The result, an [`Auth`], is what every request of a
//! session carries.

use base64::Engine as _;

use crate::challenge::{Challenge, parse_challenges};
use crate::credentials::Credentials;
use crate::limits::{BodyError, DOCUMENT_TIMEOUT, Document, error_text, read_document};
use crate::retry::{Failure, registry_message, with_retries};
use crate::{Error, Step};

/// What one negotiation needs.
pub(crate) struct AuthRequest<'a> {
    /// The image reference, for error messages.
    pub reference: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The registry host to connect to.
    pub host: &'a str,
    /// Token scopes (`repository:team/app:pull,push`).
    pub scopes: Vec<String>,
    /// The user's credentials for this registry, if configured.
    pub credentials: Option<Credentials>,
    /// Where the credentials would come from, for the hint in errors.
    pub config_hint: String,
    /// How many attempts transient failures get.
    pub attempts: u32,
}

/// What a session's requests authenticate with (its `Debug` shows no secret).
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    /// Nothing: the registry asked for no credentials.
    Anonymous,
    /// The user's credentials, sent with every request.
    Basic(Credentials),
    /// A token from the registry's token server.
    Bearer(Token),
}

/// A Bearer token (its `Debug` is redacted).
#[derive(Clone)]
pub(crate) struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Auth {
    /// `req` carrying these credentials.
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Anonymous => req,
            Auth::Basic(c) => req.basic_auth(&c.username, Some(&c.password)),
            Auth::Bearer(Token(token)) => req.bearer_auth(token),
        }
    }
}

fn basic_header(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Negotiates access; the result is what a session sends with every request.
pub(crate) async fn negotiate(
    http: &reqwest::Client,
    req: &AuthRequest<'_>,
) -> Result<Auth, Error> {
    let fail = |step: Step, message: String| Error::Registry {
        reference: req.reference.to_string(),
        step,
        message,
    };
    let url = format!("{}://{}/v2/", req.scheme, req.host);
    let (status, challenges, body) = with_retries(req.attempts, &url, || async {
        let res = http.get(&url).timeout(DOCUMENT_TIMEOUT).send().await?;
        let status = res.status().as_u16();
        if status >= 500 {
            let body = error_text(res).await;
            return Err(Failure::status(status, &body));
        }
        let challenges: Vec<Challenge> = res
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let body = error_text(res).await;
        Ok((status, challenges, body))
    })
    .await
    .map_err(|f| {
        if f.stalled.is_some() {
            return f.into_error(req.reference, Step::Resolve);
        }
        let tls_mismatch = [
            "corrupt message",
            "InvalidContentType",
            "certificate",
            "tls",
        ]
        .iter()
        .any(|w| f.message.contains(w));
        let hint = if req.scheme == "https" && tls_mismatch {
            format!(
                " (if {} serves plain HTTP, name it with --insecure-registry {})",
                req.host, req.host
            )
        } else {
            String::new()
        };
        fail(
            Step::Resolve,
            format!("cannot reach the registry at {url}: {}{hint}", f.message),
        )
    })?;
    match status {
        200..=299 => Ok(match &req.credentials {
            Some(c) => Auth::Basic(c.clone()),
            None => Auth::Anonymous,
        }),
        401 => {
            if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
                let token = fetch_token(http, req, bearer).await?;
                return Ok(Auth::Bearer(Token(token)));
            }
            let realm = challenges
                .iter()
                .find(|c| c.scheme == "basic")
                .map(|c| c.param("realm").unwrap_or_default().to_string());
            let Some(realm) = realm else {
                return Err(fail(
                    Step::Auth,
                    format!(
                        "{url} answered 401 without a Bearer or Basic challenge: {}",
                        registry_message(&body)
                    ),
                ));
            };
            let Some(c) = &req.credentials else {
                return Err(fail(
                    Step::Auth,
                    format!(
                        "{} requires authentication (Basic realm {realm:?}) and no credentials for it were found in {}; run `xbuild login {}`",
                        req.host, req.config_hint, req.host
                    ),
                ));
            };
            check_basic(http, req, &url, c)
                .await
                .map_err(|m| fail(Step::Auth, m))?;
            Ok(Auth::Basic(c.clone()))
        }
        other => Err(fail(
            Step::Resolve,
            format!("{url}: HTTP {other}: {}", registry_message(&body)),
        )),
    }
}

async fn check_basic(
    http: &reqwest::Client,
    req: &AuthRequest<'_>,
    url: &str,
    c: &Credentials,
) -> Result<(), String> {
    let (status, body) = with_retries(req.attempts, url, || async {
        let res = http
            .get(url)
            .timeout(DOCUMENT_TIMEOUT)
            .header(reqwest::header::AUTHORIZATION, basic_header(c))
            .send()
            .await?;
        let status = res.status().as_u16();
        let body = error_text(res).await;
        if status >= 500 {
            return Err(Failure::status(status, &body));
        }
        Ok((status, body))
    })
    .await
    .map_err(|f| f.message)?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!(
            "{} rejected the credentials of user {:?} from {}: HTTP {status}: {}",
            req.host,
            c.username,
            req.config_hint,
            registry_message(&body)
        ))
    }
}

async fn fetch_token(
    http: &reqwest::Client,
    req: &AuthRequest<'_>,
    challenge: &Challenge,
) -> Result<String, Error> {
    let fail = |message: String| Error::Registry {
        reference: req.reference.to_string(),
        step: Step::Auth,
        message,
    };
    let realm = challenge
        .param("realm")
        .ok_or_else(|| fail(format!("{}: the Bearer challenge names no realm", req.host)))?;
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = challenge.param("service") {
        params.push(("service", s));
    }
    for s in &req.scopes {
        params.push(("scope", s));
    }
    let url = reqwest::Url::parse_with_params(realm, &params)
        .map_err(|e| fail(format!("token realm {realm:?} is not a URL: {e}")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(fail(format!("token realm {realm:?} is not an HTTP(S) URL")));
    }
    let too_large = |declared| Error::TooLarge {
        reference: req.reference.to_string(),
        what: Document::Token,
        url: url.to_string(),
        declared,
    };
    // Ok(Err(_)) is a response that must not be retried: one over the limit.
    let (status, body) = with_retries(req.attempts, realm, || async {
        let mut r = http.get(url.clone()).timeout(DOCUMENT_TIMEOUT);
        if let Some(c) = &req.credentials {
            r = r.header(reqwest::header::AUTHORIZATION, basic_header(c));
        }
        let res = r.send().await?;
        let status = res.status().as_u16();
        if !(200..300).contains(&status) {
            let body = error_text(res).await;
            if status >= 500 {
                return Err(Failure::status(status, &body));
            }
            return Ok((status, Ok(bytes::Bytes::from(body.into_bytes()))));
        }
        match read_document(res, Document::Token).await {
            Ok(body) => Ok((status, Ok(body))),
            Err(BodyError::TooLarge { declared }) => Ok((status, Err(declared))),
            Err(BodyError::Transport(e)) => Err(e.into()),
        }
    })
    .await
    .map_err(|f| {
        if f.stalled.is_some() {
            return f.into_error(req.reference, Step::Auth);
        }
        fail(format!("token server {realm}: {}", f.message))
    })?;
    let body = body.map_err(too_large)?;
    if !(200..300).contains(&status) {
        let who = match &req.credentials {
            Some(c) => format!("user {:?} from {}", c.username, req.config_hint),
            None => format!(
                "anonymous access (no credentials in {}; run `xbuild login {}`)",
                req.config_hint, req.host
            ),
        };
        return Err(fail(format!(
            "token server {realm} refused {who} for {}: HTTP {status}: {}",
            req.scopes.join(" "),
            registry_message(&String::from_utf8_lossy(&body))
        )));
    }
    #[derive(serde::Deserialize)]
    struct Token {
        #[serde(default)]
        token: String,
        #[serde(default)]
        access_token: String,
    }
    let t: Token = serde_json::from_slice(&body).map_err(|e| {
        fail(format!(
            "token server {realm}: response is not a token: {e}"
        ))
    })?;
    let token = if t.token.is_empty() {
        t.access_token
    } else {
        t.token
    };
    if token.is_empty() {
        return Err(fail(format!("token server {realm}: response has no token")));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one canned answer per connection: `None` drops the connection unanswered (a
    /// reset), `Some((status, headers, body))` answers. Yields each request's head.
    async fn serve(
        answers: Vec<Option<(u16, String, &'static str)>>,
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        serve_on(0, answers).await
    }

    async fn serve_on(
        port: u16,
        answers: Vec<Option<(u16, String, &'static str)>>,
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let host = l.local_addr().unwrap().to_string();
        let h = tokio::spawn(async move {
            let mut seen = Vec::new();
            for a in answers {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                if let Some((status, headers, body)) = a {
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    s.write_all(resp.as_bytes()).await.unwrap();
                }
            }
            seen
        });
        (host, h)
    }

    fn ok(status: u16) -> Option<(u16, String, &'static str)> {
        Some((status, String::new(), "{}"))
    }

    fn request(host: &str) -> AuthRequest<'_> {
        AuthRequest {
            reference: "r",
            scheme: "http",
            host,
            scopes: vec!["repository:a:pull".into()],
            credentials: None,
            config_hint: "config.json".into(),
            attempts: 4,
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_then_succeed() {
        let (host, served) = serve(vec![None, ok(503), ok(200)]).await;
        let auth = negotiate(&crate::session::http_client().unwrap(), &request(&host))
            .await
            .unwrap();
        assert!(matches!(auth, Auth::Anonymous));
        assert_eq!(
            served.await.unwrap().len(),
            3,
            "a reset and a 503 were retried"
        );
    }

    #[tokio::test]
    async fn retries_are_bounded_and_the_error_names_the_step() {
        let (host, served) = serve(vec![ok(502), ok(502), ok(502), ok(502)]).await;
        let e = negotiate(&crate::session::http_client().unwrap(), &request(&host))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("r: resolve: ")
                && msg.contains("HTTP 502")
                && msg.contains("4 attempts"),
            "{msg}"
        );
        assert_eq!(served.await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn basic_challenge_without_credentials_says_how_to_log_in() {
        let challenge = "WWW-Authenticate: Basic realm=\"reg\"\r\n".to_string();
        let (host, _served) = serve(vec![Some((401, challenge, "{}"))]).await;
        let msg = negotiate(&crate::session::http_client().unwrap(), &request(&host))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("r: auth: ")
                && msg.contains("Basic realm \"reg\"")
                && msg.contains("xbuild login"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn bearer_challenge_fetches_a_token_with_service_scope_and_credentials() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"reg.test\"\r\n"
        );
        let (host, served) = serve_on(
            port,
            vec![
                Some((401, challenge, "{}")),
                Some((
                    200,
                    String::new(),
                    r#"{"access_token":"tok-123","expires_in":300}"#,
                )),
            ],
        )
        .await;
        let mut req = request(&host);
        req.scopes.push("repository:src:pull".into());
        req.credentials = Some(Credentials {
            username: "u".into(),
            password: "p".into(),
        });
        let auth = negotiate(&crate::session::http_client().unwrap(), &req)
            .await
            .unwrap();
        assert!(matches!(auth, Auth::Bearer(Token(t)) if t == "tok-123"));
        let seen = served.await.unwrap();
        let token_req = &seen[1];
        assert!(
            token_req.starts_with(
                "GET /token?service=reg.test&scope=repository%3Aa%3Apull&scope=repository%3Asrc%3Apull "
            ),
            "{token_req}"
        );
        assert!(
            token_req
                .to_ascii_lowercase()
                .contains("authorization: basic dtpw"),
            "{token_req}"
        );
    }

    #[tokio::test]
    async fn a_refused_token_request_carries_the_token_servers_message() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let challenge =
            format!("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\"\r\n");
        let denied = r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        let (host, _) = serve_on(
            port,
            vec![
                Some((401, challenge, "{}")),
                Some((403, String::new(), denied)),
            ],
        )
        .await;
        let msg = negotiate(&crate::session::http_client().unwrap(), &request(&host))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("r: auth: token server")
                && msg.contains("HTTP 403")
                && msg.contains("DENIED requested access to the resource is denied"),
            "{msg}"
        );
    }
}
