//! The release without the URL service: one stable service per app (`<app>`, or `service`) that
//! publishes the release stanza's `ports` and runs the released deployment's task template. A
//! release moves it by a rolling update of that template (image by digest, env with the
//! deployment's id and token), gated by Swarm: a task counts once it runs and, with a health
//! check, is healthy; a failed update rolls back, and the release fails with Swarm's words.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecUpdateConfig, ServiceUpdateStatusStateEnum as UpdateState,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListServicesOptions, ListTasksOptions, UpdateServiceOptions,
};

use super::cluster::{self, Cluster, TaskFact};
use super::config::{SwarmReleaseConfig, UpdateConfig};
use super::spec::{LABEL_RELEASE, endpoint, update_config};
use crate::docker::engine::{DockerError, LABEL_APP, LABEL_DEPLOYMENT, api};
use crate::docker::owner::{LABEL_SERVER, Owner};

/// The stable service's name: `service`, else the app's.
pub fn stable_name(config: &SwarmReleaseConfig, app: &str) -> String {
    config.service.clone().unwrap_or_else(|| app.to_owned())
}

/// The rolling update unless the stanza says otherwise: one task at a time, the old task
/// stopped first (a port published in `host` mode is free for the new one), each new task
/// watched 5 s, and a failure rolls the whole service back.
fn rolling(u: Option<&UpdateConfig>) -> ServiceSpecUpdateConfig {
    let mut u = u.cloned().unwrap_or_default();
    u.parallelism.get_or_insert(1);
    u.monitor.get_or_insert_with(|| "5s".to_owned());
    u.failure_action
        .get_or_insert_with(|| "rollback".to_owned());
    u.order.get_or_insert_with(|| "stop-first".to_owned());
    update_config(&u)
}

/// The plan: the stable service's spec from the released deployment's service spec `from`
/// (its task template and labels), with `replicas`, the stanza's ports and update policy, and
/// the release label. Pure.
pub fn stable_spec(
    config: &SwarmReleaseConfig,
    name: &str,
    app: &str,
    from: &ServiceSpec,
    replicas: u64,
) -> ServiceSpec {
    let mut labels = from.labels.clone().unwrap_or_default();
    labels.insert(LABEL_RELEASE.to_owned(), app.to_owned());
    let update = rolling(config.update_config.as_ref());
    ServiceSpec {
        name: Some(name.to_owned()),
        labels: Some(labels),
        task_template: from.task_template.clone(),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::try_from(replicas).unwrap_or(i64::MAX)),
            }),
            ..ServiceSpecMode::default()
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: update.parallelism,
            monitor: update.monitor,
            order: update
                .order
                .as_ref()
                .and_then(|o| o.to_string().parse().ok()),
            failure_action: "pause".parse().ok(),
            ..ServiceSpecRollbackConfig::default()
        }),
        update_config: Some(update),
        endpoint_spec: Some(endpoint(&config.ports, config.endpoint_mode.as_deref())),
        ..ServiceSpec::default()
    }
}

/// Puts the deployment's health check (`json`, as the platform planned it) back into the task
/// template read from the engine, which lost it (the engine spells it `Healthcheck`).
pub fn restore_health_check(spec: &mut ServiceSpec, json: &str) {
    let Ok(health) = serde_json::from_str::<bollard::models::HealthConfig>(json) else {
        return;
    };
    if let Some(c) = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
    {
        c.health_check.get_or_insert(health);
    }
}

/// The app's stable service as it is before a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// Swarm's service id.
    pub id: String,
    /// Its version (an update names it).
    pub version: u64,
    /// When its last update started: a status with this start is the old one's.
    pub update_started: Option<String>,
}

/// The app's stable service named `name`, when there is one of `owner`'s.
pub async fn find(
    docker: &Docker,
    owner: &Owner,
    name: &str,
) -> Result<Option<Existing>, DockerError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_APP}={}", owner.app),
            format!("{LABEL_RELEASE}={}", owner.app),
        ],
    )]);
    let list = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            status: None,
        }))
        .await
        .map_err(api("listing the app's stable service"))?;
    Ok(list.into_iter().find_map(|s| {
        let spec = s.spec.as_ref()?;
        let labels = spec.labels.clone().unwrap_or_default();
        (spec.name.as_deref() == Some(name) && owner.owns(&labels)).then(|| Existing {
            id: s.id.clone().unwrap_or_default(),
            version: s.version.as_ref().and_then(|v| v.index).unwrap_or_default(),
            update_started: started(s.update_status.as_ref()),
        })
    }))
}

