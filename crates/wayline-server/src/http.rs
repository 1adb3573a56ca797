//! Plain HTTP: `/healthz`, Prometheus `/metrics` and the web UI (room for trigger URLs).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
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
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("{e}\n"),
        ),
    }
}

async fn render(shared: &Shared) -> Result<String, crate::store::StoreError> {
    let stored = shared.store.job_counts().await?;
    let live = shared.queue.active_counts();
    let mut out = String::new();
    out.push_str("# HELP wayline_jobs Jobs by state.\n# TYPE wayline_jobs gauge\n");
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
        let _ = writeln!(
            out,
            "wayline_jobs{{state=\"{}\"}} {n}",
            wayline_core::jobs::state_name(state)
        );
    }
    let _ = writeln!(
        out,
        "# HELP wayline_runners_connected Runners with an open RunnerConfig stream.\n# TYPE wayline_runners_connected gauge\nwayline_runners_connected {}",
        shared.runners.online_count()
    );
    out.push_str("# HELP wayline_grpc_requests_total gRPC calls by method.\n# TYPE wayline_grpc_requests_total counter\n");
    for (method, n) in shared.metrics.requests() {
        let _ = writeln!(
            out,
            "wayline_grpc_requests_total{{method=\"{method}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP wayline_grpc_denied_total Calls refused as unauthenticated or not permitted.\n# TYPE wayline_grpc_denied_total counter\nwayline_grpc_denied_total {}",
        shared.metrics.denied.load(Ordering::Relaxed)
    );
    Ok(out)
}
