//! What the server remembers: builds, artifacts, deployments, releases and their status.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;
use wayline_core::pb::{self, Operation, OperationKind};
use wayline_core::{id, time};

use super::Env;
use super::ops;
use crate::cli::{ArtifactCmd, DeploymentCmd, ListFlags};
use crate::render;
use crate::render::say;
use crate::session::{self, Session};

/// The apps a command is about: `-project` and `-app`; else the config file's (with
/// `-project` overriding its project); else, outside a project folder, every app the server
/// knows of `-project`.
pub(super) async fn app_refs(
    env: &Env,
    session: &mut Session,
) -> Result<Vec<pb::r#ref::Application>> {
    let app_ref = |project: &str, app: &str| pb::r#ref::Application {
        project: project.to_owned(),
        application: app.to_owned(),
    };
    if let (Some(p), Some(a)) = (&env.global.project, &env.global.app) {
        return Ok(vec![app_ref(p, a)]);
    }
    if in_project_folder() || env.global.project.is_none() {
        return Ok(ops::targets(env)?
            .iter()
            .map(|t| app_ref(&t.project, &t.app))
            .collect());
    }
    let project = env.global.project.clone().unwrap_or_default();
    let known = session
        .client
        .get_project(pb::GetProjectRequest {
            project: project.clone(),
        })
        .await
        .map_err(super_err)?
        .into_inner();
    let apps: Vec<_> = known
        .applications
        .iter()
        .map(|a| app_ref(&project, &a.name))
        .collect();
    if apps.is_empty() {
        anyhow::bail!("project `{project}` has no apps on the server yet");
    }
    Ok(apps)
}

/// True when a config file is found from the working directory.
fn in_project_folder() -> bool {
    std::env::current_dir()
        .ok()
        .and_then(|d| wayline_config::find_config(&d).ok().flatten())
        .is_some()
}

/// The one app a list is about (see [`app_refs`]); several need `-app`.
async fn app_ref(env: &Env, session: &mut Session) -> Result<pb::r#ref::Application> {
    if env.global.app.is_none() && in_project_folder() {
        let t = ops::target(env)?;
        return Ok(pb::r#ref::Application {
            project: t.project,
            application: t.app,
        });
    }
    let mut apps = app_refs(env, session).await?;
    if apps.len() == 1 {
        return Ok(apps.remove(0));
    }
    let names: Vec<&str> = apps.iter().map(|a| a.application.as_str()).collect();
    anyhow::bail!(
        "project `{}` has several apps ({}); choose one with `-app <name>`",
        apps[0].project,
        names.join(", ")
    )
}

async fn list(
    session: &mut Session,
    kind: OperationKind,
    req: pb::ListOperationsRequest,
) -> Result<Vec<Operation>, tonic::Status> {
    let c = &mut session.client;
    let resp = match kind {
        OperationKind::Build => c.list_builds(req).await?,
        OperationKind::PushedArtifact => c.list_pushed_artifacts(req).await?,
        OperationKind::Deployment => c.list_deployments(req).await?,
        OperationKind::Release => c.list_releases(req).await?,
        _ => c.list_status_reports(req).await?,
    };
    Ok(resp.into_inner().operations)
}

fn request(env: &Env, app: pb::r#ref::Application, flags: &ListFlags) -> pb::ListOperationsRequest {
    pb::ListOperationsRequest {
        application: Some(app),
        workspace: ops::workspace(env),
        all_workspaces: flags.workspace_all,
        limit: flags.limit,
        commit: flags.commit.clone().unwrap_or_default(),
        ..Default::default()
    }
}

pub(super) fn state_word(op: &Operation) -> String {
    let st = op
        .status
        .as_ref()
        .map_or(pb::status::State::Unknown, pb::Status::state);
    match st {
        pb::status::State::Running => "running",
        pb::status::State::Success => "success",
        pb::status::State::Error => "error",
        pb::status::State::Unknown => "unknown",
    }
    .to_owned()
}