fn started(u: Option<&bollard::models::ServiceUpdateStatus>) -> Option<String> {
    u.and_then(|u| u.started_at.as_ref())
        .map(ToString::to_string)
}

/// Creates the stable service, or moves it to `spec` by a rolling update; returns its id.
pub async fn apply(
    docker: &Docker,
    existing: Option<&Existing>,
    spec: ServiceSpec,
    credentials: Option<bollard::auth::DockerCredentials>,
) -> Result<String, DockerError> {
    let name = spec.name.clone().unwrap_or_default();
    let Some(Existing { id, version, .. }) = existing else {
        let created = docker
            .create_service(spec, credentials)
            .await
            .map_err(api(format!("creating the stable service `{name}`")))?;
        return Ok(created.id.unwrap_or_default());
    };
    let options = UpdateServiceOptions {
        version: i32::try_from(*version).unwrap_or(i32::MAX),
        // Without new credentials the engine keeps the service's own ("spec", its default).
        registry_auth_from: "spec".to_owned(),
        ..UpdateServiceOptions::default()
    };
    docker
        .update_service(id, spec, options, credentials)
        .await
        .map_err(api(format!("updating the stable service `{name}`")))?;
    Ok(id.clone())
}

/// Asks Swarm to roll service `id` back to its previous spec (after a failure it did not see).
async fn roll_back(docker: &Docker, id: &str, name: &str) -> Result<(), DockerError> {
    let service = docker
        .inspect_service(id, None::<InspectServiceOptions>)
        .await
        .map_err(api(format!("inspecting the stable service `{name}`")))?;
    let options = UpdateServiceOptions {
        version: i32::try_from(service.version.and_then(|v| v.index).unwrap_or_default())
            .unwrap_or(i32::MAX),
        rollback: Some("previous".to_owned()),
        ..UpdateServiceOptions::default()
    };
    docker
        .update_service(id, service.spec.unwrap_or_default(), options, None)
        .await
        .map_err(api(format!("rolling the stable service `{name}` back")))?;
    Ok(())
}

/// The current tasks of service `id` that run deployment `deployment_id`'s template.
async fn running_of(
    docker: &Docker,
    id: &str,
    name: &str,
    deployment_id: &str,
    hostnames: &HashMap<String, String>,
) -> Result<(Vec<TaskFact>, Vec<TaskFact>), DockerError> {
    let filters = HashMap::from([("service".to_owned(), vec![id.to_owned()])]);
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(api(format!("listing the tasks of service `{name}`")))?;
    let runs_it = |t: &bollard::models::Task| {
        t.spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_DEPLOYMENT))
            .is_some_and(|d| d == deployment_id)
    };
    let mut new = Vec::new();
    let mut all = Vec::new();
    for t in tasks {
        let mine = runs_it(&t);
        let fact = cluster::fact(name, t, hostnames);
        if mine && fact.desired == "running" && fact.state == "running" {
            new.push(fact.clone());
        }
        all.push(fact);
    }
    Ok((new, all))
}

/// What a release waits for: `replicas` tasks of the stable service `name` (`id`) running
/// deployment `deployment_id`, after an update that started later than `since`.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub deployment_id: &'a str,
    pub replicas: u64,
    pub since: Option<String>,
}

