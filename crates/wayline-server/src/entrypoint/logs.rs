//! Rolling log windows per instance, and `GetLogStream`: history merged across instances in
//! time order, then live batches.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, BoxStream, StreamExt};
use tonic::Status;
use wayline_proto::prost_types::Timestamp;
use wayline_proto::v1::{EntrypointLogBatch, GetLogStreamRequest, LogBatch, LogLine, log_line};

use super::{ConfigErrors, EntrypointHub, now};

/// Lines per batch when replaying history.
const HISTORY_BATCH: usize = 1000;

/// One instance's recent lines.
pub(super) struct LogWindow {
    deployment_id: String,
    pub(super) lines: VecDeque<LogLine>,
    /// Text bytes in `lines`, kept under `HubOptions::log_window_bytes`.
    pub(super) bytes: usize,
    last_write: Instant,
}

impl LogWindow {
    /// The deployment whose instance wrote this window.
    pub(super) fn deployment_id(&self) -> &str {
        &self.deployment_id
    }

    /// Appends lines, then drops the oldest until both the line and byte limits hold.
    fn push(&mut self, lines: &[LogLine], max_lines: usize, max_bytes: usize) {
        for l in lines {
            self.bytes += l.line.len();
            self.lines.push_back(l.clone());
        }
        while self.lines.len() > max_lines || (self.bytes > max_bytes && self.lines.len() > 1) {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.line.len();
            }
        }
    }
}

/// Cuts a line longer than `max` bytes at a character boundary and says how long it was.
/// What became of a log batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Appended {
    Yes,
    /// The instance's window belongs to another deployment.
    OtherDeployment,
    /// The deployment has this many instances' windows, none of them of a gone instance.
    TooManyInstances(usize),
}

/// Removes the window written longest ago of an instance that is no longer connected (of
/// `deployment` only, when given; never `keep`); false when there is none.
fn evict_oldest_gone(state: &mut super::State, keep: &str, deployment: Option<&str>) -> bool {
    let victim = state
        .windows
        .iter()
        .filter(|(id, w)| {
            id.as_str() != keep
                && !state.instances.contains_key(*id)
                && deployment.is_none_or(|d| w.deployment_id == d)
        })
        .min_by_key(|(_, w)| w.last_write)
        .map(|(id, _)| id.clone());
    victim.is_some_and(|id| remove_window(state, &id))
}

/// Removes a window and its bytes from the server-wide total.
fn remove_window(state: &mut super::State, id: &str) -> bool {
    let Some(w) = state.windows.remove(id) else {
        return false;
    };
    state.window_bytes -= w.bytes;
    true
}

fn cut_long_line(line: &mut LogLine, max: usize) {
    if line.line.len() <= max {
        return;
    }
    let total = line.line.len();
    let keep = line.line.floor_char_boundary(max);
    line.line.truncate(keep);
    let _ = write!(line.line, " … [line cut at {keep} of {total} bytes]");
}

/// "… 1,204 lines dropped": how a drop count reads in `wayline logs`.
pub fn format_dropped(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let noun = if n == 1 { "line" } else { "lines" };
    format!("… {grouped} {noun} dropped")
}

/// Forgets the config errors a log stream reported when it ends.
struct ForgetConfigErrors {
    hub: EntrypointHub,
    stream: u64,
}

impl Drop for ForgetConfigErrors {
    fn drop(&mut self) {
        self.hub
            .state()
            .config_errors
            .retain(|_, c| c.stream != self.stream);
    }
}

fn ts_key(t: Option<&Timestamp>) -> (i64, i32) {
    t.map_or((0, 0), |t| (t.seconds, t.nanos))
}

impl EntrypointHub {
    /// Serves an entrypoint's `EntrypointLogStream` until it ends. `deployment_id` is the one the
    /// caller's token is for.
    pub async fn entrypoint_logs(
        &self,
        deployment_id: String,
        stream: tonic::Streaming<EntrypointLogBatch>,
    ) -> Result<(), Status> {
        self.entrypoint_logs_from(deployment_id, stream).await
    }

