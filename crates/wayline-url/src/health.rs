//! The router's health check before a release: ask the deployment, through the same backends
//! requests take, until it answers or time runs out.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};

use crate::service::State;

/// The header the entrypoint's tunnel client sets on answers it made itself (the app was not
/// reachable): those are no health.
pub const SYNTHETIC: &str = "x-wayline-error";

/// How often a failing check is retried.
const RETRY: Duration = Duration::from_millis(250);

/// One request's limit.
const ATTEMPT: Duration = Duration::from_secs(5);

/// Waits until deployment `id` answers `path` (`""`: `/`, any HTTP answer; else 2xx or 3xx),
/// at most `within`; `Err` says what the last attempt saw.
pub async fn check(
    state: &State,
    id: &str,
    path: &str,
    within: Duration,
) -> Result<String, String> {
    let start = Instant::now();
    let end = start + within;
    let target = if path.is_empty() { "/" } else { path };
    loop {
        let last = match attempt(state, id, path, target).await {
            Ok(summary) => return Ok(summary),
            // A deployment the service cannot reach at all (remote, no tunnel, no address) is
            // not routed here: releasing it moves no traffic, so it is not held up.
            Err(Attempt::Unroutable(e)) if start.elapsed() >= UNROUTABLE_GRACE => {
                return Ok(format!("not checked: {e}"));
            }
            Err(Attempt::Unroutable(e) | Attempt::Failed(e)) => e,
        };
        if Instant::now() + RETRY >= end {
            return Err(format!(
                "it did not pass its health check (GET {target}) within {}s: {last}",
                within.as_secs()
            ));
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Why one attempt failed.
enum Attempt {
    /// Nothing to send the check to.
    Unroutable(String),
    /// The deployment answered wrongly or not at all.
    Failed(String),
}

impl From<String> for Attempt {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

/// How long a deployment may have nothing to route to before the check gives up on it.
const UNROUTABLE_GRACE: Duration = Duration::from_secs(10);

async fn attempt(state: &State, id: &str, path: &str, target: &str) -> Result<String, Attempt> {
    let table = state.table();
    let (app, d) = table.find(id).ok_or_else(|| {
        Attempt::Unroutable("the URL service does not route this deployment yet".into())
    })?;
    let backend = d.pick().ok_or_else(|| {
        Attempt::Unroutable(
            "no instance can serve it (no tunnel is connected, no platform address)".into(),
        )
    })?;
    let host = format!(
        "{}.{}",
        wayline_core::url::deployment_label(app, d.sequence),
        state.domain
    );
    let req = Request::get(target)
        .header(header::HOST, &host)
        .header(header::USER_AGENT, "wayline-url-health")
        .body(Empty::<Bytes>::new().map_err(|n| match n {}).boxed())
        .map_err(|e| Attempt::Failed(e.to_string()))?;
    let _flight = backend.begin();
    let resp = tokio::time::timeout(ATTEMPT, backend.send(req, &host, target))
        .await
        .map_err(|_| format!("no answer within {}s", ATTEMPT.as_secs()))??;
    let status = resp.status();
    if resp.headers().contains_key(SYNTHETIC) {
        return Err(Attempt::Failed(format!(
            "the app does not answer behind {} ({status})",
            backend.name()
        )));
    }
    if !(path.is_empty() || status.is_success() || status.is_redirection()) {
        return Err(Attempt::Failed(format!("GET {target} answered {status}")));
    }
    Ok(format!("GET {target} answered {status}"))
}
