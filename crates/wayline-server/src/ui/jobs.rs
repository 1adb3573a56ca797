//! Jobs: the list (queued, waiting with its reason, running, finished), one job's page with its
//! output, the output live over server-sent events (`GetJobStream`), and cancel.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures::{Stream, StreamExt};
use maud::{Markup, html};
use serde::Deserialize;
use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response::Event as Gjs;
use wayline_proto::v1::wayline_server::Wayline as _;

use super::Viewer;
use super::api::{Api, Page, Rs, UiError};
use super::app::{job_note, jobs_table};
use super::layout::{Ctx, app_path, commit, job_state, labels, page, seg, short_id, when};
use super::output::{Line, render};

/// Jobs listed per section.
const LIST_LIMIT: u32 = 100;
/// Terminal events kept for one page (a runaway job's output is cut, with a note).
const MAX_EVENTS: usize = 50_000;
/// How long the page waits for the replay of a running job's output before rendering.
const REPLAY_WAIT: Duration = Duration::from_millis(100);

/// `?app=project/app`, `?workspace=`.
#[derive(Debug, Deserialize)]
pub(crate) struct JobsQuery {
    app: Option<String>,
}

fn is_terminal(j: &pb::Job) -> bool {
    wayline_core::jobs::is_terminal(
        pb::job::State::try_from(j.state).unwrap_or(pb::job::State::Unknown),
    )
}

/// `/jobs`: unfinished jobs first (with why they wait), then the newest finished ones.
pub(crate) async fn list(viewer: Viewer, Query(query): Query<JobsQuery>) -> Page {
    let Viewer { api, ctx } = viewer;
    let application = match query.app.as_deref().filter(|a| !a.is_empty()) {
        Some(given) => {
            let (project, app) = given.split_once('/').ok_or_else(|| {
                UiError::invalid(format!("`app` is `project/app`, not `{given}`."))
            })?;
            Some(pb::r#ref::Application {
                project: project.to_owned(),
                application: app.to_owned(),
            })
        }
        None => None,
    };
    use pb::job::State as S;
    let req = |states: Vec<S>| pb::ListJobsRequest {
        application: application.clone(),
        workspace: ctx.workspace.clone(),
        states: states.into_iter().map(|s| s as i32).collect(),
        limit: LIST_LIMIT,
        ..Default::default()
    };
    let active = api
        .jobs(req(vec![S::Queued, S::Waiting, S::Running]))
        .await?;
    let finished = api
        .jobs(req(vec![S::Success, S::Error, S::Cancelled]))
        .await?;
    let body = html! {
        h1 { "Jobs" @if let Some(a) = &query.app { " of " (a) } }
        h2 { "Queued, waiting and running" }
        (jobs_table(&active))
        h2 { "Finished" }
        (jobs_table(&finished))
    };
    Ok(page(&ctx, "Jobs", false, body).into_response())
}

/// The output lines as a `<pre>` body.
pub(crate) fn output_markup(lines: &[Line]) -> Markup {
    html! {
        @if lines.is_empty() { span.muted { "No output yet." } }
        @for l in lines {
            @if l.class.is_empty() { (l.text) "\n" } @else { span class=(l.class) { (l.text) } "\n" }
        }
    }
}

/// A job's terminal events so far (all of them once it has finished).
pub(crate) async fn stored_events(
    api: &Api,
    id: &str,
    finished: bool,
) -> Rs<Vec<pb::TerminalEvent>> {
    let mut stream = api
        .service()
        .get_job_stream(api.req(pb::GetJobStreamRequest {
            job_id: id.to_owned(),
        }))
        .await?
        .into_inner();
    let mut events = Vec::new();
    loop {
        let next = if finished {
            stream.next().await
        } else {
            match tokio::time::timeout(REPLAY_WAIT, stream.next()).await {
                Ok(n) => n,
                Err(_) => break,
            }
        };
        match next {
            Some(Ok(r)) => match r.event {
                Some(Gjs::Terminal(t)) => {
                    events.extend(t.events);
                    events.truncate(MAX_EVENTS);
                }
                Some(Gjs::Complete(_)) => break,
                _ => {}
            },
            Some(Err(s)) => return Err(s.into()),
            None => break,
        }
    }
    Ok(events)
}

/// `/jobs/{id}`.
pub(crate) async fn page_route(v: Viewer, Path(id): Path<String>) -> Page {
    let Viewer { api, ctx } = v;
    let j = api.job(&id).await?;
    let finished = is_terminal(&j);
    let events = stored_events(&api, &j.id, finished).await?;
    let lines = render(&events);
    Ok(page(
        &ctx,
        &format!("Job {}", short_id(&j.id)),
        !finished,
        job_body(&ctx, &j, &lines),
    )
    .into_response())
}

/// The job's commit, else (the runner records it on the operations) its result's.
fn job_provenance(j: &pb::Job) -> Option<&pb::Provenance> {
    j.provenance
        .as_ref()
        .filter(|p| !p.commit.is_empty())
        .or_else(|| {
            let r = j.result.as_ref()?;
            [&r.build, &r.push, &r.deploy, &r.release]
                .into_iter()
                .flatten()
                .find_map(|o| o.provenance.as_ref().filter(|p| !p.commit.is_empty()))
        })
}

