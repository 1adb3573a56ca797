//! The UI's one way to the data: the gRPC service itself, called in process with the session's
//! token as `authorization: Bearer`, so every page goes through the same door
//! (`Shared::admit`: token kind, input bounds) and the same code as the CLI's calls. The UI can
//! never do what the browser's token cannot.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tonic::{Code, Request, Status};
use wayline_proto::v1 as pb;
use wayline_proto::v1::wayline_server::Wayline as _;

use super::layout::{Ctx, message};
use super::session::{Session, signin_page};
use crate::service::{Service, Shared};

/// The service, as the signed-in browser.
#[derive(Clone)]
pub(crate) struct Api {
    svc: Service,
    token: String,
}

/// A refused or failed call, shown as a page with the fitting status.
#[derive(Debug)]
pub(crate) struct UiError(pub(crate) Status);

impl From<Status> for UiError {
    fn from(s: Status) -> Self {
        Self(s)
    }
}

impl UiError {
    /// A 404 with this sentence.
    pub(crate) fn not_found(text: impl Into<String>) -> Self {
        Self(Status::not_found(text.into()))
    }

    /// A 400 with this sentence.
    pub(crate) fn invalid(text: impl Into<String>) -> Self {
        Self(Status::invalid_argument(text.into()))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title) = match self.0.code() {
            // A token revoked or expired while the cookie lives: sign in again.
            Code::Unauthenticated => return signin_page(self.0.message()),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "Not allowed"),
            Code::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists => {
                (StatusCode::BAD_REQUEST, "Not done")
            }
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "Too much"),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Server error"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0.message(), "web UI call failed");
        }
        let ctx = Ctx::default();
        (status, message(&ctx, title, self.0.message())).into_response()
    }
}

/// What a page handler returns.
pub(crate) type Page = Result<Response, UiError>;

/// Turns a `tonic` response into its message.
pub(crate) type Rs<T> = Result<T, UiError>;

impl Api {
    /// The service as this session.
    pub(crate) fn new(shared: &Arc<Shared>, session: &Session) -> Self {
        Self {
            svc: Service {
                shared: Arc::clone(shared),
            },
            token: session.token.clone(),
        }
    }

    /// The service itself (for the streaming RPCs).
    pub(crate) fn service(&self) -> &Service {
        &self.svc
    }

