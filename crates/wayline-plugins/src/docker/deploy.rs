//! The `docker` platform component, over [`super::platform`]; its release manager is in
//! [`super::release`].

use async_trait::async_trait;
use bollard::Docker;
use wayline_plugin::{
    Capabilities, Component, ConfigErrors, Ctx, Destroyer, Docs, Documented, FieldDoc, Outcome,
    Platform, PluginError, ResourceKind, ResourceManager, Status, StatusReport, Style,
};
use wayline_proto::v1::{DeclaredResource, Health};

use super::config::PlatformConfig;
use super::engine::{self, EntrypointMount};
use super::owner;
use super::platform::{self, Created, NetworkState, Owner, ResourceHealth, Target};
use super::values::{Deployment, Image};
use super::{auth_fields, client_fields, entrypoint, errors, fail, out_fn};

/// The `docker` platform.
#[derive(Debug, Default, Clone, Copy)]
pub struct DockerPlatform;

/// Resource type names stored with a deployment.
const CONTAINER: &str = "container";
const NETWORK: &str = "network";

/// Removes and inspects a deployment's container or network from its recorded state.
struct Kind {
    name: &'static str,
    docker: Docker,
}

fn parse_state(state: &serde_json::Value) -> Result<Created, PluginError> {
    serde_json::from_value(state.clone())
        .map_err(|e| PluginError::msg(format!("unreadable docker resource state: {e}")))
}

#[async_trait]
impl ResourceKind for Kind {
    fn type_name(&self) -> &str {
        self.name
    }

    async fn destroy(
        &self,
        ctx: &Ctx,
        _name: &str,
        state: &serde_json::Value,
    ) -> Result<(), PluginError> {
        let created = parse_state(state)?;
        owner::check_removable(&self.docker, &created, &ctx.core)
            .await
            .map_err(fail)?;
        if platform::remove(&self.docker, &created)
            .await
            .map_err(fail)?
        {
            ctx.ui.output(
                format!("Removed {} {}", created.kind(), created.name()),
                Style::Plain,
            );
        }
        Ok(())
    }

    async fn status(
        &self,
        _ctx: &Ctx,
        _name: &str,
        state: &serde_json::Value,
    ) -> Result<(Health, String), PluginError> {
        let created = parse_state(state)?;
        let (h, message) = platform::health(&self.docker, &created)
            .await
            .map_err(fail)?;
        let health = match h {
            ResourceHealth::Alive => Health::Alive,
            ResourceHealth::Ready => Health::Ready,
            ResourceHealth::Down => Health::Down,
            ResourceHealth::Missing => Health::Missing,
        };
        Ok((health, message))
    }
}

fn manager(docker: &Docker) -> ResourceManager {
    ResourceManager::new("docker")
        .kind(Kind {
            name: CONTAINER,
            docker: docker.clone(),
        })
        .kind(Kind {
            name: NETWORK,
            docker: docker.clone(),
        })
}

fn state(created: &Created) -> serde_json::Value {
    serde_json::to_value(created).expect("serializable")
}

/// The resources of a deployment: the stored ones, or (for a record without them) those its
/// value names.
fn stored_or_derived(
    value: &Deployment,
    resources: Vec<DeclaredResource>,
) -> Vec<DeclaredResource> {
    if !resources.is_empty() {
        return resources;
    }
    let mut derived: Vec<Created> = value
        .created_networks
        .iter()
        .map(|n| Created::Network { name: n.clone() })
        .collect();
    if !value.container_id.is_empty() {
        derived.push(Created::Container {
            id: value.container_id.clone(),
            name: value.name.clone(),
        });
    }
    derived
        .into_iter()
        .map(|c| DeclaredResource {
            name: c.name().to_owned(),
            r#type: c.kind().to_owned(),
            platform: "docker".to_owned(),
            state_json: state(&c).to_string(),
            ..DeclaredResource::default()
        })
        .collect()
}

impl Component for DockerPlatform {
    type Config = PlatformConfig;
    type Output = Deployment;

    fn validate(config: &PlatformConfig) -> Result<(), ConfigErrors> {
        errors(config.validate())
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer()
            .status()
            .execer()
            .log_platform()
            .documented();
    }
}

#[async_trait]
impl Platform for DockerPlatform {
    type Input = Image;

