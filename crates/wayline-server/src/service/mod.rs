//! The `wayline.v1.Wayline` gRPC service: authentication at the door, then one method per RPC.
//!
//! The trait impl in this file only authorizes and delegates; the work lives in the sibling
//! modules (`jobs`, `runner`, `catalog`, `admin`).

pub(crate) mod admin;
mod catalog;
mod instances;
mod jobs;
mod runner;

pub(crate) use admin::staged_restore_path;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::stream::BoxStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use wayline_proto::v1 as pb;

use crate::auth::{Claims, TokenKind, Tokens};
use crate::queue::{Queue, Timeouts};
use crate::runners::Runners;
use crate::store::{Store, StoreError};

/// Maps a store error to the status a client sees.
pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Invalid(m) => Status::invalid_argument(m),
        StoreError::NotFound(m) => Status::not_found(m),
        StoreError::Exists(m) => Status::already_exists(m),
        StoreError::Closed => Status::unavailable(e.to_string()),
        other => {
            tracing::error!(error = %other, "store error");
            Status::internal(other.to_string())
        }
    }
}

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// A login token.
    Login,
    /// A login or runner token.
    Runner,
    /// An entrypoint token.
    Entrypoint,
}

/// Request counters for `/metrics`.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<&'static str, u64>>,
    pub(crate) denied: AtomicU64,
}

impl Metrics {
    fn count(&self, method: &'static str) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry(method)
            .or_insert(0) += 1;
    }

    /// (method, count) pairs.
    pub(crate) fn requests(&self) -> Vec<(&'static str, u64)> {
        self.requests
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }
}

/// Settings the service needs from [`crate::ServerOptions`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) db_path: PathBuf,
    pub(crate) advertise_addr: String,
    pub(crate) unix_socket: Option<PathBuf>,
    pub(crate) tls: bool,
}

/// State shared by every RPC.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: Tokens,
    pub(crate) queue: Arc<Queue>,
    pub(crate) runners: Arc<Runners>,
    pub(crate) metrics: Metrics,
    pub(crate) settings: Settings,
    pub(crate) timeouts: Timeouts,
    /// Connected entrypoints, log windows and exec routing.
    pub(crate) hub: crate::entrypoint::EntrypointHub,
    /// Cached copy of every config var; `None` after a change until the next read.
    config_cache: RwLock<Option<Arc<Vec<pb::ConfigVar>>>>,
    next_conn: AtomicU64,
}

