//! Following a queued job: its stream rendered as it arrives, Ctrl-C to cancel, reconnects
//! when the server goes away, and the result printed at the end.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use wayline_core::pb::{self, get_job_stream_response::Event as StreamEvent};

use crate::commands::Env;
use crate::render::EventRenderer;
use crate::render::{note, say};
use crate::session::Session;

/// Follows a job's stream and renders it; Ctrl-C cancels the job (a second one stops waiting).
/// A server that goes away is waited for up to `server_wait`.
pub(crate) async fn follow_job(
    env: &Env,
    session: &mut Session,
    job_id: &str,
    show_result: bool,
    server_wait: Duration,
) -> Result<ExitCode> {
    let mut stream = open_job_stream(session, job_id).await?;
    let started = std::time::Instant::now();
    let mut renderer = EventRenderer::new(env.style);
    let mut spin = tokio::time::interval(std::time::Duration::from_millis(120));
    let mut cancelled = false;
    let mut last_wait = String::new();
    // Events shown so far; after a reconnect the server replays from the start, and these are
    // skipped so nothing prints twice.
    let mut shown = 0usize;
    let mut skip = 0usize;
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = spin.tick(), if renderer.animates() => {
                renderer.tick();
                continue;
            }
            _ = tokio::signal::ctrl_c() => {
                if cancelled {
                    note!("Stopped following job {job_id}; it may still be running (`wayline job inspect {job_id}`).");
                    return Ok(ExitCode::from(130));
                }
                cancelled = true;
                note!("Cancelling job {job_id} (Ctrl-C again to stop waiting)...");
                let _ = session.client.cancel_job(pb::CancelJobRequest { job_id: job_id.to_owned(), force: false }).await;
                continue;
            }
        };
        let msg = match msg {
            Ok(Some(m)) => m,
            Ok(None) => bail!("the server closed the stream of job {job_id} before it finished"),
            Err(status) if crate::commands::is_disconnect(&status) => {
                note!(
                    "{}",
                    env.style.yellow(&format!(
                        "  lost the connection to the server ({}); reconnecting (for up to {}s)...",
                        status.message(),
                        server_wait.as_secs()
                    ))
                );
                stream = reconnect_job_stream(session, job_id, server_wait).await?;
                skip = shown;
                continue;
            }
            Err(status) => bail!(
                "lost the job stream: {}",
                crate::commands::describe_status(&status)
            ),
        };
        match msg.event {
            Some(StreamEvent::Terminal(t)) => {
                render_terminal(env, &mut renderer, &t, &mut skip, &mut shown);
            }
            Some(StreamEvent::State(st)) => show_wait(env, &st, &mut last_wait),
            Some(StreamEvent::Complete(c)) => {
                return Ok(finish(env, job_id, c, show_result, started.elapsed()));
            }
            Some(StreamEvent::Error(e)) => {
                let msg = e.error.map(|e| e.message).unwrap_or_default();
                bail!("job {job_id} failed: {msg}");
            }
            Some(StreamEvent::Open(_)) | None => {}
        }
    }
}

/// Renders a batch of the job's terminal events; after a reconnect, the first `skip`
/// replayed ones were shown already.
fn render_terminal(
    env: &Env,
    renderer: &mut EventRenderer,
    t: &pb::get_job_stream_response::Terminal,
    skip: &mut usize,
    shown: &mut usize,
) {
    for ev in &t.events {
        if t.buffered && *skip > 0 {
            *skip -= 1;
            continue;
        }
        if env.global.json {
            if let Some(v) = crate::render::event_json(ev) {
                crate::render::json_line(&v);
            }
        } else {
            renderer.render(ev);
        }
        *shown += 1;
    }
}

/// Says why a job waits, once per new reason.
fn show_wait(env: &Env, st: &pb::get_job_stream_response::State, last_wait: &mut String) {
    if let Some(job) = &st.job
        && !job.wait_reason.is_empty()
        && job.wait_reason != *last_wait
        && !wayline_core::jobs::is_terminal(st.current())
    {
        if env.global.json {
            crate::render::json_line(
                &serde_json::json!({"event": "waiting", "reason": job.wait_reason}),
            );
        } else {
            note!("{}", env.style.dim(&format!("  {}", job.wait_reason)));
        }
        last_wait.clone_from(&job.wait_reason);
    }
}

