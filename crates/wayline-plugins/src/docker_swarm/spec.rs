//! The plan: the Swarm service spec of one deployment, a pure function of the validated config,
//! the image reference, the owner and the deployment's env. Tested without an engine.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointSpec, HealthConfig, Limit, Mount, NetworkAttachmentConfig,
    ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets,
    TaskSpecPlacement, TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources,
    TaskSpecRestartPolicy,
};

use super::config::{PortConfig, SwarmConfig, UpdateConfig, parse_duration};
use crate::docker::owner::Owner;

/// Env var naming the entrypoint's instance: the task and the node it runs on, through Swarm's
/// templates, so `wayline logs` says where a line came from.
pub const INSTANCE_ENV: &str = "WAYLINE_INSTANCE_ID";
/// The template of [`INSTANCE_ENV`].
pub const INSTANCE_TEMPLATE: &str = "{{.Task.Name}}@{{.Node.Hostname}}";
/// Label of a stable release service naming the app it serves.
pub const LABEL_RELEASE: &str = "wayline.release";

/// Name of deployment `sequence`'s service: `<app>-v<N>`.
pub fn service_name(app: &str, sequence: u64) -> String {
    format!("{app}-v{sequence}")
}

/// What one deployment's service is made of.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// Validated config.
    pub config: &'a SwarmConfig,
    /// Image to run (`repo@sha256:…` when the digest is known).
    pub image: &'a str,
    /// Service name.
    pub name: &'a str,
    /// Owner of the service.
    pub owner: &'a Owner,
    /// Wayline's deployment id.
    pub deployment_id: &'a str,
    /// Env from the runner (server address, token, ids), set after the config's own.
    pub deployment_env: &'a BTreeMap<String, String>,
    /// Secret ids by name (looked up before planning).
    pub secret_ids: &'a HashMap<String, String>,
}

