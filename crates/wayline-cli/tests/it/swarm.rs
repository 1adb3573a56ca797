//! The `docker-swarm` platform on a real three-node swarm (scripts/swarm-fixture.sh, started once
//! per run by `.ci/run`): up through a real registry (plain, and TLS with credentials with the
//! manager reached over TLS with a client certificate), tasks serving on every node, logs, exec and
//! config on every node, redeploy, rollback, a node lost, destroy leaving nothing, and the errors
//! a user sees for an unreachable manager, a node that can't pull and an unplaceable task.
//! Tests take one lock: they share the swarm (and one kills a node).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::common::{Need, Run, TestEnv, eventually, http_get, skip};

static SWARM: Mutex<()> = Mutex::new(());

/// The running fixture, from its env (`.ci/run` exports it) or `swarm-fixture.sh env`.
#[derive(Clone)]
pub struct Fixture {
    pub manager: String,
    /// How `wayline` reaches the manager: `DOCKER_HOST` (and TLS) variables.
    pub docker_env: Vec<(String, String)>,
    pub manager_tls: String,
    pub client_certs: String,
    pub nodes: Vec<String>,
    pub host_ip: String,
    pub node_ips: Vec<String>,
    pub registry: String,
    pub registry_tls: String,
    pub user: String,
    pub password: String,
    pub script: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/swarm-fixture.sh")
}

fn fixture_env() -> Option<std::collections::HashMap<String, String>> {
    let out = Command::new("bash")
        .arg(script())
        .arg("env")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect(),
    )
}

/// The fixture, or `None` (test skipped with the reason printed) when it is not up and
/// `WAYLINE_REQUIRE_SWARM` is not 1 (then the test fails).
pub fn fixture(test: &str) -> Option<Fixture> {
    let missing = if std::env::var_os("WAYLINE_ENTRYPOINT_BINARY").is_none() {
        Some("WAYLINE_ENTRYPOINT_BINARY is not set (scripts/build-entrypoint.sh builds it)")
    } else {
        None
    };
    let env = fixture_env();
    let missing = missing.or_else(|| {
        env.is_none()
            .then_some("the three-node swarm is not up (run `sudo scripts/swarm-fixture.sh up`)")
    });
    if let Some(m) = missing {
        skip(test, Need::Swarm, m);
        return None;
    }
    let e = env.unwrap();
    let words = |k: &str| e[k].split_whitespace().map(str::to_owned).collect();
    Some(Fixture {
        manager: e["WAYLINE_SWARM_MANAGER"].clone(),
        docker_env: vec![("DOCKER_HOST".into(), e["WAYLINE_SWARM_MANAGER"].clone())],
        manager_tls: e["WAYLINE_SWARM_MANAGER_TCP"].clone(),
        client_certs: e["WAYLINE_SWARM_CLIENT_CERTS"].clone(),
        nodes: words("WAYLINE_SWARM_NODES"),
        host_ip: e["WAYLINE_SWARM_HOST_IP"].clone(),
        node_ips: words("WAYLINE_SWARM_NODE_IPS"),
        registry: e["WAYLINE_SWARM_REGISTRY"].clone(),
        registry_tls: e["WAYLINE_SWARM_REGISTRY_TLS"].clone(),
        user: e["WAYLINE_SWARM_REGISTRY_USER"].clone(),
        password: e["WAYLINE_SWARM_REGISTRY_PASSWORD"].clone(),
        script: script(),
    })
}

impl Fixture {
    /// The same swarm, its manager reached as a remote engine: tcp with TLS and the client
    /// certificate, the Docker CLI's variables.
    pub fn over_tls(&self) -> Self {
        let mut fx = self.clone();
        fx.docker_env = vec![
            ("DOCKER_HOST".into(), self.manager_tls.clone()),
            ("DOCKER_TLS_VERIFY".into(), "1".into()),
            ("DOCKER_CERT_PATH".into(), self.client_certs.clone()),
        ];
        fx
    }

