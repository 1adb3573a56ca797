//! etcd watches behind `dynamic("etcd", …)` values: a change to a watched key makes the config
//! loop re-read its values at once rather than at the next interval refresh.
//!
//! Each watch is a `POST /v3/watch` on etcd's JSON gateway, answered by one long-lived
//! (chunked, which hyper decodes) response carrying a JSON object per message (created,
//! events, progress, canceled), parsed with serde however the bytes were split. A watch
//! that drops is re-created with jittered backoff; once it is created again the values are
//! re-read, since a change may have happened in between. Watches ask for progress
//! notifications (every 10 minutes on an idle etcd by default), so one that stays silent far
//! longer is taken for dead (a peer gone without closing) and re-created; until then the
//! interval refresh is the safety net.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::dynamic::EtcdKey;
use crate::etcd::{self, MAX_MESSAGE};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The watch's longest reconnect delay (plus jitter): etcd outages are rarer than server
/// restarts, and a missed change is read again when the watch is back.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// Silence after which a watch is presumed dead: well past etcd's default progress interval.
const IDLE_TIMEOUT: Duration = Duration::from_mins(15);

/// The set of keys being watched; dropping it stops every watch.
#[derive(Debug, Default)]
pub struct Watches {
    tasks: HashMap<EtcdKey, JoinHandle<()>>,
    fired: Arc<Notify>,
}

impl Watches {
    /// Watches exactly `keys`: starts the new ones, stops those no longer wanted.
    pub fn set(&mut self, keys: BTreeSet<EtcdKey>) {
        self.tasks.retain(|k, task| {
            let keep = keys.contains(k);
            if !keep {
                task.abort();
            }
            keep
        });
        for key in keys {
            if !self.tasks.contains_key(&key) && !key.endpoints.is_empty() {
                let task = tokio::spawn(keep_watching(key.clone(), self.fired.clone()));
                self.tasks.insert(key, task);
            }
        }
    }

    /// Completes when a watched key changed, or a watch was (re)created and a change may have
    /// gone unseen. Several events before the call count as one.
    pub async fn fired(&self) {
        self.fired.notified().await;
    }

    /// How many keys are watched.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

/// Watches one key for the life of the task, across the cluster's endpoints, re-creating the
/// watch with backoff whenever it ends.
async fn keep_watching(key: EtcdKey, fired: Arc<Notify>) {
    let mut backoff = crate::backoff::Backoff::up_to(MAX_BACKOFF);
    let mut failures = 0u32;
    for endpoint in key.endpoints.iter().cycle() {
        let error = match WatchConn::open(endpoint, &key.key).await {
            Ok(mut conn) => loop {
                match conn.next().await {
                    Ok(WatchEvent::Created) => {
                        if failures > 0 {
                            tracing::info!("etcd watch of {:?} at {endpoint} restored", key.key);
                        }
                        failures = 0;
                        backoff.reset();
                        fired.notify_one();
                    }
                    Ok(WatchEvent::Changed) => {
                        tracing::debug!(key = %key.key, "etcd key changed");
                        fired.notify_one();
                    }
                    Err(e) => break e,
                }
            },
            Err(e) => e,
        };
        failures += 1;
        let wait = backoff.next_delay();
        // Say it once, then quietly until it works again (resolving reports the value itself).
        if failures == 1 {
            tracing::warn!(
                "etcd watch of {:?} at {endpoint}: {error}; watching again in {wait:?}",
                key.key
            );
        } else {
            tracing::debug!(key = %key.key, %endpoint, %error, "etcd watch still failing");
        }
        tokio::time::sleep(wait).await;
    }
}

/// What a watch reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEvent {
    /// The watch exists: changes from now on are reported.
    Created,
    /// The key was put or deleted.
    Changed,
}

/// One watch over one HTTP/1.1 connection.
#[derive(Debug)]
pub struct WatchConn {
    answer: etcd::Answer,
    decoder: WatchDecoder,
}

