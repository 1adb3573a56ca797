//! Operations (`up`, `build`, `deploy`, `release`, `rollback`, `destroy`): queue a job, run
//! the local runner that takes it, follow its output until it ends.
//!
//! Here: one function per operation. `target` finds what an operation acts on and builds its
//! job, `run` places and queues the job (with the CLI's own local runner), `follow` renders its
//! stream until it ends.

mod background;
mod follow;
mod run;
mod target;

use std::process::ExitCode;

use anyhow::Result;
use wayline_core::pb::{self, job::Operation};

pub(crate) use background::{pending_prunes, run_background};
pub(crate) use follow::follow_job;
pub(crate) use run::{DEFAULT_SERVER_WAIT, place, queue};
use run::{run_job, run_job_with};
use target::check_plugins;
pub(crate) use target::{Target, job_for, target, targets, workspace};

use crate::cli::{OpFlags, PruneFlags};
use crate::commands::Env;
use crate::render::note;
use crate::session::{self, Session};

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
        prune_runner_id: String::new(),
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
        prune_runner_id: String::new(),
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
            prune: false,
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
                crate::commands::describe_status(&s)
            )
        })?
        .into_inner();
    Ok(op.id)
}
