//! The logs page: an app's instances' log lines, live over server-sent events
//! (`GetLogStream` with follow), with pause and resume, filtered by deployment and instance.

use std::convert::Infallible;

use axum::extract::{Path, Query};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use maud::html;
use serde::Deserialize;
use wayline_proto::v1 as pb;
use wayline_proto::v1::wayline_server::Wayline as _;

use super::Viewer;
use super::api::{Page, UiError};
use super::jobs::html_event;
use super::layout::{app_path, page, seg, short_id, time};

/// `?deployment=&instance=` (ids; empty = all).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogFilter {
    #[serde(default)]
    deployment: String,
    #[serde(default)]
    instance: String,
}

impl LogFilter {
    fn query(&self, workspace_query: &str) -> String {
        let sep = if workspace_query.is_empty() { "?" } else { "&" };
        format!(
            "{workspace_query}{sep}deployment={}&instance={}",
            seg(&self.deployment),
            seg(&self.instance)
        )
    }
}

/// `/projects/{p}/apps/{a}/logs`.
pub(crate) async fn page_route(
    v: Viewer,
    Path((project, app)): Path<(String, String)>,
    Query(filter): Query<LogFilter>,
) -> Page {
    let Viewer { api, ctx } = v;
    let deployments = api
        .ops(
            pb::OperationKind::Deployment,
            &project,
            &app,
            &ctx.workspace,
            20,
        )
        .await?;
    let instances = api.instances(&project, &app, &ctx.workspace, "").await?;
    let base = app_path(&project, &app);
    let events = format!("{base}/logs/events{}", filter.query(&ctx.ws_query()));
    let body = html! {
        p.muted { a href=(ctx.href(&base)) { (project) " / " (app) } }
        h1 { "Logs" }
        form.row method="get" action={ (base) "/logs" } {
            @if !ctx.ws_query().is_empty() { input type="hidden" name="workspace" value=(ctx.workspace); }
            label { "Deployment" select name="deployment" {
                option value="" { "latest" }
                @for d in &deployments {
                    option value=(d.id) selected[d.id == filter.deployment] { "v" (d.sequence) @if super::layout::destroyed(d) { " (destroyed)" } }
                }
            } }
            label { "Instance" select name="instance" {
                option value="" { "all" }
                @for i in &instances {
                    option value=(i.id) selected[i.id == filter.instance] { (short_id(&i.id)) }
                }
            } }
            button type="submit" { "Filter" }
            button type="button" data-toggle-pause="logs" aria-pressed="false" aria-controls="logs" { "Pause" }
        }
        div hx-ext="sse" sse-connect=(events) {
            pre #logs.logs data-stream aria-live="polite" aria-label="Log lines" sse-swap="line" hx-swap="beforeend" {}
        }
    };
    Ok(page(&ctx, &format!("Logs of {app}"), true, body).into_response())
}

/// `/projects/{p}/apps/{a}/logs/events`: each batch of lines is one `line` event.
pub(crate) async fn events(
    v: Viewer,
    Path((project, app)): Path<(String, String)>,
    Query(filter): Query<LogFilter>,
) -> Result<Response, UiError> {
    let Viewer { api, ctx } = v;
    let stream = api
        .service()
        .get_log_stream(api.req(pb::GetLogStreamRequest {
            application: Some(pb::r#ref::Application {
                project,
                application: app,
            }),
            workspace: ctx.workspace,
            deployment_id: filter.deployment,
            instance_id: filter.instance,
            since: None,
            follow: true,
        }))
        .await?
        .into_inner();
    Ok(Sse::new(log_sse(stream))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn log_sse(
    stream: impl Stream<Item = Result<pb::LogBatch, tonic::Status>> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    stream.map(|item| {
        Ok(match item {
            Ok(batch) => html_event(
                "line",
                &html! {
                    @if batch.dropped > 0 { span.warning { "(" (batch.dropped) " lines dropped)" } "\n" }
                    @for l in &batch.lines {
                        span class=(if l.stream == pb::log_line::Stream::Stderr as i32 { "stderr" } else { "stdout" })
                            data-instance=(batch.instance_id) {
                            span.muted { (time(l.timestamp.as_ref())) " " (short_id(&batch.instance_id)) } " " (l.line)
                        } "\n"
                    }
                },
            ),
            Err(s) => html_event("line", &html! { span.error { (s.message()) } "\n" }),
        })
    })
}
