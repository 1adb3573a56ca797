//! Entrypoint, log and exec RPCs: authenticate, pick the deployments, delegate to the hub.

use std::sync::Arc;

use futures::stream::BoxStream;
use tonic::{Request, Status};
use wayline_proto::v1 as pb;

use super::{Service, Shared, store_status};
use crate::auth::Claims;
use crate::entrypoint::{AppRef, ConfigResolver};
use crate::store::OperationTarget;

const DEFAULT_WORKSPACE: &str = "default";

/// Resolves a deployment's config from the store: its app's vars (global < project < app,
/// scoped over unscoped) for its workspace and labels.
pub(super) struct Resolver(pub(super) Arc<Shared>);

async fn deployment(shared: &Shared, id: &str) -> Result<pb::Operation, Status> {
    shared
        .store
        .get_operation(
            pb::OperationKind::Deployment as i32,
            OperationTarget::Id(id.to_owned()),
        )
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found(format!("deployment {id} does not exist")))
}

#[tonic::async_trait]
impl ConfigResolver for Resolver {
    async fn resolve(&self, deployment_id: &str) -> Result<Vec<pb::ConfigVar>, Status> {
        let d = deployment(&self.0, deployment_id).await?;
        let app = d.application.unwrap_or_default();
        let vars = self.0.config_vars().await?;
        Ok(crate::config::resolve(
            &vars,
            &crate::config::Target {
                scope: pb::config_var::Scope::App as i32,
                project: &app.project,
                app: &app.application,
                workspace: &d.workspace,
                labels: &d.labels,
            },
        ))
    }

    async fn sources(&self, deployment_id: &str) -> Result<Vec<pb::ConfigSource>, Status> {
        use pb::config_var::Scope;
        let d = deployment(&self.0, deployment_id).await?;
        let app = d.application.unwrap_or_default();
        let mut sources = self
            .0
            .store
            .list_config_sources()
            .await
            .map_err(store_status)?;
        sources.retain(|s| match Scope::try_from(s.scope) {
            Ok(Scope::Global) => true,
            Ok(Scope::Project) => s.project == app.project,
            Ok(Scope::App) => s.project == app.project && s.application == app.application,
            _ => false,
        });
        Ok(sources)
    }

    async fn url_tunnel(&self, deployment_id: &str) -> Result<Option<(String, String)>, Status> {
        let Some(opts) = &self.0.settings.url else {
            return Ok(None);
        };
        let name = opts
            .tunnel_socket
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let token = self.0.url_token(deployment_id).await?;
        Ok(Some((token, name)))
    }
}

