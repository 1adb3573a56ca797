//! Dynamic config values (`dynamic("file", {path = …})`, `dynamic("etcd", {key = …})`), resolved
//! inside the entrypoint so secrets never pass through the server.
//!
//! etcd is read over its v3 JSON gateway (`POST /v3/kv/range`, base64 keys and values) with a
//! tiny HTTP/1.1 client, which keeps an etcd client library out of the binary.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wayline_proto::v1::ConfigSource;

/// The endpoint used when neither the value nor a config source names one.
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:2379";
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a dynamic value has no value. Shown to users in `wayline logs`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DynamicError {
    /// The sourcer is not one this entrypoint knows.
    #[error("unknown config sourcer {0:?}: the entrypoint resolves \"file\" and \"etcd\"")]
    UnknownSource(String),
    /// A required setting is missing.
    #[error("{source_type} value needs {key:?} in its config")]
    Missing {
        source_type: &'static str,
        key: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    File { path: String, error: String },
    /// The key does not exist.
    #[error("key {key:?} not found in etcd at {endpoint}")]
    NotFound { key: String, endpoint: String },
    /// etcd could not be reached or answered with an error.
    #[error("etcd at {endpoint}: {error}")]
    Etcd { endpoint: String, error: String },
}

/// Resolves one dynamic value.
pub async fn resolve<S: std::hash::BuildHasher + Sync>(
    from: &str,
    config: &HashMap<String, String, S>,
    sources: &[ConfigSource],
) -> Result<String, DynamicError> {
    match from {
        "file" => {
            let path = config.get("path").ok_or(DynamicError::Missing {
                source_type: "file",
                key: "path",
            })?;
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| DynamicError::File {
                    path: path.clone(),
                    error: e.to_string(),
                })?;
            // A file edited by hand ends with a newline nobody means to put in an env var.
            Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
        }
        "etcd" => {
            let target = etcd_key(config, sources)?;
            // Try each endpoint of a cluster in turn; report the last failure.
            let mut last = None;
            for endpoint in &target.endpoints {
                match etcd_get(endpoint, &target.key).await {
                    Ok(v) => return Ok(v),
                    Err(e @ DynamicError::NotFound { .. }) => return Err(e),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or(DynamicError::Etcd {
                endpoint: String::new(),
                error: "no endpoint".into(),
            }))
        }
        other => Err(DynamicError::UnknownSource(other.to_owned())),
    }
}

/// An etcd key behind a dynamic value, with the endpoints of its cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtcdKey {
    /// `http://host:port` of each member, tried in turn.
    pub endpoints: Vec<String>,
    /// The key.
    pub key: String,
}

/// Where an etcd value lives: its `key`, and the endpoints named by the value (`endpoints` or
/// `endpoint`, comma-separated), else by the latest etcd config source, else [`DEFAULT_ETCD`].
pub fn etcd_key<S: std::hash::BuildHasher>(
    config: &HashMap<String, String, S>,
    sources: &[ConfigSource],
) -> Result<EtcdKey, DynamicError> {
    let key = config.get("key").ok_or(DynamicError::Missing {
        source_type: "etcd",
        key: "key",
    })?;
    let source = sources
        .iter()
        .rev()
        .find(|s| s.r#type == "etcd" && !s.delete);
    let endpoints = config
        .get("endpoints")
        .or_else(|| config.get("endpoint"))
        .or_else(|| {
            source.and_then(|s| {
                s.config
                    .get("endpoints")
                    .or_else(|| s.config.get("endpoint"))
            })
        })
        .map_or(DEFAULT_ETCD, String::as_str);
    Ok(EtcdKey {
        endpoints: endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
        key: key.clone(),
    })
}

/// `host:port` of an `http://host:port` endpoint.
pub fn etcd_authority(endpoint: &str) -> Result<&str, DynamicError> {
    endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .ok_or_else(|| DynamicError::Etcd {
            endpoint: endpoint.to_owned(),
            error: "only http:// endpoints are supported".into(),
        })
}

/// Reads `key` from the etcd v3 gateway at `endpoint` (`http://host:port`).
pub async fn etcd_get(endpoint: &str, key: &str) -> Result<String, DynamicError> {
    let err = |error: String| DynamicError::Etcd {
        endpoint: endpoint.to_owned(),
        error,
    };
    let authority = etcd_authority(endpoint)?;
    let body = format!("{{\"key\":\"{}\"}}", B64.encode(key));
    let request = format!(
        "POST /v3/kv/range HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = tokio::time::timeout(TIMEOUT, async {
        let mut conn = tokio::net::TcpStream::connect(authority).await?;
        conn.write_all(request.as_bytes()).await?;
        let mut out = Vec::new();
        conn.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    })
    .await
    .map_err(|_| err(format!("no answer within {}s", TIMEOUT.as_secs())))?
    .map_err(|e| err(e.to_string()))?;
    let (status, body) =
        parse_http_response(&response).ok_or_else(|| err("malformed HTTP response".into()))?;
    if status != 200 {
        let msg = json_string_field(&body, "message").or_else(|| json_string_field(&body, "error"));
        return Err(err(format!("HTTP {status}: {}", msg.unwrap_or_default())));
    }
    let Some(value) = json_string_field(&body, "value") else {
        // No `kvs` (or a key without a value field, which etcd omits when empty).
        if body.contains("\"kvs\"") {
            return Ok(String::new());
        }
        return Err(DynamicError::NotFound {
            key: key.to_owned(),
            endpoint: endpoint.to_owned(),
        });
    };
    let bytes = B64
        .decode(value.as_bytes())
        .map_err(|e| err(format!("bad base64 value: {e}")))?;
    String::from_utf8(bytes).map_err(|_| err(format!("value of {key:?} is not UTF-8")))
}

