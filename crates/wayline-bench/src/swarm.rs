//! `wayline up` to the three-node swarm fixture (`scripts/swarm-fixture.sh`) against the same
//! work by hand with the Docker CLI: build on the manager, push to the fixture's registry,
//! `docker service create` three replicas publishing a port in host mode, and wait until every
//! node serves the new page. Each round is a first deploy of a fresh app on both sides (the
//! page changes, so both build a new layer), the two alternate who goes first, and each side's
//! services are removed (untimed) before the next round. When the fixture is not up and we
//! run as root, the benchmark starts it (that start is the fixture's start-up figure) and
//! stops it at the end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Home, Opts, report, stats};

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY index.html /www/index.html\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"3000\", \"-h\", \"/www\"]\n";
const PORT: u16 = 18700;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/swarm-fixture.sh")
}

/// The fixture's variables (`swarm-fixture.sh env`), `None` when it is not up.
fn fixture_env() -> Option<HashMap<String, String>> {
    let out = Command::new("bash")
        .arg(script())
        .arg("env")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect()
    })
}

/// `docker -H manager args…`; whether it succeeded.
fn on_manager(manager: &str, args: &[&str]) -> bool {
    Command::new("docker")
        .arg("-H")
        .arg(manager)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The body of `GET /` on `ip:PORT`, when it answers.
fn page(ip: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let addr: std::net::SocketAddr = format!("{ip}:{PORT}").parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Waits (at most `secs`) until every node's answer satisfies `ok`.
fn until_all(ips: &[String], secs: u64, ok: impl Fn(Option<String>) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ips.iter().all(|ip| ok(page(ip))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The server process, stopped on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Swarm {
    manager: String,
    host_ip: String,
    node_ips: Vec<String>,
    registry: String,
}

/// A server the tasks on every node reach (on the fixture's bridge address), bootstrapped as
/// the home's current context.
fn start_server(home: &Home, sw: &Swarm) -> Server {
    let port = std::net::TcpListener::bind((sw.host_ip.as_str(), 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on the fixture's bridge")
        .port();
    let addr = format!("{}:{port}", sw.host_ip);
    std::fs::create_dir_all(home.dir.join("sock")).unwrap();
    let (data, sock) = (home.dir.join("srv"), home.dir.join("sock/server.sock"));
    let server = home
        .cmd(&["server", "run", "--listen-http", "127.0.0.1:0"])
        .args(["--listen-grpc", &addr, "--advertise-addr", &addr])
        .arg("--data-dir")
        .arg(&data)
        .arg("--listen-unix")
        .arg(&sock)
        .stderr(Stdio::null())
        .spawn()
        .map(Server)
        .expect("start the server");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = home
            .cmd(&["server", "bootstrap", "--server-addr", &addr])
            .args(["--server-tls-skip-verify", "--context-create", "swarm"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "the server on {addr} never bootstrapped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wayline_hcl(sw: &Swarm, app: &str) -> String {
    format!(
        "project = \"benchswarm\"\n\napp \"{app}\" {{\n  build {{\n    use \"docker\" {{}}\n    registry {{\n      use \"docker\" {{\n        image    = \"{}/bench/{app}\"\n        tag      = \"latest\"\n        insecure = true\n      }}\n    }}\n  }}\n  deploy {{\n    use \"docker-swarm\" {{\n      replicas      = 3\n      service_port  = 3000\n      endpoint_mode = \"dnsrr\"\n      ports {{\n        target    = 3000\n        published = {PORT}\n        mode      = \"host\"\n      }}\n    }}\n  }}\n}}\n",
        sw.registry
    )
}

/// One first deploy with `wayline up`, until every node serves `marker`; then destroyed.
fn round_wayline(home: &Home, sw: &Swarm, app: &str, marker: &str) -> Duration {
    home.write("wayline.hcl", &wayline_hcl(sw, app));
    home.write("index.html", &format!("<h1>{marker}</h1>\n"));
    let t = Instant::now();
    let out = home
        .cmd(&["up"])
        .env("DOCKER_HOST", &sw.manager)
        .output()
        .expect("run wayline up");
    assert!(
        out.status.success(),
        "`wayline up` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = until_all(&sw.node_ips, 60, |p| p.is_some_and(|b| b.contains(marker)));
    let took = t.elapsed();
    assert!(served, "wayline's {app} never served on every node");
    let _ = home
        .cmd(&["destroy", "-auto-approve"])
        .env("DOCKER_HOST", &sw.manager)
        .status();
    took
}

/// The same first deploy by hand; then the service is removed.
fn round_by_hand(home: &Home, sw: &Swarm, app: &str, marker: &str) -> Duration {
    let context = home.dir.join("project");
    home.write("index.html", &format!("<h1>{marker}</h1>\n"));
    let image = format!("{}/bench/{app}:latest", sw.registry);
    let m = sw.manager.as_str();
    let t = Instant::now();
    assert!(on_manager(
        m,
        &["build", "-q", "-t", &image, context.to_str().unwrap()]
    ));
    assert!(on_manager(m, &["push", &image]));
    let publish = format!("mode=host,target=3000,published={PORT}");
    assert!(on_manager(
        m,
        &[
            "service",
            "create",
            "-d",
            "--name",
            app,
            "--replicas",
            "3",
            "--endpoint-mode",
            "dnsrr",
            "--publish",
            &publish,
            &image,
        ],
    ));
    let served = until_all(&sw.node_ips, 60, |p| p.is_some_and(|b| b.contains(marker)));
    let took = t.elapsed();
    assert!(served, "the hand-made {app} never served on every node");
    on_manager(m, &["service", "rm", app]);
    took
}

pub(crate) fn bench_swarm(o: &Opts) {
    let ran_fixture = fixture_env().is_none();
    if ran_fixture {
        if !is_root() {
            println!("swarm: skipped (the fixture is not up; `sudo scripts/swarm-fixture.sh up`)");
            return;
        }
        let t = Instant::now();
        let up = Command::new("bash")
            .arg(script())
            .arg("up")
            .stdout(Stdio::null())
            .status();
        assert!(up.is_ok_and(|s| s.success()), "swarm-fixture.sh up failed");
        println!(
            "{:<44} {:>8.2} s",
            "swarm fixture start (3 nodes, 2 registries)",
            t.elapsed().as_secs_f64()
        );
    }
    let e = fixture_env().expect("the fixture is up");
    let sw = Swarm {
        manager: e["WAYLINE_SWARM_MANAGER"].clone(),
        host_ip: e["WAYLINE_SWARM_HOST_IP"].clone(),
        node_ips: e["WAYLINE_SWARM_NODE_IPS"]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        registry: e["WAYLINE_SWARM_REGISTRY"].clone(),
    };
    let home = Home::new(&o.wayline, "swarm");
    let project = home.dir.join("project");
    std::fs::copy("/usr/bin/busybox", project.join("busybox")).expect("busybox-static");
    home.write("Dockerfile", DOCKERFILE);
    let server = start_server(&home, &sw);
    let (mut wl, mut hand) = (Vec::new(), Vec::new());
    let pid = std::process::id();
    for i in 0..o.runs.min(10) {
        let (a, b) = (format!("bsw{pid}x{i}"), format!("bsh{pid}x{i}"));
        let marker = format!("round {i} of {pid}");
        let free = |sw: &Swarm| until_all(&sw.node_ips, 60, |p| p.is_none());
        if i % 2 == 0 {
            wl.push(round_wayline(&home, &sw, &a, &marker));
            assert!(free(&sw), "port {PORT} still served after destroy");
            hand.push(round_by_hand(&home, &sw, &b, &format!("{marker} by hand")));
        } else {
            hand.push(round_by_hand(&home, &sw, &b, &format!("{marker} by hand")));
            assert!(free(&sw), "port {PORT} still served after service rm");
            wl.push(round_wayline(&home, &sw, &a, &marker));
        }
        assert!(free(&sw), "port {PORT} still served after the round");
    }
    let (h, _) = stats(hand.clone());
    let (w, _) = stats(wl.clone());
    report(
        "by hand: build + push + service create + serve",
        hand,
        "baseline",
    );
    report(
        "`wayline up` to the swarm, 3 replicas",
        wl,
        "≤ 1.1 × baseline",
    );
    println!("{:<44} {:.2}", "ratio (median / median)", w / h);
    drop(server);
    if ran_fixture {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .stdout(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
            .unwrap_or(false)
    })
}
