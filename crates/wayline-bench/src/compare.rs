//! `wayline up` against the same work done with docker compose and by hand with the Docker CLI,
//! measured in one run on one app: each round changes the page, runs the three one after
//! another (rotating who goes first, so the machine's load falls on each alike) and ends each
//! when the new page is served. Then cold first deploys: a fresh home whose embedded server is
//! not running, against the same first deploy by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Home, Opts, docker, docker_output, report, stats};

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY index.html /www/index.html\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"3000\", \"-h\", \"/www\"]\n";

/// All three sides build with the classic builder (`buildkit = false` here, `DOCKER_BUILDKIT=0`
/// for compose and by hand), so the comparison is of what surrounds the same build.
const WAYLINE_HCL: &str = "project = \"bench\"\n\napp \"cmpweb\" {\n  build {\n    use \"docker\" {\n      buildkit = false\n    }\n  }\n  deploy {\n    use \"docker\" {\n      service_port = 3000\n    }\n  }\n}\n";

/// A build context with busybox, the Dockerfile and a page.
fn context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy("/usr/bin/busybox", dir.join("busybox")).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>start</h1>\n").unwrap();
}

/// Waits (at most 30 s) until `http://addr/` serves a page containing `marker`.
fn wait_for_page(addr: &str, marker: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if get(addr).is_some_and(|body| body.contains(marker)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A plain HTTP/1.0 GET of `/`, the body when it answers.
fn get(addr: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// `wayline up`, then the release URL's page; the time until the new page is served.
fn wayline_up(home: &Home, marker: &str) -> Duration {
    let t = Instant::now();
    let out = home
        .cmd(&["up", "-json"])
        .stdout(Stdio::piped())
        .output()
        .expect("run wayline");
    assert!(
        out.status.success(),
        "`wayline up` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let url = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "complete")
        .and_then(|v| {
            let url = |k: &str| v[k].as_str().filter(|u| !u.is_empty()).map(str::to_owned);
            let u = url("release_url").or_else(|| url("deploy_url"))?;
            Some(
                u.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned(),
            )
        })
        .expect("up -json names the URL");
    assert!(wait_for_page(&url, marker), "wayline's page never changed");
    t.elapsed()
}

/// `docker-compose up -d --build -t 0` on a fixed host port; the time until the new page.
fn compose_up(dir: &Path, port: u16, marker: &str) -> Duration {
    let t = Instant::now();
    let ok = Command::new("docker-compose")
        .args(["up", "-d", "--build", "-t", "0"])
        .current_dir(dir)
        .env("DOCKER_BUILDKIT", "0")
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "docker-compose up failed");
    assert!(
        wait_for_page(&format!("127.0.0.1:{port}"), marker),
        "compose's page never changed"
    );
    t.elapsed()
}

/// By hand: build, run with a published port, wait for the new page, remove the old container.
struct ByHand {
    dir: PathBuf,
    image: String,
    previous: Option<String>,
    n: usize,
}

impl ByHand {
    fn deploy(&mut self, marker: &str) -> Duration {
        self.n += 1;
        let name = format!("{}-{}", self.image.replace(':', "-"), self.n);
        let t = Instant::now();
        let built = Command::new("docker")
            .args(["build", "-q", "-t", &self.image, self.dir.to_str().unwrap()])
            .env("DOCKER_BUILDKIT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(built, "`docker build` by hand failed");
        assert!(docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            "127.0.0.1::3000",
            &self.image
        ]));
        let port = docker_output(&["port", &name, "3000/tcp"]);
        let addr = port.lines().next().unwrap_or_default().trim().to_owned();
        assert!(
            wait_for_page(&addr, marker),
            "the page by hand never changed"
        );
        if let Some(p) = self.previous.replace(name) {
            docker(&["rm", "-f", &p]);
        }
        t.elapsed()
    }

    fn clean(&mut self) {
        if let Some(p) = self.previous.take() {
            docker(&["rm", "-f", &p]);
        }
    }
}

fn set_page(dirs: &[&Path], marker: &str) {
    for d in dirs {
        std::fs::write(d.join("index.html"), format!("<h1>{marker}</h1>\n")).unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Median of `a[i] / b[i]`.
fn median_ratio(a: &[Duration], b: &[Duration]) -> f64 {
    let mut r: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.as_secs_f64() / y.as_secs_f64())
        .collect();
    r.sort_by(f64::total_cmp);
    r[r.len() / 2]
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn bench_compare(o: &Opts) {
    let tag = std::process::id();
    let home = Home::new(&o.wayline, "compare");
    let project = home.dir.join("project");
    context(&project);
    home.write("wayline.hcl", WAYLINE_HCL);
    let compose_dir = home.dir.join("compose");
    context(&compose_dir);
    let port = free_port();
    std::fs::write(
        compose_dir.join("docker-compose.yml"),
        format!("version: \"3\"\nservices:\n  web:\n    build: .\n    image: wayline-bench-compose-{tag}:latest\n    ports:\n      - \"127.0.0.1:{port}:3000\"\n"),
    )
    .unwrap();
    let hand_dir = home.dir.join("hand");
    context(&hand_dir);
    let mut hand = ByHand {
        dir: hand_dir.clone(),
        image: format!("wayline-bench-hand-{tag}:latest"),
        previous: None,
        n: 0,
    };
    println!("load before: {}", load());
    // Warm-up: each has deployed once and the embedded server runs, as for a user mid-work.
    set_page(&[&project, &compose_dir, &hand_dir], "warm");
    wayline_up(&home, "warm");
    compose_up(&compose_dir, port, "warm");
    hand.deploy("warm");
    let (mut wl, mut co, mut bh) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..o.runs.min(15) {
        let marker = format!("page-{i}-{tag}");
        set_page(&[&project, &compose_dir, &hand_dir], &marker);
        for k in 0..3 {
            match (i + k) % 3 {
                0 => wl.push(wayline_up(&home, &marker)),
                1 => co.push(compose_up(&compose_dir, port, &marker)),
                _ => bh.push(hand.deploy(&marker)),
            }
        }
    }
    println!("load after: {}", load());
    let (wm, _) = stats(wl.clone());
    let (cm, _) = stats(co.clone());
    let (hm, _) = stats(bh.clone());
    report(
        "redeploy: `wayline up` (page changed)",
        wl.clone(),
        "≤ 0.8 × compose, ≤ 1.05 × by hand",
    );
    report(
        "redeploy: `docker-compose up -d --build -t 0`",
        co.clone(),
        "",
    );
    report(
        "redeploy: by hand (build, run, wait, rm old)",
        bh.clone(),
        "",
    );
    println!(
        "{:<44} {:.2} (median of per-round ratios {:.2}; goal ≤ 0.80)",
        "ratio wayline / compose (medians)",
        wm / cm,
        median_ratio(&wl, &co)
    );
    println!(
        "{:<44} {:.2} (median of per-round ratios {:.2}; goal ≤ 1.05)",
        "ratio wayline / by hand (medians)",
        wm / hm,
        median_ratio(&wl, &bh)
    );
    let _ = Command::new("docker-compose")
        .args(["down", "-t", "0", "--rmi", "all"])
        .current_dir(&compose_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    hand.clean();
    let _ = home.cmd(&["destroy", "-auto-approve"]).status();
    drop(home);
    bench_cold(o);
    docker(&["rmi", "-f", &hand.image]);
}

/// First deploys on a cold embedded server (a new home each time) against first deploys by hand.
fn bench_cold(o: &Opts) {
    let hand_home = Home::new(&o.wayline, "cold-hand");
    let mut hand = ByHand {
        dir: hand_home.dir.join("hand"),
        image: format!("wayline-bench-cold-{}:latest", std::process::id()),
        previous: None,
        n: 0,
    };
    context(&hand.dir);
    let (mut wl, mut bh) = (Vec::new(), Vec::new());
    for i in 0..o.runs.min(5) {
        let marker = format!("cold-{i}-{}", std::process::id());
        let home = Home::new(&o.wayline, &format!("cold{i}"));
        let project = home.dir.join("project");
        context(&project);
        home.write("wayline.hcl", WAYLINE_HCL);
        set_page(&[&project, &hand.dir], &marker);
        if i % 2 == 0 {
            wl.push(wayline_up(&home, &marker));
            bh.push(hand.deploy(&marker));
        } else {
            bh.push(hand.deploy(&marker));
            wl.push(wayline_up(&home, &marker));
        }
        hand.clean();
        let _ = home.cmd(&["destroy", "-auto-approve"]).status();
    }
    let (wm, _) = stats(wl.clone());
    let (hm, _) = stats(bh.clone());
    report(
        "first deploy: `wayline up`, server not running",
        wl.clone(),
        "≤ 1.2 × by hand",
    );
    report("first deploy: by hand", bh.clone(), "");
    docker(&["rmi", "-f", &hand.image]);
    println!(
        "{:<44} {:.2} (median of per-round ratios {:.2}; goal ≤ 1.20)",
        "ratio cold wayline / by hand (medians)",
        wm / hm,
        median_ratio(&wl, &bh)
    );
}