impl Shared {
    /// Builds the shared state; the caller loads the queue.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        tokens: Tokens,
        runners: Arc<Runners>,
        settings: Settings,
        timeouts: Timeouts,
        hub: crate::entrypoint::EntrypointHub,
    ) -> Arc<Self> {
        let queue = Queue::new(Arc::clone(&store), Arc::clone(&runners), timeouts);
        Arc::new(Self {
            store,
            tokens,
            queue,
            runners,
            metrics: Metrics::default(),
            settings,
            timeouts,
            hub,
            config_cache: RwLock::new(None),
            next_conn: AtomicU64::new(0),
        })
    }

    fn conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Every stored config var (cached until the next SetConfig).
    pub(crate) async fn config_vars(&self) -> Result<Arc<Vec<pb::ConfigVar>>, Status> {
        if let Some(c) = self.config_cache.read().expect("config cache").as_ref() {
            return Ok(Arc::clone(c));
        }
        let vars = Arc::new(self.store.list_config().await.map_err(store_status)?);
        *self.config_cache.write().expect("config cache") = Some(Arc::clone(&vars));
        Ok(vars)
    }

    fn invalidate_config(&self) {
        *self.config_cache.write().expect("config cache") = None;
    }

    /// Mints an entrypoint token for one deployment (the platform passes it to the deployment).
    pub(crate) async fn mint_entrypoint_token(
        &self,
        deployment_id: &str,
        expires_in: Option<std::time::Duration>,
    ) -> Result<String, Status> {
        let mut claims = Tokens::claims(TokenKind::Entrypoint, expires_in);
        claims.deployment_id = deployment_id.to_owned();
        self.mint(claims).await
    }

    /// Records and signs claims.
    pub(crate) async fn mint(&self, claims: Claims) -> Result<String, Status> {
        self.store
            .insert_token(crate::store::TokenRecord {
                id: claims.id.clone(),
                kind: claims.kind.name().to_owned(),
                created_ms: wayline_core::time::to_millis(&wayline_core::time::now()),
                expires_ms: claims.exp,
            })
            .await
            .map_err(store_status)?;
        Ok(self.tokens.sign(&claims))
    }

    /// Authenticates a call and checks its token kind.
    fn authorize<T>(
        &self,
        req: &Request<T>,
        method: &'static str,
        access: Access,
    ) -> Result<Claims, Status> {
        self.metrics.count(method);
        let r = self.check(req, method, access);
        if r.is_err() {
            self.metrics.denied.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn check<T>(
        &self,
        req: &Request<T>,
        method: &'static str,
        access: Access,
    ) -> Result<Claims, Status> {
        let Some(token) = crate::auth::bearer(req.metadata())? else {
            return Err(Status::unauthenticated(format!(
                "{method} needs a token: send `authorization: Bearer <token>` (get one with `wayline server bootstrap` or `wayline user token`)"
            )));
        };
        let claims = self.tokens.verify(token)?;
        let ok = match access {
            Access::Login => claims.kind == TokenKind::Login,
            Access::Runner => matches!(claims.kind, TokenKind::Login | TokenKind::Runner),
            Access::Entrypoint => claims.kind == TokenKind::Entrypoint,
        };
        if ok {
            return Ok(claims);
        }
        Err(Status::permission_denied(match (claims.kind, access) {
            (TokenKind::Entrypoint, _) => format!(
                "an entrypoint token can only call the entrypoint RPCs of its own deployment, not {method}"
            ),
            (_, Access::Entrypoint) => {
                format!(
                    "{method} needs the entrypoint token of a deployment (WAYLINE_ENTRYPOINT_TOKEN)"
                )
            }
            (TokenKind::Runner, _) => {
                format!("a runner token cannot call {method}; use a login token")
            }
            (TokenKind::Invite, _) => format!(
                "an invite token cannot call {method}; exchange it with ConvertInviteToken (`wayline login`)"
            ),
            (kind, _) => format!(
                "a {} token cannot call {method}; use a login token",
                kind.name()
            ),
        }))
    }
}

/// The gRPC service.
#[derive(Clone)]
pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
}

type Rs<T> = Result<Response<T>, Status>;
type Out<T> = ReceiverStream<Result<T, Status>>;
type Boxed<T> = BoxStream<'static, Result<T, Status>>;

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("{what} is not available in this version"))
}