/// Splits a complete HTTP/1.1 response into its status and (de-chunked) body.
pub fn parse_http_response(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if !chunked {
        return Some((status, body.to_owned()));
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some((status, out));
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// The first `"field":"…"` string in a JSON text. Enough for etcd's answers, whose strings are
/// base64 or plain messages.
pub fn json_string_field(json: &str, field: &str) -> Option<String> {
    let pat = format!("\"{field}\"");
    let at = json.find(&pat)? + pat.len();
    let rest = json[at..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_http_response(plain), Some((200, "{}".into())));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_http_response(chunked), Some((404, "abcde".into())));
        assert_eq!(parse_http_response(b"garbage"), None);
    }

    #[test]
    fn json_fields() {
        let j = r#"{"header":{"revision":"3"},"kvs":[{"key":"Zm9v","value":"YmFy"}],"count":"1"}"#;
        assert_eq!(json_string_field(j, "value").as_deref(), Some("YmFy"));
        assert_eq!(
            json_string_field(r#"{"error":"a \"b\""}"#, "error").as_deref(),
            Some("a \"b\"")
        );
        assert_eq!(json_string_field(j, "missing"), None);
    }

    #[tokio::test]
    async fn file_values_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        let cfg = HashMap::from([("path".to_owned(), path.display().to_string())]);
        assert_eq!(resolve("file", &cfg, &[]).await.unwrap(), "s3cret");
        let missing = HashMap::from([("path".to_owned(), "/nonexistent/x".to_owned())]);
        assert_eq!(
            resolve("file", &missing, &[])
                .await
                .unwrap_err()
                .to_string(),
            "cannot read /nonexistent/x: No such file or directory (os error 2)"
        );
        assert_eq!(
            resolve("file", &HashMap::<String, String>::new(), &[])
                .await
                .unwrap_err()
                .to_string(),
            "file value needs \"path\" in its config"
        );
        assert_eq!(
            resolve("vault", &HashMap::<String, String>::new(), &[])
                .await
                .unwrap_err()
                .to_string(),
            "unknown config sourcer \"vault\": the entrypoint resolves \"file\" and \"etcd\""
        );
    }

    #[tokio::test]
    async fn unreachable_etcd_is_an_error_not_empty() {
        // A port nothing listens on: bind then drop.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = HashMap::from([
            ("key".to_owned(), "/app/x".to_owned()),
            ("endpoints".to_owned(), format!("http://127.0.0.1:{port}")),
        ]);
        let err = resolve("etcd", &cfg, &[]).await.unwrap_err();
        assert!(matches!(err, DynamicError::Etcd { .. }), "{err}");
    }
}
