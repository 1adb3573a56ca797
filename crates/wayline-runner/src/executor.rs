//! What a job does on a runner: prepare the source, evaluate the config, run the operation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wayline_config::{EvalContext, EvalInputs, Format};
use wayline_plugin::{BuiltinRegistry, PluginHost};
use wayline_proto::v1::{
    self as pb, Job, JobError, JobResult, OperationKind, job::Operation, variable,
};

use crate::agent::{JobContext, JobExecutor, JobFuture};
use crate::pipeline::{Run, StepError, urls};
use crate::source;

/// The runner's job executor.
#[derive(Debug, Clone)]
pub struct Executor {
    /// Where plugins keep scratch data and clones go.
    data_root: PathBuf,
    /// Read the process environment for `WL_VAR_*` (the CLI's local runner does; a remote
    /// runner's environment is not the user's).
    use_process_env: bool,
}

impl Executor {
    /// The executor of the CLI's local runner.
    pub fn local() -> Self {
        Self {
            data_root: default_data_root(),
            use_process_env: true,
        }
    }

    /// The executor of `wayline runner agent`.
    pub fn remote() -> Self {
        Self {
            data_root: default_data_root(),
            use_process_env: false,
        }
    }
}

fn default_data_root() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from(".local/share"))
        .join("wayline")
        .join("runner")
}

fn fail(code: i32, message: impl Into<String>) -> JobError {
    JobError {
        code,
        message: message.into(),
    }
}

impl JobExecutor for Executor {
    fn execute(&self, job: Job, ctx: JobContext) -> JobFuture {
        let this = self.clone();
        Box::pin(async move {
            if let Some(Operation::Noop(noop)) = &job.operation {
                if noop.sleep_ms > 0 {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(u64::from(noop.sleep_ms))) => {}
                        () = ctx.cancel.cancelled() => return Err(fail(1, "cancelled")),
                    }
                }
                if noop.fail {
                    return Err(fail(2, "noop job asked to fail"));
                }
                return Ok(JobResult::default());
            }
            this.run(job, ctx).await
        })
    }
}

impl Executor {
    async fn run(&self, job: Job, ctx: JobContext) -> Result<JobResult, JobError> {
        let scratch = self.data_root.join("scratch");
        let source = match job.data_source.clone() {
            Some(s) => Some(s),
            None => project_source(&ctx, &job).await?,
        };
        let workdir =
            source::prepare(source.as_ref(), &scratch).map_err(|e| fail(3, e.to_string()))?;
        let provenance = source::provenance(&workdir.path);
        let (config_text, config_name, format) =
            self.config_text(&job, &ctx, &workdir.path).await?;
        let mut config =
            wayline_config::parse_str_for(&config_text, &config_name, format, &job.workspace)
                .map_err(|d| fail(3, d.to_string()))?;
        config.project_dir.clone_from(&workdir.path);
        let inputs = self.inputs(&job, &ctx, &workdir.path, &scratch).await?;
        let eval = EvalContext::new(&config, &inputs).map_err(|d| fail(3, d.to_string()))?;
        let mut result = JobResult {
            variables: eval
                .variables()
                .iter()
                .map(|v| pb::Variable {
                    name: v.name.clone(),
                    value: if v.sensitive {
                        String::new()
                    } else {
                        v.value_json.to_string()
                    },
                    source: match v.source {
                        wayline_config::VariableSource::Default => variable::Source::Default,
                        wayline_config::VariableSource::Server => variable::Source::Server,
                        wayline_config::VariableSource::File => variable::Source::File,
                        wayline_config::VariableSource::Env => variable::Source::Env,
                        wayline_config::VariableSource::Cli => variable::Source::Cli,
                        wayline_config::VariableSource::Dynamic => variable::Source::Dynamic,
                    } as i32,
                    sensitive: v.sensitive,
                    hash: v.hash.clone().unwrap_or_default(),
                })
                .collect(),
            ..Default::default()
        };
        let host = Arc::new(plugin_host(&workdir.path));
        for p in &config.plugins {
            if host.builtins().get(&p.name).is_none() {
                host.load_plugin(&p.name, p.checksum.as_deref())
                    .await
                    .map_err(|e| fail(3, e.to_string()))?;
            }
        }
        let run = Run {
            job: job.clone(),
            ctx: ctx.clone(),
            config: &config,
            eval,
            host,
            source_path: workdir.path.clone(),
            provenance,
            data_root: self.data_root.join("data"),
        };
        let outcome = operate(&run, &job, &mut result).await;
        outcome.map_err(JobError::from)?;
        urls(&mut result);
        Ok(result)
    }