    /// [`EntrypointHub::entrypoint_logs`] over any stream of batches. Config errors reported on
    /// the stream are kept until it ends.
    pub async fn entrypoint_logs_from(
        &self,
        deployment_id: String,
        mut stream: impl futures::Stream<Item = Result<EntrypointLogBatch, Status>> + Unpin,
    ) -> Result<(), Status> {
        let log_stream = {
            let mut state = self.state();
            state.next_log_stream += 1;
            state.next_log_stream
        };
        let _forget = ForgetConfigErrors {
            hub: self.clone(),
            stream: log_stream,
        };
        while let Some(batch) = stream.next().await {
            let mut batch = batch?;
            if batch.instance_id.is_empty() {
                return Err(Status::invalid_argument("log batch without instance_id"));
            }
            if !batch.deployment_id.is_empty() && batch.deployment_id != deployment_id {
                return Err(Status::permission_denied(format!(
                    "this entrypoint token is for deployment {deployment_id}, not {}",
                    batch.deployment_id
                )));
            }
            if batch.config_errors_set {
                self.set_config_errors(
                    &deployment_id,
                    &batch.instance_id,
                    log_stream,
                    std::mem::take(&mut batch.config_errors),
                );
            }
            let instance = batch.instance_id.clone();
            match self.append_logs(&deployment_id, batch) {
                Appended::Yes => {}
                Appended::OtherDeployment => {
                    return Err(Status::permission_denied(format!(
                        "instance {instance} belongs to another deployment, not {deployment_id}"
                    )));
                }
                Appended::TooManyInstances(max) => {
                    return Err(super::too_many_instances(&deployment_id, max));
                }
            }
        }
        Ok(())
    }

    /// Records an instance's current set of unresolvable config values (empty: all resolved).
    fn set_config_errors(
        &self,
        deployment_id: &str,
        instance_id: &str,
        stream: u64,
        errors: Vec<String>,
    ) {
        let key = (deployment_id.to_owned(), instance_id.to_owned());
        let mut state = self.state();
        if errors.is_empty() {
            state.config_errors.remove(&key);
        } else {
            tracing::info!(instance = %instance_id, deployment = %deployment_id, errors = ?errors, "instance reports config it cannot resolve");
            state
                .config_errors
                .insert(key, ConfigErrors { stream, errors });
        }
    }

    /// Adds a batch to its instance's window and to the live feed. A drop count becomes a
    /// synthetic entrypoint line placed where the lines went missing.
    /// Appends to the instance's window; false (and nothing written) when that instance's
    /// window belongs to another deployment, so one deployment's token can't write into
    /// another's logs.
    pub(super) fn append_logs(&self, deployment_id: &str, batch: EntrypointLogBatch) -> Appended {
        let mut lines = batch.lines;
        if batch.dropped > 0 {
            let at = lines.first().and_then(|l| l.timestamp).unwrap_or_else(now);
            lines.insert(
                0,
                LogLine {
                    timestamp: Some(at),
                    line: format_dropped(batch.dropped),
                    source: log_line::Source::Entrypoint as i32,
                    stream: log_line::Stream::Stderr as i32,
                },
            );
        }
        if lines.is_empty() {
            return Appended::Yes;
        }
        let max_line = self.inner.opts.max_log_line_bytes.max(1);
        for l in &mut lines {
            cut_long_line(l, max_line);
        }
        let cap = self.inner.opts.log_window_lines.max(1);
        let max_bytes = self.inner.opts.log_window_bytes.max(1);
        let max_windows = self.inner.opts.max_log_windows.max(1);
        let mut state = self.state();
        if state
            .windows
            .get(&batch.instance_id)
            .is_some_and(|w| w.deployment_id != deployment_id)
        {
            tracing::warn!(instance = %batch.instance_id, deployment = %deployment_id, "log batch for another deployment's instance refused");
            return Appended::OtherDeployment;
        }
        if !state.windows.contains_key(&batch.instance_id) {
            let max = self.inner.opts.max_instances_per_deployment.max(1);
            let mine = |w: &LogWindow| w.deployment_id == deployment_id;
            if state.windows.values().filter(|w| mine(w)).count() >= max
                && !evict_oldest_gone(&mut state, "", Some(deployment_id))
            {
                return Appended::TooManyInstances(max);
            }
        }
        if !state.windows.contains_key(&batch.instance_id) && state.windows.len() >= max_windows {
            // Make room: the window of a gone instance that was written longest ago.
            let victim = state
                .windows
                .iter()
                .filter(|(id, _)| !state.instances.contains_key(*id))
                .min_by_key(|(_, w)| w.last_write)
                .map(|(id, _)| id.clone());
            if let Some(id) = victim {
                remove_window(&mut state, &id);
            }
        }
        let window = state
            .windows
            .entry(batch.instance_id.clone())
            .or_insert_with(|| LogWindow {
                deployment_id: deployment_id.to_owned(),
                lines: VecDeque::new(),
                bytes: 0,
                last_write: Instant::now(),
            });
        window.last_write = Instant::now();
        let before = window.bytes;
        window.push(&lines, cap, max_bytes);
        let after = window.bytes;
        state.window_bytes = state.window_bytes + after - before;
        // The server-wide budget: the oldest windows of gone instances make room.
        let budget = self.inner.opts.max_log_bytes_total.max(1);
        for _ in 0..state.windows.len() {
            if state.window_bytes <= budget
                || !evict_oldest_gone(&mut state, &batch.instance_id, None)
            {
                break;
            }
        }
        // Sent under the lock so a follower's snapshot and its live feed neither overlap nor gap.
        state.followers.publish(&Arc::new(LogBatch {
            deployment_id: deployment_id.to_owned(),
            instance_id: batch.instance_id,
            lines,
            dropped: batch.dropped,
        }));
        Appended::Yes
    }