    /// `docker -H <node> args…`, its stdout lines.
    pub fn docker(host: &str, args: &[&str]) -> Vec<String> {
        let out = Command::new("docker")
            .arg("-H")
            .arg(host)
            .args(args)
            .output()
            .expect("docker");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn fixture_cmd(&self, args: &[&str]) {
        let st = Command::new("bash")
            .arg(&self.script)
            .args(args)
            .status()
            .expect("fixture");
        assert!(st.success(), "swarm-fixture.sh {args:?} failed");
    }

    /// Nothing of `app` remains on any node within a minute (a worker removes a container a
    /// moment after Swarm dropped its task; a node that was down, once it is back).
    pub fn assert_clean(&self, app: &str, what: &str) {
        let mut left = Vec::new();
        let clean = eventually(Duration::from_mins(1), || {
            left = self.leftovers(app);
            left.is_empty()
        });
        assert!(clean, "{what}: {left:?}");
    }

    /// What remains of `app` anywhere: services on the manager, containers on every node.
    pub fn leftovers(&self, app: &str) -> Vec<String> {
        let label = format!("label=wayline.app={app}");
        let mut left = Self::docker(&self.manager, &["service", "ls", "-q", "--filter", &label]);
        for n in &self.nodes {
            left.extend(Self::docker(n, &["ps", "-aq", "--filter", &label]));
        }
        left
    }
}

/// A Wayline server on the fixture's bridge address (tasks on every node reach it), with a
/// context in `env`'s home; killed on drop.
pub struct SwarmServer {
    child: Child,
    data_dir: PathBuf,
}

impl SwarmServer {
    pub fn start(env: &TestEnv, fx: &Fixture) -> Self {
        let port = std::net::TcpListener::bind((fx.host_ip.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("{}:{port}", fx.host_ip);
        let home = env.home.path();
        std::fs::create_dir_all(home.join("sock")).unwrap();
        let child = env
            .cmd(&[
                "server",
                "run",
                "--data-dir",
                &home.join("srv").display().to_string(),
                "--listen-grpc",
                &addr,
                "--listen-http",
                "127.0.0.1:0",
                "--listen-url",
                "127.0.0.1:0",
                "--listen-unix",
                &home.join("sock/server.sock").display().to_string(),
                "--advertise-addr",
                &addr,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server");
        let server = Self {
            child,
            data_dir: home.join("srv"),
        };
        let mut last = String::new();
        let up = eventually(Duration::from_secs(20), || {
            let r = env.run(&[
                "server",
                "bootstrap",
                "--server-addr",
                &addr,
                "--server-tls-skip-verify",
                "--context-create",
                "swarm",
            ]);
            last = r.all();
            r.success()
        });
        assert!(up, "server on {addr} never bootstrapped: {last}");
        server
    }
}

impl SwarmServer {
    /// Waits until the URL service answers `host` with `want` (the release's and each
    /// deployment's host, proxied to the address the platform reported).
    pub fn url_serves(&self, host: &str, want: &str) {
        let addr = std::fs::read_to_string(self.data_dir.join("url.addr")).expect("url.addr");
        crate::urls::serves(addr.trim().parse().unwrap(), host, want);
    }
}

impl Drop for SwarmServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every test starts with: the fixture (or `None`: skipped), the lock on the shared swarm,
/// a test env, and a server the tasks can reach.
pub fn begin(test: &str) -> Option<(Fixture, MutexGuard<'static, ()>, TestEnv, SwarmServer)> {
    let fx = fixture(test)?;
    let lock = SWARM.lock().unwrap_or_else(PoisonError::into_inner);
    // With the URL service: a swarm app with no release stanza is released through it.
    let env = TestEnv::with_urls();
    let server = SwarmServer::start(&env, &fx);
    Some((fx, lock, env, server))
}

/// Runs `wayline` with DOCKER_HOST at the manager, at most `secs`.
pub fn wl(env: &TestEnv, fx: &Fixture, args: &[&str], secs: u64) -> Run {
    let child = env
        .cmd(args)
        .envs(fx.docker_env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wayline");
    Run::wait(child, Duration::from_secs(secs), args)
}

pub fn wl_ok(env: &TestEnv, fx: &Fixture, args: &[&str]) -> Run {
    let r = wl(env, fx, args, 180);
    assert!(
        r.success(),
        "`wayline {}` failed:\n{}",
        args.join(" "),
        r.all()
    );
    r
}

/// Destroys the app when the test ends, also when it fails, and checks nothing is left.
pub struct Cleanup<'a> {
    pub env: &'a TestEnv,
    pub fx: &'a Fixture,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = wl(self.env, self.fx, &["destroy", "-auto-approve"], 120);
    }
}

pub fn project(env: &TestEnv, app: &str, registry: &str, deploy: &str) {
    project_with(env, app, registry, deploy, "");
}

/// The busybox example pushed by `registry`, deployed by `deploy`, with `release` (a whole
/// `release {}` stanza, or nothing).
pub fn project_with(env: &TestEnv, app: &str, registry: &str, deploy: &str, release: &str) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox-docker");
    std::fs::copy(example.join("Dockerfile"), env.project.join("Dockerfile")).unwrap();
    std::fs::copy("/usr/bin/busybox", env.project.join("busybox"))
        .expect("busybox-static at /usr/bin/busybox");
    env.write("index.html", "<h1>first version</h1>\n");
    env.write(
        "wayline.hcl",
        &format!(
            "project = \"swarme2e\"\n\napp \"{app}\" {{\n  build {{\n    use \"docker\" {{}}\n    registry {{\n{registry}\n    }}\n  }}\n  deploy {{\n{deploy}\n  }}\n{release}\n}}\n"
        ),
    );
}

/// The `registry {}` body pushing `app:tag` to the fixture's plain-HTTP registry.
pub fn plain_registry(fx: &Fixture, app: &str, tag: &str) -> String {
    format!(
        "      use \"docker\" {{\n        image    = \"{}/e2e/{app}\"\n        tag      = \"{tag}\"\n        insecure = true\n      }}",
        fx.registry
    )
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}", nanos % 100_000)
}

/// Every node serves `want` on `port`.
pub fn all_serve(fx: &Fixture, port: u16, want: &str) {
    for ip in &fx.node_ips {
        let url = format!("http://{ip}:{port}/");
        let mut last = None;
        let ok = eventually(Duration::from_secs(30), || {
            last = http_get(&url);
            last.as_deref().is_some_and(|b| b.contains(want))
        });
        assert!(ok, "{url} never served `{want}`; last: {last:?}");
    }
}

fn host_mode_deploy(replicas: u32, port: u16, extra: &str) -> String {
    format!(
        "    use \"docker-swarm\" {{\n      replicas      = {replicas}\n      service_port  = 3000\n      endpoint_mode = \"dnsrr\"\n      ports {{\n        target    = 3000\n        published = {port}\n        mode      = \"host\"\n      }}\n{extra}\n    }}"
    )
}

pub fn nodes_of(fx: &Fixture, service: &str) -> Vec<String> {
    let mut nodes = Fixture::docker(
        &fx.manager,
        &[
            "service",
            "ps",
            service,
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}} {{.CurrentState}}",
        ],
    );
    nodes.retain(|l| l.contains("Running"));
    let mut names: Vec<String> = nodes
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[test]
fn swarm_up_logs_exec_config_redeploy_rollback_destroy() {
    let Some((fx, _lock, env, server)) =
        begin("swarm_up_logs_exec_config_redeploy_rollback_destroy")
    else {
        return;
    };
    let app = unique("sw");
    let port = 18100;
    let registry = plain_registry(&fx, &app, "latest");
    project(
        &env,
        &app,
        &registry,
        &host_mode_deploy(3, port, "      stop_signal = \"SIGTERM\""),
    );
    let _cleanup = Cleanup { env: &env, fx: &fx };

    let up = wl_ok(&env, &fx, &["up"]);
    let out = up.all();
    assert!(
        out.contains(&format!(
            "Creating service {app}-v1 (3 × {}/e2e/{app}@sha256:",
            fx.registry
        )),
        "{out}"
    );
    assert_eq!(
        nodes_of(&fx, &format!("{app}-v1")),
        ["swl-n1", "swl-n2", "swl-n3"],
        "{out}"
    );
    all_serve(&fx, port, "first version");
    // With no release stanza the URL service releases it: the app's host and v1's.
    server.url_serves(&format!("{app}.localhost"), "first version");
    server.url_serves(&format!("{app}--v1.localhost"), "first version");

    // Logs come from every task, each line's instance naming task and node.
    let mut logs = String::new();
    let all_nodes = eventually(Duration::from_secs(30), || {
        logs = wl(&env, &fx, &["logs", "-follow=false"], 30).all();
        ["@swl-n1", "@swl-n2", "@swl-n3"]
            .iter()
            .all(|n| logs.contains(n))
    });
    assert!(all_nodes, "logs did not name all three nodes:\n{logs}");

    // Exec into the task on worker swl-n2 (through its entrypoint's connection to the server).
    let instance = logs
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("instance="))
        .find(|i| i.ends_with("@swl-n2"))
        .expect("an instance on swl-n2")
        .to_owned();
    let exec = wl_ok(
        &env,
        &fx,
        &["exec", "-instance", &instance, "--", "cat", "/etc/hostname"],
    );
    let container = Fixture::docker(
        &fx.nodes[1],
        &["ps", "-q", "--filter", &format!("label=wayline.app={app}")],
    );
    assert!(
        container
            .iter()
            .any(|c| exec.stdout().trim().starts_with(c.as_str())),
        "exec ran in {:?}, not the task on swl-n2 ({container:?})",
        exec.stdout()
    );

