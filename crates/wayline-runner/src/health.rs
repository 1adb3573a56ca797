//! A deployment's health asked of its platform now, outside a job: what `wayline status` shows.
//! The last status report was made right after the deploy and says nothing of a container that
//! exited since; nor does the entrypoint's absence, when the deployment runs without one.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wayline_plugin::{
    BuiltinRegistry, Call, Capability, ComponentKind, CoreValues, Function, JobInfo, PluginHost, Ui,
};
use wayline_proto::v1::{self as pb, Health, Operation};

/// How long one platform check may take before `status` falls back to the last report.
const CHECK_WAIT: Duration = Duration::from_secs(5);

/// The word for a health, as `status`, lists and reports print it.
#[must_use]
pub fn health_word(h: pb::Health) -> &'static str {
    match h {
        pb::Health::Unknown => "unknown",
        pb::Health::Alive => "alive",
        pb::Health::Ready => "ready",
        pb::Health::Down => "down",
        pb::Health::Missing => "missing",
        pb::Health::Partial => "partial",
    }
}

/// What a platform says of a deployment now.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformHealth {
    /// Overall health.
    pub health: Health,
    /// The platform's sentence, e.g. `3 of 3 tasks running; node swl-n3 is down`.
    pub message: String,
    /// Its parts with their own health, e.g. one per Swarm task (state and node).
    pub resources: Vec<pb::DeclaredResource>,
}

/// The health of `deployment` (of `app` in `workspace`) from its built-in platform's Status
/// capability, with its sentence and parts; `None` when the platform is not built in, has no
/// status check, or does not answer within [`CHECK_WAIT`].
pub async fn platform_health(
    deployment: &Operation,
    app: &pb::r#ref::Application,
    workspace: &str,
) -> Option<PlatformHealth> {
    let platform = deployment.component.as_ref()?.name.clone();
    let mut builtins = BuiltinRegistry::new();
    wayline_plugins::register_builtins(&mut builtins);
    // Built-ins only: an external plugin is the project's, found from its directory by jobs.
    let host = PluginHost::new(builtins, Vec::new());
    let handle = host
        .component(ComponentKind::Platform, &platform)
        .await
        .ok()?;
    if !handle.capabilities().contains(&Capability::Status) {
        return None;
    }
    let core = CoreValues {
        job: JobInfo {
            project: app.project.clone(),
            app: app.application.clone(),
            workspace: workspace.to_owned(),
            sequence: deployment.sequence,
            deployment_id: deployment.id.clone(),
            ..JobInfo::default()
        },
        ..CoreValues::default()
    };
    let mut call = Call::new(
        Function::Status,
        core,
        Ui::discard(),
        CancellationToken::new(),
    )
    .resources(deployment.resources.clone());
    call = call.input(deployment.value.clone()?);
    let result = tokio::time::timeout(CHECK_WAIT, handle.call(call))
        .await
        .ok()?
        .ok()?;
    Some(PlatformHealth {
        health: result.health?,
        message: result.health_message,
        resources: result.resources,
    })
}
