//! The `docker` platform reaching a remote engine over TLS with client certificates
//! (`client_config { host, cert_path }`): the swarm fixture's manager listens on
//! tcp://10.77.0.11:2376 with `--tlsverify`. Skipped with the reason printed when the fixture is
//! not up, unless `WAYLINE_REQUIRE_SWARM=1` (CI).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::json;
use wayline_plugin::{ComponentKind, Function, Value};
use wayline_plugins::docker::Deployment;

use super::{Harness, core, setup};

/// The fixture's env lines (`swarm-fixture.sh env`), or `None` with the reason printed.
fn fixture(test: &str) -> Option<HashMap<String, String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/swarm-fixture.sh");
    let out = Command::new("bash").arg(script).arg("env").output().ok();
    let env: Option<HashMap<String, String>> = out.filter(|o| o.status.success()).map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect()
    });
    let env = env.filter(|e| e.contains_key("WAYLINE_SWARM_CLIENT_CERTS"));
    if env.is_none() {
        wayline_testkit::skip(
            test,
            wayline_testkit::Need::Swarm,
            "the swarm fixture is not up (`sudo scripts/swarm-fixture.sh up`)",
        );
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_platform_reaches_a_tls_engine_with_client_certificates() {
    setup();
    let Some(fx) = fixture("the_docker_platform_reaches_a_tls_engine_with_client_certificates")
    else {
        return;
    };
    let host = &fx["WAYLINE_SWARM_MANAGER_TCP"];
    let certs = Path::new(&fx["WAYLINE_SWARM_CLIENT_CERTS"]);
    let h = Harness::new();
    let gone = Deployment {
        id: "tls-probe".into(),
        name: "wl-tls-probe-none".into(),
        container_id: "0000000000000000".into(),
        ..Deployment::default()
    };
    let status = |cert_path: String| {
        let h = &h;
        let gone = &gone;
        async move {
            let platform = h
                .handle(
                    ComponentKind::Platform,
                    "docker",
                    json!({"client_config": {"host": host, "cert_path": cert_path}}),
                )
                .await;
            let dir = tempfile::tempdir().unwrap();
            let (r, _) = Harness::call(
                &platform,
                Function::Status,
                core("tlsprobe", dir.path(), 1, "tls-probe", BTreeMap::new()),
                vec![gone.to_any()],
                vec![],
            )
            .await;
            r
        }
    };
    // With the client certificate the engine answers (the container is simply not there).
    let ok = status(certs.display().to_string()).await;
    assert!(ok.is_ok(), "status over TLS failed: {:?}", ok.err());

    // A certificate the engine's CA did not issue for a client is refused, and the error says
    // which engine.
    let wrong = tempfile::tempdir().unwrap();
    let fixture_certs = Path::new(&fx["WAYLINE_SWARM_CERTS"]);
    std::fs::copy(certs.join("ca.pem"), wrong.path().join("ca.pem")).unwrap();
    std::fs::copy(
        fixture_certs.join("registry.pem"),
        wrong.path().join("cert.pem"),
    )
    .unwrap();
    std::fs::copy(
        fixture_certs.join("registry-key.pem"),
        wrong.path().join("key.pem"),
    )
    .unwrap();
    let err = status(wrong.path().display().to_string())
        .await
        .expect_err("a server certificate used as a client one was accepted")
        .to_string();
    assert!(
        err.contains(&format!("cannot reach the Docker engine at `{host}`")),
        "{err}"
    );

    // A directory without the client files says which one is missing.
    let empty = tempfile::tempdir().unwrap();
    let err = status(empty.path().display().to_string())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ca.pem` is missing"), "{err}");
}
