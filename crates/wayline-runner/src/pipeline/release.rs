//! The release stage: the file's release manager, else the platform's default one, else the
//! deployment itself is marked live.

use std::collections::BTreeMap;
use std::sync::Arc;

use wayline_config::{EvaluatedUse, HookWhen};
use wayline_plugin::{Call, CallResult, ComponentHandle, ComponentKind, Function};
use wayline_proto::v1::{self as pb, Operation, OperationKind, component};

use super::{Produced, Run, StepError, StepResult};
use crate::retry::CallError;

/// How long a deployment has to pass its health check before a release through the router.
const HEALTH_TIMEOUT_SECONDS: u32 = 60;

/// The release a rollback goes back to: the newest one before the live release that released
/// another deployment.
pub(crate) fn rollback_release(releases: &[Operation]) -> StepResult<&Operation> {
    let live = releases.iter().find(|r| r.live).ok_or_else(|| {
        StepError(
            "nothing is live (never released, or destroyed since), so there is nothing to roll \
             back from; `wayline release -deployment vN` releases a chosen deployment"
                .into(),
        )
    })?;
    releases
        .iter()
        .filter(|r| r.sequence < live.sequence && r.deployment_id != live.deployment_id)
        .max_by_key(|r| r.sequence)
        .ok_or_else(|| StepError("there is no release before the live one to roll back to".into()))
}

/// The release manager of a release: the file's `use` (with its evaluated body), or none.
type Manager = (Option<EvaluatedUse>, Option<Arc<dyn ComponentHandle>>);

impl Run<'_> {
    /// Asks the URL service whether the deployment answers its `url { health_path }` (any
    /// HTTP answer to `/` without one) before the app host moves to it; a server without a
    /// URL service (or an older one) checks nothing.
    async fn health_gate(&self, deployment: &Operation) -> StepResult<()> {
        let path = self
            .app_config()?
            .url
            .as_ref()
            .and_then(|u| u.health_path.clone())
            .unwrap_or_default();
        let req = pb::CheckDeploymentHealthRequest {
            deployment_id: deployment.id.clone(),
            path,
            timeout_seconds: HEALTH_TIMEOUT_SECONDS,
        };
        let answer = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.check_deployment_health(req).await }
            })
            .await;
        match answer {
            Ok(r) if !r.checked => Ok(()),
            Ok(r) if r.error.is_empty() => {
                self.ctx
                    .events
                    .line(format!("Health check passed: {}", r.summary), "");
                Ok(())
            }
            Ok(r) => Err(StepError(format!(
                "{} {} was not released, traffic stays where it was: {}",
                self.app_name(),
                wayline_core::id::format_sequence(deployment.sequence),
                r.error
            ))),
            Err(CallError::Refused(s)) if s.code() == tonic::Code::Unimplemented => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The file's release manager, else the platform's default one, else none.
    pub(super) async fn release_manager(
        &self,
        platform_name: &str,
        deploy_template: &serde_json::Value,
    ) -> StepResult<Manager> {
        let app = self.app_config()?;
        if let Some(stage) = &app.release
            && stage
                .effective(&self.workspace(), self.eval.labels())
                .use_block
                .is_some()
        {
            let used = self.evaluate(stage, &serde_json::json!({ "deploy": deploy_template }))?;
            let h = self.component(ComponentKind::ReleaseManager, &used).await?;
            return Ok((Some(used), Some(h)));
        }
        // The platform's default release manager, if it names one.
        let platform = self
            .host
            .component(ComponentKind::Platform, platform_name)
            .await
            .ok();
        let default = platform
            .and_then(|p| p.info().default_release_manager.clone())
            .filter(|s| !s.is_empty());
        let Some(name) = default else {
            return Ok((None, None));
        };
        let h = self
            .host
            .component(ComponentKind::ReleaseManager, &name)
            .await
            .map_err(|e| StepError(e.to_string()))?;
        Ok((None, Some(h)))
    }

    /// The release stage.
    pub(crate) async fn release(&self, deployment: &Operation) -> StepResult<Produced> {
        let deploy_template: serde_json::Value =
            serde_json::from_str(&deployment.template_data_json).unwrap_or_default();
        let platform_name = deployment
            .component
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let (used, handle) = self
            .release_manager(&platform_name, &deploy_template)
            .await?;
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
        if deployment.provenance.is_some() {
            op.provenance.clone_from(&deployment.provenance);
        }
        let record = self.upsert(op).await?;
        if let Some(u) = &used {
            self.run_hooks(u, HookWhen::Before).await?;
        }
        // No `release` stanza: the URL service's router is the release, gated on health.
        let gate = if used.is_none() {
            self.health_gate(deployment).await
        } else {
            Ok(())
        };
        let outcome = match &handle {
            _ if gate.is_err() => Err(gate.err().map(|e| e.0).unwrap_or_default()),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(seq: u64, deployment: &str, live: bool) -> Operation {
        Operation {
            sequence: seq,
            deployment_id: deployment.into(),
            live,
            ..Operation::default()
        }
    }

    #[test]
    fn rollback_goes_to_the_newest_release_of_another_deployment() {
        let releases = vec![
            release(1, "a", false),
            release(2, "b", false),
            // b released again: rolling back from c skips nothing, goes to b.
            release(3, "b", false),
            release(4, "c", true),
        ];
        assert_eq!(rollback_release(&releases).unwrap().sequence, 3);
        // A re-release of the live deployment is not a target.
        let releases = vec![
            release(1, "a", false),
            release(2, "b", false),
            release(3, "b", true),
        ];
        assert_eq!(rollback_release(&releases).unwrap().deployment_id, "a");
    }

    #[test]
    fn rollback_without_a_target_says_why() {
        let err = rollback_release(&[]).unwrap_err().0;
        assert_eq!(
            err,
            "nothing is live (never released, or destroyed since), so there is nothing to roll back from; `wayline release -deployment vN` releases a chosen deployment"
        );
        let err = rollback_release(&[release(1, "a", true)]).unwrap_err().0;
        assert_eq!(
            err,
            "there is no release before the live one to roll back to"
        );
    }
}
