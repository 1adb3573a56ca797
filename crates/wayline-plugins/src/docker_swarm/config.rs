//! Config of the `docker-swarm` platform and release manager, decoded from the HCL `use` body.
//! Validation here is pure (no engine calls); every problem is reported at once.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::docker::config::{Auth, ClientConfig, DEFAULT_SERVICE_PORT, Invalid};

fn default_service_port() -> u16 {
    DEFAULT_SERVICE_PORT
}

fn default_replicas() -> u64 {
    1
}

/// A repeatable block: HCL gives one block as an object and several as a list. (Through
/// `serde_json::Value` rather than an untagged enum, so an unknown attribute keeps its message.)
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error as _;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(D::Error::custom))
            .collect(),
        one => serde_json::from_value(one)
            .map(|t| vec![t])
            .map_err(D::Error::custom),
    }
}

/// One published port, Swarm's `--publish`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Port inside the task.
    pub target: u16,
    /// Port on the nodes (unset: Swarm picks one, mesh mode only).
    #[serde(default)]
    pub published: Option<u16>,
    /// `tcp` (default), `udp` or `sctp`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// `ingress` (the routing mesh, default) or `host` (the port on each node running a task).
    #[serde(default)]
    pub mode: Option<String>,
}

/// Where tasks may run: Swarm's constraints and spread preferences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Constraints such as `node.role == worker` or `node.labels.zone == a`.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Spread preferences: the label to spread over, e.g. `node.labels.zone`.
    #[serde(default)]
    pub spread: Vec<String>,
    /// Most tasks of this service on one node (0: no limit).
    #[serde(default)]
    pub max_replicas_per_node: Option<u64>,
}

/// Swarm's `update_config` / `rollback_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// Tasks updated at once (0: all).
    #[serde(default)]
    pub parallelism: Option<u64>,
    /// Wait between batches, e.g. `5s`.
    #[serde(default)]
    pub delay: Option<String>,
    /// `pause`, `continue` or `rollback` when a task fails to update.
    #[serde(default)]
    pub failure_action: Option<String>,
    /// How long a new task is watched for failure, e.g. `5s`.
    #[serde(default)]
    pub monitor: Option<String>,
    /// `stop-first` or `start-first`.
    #[serde(default)]
    pub order: Option<String>,
}

/// Swarm's `restart_policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any` (default).
    #[serde(default)]
    pub condition: Option<String>,
    /// Wait between restarts, e.g. `5s`.
    #[serde(default)]
    pub delay: Option<String>,
    /// Restarts before giving up (0: no limit).
    #[serde(default)]
    pub max_attempts: Option<u64>,
    /// Window over which restarts are counted, e.g. `1m`.
    #[serde(default)]
    pub window: Option<String>,
}

/// A container health check, run by the engine on each task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The command, e.g. `["CMD", "wget", "-q", "-O-", "http://127.0.0.1:3000/"]` or
    /// `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    /// Between checks, e.g. `5s`.
    #[serde(default)]
    pub interval: Option<String>,
    /// Per check, e.g. `3s`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Failures before unhealthy.
    #[serde(default)]
    pub retries: Option<u64>,
    /// Grace after start, e.g. `10s`.
    #[serde(default)]
    pub start_period: Option<String>,
}