#[tonic::async_trait]
impl pb::wayline_server::Wayline for Service {
    async fn get_version_info(&self, _req: Request<()>) -> Rs<pb::GetVersionInfoResponse> {
        self.shared.metrics.count("GetVersionInfo");
        Ok(Response::new(pb::GetVersionInfoResponse {
            info: Some(pb::VersionInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                commit: option_env!("WAYLINE_GIT_COMMIT").unwrap_or("").to_owned(),
                api_version: 1,
            }),
        }))
    }

    async fn bootstrap_token(&self, _req: Request<()>) -> Rs<pb::NewTokenResponse> {
        self.shared.metrics.count("BootstrapToken");
        admin::bootstrap(&self.shared).await.map(Response::new)
    }

    async fn generate_login_token(
        &self,
        req: Request<pb::GenerateLoginTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared
            .authorize(&req, "GenerateLoginToken", Access::Login)?;
        admin::generate(&self.shared, TokenKind::Login, &req.get_ref().expires_in)
            .await
            .map(Response::new)
    }

    async fn generate_invite_token(
        &self,
        req: Request<pb::GenerateInviteTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared
            .authorize(&req, "GenerateInviteToken", Access::Login)?;
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
        self.shared.metrics.count("ConvertInviteToken");
        admin::convert_invite(&self.shared, &req.get_ref().token)
            .await
            .map(Response::new)
    }

    async fn generate_runner_token(
        &self,
        req: Request<pb::GenerateRunnerTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared
            .authorize(&req, "GenerateRunnerToken", Access::Login)?;
        admin::runner_token(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn generate_entrypoint_token(
        &self,
        req: Request<pb::GenerateEntrypointTokenRequest>,
    ) -> Rs<pb::NewTokenResponse> {
        self.shared
            .authorize(&req, "GenerateEntrypointToken", Access::Runner)?;
        admin::entrypoint_token(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn revoke_token(&self, req: Request<pb::RevokeTokenRequest>) -> Rs<()> {
        self.shared.authorize(&req, "RevokeToken", Access::Login)?;
        admin::revoke(&self.shared, &req.get_ref().token_id)
            .await
            .map(Response::new)
    }

    async fn get_user(&self, req: Request<()>) -> Rs<pb::User> {
        let claims = self.shared.authorize(&req, "GetUser", Access::Login)?;
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
        self.shared
            .authorize(&req, "ListWorkspaces", Access::Runner)?;
        catalog::list_workspaces(&self.shared)
            .await
            .map(Response::new)
    }

    async fn get_workspace(&self, req: Request<pb::GetWorkspaceRequest>) -> Rs<pb::Workspace> {
        self.shared
            .authorize(&req, "GetWorkspace", Access::Runner)?;
        catalog::get_workspace(&self.shared, &req.get_ref().name)
            .await
            .map(Response::new)
    }

    async fn upsert_project(&self, req: Request<pb::UpsertProjectRequest>) -> Rs<pb::Project> {
        self.shared
            .authorize(&req, "UpsertProject", Access::Login)?;
        catalog::upsert_project(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_project(&self, req: Request<pb::GetProjectRequest>) -> Rs<pb::Project> {
        self.shared.authorize(&req, "GetProject", Access::Runner)?;
        catalog::get_project(&self.shared, &req.get_ref().project)
            .await
            .map(Response::new)
    }

    async fn list_projects(&self, req: Request<()>) -> Rs<pb::ListProjectsResponse> {
        self.shared
            .authorize(&req, "ListProjects", Access::Runner)?;
        let projects = self
            .shared
            .store
            .list_projects()
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListProjectsResponse { projects }))
    }

    async fn destroy_project(&self, req: Request<pb::DestroyProjectRequest>) -> Rs<()> {
        self.shared
            .authorize(&req, "DestroyProject", Access::Login)?;
        catalog::destroy_project(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn upsert_application(
        &self,
        req: Request<pb::UpsertApplicationRequest>,
    ) -> Rs<pb::Application> {
        self.shared
            .authorize(&req, "UpsertApplication", Access::Runner)?;
        let r = req.get_ref();
        let app = self
            .shared
            .store
            .upsert_application(&r.project, &r.name)
            .await
            .map_err(store_status)?;
        Ok(Response::new(app))
    }

    async fn upsert_build(&self, req: Request<pb::UpsertOperationRequest>) -> Rs<pb::Operation> {
        self.shared.authorize(&req, "UpsertBuild", Access::Runner)?;
        catalog::upsert(&self.shared, pb::OperationKind::Build, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_builds(
        &self,
        req: Request<pb::ListOperationsRequest>,
    ) -> Rs<pb::ListOperationsResponse> {
        self.shared.authorize(&req, "ListBuilds", Access::Runner)?;
        catalog::list(&self.shared, pb::OperationKind::Build, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn upsert_pushed_artifact(
        &self,
        req: Request<pb::UpsertOperationRequest>,
    ) -> Rs<pb::Operation> {
        self.shared
            .authorize(&req, "UpsertPushedArtifact", Access::Runner)?;
        catalog::upsert(
            &self.shared,
            pb::OperationKind::PushedArtifact,
            req.into_inner(),
        )
        .await
        .map(Response::new)
    }

    async fn list_pushed_artifacts(
        &self,
        req: Request<pb::ListOperationsRequest>,
    ) -> Rs<pb::ListOperationsResponse> {
        self.shared
            .authorize(&req, "ListPushedArtifacts", Access::Runner)?;
        catalog::list(
            &self.shared,
            pb::OperationKind::PushedArtifact,
            req.into_inner(),
        )
        .await
        .map(Response::new)
    }

    async fn upsert_deployment(
        &self,
        req: Request<pb::UpsertOperationRequest>,
    ) -> Rs<pb::Operation> {
        self.shared
            .authorize(&req, "UpsertDeployment", Access::Runner)?;
        catalog::upsert(
            &self.shared,
            pb::OperationKind::Deployment,
            req.into_inner(),
        )
        .await
        .map(Response::new)
    }

    async fn list_deployments(
        &self,
        req: Request<pb::ListOperationsRequest>,
    ) -> Rs<pb::ListOperationsResponse> {
        self.shared
            .authorize(&req, "ListDeployments", Access::Runner)?;
        catalog::list(
            &self.shared,
            pb::OperationKind::Deployment,
            req.into_inner(),
        )
        .await
        .map(Response::new)
    }

    async fn upsert_release(&self, req: Request<pb::UpsertOperationRequest>) -> Rs<pb::Operation> {
        self.shared
            .authorize(&req, "UpsertRelease", Access::Runner)?;
        catalog::upsert(&self.shared, pb::OperationKind::Release, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_releases(
        &self,
        req: Request<pb::ListOperationsRequest>,
    ) -> Rs<pb::ListOperationsResponse> {
        self.shared
            .authorize(&req, "ListReleases", Access::Runner)?;
        catalog::list(&self.shared, pb::OperationKind::Release, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn upsert_status_report(
        &self,
        req: Request<pb::UpsertOperationRequest>,
    ) -> Rs<pb::Operation> {
        self.shared
            .authorize(&req, "UpsertStatusReport", Access::Runner)?;
        catalog::upsert(
            &self.shared,
            pb::OperationKind::StatusReport,
            req.into_inner(),
        )
        .await
        .map(Response::new)
    }

    async fn list_status_reports(
        &self,
        req: Request<pb::ListOperationsRequest>,
    ) -> Rs<pb::ListOperationsResponse> {
        self.shared
            .authorize(&req, "ListStatusReports", Access::Runner)?;
        catalog::list(
            &self.shared,
            pb::OperationKind::StatusReport,
            req.into_inner(),
        )
        .await
        .map(Response::new)
    }

    async fn get_operation(&self, req: Request<pb::GetOperationRequest>) -> Rs<pb::Operation> {
        self.shared
            .authorize(&req, "GetOperation", Access::Runner)?;
        catalog::get_operation(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_instances(
        &self,
        req: Request<pb::ListInstancesRequest>,
    ) -> Rs<pb::ListInstancesResponse> {
        self.shared
            .authorize(&req, "ListInstances", Access::Login)?;
        instances::list_instances(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    type GetLogStreamStream = Boxed<pb::LogBatch>;
    async fn get_log_stream(
        &self,
        req: Request<pb::GetLogStreamRequest>,
    ) -> Rs<Self::GetLogStreamStream> {
        self.shared.authorize(&req, "GetLogStream", Access::Login)?;
        instances::log_stream(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    type StartExecStreamStream = Boxed<pb::ExecStreamResponse>;
    async fn start_exec_stream(
        &self,
        req: Request<Streaming<pb::ExecStreamRequest>>,
    ) -> Rs<Self::StartExecStreamStream> {
        self.shared
            .authorize(&req, "StartExecStream", Access::Login)?;
        instances::start_exec(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_config(&self, req: Request<pb::SetConfigRequest>) -> Rs<()> {
        let claims = self.shared.authorize(&req, "SetConfig", Access::Runner)?;
        // A runner syncs the `config {}` of the file it deploys: project and app scopes only.
        if claims.kind == TokenKind::Runner
            && let Some(v) = req.get_ref().variables.iter().find(|v| {
                !matches!(
                    pb::config_var::Scope::try_from(v.scope),
                    Ok(pb::config_var::Scope::Project | pb::config_var::Scope::App)
                )
            })
        {
            return Err(Status::permission_denied(format!(
                "a runner token may set project and app config only, not `{}` at {:?} scope",
                v.name,
                pb::config_var::Scope::try_from(v.scope).unwrap_or(pb::config_var::Scope::Global)
            )));
        }
        catalog::set_config(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_config(&self, req: Request<pb::GetConfigRequest>) -> Rs<pb::GetConfigResponse> {
        self.shared.authorize(&req, "GetConfig", Access::Runner)?;
        catalog::get_config(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_config_source(&self, req: Request<pb::SetConfigSourceRequest>) -> Rs<()> {
        self.shared
            .authorize(&req, "SetConfigSource", Access::Login)?;
        catalog::set_config_source(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_config_source(
        &self,
        req: Request<pb::GetConfigSourceRequest>,
    ) -> Rs<pb::GetConfigSourceResponse> {
        self.shared
            .authorize(&req, "GetConfigSource", Access::Runner)?;
        let want = &req.get_ref().r#type;
        let mut sources = self
            .shared
            .store
            .list_config_sources()
            .await
            .map_err(store_status)?;
        sources.retain(|s| want.is_empty() || s.r#type == *want);
        Ok(Response::new(pb::GetConfigSourceResponse { sources }))
    }

    async fn create_hostname(&self, req: Request<pb::CreateHostnameRequest>) -> Rs<pb::Hostname> {
        self.shared
            .authorize(&req, "CreateHostname", Access::Login)?;
        catalog::create_hostname(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete_hostname(&self, req: Request<pb::DeleteHostnameRequest>) -> Rs<()> {
        self.shared
            .authorize(&req, "DeleteHostname", Access::Login)?;
        let name = &req.get_ref().hostname;
        if self
            .shared
            .store
            .delete_hostname(name)
            .await
            .map_err(store_status)?
        {
            Ok(Response::new(()))
        } else {
            Err(Status::not_found(format!(
                "hostname {name} is not registered"
            )))
        }
    }

    async fn list_hostnames(
        &self,
        req: Request<pb::ListHostnamesRequest>,
    ) -> Rs<pb::ListHostnamesResponse> {
        self.shared
            .authorize(&req, "ListHostnames", Access::Login)?;
        let mut hostnames = self
            .shared
            .store
            .list_hostnames()
            .await
            .map_err(store_status)?;
        if let Some(app) = &req.get_ref().application {
            hostnames.retain(|h| h.application.as_ref() == Some(app));
        }
        Ok(Response::new(pb::ListHostnamesResponse { hostnames }))
    }

    async fn queue_job(&self, req: Request<pb::QueueJobRequest>) -> Rs<pb::QueueJobResponse> {
        self.shared.authorize(&req, "QueueJob", Access::Login)?;
        jobs::queue_job(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn cancel_job(&self, req: Request<pb::CancelJobRequest>) -> Rs<()> {
        self.shared.authorize(&req, "CancelJob", Access::Login)?;
        let r = req.get_ref();
        self.shared
            .queue
            .cancel(&r.job_id, r.force)
            .await
            .map(Response::new)
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Rs<pb::Job> {
        self.shared.authorize(&req, "GetJob", Access::Runner)?;
        jobs::get_job(&self.shared, &req.get_ref().job_id)
            .await
            .map(Response::new)
    }

    async fn list_jobs(&self, req: Request<pb::ListJobsRequest>) -> Rs<pb::ListJobsResponse> {
        self.shared.authorize(&req, "ListJobs", Access::Runner)?;
        jobs::list_jobs(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn validate_job(
        &self,
        req: Request<pb::ValidateJobRequest>,
    ) -> Rs<pb::ValidateJobResponse> {
        self.shared.authorize(&req, "ValidateJob", Access::Login)?;
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
        self.shared.authorize(&req, "GetJobStream", Access::Login)?;
        jobs::job_stream(&self.shared, req.into_inner().job_id)
            .await
            .map(Response::new)
    }

    type RunnerConfigStream = Out<pb::RunnerConfigResponse>;
    async fn runner_config(
        &self,
        req: Request<Streaming<pb::RunnerConfigRequest>>,
    ) -> Rs<Self::RunnerConfigStream> {
        // A runner without a token may register; it waits as PENDING until adopted.
        self.shared.metrics.count("RunnerConfig");
        let claims = match crate::auth::bearer(req.metadata())? {
            None => None,
            Some(_) => Some(self.shared.check(&req, "RunnerConfig", Access::Runner)?),
        };
        runner::runner_config(&self.shared, claims, req.into_inner())
            .await
            .map(Response::new)
    }

    type RunnerJobStreamStream = Out<pb::RunnerJobStreamResponse>;
    async fn runner_job_stream(
        &self,
        req: Request<Streaming<pb::RunnerJobStreamRequest>>,
    ) -> Rs<Self::RunnerJobStreamStream> {
        let claims = self
            .shared
            .authorize(&req, "RunnerJobStream", Access::Runner)?;
        runner::job_stream(&self.shared, claims, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_runners(
        &self,
        req: Request<pb::ListRunnersRequest>,
    ) -> Rs<pb::ListRunnersResponse> {
        self.shared.authorize(&req, "ListRunners", Access::Login)?;
        let mut runners = self.shared.runners.list();
        if req.get_ref().pending {
            runners.retain(|r| r.adoption_state == pb::runner::AdoptionState::Pending as i32);
        }
        Ok(Response::new(pb::ListRunnersResponse { runners }))
    }

    async fn get_runner(&self, req: Request<pb::GetRunnerRequest>) -> Rs<pb::Runner> {
        self.shared.authorize(&req, "GetRunner", Access::Login)?;
        let id = &req.get_ref().runner_id;
        self.shared
            .runners
            .get(id)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("runner {id} is not known to this server")))
    }

    async fn adopt_runner(&self, req: Request<pb::AdoptRunnerRequest>) -> Rs<()> {
        self.shared.authorize(&req, "AdoptRunner", Access::Login)?;
        runner::adopt(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn forget_runner(&self, req: Request<pb::ForgetRunnerRequest>) -> Rs<()> {
        self.shared.authorize(&req, "ForgetRunner", Access::Login)?;
        runner::forget(&self.shared, &req.get_ref().runner_id)
            .await
            .map(Response::new)
    }

    type EntrypointConfigStream = Boxed<pb::EntrypointConfigResponse>;
    async fn entrypoint_config(
        &self,
        req: Request<pb::EntrypointConfigRequest>,
    ) -> Rs<Self::EntrypointConfigStream> {
        let claims = self
            .shared
            .authorize(&req, "EntrypointConfig", Access::Entrypoint)?;
        let req = req.into_inner();
        if !req.deployment_id.is_empty() {
            check_deployment(&claims, &req.deployment_id)?;
        }
        instances::entrypoint_config(&self.shared, claims.deployment_id, req)
            .await
            .map(Response::new)
    }

    async fn entrypoint_log_stream(
        &self,
        req: Request<Streaming<pb::EntrypointLogBatch>>,
    ) -> Rs<()> {
        let claims = self
            .shared
            .authorize(&req, "EntrypointLogStream", Access::Entrypoint)?;
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
        let claims = self
            .shared
            .authorize(&req, "EntrypointExecStream", Access::Entrypoint)?;
        self.shared
            .hub
            .entrypoint_exec(claims.deployment_id, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_server_config(&self, req: Request<()>) -> Rs<pb::ServerConfig> {
        self.shared
            .authorize(&req, "GetServerConfig", Access::Runner)?;
        admin::server_config(&self.shared).await.map(Response::new)
    }

    async fn set_server_config(&self, req: Request<pb::ServerConfig>) -> Rs<()> {
        self.shared
            .authorize(&req, "SetServerConfig", Access::Login)?;
        admin::set_server_config(&self.shared, req.into_inner())
            .await
            .map(Response::new)
    }

    type CreateSnapshotStream = Out<pb::SnapshotChunk>;
    async fn create_snapshot(&self, req: Request<()>) -> Rs<Self::CreateSnapshotStream> {
        self.shared
            .authorize(&req, "CreateSnapshot", Access::Login)?;
        admin::create_snapshot(&self.shared)
            .await
            .map(Response::new)
    }

    async fn restore_snapshot(&self, req: Request<Streaming<pb::SnapshotChunk>>) -> Rs<()> {
        self.shared
            .authorize(&req, "RestoreSnapshot", Access::Login)?;
        admin::restore_snapshot(&self.shared, req.into_inner()).await
    }

    async fn upsert_trigger(&self, req: Request<pb::UpsertTriggerRequest>) -> Rs<pb::Trigger> {
        self.shared
            .authorize(&req, "UpsertTrigger", Access::Login)?;
        let t = req
            .into_inner()
            .trigger
            .ok_or_else(|| Status::invalid_argument("trigger is required"))?;
        if t.name.is_empty() {
            return Err(Status::invalid_argument("trigger.name is required"));
        }
        self.shared
            .store
            .upsert_trigger(t)
            .await
            .map(Response::new)
            .map_err(store_status)
    }

    async fn list_triggers(&self, req: Request<()>) -> Rs<pb::ListTriggersResponse> {
        self.shared.authorize(&req, "ListTriggers", Access::Login)?;
        let triggers = self
            .shared
            .store
            .list_triggers()
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListTriggersResponse { triggers }))
    }

    async fn run_pipeline(
        &self,
        req: Request<pb::RunPipelineRequest>,
    ) -> Rs<pb::RunPipelineResponse> {
        self.shared.authorize(&req, "RunPipeline", Access::Login)?;
        Err(unimplemented("RunPipeline (pipelines)"))
    }
}

/// An entrypoint token reaches only its own deployment.
fn check_deployment(claims: &Claims, deployment_id: &str) -> Result<(), Status> {
    if claims.deployment_id == deployment_id {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "this entrypoint token belongs to deployment {}, not {deployment_id}",
            claims.deployment_id
        )))
    }
}
