//! A server killed with SIGKILL in the middle of `wayline up` (the embedded default server):
//! the job's writes wait for it, the job ends with a state, `destroy` leaves nothing behind;
//! and with the server gone for good, `up` says so after its bounded wait.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, docker_ready, eventually};

/// Kills the user's embedded server with SIGKILL and waits until it is gone.
fn kill_embedded_server(env: &TestEnv) {
    let pid_file = env.home.path().join("data/wayline/server/server.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .expect("the embedded server's pid file")
        .trim()
        .to_owned();
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        eventually(Duration::from_secs(10), || !std::path::Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))),
        "server {pid} did not die"
    );
}

/// Lines a child writes, collected on a thread as they come.
#[derive(Clone)]
struct Lines(Arc<Mutex<String>>);

impl Lines {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
    fn contains(&self, s: &str) -> bool {
        self.0.lock().unwrap().contains(s)
    }
}

fn lines_of(pipe: impl Read + Send + 'static) -> Lines {
    let lines = Lines(Arc::default());
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.0.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    lines
}

fn docker_ids(filter: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Removes the containers and networks labelled with an app, also when a test fails.
struct DockerLeftovers(String);

impl Drop for DockerLeftovers {
    fn drop(&mut self) {
        let filter = format!("label=wayline.app={}", self.0);
        let ids = docker_ids(&filter);
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
        for net in docker_networks(&filter) {
            let _ = Command::new("docker")
                .args(["network", "rm", &net])
                .output();
        }
    }
}

fn docker_networks(filter: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["network", "ls", "-q", "--filter", filter])
        .output()
        .expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn busybox_app(env: &TestEnv, app: &str) {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox-docker");
    for f in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(example.join(f), env.project.join(f)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", env.project.join("busybox"))
        .expect("busybox-static at /usr/bin/busybox");
    env.write("index.html", "<h1>crash</h1>\n");
    // The deploy's before-hook marks when the server may be killed: the deployment is recorded,
    // the container is not created yet.
    env.write(
        "wayline.hcl",
        &format!(
            r#"project = "crash"

app "{app}" {{
  build {{
    use "docker" {{
      disable_entrypoint = true
    }}
  }}
  deploy {{
    use "docker" {{
      service_port = 3000
    }}
    hook {{
      when    = "before"
      command = ["sh", "-c", "touch deploy-started; sleep 2"]
    }}
  }}
}}
"#
        ),
    );
}

#[test]
fn a_server_killed_mid_up_leaves_no_container_after_destroy() {
    if !docker_ready("a_server_killed_mid_up_leaves_no_container_after_destroy") {
        return;
    }
    let env = TestEnv::new();
    let app = format!("crash{}", std::process::id());
    busybox_app(&env, &app);
    // Start the embedded server before `up`, so the kill below hits a server of this test.
    env.ok(&["project", "list"]);
    let mut up = env
        .cmd(&["up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines_of(up.stderr.take().unwrap());
    let stdout = lines_of(up.stdout.take().unwrap());
    let marker = env.project.join("deploy-started");
    assert!(
        eventually(Duration::from_mins(2), || marker.exists()),
        "the deploy never started"
    );
    kill_embedded_server(&env);
    // The runner declares each container to the server before it creates it, so with the
    // server down it holds on to that write, retrying, instead of creating a container the
    // server would never hear of.
    let label = format!("label=wayline.app={app}");
    assert!(
        eventually(Duration::from_mins(1), || stderr
            .contains("the server is unreachable")),
        "the runner never retried:\n{}",
        stderr.text()
    );
    // Any command starts the server again.
    env.ok(&["project", "list"]);
    let status = up.wait().unwrap();
    assert!(
        status.success(),
        "the job finished once the server was back\nstdout:\n{}\nstderr:\n{}",
        stdout.text(),
        stderr.text()
    );

    let r = env.ok(&["deployment", "list", "-json"]);
    let deployments: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let states: Vec<String> = deployments
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        states.iter().all(|s| s != "running"),
        "a deployment stayed running: {deployments}"
    );
    assert!(
        !docker_ids(&label).is_empty(),
        "the deploy created its container once the server was back"
    );

    env.ok(&["destroy", "-auto-approve"]);
    assert!(
        docker_ids(&label).is_empty(),
        "containers left after destroy"
    );
}

#[test]
fn up_gives_up_after_its_server_wait_when_the_server_stays_down() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        r#"project = "gone"

app "api" {
  build {
    use "null" {}
    hook {
      when    = "before"
      command = ["sh", "-c", "touch build-started; sleep 1"]
    }
  }
  deploy {
    use "null" {}
  }
}
"#,
    );
    env.ok(&["project", "list"]);
    let up = env
        .cmd(&["up", "-server-wait", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let marker = env.project.join("build-started");
    assert!(
        eventually(Duration::from_mins(1), || marker.exists()),
        "the build never started"
    );
    kill_embedded_server(&env);
    let killed = Instant::now();
    let out = up.wait_with_output().unwrap();
    let waited = killed.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "stderr:\n{stderr}");
    assert!(
        stderr.contains("the server did not come back within 3s"),
        "stderr:\n{stderr}"
    );
    assert!(waited < Duration::from_secs(20), "took {waited:?}");
}

/// Tick numbers in `text` (lines `tick N`).
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("tick ")?.parse().ok())
        .collect()
}