/// The job's end: its error or its result, and the exit code that goes with it.
fn finish(
    env: &Env,
    job_id: &str,
    c: pb::get_job_stream_response::Complete,
    show_result: bool,
    took: Duration,
) -> ExitCode {
    let error = c.error.filter(|e| !e.message.is_empty());
    if env.global.json {
        crate::render::json_line(&complete_json(
            job_id,
            error.as_ref().map(|e| e.message.as_str()),
            c.result.as_ref(),
            took,
        ));
    } else if let Some(err) = &error {
        note!(
            "\n{} {}",
            env.style.red("✗"),
            crate::render::safe_text(&err.message)
        );
    } else if show_result {
        print_result(env, c.result.as_ref(), took);
    }
    if error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn open_job_stream(
    session: &mut Session,
    job_id: &str,
) -> Result<tonic::Streaming<pb::GetJobStreamResponse>> {
    let resp = session
        .client
        .get_job_stream(pb::GetJobStreamRequest {
            job_id: job_id.to_owned(),
        })
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "could not follow job {job_id}: {}",
                crate::commands::describe_status(&s)
            )
        })?;
    Ok(resp.into_inner())
}

/// Reopens a job's stream while the server restarts: up to `server_wait`, with backoff.
async fn reconnect_job_stream(
    session: &mut Session,
    job_id: &str,
    server_wait: Duration,
) -> Result<tonic::Streaming<pb::GetJobStreamResponse>> {
    let deadline = std::time::Instant::now() + server_wait;
    let mut backoff = wayline_runner::retry::Backoff::up_to(Duration::from_secs(2));
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        tokio::time::sleep(backoff.next_delay().min(left)).await;
        match open_job_stream(session, job_id).await {
            Ok(s) => return Ok(s),
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(e.context(format!(
                    "the server did not come back within {}s; `wayline job get-stream {job_id}` follows the job when it is back",
                    server_wait.as_secs()
                )));
            }
            Err(_) => {}
        }
    }
}

/// The commit a job's result went out from: its release's, deployment's, push's or build's.
fn result_commit(r: &pb::JobResult) -> Option<String> {
    [&r.release, &r.deploy, &r.push, &r.build]
        .into_iter()
        .flatten()
        .find_map(|op| op.provenance.as_ref().filter(|p| !p.commit.is_empty()))
        .map(|p| {
            let short: String = p.commit.chars().take(12).collect();
            if p.dirty {
                format!("{short} + uncommitted changes")
            } else {
                short
            }
        })
}

/// The last line of `-json` output: how the job ended, what it made, how long it took.
fn complete_json(
    job_id: &str,
    error: Option<&str>,
    result: Option<&pb::JobResult>,
    took: std::time::Duration,
) -> serde_json::Value {
    let r = result.cloned().unwrap_or_default();
    serde_json::json!({
        "event": "complete",
        "job_id": job_id,
        "ok": error.is_none(),
        "error": error,
        "seconds": took.as_secs_f64(),
        "commit": result_commit(&r),
        "release_url": r.release_url,
        "deploy_url": r.deploy_url,
        "url": r.release.as_ref().map(|o| o.public_url.clone()).filter(|u| !u.is_empty()),
        "deployment_url": r.deploy.as_ref().map(|o| o.public_url.clone()).filter(|u| !u.is_empty()),
        "prune_job_id": (!r.prune_job_id.is_empty()).then_some(&r.prune_job_id),
        "app_url": r.app_url,
        "deployment_id": r.deploy.as_ref().map(|d| d.id.clone()),
        "deployment": r.deploy.as_ref().map(|d| wayline_core::id::format_sequence(d.sequence)),
    })
}

fn print_result(env: &Env, result: Option<&pb::JobResult>, took: std::time::Duration) {
    let Some(r) = result else { return };
    let mut rows: Vec<(&str, String)> = Vec::new();
    // The URL service's addresses first: the app's stays the same across deploys.
    let public =
        |op: Option<&pb::Operation>| op.map(|o| o.public_url.clone()).filter(|u| !u.is_empty());
    if let Some(u) = public(r.release.as_ref()) {
        rows.push(("URL", u));
    }
    if !r.release_url.is_empty() {
        rows.push(("Release URL", r.release_url.clone()));
    }
    if !r.app_url.is_empty() {
        rows.push(("App URL", r.app_url.clone()));
    }
    if let Some(u) = public(r.deploy.as_ref()) {
        rows.push(("Deployment URL", u));
    } else if !r.deploy_url.is_empty() {
        rows.push(("Deployment URL", r.deploy_url.clone()));
    }
    let took = format!("{:.1}s", took.as_secs_f64());
    let how = match result_commit(r) {
        Some(commit) => format!("in {took}, commit {commit}"),
        None => format!("in {took}"),
    };
    if rows.is_empty() {
        say!(
            "\n{} {}",
            env.style.green("✓ Done"),
            env.style.dim(&format!("({how})."))
        );
        return;
    }
    say!(
        "\n{} {}",
        env.style.green("✓ The deploy was successful"),
        env.style.dim(&format!("({how})."))
    );
    let w = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0) + 1;
    for (name, value) in rows {
        say!(
            "   {:<w$} {}",
            format!("{name}:"),
            env.style.bold(&crate::render::safe(&value))
        );
    }
}
