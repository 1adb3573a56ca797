//! Pruning on the swarm: after a third `up` the oldest deployment's service is removed from
//! the manager and its tasks from every node, the previous one is kept (scaled to 0, ready for
//! a rollback), the catalog says which is destroyed, and the release keeps serving.

use std::time::Duration;

use crate::common::eventually;
use crate::swarm::{Cleanup, Fixture, all_serve, begin, plain_registry, project, unique, wl_ok};

/// The app's services on the manager, by name.
fn services(fx: &Fixture, app: &str) -> Vec<String> {
    let mut names = Fixture::docker(
        &fx.manager,
        &[
            "service",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("label=wayline.app={app}"),
        ],
    );
    names.sort();
    names
}

/// Containers of `service` on any node.
fn containers_of(fx: &Fixture, service: &str) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    fx.nodes
        .iter()
        .flat_map(|n| Fixture::docker(n, &["ps", "-aq", "--filter", &filter]))
        .collect()
}

#[test]
fn swarm_prune_removes_the_oldest_deployment_everywhere_and_keeps_the_previous() {
    let Some((fx, _lock, env, _server)) =
        begin("swarm_prune_removes_the_oldest_deployment_everywhere_and_keeps_the_previous")
    else {
        return;
    };
    let app = unique("swpr");
    let port = 18600;
    let deploy = format!(
        "    use \"docker-swarm\" {{\n      replicas      = 3\n      service_port  = 3000\n      endpoint_mode = \"dnsrr\"\n      stop_signal   = \"SIGTERM\"\n      ports {{\n        target    = 3000\n        published = {port}\n        mode      = \"host\"\n      }}\n    }}"
    );
    project(&env, &app, &plain_registry(&fx, &app, "latest"), &deploy);
    let _cleanup = Cleanup { env: &env, fx: &fx };

    for (i, word) in ["first", "second", "third"].iter().enumerate() {
        env.write("index.html", &format!("<h1>{word} version</h1>\n"));
        let up = wl_ok(&env, &fx, &["up"]).all();
        if i < 2 {
            assert!(!up.contains("Pruning deployment"), "{up}");
        }
    }
    let (v1, v2, v3) = (
        format!("{app}-v1"),
        format!("{app}-v2"),
        format!("{app}-v3"),
    );
    let mut left = Vec::new();
    let pruned = eventually(Duration::from_mins(1), || {
        left = services(&fx, &app);
        left == [v2.clone(), v3.clone()] && containers_of(&fx, &v1).is_empty()
    });
    assert!(
        pruned,
        "after three ups the services are {left:?}, containers of v1: {:?}",
        containers_of(&fx, &v1)
    );
    // The previous deployment stays, scaled to 0 (its host-mode port is the release's now).
    let replicas = Fixture::docker(
        &fx.manager,
        &[
            "service",
            "inspect",
            &v2,
            "--format",
            "{{.Spec.Mode.Replicated.Replicas}}",
        ],
    );
    assert_eq!(replicas, ["0"]);
    all_serve(&fx, port, "third version");

    let list = wl_ok(&env, &fx, &["deployment", "list", "-json"]).stdout();
    let list: Vec<serde_json::Value> = serde_json::from_str(&list).expect("deployment list -json");
    let states: Vec<(u64, String)> = list
        .iter()
        .map(|d| {
            (
                d["sequence"].as_u64().unwrap_or_default(),
                d["physical_state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&(1, "destroyed".to_owned())),
        "v1 not destroyed in the catalog: {states:?}"
    );
    assert!(
        !states.contains(&(2, "destroyed".to_owned())),
        "v2 pruned too early: {states:?}"
    );

    wl_ok(&env, &fx, &["destroy", "-auto-approve"]);
    fx.assert_clean(&app, "left behind after destroy");
}
