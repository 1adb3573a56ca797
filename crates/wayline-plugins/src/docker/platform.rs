//! The docker platform: one container per deployment, published on 127.0.0.1.
//!
//! [`container_plan`] is pure (the container spec as data, tested against fixtures); [`run`] does
//! the IO: networks, pull, create, start, readiness; [`remove`] and [`health`] serve destroy and
//! status. What it creates carries its [`Owner`]'s labels, and it touches only what its owner
//! owns (see `owner`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, HealthStatusEnum, HostConfig,
    NetworkConnectRequest, NetworkCreateRequest, PortBinding,
};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, RemoveContainerOptions};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::config::PlatformConfig;
use super::engine::{self, DockerError, Out, api, is_not_found};
pub use super::owner::{Owner, free_host_port};

/// How many log lines a failed start shows.
const FAILED_LOG_LINES: usize = 20;
/// How long deploy waits for the app to accept connections on `service_port` before it reports
/// the deployment as started but not yet listening.
const LISTEN_WAIT: Duration = Duration::from_secs(30);
/// Pause between readiness checks.
const POLL: Duration = Duration::from_millis(10);

/// Who the container is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Server, project, app and workspace: labelled on everything created.
    pub owner: Owner,
    /// Deployment id.
    pub deployment_id: String,
    /// The deployment's entrypoint env (`WAYLINE_*`).
    pub deployment_env: BTreeMap<String, String>,
}

/// A container name the engine accepts: `<app>-<deployment id>`, other characters as `-`.
pub fn container_name(app: &str, deployment_id: &str) -> String {
    let raw = format!("{app}-{deployment_id}");
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name.insert(0, 'w');
    }
    name
}

/// The container to create: its name and engine spec. Pure, so the spec is testable as data.
#[allow(clippy::zero_sized_map_values)] // The engine's API shape for ExposedPorts.
pub fn container_plan(
    cfg: &PlatformConfig,
    image: &str,
    target: &Target,
) -> (String, ContainerCreateBody) {
    let name = container_name(&target.owner.app, &target.deployment_id);
    // Later entries win: static env, then the deployment's own, then PORT.
    let mut env: BTreeMap<String, String> = cfg.static_environment.clone();
    env.extend(target.deployment_env.clone());
    env.insert("PORT".to_owned(), cfg.service_port.to_string());

    // The owner's labels win over the config's: ownership decides what Wayline may touch.
    let mut labels: HashMap<String, String> = cfg.labels.clone().into_iter().collect();
    labels.extend(target.owner.labels(&target.deployment_id));

    let mut exposed = HashMap::new();
    let mut bindings = HashMap::new();
    let service = format!("{}/tcp", cfg.service_port);
    exposed.insert(service.clone(), HashMap::new());
    bindings.insert(
        service,
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".to_owned()),
            host_port: Some(cfg.host_port.map(|p| p.to_string()).unwrap_or_default()),
        }]),
    );
    for port in &cfg.extra_ports {
        let key = format!("{port}/tcp");
        exposed.insert(key.clone(), HashMap::new());
        bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".to_owned()),
                host_port: Some(String::new()),
            }]),
        );
    }

    let mut binds = cfg.binds.clone();
    // The directory of the server's unix socket is mounted at the same path, so the entrypoint
    // can dial it without a route to the host's network. The directory, not the socket file: a
    // restarted server binds a new socket there, which a file mount would never show.
    if let Some(dir) = target
        .deployment_env
        .get("WAYLINE_SERVER_ADDR")
        .and_then(|a| a.strip_prefix("unix://"))
        .and_then(|path| std::path::Path::new(path).parent())
        .and_then(std::path::Path::to_str)
        .filter(|d| !d.is_empty() && *d != "/")
    {
        let bind = format!("{dir}:{dir}");
        if !binds.contains(&bind) {
            binds.push(bind);
        }
    }

    let limits = cfg.limits().unwrap_or_default();
    let host_config = HostConfig {
        port_bindings: Some(bindings),
        binds: Some(binds).filter(|b| !b.is_empty()),
        memory: limits.memory_bytes,
        cpu_shares: limits.cpu_shares,
        network_mode: cfg.networks.first().cloned(),
        tmpfs: cfg
            .scratch_path
            .clone()
            .map(|p| HashMap::from([(p, String::new())])),
        ..HostConfig::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        cmd: Some(cfg.command.clone()).filter(|c| !c.is_empty()),
        labels: Some(labels),
        exposed_ports: Some(exposed),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    };
    (name, body)
}

