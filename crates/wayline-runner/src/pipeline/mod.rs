//! The plugin pipeline of one job: builder → registry → platform → release manager, with
//! mappers between mismatched types, every step recorded on the server with its provenance.
//!
//! One module per stage ([`build`], [`deploy`], [`release`], [`destroy`], [`status`]), with
//! mapper insertion in [`adapt`] and hooks in [`hooks`]. Every server call goes through
//! [`Run::call`], which waits out a server that went away (see [`crate::retry`]); records get
//! their ids here, before the first write, so every write can be repeated.

mod adapt;
mod build;
mod deploy;
mod destroy;
mod dynamic;
mod hooks;
mod prune;
mod release;
mod status_report;

pub(crate) use build::Produced;
pub(crate) use prune::Pruned;
pub(crate) use release::rollback_release;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use wayline_config::{Config, EvalContext, EvaluatedUse, Stage};
use wayline_plugin::{
    CallResult, ComponentHandle, ComponentKind, CoreValues, JobInfo, PluginHost, Ui,
};
use wayline_proto::v1::{
    self as pb, Component, Job, JobError, JobResult, Operation, OperationKind, Provenance, Status,
    component, status,
};

use crate::agent::JobContext;
use crate::client::Client;
use crate::retry::{CallError, with_server};

/// A failed step, already phrased for the user.
#[derive(Debug)]
pub(crate) struct StepError(pub(crate) String);

impl From<tonic::Status> for StepError {
    fn from(s: tonic::Status) -> Self {
        CallError::Refused(s).into()
    }
}

impl From<CallError> for StepError {
    fn from(e: CallError) -> Self {
        Self(e.to_string())
    }
}

impl From<StepError> for JobError {
    fn from(e: StepError) -> Self {
        JobError {
            code: 2,
            message: e.0,
        }
    }
}

type StepResult<T> = Result<T, StepError>;

/// Everything one job's pipeline needs.
pub(crate) struct Run<'c> {
    pub(crate) job: Job,
    pub(crate) ctx: JobContext,
    pub(crate) config: &'c Config,
    pub(crate) eval: EvalContext<'c>,
    pub(crate) host: Arc<PluginHost>,
    pub(crate) source_path: PathBuf,
    pub(crate) provenance: Option<Provenance>,
    pub(crate) data_root: PathBuf,
}

