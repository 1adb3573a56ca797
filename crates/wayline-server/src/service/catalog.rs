//! Projects, workspaces, operations (builds … status reports), config and hostnames.

use tonic::{Request, Response, Status};
use wayline_proto::v1 as pb;
use wayline_proto::v1::OperationKind;

use super::{Rs, Service, Shared, store_status};
use crate::auth::{Claims, TokenKind};
use crate::store::{OperationFilter, OperationTarget};

const DEFAULT_WORKSPACE: &str = "default";

fn kind_name(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Build => "build",
        OperationKind::PushedArtifact => "pushed artifact",
        OperationKind::Deployment => "deployment",
        OperationKind::Release => "release",
        OperationKind::StatusReport => "status report",
        OperationKind::Unspecified => "record",
    }
}

pub(super) async fn list_workspaces(shared: &Shared) -> Result<pb::ListWorkspacesResponse, Status> {
    let mut workspaces = shared.store.list_workspaces().await.map_err(store_status)?;
    if !workspaces.iter().any(|w| w.name == DEFAULT_WORKSPACE) {
        workspaces.insert(
            0,
            pb::Workspace {
                name: DEFAULT_WORKSPACE.to_owned(),
                ..Default::default()
            },
        );
    }
    Ok(pb::ListWorkspacesResponse { workspaces })
}

pub(super) async fn get_workspace(shared: &Shared, name: &str) -> Result<pb::Workspace, Status> {
    let all = list_workspaces(shared).await?;
    all.workspaces
        .into_iter()
        .find(|w| w.name == name)
        .ok_or_else(|| {
            Status::not_found(format!(
                "workspace {name} does not exist (workspaces are created on first use)"
            ))
        })
}

pub(super) async fn upsert_project(
    shared: &Shared,
    req: pb::UpsertProjectRequest,
) -> Result<pb::Project, Status> {
    let p = req
        .project
        .ok_or_else(|| Status::invalid_argument("project is required"))?;
    shared.store.upsert_project(p).await.map_err(store_status)
}

pub(super) async fn get_project(shared: &Shared, name: &str) -> Result<pb::Project, Status> {
    shared
        .store
        .get_project(name)
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found(format!("project {name} does not exist")))
}

pub(super) async fn destroy_project(
    shared: &Shared,
    req: pb::DestroyProjectRequest,
) -> Result<(), Status> {
    let project = get_project(shared, &req.project).await?;
    if !req.skip_destroy_resources {
        let mut live = 0;
        for app in &project.applications {
            let deployments = shared
                .store
                .list_operations(OperationFilter {
                    kind: OperationKind::Deployment as i32,
                    app: Some((project.name.clone(), app.name.clone())),
                    physical_state: Some(pb::PhysicalState::Created as i32),
                    ..Default::default()
                })
                .await
                .map_err(store_status)?;
            live += deployments.len();
        }
        if live > 0 {
            return Err(Status::failed_precondition(format!(
                "project {} still has {live} deployment(s) that are not destroyed; run `wayline destroy` first or skip destroying resources",
                project.name
            )));
        }
    }
    shared
        .store
        .delete_project(&project.name)
        .await
        .map_err(store_status)?;
    shared.urls.touch();
    Ok(())
}

pub(super) async fn upsert(
    shared: &Shared,
    kind: OperationKind,
    req: pb::UpsertOperationRequest,
) -> Result<pb::Operation, Status> {
    let mut op = req
        .operation
        .ok_or_else(|| Status::invalid_argument("operation is required"))?;
    if op.kind != OperationKind::Unspecified as i32 && op.kind != kind as i32 {
        return Err(Status::invalid_argument(format!(
            "operation.kind is {} but this RPC stores a {}",
            kind_name(OperationKind::try_from(op.kind).unwrap_or(OperationKind::Unspecified)),
            kind_name(kind)
        )));
    }
    op.kind = kind as i32;
    // Computed on the way out, never stored.
    op.public_url.clear();
    let mut stored = shared
        .store
        .upsert_operation(op)
        .await
        .map_err(store_status)?;
    if matches!(kind, OperationKind::Deployment | OperationKind::Release) {
        shared.urls.touch();
    }
    shared.urls.decorate(&mut stored);
    Ok(stored)
}

pub(super) async fn list(
    shared: &Shared,
    kind: OperationKind,
    req: pb::ListOperationsRequest,
) -> Result<pb::ListOperationsResponse, Status> {
    let app = match req.application {
        Some(a) if a.project.is_empty() || a.application.is_empty() => {
            return Err(Status::invalid_argument(
                "application needs both project and application",
            ));
        }
        Some(a) => Some((a.project, a.application)),
        None => None,
    };
    let workspace = if req.all_workspaces {
        None
    } else if req.workspace.is_empty() {
        // Without an app, list across workspaces unless one is named.
        app.as_ref().map(|_| DEFAULT_WORKSPACE.to_owned())
    } else {
        Some(req.workspace)
    };
    let filter = OperationFilter {
        kind: kind as i32,
        app,
        workspace,
        commit_prefix: Some(req.commit).filter(|c| !c.is_empty()),
        physical_state: Some(req.physical_state).filter(|s| *s != 0),
        state: Some(req.state).filter(|s| *s != 0),
        limit: req.limit,
        ascending: req.ascending,
    };
    let mut operations = shared
        .store
        .list_operations(filter)
        .await
        .map_err(store_status)?;
    for op in &mut operations {
        shared.urls.decorate(op);
    }
    Ok(pb::ListOperationsResponse { operations })
}