impl WatchConn {
    /// Connects to `endpoint` and asks it to watch `key`.
    pub async fn open(endpoint: &str, key: &str) -> Result<Self, String> {
        let body = serde_json::json!({
            "create_request": { "key": etcd::encode(key), "progress_notify": true }
        });
        let answer = etcd::post(endpoint, "/v3/watch", &body, CONNECT_TIMEOUT).await?;
        if answer.status != 200 {
            return Err(format!("HTTP {}", answer.status));
        }
        Ok(WatchConn {
            answer,
            decoder: WatchDecoder::default(),
        })
    }

    /// The next event; an error once the watch is over (closed, canceled, failed).
    pub async fn next(&mut self) -> Result<WatchEvent, String> {
        loop {
            while let Some(message) = self.decoder.next_message()? {
                if let Some(event) = classify(&message)? {
                    return Ok(event);
                }
            }
            let frame = tokio::time::timeout(IDLE_TIMEOUT, self.answer.body.frame())
                .await
                .map_err(|_| format!("silent for {} minutes", IDLE_TIMEOUT.as_secs() / 60))?;
            match frame {
                None => return Err("etcd ended the watch".into()),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.feed(&data)?;
                    }
                }
            }
        }
    }
}

/// One message of a watch response: a `result`, or an `error` from the gateway.
#[derive(Debug, Default, Deserialize)]
pub struct WatchMessage {
    #[serde(default)]
    result: Option<WatchResult>,
    #[serde(default)]
    error: Option<etcd::GatewayError>,
}

#[derive(Debug, Default, Deserialize)]
struct WatchResult {
    #[serde(default)]
    created: bool,
    #[serde(default)]
    canceled: bool,
    #[serde(default)]
    cancel_reason: String,
    /// Puts and deletes; their content does not matter (the values are read again).
    #[serde(default)]
    events: Vec<serde::de::IgnoredAny>,
}

/// What one message of a watch response means: `None` for those that change nothing
/// (progress notifications).
pub fn classify(message: &WatchMessage) -> Result<Option<WatchEvent>, String> {
    if let Some(e) = &message.error {
        return Err(format!("watch failed: {}", e.message));
    }
    let Some(result) = &message.result else {
        return Ok(None);
    };
    if result.canceled {
        return Err(format!("watch canceled: {}", result.cancel_reason));
    }
    if !result.events.is_empty() {
        return Ok(Some(WatchEvent::Changed));
    }
    Ok(result.created.then_some(WatchEvent::Created))
}

/// Turns the body of a watch response, however its bytes were split, into its messages.
#[derive(Debug, Default)]
pub struct WatchDecoder {
    body: Vec<u8>,
}

fn message_too_long() -> String {
    etcd::too_long("watch message")
}

impl WatchDecoder {
    /// Takes in more of the body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.body.len() + bytes.len() > MAX_MESSAGE {
            return Err(message_too_long());
        }
        self.body.extend_from_slice(bytes);
        Ok(())
    }

    /// The next complete message of the body, if one arrived.
    pub fn next_message(&mut self) -> Result<Option<WatchMessage>, String> {
        let mut messages =
            serde_json::Deserializer::from_slice(&self.body).into_iter::<WatchMessage>();
        match messages.next() {
            None => {
                // Only whitespace so far.
                self.body.clear();
                Ok(None)
            }
            Some(Ok(message)) => {
                let used = messages.byte_offset();
                self.body.drain(..used);
                Ok(Some(message))
            }
            Some(Err(e)) if e.is_eof() => Ok(None),
            Some(Err(e)) => {
                let text = String::from_utf8_lossy(&self.body[..self.body.len().min(200)]);
                Err(format!("unexpected watch response ({e}): {text}"))
            }
        }
    }
}

