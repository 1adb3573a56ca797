//! The `docker-swarm` platform's options and its stable-service release, end to end on the
//! three-node fixture: each option reaches the tasks (or Swarm's spec where a task can't show
//! it), destroy leaves no service, container, secret or network of the app on any node, and a
//! `release { use "docker-swarm" { ports {} } }` keeps one stable service that releases and
//! rollbacks move by a rolling update.

use std::process::Command;
use std::time::Duration;

use crate::common::eventually;
use crate::swarm::{
    Cleanup, Fixture, all_serve, begin, plain_registry, project_with, unique, wl_ok,
};

/// `docker -H <manager> args…` must succeed.
fn manager(fx: &Fixture, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("-H")
        .arg(&fx.manager)
        .args(args)
        .output()
        .expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes the user's own network and secret at the end, also when the test fails.
struct UserThings<'a>(&'a Fixture, String, String);

impl Drop for UserThings<'_> {
    fn drop(&mut self) {
        let _ = Fixture::docker(&self.0.manager, &["secret", "rm", &self.2]);
        let _ = Fixture::docker(&self.0.manager, &["network", "rm", &self.1]);
    }
}

const OPTIONS: &str = r#"    use "docker-swarm" {
      replicas          = 2
      service_port      = 3000
      endpoint_mode     = "dnsrr"
      env               = { GREETING = "hi from {{.Node.Hostname}}" }
      labels            = { team = "shop" }
      networks          = ["NET"]
      secrets           = ["SECRET"]
      resources         = { cpu = "0.5", memory = "64" }
      stop_signal       = "SIGTERM"
      stop_grace_period = "3s"
      ports {
        target    = 3000
        published = 18500
        mode      = "host"
      }
      mounts {
        type   = "tmpfs"
        target = "/scratch"
      }
      placement {
        constraints = ["node.role == worker"]
        spread      = ["node.id"]
      }
      update_config {
        parallelism = 1
        order       = "stop-first"
      }
      restart_policy {
        condition    = "on-failure"
        max_attempts = 3
      }
      health_check {
        test     = ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/"]
        interval = "1s"
        retries  = 3
      }
    }"#;

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[test]
fn swarm_options_reach_the_tasks_and_destroy_leaves_nothing() {
    let Some((fx, _lock, env, _server)) =
        begin("swarm_options_reach_the_tasks_and_destroy_leaves_nothing")
    else {
        return;
    };
    let app = unique("swopt");
    let (net, secret) = (format!("{app}-net"), format!("{app}-secret"));
    manager(
        &fx,
        &["network", "create", "-d", "overlay", "--attachable", &net],
    );
    let file = env.home.path().join("secret.txt");
    std::fs::write(&file, "s3cret-value").unwrap();
    manager(
        &fx,
        &["secret", "create", &secret, &file.display().to_string()],
    );
    let _user = UserThings(&fx, net.clone(), secret.clone());
    let deploy = OPTIONS.replace("NET", &net).replace("SECRET", &secret);
    project_with(&env, &app, &plain_registry(&fx, &app, "1"), &deploy, "");
    let cleanup = Cleanup { env: &env, fx: &fx };
    let up = wl_ok(&env, &fx, &["up"]);
    let service = format!("{app}-v1");
    // Placement: only the workers, one task each (spread over node.id).
    let nodes = crate::swarm::nodes_of(&fx, &service);
    assert_eq!(nodes, ["swl-n2", "swl-n3"], "{}", up.all());
    for ip in &fx.node_ips[1..] {
        assert!(crate::common::http_get(&format!("http://{ip}:18500/")).is_some());
    }
    // In a task: the env (with Swarm's template), the secret and the tmpfs mount.
    let exec = wl_ok(
        &env,
        &fx,
        &[
            "exec",
            "--",
            "sh",
            "-c",
            &format!(
                "echo $GREETING; cat /run/secrets/{secret}; echo; grep ' /scratch ' /proc/mounts"
            ),
        ],
    )
    .stdout();
    assert!(exec.contains("hi from swl-n"), "{exec}");
    assert!(exec.contains("s3cret-value"), "{exec}");
    assert!(exec.contains("tmpfs /scratch tmpfs"), "{exec}");
    // On the worker's engine: labels, limits, health check, stop signal, the overlay network.
    let worker = &fx.nodes[1];
    let label = format!("label=wayline.app={app}");
    let container = Fixture::docker(worker, &["ps", "-q", "--filter", &label]);
    assert_eq!(container.len(), 1, "{container:?}");
    let inspect = Fixture::docker(
        worker,
        &[
            "inspect",
            "--format",
            "{{index .Config.Labels \"team\"}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.Config.StopSignal}} {{index .Config.Healthcheck.Test 1}} {{.State.Health.Status}}",
            &container[0],
        ],
    );
    assert_eq!(inspect, ["shop 67108864 500000000 SIGTERM wget healthy"]);
    let networks = Fixture::docker(worker, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(networks.contains(&net), "{networks:?}");
    // What only the service spec shows: update config, restart policy, grace, endpoint mode.
    let spec = manager(
        &fx,
        &[
            "service",
            "inspect",
            &service,
            "--format",
            "{{.Spec.UpdateConfig.Parallelism}} {{.Spec.UpdateConfig.Order}} {{.Spec.TaskTemplate.RestartPolicy.Condition}} {{.Spec.TaskTemplate.RestartPolicy.MaxAttempts}} {{.Spec.TaskTemplate.ContainerSpec.StopGracePeriod}} {{.Spec.EndpointSpec.Mode}}",
        ],
    );
    assert_eq!(spec, "1 stop-first on-failure 3 3s dnsrr");

    let destroyed = wl_ok(&env, &fx, &["destroy", "-auto-approve"]);
    assert!(
        destroyed
            .all()
            .contains(&format!("Removed service {service}")),
        "{}",
        destroyed.all()
    );
    drop(cleanup);
    fx.assert_clean(&app, "left behind after destroy");
    // The overlay leaves the workers with the last task; the user's own secret and network stay
    // on the manager (Wayline made neither), and nothing Wayline-labelled remains anywhere.
    let mut left = Vec::new();
    let gone = eventually(Duration::from_secs(30), || {
        left = fx.nodes[1..]
            .iter()
            .flat_map(|n| {
                Fixture::docker(
                    n,
                    &["network", "ls", "-q", "--filter", &format!("name={net}")],
                )
            })
            .collect();
        left.is_empty()
    });
    assert!(gone, "network {net} still on a worker: {left:?}");
    for n in &fx.nodes {
        assert_eq!(
            Fixture::docker(n, &["network", "ls", "-q", "--filter", "label=wayline.app"]),
            Vec::<String>::new()
        );
    }
    for kind in ["secret", "config"] {
        assert_eq!(
            Fixture::docker(
                &fx.manager,
                &[
                    kind,
                    "ls",
                    "-q",
                    "--filter",
                    &format!("label=wayline.app={app}")
                ]
            ),
            Vec::<String>::new(),
            "{kind}"
        );
    }
    assert_eq!(
        manager(
            &fx,
            &[
                "secret",
                "ls",
                "--format",
                "{{.Name}}",
                "--filter",
                &format!("name={secret}")
            ]
        ),
        secret
    );
}

const STABLE: &str = r#"  release {
    use "docker-swarm" {
      endpoint_mode = "dnsrr"
      ports {
        target    = 3000
        published = 18400
        mode      = "host"
      }
      update_config {
        monitor = "1s"
      }
    }
  }"#;