impl Run<'_> {
    pub(super) fn app_ref(&self) -> pb::r#ref::Application {
        self.job.application.clone().unwrap_or_default()
    }

    pub(super) fn app_name(&self) -> String {
        self.app_ref().application
    }

    pub(super) fn workspace(&self) -> String {
        if self.job.workspace.is_empty() {
            "default".to_owned()
        } else {
            self.job.workspace.clone()
        }
    }

    pub(super) fn app_config(&self) -> StepResult<&wayline_config::App> {
        let name = self.app_name();
        self.config
            .app(&name)
            .ok_or_else(|| StepError(format!("the config file has no app `{name}`")))
    }

    pub(super) fn ui(&self) -> Ui {
        let events = self.ctx.events.clone();
        Ui::callback(move |ev| {
            if let Some(e) = ev.event {
                events.send(e);
            }
        })
    }

    pub(super) fn core(
        &self,
        component: &str,
        sequence: u64,
        deployment_id: &str,
        env: BTreeMap<String, String>,
    ) -> CoreValues {
        let app = self.app_ref();
        let data_dir = self
            .data_root
            .join(&app.project)
            .join(&app.application)
            .join(component);
        let _ = std::fs::create_dir_all(&data_dir);
        CoreValues {
            job: JobInfo {
                id: self.job.id.clone(),
                project: app.project,
                app: app.application,
                workspace: self.workspace(),
                sequence,
                deployment_id: deployment_id.to_owned(),
            },
            source_path: self.source_path.clone(),
            labels: self.eval.labels().clone(),
            deployment_env: env,
            data_dir,
            consumers: Vec::new(),
        }
    }

    pub(super) fn new_record(
        &self,
        kind: OperationKind,
        plugin: &str,
        ctype: component::Type,
        labels: &BTreeMap<String, String>,
    ) -> Operation {
        let mut all_labels: std::collections::HashMap<String, String> =
            labels.clone().into_iter().collect();
        all_labels.extend(self.job.labels.clone());
        Operation {
            // Chosen here, not by the server, so a write whose answer was lost can be repeated.
            id: wayline_core::id::new_id(),
            kind: kind as i32,
            application: Some(self.app_ref()),
            workspace: self.workspace(),
            status: Some(Status {
                state: status::State::Running as i32,
                start_time: Some(wayline_core::time::now()),
                ..Default::default()
            }),
            component: Some(Component {
                r#type: ctype as i32,
                name: plugin.to_owned(),
            }),
            labels: all_labels,
            job_id: self.job.id.clone(),
            provenance: self.provenance.clone(),
            ..Default::default()
        }
    }

    /// A server call of this job, retried while the server is unreachable.
    pub(crate) async fn call<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        with_server(&self.ctx, call).await
    }

    /// Records `op`. Idempotent: `op` carries its id from [`Self::new_record`] on.
    pub(super) async fn upsert(&self, op: Operation) -> StepResult<Operation> {
        let kind = OperationKind::try_from(op.kind).unwrap_or(OperationKind::Build);
        let req = pb::UpsertOperationRequest {
            operation: Some(op),
        };
        let record = self
            .call(|mut c| {
                let req = req.clone();
                async move {
                    match kind {
                        OperationKind::Build => c.upsert_build(req).await,
                        OperationKind::PushedArtifact => c.upsert_pushed_artifact(req).await,
                        OperationKind::Deployment => c.upsert_deployment(req).await,
                        OperationKind::Release => c.upsert_release(req).await,
                        _ => c.upsert_status_report(req).await,
                    }
                }
            })
            .await?;
        Ok(record)
    }

    pub(super) fn finish(mut op: Operation, outcome: &Result<CallResult, String>) -> Operation {
        let st = op.status.get_or_insert_with(Status::default);
        st.complete_time = Some(wayline_core::time::now());
        match outcome {
            Ok(r) => {
                st.state = status::State::Success as i32;
                op.value.clone_from(&r.value);
                op.template_data_json = r.template_data.to_string();
                if let Some(u) = &r.url {
                    op.url.clone_from(u);
                }
                if !r.resources.is_empty() {
                    op.resources.clone_from(&r.resources);
                }
                if let Some(h) = r.health {
                    op.health = h as i32;
                    op.health_message.clone_from(&r.health_message);
                }
            }
            Err(e) => {
                st.state = status::State::Error as i32;
                st.error.clone_from(e);
            }
        }
        op
    }

    /// Configures a component from a stage's effective `use`, pointing config errors at the file.
    pub(super) async fn component(
        &self,
        kind: ComponentKind,
        used: &EvaluatedUse,
    ) -> StepResult<Arc<dyn ComponentHandle>> {
        let handle = self
            .host
            .component(kind, &used.plugin)
            .await
            .map_err(|e| StepError(format!("{}: {e}", used.location)))?;
        if let Err(errors) = handle.configure(used.body.clone()).await {
            let lines: Vec<String> = errors
                .0
                .iter()
                .map(|e| {
                    let parts: Vec<String> = e
                        .path
                        .split(['.', '[', ']'])
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect();
                    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                    let loc = used
                        .location_of(&refs)
                        .unwrap_or_else(|| used.location.clone());
                    if e.path.is_empty() {
                        format!("{loc}: {} `{}`: {}", kind, used.plugin, e.message)
                    } else {
                        format!(
                            "{loc}: {} `{}`: `{}`: {}",
                            kind, used.plugin, e.path, e.message
                        )
                    }
                })
                .collect();
            return Err(StepError(lines.join("\n")));
        }
        Ok(handle)
    }

    pub(super) fn evaluate(
        &self,
        stage: &Stage,
        extra: &serde_json::Value,
    ) -> StepResult<EvaluatedUse> {
        stage
            .evaluate_use(&self.eval, extra)
            .map_err(|d| StepError(d.to_string()))
    }
}

/// Adds keys of `extra` missing in `base` (both JSON objects).
fn merge(base: &mut serde_json::Value, extra: &serde_json::Value) {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.entry(k.clone()).or_insert_with(|| v.clone());
        }
    } else if base.is_null() {
        *base = extra.clone();
    }
}

/// Fills a job result's URLs from the records.
pub(crate) fn urls(result: &mut JobResult) {
    if let Some(r) = &result.release {
        result.release_url.clone_from(&r.url);
    }
    if let Some(d) = &result.deploy {
        result.deploy_url.clone_from(&d.url);
    }
}
