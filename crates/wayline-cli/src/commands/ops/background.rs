//! Jobs that outlive the command that caused them: the prune after `up`'s release runs as its
//! own job, for a runner id the CLI chose, taken by a detached `wayline job run-background`
//! process, so `up` returns as soon as the release is live.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};
use wayline_core::pb::{self, get_job_stream_response::Event as StreamEvent, job::Operation};

use super::run::{DEFAULT_SERVER_WAIT, LocalRunner};
use crate::session::Session;

/// Asks for the prune after `job`'s release to run as its own job, for a runner id this CLI
/// starts afterwards; returns that id, or `None` when `job` does not prune.
pub(super) fn defer_prune(job: &mut pb::Job) -> Option<String> {
    let id = wayline_core::id::new_id();
    match job.operation.as_mut()? {
        Operation::Up(u) if u.release && u.prune => u.prune_runner_id.clone_from(&id),
        Operation::Release(r) if r.prune => r.prune_runner_id.clone_from(&id),
        _ => return None,
    }
    Some(id)
}

/// The prune job job `job_id` queued, if it queued one.
pub(super) async fn prune_job_of(session: &mut Session, job_id: &str) -> Option<String> {
    let job = session
        .client
        .get_job(pb::GetJobRequest {
            job_id: job_id.to_owned(),
        })
        .await
        .ok()?
        .into_inner();
    job.result
        .map(|r| r.prune_job_id)
        .filter(|id| !id.is_empty())
}

/// Starts `wayline job run-background <job_id>` detached from this process (its own process
/// group, no terminal), so it outlives this command and Ctrl-C here does not stop it.
pub(super) fn spawn_background(job_id: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find the wayline executable")?;
    std::process::Command::new(exe)
        .args(["job", "run-background", job_id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("could not start the background runner of job {job_id}"))?;
    Ok(())
}

/// `wayline job run-background`: registers as the runner job `job_id` is targeted at, waits
/// for the job to end, and stops.
pub(crate) async fn run_background(mut session: Session, job_id: &str) -> Result<ExitCode> {
    let job = crate::commands::timings::fetch_job(&mut session, job_id).await?;
    let Some(pb::TargetRunner {
        target: Some(pb::target_runner::Target::Id(runner_id)),
    }) = &job.target_runner
    else {
        anyhow::bail!("job {job_id} is not targeted at one runner");
    };
    if wayline_core::jobs::is_terminal(job.state()) {
        return Ok(ExitCode::SUCCESS);
    }
    let runner = LocalRunner::start_as(&session, runner_id.clone(), DEFAULT_SERVER_WAIT);
    let ended = wait_for_end(&mut session, job_id).await;
    runner.stop().await;
    ended.map(|()| ExitCode::SUCCESS)
}

/// Follows job `job_id`'s stream until it completes, reconnecting while the server restarts.
async fn wait_for_end(session: &mut Session, job_id: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + DEFAULT_SERVER_WAIT;
    let mut backoff = wayline_runner::retry::Backoff::up_to(Duration::from_secs(2));
    loop {
        let opened = session
            .client
            .get_job_stream(pb::GetJobStreamRequest {
                job_id: job_id.to_owned(),
            })
            .await;
        if let Ok(resp) = opened {
            let mut stream = resp.into_inner();
            while let Ok(Some(msg)) = stream.message().await {
                if matches!(
                    msg.event,
                    Some(StreamEvent::Complete(_) | StreamEvent::Error(_))
                ) {
                    return Ok(());
                }
            }
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!("lost job {job_id}: the server did not answer");
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// The prune jobs of an app and workspace that have not ended, as (job id, state), for
/// `status`.
pub(crate) async fn pending_prunes(
    session: &mut Session,
    app: &pb::r#ref::Application,
    workspace: &str,
) -> Vec<(String, String)> {
    let req = pb::ListJobsRequest {
        application: Some(app.clone()),
        workspace: workspace.to_owned(),
        states: [
            pb::job::State::Queued,
            pb::job::State::Waiting,
            pb::job::State::Running,
        ]
        .map(|s| s as i32)
        .to_vec(),
        limit: 20,
        ..Default::default()
    };
    let Ok(resp) = session.client.list_jobs(req).await else {
        return Vec::new();
    };
    resp.into_inner()
        .jobs
        .into_iter()
        .filter(|j| matches!(&j.operation, Some(Operation::Destroy(d)) if d.prune))
        .map(|j| {
            let state = wayline_core::jobs::state_name(j.state()).to_owned();
            (j.id, state)
        })
        .collect()
}