fn completed(op: &Operation) -> String {
    op.status
        .as_ref()
        .and_then(|s| s.complete_time.as_ref().or(s.start_time.as_ref()))
        .map(time::ago)
        .unwrap_or_default()
}

fn commit(op: &Operation) -> String {
    op.provenance.as_ref().map_or(String::new(), |p| {
        let short: String = p.commit.chars().take(8).collect();
        let mut s = if p.tag.is_empty() {
            short
        } else {
            format!("{} ({short})", p.tag)
        };
        if p.dirty {
            s.push('*');
        }
        s
    })
}

fn physical(op: &Operation) -> &'static str {
    match op.physical_state() {
        pb::PhysicalState::Pending => "pending",
        pb::PhysicalState::Created => "created",
        pb::PhysicalState::Destroyed => "destroyed",
        pb::PhysicalState::Unspecified => "",
    }
}

pub(super) fn op_json(op: &Operation) -> serde_json::Value {
    let p = op.provenance.clone().unwrap_or_default();
    serde_json::json!({
        "id": op.id,
        "sequence": op.sequence,
        "app": op.application.as_ref().map(|a| a.application.clone()),
        "project": op.application.as_ref().map(|a| a.project.clone()),
        "workspace": op.workspace,
        "state": state_word(op),
        "error": op.status.as_ref().map(|s| s.error.clone()).unwrap_or_default(),
        "component": op.component.as_ref().map(|c| c.name.clone()),
        "labels": op.labels,
        "job_id": op.job_id,
        "commit": p.commit, "tag": p.tag, "dirty": p.dirty, "commit_message": p.message,
        "physical_state": physical(op),
        "url": op.url,
        "public_url": op.public_url,
        "live": op.live,
        "deployment_id": op.deployment_id,
        "artifact_id": op.artifact_id,
        "digest": digest(op),
        "start_time": op.status.as_ref().and_then(|s| s.start_time.as_ref()).map(time::to_millis),
        "complete_time": op.status.as_ref().and_then(|s| s.complete_time.as_ref()).map(time::to_millis),
    })
}

