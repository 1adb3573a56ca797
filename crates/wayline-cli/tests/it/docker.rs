//! The Docker lifecycle through the real CLI: a `FROM scratch` busybox image built, deployed,
//! served over HTTP, redeployed, rolled back and destroyed without leftovers.

use std::process::Command;
use std::time::Duration;

use crate::common::{TestEnv, docker_ready, eventually, http_get};

fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker").args(args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn live_url(env: &TestEnv) -> String {
    let r = env.ok(&["release", "list", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["live"] == true)
        .expect("a live release")["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn page(url: &str) -> String {
    let mut body = String::new();
    assert!(
        eventually(Duration::from_secs(20), || match http_get(url) {
            Some(b) => {
                body = b;
                true
            }
            None => false,
        }),
        "{url} never answered"
    );
    body
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[test]
fn busybox_up_redeploy_rollback_destroy() {
    if !docker_ready("busybox_up_redeploy_rollback_destroy") {
        return;
    }
    let env = TestEnv::new();
    let app = format!("e2e{}", unique_suffix());
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox-docker");
    for f in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(example.join(f), env.project.join(f)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", env.project.join("busybox"))
        .expect("busybox-static at /usr/bin/busybox");
    env.write("index.html", "<h1>first version</h1>\n");
    env.write(
        "wayline.hcl",
        &format!(
            r#"project = "dockere2e"

app "{app}" {{
  build {{
    use "docker" {{}}
    registry {{
      use "docker" {{
        image = "wayline-e2e/{app}"
        tag   = "latest"
        local = true
      }}
    }}
  }}
  deploy {{
    use "docker" {{
      service_port = 3000
    }}
  }}
}}
"#
        ),
    );

    let up = env.ok(&["up"]);
    // The builder says which builder ran (this engine offers BuildKit), and its steps show.
    let out = up.stdout();
    assert!(out.contains("Building image with BuildKit"), "{out}");
    assert!(out.contains("[1/3] COPY busybox /bin/busybox"), "{out}");
    let first = live_url(&env);
    assert!(page(&first).contains("first version"));

    env.write("index.html", "<h1>second version</h1>\n");
    env.ok(&["up"]);
    let second = live_url(&env);
    assert!(page(&second).contains("second version"));

    let r = env.ok(&["logs", "-follow=false"]);
    assert!(
        r.stdout().contains("[entrypoint]"),
        "entrypoint lines reach `wayline logs`: {}",
        r.all()
    );
    let r = env.ok(&["exec", "--", "/bin/busybox", "cat", "/www/index.html"]);
    assert!(r.stdout().contains("second version"), "{}", r.all());
    // The README's suggestion works on its own example: the image has busybox's applets.
    let r = env.ok(&["exec", "--", "ls", "/"]);
    assert!(r.stdout().contains("www"), "{}", r.all());
    // An instance id prefix (as short as lists print) picks the instance.
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["status", "-json"]).stdout()).unwrap();
    let instance = status[0]["instances"][0]["id"].as_str().unwrap().to_owned();
    let r = env.ok(&["exec", "-instance", &instance[..12], "--", "ls", "/www"]);
    assert_eq!(r.stdout(), "index.html\n", "{}", r.all());
    // The remote command's flags are its own (this printed `--version`).
    let r = env.ok(&["exec", "/bin/busybox", "echo", "-version"]);
    assert_eq!(r.stdout(), "-version\n", "{}", r.all());

    let r = env.ok(&["rollback"]);
    assert!(
        r.stdout()
            .contains(&format!("of artifact `wayline-e2e/{app}:latest`")),
        "a rollback names the image it deploys: {}",
        r.all()
    );
    assert_eq!(live_url(&env), first);
    assert!(page(&first).contains("first version"));

    // A container that exits shows as down, whatever its last report said.
    let releases: serde_json::Value =
        serde_json::from_str(&env.ok(&["release", "list", "-json"]).stdout()).unwrap();
    let live = releases
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["live"] == true)
        .unwrap();
    let by_deployment = format!(
        "label=wayline.deployment-id={}",
        live["deployment_id"].as_str().unwrap()
    );
    let containers = docker_lines(&["ps", "-q", "--filter", &by_deployment]);
    assert_eq!(containers.len(), 1, "one container for the live deployment");
    docker_lines(&["stop", "-t", "1", &containers[0]]);
    let health = || {
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(&["status", "-json"]).stdout()).unwrap();
        v[0]["health"].as_str().unwrap_or_default().to_owned()
    };
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(20), || health() == "down"),
        "status after the container stopped: {}",
        env.ok(&["status"]).stdout()
    );

    env.ok(&["destroy", "-auto-approve"]);
    assert_eq!(health(), "destroyed");
    // The local-only image went with it: a rollback says so instead of pulling from a registry.
    let r = env.run(&["rollback", "-to", "v1"]);
    assert!(!r.success());
    assert!(
        r.all().contains("there is nothing to deploy again"),
        "{}",
        r.all()
    );
    let label = format!("label=wayline.app={app}");
    assert!(
        docker_lines(&["ps", "-aq", "--filter", &label]).is_empty(),
        "containers left"
    );
    assert!(
        docker_lines(&["network", "ls", "-q", "--filter", &label]).is_empty(),
        "networks left"
    );
    let images = docker_lines(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let ours: Vec<_> = images.iter().filter(|i| i.contains(&app)).collect();
    assert!(ours.is_empty(), "image tags left: {ours:?}");
}

