//! Waiting out a server that went away: one backoff policy (backon's jittered exponential) for
//! every reconnect loop of the runner, and the retry of a job's server calls.
//!
//! Every call a job makes to the catalog is idempotent: records are keyed by ids the runner
//! picks before the first write, so a write whose answer was lost can be sent again. A call
//! that fails because the server is unreachable is therefore retried with backoff until the
//! server answers, the job is cancelled, or the job's server wait has passed.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

use crate::agent::JobContext;
use crate::client::Client;

/// How long a job waits for a server that went away before it fails (`wayline runner agent`).
pub const DEFAULT_SERVER_WAIT: Duration = Duration::from_mins(10);

/// The runner's longest reconnect delay (plus up to 100% jitter).
const RUNNER_MAX: Duration = Duration::from_secs(4);

/// The delays of one reconnect loop: backon's exponential backoff from 250 ms doubling to a
/// ceiling, each delay plus up to 100% jitter so a fleet that lost the server together does not
/// come back in step. The runner's loops and the CLI's reconnects all use it.
#[derive(Debug)]
pub struct Backoff {
    max: Duration,
    delays: ExponentialBackoff,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::up_to(RUNNER_MAX)
    }
}

impl Backoff {
    /// Delays doubling from 250 ms to `max` (plus jitter), without end.
    pub fn up_to(max: Duration) -> Self {
        let delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        Self { max, delays }
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        *self = Self::up_to(self.max);
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    /// Sleeps the next delay, or less when `stop` fires.
    pub async fn sleep(&mut self, stop: &CancellationToken) {
        let wait = self.next_delay();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Whether `status` says the server could not be reached (as opposed to an answer).
pub(crate) fn unreachable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// Why a server call of a job gave up.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The server answered with an error.
    Refused(tonic::Status),
    /// The server stayed unreachable for the job's whole server wait.
    Unreachable { waited: Duration, last: String },
    /// The job was cancelled while waiting for the server.
    Cancelled,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(s) => write!(f, "the server refused the update: {}", s.message()),
            Self::Unreachable { waited, last } => write!(
                f,
                "the server could not be reached for {}s: {last}",
                waited.as_secs()
            ),
            Self::Cancelled => f.write_str("cancelled while waiting for the server"),
        }
    }
}

/// Runs `call` against the job's server, retrying while the server is unreachable.
pub(crate) async fn with_server<T, F, Fut>(ctx: &JobContext, call: F) -> Result<T, CallError>
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut backoff = Backoff::default();
    let mut first_failure: Option<Instant> = None;
    loop {
        match call(ctx.client.clone()).await {
            Ok(resp) => {
                if first_failure.is_some() {
                    ctx.events.line("The server is back; going on.", "info");
                }
                return Ok(resp.into_inner());
            }
            Err(status) if unreachable(&status) => {
                let since = *first_failure.get_or_insert_with(|| {
                    tracing::warn!(
                        error = %status,
                        "the server is unreachable; retrying the job's writes for up to {}s",
                        ctx.server_wait.as_secs()
                    );
                    ctx.events.line(
                        format!(
                            "The server is unreachable ({}); retrying for up to {}s",
                            status.message(),
                            ctx.server_wait.as_secs()
                        ),
                        "warning",
                    );
                    Instant::now()
                });
                if since.elapsed() >= ctx.server_wait {
                    return Err(CallError::Unreachable {
                        waited: since.elapsed(),
                        last: status.message().to_owned(),
                    });
                }
                tracing::debug!(error = %status, "server unreachable; retrying");
                backoff.sleep(&ctx.cancel).await;
                if ctx.cancel.is_cancelled() {
                    return Err(CallError::Cancelled);
                }
            }
            Err(status) => return Err(CallError::Refused(status)),
        }
    }
}
