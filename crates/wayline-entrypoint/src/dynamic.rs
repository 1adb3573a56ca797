//! Dynamic config values (`dynamic("file", {path = …})`, `dynamic("etcd", {key = …})`), resolved
//! inside the entrypoint so secrets never pass through the server.
//!
//! etcd is read over its v3 JSON gateway (`POST /v3/kv/range`, base64 keys and values), see
//! [`crate::etcd`].

use std::collections::HashMap;
use std::time::Duration;

use wayline_proto::v1::ConfigSource;

use crate::etcd;

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
    etcd::authority(endpoint).map_err(|error| DynamicError::Etcd {
        endpoint: endpoint.to_owned(),
        error,
    })
}

/// Reads `key` from the etcd v3 gateway at `endpoint` (`http://host:port`).
pub async fn etcd_get(endpoint: &str, key: &str) -> Result<String, DynamicError> {
    let err = |error: String| DynamicError::Etcd {
        endpoint: endpoint.to_owned(),
        error,
    };
    etcd_authority(endpoint)?;
    let read = async {
        let answer = etcd::post(endpoint, "/v3/kv/range", &etcd::key_body(key), TIMEOUT).await?;
        etcd::read_all(answer).await
    };
    let (status, body) = tokio::time::timeout(TIMEOUT, read)
        .await
        .map_err(|_| err(format!("no answer within {}s", TIMEOUT.as_secs())))?
        .map_err(err)?;
    range_value(status, &body, key, endpoint)
}

/// The value in the gateway's answer (`status`, `body`) to a range request for `key`.
pub fn range_value(
    status: u16,
    body: &[u8],
    key: &str,
    endpoint: &str,
) -> Result<String, DynamicError> {
    let err = |error: String| DynamicError::Etcd {
        endpoint: endpoint.to_owned(),
        error,
    };
    if status != 200 {
        return Err(err(format!("HTTP {status}: {}", etcd::error_text(body))));
    }
    let answer: etcd::RangeAnswer =
        serde_json::from_slice(body).map_err(|e| err(format!("unexpected answer: {e}")))?;
    let Some(kv) = answer.kvs.first() else {
        return Err(DynamicError::NotFound {
            key: key.to_owned(),
            endpoint: endpoint.to_owned(),
        });
    };
    let bytes = etcd::decode(&kv.value).map_err(|e| err(format!("bad base64 value: {e}")))?;
    String::from_utf8(bytes).map_err(|_| err(format!("value of {key:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(status: u16, body: &str) -> Result<String, DynamicError> {
        range_value(status, body.as_bytes(), "/k", "http://e:1")
    }

    #[test]
    fn range_answers() {
        let found =
            r#"{"header":{"revision":"3"},"kvs":[{"key":"L2s=","value":"YmFy"}],"count":"1"}"#;
        assert_eq!(value(200, found), Ok("bar".into()));
        // etcd leaves an empty value out.
        assert_eq!(value(200, r#"{"kvs":[{"key":"L2s="}]}"#), Ok(String::new()));
        assert_eq!(
            value(200, r#"{"header":{"revision":"3"}}"#)
                .unwrap_err()
                .to_string(),
            "key \"/k\" not found in etcd at http://e:1"
        );
        assert_eq!(
            value(200, "<html>").unwrap_err().to_string(),
            "etcd at http://e:1: unexpected answer: expected value at line 1 column 1"
        );
        assert_eq!(
            value(200, r#"{"kvs":[{"value":"!!"}]}"#)
                .unwrap_err()
                .to_string(),
            "etcd at http://e:1: bad base64 value: Invalid symbol 33, offset 0."
        );
    }

    /// The hand-written scanner turned `\n` into `n` (and `\u00e9` into `u00e9`).
    #[test]
    fn error_answers_keep_their_escapes() {
        assert_eq!(
            value(
                400,
                r#"{"error":"etcdserver: bad\nkey","code":3,"message":"etcdserver: bad\nkey \"caf\u00e9\""}"#
            )
            .unwrap_err()
            .to_string(),
            "etcd at http://e:1: HTTP 400: etcdserver: bad\nkey \"café\""
        );
        assert_eq!(
            value(503, r#"{"error":"no leader"}"#)
                .unwrap_err()
                .to_string(),
            "etcd at http://e:1: HTTP 503: no leader"
        );
        assert_eq!(
            value(502, "").unwrap_err().to_string(),
            "etcd at http://e:1: HTTP 502: "
        );
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
