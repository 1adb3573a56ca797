//! Log capture: the app's output is tee'd to our own stdout/stderr and into a bounded ring that a
//! shipper drains to the server. The app never waits on the server: when the ring is full the
//! oldest lines go and the count of dropped lines travels with the next batch.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    /// The current set of unresolvable config values, and whether the server still needs it.
    config_errors: Vec<String>,
    config_errors_unsent: bool,
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

    /// Adds lines (emptying `lines`) under one lock, dropping the oldest when full.
    pub fn push_many(&self, lines: &mut Vec<LogLine>) {
        if lines.is_empty() {
            return;
        }
        {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            for line in lines.drain(..) {
                if inner.lines.len() >= self.cap {
                    inner.lines.pop_front();
                    inner.dropped += 1;
                }
                inner.lines.push_back(line);
            }
        }
        self.notify.notify_one();
    }

    /// Counts lines lost before they reached the ring.
    pub fn add_dropped(&self, n: u64) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped += n;
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

    /// Records the current set of unresolvable config values (`NAME: why`); a changed set is
    /// shipped with the next batch, an empty one telling the server that all are fixed.
    pub fn set_config_errors(&self, errors: Vec<String>) {
        {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if inner.config_errors == errors {
                return;
            }
            inner.config_errors = errors;
            inner.config_errors_unsent = true;
        }
        self.notify.notify_one();
    }

    /// Ships the current set again if it is not empty: a new connection's server may not have
    /// it (the server forgets a set when the stream that reported it ends).
    pub fn resend_config_errors(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if !inner.config_errors.is_empty() {
            inner.config_errors_unsent = true;
        }
    }

    /// The set of config errors to ship, if it changed since the last take.
    pub fn take_config_errors(&self) -> Option<Vec<String>> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut inner.config_errors_unsent).then(|| inner.config_errors.clone())
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

/// A piece of the app's output, stamped when it was read.
#[derive(Debug)]
pub struct Chunk {
    stream: log_line::Stream,
    data: Vec<u8>,
    at: Timestamp,
}

/// Bytes of output waiting for the line splitter; past it, new chunks are dropped (and counted).
pub const CHUNK_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// The hand-off from the tee threads to the line splitter, bounded in bytes (an app writing one
/// small line per write makes many tiny chunks; a count bound would drop them needlessly).
#[derive(Debug, Default)]
pub struct ChunkQueue {
    inner: Mutex<QueueInner>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct QueueInner {
    chunks: VecDeque<Chunk>,
    bytes: usize,
    writers: usize,
}

impl ChunkQueue {
    /// A queue that `writers` tees will feed; the splitter stops after they all called `close`.
    pub fn new(writers: usize) -> Arc<Self> {
        Arc::new(ChunkQueue {
            inner: Mutex::new(QueueInner {
                writers,
                ..QueueInner::default()
            }),
            ready: Condvar::new(),
        })
    }

