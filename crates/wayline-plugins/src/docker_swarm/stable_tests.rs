//! Unit tests of the stable service's plan and of how a release reads Swarm's update status.

use std::collections::HashMap;

use bollard::models::{ServiceUpdateStatus, TaskSpec, TaskSpecContainerSpec};

use super::*;

fn release(json: serde_json::Value) -> SwarmReleaseConfig {
    serde_json::from_value(json).unwrap()
}

fn deployment_spec() -> ServiceSpec {
    ServiceSpec {
        name: Some("web-v2".into()),
        labels: Some(HashMap::from([
            ("wayline.app".to_owned(), "web".to_owned()),
            ("wayline.deployment-id".to_owned(), "D2".to_owned()),
        ])),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some("10.77.0.1:5000/web@sha256:ab".into()),
                env: Some(vec!["WAYLINE_DEPLOYMENT_ID=D2".into()]),
                ..TaskSpecContainerSpec::default()
            }),
            ..TaskSpec::default()
        }),
        ..ServiceSpec::default()
    }
}

#[test]
fn the_stable_service_runs_the_deployment_s_template_with_the_stanza_s_ports() {
    let config = release(serde_json::json!({
        "endpoint_mode": "dnsrr",
        "ports": {"target": 3000, "published": 18400, "mode": "host"},
    }));
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    assert_eq!(stable_name(&config, "web"), "web");
    let spec =
        serde_json::to_value(stable_spec(&config, "web", "web", &deployment_spec(), 3)).unwrap();
    assert_eq!(spec["Name"], "web");
    assert_eq!(spec["Labels"]["wayline.release"], "web");
    assert_eq!(spec["Labels"]["wayline.deployment-id"], "D2");
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 3);
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["Image"],
        "10.77.0.1:5000/web@sha256:ab"
    );
    assert_eq!(
        spec["EndpointSpec"],
        serde_json::json!({"Mode": "dnsrr", "Ports": [{"Protocol": "tcp", "TargetPort": 3000, "PublishedPort": 18400, "PublishMode": "host"}]})
    );
    assert_eq!(
        spec["UpdateConfig"],
        serde_json::json!({"Parallelism": 1, "FailureAction": "rollback", "Monitor": 5_000_000_000_i64, "Order": "stop-first"})
    );
    assert_eq!(
        spec["RollbackConfig"],
        serde_json::json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000_i64, "Order": "stop-first"})
    );
}

#[test]
fn the_deployment_s_health_check_is_put_back() {
    let config = release(serde_json::json!({"ports": {"target": 3000, "published": 80}}));
    let mut spec = stable_spec(&config, "web", "web", &deployment_spec(), 1);
    restore_health_check(&mut spec, r#"{"Test": ["CMD", "true"], "Retries": 2}"#);
    let c = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        c["TaskTemplate"]["ContainerSpec"]["HealthCheck"],
        serde_json::json!({"Test": ["CMD", "true"], "Retries": 2})
    );
    let mut none = stable_spec(&config, "web", "web", &deployment_spec(), 1);
    restore_health_check(&mut none, "");
    assert!(
        serde_json::to_value(&none).unwrap()["TaskTemplate"]["ContainerSpec"]
            .get("HealthCheck")
            .is_none()
    );
}

#[test]
fn the_stanza_s_update_config_wins() {
    let config = release(serde_json::json!({
        "service": "web-live",
        "ports": [{"target": 3000, "published": 80}],
        "update_config": {"parallelism": 2, "order": "start-first", "delay": "1s"},
    }));
    assert_eq!(stable_name(&config, "web"), "web-live");
    let spec = serde_json::to_value(stable_spec(
        &config,
        "web-live",
        "web",
        &deployment_spec(),
        1,
    ))
    .unwrap();
    assert_eq!(
        spec["UpdateConfig"],
        serde_json::json!({"Parallelism": 2, "Delay": 1_000_000_000_i64, "FailureAction": "rollback", "Monitor": 5_000_000_000_i64, "Order": "start-first"})
    );
    assert_eq!(spec["EndpointSpec"]["Ports"][0]["PublishMode"], "ingress");
}

