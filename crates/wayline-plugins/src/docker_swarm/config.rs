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
        self.check_ports(&mut out);
        self.check_mounts(&mut out);
        if let Err(e) = self.limits() {
            out.push(e);
        }
        self.check_policies(&mut out);
        self.check_stop_and_host(&mut out);
        out
    }

    /// Published ports and the endpoint mode they need.
    fn check_ports(&self, out: &mut Vec<Invalid>) {
        for (i, p) in self.ports.iter().enumerate() {
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
        check_one_of(
            out,
            "endpoint_mode",
            self.endpoint_mode.as_ref(),
            &["vip", "dnsrr"],
        );
        if self.endpoint_mode.as_deref() == Some("dnsrr")
            && self.ports.iter().any(|p| p.mode.as_deref() != Some("host"))
        {
            out.push(invalid(
                "endpoint_mode",
                "`dnsrr` works only with ports published in `host` mode (the routing mesh needs a VIP)",
            ));
        }
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

/// Config of the `docker-swarm` release manager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmReleaseConfig {
    /// How long scaling a rolled-back deployment up may take (default `120s`).
    #[serde(default)]
    pub wait_timeout: Option<String>,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: serde_json::Value) -> SwarmConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn issue_shape_decodes_and_validates() {
        let c = decode(serde_json::json!({
            "replicas": 3, "service_port": 3000, "endpoint_mode": "dnsrr",
            "ports": [{"target": 3000, "published": 18080, "mode": "host"}]
        }));
        assert_eq!(c.replicas, 3);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn every_bad_value_is_reported() {
        let c = decode(serde_json::json!({
            "endpoint_mode": "dnsrr",
            "ports": [{"target": 3000, "mode": "mesh"}],
            "resources": {"cpu": "lots"},
            "update_config": {"delay": "soon", "order": "random"},
            "stop_signal": "TERM NOW",
            "host": "10.0.0.1:2375",
            "mounts": [{"type": "bind", "source": "rel", "target": "data"}],
        }));
        let got: Vec<String> = c.validate().iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "ports[0].mode: `mesh` is not one of ingress, host",
                "endpoint_mode: `dnsrr` works only with ports published in `host` mode (the routing mesh needs a VIP)",
                "mounts[0].target: `data` is not an absolute path",
                "mounts[0].source: a bind mount needs an absolute host path",
                "resources.cpu: `lots` is not a number of cores such as `0.5`",
                "update_config.delay: `soon` is not a duration such as `500ms`, `10s`, `2m` or `1h`",
                "update_config.order: `random` is not one of stop-first, start-first",
                "stop_signal: `TERM NOW` is not a signal name such as `SIGTERM`",
                "host: `10.0.0.1:2375` is not `unix:///path` or `tcp://host:port`",
            ]
        );
    }

    #[test]
    fn one_block_or_several() {
        let one = decode(serde_json::json!({"ports": {"target": 3000}}));
        let two = decode(serde_json::json!({"ports": [{"target": 3000}, {"target": 3001}]}));
        assert_eq!((one.ports.len(), two.ports.len()), (1, 2));
    }

    #[test]
    fn unknown_attribute_is_rejected() {
        let e =
            serde_json::from_value::<SwarmConfig>(serde_json::json!({"replica": 2})).unwrap_err();
        assert!(e.to_string().contains("unknown field `replica`"), "{e}");
    }

    #[test]
    fn limits_and_durations() {
        let c = decode(serde_json::json!({"resources": {"cpu": "0.5", "memory": "64"}}));
        assert_eq!(
            c.limits().unwrap(),
            SwarmLimits {
                nano_cpus: Some(500_000_000),
                memory_bytes: Some(64 << 20)
            }
        );
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_mins(2)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_mins(90)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