    async fn deploy(
        &self,
        ctx: &Ctx,
        config: &PlatformConfig,
        artifact: Image,
    ) -> Result<Outcome<Deployment>, PluginError> {
        let docker = engine::connect(config.client_config.as_ref())
            .await
            .map_err(fail)?;
        let deployment_id = if ctx.core.job.deployment_id.is_empty() {
            // Hosts always pass the id; a bare call still gets a distinct container name.
            format!("v{}", ctx.core.job.sequence.max(1))
        } else {
            ctx.core.job.deployment_id.clone()
        };
        let target = Target {
            owner: Owner::of_job(&ctx.core),
            deployment_id: deployment_id.clone(),
            deployment_env: ctx.core.deployment_env.clone(),
        };
        let image = artifact.reference();
        ctx.ui.output(format!("Deploying {image}"), Style::Header);
        let run_image = image_to_run(ctx, &docker, config, &artifact).await?;
        let (run_image, mount) = entrypoint::for_container(
            ctx,
            &docker,
            config.client_config.as_ref(),
            &artifact,
            run_image,
        )
        .await?;

        let mut rm = manager(&docker);
        let networks = attach_networks(ctx, &docker, &mut rm, config, &target).await?;
        let run = Run {
            image: &run_image,
            mount: mount.as_ref(),
        };
        let running = run_container(ctx, &docker, &mut rm, config, &run, &target).await?;
        let url = format!("http://127.0.0.1:{}", running.host_port);
        if running.listening {
            ctx.ui.output(
                format!("Container {} is up at {url}", running.name),
                Style::Success,
            );
        } else {
            ctx.ui.output(
                format!(
                    "Container {} is running but nothing accepts connections on port {} yet",
                    running.name, config.service_port
                ),
                Style::Warning,
            );
        }
        let value = Deployment {
            id: deployment_id,
            name: running.name.clone(),
            container_id: running.id.clone(),
            image,
            service_port: u32::from(config.service_port),
            host_port: u32::from(running.host_port),
            url: url.clone(),
            created_networks: networks,
        };
        let data = serde_json::json!({ "container_id": running.id, "url": url, "port": running.host_port });
        Ok(Outcome::new(value)
            .template_data(data)
            .resources(rm.into_declared())
            .url(url))
    }

    fn default_release_manager(&self) -> Option<&'static str> {
        Some("docker")
    }
}

/// The image the container runs: the artifact's image by id when the engine has it (so a tag
/// that moved on since, `latest`, can't swap the image under a redeploy or rollback), else its
/// reference, pulled when missing or when `force_pull` says so.
async fn image_to_run(
    ctx: &Ctx,
    docker: &Docker,
    config: &PlatformConfig,
    artifact: &Image,
) -> Result<String, PluginError> {
    let by_id = !config.force_pull
        && !artifact.id.is_empty()
        && engine::local_image(docker, &artifact.id)
            .await
            .map_err(fail)?
            .is_some();
    if by_id {
        return Ok(artifact.id.clone());
    }
    let image = artifact.reference();
    let credentials = engine::credentials(None, config.auth.as_ref(), None, None).map_err(fail)?;
    platform::ensure_image(
        docker,
        &image,
        config.force_pull,
        credentials,
        &out_fn(&ctx.ui),
    )
    .await
    .map_err(fail)?;
    Ok(image)
}

/// Creates the missing networks and adopts the app's own, each declared on the server before it
/// is created; someone else's are used, never recorded. Returns the recorded ones.
async fn attach_networks(
    ctx: &Ctx,
    docker: &Docker,
    rm: &mut ResourceManager,
    config: &PlatformConfig,
    target: &Target,
) -> Result<Vec<String>, PluginError> {
    let mut networks = Vec::new();
    for name in &config.networks {
        let planned = state(&Created::Network { name: name.clone() });
        match platform::network_state(docker, name, &target.owner).await {
            Err(e) => return Err(rm.rollback(ctx, fail(e)).await),
            Ok(NetworkState::Foreign) => continue,
            Ok(NetworkState::Ours) => {
                rm.declare_then_create(ctx, name, NETWORK, planned.clone(), async { Ok(planned) })
                    .await?;
            }
            Ok(NetworkState::Missing) => {
                ctx.ui
                    .output(format!("Creating network {name}"), Style::Plain);
                rm.declare_then_create(ctx, name, NETWORK, planned.clone(), async {
                    platform::create_network(docker, name, target)
                        .await
                        .map_err(fail)?;
                    Ok(planned)
                })
                .await?;
            }
        }
        networks.push(name.clone());
    }
    Ok(networks)
}

/// What the container runs: the image, and the entrypoint's mount when it is not in the image.
struct Run<'a> {
    image: &'a str,
    mount: Option<&'a EntrypointMount>,
}

/// Frees a fixed host port, then creates (declared first, by its name) and starts the container.
async fn run_container(
    ctx: &Ctx,
    docker: &Docker,
    rm: &mut ResourceManager,
    config: &PlatformConfig,
    run: &Run<'_>,
    target: &Target,
) -> Result<platform::Running, PluginError> {
    if let Some(port) = config.host_port {
        match platform::free_host_port(docker, &target.owner, port, None).await {
            Ok(stopped) => {
                for old in stopped {
                    ctx.ui.output(
                        format!("Stopped {old} to free host port {port}"),
                        Style::Plain,
                    );
                }
            }
            Err(e) => return Err(rm.rollback(ctx, fail(e)).await),
        }
    }
    let name = platform::container_name(&target.owner.app, &target.deployment_id);
    ctx.ui
        .output(format!("Creating container {name}"), Style::Plain);
    // Until the engine gives it an id, the container is known by its name.
    let planned = state(&Created::Container {
        id: name.clone(),
        name: name.clone(),
    });
    let container = rm
        .declare_then_create(ctx, &name, CONTAINER, planned, async {
            platform::create_container(docker, config, run.image, target, run.mount)
                .await
                .map(|c| state(&c))
                .map_err(fail)
        })
        .await?;
    let Created::Container { id, .. } = parse_state(&container)? else {
        unreachable!("container state")
    };
    match platform::start(docker, &id, &name, config.service_port).await {
        Ok(r) => Ok(r),
        Err(e) => Err(rm.rollback(ctx, fail(e)).await),
    }
}