/// The deployment(s) a log/exec/instances request means: the explicit id; else the deployment
/// of the app's live release; else the app's latest CREATED deployment.
async fn target(
    shared: &Shared,
    deployment_id: &str,
    app: Option<&pb::r#ref::Application>,
    workspace: &str,
) -> Result<Option<String>, Status> {
    if !deployment_id.is_empty() {
        return Ok(Some(deployment_id.to_owned()));
    }
    let Some(app) = app.filter(|a| !a.project.is_empty() && !a.application.is_empty()) else {
        return Ok(None);
    };
    let workspace = if workspace.is_empty() {
        DEFAULT_WORKSPACE
    } else {
        workspace
    };
    let live = shared
        .store
        .get_operation(
            pb::OperationKind::Release as i32,
            OperationTarget::Live {
                project: app.project.clone(),
                app: app.application.clone(),
                workspace: workspace.to_owned(),
            },
        )
        .await
        .map_err(store_status)?;
    if let Some(r) = live.filter(|r| !r.deployment_id.is_empty()) {
        // A live release whose deployment was destroyed runs nothing: fall through.
        let running = deployment(shared, &r.deployment_id)
            .await
            .is_ok_and(|d| d.physical_state != pb::PhysicalState::Destroyed as i32);
        if running {
            return Ok(Some(r.deployment_id));
        }
    }
    let latest = shared
        .store
        .list_operations(crate::store::OperationFilter {
            kind: pb::OperationKind::Deployment as i32,
            app: Some((app.project.clone(), app.application.clone())),
            workspace: Some(workspace.to_owned()),
            physical_state: Some(pb::PhysicalState::Created as i32),
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(store_status)?;
    match latest.into_iter().next() {
        Some(d) => Ok(Some(d.id)),
        None => Err(Status::not_found(format!(
            "app {} has no running deployment in workspace {workspace}",
            app.application
        ))),
    }
}

pub(super) async fn entrypoint_config(
    shared: &Arc<Shared>,
    deployment_id: String,
    req: pb::EntrypointConfigRequest,
) -> Result<BoxStream<'static, Result<pb::EntrypointConfigResponse, Status>>, Status> {
    let d = deployment(shared, &deployment_id).await?;
    let app = d.application.unwrap_or_default();
    let app = AppRef {
        project: app.project,
        app: app.application,
        workspace: d.workspace,
    };
    let resolver: Arc<dyn ConfigResolver> = Arc::new(Resolver(Arc::clone(shared)));
    shared
        .hub
        .entrypoint_config(deployment_id, req, app, resolver)
        .await
}

pub(super) async fn list_instances(
    shared: &Shared,
    req: pb::ListInstancesRequest,
) -> Result<pb::ListInstancesResponse, Status> {
    let ids = match target(
        shared,
        &req.deployment_id,
        req.application.as_ref(),
        &req.workspace,
    )
    .await
    {
        Ok(Some(id)) => vec![id],
        Ok(None) => Vec::new(),
        Err(e) if e.code() == tonic::Code::NotFound => {
            return Ok(pb::ListInstancesResponse::default());
        }
        Err(e) => return Err(e),
    };
    Ok(pb::ListInstancesResponse {
        instances: shared.hub.list_instances(&ids),
    })
}

pub(super) async fn log_stream(
    shared: &Shared,
    req: pb::GetLogStreamRequest,
) -> Result<BoxStream<'static, Result<pb::LogBatch, Status>>, Status> {
    let Some(id) = target(
        shared,
        &req.deployment_id,
        req.application.as_ref(),
        &req.workspace,
    )
    .await?
    else {
        return Err(Status::invalid_argument(
            "name a deployment_id or an application",
        ));
    };
    Ok(shared.hub.log_stream(vec![id], req))
}

/// `StartExecStream` over any stream of client messages (the gRPC stream, or the web UI's
/// WebSocket): the first must be `start`.
pub(super) async fn start_exec(
    shared: &Shared,
    mut inbound: impl futures::Stream<Item = Result<pb::ExecStreamRequest, Status>>
    + Send
    + Unpin
    + 'static,
) -> Result<BoxStream<'static, Result<pb::ExecStreamResponse, Status>>, Status> {
    use futures::StreamExt as _;
    let first = inbound
        .next()
        .await
        .transpose()?
        .ok_or_else(|| Status::invalid_argument("the exec stream closed before `start`"))?;
    let Some(pb::exec_stream_request::Event::Start(start)) = first.event else {
        return Err(Status::invalid_argument(
            "the first message on StartExecStream must be `start`",
        ));
    };
    super::limits::exec_start(&start)?;
    let Some(id) = target(
        shared,
        &start.deployment_id,
        start.application.as_ref(),
        &start.workspace,
    )
    .await?
    else {
        return Err(Status::invalid_argument(
            "name a deployment_id or an application",
        ));
    };
    if let Ok(d) = deployment(shared, &id).await
        && d.physical_state == pb::PhysicalState::Destroyed as i32
    {
        return Err(Status::failed_precondition(format!(
            "deployment v{} was destroyed; nothing of it runs",
            d.sequence
        )));
    }
    shared.hub.start_exec_from(vec![id], start, inbound).await
}

/// An entrypoint token reaches only its own deployment.
pub(super) fn check_deployment(claims: &Claims, deployment_id: &str) -> Result<(), Status> {
    if claims.deployment_id == deployment_id {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "this entrypoint token belongs to deployment {}, not {deployment_id}",
            claims.deployment_id
        )))
    }
}

impl Service {
    /// `StartExecStream` for the web UI: admitted like the RPC (`auth` carries the token), with
    /// the client's messages from a WebSocket instead of a gRPC stream.
    pub(crate) async fn start_exec_from(
        &self,
        auth: &Request<()>,
        inbound: impl futures::Stream<Item = Result<pb::ExecStreamRequest, Status>>
        + Send
        + Unpin
        + 'static,
    ) -> Result<BoxStream<'static, Result<pb::ExecStreamResponse, Status>>, Status> {
        self.shared.admit(auth, "StartExecStream")?;
        start_exec(&self.shared, inbound).await
    }
}