#[test]
fn a_container_that_exits_at_once_fails_the_deploy_with_its_output() {
    if !docker_ready("a_container_that_exits_at_once_fails_the_deploy_with_its_output") {
        return;
    }
    let env = TestEnv::new();
    let app = format!("dies{}", unique_suffix());
    std::fs::copy("/usr/bin/busybox", env.project.join("busybox")).unwrap();
    env.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo missing DATABASE_URL >&2; exit 3\"]\n",
    );
    env.write(
        "wayline.hcl",
        &format!("project = \"dies\"\n\napp \"{app}\" {{\n  build {{\n    use \"docker\" {{\n      disable_entrypoint = true\n    }}\n  }}\n  deploy {{\n    use \"docker\" {{}}\n  }}\n}}\n"),
    );
    let r = env.run(&["up"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.stderr().contains("missing DATABASE_URL"),
        "the container's last lines are shown: {}",
        r.all()
    );
    env.ok(&["destroy", "-auto-approve"]);
    assert!(
        docker_lines(&["ps", "-aq", "--filter", &format!("label=wayline.app={app}")]).is_empty()
    );
}

/// A unique suffix for names shared on the Docker engine (the clock's low digits).
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:08x}", (nanos & 0xffff_ffff) as u32)
}

/// Removes an app's containers, also when a test fails.
struct RemoveContainers(String);

impl Drop for RemoveContainers {
    fn drop(&mut self) {
        let label = format!("label=wayline.app={}", self.0);
        let ids = docker_lines(&["ps", "-aq", "--filter", &label]);
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

#[test]
fn an_exited_container_without_the_entrypoint_shows_as_down() {
    if !docker_ready("an_exited_container_without_the_entrypoint_shows_as_down") {
        return;
    }
    let env = TestEnv::new();
    let app = format!("noep{}", unique_suffix());
    let _cleanup = RemoveContainers(app.clone());
    std::fs::copy("/usr/bin/busybox", env.project.join("busybox")).unwrap();
    env.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"3000\"]\n",
    );
    env.write(
        "wayline.hcl",
        &format!("project = \"noep\"\n\napp \"{app}\" {{\n  build {{\n    use \"docker\" {{\n      disable_entrypoint = true\n    }}\n  }}\n  deploy {{\n    use \"docker\" {{}}\n  }}\n}}\n"),
    );
    env.ok(&["up"]);
    let health = || {
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(&["status", "-json"]).stdout()).unwrap();
        v[0]["health"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(health(), "ready");
    let label = format!("label=wayline.app={app}");
    let running = docker_lines(&["ps", "-q", "--filter", &label]);
    assert_eq!(running.len(), 1, "one running container");
    docker_lines(&["stop", "-t", "1", &running[0]]);
    // No entrypoint ever connected, and the last report (made at deploy) said ready: the
    // platform's own check says the container exited.
    assert_eq!(health(), "down", "{}", env.ok(&["status"]).stdout());
    env.ok(&["destroy", "-auto-approve"]);
    assert!(docker_lines(&["ps", "-aq", "--filter", &label]).is_empty());
}