fn job_body(ctx: &Ctx, j: &pb::Job, lines: &[Line]) -> Markup {
    let app = j.application.clone().unwrap_or_default();
    let finished = is_terminal(j);
    let events = format!("/jobs/{}/events", seg(&j.id));
    html! {
        h1 { "Job " code { (short_id(&j.id)) } " " (wayline_core::jobs::operation_name(j.operation.as_ref())) }
        div hx-ext=[(!finished).then_some("sse")] sse-connect=[(!finished).then_some(events.as_str())] sse-close=[(!finished).then_some("done")] {
            table { tbody {
                @if !app.project.is_empty() {
                    tr { th { "Application" } td { a href=(ctx.href(&app_path(&app.project, &app.application))) { (app.project) " / " (app.application) } } }
                }
                tr { th { "Id" } td { code { (j.id) } } }
                tr { th { "Workspace" } td { (j.workspace) } }
                tr { th { "State" } td #job-state sse-swap=[(!finished).then_some("state")] { (job_state(j)) } }
                tr { th { "Wait reason or error" } td { (job_note(j)) } }
                tr { th { "Runner" } td { code { (j.assigned_runner_id) } } }
                tr { th { "Commit" } td { (commit(job_provenance(j))) } }
                @if !j.labels.is_empty() { tr { th { "Labels" } td { (labels(&j.labels)) } } }
                tr { th { "Queued" } td { (when(j.queue_time.as_ref())) } }
                tr { th { "Completed" } td #job-completed sse-swap=[(!finished).then_some("completed")] { (when(j.complete_time.as_ref())) } }
                @if !j.variables.is_empty() {
                    tr { th { "Variables" } td { @for var in &j.variables {
                        code { (var.name) } " = " @if var.sensitive { span.muted { "(sensitive)" } } @else { code { (var.value) } } br;
                    } } }
                }
            } }
            @if !finished {
                div sse-swap="actions" { form method="post" action={ "/jobs/" (seg(&j.id)) "/cancel" } {
                    (ctx.csrf_field())
                    button.danger type="submit" { "Cancel job" }
                } }
            }
            h2 { "Output" }
            pre #output data-stream aria-live="polite" sse-swap=[(!finished).then_some("output")] { (output_markup(lines)) }
        }
    }
}

/// `/jobs/{id}/events`: `state` and `output` events (HTML fragments) until the job ends, then
/// `done`.
pub(crate) async fn events(v: Viewer, Path(id): Path<String>) -> Result<Response, UiError> {
    let api = v.api;
    let stream = api
        .service()
        .get_job_stream(api.req(pb::GetJobStreamRequest { job_id: id }))
        .await?
        .into_inner();
    Ok(Sse::new(job_sse(stream))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn job_sse(
    stream: impl Stream<Item = Result<pb::GetJobStreamResponse, tonic::Status>> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let mut events: Vec<pb::TerminalEvent> = Vec::new();
    stream
        .map(move |item| {
            let out: Vec<Event> = match item {
                Ok(r) => match r.event {
                    Some(Gjs::Terminal(t)) => {
                        events.extend(t.events);
                        events.truncate(MAX_EVENTS);
                        vec![html_event("output", &output_markup(&render(&events)))]
                    }
                    Some(Gjs::State(s)) => match s.job {
                        Some(j) => vec![html_event("state", &job_state(&j))],
                        None => vec![],
                    },
                    Some(Gjs::Complete(c)) => {
                        // The final state, in case its State event did not come first.
                        let state = if c.error.is_some() {
                            pb::job::State::Error
                        } else {
                            pb::job::State::Success
                        };
                        let job = pb::Job {
                            state: state as i32,
                            ..Default::default()
                        };
                        let now = wayline_core::time::now();
                        vec![
                            html_event("state", &job_state(&job)),
                            html_event("completed", &when(Some(&now))),
                            // Nothing left to cancel.
                            html_event("actions", &html! { span {} }),
                            Event::default().event("done").data("done"),
                        ]
                    }
                    Some(Gjs::Error(e)) => vec![html_event(
                        "state",
                        &html! { span.error { (e.error.map(|e| e.message).unwrap_or_default()) } },
                    )],
                    Some(Gjs::Open(_)) | None => vec![],
                },
                Err(s) => vec![
                    html_event("state", &html! { span.error { (s.message()) } }),
                    Event::default().event("done").data("done"),
                ],
            };
            futures::stream::iter(out.into_iter().map(Ok))
        })
        .flatten()
}

/// An SSE event whose data is one HTML fragment (newlines become separate `data:` lines, which
/// the browser joins again).
pub(crate) fn html_event(name: &str, m: &Markup) -> Event {
    Event::default().event(name).data(m.0.as_str())
}

/// `POST /jobs/{id}/cancel`.
pub(crate) async fn cancel(v: Viewer, Path(id): Path<String>) -> Page {
    v.api.cancel(&id, false).await?;
    Ok(Redirect::to(&format!("/jobs/{}", seg(&id))).into_response())
}