    /// A request carrying the session's token.
    pub(crate) fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Ok(v) = format!("Bearer {}", self.token).parse() {
            r.metadata_mut().insert("authorization", v);
        }
        r
    }

    /// `ListWorkspaces`, names sorted, `default` always first.
    pub(crate) async fn workspaces(&self) -> Rs<Vec<String>> {
        let mut names: Vec<String> = self
            .svc
            .list_workspaces(self.req(pb::ListWorkspacesRequest {}))
            .await?
            .into_inner()
            .workspaces
            .into_iter()
            .map(|w| w.name)
            .filter(|n| n != super::DEFAULT_WORKSPACE)
            .collect();
        names.sort();
        names.insert(0, super::DEFAULT_WORKSPACE.to_owned());
        Ok(names)
    }

    /// `ListProjects`, by name.
    pub(crate) async fn projects(&self) -> Rs<Vec<pb::Project>> {
        let mut p = self
            .svc
            .list_projects(self.req(()))
            .await?
            .into_inner()
            .projects;
        p.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(p)
    }

    /// `GetProject`.
    pub(crate) async fn project(&self, name: &str) -> Rs<pb::Project> {
        Ok(self
            .svc
            .get_project(self.req(pb::GetProjectRequest {
                project: name.to_owned(),
            }))
            .await?
            .into_inner())
    }

    /// `List<Kind>s` of one app in one workspace, newest first.
    pub(crate) async fn ops(
        &self,
        kind: pb::OperationKind,
        project: &str,
        app: &str,
        workspace: &str,
        limit: u32,
    ) -> Rs<Vec<pb::Operation>> {
        let r = pb::ListOperationsRequest {
            application: Some(pb::r#ref::Application {
                project: project.to_owned(),
                application: app.to_owned(),
            }),
            workspace: workspace.to_owned(),
            limit,
            ..Default::default()
        };
        let out = match kind {
            pb::OperationKind::Build => self.svc.list_builds(self.req(r)).await,
            pb::OperationKind::PushedArtifact => self.svc.list_pushed_artifacts(self.req(r)).await,
            pb::OperationKind::Deployment => self.svc.list_deployments(self.req(r)).await,
            pb::OperationKind::Release => self.svc.list_releases(self.req(r)).await,
            pb::OperationKind::StatusReport => self.svc.list_status_reports(self.req(r)).await,
            pb::OperationKind::Unspecified => return Ok(Vec::new()),
        };
        Ok(out?.into_inner().operations)
    }

    /// `GetOperation` by id; `None` when there is none.
    pub(crate) async fn op_by_id(
        &self,
        kind: pb::OperationKind,
        id: &str,
    ) -> Rs<Option<pb::Operation>> {
        let r = self
            .svc
            .get_operation(self.req(pb::GetOperationRequest {
                kind: kind as i32,
                target: Some(pb::get_operation_request::Target::Id(id.to_owned())),
            }))
            .await;
        match r {
            Ok(op) => Ok(Some(op.into_inner())),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(s.into()),
        }
    }

    /// `ListJobs`.
    pub(crate) async fn jobs(&self, r: pb::ListJobsRequest) -> Rs<Vec<pb::Job>> {
        Ok(self.svc.list_jobs(self.req(r)).await?.into_inner().jobs)
    }

    /// `GetJob`.
    pub(crate) async fn job(&self, id: &str) -> Rs<pb::Job> {
        Ok(self
            .svc
            .get_job(self.req(pb::GetJobRequest {
                job_id: id.to_owned(),
            }))
            .await?
            .into_inner())
    }

    /// `ListInstances` of one deployment ("" = all of the app's).
    pub(crate) async fn instances(
        &self,
        project: &str,
        app: &str,
        workspace: &str,
        deployment_id: &str,
    ) -> Rs<Vec<pb::Instance>> {
        Ok(self
            .svc
            .list_instances(self.req(pb::ListInstancesRequest {
                application: Some(pb::r#ref::Application {
                    project: project.to_owned(),
                    application: app.to_owned(),
                }),
                workspace: workspace.to_owned(),
                deployment_id: deployment_id.to_owned(),
            }))
            .await?
            .into_inner()
            .instances)
    }

    /// `GetConfig` of a scope (values as stored, not resolved).
    pub(crate) async fn config(&self, r: pb::GetConfigRequest) -> Rs<Vec<pb::ConfigVar>> {
        Ok(self
            .svc
            .get_config(self.req(r))
            .await?
            .into_inner()
            .variables)
    }

    /// `SetConfig`.
    pub(crate) async fn set_config(&self, vars: Vec<pb::ConfigVar>) -> Rs<()> {
        self.svc
            .set_config(self.req(pb::SetConfigRequest { variables: vars }))
            .await?;
        Ok(())
    }

    /// `UpsertProject`.
    pub(crate) async fn upsert_project(&self, p: pb::Project) -> Rs<pb::Project> {
        Ok(self
            .svc
            .upsert_project(self.req(pb::UpsertProjectRequest { project: Some(p) }))
            .await?
            .into_inner())
    }

    /// `QueueJob`; returns the job id.
    pub(crate) async fn queue(&self, job: pb::Job) -> Rs<String> {
        Ok(self
            .svc
            .queue_job(self.req(pb::QueueJobRequest {
                job: Some(job),
                expires_in: String::new(),
            }))
            .await?
            .into_inner()
            .job_id)
    }

    /// `CancelJob`.
    pub(crate) async fn cancel(&self, id: &str, force: bool) -> Rs<()> {
        self.svc
            .cancel_job(self.req(pb::CancelJobRequest {
                job_id: id.to_owned(),
                force,
            }))
            .await?;
        Ok(())
    }

    /// `ListRunners`.
    pub(crate) async fn runners(&self) -> Rs<Vec<pb::Runner>> {
        Ok(self
            .svc
            .list_runners(self.req(pb::ListRunnersRequest::default()))
            .await?
            .into_inner()
            .runners)
    }

    /// `AdoptRunner` (or reject).
    pub(crate) async fn adopt(&self, id: &str, reject: bool) -> Rs<()> {
        self.svc
            .adopt_runner(self.req(pb::AdoptRunnerRequest {
                runner_id: id.to_owned(),
                reject,
            }))
            .await?;
        Ok(())
    }

    /// `ForgetRunner`.
    pub(crate) async fn forget(&self, id: &str) -> Rs<()> {
        self.svc
            .forget_runner(self.req(pb::ForgetRunnerRequest {
                runner_id: id.to_owned(),
            }))
            .await?;
        Ok(())
    }

    /// The app's canary in force (`ListCanaries`), if any.
    pub(crate) async fn canary(
        &self,
        project: &str,
        app: &str,
        workspace: &str,
    ) -> Rs<Option<pb::Canary>> {
        Ok(self
            .svc
            .list_canaries(self.req(pb::ListCanariesRequest {
                application: Some(pb::r#ref::Application {
                    project: project.to_owned(),
                    application: app.to_owned(),
                }),
                workspace: workspace.to_owned(),
            }))
            .await?
            .into_inner()
            .canaries
            .into_iter()
            .find(|c| c.weight > 0))
    }

    /// `SetCanary`.
    pub(crate) async fn set_canary(&self, r: pb::SetCanaryRequest) -> Rs<pb::Canary> {
        Ok(self.svc.set_canary(self.req(r)).await?.into_inner())
    }
}