#[test]
fn stable_service_settings_need_ports() {
    let config = release(serde_json::json!({
        "endpoint_mode": "dnsrr", "service": "bad name", "update_config": {"order": "sideways"},
    }));
    let got: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "update_config.order: `sideways` is not one of stop-first, start-first",
            "endpoint_mode: configures the stable service, which needs `ports {}` to publish",
            "service: configures the stable service, which needs `ports {}` to publish",
            "update_config: configures the stable service, which needs `ports {}` to publish",
            "service: `bad name` is not a service name (letters, digits, `-`, `_`; at most 63)",
        ]
    );
    assert!(!config.stable());
    assert!(SwarmReleaseConfig::default().validate().is_empty());
}

fn task(state: &str, message: &str) -> TaskFact {
    TaskFact {
        name: "web.1".into(),
        node: "swl-n2".into(),
        state: state.into(),
        desired: "running".into(),
        message: message.into(),
    }
}

fn status(state: UpdateState, message: &str) -> ServiceUpdateStatus {
    ServiceUpdateStatus {
        state: Some(state),
        message: Some(message.into()),
        ..ServiceUpdateStatus::default()
    }
}

#[test]
fn swarm_s_update_status_decides_the_release() {
    let target = Target {
        id: "S",
        name: "web",
        deployment_id: "D2",
        replicas: 2,
        since: None,
    };
    let none = ServiceUpdateStatus::default();
    // A new service: done once enough tasks run the deployment.
    assert_eq!(verdict(&target, &none, 1, &[]), None);
    assert_eq!(verdict(&target, &none, 2, &[]), Some(Ok(())));
    // An update going on is waited for, even with enough tasks.
    let updating = status(UpdateState::UPDATING, "update in progress");
    assert_eq!(verdict(&target, &updating, 2, &[]), None);
    let completed = status(UpdateState::COMPLETED, "update completed");
    assert_eq!(verdict(&target, &completed, 2, &[]), Some(Ok(())));
    // Swarm's rollback is waited for: traffic is back on the old tasks only once it is done.
    let rolling_back = status(UpdateState::ROLLBACK_STARTED, "update rolled back");
    assert_eq!(verdict(&target, &rolling_back, 0, &[]), None);
    let rolled = status(UpdateState::ROLLBACK_COMPLETED, "rollback completed");
    let failed = task(
        "failed",
        "task: non-zero exit (1): dockerexec: unhealthy container",
    );
    assert_eq!(
        verdict(&target, &rolled, 0, &[failed]),
        Some(Err("Swarm rolled it back (rollback completed; task web.1 failed on swl-n2: task: non-zero exit (1): dockerexec: unhealthy container); traffic stays on the previous deployment".into()))
    );
    let pending = task(
        "pending",
        "no suitable node (scheduling constraints not satisfied on 3 nodes)",
    );
    assert_eq!(
        verdict(&target, &none, 1, &[pending]),
        Some(Err("task web.1 pending on swl-n2: no suitable node (scheduling constraints not satisfied on 3 nodes)".into()))
    );
}

#[test]
fn a_status_from_before_the_release_is_not_this_release_s() {
    // The last release was rolled back; this one's update has not started yet.
    let mut rolled = status(UpdateState::ROLLBACK_COMPLETED, "rollback completed");
    rolled.started_at = Some("2026-12-02T10:00:00.0Z".to_owned());
    let target = Target {
        id: "S",
        name: "web",
        deployment_id: "D3",
        replicas: 1,
        since: started(Some(&rolled)),
    };
    assert_eq!(verdict(&target, &rolled, 0, &[]), None);
    assert_eq!(verdict(&target, &rolled, 1, &[]), Some(Ok(())));
}
