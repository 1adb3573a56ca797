//! Every option of the `docker-swarm` platform, each pinned to the field of Swarm's service spec
//! it sets.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::*;

fn planned(config: serde_json::Value, secret_ids: &HashMap<String, String>) -> Value {
    let config: SwarmConfig = serde_json::from_value(config).unwrap();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let owner = Owner {
        server_id: "S".into(),
        project: "p".into(),
        app: "web".into(),
        workspace: "default".into(),
    };
    let env = BTreeMap::new();
    let plan = Plan {
        config: &config,
        image: "img@sha256:ab",
        name: "web-v4",
        owner: &owner,
        deployment_id: "D4",
        deployment_env: &env,
        secret_ids,
    };
    serde_json::to_value(plan.spec()).unwrap()
}

fn plan(config: serde_json::Value) -> Value {
    planned(config, &HashMap::new())
}

#[test]
fn replicas_resources_and_placement() {
    let s = plan(json!({
        "replicas": 5,
        "resources": {"cpu": "1.5", "memory": "128"},
        "placement": {
            "constraints": ["node.role == worker", "node.labels.zone != b"],
            "spread": ["node.labels.zone", "node.id"],
            "max_replicas_per_node": 2,
        },
    }));
    assert_eq!(s["Mode"], json!({"Replicated": {"Replicas": 5}}));
    let t = &s["TaskTemplate"];
    assert_eq!(
        t["Resources"],
        json!({"Limits": {"NanoCPUs": 1_500_000_000_i64, "MemoryBytes": 128 << 20}})
    );
    assert_eq!(
        t["Placement"],
        json!({
            "Constraints": ["node.role == worker", "node.labels.zone != b"],
            "Preferences": [
                {"Spread": {"SpreadDescriptor": "node.labels.zone"}},
                {"Spread": {"SpreadDescriptor": "node.id"}},
            ],
            "MaxReplicas": 2,
        })
    );
    // Without them: one task, no limits, no placement.
    let d = plan(json!({}));
    assert_eq!(d["Mode"]["Replicated"]["Replicas"], 1);
    assert!(d["TaskTemplate"].get("Resources").is_none(), "{d}");
    assert!(d["TaskTemplate"].get("Placement").is_none(), "{d}");
}

#[test]
fn env_labels_and_command() {
    let s = plan(json!({
        "env": {"NODE": "{{.Node.Hostname}}", "PORT": "9"},
        "service_port": 8080,
        "labels": {"team": "shop", "wayline.app": "forged"},
        "command": ["httpd", "-f"],
    }));
    let c = &s["TaskTemplate"]["ContainerSpec"];
    // PORT is the service port's, whatever the env says; the instance names task and node.
    assert_eq!(
        c["Env"],
        json!([
            "NODE={{.Node.Hostname}}",
            "PORT=8080",
            "WAYLINE_INSTANCE_ID={{.Task.Name}}@{{.Node.Hostname}}"
        ])
    );
    assert_eq!(c["Args"], json!(["httpd", "-f"]));
    // The owner's labels can't be overridden by the config's.
    for labels in [&s["Labels"], &c["Labels"]] {
        assert_eq!(labels["team"], "shop");
        assert_eq!(labels["wayline.app"], "web");
        assert_eq!(labels["wayline.deployment-id"], "D4");
    }
}

#[test]
fn networks_mounts_and_secrets() {
    let ids = HashMap::from([("db-password".to_owned(), "sec123".to_owned())]);
    let s = planned(
        json!({
            "networks": ["shop-net"],
            "mounts": [
                {"source": "data", "target": "/data"},
                {"type": "bind", "source": "/srv/static", "target": "/static", "read_only": true},
                {"type": "tmpfs", "target": "/scratch"},
            ],
            "secrets": ["db-password"],
        }),
        &ids,
    );
    let t = &s["TaskTemplate"];
    assert_eq!(t["Networks"], json!([{"Target": "shop-net"}]));
    assert_eq!(
        t["ContainerSpec"]["Mounts"],
        json!([
            {"Target": "/data", "Source": "data", "Type": "volume", "ReadOnly": false},
            {"Target": "/static", "Source": "/srv/static", "Type": "bind", "ReadOnly": true},
            {"Target": "/scratch", "Type": "tmpfs", "ReadOnly": false},
        ])
    );
    assert_eq!(
        t["ContainerSpec"]["Secrets"],
        json!([{
            "File": {"Name": "db-password", "UID": "0", "GID": "0", "Mode": 0o400},
            "SecretID": "sec123",
            "SecretName": "db-password",
        }])
    );
}

#[test]
fn update_config_and_restart_policy_pass_through() {
    let s = plan(json!({
        "update_config": {
            "parallelism": 2, "delay": "5s", "failure_action": "rollback",
            "monitor": "10s", "order": "start-first",
        },
        "restart_policy": {
            "condition": "on-failure", "delay": "2s", "max_attempts": 3, "window": "1m",
        },
    }));
    assert_eq!(
        s["UpdateConfig"],
        json!({
            "Parallelism": 2, "Delay": 5_000_000_000_i64, "FailureAction": "rollback",
            "Monitor": 10_000_000_000_i64, "Order": "start-first",
        })
    );
    assert_eq!(
        s["TaskTemplate"]["RestartPolicy"],
        json!({
            "Condition": "on-failure", "Delay": 2_000_000_000_i64, "MaxAttempts": 3,
            "Window": 60_000_000_000_i64,
        })
    );
    let d = plan(json!({}));
    assert!(d.get("UpdateConfig").is_none(), "{d}");
    assert!(d["TaskTemplate"].get("RestartPolicy").is_none(), "{d}");
}

#[test]
fn stop_signal_grace_and_health_check() {
    let s = plan(json!({
        "stop_signal": "SIGINT",
        "stop_grace_period": "1500ms",
        "health_check": {
            "test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:3000/"],
            "interval": "2s", "timeout": "1s", "retries": 4, "start_period": "3s",
        },
    }));
    let c = &s["TaskTemplate"]["ContainerSpec"];
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["StopGracePeriod"], 1_500_000_000_i64);
    assert_eq!(
        c["HealthCheck"],
        json!({
            "Test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:3000/"],
            "Interval": 2_000_000_000_i64, "Timeout": 1_000_000_000_i64, "Retries": 4,
            "StartPeriod": 3_000_000_000_i64,
        })
    );
}

#[test]
fn ports_in_host_and_mesh_mode_and_the_endpoint_mode() {
    let mesh = plan(json!({
        "endpoint_mode": "vip",
        "ports": [
            {"target": 3000, "published": 8080},
            {"target": 53, "protocol": "udp"},
        ],
    }));
    assert_eq!(
        mesh["EndpointSpec"],
        json!({"Mode": "vip", "Ports": [
            {"Protocol": "tcp", "TargetPort": 3000, "PublishedPort": 8080, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 53, "PublishMode": "ingress"},
        ]})
    );
    let host = plan(json!({
        "endpoint_mode": "dnsrr",
        "ports": {"target": 3000, "published": 18080, "mode": "host"},
    }));
    assert_eq!(
        host["EndpointSpec"],
        json!({"Mode": "dnsrr", "Ports": [
            {"Protocol": "tcp", "TargetPort": 3000, "PublishedPort": 18080, "PublishMode": "host"},
        ]})
    );
    // No ports, no mode: Swarm's defaults (a VIP, nothing published).
    assert_eq!(plan(json!({}))["EndpointSpec"], json!({"Ports": []}));
}
