//! The `wayline.v1.Wayline` gRPC service: authentication at the door, then one method per RPC.
//!
//! Every method admits its request through one door ([`Shared::admit`], with the table of who
//! may call what in `access` and the input bounds in `limits`), then delegates; the work lives
//! in the sibling modules (`jobs`, `runner`, `catalog`, `instances`, `admin`).

mod access;
pub(crate) mod admin;
mod catalog;
mod ids;
mod instances;
mod jobs;
mod limits;
mod runner;
mod shared;
pub(crate) mod status;

pub(crate) use admin::staged_restore_path;
pub(crate) use shared::{Settings, Shared};
pub(crate) use status::store_status;

use std::sync::Arc;

use futures::stream::BoxStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use wayline_proto::v1 as pb;

use crate::auth::TokenKind;

/// The gRPC service.
#[derive(Clone)]
pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
}

pub(super) type Rs<T> = Result<Response<T>, Status>;
type Out<T> = ReceiverStream<Result<T, Status>>;
type Boxed<T> = BoxStream<'static, Result<T, Status>>;

type Ops = pb::ListOperationsResponse;

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("{what} is not available in this version"))
}

#[tonic::async_trait]
impl pb::wayline_server::Wayline for Service {
    async fn get_version_info(&self, req: Request<()>) -> Rs<pb::GetVersionInfoResponse> {
        self.shared.admit(&req, "GetVersionInfo")?;
        Ok(Response::new(pb::GetVersionInfoResponse {
            info: Some(pb::VersionInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                commit: option_env!("WAYLINE_GIT_COMMIT").unwrap_or("").to_owned(),
                api_version: 1,
            }),
        }))
    }

    async fn bootstrap_token(&self, req: Request<()>) -> Rs<pb::NewTokenResponse> {
        self.shared.admit(&req, "BootstrapToken")?;
        admin::bootstrap(&self.shared).await.map(Response::new)
    }

    async fn generate_login_token(
        &self,
        req: Request<pb::GenerateLoginTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared.admit(&req, "GenerateLoginToken")?;
        admin::generate(&self.shared, TokenKind::Login, &req.get_ref().expires_in)
            .await
            .map(Response::new)
    }

    async fn generate_invite_token(
        &self,
        req: Request<pb::GenerateInviteTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared.admit(&req, "GenerateInviteToken")?;
        let exp = if req.get_ref().expires_in.is_empty() {
            "24h"
        } else {
            &req.get_ref().expires_in
        };
        admin::generate(&self.shared, TokenKind::Invite, exp)
            .await
            .map(Response::new)
    }

    async fn convert_invite_token(
        &self,
        req: Request<pb::ConvertInviteTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared.admit(&req, "ConvertInviteToken")?;
        admin::convert_invite(&self.shared, &req.get_ref().token)
            .await
            .map(Response::new)
    }

    async fn generate_runner_token(
        &self,
        req: Request<pb::GenerateRunnerTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared.admit(&req, "GenerateRunnerToken")?;
        admin::runner_token(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn generate_entrypoint_token(
        &self,
        req: Request<pb::GenerateEntrypointTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared.admit(&req, "GenerateEntrypointToken")?;
        admin::entrypoint_token(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn revoke_token(&self, req: Request<pb::RevokeTokenRequest>) -> Rs<()> {
        self.shared.admit(&req, "RevokeToken")?;
        admin::revoke(&self.shared, &req.get_ref().token_id)
            .await
            .map(Response::new)
    }

    async fn get_user(&self, req: Request<()>) -> Rs<pb::User> {
        let claims = self.shared.admit_token(&req, "GetUser")?;
        // One user per server in this version; the token id identifies the session.
        Ok(Response::new(pb::User {
            id: claims.id,
            username: "wayline".to_owned(),
        }))
    }

    async fn list_workspaces(
        &self,
        req: Request<pb::ListWorkspacesRequest>,
    ) -> Rs<pb::ListWorkspacesResponse> {
        self.shared.admit(&req, "ListWorkspaces")?;
        catalog::list_workspaces(&self.shared)
            .await
            .map(Response::new)
    }

    async fn get_workspace(&self, req: Request<pb::GetWorkspaceRequest>) -> Rs<pb::Workspace> {
        self.shared.admit(&req, "GetWorkspace")?;
        catalog::get_workspace(&self.shared, &req.get_ref().name)
            .await
            .map(Response::new)
    }

    async fn upsert_project(&self, req: Request<pb::UpsertProjectRequest>) -> Rs<pb::Project> {
        self.shared.admit(&req, "UpsertProject")?;
        catalog::upsert_project(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_project(&self, req: Request<pb::GetProjectRequest>) -> Rs<pb::Project> {
        self.shared.admit(&req, "GetProject")?;
        catalog::get_project(&self.shared, &req.get_ref().project)
            .await
            .map(Response::new)
    }

    async fn list_projects(&self, req: Request<()>) -> Rs<pb::ListProjectsResponse> {
        self.shared.admit(&req, "ListProjects")?;
        catalog::list_projects(&self.shared)
            .await
            .map(Response::new)
    }

    async fn destroy_project(&self, req: Request<pb::DestroyProjectRequest>) -> Rs<()> {
        self.shared.admit(&req, "DestroyProject")?;
        catalog::destroy_project(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn upsert_application(
        &self,
        req: Request<pb::UpsertApplicationRequest>,
    ) -> Rs<pb::Application> {
        self.shared.admit(&req, "UpsertApplication")?;
        catalog::upsert_application(&self.shared, req.get_ref())
            .await
            .map(Response::new)
    }

    async fn upsert_build(&self, req: Request<pb::UpsertOperationRequest>) -> Rs<pb::Operation> {
        self.upsert_operation(req, "UpsertBuild", pb::OperationKind::Build)
            .await
    }

    async fn list_builds(&self, req: Request<pb::ListOperationsRequest>) -> Rs<Ops> {
        self.list_operations(req, "ListBuilds", pb::OperationKind::Build)
            .await
    }

    async fn upsert_pushed_artifact(
        &self,
        req: Request<pb::UpsertOperationRequest>,
    ) -> Rs<pb::Operation> {
        self.upsert_operation(
            req,
            "UpsertPushedArtifact",
            pb::OperationKind::PushedArtifact,
        )
        .await
    }

    async fn list_pushed_artifacts(&self, req: Request<pb::ListOperationsRequest>) -> Rs<Ops> {
        self.list_operations(
            req,
            "ListPushedArtifacts",
            pb::OperationKind::PushedArtifact,
        )
        .await
    }

    async fn upsert_deployment(
        &self,
        req: Request<pb::UpsertOperationRequest>,
    ) -> Rs<pb::Operation> {
        self.upsert_operation(req, "UpsertDeployment", pb::OperationKind::Deployment)
            .await
    }

    async fn list_deployments(&self, req: Request<pb::ListOperationsRequest>) -> Rs<Ops> {
        self.list_operations(req, "ListDeployments", pb::OperationKind::Deployment)
            .await
    }

    async fn upsert_release(&self, req: Request<pb::UpsertOperationRequest>) -> Rs<pb::Operation> {
        self.upsert_operation(req, "UpsertRelease", pb::OperationKind::Release)
            .await
    }

    async fn list_releases(&self, req: Request<pb::ListOperationsRequest>) -> Rs<Ops> {
        self.list_operations(req, "ListReleases", pb::OperationKind::Release)
            .await
    }

    async fn upsert_status_report(
        &self,
        req: Request<pb::UpsertOperationRequest>,
    ) -> Rs<pb::Operation> {
        self.upsert_operation(req, "UpsertStatusReport", pb::OperationKind::StatusReport)
            .await
    }

    async fn list_status_reports(&self, req: Request<pb::ListOperationsRequest>) -> Rs<Ops> {
        self.list_operations(req, "ListStatusReports", pb::OperationKind::StatusReport)
            .await
    }

    async fn get_operation(&self, req: Request<pb::GetOperationRequest>) -> Rs<pb::Operation> {
        self.shared.admit(&req, "GetOperation")?;
        catalog::get_operation(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn check_deployment_health(
        &self,
        req: Request<pb::CheckDeploymentHealthRequest>,
    ) -> Rs<pb::CheckDeploymentHealthResponse> {
        self.shared.admit(&req, "CheckDeploymentHealth")?;
        crate::urls::check_health(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_canary(&self, req: Request<pb::SetCanaryRequest>) -> Rs<pb::Canary> {
        self.shared.admit(&req, "SetCanary")?;
        crate::canary::set(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_canaries(
        &self,
        req: Request<pb::ListCanariesRequest>,
    ) -> Rs<pb::ListCanariesResponse> {
        self.shared.admit(&req, "ListCanaries")?;
        crate::canary::list(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_url_tunnels(
        &self,
        req: Request<pb::ListUrlTunnelsRequest>,
    ) -> Rs<pb::ListUrlTunnelsResponse> {
        self.shared.admit(&req, "ListUrlTunnels")?;
        crate::url_tunnels::list(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_instances(
        &self,
        req: Request<pb::ListInstancesRequest>,
    ) -> Rs<pb::ListInstancesResponse> {
        self.shared.admit(&req, "ListInstances")?;
        instances::list_instances(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    type GetLogStreamStream = Boxed<pb::LogBatch>;
    async fn get_log_stream(
        &self,
        req: Request<pb::GetLogStreamRequest>,
    ) -> Rs<Self::GetLogStreamStream> {
        self.shared.admit(&req, "GetLogStream")?;
        instances::log_stream(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    type StartExecStreamStream = Boxed<pb::ExecStreamResponse>;
    async fn start_exec_stream(
        &self,
        req: Request<Streaming<pb::ExecStreamRequest>>,
    ) -> Rs<Self::StartExecStreamStream> {
        self.shared.admit(&req, "StartExecStream")?;
        instances::start_exec(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_config(&self, req: Request<pb::SetConfigRequest>) -> Rs<()> {
        let claims = self.shared.admit_token(&req, "SetConfig")?;
        catalog::runner_may_set(&claims, req.get_ref())?;
        catalog::set_config(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_config(&self, req: Request<pb::GetConfigRequest>) -> Rs<pb::GetConfigResponse> {
        self.shared.admit(&req, "GetConfig")?;
        catalog::get_config(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_config_source(&self, req: Request<pb::SetConfigSourceRequest>) -> Rs<()> {
        self.shared.admit(&req, "SetConfigSource")?;
        catalog::set_config_source(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_config_source(
        &self,
        req: Request<pb::GetConfigSourceRequest>,
    ) -> Rs<pb::GetConfigSourceResponse> {
        self.shared.admit(&req, "GetConfigSource")?;
        catalog::get_config_source(&self.shared, &req.get_ref().r#type)
            .await
            .map(Response::new)
    }

    async fn create_hostname(&self, req: Request<pb::CreateHostnameRequest>) -> Rs<pb::Hostname> {
        self.shared.admit(&req, "CreateHostname")?;
        catalog::create_hostname(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete_hostname(&self, req: Request<pb::DeleteHostnameRequest>) -> Rs<()> {
        self.shared.admit(&req, "DeleteHostname")?;
        catalog::delete_hostname(&self.shared, &req.get_ref().hostname)
            .await
            .map(Response::new)
    }

    async fn list_hostnames(
        &self,
        req: Request<pb::ListHostnamesRequest>,
    ) -> Rs<pb::ListHostnamesResponse> {
        self.shared.admit(&req, "ListHostnames")?;
        catalog::list_hostnames(&self.shared, req.get_ref().application.as_ref())
            .await
            .map(Response::new)
    }

    async fn queue_job(&self, req: Request<pb::QueueJobRequest>) -> Rs<pb::QueueJobResponse> {
        self.shared.admit(&req, "QueueJob")?;
        jobs::queue_job(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn cancel_job(&self, req: Request<pb::CancelJobRequest>) -> Rs<()> {
        self.shared.admit(&req, "CancelJob")?;
        let r = req.get_ref();
        let job_id = ids::job(&self.shared, &r.job_id).await?;
        self.shared
            .queue
            .cancel(&job_id, r.force)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Rs<pb::Job> {
        self.shared.admit(&req, "GetJob")?;
        let job_id = ids::job(&self.shared, &req.get_ref().job_id).await?;
        jobs::get_job(&self.shared, &job_id)
            .await
            .map(Response::new)
    }

    async fn list_jobs(&self, req: Request<pb::ListJobsRequest>) -> Rs<pb::ListJobsResponse> {
        self.shared.admit(&req, "ListJobs")?;
        jobs::list_jobs(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn validate_job(
        &self,
        req: Request<pb::ValidateJobRequest>,
    ) -> Rs<pb::ValidateJobResponse> {
        self.shared.admit(&req, "ValidateJob")?;
        Ok(Response::new(jobs::validate_job(
            &self.shared,
            req.into_inner(),
        )))
    }

    type GetJobStreamStream = Out<pb::GetJobStreamResponse>;
    async fn get_job_stream(
        &self,
        req: Request<pb::GetJobStreamRequest>,
    ) -> Rs<Self::GetJobStreamStream> {
        self.shared.admit(&req, "GetJobStream")?;
        let job_id = ids::job(&self.shared, &req.get_ref().job_id).await?;
        jobs::job_stream(&self.shared, job_id)
            .await
            .map(Response::new)
    }

    type RunnerConfigStream = Out<pb::RunnerConfigResponse>;
    async fn runner_config(
        &self,
        req: Request<Streaming<pb::RunnerConfigRequest>>,
    ) -> Rs<Self::RunnerConfigStream> {
        // A runner without a token may register; it waits as PENDING until adopted.
        let claims = self.shared.admit(&req, "RunnerConfig")?;
        runner::runner_config(&self.shared, claims, req.into_inner())
            .await
            .map(Response::new)
    }

    type RunnerJobStreamStream = Out<pb::RunnerJobStreamResponse>;
    async fn runner_job_stream(
        &self,
        req: Request<Streaming<pb::RunnerJobStreamRequest>>,
    ) -> Rs<Self::RunnerJobStreamStream> {
        let claims = self.shared.admit_token(&req, "RunnerJobStream")?;
        runner::job_stream(&self.shared, claims, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_runners(
        &self,
        req: Request<pb::ListRunnersRequest>,
    ) -> Rs<pb::ListRunnersResponse> {
        self.shared.admit(&req, "ListRunners")?;
        Ok(Response::new(runner::list(
            &self.shared,
            req.get_ref().pending,
        )))
    }

    async fn get_runner(&self, req: Request<pb::GetRunnerRequest>) -> Rs<pb::Runner> {
        self.shared.admit(&req, "GetRunner")?;
        let id = &ids::runner(&self.shared, &req.get_ref().runner_id)?;
        self.shared
            .runners
            .get(id)
            .map(|r| Response::new(runner::shown(r)))
            .ok_or_else(|| Status::not_found(format!("runner {id} is not known to this server")))
    }

    async fn adopt_runner(&self, req: Request<pb::AdoptRunnerRequest>) -> Rs<()> {
        self.shared.admit(&req, "AdoptRunner")?;
        let mut req = req.into_inner();
        req.runner_id = ids::runner(&self.shared, &req.runner_id)?;
        runner::adopt(&self.shared, req).await.map(Response::new)
    }

    async fn forget_runner(&self, req: Request<pb::ForgetRunnerRequest>) -> Rs<()> {
        self.shared.admit(&req, "ForgetRunner")?;
        let id = ids::runner(&self.shared, &req.get_ref().runner_id)?;
        runner::forget(&self.shared, &id).await.map(Response::new)
    }

    type EntrypointConfigStream = Boxed<pb::EntrypointConfigResponse>;
    async fn entrypoint_config(
        &self,
        req: Request<pb::EntrypointConfigRequest>,
    ) -> Rs<Self::EntrypointConfigStream> {
        let claims = self.shared.admit_token(&req, "EntrypointConfig")?;
        let req = req.into_inner();
        if !req.deployment_id.is_empty() {
            instances::check_deployment(&claims, &req.deployment_id)?;
        }
        instances::entrypoint_config(&self.shared, claims.deployment_id, req)
            .await
            .map(Response::new)
    }

    async fn entrypoint_log_stream(
        &self,
        req: Request<Streaming<pb::EntrypointLogBatch>>,
    ) -> Rs<()> {
        let claims = self.shared.admit_token(&req, "EntrypointLogStream")?;
        self.shared
            .hub
            .entrypoint_logs(claims.deployment_id, req.into_inner())
            .await
            .map(Response::new)
    }

    type EntrypointExecStreamStream = Boxed<pb::EntrypointExecResponse>;
    async fn entrypoint_exec_stream(
        &self,
        req: Request<Streaming<pb::EntrypointExecRequest>>,
    ) -> Rs<Self::EntrypointExecStreamStream> {
        let claims = self.shared.admit_token(&req, "EntrypointExecStream")?;
        self.shared
            .hub
            .entrypoint_exec(claims.deployment_id, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_server_config(&self, req: Request<()>) -> Rs<pb::ServerConfig> {
        self.shared.admit(&req, "GetServerConfig")?;
        admin::server_config(&self.shared).await.map(Response::new)
    }

    async fn set_server_config(&self, req: Request<pb::ServerConfig>) -> Rs<()> {
        self.shared.admit(&req, "SetServerConfig")?;
        admin::set_server_config(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    type CreateSnapshotStream = Out<pb::SnapshotChunk>;
    async fn create_snapshot(&self, req: Request<()>) -> Rs<Self::CreateSnapshotStream> {
        self.shared.admit(&req, "CreateSnapshot")?;
        admin::create_snapshot(&self.shared)
            .await
            .map(Response::new)
    }

    async fn restore_snapshot(&self, req: Request<Streaming<pb::SnapshotChunk>>) -> Rs<()> {
        self.shared.admit(&req, "RestoreSnapshot")?;
        admin::restore_snapshot(&self.shared, req.into_inner()).await
    }

    async fn upsert_trigger(&self, req: Request<pb::UpsertTriggerRequest>) -> Rs<pb::Trigger> {
        self.shared.admit(&req, "UpsertTrigger")?;
        catalog::upsert_trigger(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_triggers(&self, req: Request<()>) -> Rs<pb::ListTriggersResponse> {
        self.shared.admit(&req, "ListTriggers")?;
        catalog::list_triggers(&self.shared)
            .await
            .map(Response::new)
    }

    async fn run_pipeline(
        &self,
        req: Request<pb::RunPipelineRequest>,
    ) -> Rs<pb::RunPipelineResponse> {
        self.shared.admit(&req, "RunPipeline")?;
        Err(unimplemented("RunPipeline (pipelines)"))
    }
}
