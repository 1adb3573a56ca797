//! etcd watches behind `dynamic("etcd", …)` values: a change to a watched key makes the config
//! loop re-read its values at once rather than at the next interval refresh.
//!
//! Each watch is a `POST /v3/watch` on etcd's JSON gateway, answered by one long-lived chunked
//! response carrying a JSON object per message (created, events, progress, canceled). A watch
//! that drops is re-created with jittered backoff; once it is created again the values are
//! re-read, since a change may have happened in between. Watches ask for progress
//! notifications (every 10 minutes on an idle etcd by default), so one that stays silent far
//! longer is taken for dead (a peer gone without closing) and re-created; until then the
//! interval refresh is the safety net.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::dynamic::{EtcdKey, etcd_authority, json_string_field};

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
    conn: TcpStream,
    decoder: WatchDecoder,
}

impl WatchConn {
    /// Connects to `endpoint` and asks it to watch `key`.
    pub async fn open(endpoint: &str, key: &str) -> Result<Self, String> {
        let authority = etcd_authority(endpoint).map_err(|e| e.to_string())?;
        let body = format!(
            "{{\"create_request\":{{\"key\":\"{}\",\"progress_notify\":true}}}}",
            B64.encode(key)
        );
        let request = format!(
            "POST /v3/watch HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut conn = TcpStream::connect(authority).await?;
            conn.write_all(request.as_bytes()).await?;
            Ok::<_, std::io::Error>(conn)
        })
        .await
        .map_err(|_| format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
        Ok(WatchConn {
            conn,
            decoder: WatchDecoder::default(),
        })
    }

    /// The next event; an error once the watch is over (closed, canceled, failed).
    pub async fn next(&mut self) -> Result<WatchEvent, String> {
        let mut buf = [0u8; 8192];
        loop {
            while let Some(object) = self.decoder.next_object()? {
                if let Some(event) = classify(&object)? {
                    return Ok(event);
                }
            }
            if self.decoder.ended() {
                return Err("etcd ended the watch".into());
            }
            let n = tokio::time::timeout(IDLE_TIMEOUT, self.conn.read(&mut buf))
                .await
                .map_err(|_| format!("silent for {} minutes", IDLE_TIMEOUT.as_secs() / 60))?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("etcd closed the connection".into());
            }
            self.decoder.feed(&buf[..n])?;
        }
    }
}

/// What one JSON message of a watch response means: `None` for those that change nothing
/// (progress notifications).
pub fn classify(object: &str) -> Result<Option<WatchEvent>, String> {
    let top = object
        .trim_start()
        .strip_prefix('{')
        .unwrap_or("")
        .trim_start();
    if top.starts_with("\"error\"") {
        let msg = json_string_field(object, "message").unwrap_or_else(|| object.to_owned());
        return Err(format!("watch failed: {msg}"));
    }
    if json_true(object, "canceled") {
        let reason = json_string_field(object, "cancel_reason").unwrap_or_default();
        return Err(format!("watch canceled: {reason}"));
    }
    if object.contains("\"events\"") {
        return Ok(Some(WatchEvent::Changed));
    }
    if json_true(object, "created") {
        return Ok(Some(WatchEvent::Created));
    }
    Ok(None)
}

/// Whether `"field": true` is in the JSON text (etcd's keys and values are base64, so a match
/// inside a string is impossible).
fn json_true(json: &str, field: &str) -> bool {
    let pat = format!("\"{field}\"");
    json.match_indices(&pat).any(|(at, _)| {
        json[at + pat.len()..]
            .trim_start()
            .strip_prefix(':')
            .is_some_and(|rest| rest.trim_start().starts_with("true"))
    })
}

/// Turns the bytes of a streamed HTTP/1.1 response into the JSON objects of its body, however
/// the bytes were split on the way.
#[derive(Debug, Default)]
pub struct WatchDecoder {
    raw: Vec<u8>,
    body: Vec<u8>,
    stage: Stage,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    #[default]
    Head,
    Chunked,
    Identity,
    Ended,
}

/// Longest HTTP head a watch response may have.
pub const MAX_WATCH_HEAD: usize = 64 * 1024;
/// Most body bytes buffered for one watch message (etcd's own default request limit is 1.5 MiB).
pub const MAX_WATCH_MESSAGE: usize = 4 * 1024 * 1024;

fn head_too_long() -> String {
    format!("the etcd watch response's HTTP head is over {MAX_WATCH_HEAD} bytes")
}