fn app_of(a: Option<pb::r#ref::Application>) -> Result<(String, String), Status> {
    match a {
        Some(a) if !a.project.is_empty() && !a.application.is_empty() => {
            Ok((a.project, a.application))
        }
        _ => Err(Status::invalid_argument(
            "application is required: set both project and application",
        )),
    }
}

pub(super) async fn get_operation(
    shared: &Shared,
    req: pb::GetOperationRequest,
) -> Result<pb::Operation, Status> {
    use pb::get_operation_request::Target;
    let kind = OperationKind::try_from(req.kind)
        .ok()
        .filter(|k| *k != OperationKind::Unspecified)
        .ok_or_else(|| {
            Status::invalid_argument("kind is required (build, deployment, release, …)")
        })?;
    let what = kind_name(kind);
    let (target, missing) = match req.target {
        None => {
            return Err(Status::invalid_argument(
                "target is required: id, latest or sequence",
            ));
        }
        Some(Target::Id(given)) => {
            let id = super::ids::operation(shared, kind, what, &given).await?;
            let missing = format!("{what} {id} does not exist");
            (OperationTarget::Id(id), missing)
        }
        Some(Target::Latest(l)) => {
            let (project, app) = app_of(l.application)?;
            let workspace = if l.workspace.is_empty() {
                DEFAULT_WORKSPACE.to_owned()
            } else {
                l.workspace
            };
            let missing = format!(
                "app {app} has no {}{what} in workspace {workspace}",
                if l.success_only { "successful " } else { "" }
            );
            (
                OperationTarget::Latest {
                    project,
                    app,
                    workspace,
                    success_only: l.success_only,
                },
                missing,
            )
        }
        Some(Target::Sequence(s)) => {
            let (project, app) = app_of(s.application)?;
            let missing = format!("app {app} has no {what} v{}", s.sequence);
            (
                OperationTarget::Sequence {
                    project,
                    app,
                    seq: s.sequence,
                },
                missing,
            )
        }
    };
    let mut op = shared
        .store
        .get_operation(kind as i32, target)
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found(missing))?;
    shared.urls.decorate(&mut op);
    Ok(op)
}

pub(super) async fn set_config(shared: &Shared, req: pb::SetConfigRequest) -> Result<(), Status> {
    for v in &req.variables {
        crate::config::validate(v).map_err(Status::invalid_argument)?;
    }
    let runner_scoped = req
        .variables
        .iter()
        .any(|v| v.scope == pb::config_var::Scope::Runner as i32);
    shared
        .store
        .set_config(req.variables)
        .await
        .map_err(store_status)?;
    shared.invalidate_config();
    shared.hub.config_changed();
    if runner_scoped {
        super::runner::push_config(shared).await?;
    }
    Ok(())
}

pub(super) async fn get_config(
    shared: &Shared,
    req: pb::GetConfigRequest,
) -> Result<pb::GetConfigResponse, Status> {
    use pb::config_var::Scope;
    let vars = shared.config_vars().await?;
    let mut variables = if req.resolve {
        let workspace = if req.workspace.is_empty() {
            DEFAULT_WORKSPACE
        } else {
            &req.workspace
        };
        crate::config::resolve(
            &vars,
            &crate::config::Target {
                scope: req.scope,
                project: &req.project,
                app: &req.application,
                workspace,
                labels: &req.labels,
            },
        )
    } else {
        let scope = Scope::try_from(req.scope).unwrap_or(Scope::Global);
        vars.iter()
            .filter(|v| v.scope == req.scope)
            .filter(|v| match scope {
                Scope::Project => v.project == req.project,
                Scope::App => v.project == req.project && v.application == req.application,
                Scope::Global | Scope::Runner => true,
            })
            .filter(|v| req.workspace.is_empty() || v.workspace == req.workspace)
            .cloned()
            .collect()
    };
    variables.retain(|v| v.name.starts_with(&req.prefix));
    Ok(pb::GetConfigResponse { variables })
}

pub(super) async fn set_config_source(
    shared: &Shared,
    req: pb::SetConfigSourceRequest,
) -> Result<(), Status> {
    let s = req
        .source
        .ok_or_else(|| Status::invalid_argument("source is required"))?;
    if s.r#type.is_empty() {
        return Err(Status::invalid_argument(
            "source.type is required (the config sourcer plugin name)",
        ));
    }
    shared
        .store
        .set_config_source(s)
        .await
        .map_err(store_status)
}

