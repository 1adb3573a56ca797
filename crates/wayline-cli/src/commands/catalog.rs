//! What the server remembers: builds, artifacts, deployments, releases and their status.

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

/// The project and app to list for: from flags, else from the config file.
fn app_ref(env: &Env) -> Result<pb::r#ref::Application> {
    if let (Some(p), Some(a)) = (&env.global.project, &env.global.app) {
        return Ok(pb::r#ref::Application {
            project: p.clone(),
            application: a.clone(),
        });
    }
    let t = ops::target(env)?;
    Ok(pb::r#ref::Application {
        project: t.project,
        application: t.app,
    })
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

fn state_word(op: &Operation) -> String {
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

fn op_json(op: &Operation) -> serde_json::Value {
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
        "live": op.live,
        "deployment_id": op.deployment_id,
        "artifact_id": op.artifact_id,
        "start_time": op.status.as_ref().and_then(|s| s.start_time.as_ref()).map(time::to_millis),
        "complete_time": op.status.as_ref().and_then(|s| s.complete_time.as_ref()).map(time::to_millis),
    })
}

fn print_ops(env: &Env, ops: &[Operation], long_ids: bool, with: &[&str]) {
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
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|op| {
            let mark = if op.live { "*" } else { "" };
            let mut row = vec![
                mark.to_owned(),
                id::format_sequence(op.sequence),
                if long_ids {
                    op.id.clone()
                } else {
                    id::short_id(&op.id).to_owned()
                },
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
                    "URL" => op.url.clone(),
                    "DEPLOYMENT" => op.deployment_id.chars().take(10).collect(),
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
            list_kind(env, OperationKind::PushedArtifact, &flags, &[]).await
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
            let app = app_ref(env)?;
            let mut session = session::connect().await?;
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
            print_ops(env, &ops, flags.long_ids, &["PHYSICAL", "URL"]);
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
    let app = app_ref(env)?;
    let mut session = session::connect().await?;
    let ops = list(&mut session, kind, request(env, app, flags))
        .await
        .map_err(super_err)?;
    print_ops(env, &ops, flags.long_ids, with);
    Ok(ExitCode::SUCCESS)
}

fn super_err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(super::describe_status(&s))
}

/// `wayline status`: per app, the latest deployment and release with health.
pub(crate) async fn status(env: &Env, all_projects: bool) -> Result<ExitCode> {
    let mut session = session::connect().await?;
    let apps: Vec<pb::r#ref::Application> = if all_projects {
        let projects = session
            .client
            .list_projects(())
            .await
            .map_err(super_err)?
            .into_inner()
            .projects;
        projects
            .iter()
            .flat_map(|p| {
                p.applications.iter().map(|a| pb::r#ref::Application {
                    project: p.name.clone(),
                    application: a.name.clone(),
                })
            })
            .collect()
    } else {
        vec![app_ref(env)?]
    };
    let workspace = ops::workspace(env);
    let mut rows = Vec::new();
    let mut json = Vec::new();
    let mut problems = Vec::new();
    for app in apps {
        let latest = |kind: OperationKind| pb::GetOperationRequest {
            kind: kind as i32,
            target: Some(pb::get_operation_request::Target::Latest(
                pb::get_operation_request::Latest {
                    application: Some(app.clone()),
                    workspace: workspace.clone(),
                    success_only: false,
                },
            )),
        };
        let dep = session
            .client
            .get_operation(latest(OperationKind::Deployment))
            .await
            .ok()
            .map(tonic::Response::into_inner);
        let rel = session
            .client
            .get_operation(latest(OperationKind::Release))
            .await
            .ok()
            .map(tonic::Response::into_inner);
        let report = session
            .client
            .get_operation(latest(OperationKind::StatusReport))
            .await
            .ok()
            .map(tonic::Response::into_inner);
        let health = report
            .as_ref()
            .map_or("unknown".to_owned(), |r| health_word(r.health()).to_owned());
        // Instances are the entrypoints connected now; they also report config they can't resolve.
        let instances = session
            .client
            .list_instances(pb::ListInstancesRequest {
                application: Some(app.clone()),
                workspace: workspace.clone(),
                deployment_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().instances)
            .unwrap_or_default();
        for i in &instances {
            for e in &i.config_errors {
                problems.push(format!(
                    "{}: instance {}: {e}",
                    app.application,
                    id::short_id(&i.id)
                ));
            }
        }
        rows.push(vec![
            app.project.clone(),
            app.application.clone(),
            workspace.clone(),
            dep.as_ref().map_or("-".into(), |d| {
                format!("{} {}", id::format_sequence(d.sequence), state_word(d))
            }),
            rel.as_ref().map_or("-".into(), |r| {
                format!("{} {}", id::format_sequence(r.sequence), state_word(r))
            }),
            health.clone(),
            instances.len().to_string(),
            rel.as_ref()
                .map(|r| r.url.clone())
                .filter(|u| !u.is_empty())
                .or_else(|| dep.as_ref().map(|d| d.url.clone()))
                .unwrap_or_default(),
        ]);
        json.push(serde_json::json!({
            "project": app.project, "app": app.application, "workspace": workspace,
            "deployment": dep.as_ref().map(op_json), "release": rel.as_ref().map(op_json), "health": health,
            "instances": instances.iter().map(|i| serde_json::json!({
                "id": i.id, "deployment_id": i.deployment_id, "config_errors": i.config_errors,
            })).collect::<Vec<_>>(),
        }));
    }
    if env.global.json {
        render::json(&serde_json::Value::Array(json));
    } else {
        render::table(
            &[
                "PROJECT",
                "APP",
                "WORKSPACE",
                "DEPLOYMENT",
                "RELEASE",
                "HEALTH",
                "INSTANCES",
                "URL",
            ],
            &rows,
        );
        if !problems.is_empty() {
            say!("\nConfig that deployments cannot resolve:");
            for p in &problems {
                say!("  {}", env.style.yellow(p));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn health_word(h: pb::Health) -> &'static str {
    match h {
        pb::Health::Unknown => "unknown",
        pb::Health::Alive => "alive",
        pb::Health::Ready => "ready",
        pb::Health::Down => "down",
        pb::Health::Missing => "missing",
        pb::Health::Partial => "partial",
    }
}