/// The registry digest a pushed artifact recorded (its template data's `digest`), or "".
fn digest(op: &Operation) -> String {
    serde_json::from_str::<serde_json::Value>(&op.template_data_json)
        .ok()
        .and_then(|v| v.get("digest").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// Prints operation records; `deployments` maps deployment ids to their `vN` for releases.
fn print_ops(
    env: &Env,
    ops: &[Operation],
    long_ids: bool,
    with: &[&str],
    deployments: &std::collections::HashMap<String, u64>,
) {
    if env.global.json {
        render::json(&serde_json::Value::Array(ops.iter().map(op_json).collect()));
        return;
    }
    if ops.is_empty() {
        say!("Nothing yet.");
        return;
    }
    let mut headers = vec!["", "SEQ", "ID", "STATE", "PLUGIN", "WORKSPACE", "COMMIT"];
    headers.extend_from_slice(with);
    headers.push("COMPLETED");
    let ids: Vec<&str> = ops.iter().map(|o| o.id.as_str()).collect();
    let id_len = if long_ids {
        usize::MAX
    } else {
        render::short_id_len(&ids)
    };
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|op| {
            let mark = if op.live { "*" } else { "" };
            let mut row = vec![
                mark.to_owned(),
                id::format_sequence(op.sequence),
                render::short_id(&op.id, id_len),
                state_word(op),
                op.component
                    .as_ref()
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                op.workspace.clone(),
                commit(op),
            ];
            for w in with {
                row.push(match *w {
                    "PHYSICAL" => physical(op).to_owned(),
                    // The URL service's address when it serves the record, else the platform's.
                    "URL" if !op.public_url.is_empty() => op.public_url.clone(),
                    "URL" => op.url.clone(),
                    "DIGEST" => digest(op).chars().take(19).collect(),
                    "DEPLOYMENT" => deployments.get(&op.deployment_id).map_or_else(
                        || render::short_id(&op.deployment_id, id_len),
                        |seq| id::format_sequence(*seq),
                    ),
                    _ => String::new(),
                });
            }
            row.push(completed(op));
            row
        })
        .collect();
    render::table(&headers, &rows);
}

pub(crate) async fn artifact(env: &Env, cmd: ArtifactCmd) -> Result<ExitCode> {
    match cmd {
        ArtifactCmd::List(flags) => {
            list_kind(env, OperationKind::PushedArtifact, &flags, &["DIGEST"]).await
        }
        ArtifactCmd::ListBuilds(flags) => list_kind(env, OperationKind::Build, &flags, &[]).await,
        ArtifactCmd::Push { op } => ops::push(env, op).await,
    }
}

pub(crate) async fn deployment(env: &Env, cmd: DeploymentCmd) -> Result<ExitCode> {
    match cmd {
        DeploymentCmd::List {
            list: flags,
            physical_state,
        } => {
            let mut session = session::connect().await?;
            let app = app_ref(env, &mut session).await?;
            let mut req = request(env, app, &flags);
            req.physical_state = match physical_state.as_str() {
                "any" => pb::PhysicalState::Unspecified,
                "created" => pb::PhysicalState::Created,
                "destroyed" => pb::PhysicalState::Destroyed,
                "pending" => pb::PhysicalState::Pending,
                other => anyhow::bail!(
                    "-physical-state takes any, created, destroyed or pending, not `{other}`"
                ),
            } as i32;
            let ops = list(&mut session, OperationKind::Deployment, req)
                .await
                .map_err(super_err)?;
            print_ops(
                env,
                &ops,
                flags.long_ids,
                &["PHYSICAL", "URL"],
                &HashMap::new(),
            );
            Ok(ExitCode::SUCCESS)
        }
        DeploymentCmd::Destroy { ids, op } => {
            if ids.is_empty() {
                anyhow::bail!(
                    "name the deployments to destroy, e.g. `wayline deployment destroy v2`"
                );
            }
            ops::destroy(env, op, true, ids).await
        }
    }
}

pub(crate) async fn release_list(env: &Env, flags: &ListFlags) -> Result<ExitCode> {
    list_kind(env, OperationKind::Release, flags, &["DEPLOYMENT", "URL"]).await
}

async fn list_kind(
    env: &Env,
    kind: OperationKind,
    flags: &ListFlags,
    with: &[&str],
) -> Result<ExitCode> {
    let mut session = session::connect().await?;
    let app = app_ref(env, &mut session).await?;
    let ops = list(&mut session, kind, request(env, app.clone(), flags))
        .await
        .map_err(super_err)?;
    // Releases name their deployment by its `vN`, which differs from the release's own.
    let mut deployments = HashMap::new();
    if kind == OperationKind::Release && !ops.is_empty() {
        let all = ListFlags {
            limit: 1000,
            workspace_all: true,
            ..ListFlags::default()
        };
        for d in list(
            &mut session,
            OperationKind::Deployment,
            request(env, app, &all),
        )
        .await
        .map_err(super_err)?
        {
            deployments.insert(d.id, d.sequence);
        }
    }
    let canary = match &ops.iter().find(|r| r.live) {
        Some(live) if kind == OperationKind::Release => {
            let app = live.application.clone().unwrap_or_default();
            super::canary::of(&mut session, &app, &live.workspace).await
        }
        _ => None,
    };
    if let (Some(c), true) = (&canary, env.global.json) {
        let rows = ops.iter().map(|op| {
            let mut v = op_json(op);
            if op.live {
                v["canary"] = super::canary::json(c);
            }
            v
        });
        render::json(&serde_json::Value::Array(rows.collect()));
        return Ok(ExitCode::SUCCESS);
    }
    print_ops(env, &ops, flags.long_ids, with, &deployments);
    if let Some(c) = &canary {
        let app = c.application.clone().unwrap_or_default().application;
        say!("\n{}", render::safe(&super::canary::line(&app, c)));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn super_err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(super::describe_status(&s))
}
