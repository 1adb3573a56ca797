//! `wayline status`: for each app, the live release, the deployment it serves, the latest
//! deployment, health (the platform asked now) and the connected instances.

use std::process::ExitCode;

use anyhow::Result;
use wayline_core::id;
use wayline_core::pb::{self, Operation, OperationKind};
use wayline_runner::health::health_word;

use super::Env;
use super::catalog::{app_refs, op_json, state_word, super_err};
use super::ops;
use crate::render;
use crate::render::say;
use crate::session::{self, Session};

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

/// The apps `status` is about: every app of every project, or the ones the command names.
async fn which_apps(
    env: &Env,
    session: &mut Session,
    all_projects: bool,
) -> Result<Vec<pb::r#ref::Application>> {
    if !all_projects {
        return app_refs(env, session).await;
    }
    let projects = session
        .client
        .list_projects(())
        .await
        .map_err(super_err)?
        .into_inner()
        .projects;
    Ok(projects
        .iter()
        .flat_map(|p| {
            p.applications.iter().map(|a| pb::r#ref::Application {
                project: p.name.clone(),
                application: a.name.clone(),
            })
        })
        .collect())
}

/// One app's status as `-json` prints it.
fn app_json(
    app: &pb::r#ref::Application,
    workspace: &str,
    st: &AppStatus,
    canary: Option<&pb::Canary>,
    prunes: &[(String, String)],
) -> serde_json::Value {
    serde_json::json!({
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
        "canary": canary.map(super::canary::json),
        "pruning": prunes.iter().map(|(job, state)| serde_json::json!({
            "job_id": job, "state": state,
        })).collect::<Vec<_>>(),
    })
}

/// What `status` prints: the table (or JSON), then the lines under it.
#[derive(Default)]
struct Report {
    rows: Vec<Vec<String>>,
    json: Vec<serde_json::Value>,
    problems: Vec<String>,
    pruning: Vec<String>,
    details: Vec<String>,
    canaries: Vec<String>,
}

impl Report {
    async fn add(&mut self, session: &mut Session, app: &pb::r#ref::Application, workspace: &str) {
        let st = AppStatus::fetch(session, app, workspace).await;
        let prunes = ops::pending_prunes(session, app, workspace).await;
        let canary = super::canary::of(session, app, workspace).await;
        if let Some(c) = &canary {
            self.canaries.push(super::canary::line(&app.application, c));
        }
        for (job, state) in &prunes {
            self.pruning.push(format!(
                "{}: pruning older deployments in job {job} ({state})",
                app.application
            ));
        }
        // Instances are the entrypoints connected now; they also report config they can't resolve.
        for i in &st.instances {
            for e in &i.config_errors {
                self.problems.push(format!(
                    "{}: instance {}: {e}",
                    app.application,
                    id::short_id(&i.id)
                ));
            }
        }
        self.details.extend(st.detail_lines(&app.application));
        self.rows.push(vec![
            app.project.clone(),
            app.application.clone(),
            workspace.to_owned(),
            st.release_cell(),
            st.deployment_cell(),
            st.health(),
            st.instances.len().to_string(),
            st.url(),
        ]);
        self.json
            .push(app_json(app, workspace, &st, canary.as_ref(), &prunes));
    }

    fn print(self, env: &Env) {
        if env.global.json {
            render::json(&serde_json::Value::Array(self.json));
            return;
        }
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
            &self.rows,
        );
        for d in self.details.iter().chain(&self.canaries) {
            say!("{}", render::safe(d));
        }
        for p in &self.pruning {
            say!("{}", env.style.dim(&render::safe(p)));
        }
        if !self.problems.is_empty() {
            say!("\nConfig that deployments cannot resolve:");
            for p in &self.problems {
                say!("  {}", env.style.yellow(&render::safe(p)));
            }
        }
    }
}

/// `wayline status`: per app, the live release, the deployment it serves (both numbers),
/// health and instances.
pub(crate) async fn status(env: &Env, all_projects: bool) -> Result<ExitCode> {
    let mut session = session::connect().await?;
    let apps = which_apps(env, &mut session, all_projects).await?;
    let workspace = ops::workspace(env);
    let mut report = Report::default();
    for app in apps {
        report.add(&mut session, &app, &workspace).await;
    }
    report.print(env);
    Ok(ExitCode::SUCCESS)
}