/// The stable service's update state and the deployment its tasks run.
fn stable_state(fx: &Fixture, app: &str) -> String {
    manager(
        fx,
        &[
            "service",
            "inspect",
            app,
            "--format",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{else}}created{{end}} {{index .Spec.Labels \"wayline.release\"}}",
        ],
    )
}

#[test]
fn swarm_release_moves_one_stable_service_by_a_rolling_update() {
    let Some((fx, _lock, env, _server)) =
        begin("swarm_release_moves_one_stable_service_by_a_rolling_update")
    else {
        return;
    };
    let app = unique("swrel");
    // The deployments publish nothing; the stable service publishes 18400 on each node.
    let deploy = "    use \"docker-swarm\" {\n      replicas    = 3\n      stop_signal = \"SIGTERM\"\n      placement {\n        max_replicas_per_node = 1\n      }\n    }";
    project_with(
        &env,
        &app,
        &plain_registry(&fx, &app, "latest"),
        deploy,
        STABLE,
    );
    let _cleanup = Cleanup { env: &env, fx: &fx };

    let up = wl_ok(&env, &fx, &["up"]).all();
    assert!(
        up.contains(&format!(
            "Creating the stable service {app} running {app}-v1"
        )),
        "{up}"
    );
    assert!(
        up.contains(&format!(
            "The stable service {app} runs {app}-v1 on 3 tasks"
        )),
        "{up}"
    );
    all_serve(&fx, 18400, "first version");
    assert_eq!(stable_state(&fx, &app), format!("created {app}"));

    env.write("index.html", "<h1>second version</h1>\n");
    let up2 = wl_ok(&env, &fx, &["up"]).all();
    assert!(
        up2.contains(&format!(
            "Rolling update of the stable service {app} to {app}-v2"
        )),
        "{up2}"
    );
    all_serve(&fx, 18400, "second version");
    assert_eq!(stable_state(&fx, &app), format!("completed {app}"));
    // Still one stable service, next to the deployments' own.
    let services = Fixture::docker(
        &fx.manager,
        &[
            "service",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("label=wayline.release={app}"),
        ],
    );
    assert_eq!(services, std::slice::from_ref(&app));

    let rb = wl_ok(&env, &fx, &["rollback"]).all();
    assert!(
        rb.contains(&format!(
            "Rolling update of the stable service {app} to {app}-v1"
        )),
        "{rb}"
    );
    all_serve(&fx, 18400, "first version");

    // A deployment healthy in its own service but not in the stable one (its health check
    // looks at Swarm's service name): Swarm's gate stops the update, the release fails with
    // Swarm's words and the stable service goes back to v1.
    env.write("index.html", "<h1>third version</h1>\n");
    let picky = deploy.replace(
        "      stop_signal",
        "      env = { SERVICE = \"{{.Service.Name}}\" }\n      health_check {\n        test     = [\"CMD-SHELL\", \"case $SERVICE in *-v3) exit 0;; esac; exit 1\"]\n        interval = \"1s\"\n        retries  = 1\n      }\n      stop_signal",
    );
    project_with(
        &env,
        &app,
        &plain_registry(&fx, &app, "latest"),
        &picky,
        STABLE,
    );
    let bad = crate::swarm::wl(&env, &fx, &["up"], 180);
    let out = bad.all();
    assert!(!bad.success(), "{out}");
    assert!(
        out.contains(&format!(
            "the stable service `{app}` was not moved: Swarm rolled it back ("
        )),
        "{out}"
    );
    assert!(
        out.contains("traffic stays on the previous deployment"),
        "{out}"
    );
    all_serve(&fx, 18400, "first version");

    let destroyed = wl_ok(&env, &fx, &["destroy", "-auto-approve"]).all();
    assert!(
        destroyed.contains(&format!(
            "Removed the stable service {app} (it ran {app}-v1)"
        )),
        "{destroyed}"
    );
    fx.assert_clean(&app, "left behind after destroy");
}