    /// The config file: sent with the job, else in the source, else stored with the project.
    async fn config_text(
        &self,
        job: &Job,
        ctx: &JobContext,
        dir: &std::path::Path,
    ) -> Result<(String, String, Format), JobError> {
        let fmt = |f: i32| {
            if f == pb::ConfigFormat::Json as i32 {
                Format::Json
            } else {
                Format::Hcl
            }
        };
        if !job.config_file.is_empty() {
            let name = if job.config_path.is_empty() {
                "wayline.hcl".to_owned()
            } else {
                job.config_path.clone()
            };
            return Ok((
                String::from_utf8_lossy(&job.config_file).into_owned(),
                name,
                fmt(job.config_format),
            ));
        }
        if let Some(found) = wayline_config::find_config(dir).map_err(|e| fail(3, e.to_string()))? {
            let text = fs_err::read_to_string(&found.path).map_err(|e| fail(3, e.to_string()))?;
            return Ok((text, found.path.display().to_string(), found.format));
        }
        let project = job
            .application
            .as_ref()
            .map(|a| a.project.clone())
            .unwrap_or_default();
        let stored = ctx
            .client
            .clone()
            .get_project(pb::GetProjectRequest {
                project: project.clone(),
            })
            .await;
        match stored {
            Ok(p) if !p.get_ref().config_file.is_empty() => {
                let p = p.into_inner();
                Ok((
                    String::from_utf8_lossy(&p.config_file).into_owned(),
                    format!("{project} (stored on the server)"),
                    fmt(p.config_format),
                ))
            }
            _ => Err(fail(
                3,
                format!(
                    "no `wayline.hcl` or `waypoint.hcl` in `{}`, and project `{project}` stores none",
                    dir.display()
                ),
            )),
        }
    }

    async fn inputs(
        &self,
        job: &Job,
        ctx: &JobContext,
        dir: &std::path::Path,
        scratch: &std::path::Path,
    ) -> Result<EvalInputs, JobError> {
        let mut var_files = Vec::new();
        if !job.var_files.is_empty() {
            let vdir = scratch.join(format!("vars-{}", job.id));
            fs_err::create_dir_all(&vdir).map_err(|e| fail(3, e.to_string()))?;
            for (i, f) in job.var_files.iter().enumerate() {
                let base = std::path::Path::new(&f.name).file_name().map_or_else(
                    || format!("{i}.wlvars"),
                    |n| n.to_string_lossy().into_owned(),
                );
                let path = vdir.join(format!("{i}-{base}"));
                fs_err::write(&path, &f.content).map_err(|e| fail(3, e.to_string()))?;
                var_files.push(path);
            }
        }
        let project = job
            .application
            .as_ref()
            .map(|a| a.project.clone())
            .unwrap_or_default();
        let server_vars = match ctx
            .client
            .clone()
            .get_project(pb::GetProjectRequest { project })
            .await
        {
            Ok(p) => p.into_inner().variables.into_iter().collect(),
            Err(_) => Vec::new(),
        };
        Ok(EvalInputs {
            workspace: job.workspace.clone(),
            app: job.application.as_ref().map(|a| a.application.clone()),
            server_vars,
            env: if self.use_process_env {
                std::env::vars().collect()
            } else {
                std::collections::HashMap::default()
            },
            auto_var_files: true,
            var_files,
            cli_vars: job
                .variables
                .iter()
                .filter(|v| v.source == variable::Source::Cli as i32)
                .map(|v| format!("{}={}", v.name, v.value))
                .collect(),
            pwd: dir.to_path_buf(),
            plugins: None,
            labels: job.labels.clone().into_iter().collect(),
            salt: String::new(),
        })
    }
}

