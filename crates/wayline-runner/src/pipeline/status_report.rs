//! Status reports through a platform's Status capability.

use std::collections::BTreeMap;

use wayline_plugin::{Call, Capability, ComponentKind, Function, Ui};
use wayline_proto::v1::{Operation, OperationKind, component};

use super::{Run, StepResult};
use crate::health::health_word;

impl Run<'_> {
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