#[async_trait]
impl Destroyer for DockerPlatform {
    async fn destroy(
        &self,
        ctx: &Ctx,
        config: &PlatformConfig,
        value: Deployment,
        resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        let docker = engine::connect(config.client_config.as_ref())
            .await
            .map_err(fail)?;
        let mut resources = stored_or_derived(&value, resources);
        if resources.is_empty() && !ctx.core.job.deployment_id.is_empty() {
            // A deployment whose job died before deploy returned has neither value nor stored
            // resources; its container has the name deploy gives it, from the deployment id.
            let name = platform::container_name(&ctx.core.job.app, &ctx.core.job.deployment_id);
            let created = Created::Container {
                id: name.clone(),
                name,
            };
            resources.push(DeclaredResource {
                name: created.name().to_owned(),
                r#type: CONTAINER.to_owned(),
                platform: "docker".to_owned(),
                state_json: state(&created).to_string(),
                ..DeclaredResource::default()
            });
        }
        // Newest first: the container before the networks it was attached to. A network that a
        // later deployment of the app still uses is left for that one, which adopted it.
        manager(&docker).destroy_all(ctx, resources).await
    }
}

#[async_trait]
impl Status for DockerPlatform {
    async fn status(
        &self,
        ctx: &Ctx,
        config: &PlatformConfig,
        value: Deployment,
        resources: Vec<DeclaredResource>,
    ) -> Result<StatusReport, PluginError> {
        let docker = engine::connect(config.client_config.as_ref())
            .await
            .map_err(fail)?;
        Ok(manager(&docker)
            .status_all(ctx, stored_or_derived(&value, resources))
            .await)
    }
}

impl Documented for DockerPlatform {
    fn docs() -> Docs {
        Docs {
            description: "Runs the image as one container per deployment, named `<app>-<deployment id>` and \
                labelled with the server id, project, app, workspace and deployment id (`wayline.server-id`, `wayline.project`, `wayline.app`, `wayline.workspace`, `wayline.deployment-id`); it stops, adopts or removes only containers and networks with its own labels (destroy and prune remove a container only when it also carries the deployment's id, and refuse others with a message naming their owner), with the deployment's env and `PORT`. \
                `service_port` is published on 127.0.0.1: on `host_port` when set (Waypoint always picked a \
                random port, its issue #687), else on a free port. With a fixed `host_port`, deploy stops the \
                app's older container holding that port (its deployment keeps it until destroyed or pruned). \
                Deploy waits until the container runs and \
                accepts connections on `service_port` (at most 30 s, then it warns and goes on); a container that exits at once fails the deploy with \
                its last log lines and is removed. When `WAYLINE_SERVER_ADDR` is a `unix://` socket, the socket's \
                directory is bind-mounted at the same path (so a restarted server's new socket shows up inside; keep \
                the socket in a directory of its own). Each network and the container are recorded on the server before they are created, so destroy removes them even after a deploy that died halfway; destroy removes the container and the networks it created."
                .into(),
            example: "deploy {\n  use \"docker\" {\n    service_port = 3000\n    host_port    = 8080\n  }\n}".into(),
            fields: vec![
                FieldDoc::new("service_port", "number", "Port the app listens on in the container; exported as `PORT`.")
                    .default_value("3000"),
                FieldDoc::new("host_port", "number", "Fixed host port on 127.0.0.1 for `service_port`.")
                    .default_value("a free port"),
                FieldDoc::new("static_environment", "map(string)", "Extra environment variables."),
                FieldDoc::new("command", "list(string)", "Command instead of the image's CMD (no shell)."),
                FieldDoc::new("binds", "list(string)", "Bind mounts, `host:container[:ro]`."),
                FieldDoc::new("extra_ports", "list(number)", "More container ports, each published on a free 127.0.0.1 port."),
                FieldDoc::new("force_pull", "bool", "Pull the image even when the engine has it.").default_value("false"),
                FieldDoc::new("labels", "map(string)", "Extra container labels."),
                FieldDoc::new("networks", "list(string)", "Networks to attach to; missing ones are created."),
                FieldDoc::new("resources", "map(string)", "`memory` (MB) and `cpu` (shares)."),
                FieldDoc::new("scratch_path", "string", "A tmpfs directory in the container for temporary data."),
                FieldDoc::block("auth", "Credentials for pulling the image.", auth_fields()),
                FieldDoc::block(
                    "client_config",
                    "How to reach the engine (default: `DOCKER_HOST`, else the local socket).",
                    client_fields(),
                ),
            ],
            template_fields: vec![
                ("container_id".into(), "the container's id".into()),
                ("url".into(), "`http://127.0.0.1:<port>`".into()),
                ("port".into(), "the host port of `service_port`".into()),
            ],
        }
    }
}
