//! Core values the host injects into every component call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use wayline_proto::plugin::v1 as pp;
use wayline_proto::v1::DeclaredResource;

use crate::ui::Ui;

/// Which job is running this call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobInfo {
    /// The job id.
    pub id: String,
    /// Project name.
    pub project: String,
    /// App name.
    pub app: String,
    /// Workspace name.
    pub workspace: String,
    /// Sequence of the operation being produced (the `N` in `vN`), 0 when not known yet.
    pub sequence: u64,
    /// Id of the deployment being created, destroyed or inspected, when there is one.
    pub deployment_id: String,
}

/// The plain-data core values: everything but the UI and the cancellation token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreValues {
    /// Job info.
    pub job: JobInfo,
    /// The app's source directory.
    pub source_path: PathBuf,
    /// Labels of the operation (the app's labels merged with the operation's).
    pub labels: BTreeMap<String, String>,
    /// Env vars the deployment must get for the entrypoint (`WAYLINE_SERVER_ADDR`, …).
    pub deployment_env: BTreeMap<String, String>,
    /// A scratch directory for this app and component; it persists between jobs.
    pub data_dir: PathBuf,
    /// The plugins of the stages that take this call's output, in order (for a build: the
    /// registry's, when there is one, then the platform's); empty when the host does not know.
    /// A builder may leave work to a consumer it knows: the docker builder leaves the
    /// entrypoint to a local `docker` platform, which mounts it instead of committing a layer.
    /// Native plugins only: it is not sent to external ones.
    pub consumers: Vec<String>,
}

impl From<&CoreValues> for pp::CoreValues {
    fn from(c: &CoreValues) -> Self {
        pp::CoreValues {
            job_id: c.job.id.clone(),
            project: c.job.project.clone(),
            app: c.job.app.clone(),
            workspace: c.job.workspace.clone(),
            source_path: c.source_path.to_string_lossy().into_owned(),
            labels: c.labels.clone().into_iter().collect(),
            deployment_env: c.deployment_env.clone().into_iter().collect(),
            data_dir: c.data_dir.to_string_lossy().into_owned(),
            sequence: c.job.sequence,
            deployment_id: c.job.deployment_id.clone(),
        }
    }
}

impl From<pp::CoreValues> for CoreValues {
    fn from(c: pp::CoreValues) -> Self {
        CoreValues {
            job: JobInfo {
                id: c.job_id,
                project: c.project,
                app: c.app,
                workspace: c.workspace,
                sequence: c.sequence,
                deployment_id: c.deployment_id,
            },
            source_path: c.source_path.into(),
            labels: c.labels.into_iter().collect(),
            deployment_env: c.deployment_env.into_iter().collect(),
            data_dir: c.data_dir.into(),
            consumers: Vec::new(),
        }
    }
}

/// Records a component's resources on the server (all of them so far, each with the state
/// needed to destroy it) and resolves once they are stored. The runner passes one to deploys:
/// a resource is declared *before* it is created, so a job that dies halfway leaves a record
/// `destroy` finds it by.
#[derive(Clone)]
pub struct Declare(Arc<DeclareFn>);

/// The function behind a [`Declare`].
type DeclareFn =
    dyn Fn(Vec<DeclaredResource>) -> BoxFuture<'static, Result<(), String>> + Send + Sync;

impl Declare {
    /// A declarer calling `f` with every resource declared so far.
    pub fn new(
        f: impl Fn(Vec<DeclaredResource>) -> BoxFuture<'static, Result<(), String>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for Declare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Declare")
    }
}

/// What every component function receives: the core values, the UI and the cancellation token.
#[derive(Clone)]
pub struct Ctx {
    /// Job info, source, labels, deployment env, data dir.
    pub core: CoreValues,
    /// Where to show progress and output.
    pub ui: Ui,
    /// Fires when the job is cancelled; long operations should select on it.
    pub cancel: CancellationToken,
    /// Template data of the input value (what HCL sees as `artifact.*` for a platform), or null.
    pub input_template_data: serde_json::Value,
    /// Where resources are declared before they are created; `None` where nothing records
    /// them (tests, calls outside a deploy).
    pub declare: Option<Declare>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// A context for a call.
    pub fn new(core: CoreValues, ui: Ui, cancel: CancellationToken) -> Self {
        Self {
            core,
            ui,
            cancel,
            input_template_data: serde_json::Value::Null,
            declare: None,
        }
    }

    /// Records `resources` on the server through [`Ctx::declare`] (a no-op without one).
    ///
    /// # Errors
    /// When they could not be stored: the caller must not create the resource then.
    pub async fn declare_resources(
        &self,
        resources: &[DeclaredResource],
    ) -> Result<(), crate::PluginError> {
        match &self.declare {
            None => Ok(()),
            Some(declare) => (declare.0)(resources.to_vec()).await.map_err(|e| {
                crate::PluginError::msg(format!(
                    "could not record the resources on the server: {e}"
                ))
            }),
        }
    }

    /// Errors with [`PluginError::Cancelled`](crate::PluginError::Cancelled) once cancelled.
    pub fn check_cancelled(&self) -> Result<(), crate::PluginError> {
        if self.cancel.is_cancelled() {
            Err(crate::PluginError::Cancelled)
        } else {
            Ok(())
        }
    }
}