    // A config change restarts the app in every task with the new env.
    wl_ok(&env, &fx, &["config", "set", "GREETING=hello-swarm"]);
    for node in ["@swl-n1", "@swl-n2", "@swl-n3"] {
        let inst = logs
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("instance="))
            .find(|i| i.ends_with(node))
            .unwrap()
            .to_owned();
        let mut last = String::new();
        let ok = eventually(Duration::from_secs(30), || {
            last = wl(
                &env,
                &fx,
                &[
                    "exec",
                    "-instance",
                    &inst,
                    "--",
                    "sh",
                    "-c",
                    "echo $GREETING",
                ],
                30,
            )
            .all();
            last.contains("hello-swarm")
        });
        assert!(ok, "{inst} never saw GREETING: {last}");
    }

    // A second deployment takes the published port (v1 is scaled to 0), then rollback.
    env.write("index.html", "<h1>second version</h1>\n");
    let up2 = wl_ok(&env, &fx, &["up"]);
    assert!(
        up2.all()
            .contains(&format!("Scaled {app}-v1 to 0 to free its published ports")),
        "{}",
        up2.all()
    );
    all_serve(&fx, port, "second version");
    server.url_serves(&format!("{app}.localhost"), "second version");
    server.url_serves(&format!("{app}--v2.localhost"), "second version");
    let rb = wl_ok(&env, &fx, &["rollback"]);
    assert!(
        rb.all()
            .contains(&format!("Scaled {app}-v1 back to 3 running tasks")),
        "{}",
        rb.all()
    );
    all_serve(&fx, port, "first version");
    server.url_serves(&format!("{app}.localhost"), "first version");
    let status = wl_ok(&env, &fx, &["status", "-app", &app]).all();
    assert!(status.contains("ready"), "{status}");

    let destroyed = wl_ok(&env, &fx, &["destroy", "-auto-approve"]);
    assert!(
        destroyed
            .all()
            .contains(&format!("Removed service {app}-v2")),
        "{}",
        destroyed.all()
    );
    fx.assert_clean(&app, "left behind after destroy");
}

