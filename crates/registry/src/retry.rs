//! Bounded retries with exponential backoff for transient failures: 5xx, 429, connection
//! resets and timeouts (at most [`MAX_STALLED_ATTEMPTS`] of those). Anything else (4xx, auth,
//! digest errors) fails at once.

use std::future::Future;
use std::time::Duration;

use crate::limits::MAX_STALLED_ATTEMPTS;
use crate::{Error, Step};

/// A failed registry exchange, reduced to what the user is told and whether to try again.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub retryable: bool,
    /// The URL that timed out, when the attempt stalled.
    pub stalled: Option<String>,
    /// Attempts made (set by [`with_retries`]).
    pub attempts: u32,
}

impl Failure {
    pub fn fatal(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            retryable: false,
            stalled: None,
            attempts: 1,
        }
    }

    /// An HTTP status with the registry's response body.
    pub fn status(code: u16, body: &str) -> Self {
        Failure {
            message: format!("HTTP {code}: {}", registry_message(body)),
            retryable: code >= 500 || code == 429,
            stalled: None,
            attempts: 1,
        }
    }

    /// The error this failure is at `step` of `reference`: [`Error::Stalled`] when it timed
    /// out, else [`Error::Registry`] with `message` prefixed by `context`.
    pub fn into_error(self, reference: &str, step: Step) -> Error {
        match self.stalled {
            Some(url) => Error::Stalled {
                reference: reference.to_string(),
                step,
                url,
                attempts: self.attempts,
            },
            None => Error::Registry {
                reference: reference.to_string(),
                step,
                message: self.message,
            },
        }
    }
}

/// The registry's own words: the `errors[].message` of an OCI error body, else the body.
pub(crate) fn registry_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: serde_json::Value,
    }
    if let Ok(env) = serde_json::from_str::<Envelope>(body)
        && !env.errors.is_empty()
    {
        return env
            .errors
            .iter()
            .map(|e| {
                let mut s = format!("{} {}", e.code, e.message).trim().to_string();
                if !e.detail.is_null() {
                    s.push_str(&format!(" ({})", e.detail));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let body = body.trim();
    if body.is_empty() {
        "(empty response)".into()
    } else {
        body.chars().take(500).collect()
    }
}

/// The error and its sources, joined (`reqwest` hides the useful part in the chain).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn transient_reqwest(e: &reqwest::Error) -> bool {
    // A name that does not resolve will not resolve a second later either.
    let dns = chain(e).contains("dns error");
    !dns && (e.is_connect() || e.is_timeout() || e.is_body() || e.is_request() || e.is_decode())
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        Failure {
            retryable: transient_reqwest(&e),
            message: chain(&e),
            stalled: e
                .is_timeout()
                .then(|| e.url().map(|u| u.to_string()).unwrap_or_default()),
            attempts: 1,
        }
    }
}

/// Runs `op` up to `attempts` times while it fails with a retryable failure, sleeping 250 ms,
/// 500 ms, 1 s, … (at most 4 s) between tries; attempts that stalled count against
/// [`MAX_STALLED_ATTEMPTS`] as well.
pub(crate) async fn with_retries<T, F, Fut>(
    attempts: u32,
    what: &str,
    mut op: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut delay = Duration::from_millis(250);
    let mut tried = 1;
    let mut stalls = 0;
    loop {
        let result = op().await;
        if let Err(f) = &result
            && f.stalled.is_some()
        {
            stalls += 1;
        }
        match result {
            Ok(v) => return Ok(v),
            Err(f) if f.retryable && tried < attempts.max(1) && stalls < MAX_STALLED_ATTEMPTS => {
                tracing::warn!(%what, attempt = tried, error = %f.message, "retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(4));
                tried += 1;
            }
            Err(mut f) => {
                if tried > 1 {
                    f.message = format!("{} (after {tried} attempts)", f.message);
                }
                f.attempts = tried;
                return Err(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn registry_messages_are_extracted() {
        let body = r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:ab"}]}"#;
        assert_eq!(
            registry_message(body),
            r#"BLOB_UNKNOWN blob unknown to registry ("sha256:ab")"#
        );
        assert_eq!(registry_message("  plain text \n"), "plain text");
        assert_eq!(registry_message(""), "(empty response)");
        assert!(Failure::status(503, "").retryable);
        assert!(Failure::status(429, "").retryable);
        assert!(!Failure::status(404, "").retryable);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_a_bounded_number_of_times() {
        let calls = Cell::new(0);
        let r: Result<(), Failure> = with_retries(3, "x", || {
            calls.set(calls.get() + 1);
            async { Err(Failure::status(502, "bad gateway")) }
        })
        .await;
        assert_eq!(calls.get(), 3);
        let msg = r.unwrap_err().message;
        assert!(
            msg.contains("HTTP 502: bad gateway") && msg.contains("3 attempts"),
            "{msg}"
        );

        let calls = Cell::new(0);
        let r = with_retries(5, "x", || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(Failure::status(500, ""))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);

        let calls = Cell::new(0);
        let r: Result<(), Failure> = with_retries(5, "x", || {
            calls.set(calls.get() + 1);
            async { Err(Failure::status(401, "")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 1, "4xx is not retried");
    }
}
