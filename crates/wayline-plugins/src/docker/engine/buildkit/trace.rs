//! BuildKit's progress, as the engine streams it: each `moby.buildkit.trace` line carries a
//! base64 `moby.buildkit.v1.StatusResponse` (from BuildKit's `api/services/control/control.proto`;
//! the field numbers are pinned in the tests). The messages are written here by hand with prost's
//! derive, only the fields we read, so no `protoc` and no BuildKit crate.
//!
//! [`Progress`] turns the updates into the lines `docker build --progress=plain` would show: a
//! step (vertex) when it starts, is `CACHED`, is `DONE` or fails, and its log output. What it
//! keeps is bounded: [`MAX_VERTICES`] steps, [`MAX_LOG_LINE`] bytes of an unfinished log line.

use std::collections::HashMap;

use base64::Engine as _;
use prost::Message;
use prost_types::Timestamp;

/// The steps remembered by digest; the updates of any further ones are not shown.
pub const MAX_VERTICES: usize = 4096;
/// An unfinished log line longer than this is shown as it is, cut there.
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// One progress update (`moby.buildkit.v1.StatusResponse`; field 4, warnings, is skipped).
#[derive(Clone, PartialEq, Message)]
pub struct StatusResponse {
    /// Steps whose state changed.
    #[prost(message, repeated, tag = "1")]
    pub vertexes: Vec<Vertex>,
    /// Progress of transfers inside steps (not shown).
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<VertexStatus>,
    /// Output of steps (a RUN's stdout and stderr).
    #[prost(message, repeated, tag = "3")]
    pub logs: Vec<VertexLog>,
}

/// One step of the build graph (`moby.buildkit.v1.Vertex`).
#[derive(Clone, PartialEq, Message)]
pub struct Vertex {
    /// The step's id, `sha256:…`.
    #[prost(string, tag = "1")]
    pub digest: String,
    /// The steps it depends on.
    #[prost(string, repeated, tag = "2")]
    pub inputs: Vec<String>,
    /// What it does, e.g. `[2/3] RUN make`.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Its result came from the cache.
    #[prost(bool, tag = "4")]
    pub cached: bool,
    /// When it started.
    #[prost(message, optional, tag = "5")]
    pub started: Option<Timestamp>,
    /// When it ended.
    #[prost(message, optional, tag = "6")]
    pub completed: Option<Timestamp>,
    /// Why it failed.
    #[prost(string, tag = "7")]
    pub error: String,
}

/// A transfer's progress inside a step (`moby.buildkit.v1.VertexStatus`).
#[derive(Clone, PartialEq, Message)]
pub struct VertexStatus {
    /// What is transferred.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The step's digest.
    #[prost(string, tag = "2")]
    pub vertex: String,
    /// A name for it.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Done so far.
    #[prost(int64, tag = "4")]
    pub current: i64,
    /// In all.
    #[prost(int64, tag = "5")]
    pub total: i64,
}

/// Output of a step (`moby.buildkit.v1.VertexLog`).
#[derive(Clone, PartialEq, Message)]
pub struct VertexLog {
    /// The step's digest.
    #[prost(string, tag = "1")]
    pub vertex: String,
    /// When it was written.
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Timestamp>,
    /// 1 stdout, 2 stderr.
    #[prost(int64, tag = "3")]
    pub stream: i64,
    /// The bytes written, not necessarily whole lines.
    #[prost(bytes = "vec", tag = "4")]
    pub msg: Vec<u8>,
}

/// A trace line that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// `aux` is not a base64 string.
    #[error("BuildKit progress is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not a `StatusResponse`.
    #[error("BuildKit progress does not decode: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Decodes the `aux` of one `moby.buildkit.trace` line.
pub fn decode(aux: &str) -> Result<StatusResponse, TraceError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(aux)?;
    Ok(StatusResponse::decode(bytes.as_slice())?)
}

/// What is remembered of one step.
#[derive(Debug, Default)]
struct Step {
    /// `#n`, in the order steps first appeared.
    number: usize,
    name: String,
    started: bool,
    cached: bool,
    completed: bool,
    /// Log output since the last newline.
    pending: Vec<u8>,
}

/// The build's steps so far, turning updates into lines for the user.
#[derive(Debug, Default)]
pub struct Progress {
    steps: HashMap<String, Step>,
    /// The name and error of the first step that failed.
    failed: Option<(String, String)>,
}