/// The etcd keys behind the etcd values among `vars` (values whose settings are incomplete are
/// left out: resolving them reports why).
pub fn keys_of(
    vars: &[wayline_proto::v1::ConfigVar],
    sources: &[wayline_proto::v1::ConfigSource],
) -> BTreeSet<EtcdKey> {
    use wayline_proto::v1::config_var::Value;
    vars.iter()
        .filter(|v| !v.internal)
        .filter_map(|v| match &v.value {
            Some(Value::Dynamic(d)) if d.from == "etcd" => {
                crate::dynamic::etcd_key(&d.config, sources).ok()
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watch response's body as etcd 3.4 sends it: created, a put, a progress
    /// notification, a delete, one JSON object and newline per chunk.
    fn body() -> String {
        [
            r#"{"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"1","raft_term":"2"},"created":true}}"#,
            r#"{"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"2","raft_term":"2"},"events":[{"kv":{"key":"L2FwcC9kYg==","create_revision":"2","mod_revision":"2","version":"1","value":"djE="}}]}}"#,
            r#"{"result":{"header":{}}}"#,
            r#"{"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"3","raft_term":"2"},"events":[{"type":"DELETE","kv":{"key":"L2FwcC9kYg==","mod_revision":"3"}}]}}"#,
        ]
        .map(|m| format!("{m}\n"))
        .concat()
    }

    fn events(pieces: &[&[u8]]) -> Vec<WatchEvent> {
        let mut d = WatchDecoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            d.feed(piece).unwrap();
            while let Some(m) = d.next_message().unwrap() {
                out.extend(classify(&m).unwrap());
            }
        }
        out
    }

    fn one(json: &str) -> Result<Option<WatchEvent>, String> {
        classify(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn a_watch_response_decodes_however_it_is_split() {
        let body = body();
        let bytes = body.as_bytes();
        let want = vec![
            WatchEvent::Created,
            WatchEvent::Changed,
            WatchEvent::Changed,
        ];
        assert_eq!(events(&[bytes]), want);
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(events(&singles), want);
        for at in 0..bytes.len() {
            let (a, b) = bytes.split_at(at);
            assert_eq!(events(&[a, b]), want, "split at {at}");
        }
    }

    #[test]
    fn errors_cancellations_and_bad_responses() {
        assert_eq!(
            one(
                r#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
            ),
            Err("watch failed: etcdserver: no leader".into())
        );
        assert_eq!(
            one(
                r#"{"result":{"header":{},"canceled":true,"cancel_reason":"mvcc: required revision has been compacted"}}"#
            ),
            Err("watch canceled: mvcc: required revision has been compacted".into())
        );
        assert_eq!(one(r#"{"result":{"header":{},"created":false}}"#), Ok(None));
        // Escapes in etcd's messages come through as what they stand for.
        assert_eq!(
            one(r#"{"error":{"message":"line one\nline \"two\""}}"#),
            Err("watch failed: line one\nline \"two\"".into())
        );
        let mut d = WatchDecoder::default();
        d.feed(b"<html>").unwrap();
        assert_eq!(
            d.next_message().unwrap_err(),
            "unexpected watch response (expected value at line 1 column 1): <html>"
        );
    }

    #[test]
    fn strings_with_braces_do_not_end_a_message() {
        let mut d = WatchDecoder::default();
        d.feed(br#"{"result":{"cancel_reason":"}{\"","canceled":true}}{"result":{"created":"#)
            .unwrap();
        assert_eq!(
            classify(&d.next_message().unwrap().unwrap()),
            Err("watch canceled: }{\"".into())
        );
        assert!(d.next_message().unwrap().is_none());
        d.feed(b"true}}").unwrap();
        assert_eq!(
            classify(&d.next_message().unwrap().unwrap()),
            Ok(Some(WatchEvent::Created))
        );
    }

    #[test]
    fn keys_of_etcd_values_only_once_each() {
        use wayline_proto::v1::{ConfigVar, DynamicValue, config_var::Value};
        let etcd = |name: &str, key: &str| ConfigVar {
            name: name.into(),
            value: Some(Value::Dynamic(DynamicValue {
                from: "etcd".into(),
                config: [
                    ("key".to_owned(), key.to_owned()),
                    ("endpoints".to_owned(), "http://a:1, http://b:2".to_owned()),
                ]
                .into(),
            })),
            ..ConfigVar::default()
        };
        let vars = vec![
            etcd("A", "/k1"),
            etcd("B", "/k1"),
            etcd("C", "/k2"),
            ConfigVar {
                value: Some(Value::Static("x".into())),
                ..ConfigVar::default()
            },
        ];
        let keys: Vec<_> = keys_of(&vars, &[]).into_iter().map(|k| k.key).collect();
        assert_eq!(keys, ["/k1", "/k2"]);
        let first = keys_of(&vars, &[]).into_iter().next().unwrap();
        assert_eq!(first.endpoints, ["http://a:1", "http://b:2"]);
    }
}