/// A mount into each task.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MountConfig {
    /// `volume` (default), `bind` or `tmpfs`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Volume name or host path (none for `tmpfs`).
    #[serde(default)]
    pub source: Option<String>,
    /// Path inside the task.
    pub target: String,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// Config of the `docker-swarm` platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmConfig {
    /// Tasks of the service.
    #[serde(default = "default_replicas")]
    pub replicas: u64,
    /// Port the app listens on in each task; exported as `PORT`.
    #[serde(default = "default_service_port")]
    pub service_port: u16,
    /// Published ports (`ports {}` blocks).
    #[serde(default, deserialize_with = "one_or_many")]
    pub ports: Vec<PortConfig>,
    /// `vip` (default) or `dnsrr`.
    #[serde(default)]
    pub endpoint_mode: Option<String>,
    /// Extra environment variables (Swarm templates such as `{{.Node.Hostname}}` work).
    #[serde(default, alias = "env")]
    pub static_environment: BTreeMap<String, String>,
    /// Extra service and task labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Command instead of the image's CMD (no shell).
    #[serde(default)]
    pub command: Vec<String>,
    /// Existing overlay networks to attach to.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Mounts (`mounts {}` blocks).
    #[serde(default, deserialize_with = "one_or_many")]
    pub mounts: Vec<MountConfig>,
    /// Existing Swarm secrets, by name, mounted at `/run/secrets/<name>`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Limits per task: `cpu` (cores, e.g. `0.5`) and `memory` (MB).
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    /// Where tasks may run.
    #[serde(default)]
    pub placement: Option<Placement>,
    /// How a rolling update proceeds.
    #[serde(default)]
    pub update_config: Option<UpdateConfig>,
    /// When tasks are restarted.
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    /// Signal that stops a task, e.g. `SIGTERM`.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Time a task gets to stop before SIGKILL, e.g. `10s`.
    #[serde(default)]
    pub stop_grace_period: Option<String>,
    /// Container health check.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// How long deploy waits for every task to run (default `120s`).
    #[serde(default)]
    pub wait_timeout: Option<String>,
    /// The manager: `unix:///path`, `tcp://host:port` (default `DOCKER_HOST`, else the local
    /// socket).
    #[serde(default)]
    pub host: Option<String>,
    /// Credentials the nodes use to pull the image.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// How to reach the manager (TLS client certificates).
    #[serde(default)]
    pub client_config: Option<ClientConfig>,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("defaults")
    }
}

/// Limits decoded from `resources`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmLimits {
    /// CPU in units of 1e-9 cores.
    pub nano_cpus: Option<i64>,
    /// Memory in bytes.
    pub memory_bytes: Option<i64>,
}

fn invalid(attribute: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        attribute: attribute.into(),
        message: message.into(),
    }
}

/// Parses a duration such as `300ms`, `10s`, `2m` or `1h30m`: humantime's grammar, the one every
/// duration in Wayline's config and flags uses.
pub fn parse_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

fn check_duration(out: &mut Vec<Invalid>, attribute: &str, value: Option<&String>) {
    if let Some(v) = value
        && parse_duration(v).is_none()
    {
        out.push(invalid(
            attribute,
            format!("`{v}` is not a duration such as `500ms`, `10s`, `2m` or `1h`"),
        ));
    }
}

fn check_one_of(out: &mut Vec<Invalid>, attribute: &str, value: Option<&String>, allowed: &[&str]) {
    if let Some(v) = value
        && !allowed.contains(&v.as_str())
    {
        out.push(invalid(
            attribute,
            format!("`{v}` is not one of {}", allowed.join(", ")),
        ));
    }
}

/// Published ports and the endpoint mode they need.
pub(super) fn check_ports(
    out: &mut Vec<Invalid>,
    ports: &[PortConfig],
    endpoint_mode: Option<&String>,
) {
    for (i, p) in ports.iter().enumerate() {
        if p.target == 0 || p.published == Some(0) {
            out.push(invalid(
                format!("ports[{i}]"),
                "ports must be between 1 and 65535",
            ));
        }
        check_one_of(
            out,
            &format!("ports[{i}].mode"),
            p.mode.as_ref(),
            &["ingress", "host"],
        );
        check_one_of(
            out,
            &format!("ports[{i}].protocol"),
            p.protocol.as_ref(),
            &["tcp", "udp", "sctp"],
        );
        if p.mode.as_deref() == Some("host") && p.published.is_none() {
            out.push(invalid(
                format!("ports[{i}].published"),
                "is required in `host` mode",
            ));
        }
    }
    check_one_of(out, "endpoint_mode", endpoint_mode, &["vip", "dnsrr"]);
    if endpoint_mode.map(String::as_str) == Some("dnsrr")
        && ports.iter().any(|p| p.mode.as_deref() != Some("host"))
    {
        out.push(invalid(
            "endpoint_mode",
            "`dnsrr` works only with ports published in `host` mode (the routing mesh needs a VIP)",
        ));
    }
}