impl Progress {
    /// The lines `update` adds, in order.
    pub fn lines(&mut self, update: StatusResponse) -> Vec<String> {
        let mut lines = Vec::new();
        // Starts first and ends last, so an update that carries a step's whole life shows its
        // output between the two.
        for v in &update.vertexes {
            self.start(v, &mut lines);
        }
        for log in update.logs {
            self.log(&log, &mut lines);
        }
        for v in update.vertexes {
            self.complete(v, &mut lines);
        }
        lines
    }

    /// The first failed step's name and its error.
    pub fn failed(&self) -> Option<(&str, &str)> {
        self.failed.as_ref().map(|(n, e)| (n.as_str(), e.as_str()))
    }

    /// The unfinished log lines, as lines (at the end of the build).
    pub fn flush(&mut self) -> Vec<String> {
        let mut steps: Vec<&mut Step> = self.steps.values_mut().collect();
        steps.sort_by_key(|s| s.number);
        steps
            .into_iter()
            .filter(|s| !s.pending.is_empty())
            .map(|s| {
                let text = String::from_utf8_lossy(&std::mem::take(&mut s.pending)).into_owned();
                format!("#{} {}", s.number, text.trim_end())
            })
            .collect()
    }

    fn start(&mut self, v: &Vertex, lines: &mut Vec<String>) {
        let Some(step) = step(&mut self.steps, &v.digest) else {
            return;
        };
        if !v.name.is_empty() && step.name != v.name {
            step.name.clone_from(&v.name);
        }
        let n = step.number;
        if v.cached && !step.cached {
            step.cached = true;
            step.started = true;
            lines.push(format!("#{n} {} CACHED", step.name));
        } else if v.started.is_some() && !step.started {
            step.started = true;
            lines.push(format!("#{n} {}", step.name));
        }
    }

    fn complete(&mut self, v: Vertex, lines: &mut Vec<String>) {
        let Some(step) = self.steps.get_mut(&v.digest) else {
            return;
        };
        if step.completed || v.completed.is_none() {
            return;
        }
        step.completed = true;
        let n = step.number;
        if !step.pending.is_empty() {
            let text = String::from_utf8_lossy(&std::mem::take(&mut step.pending)).into_owned();
            lines.push(format!("#{n} {}", text.trim_end()));
        }
        if !v.error.is_empty() {
            lines.push(format!("#{n} ERROR: {}", v.error));
            if self.failed.is_none() {
                self.failed = Some((step.name.clone(), v.error));
            }
        } else if !step.cached {
            let took = elapsed(v.started.as_ref(), v.completed.as_ref());
            lines.push(format!("#{n} DONE {took:.1}s"));
        }
    }

    fn log(&mut self, log: &VertexLog, lines: &mut Vec<String>) {
        let Some(step) = step(&mut self.steps, &log.vertex) else {
            return;
        };
        let n = step.number;
        step.pending.extend_from_slice(&log.msg);
        while let Some(nl) = step.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = step.pending.drain(..=nl).collect();
            lines.push(format!(
                "#{n} {}",
                String::from_utf8_lossy(&line).trim_end()
            ));
        }
        if step.pending.len() > MAX_LOG_LINE {
            let line: Vec<u8> = step.pending.drain(..MAX_LOG_LINE).collect();
            lines.push(format!("#{n} {}", String::from_utf8_lossy(&line)));
        }
    }
}

/// The step `digest`, remembered from now on unless [`MAX_VERTICES`] are already.
fn step<'a>(steps: &'a mut HashMap<String, Step>, digest: &str) -> Option<&'a mut Step> {
    if !steps.contains_key(digest) {
        if steps.len() >= MAX_VERTICES {
            return None;
        }
        let number = steps.len() + 1;
        steps.insert(
            digest.to_owned(),
            Step {
                number,
                ..Step::default()
            },
        );
    }
    steps.get_mut(digest)
}

/// Seconds between two timestamps (0 when either is missing).
fn elapsed(start: Option<&Timestamp>, end: Option<&Timestamp>) -> f64 {
    let (Some(s), Some(e)) = (start, end) else {
        return 0.0;
    };
    #[allow(
        clippy::cast_precision_loss,
        reason = "a step's seconds, shown to a tenth"
    )]
    let secs = (e.seconds - s.seconds) as f64 + f64::from(e.nanos - s.nanos) / 1e9;
    secs.max(0.0)
}
