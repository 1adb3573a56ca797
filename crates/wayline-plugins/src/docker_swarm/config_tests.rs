//! Unit tests of the `docker-swarm` config: decoding and every validation message.

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
    let e = serde_json::from_value::<SwarmConfig>(serde_json::json!({"replica": 2})).unwrap_err();
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