#[test]
fn swarm_up_through_the_tls_registry_with_credentials() {
    let Some((fx, _lock, env, _server)) =
        begin("swarm_up_through_the_tls_registry_with_credentials")
    else {
        return;
    };
    // The manager as a remote engine: build, push and deploy all go over TLS with the client
    // certificate (DOCKER_HOST=tcp://…:2376, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH).
    let fx = fx.over_tls();
    let app = unique("swtls");
    let port = 18200;
    let auth = format!(
        "auth {{\n          username = \"{}\"\n          password = \"{}\"\n        }}",
        fx.user, fx.password
    );
    let registry = format!(
        "      use \"docker\" {{\n        image = \"{}/e2e/{app}\"\n        tag   = \"1\"\n        {auth}\n      }}",
        fx.registry_tls
    );
    project(
        &env,
        &app,
        &registry,
        &host_mode_deploy(3, port, &format!("      {auth}")),
    );
    let _cleanup = Cleanup { env: &env, fx: &fx };
    let up = wl_ok(&env, &fx, &["up"]);
    let out = up.all();
    assert!(
        out.contains(&format!("Pushed {}/e2e/{app}:1", fx.registry_tls)),
        "{out}"
    );
    assert!(out.contains("Digest sha256:"), "{out}");
    assert_eq!(
        nodes_of(&fx, &format!("{app}-v1")),
        ["swl-n1", "swl-n2", "swl-n3"],
        "{out}"
    );
    all_serve(&fx, port, "first version");
    let artifacts = wl_ok(&env, &fx, &["artifact", "list", "-json"]).stdout();
    assert!(
        artifacts.contains("\"digest\": \"sha256:"),
        "artifact list shows no digest: {artifacts}"
    );
    let table = wl_ok(&env, &fx, &["artifact", "list"]).stdout();
    assert!(
        table.contains("DIGEST") && table.contains("sha256:"),
        "{table}"
    );
    wl_ok(&env, &fx, &["destroy", "-auto-approve"]);
    fx.assert_clean(&app, "left behind after destroy");
}