    /// Queues a chunk, or gives it back when the queue is full.
    fn offer(&self, chunk: Chunk) -> Result<(), Chunk> {
        let mut q = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if q.bytes + chunk.data.len() > CHUNK_QUEUE_BYTES {
            return Err(chunk);
        }
        q.bytes += chunk.data.len();
        q.chunks.push_back(chunk);
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// One tee is done.
    pub fn close(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .writers -= 1;
        self.ready.notify_one();
    }

    /// The next chunk; `None` once every tee closed and the queue is empty.
    fn next(&self) -> Option<Chunk> {
        let mut q = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(c) = q.chunks.pop_front() {
                q.bytes -= c.data.len();
                return Some(c);
            }
            if q.writers == 0 {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Copies `src` to `dst` byte for byte and hands each chunk to the line splitter, until `src`
/// ends. Runs on its own thread and does nothing per line: a slow `dst` slows the app exactly
/// as it would without us, and a busy splitter never does (its chunks are dropped and counted).
pub fn tee(
    mut src: impl Read,
    mut dst: impl Write,
    stream: log_line::Stream,
    lines: &ChunkQueue,
    ring: &LogRing,
) {
    let mut buf = vec![0u8; 64 * 1024];
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
        let chunk = Chunk {
            stream,
            data: chunk.to_vec(),
            at: now(),
        };
        if let Err(c) = lines.offer(chunk) {
            // Only under overload, so a plain count is fine (no bytecount dependency).
            #[allow(clippy::naive_bytecount)]
            let lines = c.data.iter().filter(|&&b| b == b'\n').count();
            ring.add_dropped(lines as u64);
        }
    }
    lines.close();
}

/// Splits chunks into lines (per stream, joining lines cut across chunks) and pushes them into
/// `ring`, one lock per chunk. Returns when every tee is done.
pub fn split_lines(chunks: &ChunkQueue, ring: &LogRing) {
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next() {
        let buf = &mut partial[chunk.stream as usize & 1];
        let mut rest = &chunk.data[..];
        while let Some(pos) = rest.iter().position(|&c| c == b'\n') {
            let (head, tail) = rest.split_at(pos);
            if buf.is_empty() {
                out.push(text_line(head, chunk.stream, chunk.at));
            } else {
                buf.extend_from_slice(head);
                out.push(text_line(buf, chunk.stream, chunk.at));
                buf.clear();
            }
            rest = &tail[1..];
        }
        buf.extend_from_slice(rest);
        while buf.len() >= MAX_LINE {
            let tail = buf.split_off(MAX_LINE);
            out.push(text_line(buf, chunk.stream, chunk.at));
            *buf = tail;
        }
        ring.push_many(&mut out);
    }
    for (i, buf) in partial.iter().enumerate() {
        if !buf.is_empty() {
            let stream = if i == 0 {
                log_line::Stream::Stdout
            } else {
                log_line::Stream::Stderr
            };
            out.push(text_line(buf, stream, now()));
        }
    }
    ring.push_many(&mut out);
}

/// Runs [`tee`] and [`split_lines`] together on this thread's input (for tests and tools).
pub fn tee_to_ring(src: impl Read, dst: impl Write, stream: log_line::Stream, ring: &Arc<LogRing>) {
    let queue = ChunkQueue::new(1);
    let splitter = {
        let (ring, queue) = (ring.clone(), queue.clone());
        std::thread::spawn(move || split_lines(&queue, &ring))
    };
    tee(src, dst, stream, &queue, ring);
    let _ = splitter.join();
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn text_line(bytes: &[u8], stream: log_line::Stream, at: Timestamp) -> LogLine {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    LogLine {
        timestamp: Some(at),
        line: String::from_utf8_lossy(bytes).into_owned(),
        source: log_line::Source::App as i32,
        stream: stream as i32,
    }
}

/// Drains `ring` into `tx` until the stream closes, starting (on what is a new connection) with
/// the current config errors if there are any. Batches form by themselves: whatever piled up
/// while the previous send waited goes out together, so a quiet app ships each line at once and
/// a loud one ships large batches.
pub async fn ship(
    ring: Arc<LogRing>,
    tx: mpsc::Sender<EntrypointLogBatch>,
    deployment_id: String,
    instance_id: String,
) {
    ring.resend_config_errors();
    loop {
        let (lines, dropped) = ring.take(MAX_BATCH);
        let config_errors = ring.take_config_errors();
        if lines.is_empty() && dropped == 0 && config_errors.is_none() {
            ring.notified().await;
            continue;
        }
        let batch = EntrypointLogBatch {
            deployment_id: deployment_id.clone(),
            instance_id: instance_id.clone(),
            lines,
            dropped,
            config_errors_set: config_errors.is_some(),
            config_errors: config_errors.unwrap_or_default(),
        };
        if let Err(mpsc::error::SendError(batch)) = tx.send(batch).await {
            ring.unshift(batch.lines, batch.dropped);
            return;
        }
    }
}

#[cfg(test)]
mod tests;
