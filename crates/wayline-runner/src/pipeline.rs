//! The plugin pipeline of one job: builder → registry → platform → release manager, with
//! mappers between mismatched types, every step recorded on the server with its provenance.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use prost_types::Any;
use wayline_config::{Config, EvalContext, EvaluatedUse, HookWhen, OnFailure, Stage};
use wayline_plugin::{
    Call, CallResult, Capability, ComponentHandle, ComponentKind, CoreValues, Function, JobInfo,
    PluginHost, Ui,
};
use wayline_proto::v1::{
    self as pb, Component, Job, JobError, JobResult, Operation, OperationKind, PhysicalState,
    Provenance, Status, component, get_operation_request, status,
};

use crate::agent::JobContext;

/// A failed step, already phrased for the user.
#[derive(Debug)]
pub(crate) struct StepError(pub(crate) String);

impl From<tonic::Status> for StepError {
    fn from(s: tonic::Status) -> Self {
        Self(format!("the server refused the update: {}", s.message()))
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

/// A recorded step's value and what HCL sees of it.
#[derive(Clone, Debug)]
pub(crate) struct Produced {
    pub(crate) record: Operation,
}

impl Produced {
    fn template(&self) -> serde_json::Value {
        serde_json::from_str(&self.record.template_data_json).unwrap_or(serde_json::Value::Null)
    }
}

impl Run<'_> {
    fn app_ref(&self) -> pb::r#ref::Application {
        self.job.application.clone().unwrap_or_default()
    }

    fn app_name(&self) -> String {
        self.app_ref().application
    }

    fn workspace(&self) -> String {
        if self.job.workspace.is_empty() {
            "default".to_owned()
        } else {
            self.job.workspace.clone()
        }
    }

    fn app_config(&self) -> StepResult<&wayline_config::App> {
        let name = self.app_name();
        self.config
            .app(&name)
            .ok_or_else(|| StepError(format!("the config file has no app `{name}`")))
    }

    fn ui(&self) -> Ui {
        let events = self.ctx.events.clone();
        Ui::callback(move |ev| {
            if let Some(e) = ev.event {
                events.send(e);
            }
        })
    }

