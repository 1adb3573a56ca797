//! The `docker-swarm` release manager (the platform's default): releases a deployment's own
//! service. A deployment whose service was scaled to 0 (a newer one took its fixed published
//! ports) gets the ports back and its replicas again, so `wayline release -deployment vK`
//! (rollback) works; the release URL is the deployment's.

use async_trait::async_trait;
use wayline_plugin::{Capabilities, Component, Ctx, Outcome, PluginError, ReleaseManager, Style};

use super::cluster;
use super::config::{SwarmConfig, SwarmReleaseConfig};
use super::values::{Release, Service};
use crate::docker::engine::api;
use crate::docker::fail;
use crate::docker::owner::{LABEL_SERVER, Owner};

/// The `docker-swarm` release manager.
#[derive(Debug, Default, Clone, Copy)]
pub struct SwarmRelease;

impl Component for SwarmRelease {
    type Config = SwarmReleaseConfig;
    type Output = Release;

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.documented();
    }
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
        if cluster::replicas_of(&service) == 0 && deployment.replicas > 0 {
            let ports: Vec<u16> = spec
                .endpoint_spec
                .and_then(|e| e.ports)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.published_port.and_then(|p| u16::try_from(p).ok()))
                .collect();
            for old in cluster::free_ports(&docker, &owner, &ports, &deployment.service_id)
                .await
                .map_err(fail)?
            {
                ctx.ui.output(
                    format!("Scaled {old} to 0 to free its published ports"),
                    Style::Plain,
                );
            }
            cluster::scale(
                &docker,
                &deployment.service_id,
                &deployment.name,
                deployment.replicas,
            )
            .await
            .map_err(fail)?;
            let running = cluster::wait_running(
                &docker,
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
        }
        let health = super::platform::report(&docker, &cluster, &deployment).await?;
        ctx.ui
            .output(format!("Tasks: {}", health.message), Style::Plain);
        let url = deployment.url.clone();
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
            service: deployment.name,
            url: url.clone(),
        };
        let mut outcome = Outcome::new(release).template_data(serde_json::json!({ "url": url }));
        if !url.is_empty() {
            outcome = outcome.url(url);
        }
        Ok(outcome)
    }
}