/// The project's stored data source, for jobs queued without one (remote runs).
async fn project_source(ctx: &JobContext, job: &Job) -> Result<Option<pb::DataSource>, JobError> {
    let project = job
        .application
        .as_ref()
        .map(|a| a.project.clone())
        .unwrap_or_default();
    match ctx
        .client
        .clone()
        .get_project(pb::GetProjectRequest { project })
        .await
    {
        Ok(p) => Ok(p.into_inner().data_source),
        Err(s) => Err(fail(
            3,
            format!("cannot read the project's data source: {}", s.message()),
        )),
    }
}

/// The plugin host for a project: built-ins, then external plugins next to it.
pub fn plugin_host(project_dir: &std::path::Path) -> PluginHost {
    let mut builtins = BuiltinRegistry::new();
    wayline_plugins::register_builtins(&mut builtins);
    PluginHost::new(builtins, PluginHost::default_search_dirs(project_dir))
}

/// Runs the job's operation.
async fn operate(run: &Run<'_>, job: &Job, result: &mut JobResult) -> Result<(), StepError> {
    match job.operation.clone() {
        Some(Operation::Build(b)) => {
            let build = run.build().await?;
            result.build = Some(build.record.clone());
            if !b.disable_push {
                result.push = Some(run.push(&build).await?.record);
            }
        }
        Some(Operation::Push(p)) => {
            let build = if p.build_id.is_empty() {
                run.latest(OperationKind::Build).await?.ok_or_else(|| {
                    StepError("there is no successful build to push; run `wayline build`".into())
                })?
            } else {
                run.get(OperationKind::Build, &p.build_id).await?
            };
            result.push = Some(
                run.push(&crate::pipeline::Produced { record: build })
                    .await?
                    .record,
            );
        }
        Some(Operation::Deploy(d)) => {
            let artifact = if d.artifact_id.is_empty() {
                run.latest(OperationKind::PushedArtifact)
                    .await?
                    .ok_or_else(|| {
                        StepError(
                            "there is no artifact to deploy; run `wayline build` first".into(),
                        )
                    })?
            } else {
                run.get(OperationKind::PushedArtifact, &d.artifact_id)
                    .await?
            };
            let deployment = run.deploy(&artifact).await?;
            result.deploy = Some(deployment.record.clone());
            if d.release {
                let release = run.release(&deployment.record).await?;
                result.release = Some(release.record);
            }
        }
        Some(Operation::Release(r)) => release_op(run, &r, result).await?,
        Some(Operation::Up(u)) => {
            let build = run.build().await?;
            result.build = Some(build.record.clone());
            let pushed = run.push(&build).await?;
            result.push = Some(pushed.record.clone());
            let deployment = run.deploy(&pushed.record).await?;
            result.deploy = Some(deployment.record.clone());
            if u.release {
                let release = run.release(&deployment.record).await?;
                if u.prune {
                    result.destroyed = run.prune(&deployment.record, u.prune_retain).await?;
                }
                result.release = Some(release.record);
            }
            result.status_report = run.status_report(&deployment.record).await?;
        }
        Some(Operation::Destroy(d)) => {
            let whole_workspace = !matches!(d.target, Some(pb::destroy_op::Target::Deployments(_)));
            let targets = match d.target {
                Some(pb::destroy_op::Target::Deployments(ids)) => {
                    let mut v = Vec::new();
                    for id in &ids.ids {
                        v.push(run.get(OperationKind::Deployment, id).await?);
                    }
                    v
                }
                _ => run.live_deployments().await?,
            };
            for t in &targets {
                run.destroy_deployment(t).await?;
            }
            result.destroyed = targets;
            if whole_workspace {
                // Everything the app made in this workspace goes: image tags and pushed copies too.
                let artifacts = run.destroy_artifacts().await?;
                result.destroyed.extend(artifacts);
            }
            if result.destroyed.is_empty() {
                run.ctx.events.line("Nothing to destroy.", "info");
            }
        }
        Some(Operation::StatusReport(s)) => {
            let deployment = if s.deployment_id.is_empty() {
                run.latest(OperationKind::Deployment)
                    .await?
                    .ok_or_else(|| StepError("there is no deployment to report on".into()))?
            } else {
                run.get(OperationKind::Deployment, &s.deployment_id).await?
            };
            result.status_report = run.status_report(&deployment).await?;
        }
        Some(Operation::Exec(e)) => run.exec_step(&e.command).await?,
        Some(Operation::Validate(_) | Operation::Init(_)) => {
            run.ctx
                .events
                .line("The configuration is valid.", "success");
        }
        Some(other) => {
            return Err(StepError(format!(
                "{} jobs are not run by runners in this version",
                wayline_core::jobs::operation_name(Some(&other))
            )));
        }
        None => return Err(StepError("the job names no operation".into())),
    }
    Ok(())
}