    fn core(
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
        }
    }

    fn new_record(
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

    async fn upsert(&self, op: Operation) -> StepResult<Operation> {
        let mut c = self.ctx.client.clone();
        let req = pb::UpsertOperationRequest {
            operation: Some(op.clone()),
        };
        let resp = match OperationKind::try_from(op.kind).unwrap_or(OperationKind::Build) {
            OperationKind::Build => c.upsert_build(req).await?,
            OperationKind::PushedArtifact => c.upsert_pushed_artifact(req).await?,
            OperationKind::Deployment => c.upsert_deployment(req).await?,
            OperationKind::Release => c.upsert_release(req).await?,
            _ => c.upsert_status_report(req).await?,
        };
        Ok(resp.into_inner())
    }

    fn finish(mut op: Operation, outcome: &Result<CallResult, String>) -> Operation {
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
    async fn component(
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

    fn evaluate(&self, stage: &Stage, extra: &serde_json::Value) -> StepResult<EvaluatedUse> {
        stage
            .evaluate_use(&self.eval, extra)
            .map_err(|d| StepError(d.to_string()))
    }

    /// Maps `value` to a type `handle` accepts, inserting the shortest mapper chain.
    async fn adapt(&self, handle: &dyn ComponentHandle, value: Any) -> StepResult<Any> {
        let accepts = handle.accepts();
        let have = wayline_plugin::type_name(&value).to_owned();
        if accepts.is_empty() || accepts.iter().any(|a| a == &have || a == "*") {
            return Ok(value);
        }
        let mut best: Option<wayline_plugin::Chain> = None;
        let mut last_err = None;
        for want in accepts {
            match self.host.find_chain(&have, want) {
                Ok(chain) => {
                    if best.as_ref().is_none_or(|b| chain.len() < b.len()) {
                        best = Some(chain);
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        match best {
            Some(chain) => {
                self.ctx.events.line(
                    format!("Mapping {have} with {}", chain.names().join(" → ")),
                    "",
                );
                self.host
                    .map(&chain, value)
                    .await
                    .map_err(|e| StepError(format!("mapper failed: {e}")))
            }
            None => Err(StepError(match last_err {
                Some(e) => format!(
                    "{} `{}` cannot take the previous step's output: {e}",
                    handle.kind(),
                    handle.name()
                ),
                None => format!("{} `{}` accepts no types", handle.kind(), handle.name()),
            })),
        }
    }

    async fn run_hooks(&self, used: &EvaluatedUse, when: HookWhen) -> StepResult<()> {
        for hook in used.hooks.iter().filter(|h| h.when == when) {
            let Some((prog, args)) = hook.command.split_first() else {
                continue;
            };
            self.ctx.events.line(
                format!(
                    "Running {} hook: {}",
                    if when == HookWhen::Before {
                        "before"
                    } else {
                        "after"
                    },
                    hook.command.join(" ")
                ),
                "",
            );
            // kill_on_drop: a cancelled job must not leave its hook running.
            let run = tokio::process::Command::new(prog)
                .args(args)
                .current_dir(&self.source_path)
                .kill_on_drop(true)
                .output();
            let out = tokio::select! {
                out = run => out,
                () = self.ctx.cancel.cancelled() => return Err(StepError("cancelled".into())),
            };
            let failure = match out {
                Ok(o) => {
                    for line in String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .chain(String::from_utf8_lossy(&o.stderr).lines())
                    {
                        self.ctx.events.line(line.to_owned(), "");
                    }
                    (!o.status.success()).then(|| {
                        format!("hook `{}` exited with {}", hook.command.join(" "), o.status)
                    })
                }
                Err(e) => Some(format!(
                    "hook `{}` could not start: {e}",
                    hook.command.join(" ")
                )),
            };
            if let Some(msg) = failure {
                if hook.on_failure == OnFailure::Continue {
                    self.ctx
                        .events
                        .line(format!("{msg} (continuing)"), "warning");
                } else {
                    return Err(StepError(msg));
                }
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- pipeline exec steps

    /// Runs a pipeline's `exec` step: the command in the source directory, its output streamed
    /// line by line, failing the job with its exit status.
    pub(crate) async fn exec_step(&self, command: &[String]) -> StepResult<()> {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let Some((prog, args)) = command.split_first() else {
            return Err(StepError(
                "an `exec` step needs a non-empty `command`".into(),
            ));
        };
        self.ctx
            .events
            .header(format!("Running `{}`...", command.join(" ")));
        let app = self.app_ref();
        let mut child = tokio::process::Command::new(prog)
            .args(args)
            .current_dir(&self.source_path)
            .env("WAYLINE_PROJECT", &app.project)
            .env("WAYLINE_APP", &app.application)
            .env("WAYLINE_WORKSPACE", self.workspace())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StepError(format!("`{prog}` could not start: {e}")))?;
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut err = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                l = out.next_line(), if out_open => match l {
                    Ok(Some(line)) => self.ctx.events.line(line, ""),
                    _ => out_open = false,
                },
                l = err.next_line(), if err_open => match l {
                    Ok(Some(line)) => self.ctx.events.line(line, ""),
                    _ => err_open = false,
                },
                () = self.ctx.cancel.cancelled() => return Err(StepError("cancelled".into())),
            }
        }
        let status = tokio::select! {
            s = child.wait() => s.map_err(|e| StepError(format!("waiting for `{prog}` failed: {e}")))?,
            () = self.ctx.cancel.cancelled() => return Err(StepError("cancelled".into())),
        };
        if !status.success() {
            return Err(StepError(format!("`{}` {status}", command.join(" "))));
        }
        self.ctx
            .events
            .status("ok", format!("`{}` succeeded", command.join(" ")));
        Ok(())
    }

    // ---------------------------------------------------------------- build and push

    pub(crate) async fn build(&self) -> StepResult<Produced> {
        let app = self.app_config()?;
        let used = self.evaluate(&app.build, &serde_json::json!({}))?;
        let handle = self.component(ComponentKind::Builder, &used).await?;
        self.ctx.events.header(format!(
            "Building {} with `{}`...",
            self.app_name(),
            used.plugin
        ));
        self.run_hooks(&used, HookWhen::Before).await?;
        let record = self
            .upsert(self.new_record(
                OperationKind::Build,
                &used.plugin,
                component::Type::Builder,
                &used.labels,
            ))
            .await?;
        let call = Call::new(
            Function::Build,
            self.core(&used.plugin, record.sequence, "", BTreeMap::new()),
            self.ui(),
            self.ctx.cancel.clone(),
        );
        let outcome = handle.call(call).await.map_err(|e| e.to_string());
        let record = self.upsert(Self::finish(record, &outcome)).await?;
        outcome.map_err(|e| StepError(format!("build failed: {e}")))?;
        self.run_hooks(&used, HookWhen::After).await?;
        self.ctx.events.status(
            "ok",
            format!(
                "Build {} complete",
                wayline_core::id::format_sequence(record.sequence)
            ),
        );
        Ok(Produced { record })
    }

    pub(crate) async fn push(&self, build: &Produced) -> StepResult<Produced> {
        let app = self.app_config()?;
        let Some(registry) = app
            .build
            .effective(&self.workspace(), self.eval.labels())
            .use_
            .map(|_| ())
            .and(app.build.registry.as_deref())
        else {
            // No registry: the build itself is the artifact to deploy.
            let mut op = build.record.clone();
            op.kind = OperationKind::PushedArtifact as i32;
            op.id = String::new();
            op.sequence = 0;
            op.build_id.clone_from(&build.record.id);
            let record = self.upsert(op).await?;
            return Ok(Produced { record });
        };
        let extra = serde_json::json!({ "artifact": build.template() });
        let used = self.evaluate(registry, &extra)?;
        let handle = self.component(ComponentKind::Registry, &used).await?;
        self.ctx
            .events
            .header(format!("Pushing with `{}`...", used.plugin));
        self.run_hooks(&used, HookWhen::Before).await?;
        let mut op = self.new_record(
            OperationKind::PushedArtifact,
            &used.plugin,
            component::Type::Registry,
            &used.labels,
        );
        op.build_id.clone_from(&build.record.id);
        let record = self.upsert(op).await?;
        let input = build
            .record
            .value
            .clone()
            .ok_or_else(|| StepError("the build recorded no artifact".into()))?;
        let input = self.adapt(handle.as_ref(), input).await?;
        let call = Call::new(
            Function::Push,
            self.core(&used.plugin, record.sequence, "", BTreeMap::new()),
            self.ui(),
            self.ctx.cancel.clone(),
        )
        .input(input)
        .input_template_data(build.template());
        let outcome = handle.call(call).await.map_err(|e| e.to_string());
        let record = self.upsert(Self::finish(record, &outcome)).await?;
        outcome.map_err(|e| StepError(format!("push failed: {e}")))?;
        self.run_hooks(&used, HookWhen::After).await?;
        self.ctx.events.status("ok", "Artifact pushed");
        Ok(Produced { record })
    }

    /// The latest successful pushed artifact of the app.
    pub(crate) async fn latest(&self, kind: OperationKind) -> StepResult<Option<Operation>> {
        let req = pb::GetOperationRequest {
            kind: kind as i32,
            target: Some(get_operation_request::Target::Latest(
                get_operation_request::Latest {
                    application: Some(self.app_ref()),
                    workspace: self.workspace(),
                    success_only: true,
                },
            )),
        };
        match self.ctx.client.clone().get_operation(req).await {
            // A destroyed build or artifact can't be deployed again.
            Ok(r)
                if r.get_ref().physical_state == PhysicalState::Destroyed as i32
                    && matches!(kind, OperationKind::Build | OperationKind::PushedArtifact) =>
            {
                Ok(None)
            }
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(s.into()),
        }
    }

    pub(crate) async fn get(&self, kind: OperationKind, id: &str) -> StepResult<Operation> {
        let req = pb::GetOperationRequest {
            kind: kind as i32,
            target: Some(get_operation_request::Target::Id(id.to_owned())),
        };
        Ok(self
            .ctx
            .client
            .clone()
            .get_operation(req)
            .await?
            .into_inner())
    }

    // ---------------------------------------------------------------- deploy

    /// Sends the file's `config {}` stanzas to the server, so the deployment's entrypoint gets
    /// them (what `wayline config sync` does by hand).
    async fn sync_config(&self) -> StepResult<()> {
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
        match self
            .ctx
            .client
            .clone()
            .set_config(pb::SetConfigRequest { variables: vars })
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::PermissionDenied => {
                self.ctx.events.line(
                    format!(
                        "The config file's `config` was not sent: {} (run `wayline config sync`)",
                        s.message()
                    ),
                    "warning",
                );
                return Ok(());
            }
            Err(s) => return Err(s.into()),
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
    async fn deployment_env(&self, deployment_id: &str) -> StepResult<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        let mut c = self.ctx.client.clone();
        let cfg = c.get_server_config(()).await?.into_inner();
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
            let token = c
                .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
                    deployment_id: deployment_id.to_owned(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .token;
            env.insert("WAYLINE_ENTRYPOINT_TOKEN".to_owned(), token);
        }
        env.insert("WAYLINE_DEPLOYMENT_ID".to_owned(), deployment_id.to_owned());
        Ok(env)
    }

    pub(crate) async fn deploy(&self, artifact: &Operation) -> StepResult<Produced> {
        let app = self.app_config()?;
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
        let handle = match self.component(ComponentKind::Platform, &used).await {
            Ok(h) => h,
            Err(e) => {
                self.upsert(Self::finish(record, &Err(e.0.clone()))).await?;
                return Err(e);
            }
        };
        self.run_hooks(&used, HookWhen::Before).await?;
        let input = artifact
            .value
            .clone()
            .ok_or_else(|| StepError("the artifact has no value to deploy".into()))?;
        let input = self.adapt(handle.as_ref(), input).await?;
        let call = Call::new(
            Function::Deploy,
            self.core(&used.plugin, record.sequence, &record.id, env),
            self.ui(),
            self.ctx.cancel.clone(),
        )
        .input(input)
        .input_template_data(artifact_template.clone());
        let outcome = handle.call(call).await.map_err(|e| e.to_string());
        let mut finished = Self::finish(record, &outcome);
        finished.physical_state = if outcome.is_ok() {
            PhysicalState::Created
        } else {
            PhysicalState::Destroyed
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

    // ---------------------------------------------------------------- release

    pub(crate) async fn release(&self, deployment: &Operation) -> StepResult<Produced> {
        let app = self.app_config()?;
        let deploy_template: serde_json::Value =
            serde_json::from_str(&deployment.template_data_json).unwrap_or_default();
        let platform_name = deployment
            .component
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let (used, handle) = match &app.release {
            Some(stage)
                if stage
                    .effective(&self.workspace(), self.eval.labels())
                    .use_
                    .is_some() =>
            {
                let used =
                    self.evaluate(stage, &serde_json::json!({ "deploy": deploy_template }))?;
                let h = self.component(ComponentKind::ReleaseManager, &used).await?;
                (Some(used), Some(h))
            }
            _ => {
                // The platform's default release manager, if it names one.
                let platform = self
                    .host
                    .component(ComponentKind::Platform, &platform_name)
                    .await
                    .ok();
                let default = platform
                    .and_then(|p| p.info().default_release_manager.clone())
                    .filter(|s| !s.is_empty());
                match default {
                    Some(name) => {
                        let h = self
                            .host
                            .component(ComponentKind::ReleaseManager, &name)
                            .await
                            .map_err(|e| StepError(e.to_string()))?;
                        (None, Some(h))
                    }
                    None => (None, None),
                }
            }
        };
        let plugin = handle
            .as_ref()
            .map_or_else(|| platform_name.clone(), |h| h.name().to_owned());
        self.ctx.events.header(format!(
            "Releasing {} {}...",
            self.app_name(),
            wayline_core::id::format_sequence(deployment.sequence)
        ));
        let labels = used.as_ref().map(|u| u.labels.clone()).unwrap_or_default();
        let mut op = self.new_record(
            OperationKind::Release,
            &plugin,
            component::Type::Releasemanager,
            &labels,
        );
        op.deployment_id.clone_from(&deployment.id);
        let record = self.upsert(op).await?;
        if let Some(u) = &used {
            self.run_hooks(u, HookWhen::Before).await?;
        }
        let outcome = match &handle {
            Some(h) => {
                let input = deployment
                    .value
                    .clone()
                    .ok_or_else(|| StepError("the deployment has no value to release".into()))?;
                let input = self.adapt(h.as_ref(), input).await?;
                let call = Call::new(
                    Function::Release,
                    self.core(h.name(), record.sequence, &deployment.id, BTreeMap::new()),
                    self.ui(),
                    self.ctx.cancel.clone(),
                )
                .input(input)
                .input_template_data(deploy_template.clone());
                h.call(call).await.map_err(|e| e.to_string())
            }
            // Nothing to configure: releasing marks the deployment live and uses its URL.
            None => Ok(CallResult {
                value: deployment.value.clone(),
                template_data: deploy_template.clone(),
                resources: Vec::new(),
                url: Some(deployment.url.clone()).filter(|u| !u.is_empty()),
                health: None,
                health_message: String::new(),
            }),
        };
        let record = self.upsert(Self::finish(record, &outcome)).await?;
        outcome.map_err(|e| StepError(format!("release failed: {e}")))?;
        if let Some(u) = &used {
            self.run_hooks(u, HookWhen::After).await?;
        }
        self.ctx.events.status(
            "ok",
            format!(
                "Release {} is live",
                wayline_core::id::format_sequence(record.sequence)
            ),
        );
        Ok(Produced { record })
    }

    // ---------------------------------------------------------------- destroy, prune, status

    /// A handle on component `name` configured from the file as it is now, for destroy and
    /// status calls that happen long after the operation that created the value.
    async fn configured(
        &self,
        kind: ComponentKind,
        name: &str,
    ) -> StepResult<Arc<dyn ComponentHandle>> {
        let handle = self
            .host
            .component(kind, name)
            .await
            .map_err(|e| StepError(e.to_string()))?;
        let Ok(app) = self.app_config() else {
            return Ok(handle);
        };
        let stage = match kind {
            ComponentKind::Builder => Some(&app.build),
            ComponentKind::Registry => app.build.registry.as_deref(),
            ComponentKind::Platform => Some(&app.deploy),
            ComponentKind::ReleaseManager => app.release.as_ref(),
            ComponentKind::ConfigSourcer => None,
        };
        let extra = serde_json::json!({"artifact": {}, "deploy": {}, "entrypoint": {"env": {}}});
        if let Some(stage) = stage
            && let Ok(used) = self.evaluate(stage, &extra)
            && used.plugin == name
        {
            let _ = handle.configure(used.body.clone()).await;
        }
        Ok(handle)
    }

    /// Destroys one deployment through its platform's Destroyer, with its stored resources.
    pub(crate) async fn destroy_deployment(&self, deployment: &Operation) -> StepResult<()> {
        let platform = deployment
            .component
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let seq = wayline_core::id::format_sequence(deployment.sequence);
        let handle = self.configured(ComponentKind::Platform, &platform).await?;
        if handle.capabilities().contains(&Capability::Destroyer) {
            let mut call = Call::new(
                Function::Destroy,
                self.core(
                    &platform,
                    deployment.sequence,
                    &deployment.id,
                    BTreeMap::new(),
                ),
                self.ui(),
                self.ctx.cancel.clone(),
            )
            .resources(deployment.resources.clone());
            if let Some(v) = deployment.value.clone() {
                call = call.input(v);
            }
            let result = handle
                .call(call)
                .await
                .map_err(|e| StepError(format!("destroying deployment {seq} failed: {e}")))?;
            let mut op = deployment.clone();
            op.physical_state = PhysicalState::Destroyed as i32;
            if !result.resources.is_empty() {
                op.resources = result.resources;
            }
            self.upsert(op).await?;
        } else {
            let mut op = deployment.clone();
            op.physical_state = PhysicalState::Destroyed as i32;
            self.upsert(op).await?;
        }
        self.ctx
            .events
            .status("ok", format!("Destroyed deployment {seq}"));
        Ok(())
    }

    /// Destroys the pushed artifacts and builds of this app and workspace through their
    /// components' Destroyers (newest first), marking each record destroyed.
    pub(crate) async fn destroy_artifacts(&self) -> StepResult<Vec<Operation>> {
        let mut destroyed = Vec::new();
        for (kind, ckind) in [
            (OperationKind::PushedArtifact, ComponentKind::Registry),
            (OperationKind::Build, ComponentKind::Builder),
        ] {
            let req = pb::ListOperationsRequest {
                application: Some(self.app_ref()),
                workspace: self.workspace(),
                state: status::State::Success as i32,
                limit: 10_000,
                ..Default::default()
            };
            let mut c = self.ctx.client.clone();
            let records = if kind == OperationKind::Build {
                c.list_builds(req).await?
            } else {
                c.list_pushed_artifacts(req).await?
            }
            .into_inner()
            .operations;
            for record in records {
                if record.physical_state == PhysicalState::Destroyed as i32 {
                    continue;
                }
                let name = record
                    .component
                    .as_ref()
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                // A pushed artifact without a registry is the build itself: nothing of its own.
                let own = record.component.as_ref().is_some_and(|c| {
                    (kind == OperationKind::Build) == (c.r#type == component::Type::Builder as i32)
                });
                if own
                    && let Ok(handle) = self.configured(ckind, &name).await
                    && handle.capabilities().contains(&Capability::Destroyer)
                {
                    let mut call = Call::new(
                        Function::Destroy,
                        self.core(&name, record.sequence, "", BTreeMap::new()),
                        self.ui(),
                        self.ctx.cancel.clone(),
                    )
                    .resources(record.resources.clone());
                    if let Some(v) = record.value.clone() {
                        call = call.input(v);
                    }
                    let what = if kind == OperationKind::Build {
                        "build"
                    } else {
                        "pushed artifact"
                    };
                    let seq = wayline_core::id::format_sequence(record.sequence);
                    handle
                        .call(call)
                        .await
                        .map_err(|e| StepError(format!("destroying {what} {seq} failed: {e}")))?;
                    self.ctx
                        .events
                        .status("ok", format!("Destroyed {what} {seq}"));
                }
                let mut op = record.clone();
                op.physical_state = PhysicalState::Destroyed as i32;
                destroyed.push(self.upsert(op).await?);
            }
        }
        Ok(destroyed)
    }

    /// Deployments of this app and workspace that still exist, newest first.
    pub(crate) async fn live_deployments(&self) -> StepResult<Vec<Operation>> {
        let req = pb::ListOperationsRequest {
            application: Some(self.app_ref()),
            workspace: self.workspace(),
            physical_state: PhysicalState::Created as i32,
            limit: 10_000,
            ..Default::default()
        };
        let mut ops = self
            .ctx
            .client
            .clone()
            .list_deployments(req)
            .await?
            .into_inner()
            .operations;
        ops.sort_by_key(|o| std::cmp::Reverse(o.sequence));
        Ok(ops)
    }

    /// After a release: destroys deployments older than the released one beyond `retain`.
    pub(crate) async fn prune(
        &self,
        released: &Operation,
        retain: i32,
    ) -> StepResult<Vec<Operation>> {
        let retain = usize::try_from(retain.max(0)).unwrap_or(1);
        let older: Vec<Operation> = self
            .live_deployments()
            .await?
            .into_iter()
            .filter(|d| d.id != released.id && d.sequence < released.sequence)
            .collect();
        let mut destroyed = Vec::new();
        for d in older.into_iter().skip(retain) {
            self.ctx.events.line(
                format!(
                    "Pruning deployment {}",
                    wayline_core::id::format_sequence(d.sequence)
                ),
                "",
            );
            self.destroy_deployment(&d).await?;
            destroyed.push(d);
        }
        Ok(destroyed)
    }

    /// A status report of a deployment through its platform's Status capability.
    pub(crate) async fn status_report(
        &self,
        deployment: &Operation,
    ) -> StepResult<Option<Operation>> {
        let platform = deployment
            .component
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let Ok(handle) = self
            .host
            .component(ComponentKind::Platform, &platform)
            .await
        else {
            return Ok(None);
        };
        if !handle.capabilities().contains(&Capability::Status) {
            return Ok(None);
        }
        let mut op = self.new_record(
            OperationKind::StatusReport,
            &platform,
            component::Type::Platform,
            &BTreeMap::new(),
        );
        op.target_id.clone_from(&deployment.id);
        op.deployment_id.clone_from(&deployment.id);
        let mut call = Call::new(
            Function::Status,
            self.core(
                &platform,
                deployment.sequence,
                &deployment.id,
                BTreeMap::new(),
            ),
            Ui::discard(),
            self.ctx.cancel.clone(),
        )
        .resources(deployment.resources.clone());
        if let Some(v) = deployment.value.clone() {
            call = call.input(v);
        }
        let outcome = handle.call(call).await.map_err(|e| e.to_string());
        let record = self.upsert(Self::finish(op, &outcome)).await?;
        if let Ok(r) = &outcome {
            let health = r.health.map_or("unknown", |h| health_word(h));
            self.ctx.events.line(
                format!(
                    "Health of {}: {health}{}",
                    wayline_core::id::format_sequence(deployment.sequence),
                    if r.health_message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", r.health_message)
                    }
                ),
                "info",
            );
        }
        Ok(Some(record))
    }
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