/// What deploy created, for destroy, in creation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Created {
    /// A network, created by this deployment or by an earlier one of the same app.
    Network {
        /// Network name.
        name: String,
    },
    /// The container.
    Container {
        /// Container id.
        id: String,
        /// Container name.
        name: String,
    },
}

impl Created {
    /// The resource type name stored with the deployment.
    pub fn kind(&self) -> &'static str {
        match self {
            Created::Network { .. } => "network",
            Created::Container { .. } => "container",
        }
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        match self {
            Created::Network { name } | Created::Container { name, .. } => name,
        }
    }
}

/// A started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Host port of `service_port` on 127.0.0.1.
    pub host_port: u16,
    /// Whether the app accepted a connection on `service_port`.
    pub listening: bool,
}

/// Whether a network exists, and whether an earlier deployment of the app created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkState {
    /// It does not exist: deploy creates it.
    Missing,
    /// It exists and carries this app's owner labels (server, project, app, workspace): deploy
    /// adopts it, so the app's last deployment to be destroyed removes it.
    Ours,
    /// Someone else's: used, never removed.
    Foreign,
}

/// Looks a network up.
pub async fn network_state(
    docker: &Docker,
    name: &str,
    owner: &Owner,
) -> Result<NetworkState, DockerError> {
    match docker
        .inspect_network(
            name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(net) => {
            let ours = net.labels.as_ref().is_some_and(|l| owner.owns(l));
            Ok(if ours {
                NetworkState::Ours
            } else {
                NetworkState::Foreign
            })
        }
        Err(e) if is_not_found(&e) => Ok(NetworkState::Missing),
        Err(e) => Err(api(format!("inspecting network `{name}`"))(e)),
    }
}

/// Creates a bridge network labelled with the app and deployment.
pub async fn create_network(
    docker: &Docker,
    name: &str,
    target: &Target,
) -> Result<(), DockerError> {
    let labels = target.owner.labels(&target.deployment_id);
    docker
        .create_network(NetworkCreateRequest {
            name: name.to_owned(),
            labels: Some(labels),
            ..NetworkCreateRequest::default()
        })
        .await
        .map_err(api(format!("creating network `{name}`")))?;
    Ok(())
}

/// Pulls the image when `force_pull` is set or the engine lacks it.
pub async fn ensure_image(
    docker: &Docker,
    image: &str,
    force_pull: bool,
    credentials: Option<bollard::auth::DockerCredentials>,
    out: Out<'_>,
) -> Result<(), DockerError> {
    if force_pull || engine::local_image(docker, image).await?.is_none() {
        out(&format!("Pulling image {image}"));
        engine::pull(docker, image, credentials, out).await?;
    }
    Ok(())
}

/// Creates the container (not started) and attaches it to the extra networks; returns its id.
pub async fn create_container(
    docker: &Docker,
    cfg: &PlatformConfig,
    image: &str,
    target: &Target,
) -> Result<Created, DockerError> {
    let (name, body) = container_plan(cfg, image, target);
    let response = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                platform: String::new(),
            }),
            body,
        )
        .await
        .map_err(api(format!("creating container `{name}`")))?;
    let created = Created::Container {
        id: response.id.clone(),
        name: name.clone(),
    };
    for network in cfg.networks.iter().skip(1) {
        if let Err(e) = docker
            .connect_network(
                network,
                NetworkConnectRequest {
                    container: Some(response.id.clone()),
                    endpoint_config: None,
                },
            )
            .await
        {
            let _ = remove(docker, &created).await;
            return Err(api(format!(
                "connecting container `{name}` to network `{network}`"
            ))(e));
        }
    }
    Ok(created)
}

/// The fixed host port a container was created with for `service_port`, if any.
pub async fn fixed_host_port(
    docker: &Docker,
    id: &str,
    service_port: u16,
) -> Result<Option<u16>, DockerError> {
    let inspect = docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(api(format!("inspecting container `{id}`")))?;
    Ok(inspect
        .host_config
        .and_then(|h| h.port_bindings)
        .and_then(|b| b.get(&format!("{service_port}/tcp")).cloned().flatten())
        .and_then(|b| b.into_iter().find_map(|b| b.host_port))
        .and_then(|p| p.parse::<u16>().ok()))
}