    /// `GetLogStream` for `deployment_ids` (every deployment when empty): the windows' lines at
    /// or after `since`, merged across instances in time order, then, with `follow`, live lines.
    /// Drops appear as "… N lines dropped" lines (and in `LogBatch.dropped`).
    pub fn log_stream(
        &self,
        deployment_ids: Vec<String>,
        req: GetLogStreamRequest,
    ) -> BoxStream<'static, Result<LogBatch, Status>> {
        let since = ts_key(req.since.as_ref());
        // The fan-out already picks the follower's deployments and instance for live batches.
        let (follow_ids, follow_instance) = (deployment_ids.clone(), req.instance_id.clone());
        let wants = move |deployment: &str, instance: &str| {
            (deployment_ids.is_empty() || deployment_ids.iter().any(|d| d == deployment))
                && (req.instance_id.is_empty() || req.instance_id == instance)
        };
        let (mut history, live) = {
            let mut state = self.state();
            let live = req.follow.then(|| {
                state
                    .followers
                    .add(&follow_ids, &follow_instance, self.inner.opts.follow_buffer)
            });
            let mut history: Vec<(&String, &String, &LogLine)> = Vec::new();
            for (instance, w) in &state.windows {
                if wants(&w.deployment_id, instance) {
                    history.extend(
                        w.lines
                            .iter()
                            .filter(|l| ts_key(l.timestamp.as_ref()) >= since)
                            .map(|l| (instance, &w.deployment_id, l)),
                    );
                }
            }
            // Stable: lines of one instance keep their order when timestamps tie.
            history.sort_by_key(|(_, _, l)| ts_key(l.timestamp.as_ref()));
            let history: Vec<(String, String, LogLine)> = history
                .into_iter()
                .map(|(i, d, l)| (i.clone(), d.clone(), l.clone()))
                .collect();
            (history, live)
        };
        let mut batches: Vec<Result<LogBatch, Status>> = Vec::new();
        for (instance, deployment, line) in history.drain(..) {
            match batches.last_mut() {
                Some(Ok(b)) if b.instance_id == instance && b.lines.len() < HISTORY_BATCH => {
                    b.lines.push(line);
                }
                _ => batches.push(Ok(LogBatch {
                    deployment_id: deployment,
                    instance_id: instance,
                    lines: vec![line],
                    dropped: 0,
                })),
            }
        }
        let history = stream::iter(batches);
        let Some(rx) = live else {
            return history.boxed();
        };
        let live = stream::unfold(rx, move |mut rx| async move {
            loop {
                let mut b = rx.next().await?;
                b.lines.retain(|l| ts_key(l.timestamp.as_ref()) >= since);
                if !b.lines.is_empty() {
                    return Some((Ok(b), rx));
                }
            }
        });
        history.chain(live).boxed()
    }
}