/// An `update_config` block's durations and choices.
fn check_update(out: &mut Vec<Invalid>, u: &UpdateConfig) {
    check_duration(out, "update_config.delay", u.delay.as_ref());
    check_duration(out, "update_config.monitor", u.monitor.as_ref());
    check_one_of(
        out,
        "update_config.failure_action",
        u.failure_action.as_ref(),
        &["pause", "continue", "rollback"],
    );
    check_one_of(
        out,
        "update_config.order",
        u.order.as_ref(),
        &["stop-first", "start-first"],
    );
}

impl SwarmConfig {
    /// Limits from `resources`, or what is wrong with them.
    pub fn limits(&self) -> Result<SwarmLimits, Invalid> {
        let mut limits = SwarmLimits::default();
        for (key, value) in &self.resources {
            match key.as_str() {
                "cpu" => {
                    let cores: f64 = value
                        .parse()
                        .ok()
                        .filter(|c: &f64| c.is_finite() && *c > 0.0 && *c <= 1024.0)
                        .ok_or_else(|| {
                            invalid(
                                "resources.cpu",
                                format!("`{value}` is not a number of cores such as `0.5`"),
                            )
                        })?;
                    // Bounded above, so the product fits.
                    #[allow(clippy::cast_possible_truncation)]
                    let nanos = (cores * 1e9).round() as i64;
                    limits.nano_cpus = Some(nanos);
                }
                "memory" => {
                    let mb: i64 = value
                        .parse()
                        .ok()
                        .filter(|m| *m > 0 && *m <= 1 << 30)
                        .ok_or_else(|| {
                            invalid(
                                "resources.memory",
                                format!("`{value}` is not a number of megabytes"),
                            )
                        })?;
                    limits.memory_bytes = Some(mb * 1024 * 1024);
                }
                other => {
                    return Err(invalid(
                        format!("resources.{other}"),
                        "is not a resource; use `cpu` (cores) or `memory` (MB)",
                    ));
                }
            }
        }
        Ok(limits)
    }

    /// Checks everything serde can't; returns every problem at once.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if self.service_port == 0 {
            out.push(invalid("service_port", "must be between 1 and 65535"));
        }
        if self.replicas > 1000 {
            out.push(invalid("replicas", "must be at most 1000"));
        }
        check_ports(&mut out, &self.ports, self.endpoint_mode.as_ref());
        self.check_mounts(&mut out);
        if let Err(e) = self.limits() {
            out.push(e);
        }
        self.check_policies(&mut out);
        self.check_stop_and_host(&mut out);
        out
    }

    /// Mount types and paths.
    fn check_mounts(&self, out: &mut Vec<Invalid>) {
        for (i, m) in self.mounts.iter().enumerate() {
            check_one_of(
                out,
                &format!("mounts[{i}].type"),
                m.kind.as_ref(),
                &["volume", "bind", "tmpfs"],
            );
            if !m.target.starts_with('/') {
                out.push(invalid(
                    format!("mounts[{i}].target"),
                    format!("`{}` is not an absolute path", m.target),
                ));
            }
            if m.kind.as_deref() == Some("bind")
                && !m.source.as_deref().is_some_and(|s| s.starts_with('/'))
            {
                out.push(invalid(
                    format!("mounts[{i}].source"),
                    "a bind mount needs an absolute host path",
                ));
            }
        }
    }

    /// `update_config`, `restart_policy` and `health_check`: their durations and choices.
    fn check_policies(&self, out: &mut Vec<Invalid>) {
        if let Some(u) = &self.update_config {
            check_update(out, u);
        }
        if let Some(r) = &self.restart_policy {
            check_duration(out, "restart_policy.delay", r.delay.as_ref());
            check_duration(out, "restart_policy.window", r.window.as_ref());
            check_one_of(
                out,
                "restart_policy.condition",
                r.condition.as_ref(),
                &["none", "on-failure", "any"],
            );
        }
        if let Some(h) = &self.health_check {
            if h.test.is_empty() {
                out.push(invalid("health_check.test", "must name a command"));
            }
            check_duration(out, "health_check.interval", h.interval.as_ref());
            check_duration(out, "health_check.timeout", h.timeout.as_ref());
            check_duration(out, "health_check.start_period", h.start_period.as_ref());
        }
    }

    /// How tasks stop, how long deploy waits, and where the manager is.
    fn check_stop_and_host(&self, out: &mut Vec<Invalid>) {
        check_duration(out, "stop_grace_period", self.stop_grace_period.as_ref());
        check_duration(out, "wait_timeout", self.wait_timeout.as_ref());
        if let Some(s) = &self.stop_signal
            && (s.is_empty() || s.len() > 16 || !s.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            out.push(invalid(
                "stop_signal",
                format!("`{s}` is not a signal name such as `SIGTERM`"),
            ));
        }
        if let Some(h) = &self.host
            && !(h.starts_with("unix://") || h.starts_with("tcp://"))
        {
            out.push(invalid(
                "host",
                format!("`{h}` is not `unix:///path` or `tcp://host:port`"),
            ));
        }
    }

    /// How long deploy waits for the tasks.
    pub fn wait_timeout(&self) -> Duration {
        self.wait_timeout
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(Duration::from_mins(2))
    }

    /// The client config with `host` folded in (`host` wins over `client_config.host`).
    pub fn client(&self) -> Option<ClientConfig> {
        let mut c = self.client_config.clone().unwrap_or_default();
        if self.host.is_some() {
            c.host.clone_from(&self.host);
        }
        (c != ClientConfig::default()).then_some(c)
    }
}