#[test]
fn logs_and_exec_come_back_within_seconds_of_a_server_restart() {
    if !docker_ready("logs_and_exec_come_back_within_seconds_of_a_server_restart") {
        return;
    }
    let env = TestEnv::new();
    let app = format!("restart{}", std::process::id());
    std::fs::copy("/usr/bin/busybox", env.project.join("busybox"))
        .expect("busybox-static at /usr/bin/busybox");
    env.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"i=0; while true; do i=$((i+1)); echo tick $i; /bin/busybox sleep 0.2; done\"]\n",
    );
    env.write(
        "wayline.hcl",
        &format!(
            "project = \"restart\"\n\napp \"{app}\" {{\n  build {{\n    use \"docker\" {{}}\n  }}\n  deploy {{\n    use \"docker\" {{}}\n  }}\n}}\n"
        ),
    );
    env.ok(&["up"]);
    let logs = || {
        env.run_for(&["logs", "-follow=false"], Duration::from_secs(20))
            .stdout()
    };
    assert!(
        eventually(Duration::from_secs(30), || !ticks(&logs()).is_empty()),
        "no app lines before the restart:\n{}",
        logs()
    );
    let mut follow = env
        .cmd(&["logs", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let followed = lines_of(follow.stdout.take().unwrap());
    let follow_err = lines_of(follow.stderr.take().unwrap());
    assert!(
        eventually(Duration::from_secs(20), || !ticks(&followed.text())
            .is_empty()),
        "`logs -f` showed nothing"
    );

    env.ok(&["server", "stop"]);
    let after_stop = ticks(&followed.text()).into_iter().max().unwrap_or(0);
    // Any command starts the server again; it has a new socket in the mounted directory.
    env.ok(&["project", "list"]);
    let limit = Duration::from_secs(5);
    assert!(
        eventually(limit, || ticks(&logs()).iter().any(|t| *t > after_stop)),
        "no new lines within {limit:?} of the restart:\n{}",
        logs()
    );
    assert!(
        eventually(limit, || env
            .run_for(
                &["exec", "--", "/bin/busybox", "echo", "exec-ok"],
                Duration::from_secs(10)
            )
            .stdout()
            .contains("exec-ok")),
        "`exec` did not work again"
    );
    // `logs -f` reconnected and goes on with new lines.
    assert!(
        eventually(Duration::from_secs(15), || ticks(&followed.text())
            .iter()
            .any(|t| *t > after_stop + 5)),
        "`logs -f` did not survive the restart:\nstdout:\n{}\nstderr:\n{}",
        followed.text(),
        follow_err.text()
    );
    assert!(
        follow.try_wait().unwrap().is_none(),
        "`logs -f` exited: {}",
        follow_err.text()
    );
    let _ = follow.kill();
    let _ = follow.wait();
    env.ok(&["destroy", "-auto-approve"]);
}

#[test]
fn a_runner_killed_mid_deploy_fails_its_job_and_destroy_still_finds_its_container_and_network() {
    if !docker_ready(
        "a_runner_killed_mid_deploy_fails_its_job_and_destroy_still_finds_its_container_and_network",
    ) {
        return;
    }
    let env = TestEnv::new();
    let app = format!("halfway{}", std::process::id());
    let _leftovers = DockerLeftovers(app.clone());
    std::fs::copy("/usr/bin/busybox", env.project.join("busybox"))
        .expect("busybox-static at /usr/bin/busybox");
    // The app never listens, so deploy waits for its port: the window in which the network and
    // the container exist and deploy has not returned. Each was declared to the server before
    // it was created, so destroy finds both.
    env.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"600\"]\n",
    );
    env.write(
        "wayline.hcl",
        &format!(
            "project = \"halfway\"\n\napp \"{app}\" {{\n  build {{\n    use \"docker\" {{\n      disable_entrypoint = true\n    }}\n  }}\n  deploy {{\n    use \"docker\" {{\n      networks = [\"{app}-net\"]\n    }}\n  }}\n}}\n"
        ),
    );
    env.ok(&["project", "list"]);
    let mut up = env
        .cmd(&["up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let label = format!("label=wayline.app={app}");
    // The deployment's container (the build's intermediate ones carry the app label too): the
    // network was created before it.
    let deployed = || {
        Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &label,
                "--filter",
                "label=wayline.deployment-id",
            ])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    };
    assert!(
        eventually(Duration::from_mins(2), deployed),
        "no container was created"
    );
    // The CLI is the runner: killing it kills the job halfway through the deploy.
    up.kill().unwrap();
    up.wait().unwrap();

    // Destroy waits for the dead job (deploys and destroys of an app run one at a time), which
    // the server fails with a reason, and then removes the container the record never named.
    assert_eq!(
        docker_networks(&label).len(),
        1,
        "the network exists before destroy"
    );
    env.ok(&["destroy", "-auto-approve"]);
    assert!(
        docker_ids(&label).is_empty(),
        "containers left after destroy"
    );
    assert!(
        docker_networks(&label).is_empty(),
        "the network the dead deploy created is left after destroy"
    );
    let r = env.ok(&["job", "list", "-json"]);
    let jobs: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["operation"] == "up")
        .expect("the up job")
        .clone();
    assert_eq!(job["state"], "error", "{job}");
    assert!(
        job["error"].as_str().unwrap_or_default().contains("runner"),
        "the reason names the runner: {job}"
    );
    let r = env.ok(&["deployment", "list", "-json"]);
    let deployments: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert!(
        deployments
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] != "running"),
        "{deployments}"
    );
}
