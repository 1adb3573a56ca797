//! Destroying deployments and artifacts, and pruning old deployments after a release.
//!
//! A deployment counts as existing while it is CREATED or PENDING: a PENDING one was declared
//! before its platform created anything and its job never finished, so whatever the platform
//! made is still there unless `destroy` removes it.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost_types::Any;
use wayline_plugin::{Call, Capability, ComponentHandle, ComponentKind, Function};
use wayline_proto::v1::{self as pb, Operation, OperationKind, PhysicalState, component, status};

use super::{Run, StepError, StepResult};

/// Whether a deployment may still have things on its platform.
pub(crate) fn exists(d: &Operation) -> bool {
    d.physical_state == PhysicalState::Created as i32
        || d.physical_state == PhysicalState::Pending as i32
}

/// The deployments a prune destroys: those older than `released` beyond the `retain` newest
/// (`live` newest first).
pub(crate) fn prune_candidates(
    live: Vec<Operation>,
    released: &Operation,
    retain: i32,
) -> Vec<Operation> {
    let retain = usize::try_from(retain.max(0)).unwrap_or(0);
    live.into_iter()
        .filter(|d| d.id != released.id && d.sequence < released.sequence)
        .skip(retain)
        .collect()
}

impl Run<'_> {
    /// A handle on component `name` configured from the file as it is now, for destroy and
    /// status calls that happen long after the operation that created the value.
    pub(super) async fn configured(
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
        let mut op = deployment.clone();
        if handle.capabilities().contains(&Capability::Destroyer) {
            let call = Call::new(
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
            .resources(deployment.resources.clone())
            // A deployment whose job died before the platform answered has no value: the
            // platform gets an empty one of its type and finds its things by the deployment id.
            .input(deployment.value.clone().unwrap_or_else(|| Any {
                type_url: format!(
                    "{}{}",
                    wayline_plugin::value::TYPE_URL_PREFIX,
                    handle.info().returns
                ),
                value: Vec::new(),
            }));
            match handle.call(call).await {
                Ok(result) if !result.resources.is_empty() => op.resources = result.resources,
                Ok(_) => {}
                Err(e) if deployment.value.is_none() => self.ctx.events.line(
                    format!(
                        "Deployment {seq} never finished deploying and `{platform}` could not destroy it from its record alone ({e}); check `{platform}` for leftovers"
                    ),
                    "warning",
                ),
                Err(e) => return Err(StepError(format!("destroying deployment {seq} failed: {e}"))),
            }
        }
        op.physical_state = PhysicalState::Destroyed as i32;
        self.upsert(op).await?;
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
            let records = self
                .call(|mut c| {
                    let req = req.clone();
                    async move {
                        if kind == OperationKind::Build {
                            c.list_builds(req).await
                        } else {
                            c.list_pushed_artifacts(req).await
                        }
                    }
                })
                .await?
                .operations;
            for record in records {
                if record.physical_state == PhysicalState::Destroyed as i32 {
                    continue;
                }
                self.destroy_artifact(kind, ckind, &record).await?;
                let mut op = record.clone();
                op.physical_state = PhysicalState::Destroyed as i32;
                destroyed.push(self.upsert(op).await?);
            }
        }
        Ok(destroyed)
    }

    /// Destroys what one build or pushed artifact made, when its component can.
    pub(super) async fn destroy_artifact(
        &self,
        kind: OperationKind,
        ckind: ComponentKind,
        record: &Operation,
    ) -> StepResult<()> {
        let name = record
            .component
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        // A pushed artifact without a registry is the build itself: nothing of its own.
        let own = record.component.as_ref().is_some_and(|c| {
            (kind == OperationKind::Build) == (c.r#type == component::Type::Builder as i32)
        });
        let handle = match self.configured(ckind, &name).await {
            Ok(h) if own && h.capabilities().contains(&Capability::Destroyer) => h,
            _ => return Ok(()),
        };
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
        Ok(())
    }

    /// Deployments of this app and workspace that may still exist, newest first.
    pub(crate) async fn live_deployments(&self) -> StepResult<Vec<Operation>> {
        let req = pb::ListOperationsRequest {
            application: Some(self.app_ref()),
            workspace: self.workspace(),
            limit: 10_000,
            ..Default::default()
        };
        let mut ops: Vec<Operation> = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.list_deployments(req).await }
            })
            .await?
            .operations
            .into_iter()
            .filter(exists)
            .collect();
        ops.sort_by_key(|o| std::cmp::Reverse(o.sequence));
        Ok(ops)
    }

    /// After a release: destroys deployments older than the released one beyond `retain`.
    pub(crate) async fn prune(
        &self,
        released: &Operation,
        retain: i32,
    ) -> StepResult<Vec<Operation>> {
        let older = prune_candidates(self.live_deployments().await?, released, retain);
        for d in &older {
            self.ctx.events.line(
                format!(
                    "Pruning deployment {}",
                    wayline_core::id::format_sequence(d.sequence)
                ),
                "",
            );
            self.destroy_deployment(d).await?;
        }
        Ok(older)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(seq: u64, physical: PhysicalState) -> Operation {
        Operation {
            id: format!("d{seq}"),
            sequence: seq,
            physical_state: physical as i32,
            ..Operation::default()
        }
    }

    #[test]
    fn prune_keeps_the_newest_older_ones_and_never_the_released() {
        let live: Vec<Operation> = (1..=5)
            .rev()
            .map(|s| deployment(s, PhysicalState::Created))
            .collect();
        let released = deployment(4, PhysicalState::Created);
        let seqs = |v: Vec<Operation>| v.iter().map(|d| d.sequence).collect::<Vec<_>>();
        // v5 is newer than the released v4 (a deploy without release): never pruned.
        assert_eq!(
            seqs(prune_candidates(live.clone(), &released, 1)),
            vec![2, 1]
        );
        assert_eq!(
            seqs(prune_candidates(live.clone(), &released, 0)),
            vec![3, 2, 1]
        );
        assert_eq!(
            seqs(prune_candidates(live.clone(), &released, -4)),
            vec![3, 2, 1]
        );
        assert!(prune_candidates(live, &released, 10).is_empty());
    }

    #[test]
    fn pending_deployments_still_exist() {
        assert!(exists(&deployment(1, PhysicalState::Created)));
        assert!(exists(&deployment(1, PhysicalState::Pending)));
        assert!(!exists(&deployment(1, PhysicalState::Destroyed)));
    }
}
