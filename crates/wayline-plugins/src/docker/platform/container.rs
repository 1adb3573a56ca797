//! The deployment's container: pull its image, create, start, wait until it is ready, remove.

use std::net::SocketAddr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, LogsOptions, RemoveContainerOptions,
};
use futures::StreamExt;

use super::{Created, Target, container_plan};
use crate::docker::config::PlatformConfig;
use crate::docker::engine::{self, DockerError, EntrypointMount, Out, api, is_not_found};

/// How many log lines a failed start shows.
const FAILED_LOG_LINES: usize = 20;
/// How long deploy waits for the app to accept connections on `service_port` before it reports
/// the deployment as started but not yet listening.
const LISTEN_WAIT: Duration = Duration::from_secs(30);
/// Pause between readiness checks.
const POLL: Duration = Duration::from_millis(10);

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
    mount: Option<&EntrypointMount>,
) -> Result<Created, DockerError> {
    let (name, body) = container_plan(cfg, image, target, mount);
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
            let _ = remove(docker, &response.id, &name).await;
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
        .inspect_container(id, None::<InspectContainerOptions>)
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
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(api(format!("inspecting container `{name}`")))?;
        let state = inspect.state.clone().unwrap_or_default();
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
                let (host_port, ips) = addresses(inspect, service_port);
                let listening = listening(&ips, service_port).await;
                if listening || started.elapsed() >= LISTEN_WAIT {
                    return Ok(Running {
                        id: id.to_owned(),
                        name: name.to_owned(),
                        host_port,
                        listening,
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

/// A running container's host port of `service_port` (0 when unpublished) and its IP addresses.
fn addresses(inspect: ContainerInspectResponse, service_port: u16) -> (u16, Vec<String>) {
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
    (host_port, ips)
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

/// Removes a container (and its anonymous volumes). Already gone is fine.
pub async fn remove(docker: &Docker, id: &str, name: &str) -> Result<bool, DockerError> {
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
