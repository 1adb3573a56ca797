//! The docker platform: one container per deployment, published on 127.0.0.1.
//!
//! [`container_plan`] is pure (the container spec as data, tested against fixtures); the IO is in
//! [`network`] (look up, create, remove networks) and [`container`] (pull, create, start,
//! readiness, remove); [`health`](mod@health) serves status. What it creates carries its
//! [`Owner`]'s labels, and it touches only what its owner owns (see `owner`).

pub mod container;
pub mod health;
pub mod network;

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, PortMap};
use serde::{Deserialize, Serialize};

use super::config::PlatformConfig;
use super::engine::{DockerError, EntrypointMount};
pub use super::owner::{Owner, free_host_port};
pub use container::{
    Running, create_container, ensure_image, fixed_host_port, last_logs, start, wait_ready,
};
pub use health::{ResourceHealth, health};
pub use network::{NetworkState, create_network, network_state};

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
/// With `mount`, the entrypoint is bind-mounted and put in front of the image's own.
pub fn container_plan(
    cfg: &PlatformConfig,
    image: &str,
    target: &Target,
    mount: Option<&EntrypointMount>,
) -> (String, ContainerCreateBody) {
    let name = container_name(&target.owner.app, &target.deployment_id);
    // Later entries win: static env, then the deployment's own, then PORT.
    let mut env: BTreeMap<String, String> = cfg.static_environment.clone();
    env.extend(target.deployment_env.clone());
    env.insert("PORT".to_owned(), cfg.service_port.to_string());

    // The owner's labels win over the config's: ownership decides what Wayline may touch.
    let mut labels: HashMap<String, String> = cfg.labels.clone().into_iter().collect();
    labels.extend(target.owner.labels(&target.deployment_id));

    let (exposed, bindings) = published_ports(cfg);
    let mut binds = cfg.binds.clone();
    if let Some(bind) = socket_dir_bind(&target.deployment_env)
        && !binds.contains(&bind)
    {
        binds.push(bind);
    }

    let limits = cfg.limits().unwrap_or_default();
    // The config's command replaces the image's CMD, as it would in an injected image.
    let command = Some(cfg.command.clone()).filter(|c| !c.is_empty());
    let (entrypoint, cmd) = match mount {
        Some(m) => (
            Some(m.entrypoint.clone()),
            command.or_else(|| m.cmd.clone()),
        ),
        None => (None, command),
    };
    let host_config = HostConfig {
        port_bindings: Some(bindings),
        binds: Some(binds).filter(|b| !b.is_empty()),
        mounts: mount.map(|m| vec![m.mount.clone()]),
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
        entrypoint,
        cmd,
        labels: Some(labels),
        exposed_ports: Some(exposed),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    };
    (name, body)
}

/// The exposed ports and their 127.0.0.1 bindings: `service_port` on `host_port` (or a free
/// port), each of `extra_ports` on a free port.
#[allow(clippy::zero_sized_map_values)] // The engine's API shape for ExposedPorts.
fn published_ports(cfg: &PlatformConfig) -> (HashMap<String, HashMap<(), ()>>, PortMap) {
    let mut exposed = HashMap::new();
    let mut bindings = HashMap::new();
    let fixed = cfg.host_port.map(|p| p.to_string()).unwrap_or_default();
    let ports = std::iter::once((cfg.service_port, fixed))
        .chain(cfg.extra_ports.iter().map(|p| (*p, String::new())));
    for (port, host_port) in ports {
        let key = format!("{port}/tcp");
        exposed.insert(key.clone(), HashMap::new());
        bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".to_owned()),
                host_port: Some(host_port),
            }]),
        );
    }
    (exposed, bindings)
}

/// The bind mount of the server's unix socket directory at the same path, so the entrypoint can
/// dial it without a route to the host's network. The directory, not the socket file: a
/// restarted server binds a new socket there, which a file mount would never show.
fn socket_dir_bind(deployment_env: &BTreeMap<String, String>) -> Option<String> {
    deployment_env
        .get("WAYLINE_SERVER_ADDR")
        .and_then(|a| a.strip_prefix("unix://"))
        .and_then(|path| std::path::Path::new(path).parent())
        .and_then(std::path::Path::to_str)
        .filter(|d| !d.is_empty() && *d != "/")
        .map(|dir| format!("{dir}:{dir}"))
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

/// Removes one created resource. Already gone is fine; a network other containers still use is
/// left for the deployment that uses it last.
pub async fn remove(docker: &Docker, created: &Created) -> Result<bool, DockerError> {
    match created {
        Created::Container { id, name } => container::remove(docker, id, name).await,
        Created::Network { name } => network::remove(docker, name).await,
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
        let (name, body) = container_plan(&cfg, "wayline.local/web:v1", &target(), None);
        assert_eq!(name, "web-01JDEPLOY");
        let json = serde_json::to_value(&body).unwrap();
        let expected: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/docker/container_plan.json"
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
            None,
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
