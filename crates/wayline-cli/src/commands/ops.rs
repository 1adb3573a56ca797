//! Operations (`up`, `build`, `deploy`, `release`, `rollback`, `destroy`): queue a job, run
//! the local runner that takes it, follow its output until it ends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tokio_util::sync::CancellationToken;
use wayline_core::pb::{
    self, DataSource, Job, TargetRunner, Variable, data_source,
    get_job_stream_response::Event as StreamEvent, job::Operation, target_runner,
};
use wayline_runner::{Runner, RunnerOptions};

use super::Env;
use crate::cli::{OpFlags, PruneFlags};
use crate::render::EventRenderer;
use crate::render::{note, say};
use crate::session::{self, Session};

/// The project and app an operation targets, from the config file and flags.
pub(crate) struct Target {
    pub(crate) project: String,
    pub(crate) app: String,
    pub(crate) workspace: String,
    pub(crate) project_dir: PathBuf,
    pub(crate) config_path: PathBuf,
    pub(crate) config_text: String,
    pub(crate) format: wayline_config::Format,
}

/// Finds and validates the config file, and picks the app.
pub(crate) fn target(env: &Env) -> Result<Target> {
    let mut all = targets(env)?;
    if all.len() == 1 {
        return Ok(all.remove(0));
    }
    bail!(
        "`{}` declares several apps ({}); choose one with `-app <name>`",
        all[0].config_path.display(),
        all.iter()
            .map(|t| t.app.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The apps an operation targets: `-app`, else every app in the file (in file order).
pub(crate) fn targets(env: &Env) -> Result<Vec<Target>> {
    let cwd = std::env::current_dir()?;
    let found = wayline_config::find_config(&cwd)?.with_context(|| {
        format!(
            "no `wayline.hcl` or `waypoint.hcl` in `{}` or its parents; `wayline init` writes a starter file",
            cwd.display()
        )
    })?;
    if let Some(w) = &found.warning {
        note!("warning: {w}");
    }
    let text = fs_err::read_to_string(&found.path)?;
    let config = match wayline_config::load_file(&found.path) {
        Ok(c) => c,
        Err(diags) => bail!("{diags}"),
    };
    let project = env
        .global
        .project
        .clone()
        .unwrap_or_else(|| config.project.clone());
    let apps: Vec<String> = match &env.global.app {
        Some(a) => {
            if config.app(a).is_none() {
                let names: Vec<&str> = config.apps.iter().map(|a| a.name.as_str()).collect();
                let hint = wayline_config::did_you_mean(a, names.iter().copied())
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                bail!(
                    "there is no app `{a}` in `{}`{hint}; apps: {}",
                    found.path.display(),
                    names.join(", ")
                );
            }
            vec![a.clone()]
        }
        None if config.apps.is_empty() => {
            bail!("`{}` declares no `app` block", found.path.display())
        }
        None => config.apps.iter().map(|a| a.name.clone()).collect(),
    };
    Ok(apps
        .into_iter()
        .map(|app| Target {
            project: project.clone(),
            app,
            workspace: workspace(env),
            project_dir: config.project_dir.clone(),
            config_path: found.path.clone(),
            config_text: text.clone(),
            format: found.format,
        })
        .collect())
}

/// Plugin names and `use` bodies of the target app against the plugins on this machine, so a
/// typo fails here, in milliseconds, not in the job after the build.
pub(crate) fn check_plugins(target: &Target) -> Result<()> {
    let config = wayline_config::parse_str_for(
        &target.config_text,
        &target.config_path.display().to_string(),
        target.format,
        &target.workspace,
    )
    .map_err(|d| anyhow::anyhow!("{d}"))?;
    let catalog = super::plugin_cmd::catalog(&target.project_dir);
    let diags = catalog.check_app(&config, &target.app);
    if diags.has_errors() {
        bail!("{diags}");
    }
    Ok(())
}

/// The workspace from `-workspace`, else `default`.
pub(crate) fn workspace(env: &Env) -> String {
    env.global
        .workspace
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

/// A job for `operation` on the target, carrying the config file and the user's variables.
pub(crate) fn job_for(target: &Target, op: &OpFlags, operation: Operation) -> Result<Job> {
    let labels = wayline_core::labels::parse_user_labels(op.label.iter().map(String::as_str))?;
    let mut variables = Vec::new();
    for v in &op.var {
        let (name, value) =
            wayline_core::labels::parse_key_value(v).with_context(|| format!("-var {v}"))?;
        variables.push(Variable {
            name,
            value,
            source: pb::variable::Source::Cli as i32,
            ..Default::default()
        });
    }
    let mut var_files = Vec::new();
    for f in &op.var_file {
        let content = fs_err::read(f)?;
        var_files.push(pb::VarFile {
            name: f.display().to_string(),
            content,
        });
    }
    Ok(Job {
        application: Some(pb::r#ref::Application {
            project: target.project.clone(),
            application: target.app.clone(),
        }),
        workspace: target.workspace.clone(),
        labels: labels.into_iter().collect(),
        data_source: Some(DataSource {
            source: Some(data_source::Source::Local(data_source::Local {
                path: target.project_dir.display().to_string(),
            })),
        }),
        config_file: target.config_text.clone().into_bytes(),
        config_format: match target.format {
            wayline_config::Format::Hcl => pb::ConfigFormat::Hcl,
            wayline_config::Format::Json => pb::ConfigFormat::Json,
        } as i32,
        config_path: target.config_path.display().to_string(),
        variables,
        var_files,
        operation: Some(operation),
        ..Default::default()
    })
}

pub(crate) async fn up(
    env: &Env,
    op: OpFlags,
    prune: PruneFlags,
    release: bool,
) -> Result<ExitCode> {
    let operation = Operation::Up(pb::UpOp {
        release,
        prune: prune.prune,
        prune_retain: prune.prune_retain,
    });
    for_each_app(env, &op, &operation, "Deploying").await
}

/// Runs `operation` for every targeted app in turn, stopping at the first failure.
async fn for_each_app(
    env: &Env,
    op: &OpFlags,
    operation: &Operation,
    verb: &str,
) -> Result<ExitCode> {
    let targets = targets(env)?;
    for target in &targets {
        check_plugins(target)?;
    }
    for target in &targets {
        let job = job_for(target, op, operation.clone())?;
        let session = session::connect().await?;
        let headline = format!("{verb} {} (project {})", target.app, target.project);
        let code = run_job_with(env, op, session, job, &headline).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn build(env: &Env, op: OpFlags, push: bool) -> Result<ExitCode> {
    let operation = Operation::Build(pb::BuildOp {
        disable_push: !push,
    });
    for_each_app(env, &op, &operation, "Building").await
}

pub(crate) async fn push(env: &Env, op: OpFlags) -> Result<ExitCode> {
    let target = target(env)?;
    let job = job_for(&target, &op, Operation::Push(pb::PushOp::default()))?;
    run_job(
        env,
        &op,
        job,
        &format!("Pushing the latest build of {}", target.app),
    )
    .await
}

pub(crate) async fn deploy(env: &Env, op: OpFlags, release: bool) -> Result<ExitCode> {
    let operation = Operation::Deploy(pb::DeployOp {
        artifact_id: String::new(),
        release,
    });
    for_each_app(env, &op, &operation, "Deploying").await
}

/// `release` (the latest or `-deployment vN`) and `rollback` (the one before the live one).
pub(crate) async fn release(
    env: &Env,
    op: OpFlags,
    prune: PruneFlags,
    deployment: Option<String>,
    rollback: bool,
) -> Result<ExitCode> {
    let target = target(env)?;
    let mut session = session::connect().await?;
    let deployment_id = match deployment {
        Some(d) => {
            resolve_deployment(
                &mut session,
                &target.project,
                &target.app,
                &target.workspace,
                &d,
            )
            .await?
        }
        None => String::new(),
    };
    let operation = Operation::Release(pb::ReleaseOp {
        deployment_id,
        prune: prune.prune,
        prune_retain: prune.prune_retain,
        rollback,
    });
    let job = job_for(&target, &op, operation)?;
    let what = if rollback {
        "Rolling back"
    } else {
        "Releasing"
    };
    run_job_with(env, &op, session, job, &format!("{what} {}", target.app)).await
}

pub(crate) async fn destroy(
    env: &Env,
    op: OpFlags,
    auto_approve: bool,
    ids: Vec<String>,
) -> Result<ExitCode> {
    let target = target(env)?;
    let mut session = session::connect().await?;
    let destroy_target = if ids.is_empty() {
        if !auto_approve
            && !crate::render::confirm(
                &format!(
                    "Destroy every deployment and release of `{}` in workspace `{}`?",
                    target.app, target.workspace
                ),
                "-auto-approve",
            )?
        {
            note!("Nothing was destroyed.");
            return Ok(ExitCode::FAILURE);
        }
        pb::destroy_op::Target::Workspace(())
    } else {
        let mut resolved = Vec::new();
        for id in &ids {
            resolved.push(
                resolve_deployment(
                    &mut session,
                    &target.project,
                    &target.app,
                    &target.workspace,
                    id,
                )
                .await?,
            );
        }
        pb::destroy_op::Target::Deployments(pb::destroy_op::Deployments { ids: resolved })
    };
    let job = job_for(
        &target,
        &op,
        Operation::Destroy(pb::DestroyOp {
            target: Some(destroy_target),
        }),
    )?;
    run_job_with(
        env,
        &op,
        session,
        job,
        &format!("Destroying {}", target.app),
    )
    .await
}

/// Turns `v3` or an id into a deployment id.
pub(crate) async fn resolve_deployment(
    session: &mut Session,
    project: &str,
    app: &str,
    workspace: &str,
    given: &str,
) -> Result<String> {
    let app_ref = pb::r#ref::Application {
        project: project.to_owned(),
        application: app.to_owned(),
    };
    let target = match wayline_core::id::parse_sequence(given) {
        Some(seq) => {
            pb::get_operation_request::Target::Sequence(pb::get_operation_request::BySequence {
                application: Some(app_ref),
                sequence: seq,
            })
        }
        None => pb::get_operation_request::Target::Id(given.to_owned()),
    };
    let _ = workspace;
    let op = session
        .client
        .get_operation(pb::GetOperationRequest {
            kind: pb::OperationKind::Deployment as i32,
            target: Some(target),
        })
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "deployment `{given}` of app `{app}`: {}",
                super::describe_status(&s)
            )
        })?
        .into_inner();
    Ok(op.id)
}

async fn run_job(env: &Env, op: &OpFlags, job: Job, headline: &str) -> Result<ExitCode> {
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
        let id = wayline_core::id::new_id();
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
        .map_err(|s| anyhow::anyhow!("could not queue the job: {}", super::describe_status(&s)))?
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
            Err(status) if super::is_disconnect(&status) => {
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
            Err(status) => bail!("lost the job stream: {}", super::describe_status(&status)),
        };
        match msg.event {
            Some(StreamEvent::Terminal(t)) => {
                for ev in &t.events {
                    if t.buffered && skip > 0 {
                        skip -= 1;
                        continue;
                    }
                    if env.global.json {
                        if let Some(v) = crate::render::event_json(ev) {
                            crate::render::json_line(&v);
                        }
                    } else {
                        renderer.render(ev);
                    }
                    shown += 1;
                }
            }
            Some(StreamEvent::State(st)) => {
                if let Some(job) = &st.job
                    && !job.wait_reason.is_empty()
                    && job.wait_reason != last_wait
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
            Some(StreamEvent::Complete(c)) => {
                let error = c.error.filter(|e| !e.message.is_empty());
                if env.global.json {
                    crate::render::json_line(&complete_json(
                        job_id,
                        error.as_ref().map(|e| e.message.as_str()),
                        c.result.as_ref(),
                        started.elapsed(),
                    ));
                } else if let Some(err) = &error {
                    note!(
                        "\n{} {}",
                        env.style.red("✗"),
                        crate::render::safe_text(&err.message)
                    );
                } else if show_result {
                    print_result(env, c.result.as_ref(), started.elapsed());
                }
                return Ok(if error.is_some() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                });
            }
            Some(StreamEvent::Error(e)) => {
                let msg = e.error.map(|e| e.message).unwrap_or_default();
                bail!("job {job_id} failed: {msg}");
            }
            Some(StreamEvent::Open(_)) | None => {}
        }
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
                super::describe_status(&s)
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
        "app_url": r.app_url,
        "deployment_id": r.deploy.as_ref().map(|d| d.id.clone()),
        "deployment": r.deploy.as_ref().map(|d| wayline_core::id::format_sequence(d.sequence)),
    })
}

fn print_result(env: &Env, result: Option<&pb::JobResult>, took: std::time::Duration) {
    let Some(r) = result else { return };
    let mut rows: Vec<(&str, String)> = Vec::new();
    if !r.release_url.is_empty() {
        rows.push(("Release URL", r.release_url.clone()));
    }
    if !r.app_url.is_empty() {
        rows.push(("App URL", r.app_url.clone()));
    }
    if !r.deploy_url.is_empty() {
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