/// What Swarm's update of the target says now: `None` while it goes on.
fn verdict(
    t: &Target<'_>,
    update: &bollard::models::ServiceUpdateStatus,
    new: usize,
    all: &[TaskFact],
) -> Option<Result<(), String>> {
    // A status that started before this release is the previous release's.
    let ours = started(Some(update)) != t.since || t.since.is_none();
    let state = if ours {
        update.state.unwrap_or(UpdateState::EMPTY)
    } else {
        UpdateState::EMPTY
    };
    let failed = all
        .iter()
        .find(|x| matches!(x.state.as_str(), "failed" | "rejected"))
        .map(|x| format!("; task {}", x.describe()))
        .unwrap_or_default();
    let msg = update.message.clone().unwrap_or_default();
    match state {
        // Traffic is back on the previous deployment only once Swarm's rollback has finished.
        UpdateState::ROLLBACK_STARTED => None,
        UpdateState::ROLLBACK_COMPLETED | UpdateState::ROLLBACK_PAUSED => Some(Err(format!(
            "Swarm rolled it back ({msg}{failed}); traffic stays on the previous deployment"
        ))),
        UpdateState::PAUSED => Some(Err(format!("the update paused ({msg}{failed})"))),
        UpdateState::UPDATING => None,
        _ if new as u64 >= t.replicas => Some(Ok(())),
        _ => all
            .iter()
            .find(|x| x.state == "pending" && x.message.contains("no suitable node"))
            .map(|x| Err(format!("task {}", x.describe()))),
    }
}

/// Swarm has started rolling the service back and not finished.
fn rolling_back(update: &bollard::models::ServiceUpdateStatus) -> bool {
    update.state == Some(UpdateState::ROLLBACK_STARTED)
}

/// Waits (at most `limit`) for `target`. A rollback by Swarm fails the release with Swarm's
/// words; a paused update, a task no node can take, or the time running out roll the service
/// back first.
pub async fn converge(
    docker: &Docker,
    cluster: &Cluster,
    target: &Target<'_>,
    limit: Duration,
) -> Result<Vec<TaskFact>, DockerError> {
    let hostnames = cluster.hostnames();
    let deadline = Instant::now() + limit;
    let name = target.name;
    loop {
        let service = docker
            .inspect_service(target.id, None::<InspectServiceOptions>)
            .await
            .map_err(api(format!("inspecting the stable service `{name}`")))?;
        let update = service.update_status.unwrap_or_default();
        let (new, all) =
            running_of(docker, target.id, name, target.deployment_id, &hostnames).await?;
        let failure = match verdict(target, &update, new.len(), &all) {
            Some(Ok(())) => return Ok(new),
            Some(Err(e)) => Some(e),
            None if Instant::now() >= deadline && rolling_back(&update) => {
                return Err(DockerError::Other(format!(
                    "the stable service `{name}` was not moved: Swarm is still rolling it back after {}s ({})",
                    limit.as_secs(),
                    update.message.unwrap_or_default()
                )));
            }
            None if Instant::now() >= deadline => Some(format!(
                "{} of {} tasks run the new deployment after {}s",
                new.len(),
                target.replicas,
                limit.as_secs()
            )),
            None => None,
        };
        if let Some(e) = failure {
            let swarm_did = e.starts_with("Swarm rolled it back");
            if !swarm_did {
                roll_back(docker, target.id, name).await?;
            }
            return Err(DockerError::Other(format!(
                "the stable service `{name}` was not moved: {e}{}",
                if swarm_did { "" } else { "; rolled back" }
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Removes the app's stable services that run deployment `deployment_id` (it is being
/// destroyed, and its tasks carry its token); returns their names.
pub async fn remove_running(
    docker: &Docker,
    owner: &Owner,
    deployment_id: &str,
) -> Result<Vec<String>, DockerError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_RELEASE}={}", owner.app),
            format!("{LABEL_DEPLOYMENT}={deployment_id}"),
        ],
    )]);
    let list = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            status: None,
        }))
        .await
        .map_err(api("listing the app's stable service"))?;
    let mut removed = Vec::new();
    for s in list {
        let spec = s.spec.unwrap_or_default();
        let labels = spec.labels.unwrap_or_default();
        let name = spec.name.unwrap_or_default();
        let mut owner = owner.clone();
        if owner.server_id.is_empty() {
            owner.server_id = labels.get(LABEL_SERVER).cloned().unwrap_or_default();
        }
        if !owner.owns(&labels) {
            continue;
        }
        if cluster::remove_service(docker, &s.id.unwrap_or_default(), &name).await? {
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[path = "stable_tests.rs"]
mod tests;