/// Config of the `docker-swarm` release manager. Without `ports` it releases the deployment's
/// own service (the default, and the URL service's path); with them it keeps one stable service
/// per app that publishes them and moves it to each released deployment by a rolling update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmReleaseConfig {
    /// Ports the app's stable service publishes (`ports {}` blocks); none: no stable service.
    #[serde(default, deserialize_with = "one_or_many")]
    pub ports: Vec<PortConfig>,
    /// The stable service's `vip` (default) or `dnsrr`.
    #[serde(default)]
    pub endpoint_mode: Option<String>,
    /// The stable service's name (default: the app's).
    #[serde(default)]
    pub service: Option<String>,
    /// How the stable service's rolling update proceeds (defaults: one task at a time,
    /// `stop-first`, watched 5s, `rollback` on failure).
    #[serde(default)]
    pub update_config: Option<UpdateConfig>,
    /// How long a release may take: scaling a rolled-back deployment up, or the stable service's
    /// rolling update (default `120s`).
    #[serde(default)]
    pub wait_timeout: Option<String>,
    /// Credentials the nodes pull the image with (the stable service's tasks).
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The manager (default `DOCKER_HOST`, else the local socket).
    #[serde(default)]
    pub host: Option<String>,
    /// How to reach the manager (TLS client certificates).
    #[serde(default)]
    pub client_config: Option<ClientConfig>,
}

impl SwarmReleaseConfig {
    /// How long release waits for the tasks.
    pub fn wait_timeout(&self) -> Duration {
        self.wait_timeout
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(Duration::from_mins(2))
    }

    /// Whether releases move the app's stable service.
    pub fn stable(&self) -> bool {
        !self.ports.is_empty()
    }

    /// Checks everything serde can't; returns every problem at once.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        check_ports(&mut out, &self.ports, self.endpoint_mode.as_ref());
        if let Some(u) = &self.update_config {
            check_update(&mut out, u);
        }
        check_duration(&mut out, "wait_timeout", self.wait_timeout.as_ref());
        if !self.stable() {
            for (set, attribute) in [
                (self.endpoint_mode.is_some(), "endpoint_mode"),
                (self.service.is_some(), "service"),
                (self.update_config.is_some(), "update_config"),
            ] {
                if set {
                    out.push(invalid(
                        attribute,
                        "configures the stable service, which needs `ports {}` to publish",
                    ));
                }
            }
        }
        if let Some(name) = &self.service
            && (name.is_empty()
                || name.len() > 63
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            out.push(invalid(
                "service",
                format!("`{name}` is not a service name (letters, digits, `-`, `_`; at most 63)"),
            ));
        }
        out
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
