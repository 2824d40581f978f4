//! What xbuild accepts from a registry: the largest document of each kind, how long a registry
//! may stay silent, and the bounded reads that enforce both.
//!
//! Every response body on the pull path is read through [`read_document`] (a limit per kind of
//! document, checked against `Content-Length` before reading and against the bytes as they
//! arrive) or [`error_text`] (the first [`MAX_ERROR_BODY`] bytes, the rest dropped); blobs are
//! streamed and bounded by their descriptor's size. Nothing reads a body whole without a limit.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// The largest manifest or index xbuild reads: containerd's `MaxManifestSize`, which BuildKit
/// uses through containerd's resolver (`4 * 1048 * 1048` bytes, a little over 4 MiB), so that
/// every image those accept is accepted here.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1048 * 1048;

/// The largest config blob (an image config, or a BuildKit cache config) xbuild fetches and
/// decodes. Configs are read whole into memory; real ones are kilobytes (a cache config of a
/// large build a few MiB), so 16 MiB leaves room without letting a registry claim gigabytes.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// The largest token-server response read (a JSON object carrying a token of a few KiB).
pub const MAX_TOKEN_SIZE: u64 = 1 << 20;

/// How much of an error response is read for its message; the rest is dropped unread.
pub const MAX_ERROR_BODY: u64 = 64 << 10;

/// How long connecting to a registry may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a registry may send nothing, while xbuild waits for a response or in the middle of
/// one, before the attempt is abandoned.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one request for a document (a manifest, an index, a token) may take in all, so
/// that a registry trickling bytes just faster than [`STALL_TIMEOUT`] cannot hold a build.
pub const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Attempts that stalled (hit a timeout) before a request is given up, whatever the number of
/// attempts configured for other transient failures: a registry that stalled twice is down.
pub const MAX_STALLED_ATTEMPTS: u32 = 2;

/// A kind of document read from a registry, each with its own size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Document {
    /// An image manifest, an index or a manifest list ([`MAX_MANIFEST_SIZE`]).
    Manifest,
    /// An image config or a cache config ([`MAX_CONFIG_SIZE`]).
    Config,
    /// A token server's response ([`MAX_TOKEN_SIZE`]).
    Token,
}

impl Document {
    /// The largest such document accepted, in bytes.
    pub fn limit(self) -> u64 {
        match self {
            Document::Manifest => MAX_MANIFEST_SIZE,
            Document::Config => MAX_CONFIG_SIZE,
            Document::Token => MAX_TOKEN_SIZE,
        }
    }

    /// The name of the constant that sets [`limit`](Self::limit), for error messages.
    pub fn limit_name(self) -> &'static str {
        match self {
            Document::Manifest => "MAX_MANIFEST_SIZE",
            Document::Config => "MAX_CONFIG_SIZE",
            Document::Token => "MAX_TOKEN_SIZE",
        }
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Document::Manifest => "manifest",
            Document::Config => "config",
            Document::Token => "token response",
        })
    }
}

/// Why a bounded read stopped.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body is larger than the limit; `declared` is its `Content-Length` when that alone
    /// showed it (nothing was read then).
    TooLarge { declared: Option<u64> },
    /// The transfer failed.
    Transport(reqwest::Error),
}

impl From<reqwest::Error> for BodyError {
    fn from(e: reqwest::Error) -> Self {
        BodyError::Transport(e)
    }
}

/// Reads `res`'s body, at most `kind.limit()` bytes: a larger `Content-Length` is refused
/// before anything is read, and the read stops at the first byte over the limit.
pub(crate) async fn read_document(
    mut res: reqwest::Response,
    kind: Document,
) -> Result<Bytes, BodyError> {
    let limit = kind.limit();
    let declared = res.content_length();
    if let Some(n) = declared
        && n > limit
    {
        return Err(BodyError::TooLarge { declared: Some(n) });
    }
    // Capacity from the declared length only once it is known to be within the limit.
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    while let Some(chunk) = res.chunk().await? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge { declared: None });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The text of an error response: its first [`MAX_ERROR_BODY`] bytes (lossy UTF-8); the rest is
/// not read, and a failed transfer yields what arrived.
pub(crate) async fn error_text(mut res: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        let room = MAX_ERROR_BODY as usize - buf.len();
        if chunk.len() >= room {
            buf.extend_from_slice(&chunk[..room]);
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one response: `head` (status line and headers), then `body` repeated `times`
    /// times (`None`: until the client hangs up). Returns the URL.
    async fn serve(head: &'static str, body: Vec<u8>, times: Option<usize>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut n = 0;
            while times.is_none_or(|t| n < t) {
                if s.write_all(&body).await.is_err() {
                    return;
                }
                n += 1;
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
        });
        url
    }

    async fn get(url: &str) -> reqwest::Response {
        crate::session::http_client()
            .unwrap()
            .get(url)
            .send()
            .await
            .unwrap()
    }

    const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    /// One chunk of 4096 spaces.
    fn chunk() -> Vec<u8> {
        let mut c = b"1000\r\n".to_vec();
        c.extend_from_slice(&[b' '; 4096]);
        c.extend_from_slice(b"\r\n");
        c
    }

    #[tokio::test]
    async fn an_endless_body_stops_at_the_limit() {
        let url = serve(CHUNKED, chunk(), None).await;
        let e = read_document(get(&url).await, Document::Token)
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::TooLarge { declared: None }), "{e:?}");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let url = serve(
            "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n",
            b"{}".to_vec(),
            Some(1),
        )
        .await;
        let e = read_document(get(&url).await, Document::Manifest)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                BodyError::TooLarge {
                    declared: Some(104857600)
                }
            ),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_read_whole() {
        // 256 chunks of 4 KiB: exactly MAX_TOKEN_SIZE.
        let url = serve(CHUNKED, chunk(), Some(256)).await;
        let b = read_document(get(&url).await, Document::Token)
            .await
            .unwrap();
        assert_eq!(b.len() as u64, MAX_TOKEN_SIZE);
    }

    #[tokio::test]
    async fn error_text_keeps_only_the_first_bytes() {
        let url = serve(CHUNKED, chunk(), None).await;
        let text = error_text(get(&url).await).await;
        assert_eq!(text.len() as u64, MAX_ERROR_BODY);
    }

    #[test]
    fn the_manifest_limit_is_containerds() {
        assert_eq!(MAX_MANIFEST_SIZE, 4_393_216);
    }
}