fn message_too_long() -> String {
    format!("an etcd watch message is over {MAX_WATCH_MESSAGE} bytes")
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl WatchDecoder {
    /// Takes in more of the response.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.raw.extend_from_slice(bytes);
        loop {
            match self.stage {
                Stage::Head => {
                    let Some(end) = find(&self.raw, b"\r\n\r\n") else {
                        if self.raw.len() > MAX_WATCH_HEAD {
                            return Err(head_too_long());
                        }
                        return Ok(());
                    };
                    if end > MAX_WATCH_HEAD {
                        return Err(head_too_long());
                    }
                    let head = String::from_utf8_lossy(&self.raw[..end]).into_owned();
                    self.raw.drain(..end + 4);
                    let status: u16 = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| "malformed HTTP response".to_owned())?;
                    if status != 200 {
                        return Err(format!("HTTP {status}"));
                    }
                    let chunked = head.lines().any(|l| {
                        let l = l.to_ascii_lowercase();
                        l.starts_with("transfer-encoding:") && l.contains("chunked")
                    });
                    self.stage = if chunked {
                        Stage::Chunked
                    } else {
                        Stage::Identity
                    };
                }
                Stage::Chunked => {
                    let Some(eol) = find(&self.raw, b"\r\n") else {
                        if self.raw.len() > 1024 {
                            return Err("malformed chunk".into());
                        }
                        return Ok(());
                    };
                    let size = std::str::from_utf8(&self.raw[..eol])
                        .ok()
                        .and_then(|l| l.split(';').next())
                        .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                        .ok_or_else(|| "malformed chunk".to_owned())?;
                    if size == 0 {
                        self.stage = Stage::Ended;
                        return Ok(());
                    }
                    if size > MAX_WATCH_MESSAGE.saturating_sub(self.body.len()) {
                        return Err(message_too_long());
                    }
                    let end = eol + 2 + size;
                    if self.raw.len() < end + 2 {
                        return Ok(());
                    }
                    if &self.raw[end..end + 2] != b"\r\n" {
                        return Err("malformed chunk".into());
                    }
                    self.body.extend_from_slice(&self.raw[eol + 2..end]);
                    self.raw.drain(..end + 2);
                }
                Stage::Identity => {
                    if self.body.len() + self.raw.len() > MAX_WATCH_MESSAGE {
                        return Err(message_too_long());
                    }
                    self.body.append(&mut self.raw);
                    return Ok(());
                }
                Stage::Ended => return Ok(()),
            }
        }
    }

    /// Whether the response is complete (a chunked body's last chunk arrived).
    pub fn ended(&self) -> bool {
        self.stage == Stage::Ended
    }

    /// The next complete top-level JSON object of the body, if one arrived.
    pub fn next_object(&mut self) -> Result<Option<String>, String> {
        let start = self
            .body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(self.body.len());
        self.body.drain(..start);
        match self.body.first() {
            None => return Ok(None),
            Some(b'{') => {}
            Some(_) => {
                let text = String::from_utf8_lossy(&self.body).into_owned();
                return Err(format!("unexpected watch response: {text}"));
            }
        }
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for (i, &b) in self.body.iter().enumerate() {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        let object: Vec<u8> = self.body.drain(..=i).collect();
                        return Ok(Some(String::from_utf8_lossy(&object).into_owned()));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
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

    /// A watch response as etcd 3.4 sends it: created, a put, a progress notification, a delete,
    /// one JSON object and newline per chunk.
    fn response() -> String {
        let chunk = |json: &str| format!("{:x}\r\n{json}\n\r\n", json.len() + 1);
        [
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
            chunk(r#"{"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"1","raft_term":"2"},"created":true}}"#),
            chunk(r#"{"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"2","raft_term":"2"},"events":[{"kv":{"key":"L2FwcC9kYg==","create_revision":"2","mod_revision":"2","version":"1","value":"djE="}}]}}"#),
            chunk(r#"{"result":{"header":{}}}"#),
            chunk(r#"{"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"3","raft_term":"2"},"events":[{"type":"DELETE","kv":{"key":"L2FwcC9kYg==","mod_revision":"3"}}]}}"#),
            "0\r\n\r\n".to_owned(),
        ]
        .concat()
    }

    fn events(pieces: &[&[u8]]) -> (Vec<WatchEvent>, bool) {
        let mut d = WatchDecoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            d.feed(piece).unwrap();
            while let Some(o) = d.next_object().unwrap() {
                out.extend(classify(&o).unwrap());
            }
        }
        (out, d.ended())
    }

    #[test]
    fn a_watch_response_decodes_however_it_is_split() {
        let response = response();
        let bytes = response.as_bytes();
        let want = vec![
            WatchEvent::Created,
            WatchEvent::Changed,
            WatchEvent::Changed,
        ];
        assert_eq!(events(&[bytes]), (want.clone(), true));
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(events(&singles), (want.clone(), true));
        for at in 0..bytes.len() {
            let (a, b) = bytes.split_at(at);
            assert_eq!(events(&[a, b]), (want.clone(), true), "split at {at}");
        }
    }

    #[test]
    fn errors_cancellations_and_bad_responses() {
        assert_eq!(
            classify(
                r#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
            ),
            Err("watch failed: etcdserver: no leader".into())
        );
        assert_eq!(
            classify(
                r#"{"result":{"header":{},"canceled":true,"cancel_reason":"mvcc: required revision has been compacted"}}"#
            ),
            Err("watch canceled: mvcc: required revision has been compacted".into())
        );
        assert_eq!(
            classify(r#"{"result":{"header":{},"created":false}}"#),
            Ok(None)
        );
        let mut d = WatchDecoder::default();
        assert_eq!(
            d.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            Err("HTTP 404".into())
        );
        let mut d = WatchDecoder::default();
        assert_eq!(
            d.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err("malformed chunk".into())
        );
        let mut d = WatchDecoder::default();
        d.feed(b"HTTP/1.1 200 OK\r\n\r\n<html>").unwrap();
        assert_eq!(
            d.next_object(),
            Err("unexpected watch response: <html>".into())
        );
    }

    #[test]
    fn strings_with_braces_do_not_end_an_object() {
        let mut d = WatchDecoder::default();
        d.feed(b"HTTP/1.1 200 OK\r\n\r\n{\"a\":\"}{\\\"\"}{\"b\":1}")
            .unwrap();
        assert_eq!(d.next_object().unwrap().as_deref(), Some(r#"{"a":"}{\""}"#));
        assert_eq!(d.next_object().unwrap().as_deref(), Some(r#"{"b":1}"#));
        assert_eq!(d.next_object().unwrap(), None);
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
