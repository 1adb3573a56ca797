//! The URL service through the real binaries and real Docker: two versions of the busybox
//! example at `<app>--v1.localhost`, `<app>--v2.localhost` and the release at `<app>.localhost`,
//! through the tunnels their entrypoints opened, and a deployment without the entrypoint
//! through the address its platform reported.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::common::{TestEnv, docker_ready, eventually};

/// `GET path` with `Host: host` on `addr` (HTTP/1.0, bounded): status and body.
pub fn get_host(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut out = Vec::new();
    s.take(1 << 20).read_to_end(&mut out).ok()?;
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The embedded server's URL-service address.
pub fn ingress(env: &TestEnv) -> SocketAddr {
    let f = env.home.path().join("data/wayline/server/url.addr");
    let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    text.trim().parse().unwrap()
}

/// Waits until `host` answers 200 with `want` in the body.
pub fn serves(addr: SocketAddr, host: &str, want: &str) -> String {
    let mut last = None;
    let ok = eventually(Duration::from_secs(30), || {
        last = get_host(addr, host, "/");
        last.as_ref()
            .is_some_and(|(s, b)| *s == 200 && b.contains(want))
    });
    assert!(ok, "{host} never served {want:?}; last answer: {last:?}");
    last.unwrap().1
}

pub fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:08x}", (nanos & 0xffff_ffff) as u32)
}

/// Removes an app's containers, also when a test fails.
pub struct RemoveContainers(pub String);

impl Drop for RemoveContainers {
    fn drop(&mut self) {
        let label = format!("label=wayline.app={}", self.0);
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
            .expect("docker");
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

fn hcl(app: &str, entrypoint: bool) -> String {
    let build = if entrypoint {
        "use \"docker\" {}".to_owned()
    } else {
        "use \"docker\" {\n      disable_entrypoint = true\n    }".to_owned()
    };
    format!(
        r#"project = "urls{app}"

app "{app}" {{
  build {{
    {build}
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
    )
}

pub fn project(env: &TestEnv, app: &str, entrypoint: bool) {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox-docker");
    for f in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(example.join(f), env.project.join(f)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", env.project.join("busybox"))
        .expect("busybox-static at /usr/bin/busybox");
    env.write("wayline.hcl", &hcl(app, entrypoint));
}

#[test]
fn two_versions_and_the_release_answer_at_their_hosts_through_tunnels() {
    if !docker_ready("two_versions_and_the_release_answer_at_their_hosts_through_tunnels") {
        return;
    }
    let env = TestEnv::with_urls();
    let app = format!("url{}", unique_suffix());
    let _cleanup = RemoveContainers(app.clone());
    project(&env, &app, true);

    env.write("index.html", "<h1>version one</h1>\n");
    let r = env.ok(&["up"]);
    let addr = ingress(&env);
    let v1 = format!("{app}--v1.localhost");
    let port = addr.port();
    assert!(
        r.stdout()
            .contains(&format!("http://{app}.localhost:{port}/"))
            && r.stdout().contains(&format!("http://{v1}:{port}/")),
        "`up` prints the URLs: {}",
        r.all()
    );
    serves(addr, &v1, "version one");

    env.write("index.html", "<h1>version two</h1>\n");
    env.ok(&["up"]);
    let v2 = format!("{app}--v2.localhost");
    serves(addr, &format!("{v2}:{port}"), "version two");
    serves(addr, &v1, "version one");
    serves(addr, &format!("{app}.localhost"), "version two");

    // Through the tunnels, not the published ports: the entrypoints say so.
    let logs = env.ok(&["logs", "-follow=false"]).stdout();
    assert!(
        logs.contains("URL-service tunnel open at unix://"),
        "{logs}"
    );

    let list = env.ok(&["deployment", "list"]).stdout();
    assert!(list.contains(&format!("http://{v2}:{port}/")), "{list}");
    assert!(list.contains(&format!("http://{v1}:{port}/")), "{list}");

    let (status, body) = get_host(addr, &format!("{app}--v9.localhost"), "/").unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains(&format!("{app} has no deployment v9")),
        "{body}"
    );
    assert!(
        body.contains(&format!("http://{v2}:{port}/")),
        "the page lists the hosts: {body}"
    );
    env.ok(&["destroy", "-auto-approve"]);
    let (status, _) = get_host(addr, &v1, "/").unwrap();
    assert_eq!(status, 404, "a destroyed deployment has no host");
}

#[test]
fn a_deployment_without_the_entrypoint_is_proxied_to_its_platform_address() {
    if !docker_ready("a_deployment_without_the_entrypoint_is_proxied_to_its_platform_address") {
        return;
    }
    let env = TestEnv::with_urls();
    let app = format!("direct{}", unique_suffix());
    let _cleanup = RemoveContainers(app.clone());
    project(&env, &app, false);
    env.write("index.html", "<h1>no entrypoint here</h1>\n");
    env.ok(&["up"]);
    let addr = ingress(&env);
    serves(addr, &format!("{app}--v1.localhost"), "no entrypoint here");
    serves(addr, &format!("{app}.localhost"), "no entrypoint here");
    env.ok(&["destroy", "-auto-approve"]);
}