/// Starts a created container and waits until it is ready (see [`wait_ready`]).
pub async fn start(
    docker: &Docker,
    id: &str,
    name: &str,
    service_port: u16,
) -> Result<Running, DockerError> {
    docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .map_err(api(format!("starting container `{name}`")))?;
    wait_ready(docker, id, name, service_port).await
}

/// Waits until the container runs and its app accepts connections on `service_port` (or
/// [`LISTEN_WAIT`] passes). A container that stops meanwhile fails the deploy with its last log
/// lines.
pub async fn wait_ready(
    docker: &Docker,
    id: &str,
    name: &str,
    service_port: u16,
) -> Result<Running, DockerError> {
    let started = tokio::time::Instant::now();
    loop {
        let inspect = docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(api(format!("inspecting container `{name}`")))?;
        let state = inspect.state.unwrap_or_default();
        match state.status {
            Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
                let logs = last_logs(docker, id, FAILED_LOG_LINES).await;
                return Err(DockerError::ExitedAtOnce {
                    name: name.to_owned(),
                    code: state.exit_code.unwrap_or(-1),
                    logs: if logs.is_empty() {
                        "(no output)".to_owned()
                    } else {
                        logs
                    },
                });
            }
            Some(ContainerStateStatusEnum::RUNNING) => {
                let settings = inspect.network_settings.unwrap_or_default();
                let host_port = settings
                    .ports
                    .as_ref()
                    .and_then(|p| p.get(&format!("{service_port}/tcp")).cloned().flatten())
                    .and_then(|b| b.into_iter().find_map(|b| b.host_port))
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or(0);
                let ips: Vec<String> = settings
                    .networks
                    .unwrap_or_default()
                    .into_values()
                    .filter_map(|n| n.ip_address)
                    .chain(settings.ip_address)
                    .filter(|ip| !ip.is_empty())
                    .collect();
                if listening(&ips, service_port).await {
                    return Ok(Running {
                        id: id.to_owned(),
                        name: name.to_owned(),
                        host_port,
                        listening: true,
                    });
                }
                if started.elapsed() >= LISTEN_WAIT {
                    return Ok(Running {
                        id: id.to_owned(),
                        name: name.to_owned(),
                        host_port,
                        listening: false,
                    });
                }
            }
            other => {
                if started.elapsed() >= LISTEN_WAIT {
                    let state = other.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
                    return Err(DockerError::Other(format!(
                        "container `{name}` did not start within {} s (it is {state})",
                        LISTEN_WAIT.as_secs()
                    )));
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether something accepts TCP connections on `port` at any of the container's addresses.
async fn listening(ips: &[String], port: u16) -> bool {
    for ip in ips {
        let Ok(addr) = format!("{ip}:{port}").parse::<SocketAddr>() else {
            continue;
        };
        let attempt = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            return true;
        }
    }
    false
}

/// The container's last `n` log lines (stdout and stderr), best effort.
pub async fn last_logs(docker: &Docker, id: &str, n: usize) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: n.to_string(),
        ..LogsOptions::default()
    };
    let mut stream = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text.trim_end().to_owned()
}

/// Removes one created resource. Already gone is fine; a network other containers still use is
/// left for the deployment that uses it last.
pub async fn remove(docker: &Docker, created: &Created) -> Result<bool, DockerError> {
    match created {
        Created::Container { id, name } => {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                link: false,
            };
            match docker.remove_container(id, Some(options)).await {
                Ok(()) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(api(format!("removing container `{name}`"))(e)),
            }
        }
        Created::Network { name } => {
            match docker
                .inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
            {
                Ok(net) if net.containers.as_ref().is_some_and(|c| !c.is_empty()) => {
                    tracing::info!(network = %name, "network still in use; left for its last deployment");
                    Ok(false)
                }
                Ok(_) => match docker.remove_network(name).await {
                    Ok(()) => Ok(true),
                    Err(e) if is_not_found(&e) => Ok(false),
                    Err(e) => Err(api(format!("removing network `{name}`"))(e)),
                },
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(api(format!("inspecting network `{name}`"))(e)),
            }
        }
    }
}

/// Health of one resource, with a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceHealth {
    /// Running, no health check failing yet (still starting).
    Alive,
    /// Running and healthy (or without a health check).
    Ready,
    /// Exists but not running.
    Down,
    /// Gone.
    Missing,
}