pub(super) async fn create_hostname(
    shared: &Shared,
    req: pb::CreateHostnameRequest,
) -> Result<pb::Hostname, Status> {
    let hostname = if req.hostname.is_empty() {
        let id = wayline_core::id::new_id().to_lowercase();
        format!("wl-{}", &id[id.len() - 8..])
    } else {
        req.hostname
    };
    if !hostname
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
        || hostname.starts_with('-')
    {
        return Err(Status::invalid_argument(format!(
            "hostname `{hostname}` may only contain letters, digits and `-` (and may not start with `-`)"
        )));
    }
    let domain = super::admin::server_config(shared).await?.url_domain;
    let fqdn = if domain.is_empty() {
        hostname.clone()
    } else {
        format!("{hostname}.{domain}")
    };
    let h = pb::Hostname {
        hostname,
        fqdn,
        application: req.application,
        workspace: req.workspace,
        deployment_id: req.deployment_id,
    };
    shared.store.create_hostname(h).await.map_err(store_status)
}

pub(super) async fn list_projects(shared: &Shared) -> Result<pb::ListProjectsResponse, Status> {
    let projects = shared.store.list_projects().await.map_err(store_status)?;
    Ok(pb::ListProjectsResponse { projects })
}

pub(super) async fn upsert_application(
    shared: &Shared,
    req: &pb::UpsertApplicationRequest,
) -> Result<pb::Application, Status> {
    shared
        .store
        .upsert_application(&req.project, &req.name)
        .await
        .map_err(store_status)
}

/// A runner syncs the `config {}` of the file it deploys: project and app scopes only.
pub(super) fn runner_may_set(claims: &Claims, req: &pb::SetConfigRequest) -> Result<(), Status> {
    use pb::config_var::Scope;
    if claims.kind != TokenKind::Runner {
        return Ok(());
    }
    let other = req
        .variables
        .iter()
        .find(|v| !matches!(Scope::try_from(v.scope), Ok(Scope::Project | Scope::App)));
    match other {
        None => Ok(()),
        Some(v) => Err(Status::permission_denied(format!(
            "a runner token may set project and app config only, not `{}` at {:?} scope",
            v.name,
            Scope::try_from(v.scope).unwrap_or(Scope::Global)
        ))),
    }
}

pub(super) async fn get_config_source(
    shared: &Shared,
    want: &str,
) -> Result<pb::GetConfigSourceResponse, Status> {
    let mut sources = shared
        .store
        .list_config_sources()
        .await
        .map_err(store_status)?;
    sources.retain(|s| want.is_empty() || s.r#type == want);
    Ok(pb::GetConfigSourceResponse { sources })
}

pub(super) async fn delete_hostname(shared: &Shared, name: &str) -> Result<(), Status> {
    if shared
        .store
        .delete_hostname(name)
        .await
        .map_err(store_status)?
    {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "hostname {name} is not registered"
        )))
    }
}

pub(super) async fn list_hostnames(
    shared: &Shared,
    app: Option<&pb::r#ref::Application>,
) -> Result<pb::ListHostnamesResponse, Status> {
    let mut hostnames = shared.store.list_hostnames().await.map_err(store_status)?;
    if let Some(app) = app {
        hostnames.retain(|h| h.application.as_ref() == Some(app));
    }
    Ok(pb::ListHostnamesResponse { hostnames })
}

pub(super) async fn upsert_trigger(
    shared: &Shared,
    req: pb::UpsertTriggerRequest,
) -> Result<pb::Trigger, Status> {
    let t = req
        .trigger
        .ok_or_else(|| Status::invalid_argument("trigger is required"))?;
    if t.name.is_empty() {
        return Err(Status::invalid_argument("trigger.name is required"));
    }
    shared.store.upsert_trigger(t).await.map_err(store_status)
}

pub(super) async fn list_triggers(shared: &Shared) -> Result<pb::ListTriggersResponse, Status> {
    let triggers = shared.store.list_triggers().await.map_err(store_status)?;
    Ok(pb::ListTriggersResponse { triggers })
}

impl Service {
    /// `Upsert<Kind>`: the five operation kinds share one implementation.
    pub(super) async fn upsert_operation(
        &self,
        req: Request<pb::UpsertOperationRequest>,
        method: &'static str,
        kind: pb::OperationKind,
    ) -> Rs<pb::Operation> {
        self.shared.admit(&req, method)?;
        upsert(&self.shared, kind, req.into_inner())
            .await
            .map(Response::new)
    }

    /// `List<Kind>s`.
    pub(super) async fn list_operations(
        &self,
        req: Request<pb::ListOperationsRequest>,
        method: &'static str,
        kind: pb::OperationKind,
    ) -> Rs<pb::ListOperationsResponse> {
        self.shared.admit(&req, method)?;
        list(&self.shared, kind, req.into_inner())
            .await
            .map(Response::new)
    }
}
