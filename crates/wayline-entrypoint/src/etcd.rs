//! etcd's v3 JSON gateway, as the entrypoint uses it: a `POST` over HTTP/1.1 with hyper's
//! client (already linked for the URL tunnel, so no etcd client library and no second HTTP
//! implementation), and the gateway's answers as typed serde structs (keys and values are
//! base64).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

/// Most bytes read for one answer or one watch message (etcd's own default request limit is
/// 1.5 MiB).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// `host:port` of an `http://host:port` endpoint.
pub fn authority(endpoint: &str) -> Result<&str, String> {
    endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .ok_or_else(|| "only http:// endpoints are supported".to_owned())
}

/// A key or value as the gateway wants it: base64.
pub fn encode(text: &str) -> String {
    B64.encode(text)
}

/// A JSON request body naming `key`.
pub fn key_body(key: &str) -> serde_json::Value {
    serde_json::json!({ "key": encode(key) })
}

/// An answer whose body is still arriving, with the connection driving it.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, read as it comes.
    pub body: Incoming,
    /// The connection serves this one answer and ends with it.
    _conn: AbortOnDrop,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `POST path` with a JSON `body` to the gateway at `endpoint` (`http://host:port`), on a
/// connection of its own; `limit` bounds the wait for the answer's head.
pub async fn post(
    endpoint: &str,
    path: &str,
    body: &serde_json::Value,
    limit: Duration,
) -> Result<Answer, String> {
    let authority = authority(endpoint)?;
    let request = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let answer = async {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let conn = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Answer {
            status: response.status().as_u16(),
            body: response.into_body(),
            _conn: conn,
        })
    };
    tokio::time::timeout(limit, answer)
        .await
        .map_err(|_| format!("no answer within {}s", limit.as_secs()))?
}

/// Reads the whole body of `answer`, at most [`MAX_MESSAGE`] bytes.
pub async fn read_all(answer: Answer) -> Result<(u16, Bytes), String> {
    let Answer {
        status,
        body,
        _conn,
    } = answer;
    let body = Limited::new(body, MAX_MESSAGE)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_long("answer")
            } else {
                e.to_string()
            }
        })?;
    Ok((status, body.to_bytes()))
}

/// The error for an answer or a watch message (`what`) over [`MAX_MESSAGE`].
pub fn too_long(what: &str) -> String {
    format!("an etcd {what} is over {MAX_MESSAGE} bytes")
}

/// The gateway's answer to `POST /v3/kv/range`.
#[derive(Debug, Default, Deserialize)]
pub struct RangeAnswer {
    /// The keys found: none, or the one asked for.
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

/// One key and its value, both base64.
#[derive(Debug, Default, Deserialize)]
pub struct KeyValue {
    /// The value; etcd leaves the field out when it is empty.
    #[serde(default)]
    pub value: String,
}

/// The gateway's error answer (non-200), or the `error` of a watch message.
#[derive(Debug, Default, Deserialize)]
pub struct GatewayError {
    /// What went wrong, in etcd's words.
    #[serde(default)]
    pub message: String,
}

/// A non-200 answer's body: `{"error": "…", "code": N, "message": "…"}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// What a non-200 answer says: its `message`, else its `error`, else nothing.
pub fn error_text(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorAnswer>(body)
        .ok()
        .and_then(|e| e.message.or(e.error))
        .unwrap_or_default()
}

/// Decodes a base64 key or value.
pub fn decode(b64: &str) -> Result<Vec<u8>, base64::DecodeError> {
    B64.decode(b64.as_bytes())
}