/// Inspects one resource.
pub async fn health(
    docker: &Docker,
    created: &Created,
) -> Result<(ResourceHealth, String), DockerError> {
    match created {
        Created::Container { id, name } => {
            match docker
                .inspect_container(
                    id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
            {
                Ok(inspect) => {
                    let state = inspect.state.unwrap_or_default();
                    let check = state.health.and_then(|h| h.status);
                    Ok(match (state.status, check) {
                        (
                            Some(ContainerStateStatusEnum::RUNNING),
                            Some(HealthStatusEnum::STARTING),
                        ) => (
                            ResourceHealth::Alive,
                            format!("container {name} is running; health check starting"),
                        ),
                        (
                            Some(ContainerStateStatusEnum::RUNNING),
                            Some(HealthStatusEnum::UNHEALTHY),
                        ) => (
                            ResourceHealth::Down,
                            format!("container {name} is running but unhealthy"),
                        ),
                        (Some(ContainerStateStatusEnum::RUNNING), _) => (
                            ResourceHealth::Ready,
                            format!("container {name} is running"),
                        ),
                        (
                            Some(
                                ContainerStateStatusEnum::RESTARTING
                                | ContainerStateStatusEnum::CREATED,
                            ),
                            _,
                        ) => (
                            ResourceHealth::Alive,
                            format!("container {name} is starting"),
                        ),
                        (status, _) => (
                            ResourceHealth::Down,
                            format!(
                                "container {name} is {} (exit code {})",
                                status.map_or_else(|| "not running".to_owned(), |s| s.to_string()),
                                state.exit_code.unwrap_or(0)
                            ),
                        ),
                    })
                }
                Err(e) if is_not_found(&e) => Ok((
                    ResourceHealth::Missing,
                    format!("container {name} does not exist"),
                )),
                Err(e) => Err(api(format!("inspecting container `{name}`"))(e)),
            }
        }
        Created::Network { name } => {
            match docker
                .inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
            {
                Ok(_) => Ok((ResourceHealth::Ready, format!("network {name} exists"))),
                Err(e) if is_not_found(&e) => Ok((
                    ResourceHealth::Missing,
                    format!("network {name} does not exist"),
                )),
                Err(e) => Err(api(format!("inspecting network `{name}`"))(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            owner: Owner {
                server_id: "01JSERVER".into(),
                project: "shop".into(),
                app: "web".into(),
                workspace: "default".into(),
            },
            deployment_id: "01JDEPLOY".into(),
            deployment_env: BTreeMap::from([
                ("WAYLINE_DEPLOYMENT_ID".into(), "01JDEPLOY".into()),
                (
                    "WAYLINE_SERVER_ADDR".into(),
                    "unix:///run/wayline/server.sock".into(),
                ),
            ]),
        }
    }

    #[test]
    fn plan_matches_the_fixture() {
        let cfg = PlatformConfig {
            service_port: 8080,
            host_port: Some(18080),
            static_environment: BTreeMap::from([
                ("MODE".into(), "prod".into()),
                ("PORT".into(), "1".into()),
            ]),
            command: vec!["/bin/app".into(), "serve".into()],
            binds: vec!["/data:/data:ro".into()],
            extra_ports: vec![9090],
            labels: BTreeMap::from([("team".into(), "a".into())]),
            networks: vec!["front".into(), "back".into()],
            resources: BTreeMap::from([
                ("memory".into(), "64".into()),
                ("cpu".into(), "512".into()),
            ]),
            scratch_path: Some("/scratch".into()),
            ..PlatformConfig::default()
        };
        let (name, body) = container_plan(&cfg, "wayline.local/web:v1", &target());
        assert_eq!(name, "web-01JDEPLOY");
        let json = serde_json::to_value(&body).unwrap();
        let expected: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/docker/container_plan.json"
        ))
        .unwrap();
        assert_eq!(
            json,
            expected,
            "{}",
            serde_json::to_string_pretty(&json).unwrap()
        );
    }

    #[test]
    fn random_host_port_by_default() {
        let (_, body) = container_plan(
            &PlatformConfig::default(),
            "img",
            &Target {
                owner: Owner {
                    app: "a".into(),
                    ..Owner::default()
                },
                ..Target::default()
            },
        );
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        let b = bindings["3000/tcp"].clone().unwrap();
        assert_eq!(b[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(b[0].host_port.as_deref(), Some(""));
        assert_eq!(body.env.unwrap(), vec!["PORT=3000"]);
    }

    #[test]
    fn names_are_engine_safe() {
        assert_eq!(container_name("my app", "v1"), "my-app-v1");
        assert_eq!(container_name("_x", "1"), "w_x-1");
    }
}
