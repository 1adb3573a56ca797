//! Log capture: the app's output is tee'd to our own stdout/stderr and into a bounded ring that a
//! shipper drains to the server. The app never waits on the server: when the ring is full the
//! oldest lines go and the count of dropped lines travels with the next batch.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::{Notify, mpsc};
use wayline_proto::prost_types::Timestamp;
use wayline_proto::v1::{EntrypointLogBatch, LogLine, log_line};

/// Longest line kept as one entry; longer output is split so one runaway line can't fill memory.
pub const MAX_LINE: usize = 16 * 1024;
/// Most lines per shipped batch.
pub const MAX_BATCH: usize = 4096;

/// The bounded buffer between the app's output and the shipper.
#[derive(Debug)]
pub struct LogRing {
    inner: Mutex<RingInner>,
    notify: Notify,
    cap: usize,
}

#[derive(Debug, Default)]
struct RingInner {
    lines: VecDeque<LogLine>,
    dropped: u64,
}

impl LogRing {
    /// A ring holding at most `cap` lines.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(LogRing {
            inner: Mutex::default(),
            notify: Notify::new(),
            cap: cap.max(1),
        })
    }

    /// Adds a line, dropping the oldest when full. Never blocks on the network.
    pub fn push(&self, line: LogLine) {
        {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if inner.lines.len() >= self.cap {
                inner.lines.pop_front();
                inner.dropped += 1;
            }
            inner.lines.push_back(line);
        }
        self.notify.notify_one();
    }

    /// Takes up to `max` lines and the drop count accumulated since the last take.
    pub fn take(&self, max: usize) -> (Vec<LogLine>, u64) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let n = inner.lines.len().min(max);
        let lines = inner.lines.drain(..n).collect();
        (lines, std::mem::take(&mut inner.dropped))
    }

    /// Puts back a batch that could not be sent, ahead of newer lines, within the bound.
    pub fn unshift(&self, lines: Vec<LogLine>, dropped: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.dropped += dropped;
        for line in lines.into_iter().rev() {
            if inner.lines.len() >= self.cap {
                inner.dropped += 1;
            } else {
                inner.lines.push_front(line);
            }
        }
    }

    /// Lines waiting to be shipped.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lines
            .len()
    }

    /// Whether nothing waits to be shipped (no lines and no drop count).
    pub fn is_empty(&self) -> bool {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.lines.is_empty() && inner.dropped == 0
    }

    /// Waits until a line was pushed since the last wake-up.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// A log line stamped now.
pub fn line(text: String, source: log_line::Source, stream: log_line::Stream) -> LogLine {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    LogLine {
        timestamp: Some(Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }),
        line: text,
        source: source as i32,
        stream: stream as i32,
    }
}

/// Copies `src` to `dst` byte for byte and pushes each complete line into `ring`, until `src`
/// ends. Runs on its own thread: a slow `dst` slows the app exactly as it would without us, and
/// the ring never does.
pub fn tee(mut src: impl Read, mut dst: impl Write, stream: log_line::Stream, ring: &LogRing) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    let mut dst_ok = true;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        // Our own stdout going away (closed pipe) must not stop the app's logs from shipping.
        if dst_ok && dst.write_all(chunk).and_then(|()| dst.flush()).is_err() {
            dst_ok = false;
        }
        let mut rest = chunk;
        while let Some(pos) = memchr_newline(rest) {
            let (head, tail) = rest.split_at(pos);
            if partial.is_empty() {
                push_text(ring, head, stream);
            } else {
                partial.extend_from_slice(head);
                push_text(ring, &partial, stream);
                partial.clear();
            }
            rest = &tail[1..];
        }
        partial.extend_from_slice(rest);
        while partial.len() >= MAX_LINE {
            let tail = partial.split_off(MAX_LINE);
            push_text(ring, &partial, stream);
            partial = tail;
        }
    }
    if !partial.is_empty() {
        push_text(ring, &partial, stream);
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn push_text(ring: &LogRing, bytes: &[u8], stream: log_line::Stream) {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes).into_owned();
    ring.push(line(text, log_line::Source::App, stream));
}

/// Drains `ring` into `tx` until the stream closes. Batches form by themselves: whatever piled
/// up while the previous send waited goes out together, so a quiet app ships each line at once
/// and a loud one ships large batches.
pub async fn ship(
    ring: Arc<LogRing>,
    tx: mpsc::Sender<EntrypointLogBatch>,
    deployment_id: String,
    instance_id: String,
) {
    loop {
        let (lines, dropped) = ring.take(MAX_BATCH);
        if lines.is_empty() && dropped == 0 {
            ring.notified().await;
            continue;
        }
        let batch = EntrypointLogBatch {
            deployment_id: deployment_id.clone(),
            instance_id: instance_id.clone(),
            lines,
            dropped,
        };
        if let Err(mpsc::error::SendError(batch)) = tx.send(batch).await {
            ring.unshift(batch.lines, batch.dropped);
            return;
        }
    }
}

#[cfg(test)]
mod tests;
