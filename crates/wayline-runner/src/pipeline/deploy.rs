//! The deploy stage: the deployment is declared to the server (PENDING) before the platform
//! creates anything, so `destroy` finds it even when the job dies halfway.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wayline_config::HookWhen;
use wayline_plugin::{Call, ComponentKind, Declare, Function};
use wayline_proto::v1::{
    self as pb, DeclaredResource, Operation, OperationKind, PhysicalState, component,
};

use super::{Produced, Run, StepError, StepResult, merge};
use crate::retry::{CallError, with_server};

/// The resources the platform declared last, as stored on the pending record.
type Declared = Arc<Mutex<Vec<DeclaredResource>>>;

impl Run<'_> {
    /// Sends the file's `config {}` stanzas to the server, so the deployment's entrypoint gets
    /// them (what `wayline config sync` does by hand).
    pub(super) async fn sync_config(&self) -> StepResult<()> {
        let defs = self
            .eval
            .config_vars()
            .map_err(|d| StepError(d.to_string()))?;
        if defs.is_empty() {
            return Ok(());
        }
        let app = self.app_ref();
        let vars = crate::evaluate::to_proto(defs, &app.project, &app.application);
        let n = vars.len();
        let req = pb::SetConfigRequest { variables: vars };
        let sent = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.set_config(req).await }
            })
            .await;
        match sent {
            Ok(()) => {}
            Err(CallError::Refused(s)) if s.code() == tonic::Code::PermissionDenied => {
                self.ctx.events.line(
                    format!(
                        "The config file's `config` was not sent: {} (run `wayline config sync`)",
                        s.message()
                    ),
                    "warning",
                );
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        self.ctx.events.line(
            format!(
                "Synced {n} config variable{} from the config file",
                if n == 1 { "" } else { "s" }
            ),
            "",
        );
        Ok(())
    }

    /// Environment every deployment gets so its entrypoint can reach the server.
    pub(super) async fn deployment_env(
        &self,
        deployment_id: &str,
    ) -> StepResult<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        let cfg = self
            .call(|mut c| async move { c.get_server_config(()).await })
            .await?;
        let addr = if cfg.advertise_unix_socket.is_empty() {
            cfg.advertise_addr.clone()
        } else {
            format!("unix://{}", cfg.advertise_unix_socket)
        };
        if !addr.is_empty() {
            env.insert("WAYLINE_SERVER_ADDR".to_owned(), addr);
            if cfg.advertise_unix_socket.is_empty() && cfg.advertise_tls {
                env.insert("WAYLINE_SERVER_TLS".to_owned(), "1".to_owned());
                if cfg.advertise_tls_skip_verify {
                    env.insert("WAYLINE_SERVER_TLS_SKIP_VERIFY".to_owned(), "1".to_owned());
                }
            }
            // Deployments on other hosts (docker-swarm) can't use the socket: they get the
            // advertised TCP address from these instead.
            if !cfg.advertise_unix_socket.is_empty() && !cfg.advertise_addr.is_empty() {
                env.insert(
                    "WAYLINE_SERVER_TCP_ADDR".to_owned(),
                    cfg.advertise_addr.clone(),
                );
                if cfg.advertise_tls {
                    env.insert("WAYLINE_SERVER_TCP_TLS".to_owned(), "1".to_owned());
                    if cfg.advertise_tls_skip_verify {
                        env.insert(
                            "WAYLINE_SERVER_TCP_TLS_SKIP_VERIFY".to_owned(),
                            "1".to_owned(),
                        );
                    }
                }
            }
            let req = pb::GenerateEntrypointTokenRequest {
                deployment_id: deployment_id.to_owned(),
                ..Default::default()
            };
            let token = self
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.generate_entrypoint_token(req).await }
                })
                .await?
                .token;
            env.insert("WAYLINE_ENTRYPOINT_TOKEN".to_owned(), token);
        }
        env.insert("WAYLINE_DEPLOYMENT_ID".to_owned(), deployment_id.to_owned());
        // Platforms label what they create with the server's id (see the docker plugin).
        if !cfg.server_id.is_empty() {
            env.insert("WAYLINE_SERVER_ID".to_owned(), cfg.server_id);
        }
        Ok(env)
    }

    /// What HCL sees as `artifact.*`: the artifact's template data over its build's.
    pub(super) async fn artifact_template(&self, artifact: &Operation) -> serde_json::Value {
        let build_template = if artifact.build_id.is_empty() {
            serde_json::from_str(&artifact.template_data_json).unwrap_or_default()
        } else {
            let build = self
                .get(OperationKind::Build, &artifact.build_id)
                .await
                .ok();
            build.map_or(serde_json::Value::Null, |b| {
                serde_json::from_str(&b.template_data_json).unwrap_or_default()
            })
        };
        let mut artifact_template =
            serde_json::from_str::<serde_json::Value>(&artifact.template_data_json)
                .unwrap_or_default();
        merge(&mut artifact_template, &build_template);
        artifact_template
    }

    /// The deploy stage. The deployment is recorded PENDING before the platform is called, so
    /// a job that dies while the platform creates things leaves a record `destroy` acts on.
    pub(crate) async fn deploy(&self, artifact: &Operation) -> StepResult<Produced> {
        let app = self.app_config()?;
        let artifact_template = self.artifact_template(artifact).await;
        let mut op_labels = BTreeMap::new();
        let pre = self.evaluate(
            &app.deploy,
            &serde_json::json!({ "artifact": artifact_template, "entrypoint": {"env": {}} }),
        )?;
        op_labels.extend(pre.labels.clone());
        let mut op = self.new_record(
            OperationKind::Deployment,
            &pre.plugin,
            component::Type::Platform,
            &op_labels,
        );
        op.artifact_id.clone_from(&artifact.id);
        op.build_id.clone_from(&artifact.build_id);
        op.physical_state = PhysicalState::Pending as i32;
        // The URL service limits this deployment's hosts as the app said when it was deployed.
        op.url_limits = app
            .url
            .as_ref()
            .and_then(|u| u.limits)
            .map(|l| pb::UrlLimits {
                requests_per_second: l.requests_per_second,
                burst: l.burst,
                bytes_per_second: l.bytes_per_second,
                max_requests: l.max_requests,
            });
        // A deployment's provenance is its artifact's, not the tree the job runs in (a
        // rollback to v1 deploys v1's commit, whatever is checked out now).
        if artifact.provenance.is_some() {
            op.provenance.clone_from(&artifact.provenance);
        }
        let record = self.upsert(op).await?;
        self.sync_config().await?;
        let env = self.deployment_env(&record.id).await?;
        let used = self.evaluate(
            &app.deploy,
            &serde_json::json!({ "artifact": artifact_template, "entrypoint": {"env": env} }),
        )?;
        self.ctx.events.header(format!(
            "Deploying {} {} with `{}`...",
            self.app_name(),
            wayline_core::id::format_sequence(record.sequence),
            used.plugin
        ));
        // Until the platform is called nothing exists: a failure finishes the record as
        // destroyed, not left running.
        let prepared = async {
            let handle = self.component(ComponentKind::Platform, &used).await?;
            self.run_hooks(&used, HookWhen::Before).await?;
            let input = artifact
                .value
                .clone()
                .ok_or_else(|| StepError("the artifact has no value to deploy".into()))?;
            let input = self.adapt(handle.as_ref(), input).await?;
            Ok::<_, StepError>((handle, input))
        }
        .await;
        let (handle, input) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let mut failed = Self::finish(record, &Err(e.0.clone()));
                failed.physical_state = PhysicalState::Destroyed as i32;
                self.upsert(failed).await?;
                return Err(e);
            }
        };
        let declared = Declared::default();
        let call = Call::new(
            Function::Deploy,
            self.core(&used.plugin, record.sequence, &record.id, env),
            self.ui(),
            self.ctx.cancel.clone(),
        )
        .input(input)
        .input_template_data(artifact_template.clone())
        .declare(self.declarer(&record, &declared));
        let outcome = handle.call(call).await.map_err(|e| e.to_string());
        let declared = std::mem::take(&mut *declared.lock().expect("declared lock"));
        let mut finished = Self::finish(record, &outcome);
        finished.physical_state = if outcome.is_ok() {
            PhysicalState::Created
        } else if declared.iter().all(|r| r.destroyed) {
            PhysicalState::Destroyed
        } else {
            // The rollback left something: the record keeps it for `destroy`.
            finished.resources = declared;
            PhysicalState::Pending
        } as i32;
        let record = self.upsert(finished).await?;
        outcome.map_err(|e| StepError(format!("deploy failed: {e}")))?;
        self.run_hooks(&used, HookWhen::After).await?;
        self.ctx.events.status(
            "ok",
            format!(
                "Deployment {} is running",
                wayline_core::id::format_sequence(record.sequence)
            ),
        );
        Ok(Produced { record })
    }

    /// Where the platform declares its resources: each declaration is stored on the pending
    /// `record` (waiting out a server that went away) before the platform creates the resource,
    /// and remembered in `declared` for the record's last write.
    fn declarer(&self, record: &Operation, declared: &Declared) -> Declare {
        let ctx = self.ctx.clone();
        let record = record.clone();
        let declared = declared.clone();
        Declare::new(move |resources| {
            let ctx = ctx.clone();
            let declared = declared.clone();
            let mut op = record.clone();
            op.resources.clone_from(&resources);
            Box::pin(async move {
                let req = pb::UpsertOperationRequest {
                    operation: Some(op),
                };
                with_server(&ctx, |mut c| {
                    let req = req.clone();
                    async move { c.upsert_deployment(req).await }
                })
                .await
                .map_err(|e| e.to_string())?;
                *declared.lock().expect("declared lock") = resources;
                Ok(())
            })
        })
    }
}
