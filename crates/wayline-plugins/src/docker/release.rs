//! The `docker` release manager, the docker platform's default.

use async_trait::async_trait;
use wayline_plugin::{
    Capabilities, Component, Ctx, Docs, Documented, Outcome, PluginError, ReleaseManager, Style,
};

use super::config::ReleaseConfig;
use super::engine;
use super::fail;
use super::owner;
use super::platform::{self, Created, ResourceHealth};
use super::values::{Deployment, Release};

/// The `docker` release manager (the docker platform's default): checks the container runs and
/// releases it at its URL.
#[derive(Debug, Default, Clone, Copy)]
pub struct DockerRelease;

impl Component for DockerRelease {
    type Config = ReleaseConfig;
    type Output = Release;

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.documented();
    }
}

#[async_trait]
impl ReleaseManager for DockerRelease {
    type Input = Deployment;

    async fn release(
        &self,
        ctx: &Ctx,
        _config: &ReleaseConfig,
        deployment: Deployment,
    ) -> Result<Outcome<Release>, PluginError> {
        let docker = engine::connect(None).await.map_err(fail)?;
        let container = Created::Container {
            id: deployment.container_id.clone(),
            name: deployment.name.clone(),
        };
        let (health, message) = platform::health(&docker, &container).await.map_err(fail)?;
        let mut url = deployment.url.clone();
        match health {
            ResourceHealth::Ready | ResourceHealth::Alive => {}
            ResourceHealth::Missing => {
                return Err(PluginError::msg(format!(
                    "cannot release deployment {}: {message}",
                    deployment.id
                )));
            }
            ResourceHealth::Down => {
                // Releasing an older deployment (a rollback) whose container was stopped when a
                // newer one took its fixed host port: take the port back and start it again.
                let service_port = u16::try_from(deployment.service_port).unwrap_or(0);
                let id = &deployment.container_id;
                if let Some(port) = platform::fixed_host_port(&docker, id, service_port)
                    .await
                    .map_err(fail)?
                {
                    let owner = owner::of_release(&docker, id, &ctx.core)
                        .await
                        .map_err(fail)?;
                    for old in platform::free_host_port(&docker, &owner, port, Some(id))
                        .await
                        .map_err(fail)?
                    {
                        ctx.ui.output(
                            format!("Stopped {old} to free host port {port}"),
                            Style::Plain,
                        );
                    }
                }
                let running = platform::start(&docker, id, &deployment.name, service_port)
                    .await
                    .map_err(fail)?;
                url = format!("http://127.0.0.1:{}", running.host_port);
                ctx.ui
                    .output(format!("Started {} again", deployment.name), Style::Plain);
            }
        }
        ctx.ui.output(
            format!("Released {} at {url}", deployment.name),
            Style::Success,
        );
        let release = Release {
            deployment_id: deployment.id,
            container_id: deployment.container_id,
            url: url.clone(),
        };
        Ok(Outcome::new(release)
            .template_data(serde_json::json!({ "url": url }))
            .url(url))
    }
}

impl Documented for DockerRelease {
    fn docs() -> Docs {
        Docs {
            description: "Releases a docker deployment: checks its container runs and records its URL \
                (`http://127.0.0.1:<port>`) as the release URL. Releasing an older deployment whose \
                container was stopped (a newer one took its fixed `host_port`) stops the holder and starts \
                it again, so rollback works with a fixed port. The default release manager of the docker \
                platform."
                .into(),
            example: "release {\n  use \"docker\" {}\n}".into(),
            fields: vec![],
            template_fields: vec![("url".into(), "the released URL".into())],
        }
    }
}
