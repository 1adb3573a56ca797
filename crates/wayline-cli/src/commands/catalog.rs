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
async fn app_refs(env: &Env, session: &mut Session) -> Result<Vec<pb::r#ref::Application>> {
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

fn super_err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(super::describe_status(&s))
}

/// What `status` knows of one app: the live release, the deployment it serves, the latest
/// deployment (which may not be released), the last health report and connected instances.
struct AppStatus {
    release: Option<Operation>,
    released: Option<Operation>,
    latest: Option<Operation>,
    report: Option<Operation>,
    instances: Vec<pb::Instance>,
    /// The serving deployment had an entrypoint once (it left log lines) but none is
    /// connected now: its process or container is gone, whatever the last report said.
    gone: bool,
    /// The serving deployment's health asked of its platform now (a container that exited is
    /// down, with or without an entrypoint); `None` when the platform could not say.
    live: Option<pb::Health>,
    /// The platform's sentence and parts (e.g. each Swarm task's state and node), when it
    /// gave any.
    detail: Option<wayline_runner::health::PlatformHealth>,
}

impl AppStatus {
    async fn fetch(session: &mut Session, app: &pb::r#ref::Application, workspace: &str) -> Self {
        let get = |target| pb::GetOperationRequest {
            kind: 0,
            target: Some(target),
        };
        let latest_of = |kind: OperationKind| pb::GetOperationRequest {
            kind: kind as i32,
            ..get(pb::get_operation_request::Target::Latest(
                pb::get_operation_request::Latest {
                    application: Some(app.clone()),
                    workspace: workspace.to_owned(),
                    success_only: false,
                },
            ))
        };
        let c = &mut session.client;
        let releases = c
            .list_releases(pb::ListOperationsRequest {
                application: Some(app.clone()),
                workspace: workspace.to_owned(),
                limit: 100,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().operations)
            .unwrap_or_default();
        // The live release; else the latest (destroyed, or never successful).
        let release = releases
            .iter()
            .find(|r| r.live)
            .or_else(|| releases.first())
            .cloned();
        let released = match release.as_ref().filter(|r| !r.deployment_id.is_empty()) {
            Some(r) => c
                .get_operation(pb::GetOperationRequest {
                    kind: OperationKind::Deployment as i32,
                    ..get(pb::get_operation_request::Target::Id(
                        r.deployment_id.clone(),
                    ))
                })
                .await
                .ok()
                .map(tonic::Response::into_inner),
            None => None,
        };
        let latest = c
            .get_operation(latest_of(OperationKind::Deployment))
            .await
            .ok()
            .map(tonic::Response::into_inner);
        let report = c
            .get_operation(latest_of(OperationKind::StatusReport))
            .await
            .ok()
            .map(tonic::Response::into_inner);
        let instances = c
            .list_instances(pb::ListInstancesRequest {
                application: Some(app.clone()),
                workspace: workspace.to_owned(),
                deployment_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().instances)
            .unwrap_or_default();
        let mut st = Self {
            release,
            released,
            latest,
            report,
            instances,
            gone: false,
            live: None,
            detail: None,
        };
        let Some(d) = st
            .serving()
            .filter(|d| d.physical_state() == pb::PhysicalState::Created)
            .cloned()
        else {
            return st;
        };
        if !st.instances.iter().any(|i| i.deployment_id == d.id) {
            st.gone = had_an_entrypoint(session, app, workspace, &d.id).await;
        }
        let now = wayline_runner::health::platform_health(&d, app, workspace).await;
        st.live = now
            .as_ref()
            .map(|p| p.health)
            .filter(|h| *h != pb::Health::Unknown);
        st.detail = now.filter(|p| !p.message.is_empty() || !p.resources.is_empty());
        st
    }

    /// The platform's sentence and one line per part, indented, for below the table.
    fn detail_lines(&self, app: &str) -> Vec<String> {
        let Some(d) = &self.detail else {
            return Vec::new();
        };
        let mut lines = vec![if d.message.is_empty() {
            format!("{app}:")
        } else {
            format!("{app}: {}", d.message)
        }];
        lines.extend(d.resources.iter().map(|r| {
            let health = health_word(r.health());
            if r.health_message.is_empty() {
                format!("  {} {} ({health})", r.r#type, r.name)
            } else {
                format!("  {} {} ({health})", r.r#type, r.health_message)
            }
        }));
        lines
    }

    /// The deployment that serves users: the released one, else the latest.
    fn serving(&self) -> Option<&Operation> {
        self.released.as_ref().or(self.latest.as_ref())
    }

    /// Health in a word; a destroyed deployment is `destroyed`, whatever its last report said.
    fn health(&self) -> String {
        let destroyed = |d: &Operation| d.physical_state() == pb::PhysicalState::Destroyed;
        if self.serving().is_some_and(destroyed) {
            return "destroyed".to_owned();
        }
        // The platform's word now wins over the last report, which may predate an exit; a
        // down signal from either the platform or the entrypoint's absence wins over both.
        match self.live {
            Some(h @ (pb::Health::Down | pb::Health::Missing)) => health_word(h).to_owned(),
            _ if self.gone => "down".to_owned(),
            Some(h) => health_word(h).to_owned(),
            None => self
                .report
                .as_ref()
                .map_or("unknown".to_owned(), |r| health_word(r.health()).to_owned()),
        }
    }

    fn release_cell(&self) -> String {
        self.release.as_ref().map_or("-".into(), |r| {
            let word = if r.live {
                "live".to_owned()
            } else if r.physical_state() == pb::PhysicalState::Destroyed
                || self
                    .released
                    .as_ref()
                    .is_some_and(|d| d.physical_state() == pb::PhysicalState::Destroyed)
            {
                "destroyed".to_owned()
            } else {
                state_word(r)
            };
            format!("{} {word}", id::format_sequence(r.sequence))
        })
    }

    /// The served deployment's `vN` and state, and the latest when it is another one.
    fn deployment_cell(&self) -> String {
        let Some(d) = self.serving() else {
            return "-".into();
        };
        let state = match d.physical_state() {
            pb::PhysicalState::Destroyed => "destroyed".to_owned(),
            _ => state_word(d),
        };
        let mut cell = format!("{} {state}", id::format_sequence(d.sequence));
        if let Some(l) = self
            .latest
            .as_ref()
            .filter(|l| l.id != d.id && l.physical_state() != pb::PhysicalState::Destroyed)
        {
            let _ = std::fmt::Write::write_fmt(
                &mut cell,
                format_args!(" (latest {} not released)", id::format_sequence(l.sequence)),
            );
        }
        cell
    }

    fn url(&self) -> String {
        if self.health() == "destroyed" {
            return String::new();
        }
        self.release
            .as_ref()
            .map(|r| {
                if r.public_url.is_empty() {
                    r.url.clone()
                } else {
                    r.public_url.clone()
                }
            })
            .filter(|u| !u.is_empty())
            .or_else(|| self.serving().map(|d| d.url.clone()))
            .unwrap_or_default()
    }
}

/// True when the deployment's entrypoint left log lines on the server (the server keeps the
/// window of a disconnected instance), i.e. it ran and stopped. Bounded: a slow answer is no.
async fn had_an_entrypoint(
    session: &mut Session,
    app: &pb::r#ref::Application,
    workspace: &str,
    deployment_id: &str,
) -> bool {
    let req = pb::GetLogStreamRequest {
        application: Some(app.clone()),
        workspace: workspace.to_owned(),
        deployment_id: deployment_id.to_owned(),
        instance_id: String::new(),
        since: None,
        follow: false,
    };
    let probe = async {
        let mut stream = session.client.get_log_stream(req).await.ok()?.into_inner();
        let batch = stream.message().await.ok()??;
        Some(!batch.lines.is_empty())
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// `wayline status`: per app, the live release, the deployment it serves (both numbers),
/// health and instances.
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
        app_refs(env, &mut session).await?
    };
    let workspace = ops::workspace(env);
    let mut rows = Vec::new();
    let mut json = Vec::new();
    let mut problems = Vec::new();
    let mut pruning = Vec::new();
    let mut details = Vec::new();
    let mut canaries = Vec::new();
    for app in apps {
        let st = AppStatus::fetch(&mut session, &app, &workspace).await;
        let prunes = ops::pending_prunes(&mut session, &app, &workspace).await;
        let canary = super::canary::of(&mut session, &app, &workspace).await;
        if let Some(c) = &canary {
            canaries.push(super::canary::line(&app.application, c));
        }
        for (job, state) in &prunes {
            pruning.push(format!(
                "{}: pruning older deployments in job {job} ({state})",
                app.application
            ));
        }
        // Instances are the entrypoints connected now; they also report config they can't resolve.
        for i in &st.instances {
            for e in &i.config_errors {
                problems.push(format!(
                    "{}: instance {}: {e}",
                    app.application,
                    id::short_id(&i.id)
                ));
            }
        }
        details.extend(st.detail_lines(&app.application));
        rows.push(vec![
            app.project.clone(),
            app.application.clone(),
            workspace.clone(),
            st.release_cell(),
            st.deployment_cell(),
            st.health(),
            st.instances.len().to_string(),
            st.url(),
        ]);
        json.push(serde_json::json!({
            "project": app.project, "app": app.application, "workspace": workspace,
            "release": st.release.as_ref().map(op_json),
            "deployment": st.serving().map(op_json),
            "latest_deployment": st.latest.as_ref().map(op_json),
            "health": st.health(),
            "health_message": st.detail.as_ref().map(|d| d.message.clone()),
            "parts": st.detail.as_ref().map(|d| d.resources.iter().map(|r| serde_json::json!({
                "type": r.r#type, "name": r.name, "health": health_word(r.health()),
                "message": r.health_message,
            })).collect::<Vec<_>>()),
            "instances": st.instances.iter().map(|i| serde_json::json!({
                "id": i.id, "deployment_id": i.deployment_id, "config_errors": i.config_errors,
            })).collect::<Vec<_>>(),
            "canary": canary.as_ref().map(super::canary::json),
            "pruning": prunes.iter().map(|(job, state)| serde_json::json!({
                "job_id": job, "state": state,
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
                "RELEASE",
                "DEPLOYMENT",
                "HEALTH",
                "INSTANCES",
                "URL",
            ],
            &rows,
        );
        for d in &details {
            say!("{}", render::safe(d));
        }
        for c in &canaries {
            say!("{}", render::safe(c));
        }
        for p in &pruning {
            say!("{}", env.style.dim(&render::safe(p)));
        }
        if !problems.is_empty() {
            say!("\nConfig that deployments cannot resolve:");
            for p in &problems {
                say!("  {}", env.style.yellow(&render::safe(p)));
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