/// `release`, `release -deployment vN` and `rollback`.
async fn release_op(
    run: &Run<'_>,
    r: &pb::ReleaseOp,
    result: &mut JobResult,
) -> Result<(), StepError> {
    let deployment = if r.rollback {
        rollback_target(run).await?
    } else if r.deployment_id.is_empty() {
        run.latest(OperationKind::Deployment)
            .await?
            .ok_or_else(|| {
                StepError("there is no deployment to release; run `wayline deploy`".into())
            })?
    } else {
        run.get(OperationKind::Deployment, &r.deployment_id).await?
    };
    // A pruned deployment is deployed again from its artifact before it is released, unless
    // the artifact is gone too (a local image removed by `destroy`): then say so, rather than
    // let the platform look for it in a registry.
    let deployment = if deployment.physical_state == pb::PhysicalState::Destroyed as i32 {
        let seq = wayline_core::id::format_sequence(deployment.sequence);
        let artifact = run
            .get(OperationKind::PushedArtifact, &deployment.artifact_id)
            .await?;
        let image = artifact_name(&artifact);
        if artifact.physical_state == pb::PhysicalState::Destroyed as i32 {
            return Err(StepError(format!(
                "deployment {seq} was destroyed and so was its artifact {image} (pushed artifact {}); \
                 there is nothing to deploy again: `wayline up` builds a new one",
                wayline_core::id::format_sequence(artifact.sequence)
            )));
        }
        run.ctx.events.line(
            format!("Deployment {seq} was destroyed; deploying its artifact {image} again"),
            "info",
        );
        let redeployed = run.deploy(&artifact).await?;
        result.deploy = Some(redeployed.record.clone());
        redeployed.record
    } else {
        if r.rollback
            && let Ok(artifact) = run
                .get(OperationKind::PushedArtifact, &deployment.artifact_id)
                .await
        {
            run.ctx.events.line(
                format!(
                    "Rolling back to deployment {} of artifact {}",
                    wayline_core::id::format_sequence(deployment.sequence),
                    artifact_name(&artifact)
                ),
                "info",
            );
        }
        deployment
    };
    let release = run.release(&deployment).await?;
    if r.prune {
        result.destroyed = run.prune(&deployment, r.prune_retain).await?;
    }
    result.release = Some(release.record);
    Ok(())
}

/// What an artifact is, for messages: `image:tag` when the plugin says, else `vN`.
fn artifact_name(artifact: &pb::Operation) -> String {
    let data: serde_json::Value =
        serde_json::from_str(&artifact.template_data_json).unwrap_or_default();
    match (data["image"].as_str(), data["tag"].as_str()) {
        (Some(image), Some(tag)) if !tag.is_empty() => format!("`{image}:{tag}`"),
        (Some(image), _) => format!("`{image}`"),
        _ => wayline_core::id::format_sequence(artifact.sequence),
    }
}

/// The deployment of the release before the live one.
async fn rollback_target(run: &Run<'_>) -> Result<pb::Operation, StepError> {
    let req = pb::ListOperationsRequest {
        application: run.job.application.clone(),
        workspace: if run.job.workspace.is_empty() {
            "default".into()
        } else {
            run.job.workspace.clone()
        },
        state: pb::status::State::Success as i32,
        limit: 1000,
        ..Default::default()
    };
    let releases = run
        .call(|mut c| {
            let req = req.clone();
            async move { c.list_releases(req).await }
        })
        .await?
        .operations;
    let previous = crate::pipeline::rollback_release(&releases)?;
    run.get(OperationKind::Deployment, &previous.deployment_id)
        .await
}