fn nanos(d: Option<&String>) -> Option<i64> {
    d.and_then(|s| parse_duration(s))
        .map(|d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn count(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// The endpoint of published `ports` with `endpoint_mode`.
pub fn endpoint(ports: &[PortConfig], mode: Option<&str>) -> EndpointSpec {
    EndpointSpec {
        mode: mode.and_then(|m| m.parse().ok()),
        ports: Some(
            ports
                .iter()
                .map(|p| EndpointPortConfig {
                    protocol: p.protocol.as_deref().unwrap_or("tcp").parse().ok(),
                    target_port: Some(i64::from(p.target)),
                    published_port: p.published.map(i64::from),
                    publish_mode: p.mode.as_deref().unwrap_or("ingress").parse().ok(),
                    ..EndpointPortConfig::default()
                })
                .collect(),
        ),
    }
}

/// Swarm's update config from ours.
pub fn update_config(u: &UpdateConfig) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: count(u.parallelism),
        delay: nanos(u.delay.as_ref()),
        failure_action: u.failure_action.as_deref().and_then(|f| f.parse().ok()),
        monitor: nanos(u.monitor.as_ref()),
        order: u.order.as_deref().and_then(|o| o.parse().ok()),
        ..ServiceSpecUpdateConfig::default()
    }
}

impl Plan<'_> {
    /// The env of each task: the config's, then the runner's, `PORT`, and the instance template.
    fn env(&self) -> Vec<String> {
        let mut env: BTreeMap<String, String> = self.config.static_environment.clone();
        env.extend(self.deployment_env.clone());
        env.insert("PORT".to_owned(), self.config.service_port.to_string());
        env.insert(INSTANCE_ENV.to_owned(), INSTANCE_TEMPLATE.to_owned());
        env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    fn labels(&self) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = self.config.labels.clone().into_iter().collect();
        labels.extend(self.owner.labels(self.deployment_id));
        labels
    }

    fn container(&self) -> TaskSpecContainerSpec {
        let c = self.config;
        let mounts = c
            .mounts
            .iter()
            .map(|m| Mount {
                target: Some(m.target.clone()),
                source: m.source.clone(),
                typ: m.kind.as_deref().unwrap_or("volume").parse().ok(),
                read_only: Some(m.read_only),
                ..Mount::default()
            })
            .collect::<Vec<_>>();
        let secrets = c
            .secrets
            .iter()
            .map(|name| TaskSpecContainerSpecSecrets {
                file: Some(TaskSpecContainerSpecFile {
                    name: Some(name.clone()),
                    uid: Some("0".into()),
                    gid: Some("0".into()),
                    mode: Some(0o400),
                }),
                secret_id: self.secret_ids.get(name).cloned(),
                secret_name: Some(name.clone()),
            })
            .collect::<Vec<_>>();
        TaskSpecContainerSpec {
            image: Some(self.image.to_owned()),
            labels: Some(self.labels()),
            args: Some(c.command.clone()).filter(|a| !a.is_empty()),
            env: Some(self.env()),
            mounts: Some(mounts).filter(|m| !m.is_empty()),
            secrets: Some(secrets).filter(|s| !s.is_empty()),
            stop_signal: c.stop_signal.clone(),
            stop_grace_period: nanos(c.stop_grace_period.as_ref()),
            health_check: c.health_check.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: nanos(h.interval.as_ref()),
                timeout: nanos(h.timeout.as_ref()),
                retries: count(h.retries),
                start_period: nanos(h.start_period.as_ref()),
                ..HealthConfig::default()
            }),
            ..TaskSpecContainerSpec::default()
        }
    }

    fn placement(&self) -> Option<TaskSpecPlacement> {
        self.config.placement.as_ref().map(|p| TaskSpecPlacement {
            constraints: Some(p.constraints.clone()).filter(|c| !c.is_empty()),
            preferences: Some(
                p.spread
                    .iter()
                    .map(|s| TaskSpecPlacementPreferences {
                        spread: Some(TaskSpecPlacementSpread {
                            spread_descriptor: Some(s.clone()),
                        }),
                    })
                    .collect::<Vec<_>>(),
            )
            .filter(|p| !p.is_empty()),
            max_replicas: count(p.max_replicas_per_node),
            ..TaskSpecPlacement::default()
        })
    }

    /// The service spec.
    pub fn spec(&self) -> ServiceSpec {
        let c = self.config;
        // Validated before planning.
        let limits = c.limits().unwrap_or_default();
        let resources = (limits.nano_cpus.is_some() || limits.memory_bytes.is_some()).then_some({
            TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: limits.nano_cpus,
                    memory_bytes: limits.memory_bytes,
                    pids: None,
                }),
                reservations: None,
            }
        });
        let task = TaskSpec {
            container_spec: Some(self.container()),
            resources,
            restart_policy: c.restart_policy.as_ref().map(|r| TaskSpecRestartPolicy {
                condition: r.condition.as_deref().and_then(|x| x.parse().ok()),
                delay: nanos(r.delay.as_ref()),
                max_attempts: count(r.max_attempts),
                window: nanos(r.window.as_ref()),
            }),
            placement: self.placement(),
            networks: Some(
                c.networks
                    .iter()
                    .map(|n| NetworkAttachmentConfig {
                        target: Some(n.clone()),
                        ..NetworkAttachmentConfig::default()
                    })
                    .collect::<Vec<_>>(),
            )
            .filter(|n| !n.is_empty()),
            ..TaskSpec::default()
        };
        ServiceSpec {
            name: Some(self.name.to_owned()),
            labels: Some(self.labels()),
            task_template: Some(task),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: count(Some(c.replicas)),
                }),
                ..ServiceSpecMode::default()
            }),
            update_config: c.update_config.as_ref().map(update_config),
            endpoint_spec: Some(endpoint(&c.ports, c.endpoint_mode.as_deref())),
            ..ServiceSpec::default()
        }
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod option_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_shape_plans_a_host_mode_dnsrr_service() {
        let config: SwarmConfig = serde_json::from_value(serde_json::json!({
            "replicas": 3, "endpoint_mode": "dnsrr", "stop_signal": "SIGTERM",
            "stop_grace_period": "3s",
            "ports": [{"target": 3000, "published": 18080, "mode": "host"}],
            "placement": {"constraints": ["node.role == worker"], "spread": ["node.id"]},
            "resources": {"memory": "32"},
            "env": {"GREETING": "hi"},
        }))
        .unwrap();
        let owner = Owner {
            server_id: "S".into(),
            project: "p".into(),
            app: "web".into(),
            workspace: "default".into(),
        };
        let env = BTreeMap::from([("WAYLINE_DEPLOYMENT_ID".to_owned(), "D1".to_owned())]);
        let plan = Plan {
            config: &config,
            image: "10.77.0.1:5000/web@sha256:ab",
            name: "web-v1",
            owner: &owner,
            deployment_id: "D1",
            deployment_env: &env,
            secret_ids: &HashMap::new(),
        };
        let spec = serde_json::to_value(plan.spec()).unwrap();
        assert_eq!(spec["Name"], "web-v1");
        assert_eq!(spec["Labels"]["wayline.deployment-id"], "D1");
        assert_eq!(spec["Labels"]["wayline.app"], "web");
        assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 3);
        assert_eq!(spec["EndpointSpec"]["Mode"], "dnsrr");
        assert_eq!(
            spec["EndpointSpec"]["Ports"][0],
            serde_json::json!({"Protocol": "tcp", "TargetPort": 3000, "PublishedPort": 18080, "PublishMode": "host"})
        );
        let c = &spec["TaskTemplate"]["ContainerSpec"];
        assert_eq!(c["Image"], "10.77.0.1:5000/web@sha256:ab");
        assert_eq!(c["StopSignal"], "SIGTERM");
        assert_eq!(c["StopGracePeriod"], 3_000_000_000_i64);
        assert_eq!(
            c["Env"],
            serde_json::json!([
                "GREETING=hi",
                "PORT=3000",
                "WAYLINE_DEPLOYMENT_ID=D1",
                "WAYLINE_INSTANCE_ID={{.Task.Name}}@{{.Node.Hostname}}"
            ])
        );
        let t = &spec["TaskTemplate"];
        assert_eq!(t["Placement"]["Constraints"][0], "node.role == worker");
        assert_eq!(
            t["Placement"]["Preferences"][0]["Spread"]["SpreadDescriptor"],
            "node.id"
        );
        assert_eq!(t["Resources"]["Limits"]["MemoryBytes"], 32 << 20);
    }
}
