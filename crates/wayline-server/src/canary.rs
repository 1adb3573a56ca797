//! Canaries: a share of an app host's traffic sent to one deployment, the rest to the live
//! release, through the URL service's router. Stored (so a restarted server routes the same)
//! and in force only while the release it was set against is live: a new release, including
//! `-weight 100` (which is a release), ends it without anyone deleting it first.

use std::time::Duration;

use tonic::Status;
use wayline_core::id::format_sequence;
use wayline_core::url::{AppKey, DEFAULT_WORKSPACE};
use wayline_proto::v1 as pb;

use crate::service::Shared;
use crate::service::status::store_status;
use crate::store::{OperationTarget, Store, StoreError};

/// How long a canary's deployment has to pass its health check.
const HEALTH_WITHIN: Duration = Duration::from_mins(1);

/// The app and workspace a canary belongs to.
pub(crate) fn key_of(c: &pb::Canary) -> AppKey {
    let app = c.application.clone().unwrap_or_default();
    AppKey {
        project: app.project,
        app: app.application,
        workspace: c.workspace.clone(),
    }
}

/// The live release of an app.
async fn live_release(
    store: &dyn Store,
    key: &AppKey,
) -> Result<Option<pb::Operation>, StoreError> {
    store
        .get_operation(
            pb::OperationKind::Release as i32,
            OperationTarget::Live {
                project: key.project.clone(),
                app: key.app.clone(),
                workspace: key.workspace.clone(),
            },
        )
        .await
}

/// The stored canaries still in force (their release is live); stale ones are removed.
pub(crate) async fn in_force(store: &dyn Store) -> Result<Vec<pb::Canary>, StoreError> {
    let mut out = Vec::new();
    for c in store.list_canaries().await? {
        let live = live_release(store, &key_of(&c)).await?;
        if live.is_some_and(|r| r.id == c.release_id) {
            out.push(c);
        } else {
            // Dropped, not awaited: a failed delete is retried on the next computation.
            drop(store.set_canary(pb::Canary { weight: 0, ..c }));
        }
    }
    Ok(out)
}

fn workspace_or_default(w: &str) -> String {
    if w.is_empty() {
        DEFAULT_WORKSPACE.to_owned()
    } else {
        w.to_owned()
    }
}

/// `SetCanary`.
pub(crate) async fn set(shared: &Shared, req: pb::SetCanaryRequest) -> Result<pb::Canary, Status> {
    if shared.urls.opts.is_none() {
        return Err(Status::failed_precondition(
            "a canary splits traffic in the URL service's router, and this server runs no URL \
             service (it was started with `-url-service=false`)",
        ));
    }
    if req.weight >= 100 {
        return Err(Status::invalid_argument(format!(
            "a canary's weight is 0 to 99 percent, not {}; 100 is a release: `wayline release \
             -deployment vN`",
            req.weight
        )));
    }
    let app = req
        .application
        .clone()
        .ok_or_else(|| Status::invalid_argument("application is required"))?;
    let key = AppKey {
        project: app.project.clone(),
        app: app.application.clone(),
        workspace: workspace_or_default(&req.workspace),
    };
    let mut canary = pb::Canary {
        application: Some(app),
        workspace: key.workspace.clone(),
        weight: req.weight,
        updated_ms: wayline_core::time::to_millis(&wayline_core::time::now()),
        ..Default::default()
    };
    if req.weight == 0 {
        shared
            .store
            .set_canary(canary.clone())
            .await
            .map_err(store_status)?;
        shared.urls.touch();
        return Ok(canary);
    }
    let d = deployment_of(shared, &key, &req.deployment_id).await?;
    let name = format!("{} {}", key.app, format_sequence(d.sequence));
    if d.physical_state == pb::PhysicalState::Destroyed as i32 {
        return Err(Status::failed_precondition(format!(
            "{name} is destroyed; `wayline release -deployment {}` deploys it again and releases it",
            format_sequence(d.sequence)
        )));
    }
    let release = live_release(shared.store.as_ref(), &key)
        .await
        .map_err(store_status)?
        .filter(|r| !r.deployment_id.is_empty())
        .ok_or_else(|| {
            Status::failed_precondition(format!(
                "{} has no live release to share traffic with; `wayline release -deployment {}` \
                 releases {name} whole",
                key.app,
                format_sequence(d.sequence)
            ))
        })?;
    if release.deployment_id == d.id {
        return Err(Status::failed_precondition(format!(
            "{name} is the live release already"
        )));
    }
    let live = deployment_of(shared, &key, &release.deployment_id).await?;
    if let Some(h) = shared.urls.health.get().cloned()
        && let Err(e) = h.check(&d.id, &req.health_path, HEALTH_WITHIN).await
    {
        return Err(Status::failed_precondition(format!(
            "{name} takes no traffic, all of it stays with {}: {e}",
            format_sequence(live.sequence)
        )));
    }
    canary.deployment_id = d.id;
    canary.sequence = d.sequence;
    canary.release_id = release.id;
    canary.release_deployment_id = live.id;
    canary.release_sequence = live.sequence;
    shared
        .store
        .set_canary(canary.clone())
        .await
        .map_err(store_status)?;
    shared.urls.touch();
    shared.urls.decorate_canary(&mut canary);
    Ok(canary)
}

/// The deployment `id` of the app, or why not.
async fn deployment_of(shared: &Shared, key: &AppKey, id: &str) -> Result<pb::Operation, Status> {
    let d = shared
        .store
        .get_operation(
            pb::OperationKind::Deployment as i32,
            OperationTarget::Id(id.to_owned()),
        )
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found(format!("deployment {id} does not exist")))?;
    let of = d.application.clone().unwrap_or_default();
    if of.project != key.project
        || of.application != key.app
        || workspace_or_default(&d.workspace) != key.workspace
    {
        return Err(Status::invalid_argument(format!(
            "deployment {id} is not one of app {} in workspace {}",
            key.app, key.workspace
        )));
    }
    Ok(d)
}

/// `ListCanaries`.
pub(crate) async fn list(
    shared: &Shared,
    req: pb::ListCanariesRequest,
) -> Result<pb::ListCanariesResponse, Status> {
    let mut canaries = in_force(shared.store.as_ref())
        .await
        .map_err(store_status)?;
    if let Some(app) = &req.application {
        let workspace = workspace_or_default(&req.workspace);
        canaries.retain(|c| c.application.as_ref() == Some(app) && c.workspace == workspace);
    }
    for c in &mut canaries {
        shared.urls.decorate_canary(c);
    }
    Ok(pb::ListCanariesResponse { canaries })
}