/// `wayline up` fails with `want` in its output, and leaves no service behind.
fn up_fails(env: &TestEnv, fx: &Fixture, app: &str, want: &str, within: Duration) {
    let started = std::time::Instant::now();
    let r = wl(env, fx, &["up"], 120);
    let out = r.all();
    assert!(!r.success(), "up succeeded:\n{out}");
    assert!(out.contains(want), "expected `{want}` in:\n{out}");
    assert!(
        started.elapsed() < within,
        "took {:?} (> {within:?}):\n{out}",
        started.elapsed()
    );
    fx.assert_clean(app, "a failed deploy left things behind");
}

#[test]
fn swarm_bad_input_fails_with_the_reason() {
    let Some((fx, _lock, env, _server)) = begin("swarm_bad_input_fails_with_the_reason") else {
        return;
    };
    let app = unique("swbad");
    let _cleanup = Cleanup { env: &env, fx: &fx };
    let plain = plain_registry(&fx, &app, "1");
    // A placement nobody satisfies: Swarm's reason at once, not a timeout.
    let nowhere =
        "      placement {\n        constraints = [\"node.labels.zone == nowhere\"]\n      }";
    project(&env, &app, &plain, &host_mode_deploy(2, 18300, nowhere));
    up_fails(
        &env,
        &fx,
        &app,
        "no suitable node (scheduling constraints not satisfied on 3 nodes)",
        Duration::from_secs(40),
    );
    // The workers can't pull: the TLS registry needs credentials the deploy doesn't give.
    let tls = format!(
        "      use \"docker\" {{\n        image = \"{}/e2e/{app}\"\n        tag   = \"1\"\n        auth {{\n          username = \"{}\"\n          password = \"{}\"\n        }}\n      }}",
        fx.registry_tls, fx.user, fx.password
    );
    project(&env, &app, &tls, &host_mode_deploy(3, 18300, ""));
    up_fails(&env, &fx, &app, "rejected on swl-n", Duration::from_mins(1));
    // An unreachable manager.
    let gone = "      host = \"tcp://10.77.0.99:2375\"";
    project(&env, &app, &plain, &host_mode_deploy(1, 18300, gone));
    up_fails(
        &env,
        &fx,
        &app,
        "tcp://10.77.0.99:2375",
        Duration::from_mins(1),
    );
    // A local-only image on a three-node swarm.
    let local = format!(
        "      use \"docker\" {{\n        image = \"local/{app}\"\n        tag   = \"1\"\n        local = true\n      }}"
    );
    project(&env, &app, &local, &host_mode_deploy(1, 18300, ""));
    up_fails(
        &env,
        &fx,
        &app,
        "exists only in the local engine, so the swarm's other 2 nodes can't pull it",
        Duration::from_mins(1),
    );
}

