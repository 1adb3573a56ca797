//! What each operation of a job does with the pipeline's stages: `up` is build, push,
//! deploy, release, prune and a status report; `destroy`, `release`/`rollback` and the rest.

use wayline_proto::v1::{self as pb, Job, JobResult, OperationKind, job::Operation};

use crate::pipeline::{Pruned, Run, StepError};

/// Runs the job's operation.
pub(crate) async fn operate(
    run: &Run<'_>,
    job: &Job,
    result: &mut JobResult,
) -> Result<(), StepError> {
    match job.operation.clone() {
        Some(Operation::Build(b)) => {
            let build = run.build().await?;
            result.build = Some(build.record.clone());
            if !b.disable_push {
                result.push = Some(run.push(&build).await?.record);
            }
        }
        Some(Operation::Push(p)) => push_op(run, &p, result).await?,
        Some(Operation::Deploy(d)) => deploy_op(run, &d, result).await?,
        Some(Operation::Release(r)) => release_op(run, &r, result).await?,
        Some(Operation::Up(u)) => up_op(run, &u, result).await?,
        Some(Operation::Destroy(d)) => destroy_op(run, d, result).await?,
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

/// `push`: the latest build, or the one named.
async fn push_op(run: &Run<'_>, p: &pb::PushOp, result: &mut JobResult) -> Result<(), StepError> {
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
    Ok(())
}

/// `deploy`, and its release when asked.
async fn deploy_op(
    run: &Run<'_>,
    d: &pb::DeployOp,
    result: &mut JobResult,
) -> Result<(), StepError> {
    let artifact = if d.artifact_id.is_empty() {
        run.latest(OperationKind::PushedArtifact)
            .await?
            .ok_or_else(|| {
                StepError("there is no artifact to deploy; run `wayline build` first".into())
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
    Ok(())
}

/// `up`: build, push, deploy, then release and prune when asked, and a status report.
async fn up_op(run: &Run<'_>, u: &pb::UpOp, result: &mut JobResult) -> Result<(), StepError> {
    let build = run.build().await?;
    result.build = Some(build.record.clone());
    let pushed = run.push(&build).await?;
    result.push = Some(pushed.record.clone());
    let deployment = run.deploy(&pushed.record).await?;
    result.deploy = Some(deployment.record.clone());
    if u.release {
        let release = run.release(&deployment.record).await?;
        result.release = Some(release.record);
        if u.prune {
            prune(
                run,
                &deployment.record,
                u.prune_retain,
                &u.prune_runner_id,
                result,
            )
            .await?;
        }
    }
    result.status_report = run.status_report(&deployment.record).await?;
    Ok(())
}

/// `destroy`: the deployments named, or everything of the app in the workspace.
async fn destroy_op(
    run: &Run<'_>,
    d: pb::DestroyOp,
    result: &mut JobResult,
) -> Result<(), StepError> {
    if d.prune
        && let Some(pb::destroy_op::Target::Deployments(ids)) = &d.target
    {
        result.destroyed = run.prune_deployments(&ids.ids).await?;
        return Ok(());
    }
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
    result.release = Some(release.record);
    if r.prune {
        prune(run, &deployment, r.prune_retain, &r.prune_runner_id, result).await?;
    }
    Ok(())
}

/// The prune after a release, in this job or queued as its own (see `Run::prune_after_release`).
async fn prune(
    run: &Run<'_>,
    released: &pb::Operation,
    retain: i32,
    runner_id: &str,
    result: &mut JobResult,
) -> Result<(), StepError> {
    match run.prune_after_release(released, retain, runner_id).await? {
        Pruned::Here(destroyed) => result.destroyed = destroyed,
        Pruned::Queued(job_id) => result.prune_job_id = job_id,
    }
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
