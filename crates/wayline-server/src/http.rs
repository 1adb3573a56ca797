//! Plain HTTP: `/healthz`, Prometheus `/metrics` and the web UI (room for trigger URLs).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use wayline_proto::v1::job::State as JobState;

use crate::service::Shared;

/// The HTTP routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&shared))
        .merge(crate::ui::router(shared))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    match render(&shared).await {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("{e}\n"),
        ),
    }
}

/// One label, `name="value"`.
type Label = [(&'static str, String); 1];

/// The exposition, encoded by `prometheus-client` (OpenMetrics text, which Prometheus reads) from
/// a registry filled at each scrape: the figures live in the queue, the runner table and the
/// request counters, so a scrape reads them once instead of every change updating a second copy.
async fn render(shared: &Shared) -> Result<String, RenderError> {
    let stored = shared.store.job_counts().await?;
    let live = shared.queue.active_counts();
    let mut registry = Registry::default();

    let jobs = Family::<Label, Gauge>::default();
    registry.register("wayline_jobs", "Jobs by state", jobs.clone());
    for state in [
        JobState::Queued,
        JobState::Waiting,
        JobState::Running,
        JobState::Success,
        JobState::Error,
        JobState::Cancelled,
    ] {
        let s = state as i32;
        // Unfinished jobs are counted from memory (exact); finished ones from the store.
        let n = if wayline_core::jobs::is_terminal(state) {
            stored.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n)
        } else {
            live.get(&s).copied().unwrap_or(0)
        };
        let label = [("state", wayline_core::jobs::state_name(state).to_owned())];
        jobs.get_or_create(&label).set(gauge_value(n));
    }

    let runners = Gauge::<i64>::default();
    runners.set(gauge_value(shared.runners.online_count()));
    registry.register(
        "wayline_runners_connected",
        "Runners with an open RunnerConfig stream",
        runners,
    );

    let requests = Family::<Label, Counter>::default();
    registry.register(
        "wayline_grpc_requests",
        "gRPC calls by method",
        requests.clone(),
    );
    for (method, n) in shared.metrics.requests() {
        requests
            .get_or_create(&[("method", method.to_string())])
            .inc_by(n);
    }

    let denied = Counter::<u64>::default();
    denied.inc_by(shared.metrics.denied.load(Ordering::Relaxed));
    registry.register(
        "wayline_grpc_denied",
        "Calls refused as unauthenticated or not permitted",
        denied,
    );

    let mut out = String::new();
    encode(&mut out, &registry)?;
    // The URL service's families go before the exposition's one `# EOF`.
    if let Some(url) = shared.urls.metrics.get() {
        let body = out.strip_suffix("# EOF\n").unwrap_or(&out).len();
        out.truncate(body);
        out.push_str(&url.render());
        out.push_str("# EOF\n");
    }
    Ok(out)
}

/// A count as a gauge's value (counts never come near `i64::MAX`; saturate rather than wrap).
fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Why `/metrics` could not be rendered.
#[derive(Debug, thiserror::Error)]
enum RenderError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("encoding the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}
