//! The `docker-swarm` release manager (the platform's default). Two ways, by the release
//! stanza:
//! - without `ports` (the default, no `release` stanza): releases the deployment's own service.
//!   With the URL service the runner first checks the deployment's health through it, and the
//!   app's host then routes to this deployment's tasks. A deployment whose service was scaled to
//!   0 (a newer one took its fixed published ports) gets the ports back and its replicas again,
//!   so `wayline release -deployment vK` (rollback) works; the release URL is the deployment's.
//! - with `ports`: keeps one stable service per app that publishes them and moves it to the
//!   released deployment by a health-gated rolling update ([`super::stable`]).

use async_trait::async_trait;
use bollard::Docker;
use wayline_plugin::{
    Capabilities, Component, ConfigErrors, Ctx, Outcome, PluginError, ReleaseManager, Style,
};

use super::cluster::{self, Cluster};
use super::config::{SwarmConfig, SwarmReleaseConfig};
use super::stable::{self, Target};
use super::values::{Release, Service};
use crate::docker::engine::{self, api};
use crate::docker::owner::{LABEL_SERVER, Owner};
use crate::docker::{errors, fail};

/// The `docker-swarm` release manager.
#[derive(Debug, Default, Clone, Copy)]
pub struct SwarmRelease;

impl Component for SwarmRelease {
    type Config = SwarmReleaseConfig;
    type Output = Release;

    fn validate(config: &SwarmReleaseConfig) -> Result<(), ConfigErrors> {
        errors(config.validate())
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.documented();
    }
}

/// Gives an older deployment scaled to 0 its published ports and replicas back.
async fn scale_back(
    ctx: &Ctx,
    config: &SwarmReleaseConfig,
    docker: &Docker,
    cluster: &Cluster,
    owner: &Owner,
    deployment: &Service,
    spec: &bollard::models::ServiceSpec,
) -> Result<(), PluginError> {
    let ports: Vec<u16> = spec
        .endpoint_spec
        .as_ref()
        .and_then(|e| e.ports.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.published_port.and_then(|p| u16::try_from(p).ok()))
        .collect();
    for old in cluster::free_ports(docker, owner, &ports, &deployment.service_id)
        .await
        .map_err(fail)?
    {
        ctx.ui.output(
            format!("Scaled {old} to 0 to free its published ports"),
            Style::Plain,
        );
    }
    cluster::scale(
        docker,
        &deployment.service_id,
        &deployment.name,
        deployment.replicas,
    )
    .await
    .map_err(fail)?;
    let running = cluster::wait_running(
        docker,
        &deployment.service_id,
        &deployment.name,
        deployment.replicas,
        &cluster.hostnames(),
        config.wait_timeout(),
    )
    .await
    .map_err(fail)?;
    ctx.ui.output(
        format!(
            "Scaled {} back to {} running tasks",
            deployment.name,
            running.len()
        ),
        Style::Plain,
    );
    Ok(())
}

/// Moves the app's stable service to `deployment` (creating it on the first release); returns
/// its name and URL.
async fn move_stable(
    ctx: &Ctx,
    config: &SwarmReleaseConfig,
    docker: &Docker,
    cluster: &Cluster,
    owner: &Owner,
    deployment: &Service,
    spec: &bollard::models::ServiceSpec,
) -> Result<(String, String), PluginError> {
    let name = stable::stable_name(config, &owner.app);
    let existing = stable::find(docker, owner, &name).await.map_err(fail)?;
    let mut plan = stable::stable_spec(config, &name, &owner.app, spec, deployment.replicas);
    stable::restore_health_check(&mut plan, &deployment.health_check_json);
    let credentials = engine::credentials(None, config.auth.as_ref(), None, None).map_err(fail)?;
    ctx.ui.output(
        if existing.is_some() {
            format!(
                "Rolling update of the stable service {name} to {} ({})",
                deployment.name, deployment.image
            )
        } else {
            format!(
                "Creating the stable service {name} running {} ({})",
                deployment.name, deployment.image
            )
        },
        Style::Header,
    );
    let id = stable::apply(docker, existing.as_ref(), plan, credentials)
        .await
        .map_err(fail)?;
    let target = Target {
        id: &id,
        name: &name,
        deployment_id: &deployment.id,
        replicas: deployment.replicas,
        since: existing.and_then(|e| e.update_started),
    };
    let running = stable::converge(docker, cluster, &target, config.wait_timeout())
        .await
        .map_err(fail)?;
    for t in &running {
        ctx.ui
            .output(format!("Task {}", t.describe()), Style::Plain);
    }
    let addrs = super::platform::endpoints(&config.ports, &running, cluster);
    let silent = cluster::wait_serving(&addrs, std::time::Duration::from_secs(30)).await;
    for a in &silent {
        ctx.ui.output(
            format!("Nothing accepts connections at {a} yet"),
            Style::Warning,
        );
    }
    ctx.ui.output(
        format!(
            "The stable service {name} runs {} on {} tasks{}",
            deployment.name,
            running.len(),
            if addrs.is_empty() {
                String::new()
            } else {
                format!(", serving at {}", addrs.join(", "))
            }
        ),
        Style::Plain,
    );
    let url = addrs
        .first()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    Ok((name, url))
}

#[async_trait]
impl ReleaseManager for SwarmRelease {
    type Input = Service;

    async fn release(
        &self,
        ctx: &Ctx,
        config: &SwarmReleaseConfig,
        deployment: Service,
    ) -> Result<Outcome<Release>, PluginError> {
        let platform = SwarmConfig {
            host: config.host.clone(),
            client_config: config.client_config.clone(),
            ..SwarmConfig::default()
        };
        let (docker, cluster) = super::platform::connect(&platform).await?;
        let service = docker
            .inspect_service(
                &deployment.service_id,
                None::<bollard::query_parameters::InspectServiceOptions>,
            )
            .await
            .map_err(|e| {
                PluginError::msg(format!(
                    "cannot release deployment {}: {}",
                    deployment.id,
                    fail(api(format!("service `{}`", deployment.name))(e))
                ))
            })?;
        let spec = service.spec.clone().unwrap_or_default();
        let labels = spec.labels.clone().unwrap_or_default();
        let mut owner = Owner::of_job(&ctx.core);
        if owner.server_id.is_empty() {
            owner.server_id = labels.get(LABEL_SERVER).cloned().unwrap_or_default();
        }
        if !owner.owns(&labels) {
            return Err(PluginError::msg(format!(
                "service `{}` is not this app's; not released",
                deployment.name
            )));
        }
        let (service_name, url) = if config.stable() {
            move_stable(ctx, config, &docker, &cluster, &owner, &deployment, &spec).await?
        } else {
            if cluster::replicas_of(&service) == 0 && deployment.replicas > 0 {
                scale_back(ctx, config, &docker, &cluster, &owner, &deployment, &spec).await?;
            }
            (deployment.name.clone(), deployment.url.clone())
        };
        let health = super::platform::report(&docker, &cluster, &deployment).await?;
        ctx.ui
            .output(format!("Tasks: {}", health.message), Style::Plain);
        ctx.ui.output(
            if url.is_empty() {
                format!("Released {}", deployment.name)
            } else {
                format!("Released {} at {url}", deployment.name)
            },
            Style::Success,
        );
        let release = Release {
            deployment_id: deployment.id,
            service: service_name,
            url: url.clone(),
        };
        let mut outcome = Outcome::new(release).template_data(serde_json::json!({ "url": url }));
        if !url.is_empty() {
            outcome = outcome.url(url);
        }
        Ok(outcome)
    }
}
