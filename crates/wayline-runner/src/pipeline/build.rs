//! The build and push stages, and reading earlier records (latest, by id).

use std::collections::BTreeMap;

use wayline_config::HookWhen;
use wayline_plugin::{Call, ComponentKind, Function};
use wayline_proto::v1::{
    self as pb, Operation, OperationKind, PhysicalState, component, get_operation_request,
};

use super::{Run, StepError, StepResult};
use crate::retry::CallError;

/// A recorded step's value and what HCL sees of it.
#[derive(Clone, Debug)]
pub(crate) struct Produced {
    pub(crate) record: Operation,
}

impl Produced {
    pub(crate) fn template(&self) -> serde_json::Value {
        serde_json::from_str(&self.record.template_data_json).unwrap_or(serde_json::Value::Null)
    }
}

impl Run<'_> {
    /// The build stage: the builder, between its hooks.
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
        let mut core = self.core(&used.plugin, record.sequence, "", BTreeMap::new());
        core.consumers = self.build_consumers(app);
        let call = Call::new(Function::Build, core, self.ui(), self.ctx.cancel.clone());
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

    /// The plugins that take the build's output, as this workspace and these labels select
    /// them: the registry's, when there is one, then the platform's.
    fn build_consumers(&self, app: &wayline_config::App) -> Vec<String> {
        let (workspace, labels) = (self.workspace(), self.eval.labels());
        let plugin = |stage: &wayline_config::Stage| {
            stage
                .effective(&workspace, labels)
                .use_block
                .map(|u| u.plugin.clone())
        };
        let registry = app.build.registry.as_deref().and_then(plugin);
        registry.into_iter().chain(plugin(&app.deploy)).collect()
    }

    /// The push stage: the registry, or (without one) the build itself as the artifact.
    pub(crate) async fn push(&self, build: &Produced) -> StepResult<Produced> {
        let app = self.app_config()?;
        let Some(registry) = app
            .build
            .effective(&self.workspace(), self.eval.labels())
            .use_block
            .map(|_| ())
            .and(app.build.registry.as_deref())
        else {
            // No registry: the build itself is the artifact to deploy.
            let mut op = build.record.clone();
            op.kind = OperationKind::PushedArtifact as i32;
            op.id = wayline_core::id::new_id();
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

    /// The latest successful record of `kind` of the app.
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
        let found = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.get_operation(req).await }
            })
            .await;
        match found {
            // A destroyed build or artifact can't be deployed again.
            Ok(r)
                if r.physical_state == PhysicalState::Destroyed as i32
                    && matches!(kind, OperationKind::Build | OperationKind::PushedArtifact) =>
            {
                Ok(None)
            }
            Ok(r) => Ok(Some(r)),
            Err(CallError::Refused(s)) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The record `id` of `kind`.
    pub(crate) async fn get(&self, kind: OperationKind, id: &str) -> StepResult<Operation> {
        let req = pb::GetOperationRequest {
            kind: kind as i32,
            target: Some(get_operation_request::Target::Id(id.to_owned())),
        };
        Ok(self
            .call(|mut c| {
                let req = req.clone();
                async move { c.get_operation(req).await }
            })
            .await?)
    }
}
