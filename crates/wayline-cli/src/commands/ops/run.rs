//! Running a job from the CLI: where it is placed (the CLI's own local runner, or any runner
//! with the project's data source), queueing it, and following it to its end.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio_util::sync::CancellationToken;
use wayline_core::pb::{self, DataSource, Job, TargetRunner, data_source, target_runner};
use wayline_runner::{Runner, RunnerOptions};

use super::follow_job;
use crate::cli::OpFlags;
use crate::commands::Env;
use crate::render::say;
use crate::session::{self, Session};

/// Connects, then runs `job` as [`run_job_with`] does.
pub(super) async fn run_job(env: &Env, op: &OpFlags, job: Job, headline: &str) -> Result<ExitCode> {
    let session = session::connect().await?;
    run_job_with(env, op, session, job, headline).await
}

/// How long `job get-stream` waits for a server that went away.
pub(crate) const DEFAULT_SERVER_WAIT: Duration = Duration::from_mins(1);

/// Queues `job` (on the local runner unless `-local=false`), follows it, prints the result.
pub(crate) async fn run_job_with(
    env: &Env,
    op: &OpFlags,
    mut session: Session,
    mut job: Job,
    headline: &str,
) -> Result<ExitCode> {
    let runner = place(op, &session, &mut job)?;
    // With the CLI's own runner, the prune after the release runs as a job of its own, in a
    // process that outlives this command.
    let deferred_prune = runner
        .as_ref()
        .and_then(|_| super::background::defer_prune(&mut job));
    if env.global.json {
        let app = job.application.clone().unwrap_or_default();
        crate::render::json_line(&serde_json::json!({
            "event": "start", "headline": headline, "project": app.project,
            "app": app.application, "workspace": job.workspace,
        }));
    } else {
        say!("{}", env.style.bold(&format!("» {headline}")));
    }
    let job_id = queue(&mut session, job).await?;
    if env.global.json {
        crate::render::json_line(&serde_json::json!({"event": "queued", "job_id": job_id}));
    }
    let wait = Duration::from_secs(op.server_wait);
    let code = follow_job(env, &mut session, &job_id, true, wait).await;
    if deferred_prune.is_some()
        && matches!(code, Ok(ExitCode::SUCCESS))
        && let Some(prune_job) = super::background::prune_job_of(&mut session, &job_id).await
        && let Err(e) = super::background::spawn_background(&prune_job)
    {
        crate::render::note!("{e:#}; `wayline job cancel {prune_job}` removes the prune job");
    }
    if op.timings
        && code.is_ok()
        && let Err(e) = crate::commands::timings::print(&mut session, &job_id).await
    {
        crate::render::note!("no timings: {e:#}");
    }
    if let Some(r) = runner {
        if code.is_ok() {
            r.stop().await;
        } else {
            // The job could not be followed (the server is gone): its result cannot be
            // reported either; the server fails the job when it is back.
            r.abort();
        }
    }
    code
}

/// The CLI's own runner: takes only jobs targeted at its id, lives while the command runs.
pub(crate) struct LocalRunner {
    pub(crate) id: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), wayline_runner::agent::RunnerError>>,
}

impl LocalRunner {
    /// A runner whose jobs wait out an unreachable server for `server_wait`.
    pub(crate) fn start(session: &Session, server_wait: Duration) -> Self {
        Self::start_as(session, wayline_core::id::new_id(), server_wait)
    }

    /// The same, with runner id `id`.
    pub(crate) fn start_as(session: &Session, id: String, server_wait: Duration) -> Self {
        let shutdown = CancellationToken::new();
        let runner = Runner::new(
            session.client.clone(),
            session.auth.clone(),
            RunnerOptions {
                id: id.clone(),
                labels: HashMap::new(),
                by_id_only: true,
                local: true,
                concurrency: 1,
                server_wait,
            },
            Arc::new(wayline_runner::executor::Executor::local()),
        );
        let task = tokio::spawn(runner.run(shutdown.clone()));
        Self { id, shutdown, task }
    }

    /// Stops taking jobs (after the one in flight) and waits for the runner to end.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// Stops the runner now, with any job in flight.
    pub(crate) fn abort(self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

/// Targets the job: at a new local runner (returned) unless `-local=false`, then at any runner
/// with the project's own data source (or `-remote-source`).
pub(crate) fn place(op: &OpFlags, session: &Session, job: &mut Job) -> Result<Option<LocalRunner>> {
    if op.local.unwrap_or(true) {
        let runner = LocalRunner::start(session, Duration::from_secs(op.server_wait));
        job.target_runner = Some(TargetRunner {
            target: Some(target_runner::Target::Id(runner.id.clone())),
        });
        return Ok(Some(runner));
    }
    if op.remote_source.is_empty() {
        // A remote runner cannot read this machine's files: let it use the project's source.
        job.data_source = None;
    } else {
        apply_remote_source(job, &op.remote_source)?;
    }
    job.target_runner = Some(TargetRunner {
        target: Some(target_runner::Target::Any(())),
    });
    Ok(None)
}

/// Queues a job and returns its id.
pub(crate) async fn queue(session: &mut Session, job: Job) -> Result<String> {
    Ok(session
        .client
        .queue_job(pb::QueueJobRequest {
            job: Some(job),
            expires_in: String::new(),
        })
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "could not queue the job: {}",
                crate::commands::describe_status(&s)
            )
        })?
        .into_inner()
        .job_id)
}

fn apply_remote_source(job: &mut Job, pairs: &[String]) -> Result<()> {
    let mut git = data_source::Git::default();
    for p in pairs {
        let (k, v) = wayline_core::labels::parse_key_value(p)?;
        match k.as_str() {
            "ref" => git.r#ref = v,
            "url" => git.url = v,
            "path" => git.path = v,
            other => bail!("-remote-source accepts `ref`, `url` and `path`, not `{other}`"),
        }
    }
    job.data_source = Some(DataSource {
        source: Some(data_source::Source::Git(git)),
    });
    Ok(())
}