#[test]
fn swarm_a_lost_node_s_tasks_move_to_the_others() {
    let Some((fx, _lock, env, _server)) = begin("swarm_a_lost_node_s_tasks_move_to_the_others")
    else {
        return;
    };
    let app = unique("swkill");
    let registry = plain_registry(&fx, &app, "1");
    // No fixed published port: a moved task must be able to share a node with another.
    let deploy = "    use \"docker-swarm\" {\n      replicas     = 3\n      stop_signal  = \"SIGTERM\"\n      placement {\n        max_replicas_per_node = 2\n      }\n    }";
    project(&env, &app, &registry, deploy);
    let _cleanup = Cleanup { env: &env, fx: &fx };
    /// Starts node 3 again when the test ends, also when it fails, so later tests have three.
    struct Revive<'a>(&'a Fixture);
    impl Drop for Revive<'_> {
        fn drop(&mut self) {
            self.0.fixture_cmd(&["start-node", "3"]);
        }
    }
    wl_ok(&env, &fx, &["up"]);
    let service = format!("{app}-v1");
    assert_eq!(nodes_of(&fx, &service), ["swl-n1", "swl-n2", "swl-n3"]);
    let before = wl_ok(&env, &fx, &["status", "-app", &app]).stdout();
    assert!(
        before.contains(&format!("{app}: 3 of 3 tasks running\n")),
        "{before}"
    );
    for node in ["swl-n1", "swl-n2", "swl-n3"] {
        assert!(
            before.contains(&format!(" running on {node} (ready)")),
            "{before}"
        );
    }
    let revive = Revive(&fx);
    fx.fixture_cmd(&["kill-node", "3"]);
    let mut nodes = Vec::new();
    let moved = eventually(Duration::from_mins(1), || {
        nodes = nodes_of(&fx, &service);
        nodes.len() == 3 && !nodes.iter().any(|n| n == "swl-n3")
    });
    assert!(moved, "tasks did not move off swl-n3: {nodes:?}");
    // `status` says what happened: each current task with its state and node, the node that
    // is down and the tasks that were on it.
    let mut status = String::new();
    let said = eventually(Duration::from_secs(30), || {
        status = wl_ok(&env, &fx, &["status", "-app", &app]).stdout();
        status.contains(&format!(
            "{app}: 3 of 3 tasks running; node swl-n3 is down; replaced: {service}."
        ))
    });
    assert!(said, "status does not say: {status}");
    let tasks: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("  task "))
        .collect();
    assert_eq!(tasks.len(), 3, "{status}");
    for t in &tasks {
        assert!(
            t.contains(" running on swl-n1 (ready)") || t.contains(" running on swl-n2 (ready)"),
            "{status}"
        );
    }
    assert!(status.contains("on swl-n3 (node down)"), "{status}");
    // Releasing again says the same (the platform's status message).
    let release = wl_ok(&env, &fx, &["release"]).all();
    assert!(
        release.contains("3 of 3 tasks running; node swl-n3 is down"),
        "release does not say: {release}"
    );
    wl_ok(&env, &fx, &["destroy", "-auto-approve"]);
    drop(revive);
    fx.assert_clean(&app, "left behind after destroy (node 3 back)");
}
