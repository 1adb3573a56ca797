//! `wayline-bench`: whole-system figures measured on the real binaries.
//!
//! ```text
//! cargo build --release -p wayline-cli -p wayline-bench
//! target/release/wayline-bench [all|cli|server|exec-up|docker-up|compare|fleet|swarm] [--wayline target/release/wayline] [--runs N] [--instances N]
//! ```
//!
//! Each benchmark runs in a fresh temporary home so nothing of the user's is touched, prints
//! one line per figure (median and p90 over the runs, plus the goal) and stops every process
//! it started. Docker figures need a running engine, busybox-static and
//! `WAYLINE_ENTRYPOINT_BINARY` (scripts/build-entrypoint.sh).

mod compare;
mod fleet;
mod swarm;
mod url_proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Opts {
    wayline: PathBuf,
    runs: usize,
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = Opts {
        wayline: PathBuf::from("target/release/wayline"),
        runs: 20,
    };
    let mut fleet_opts = fleet::FleetOpts::default();
    let mut what = "all".to_owned();
    // Needs no wayline binary: the URL service and its tunnel run in this process.
    if args.first().is_some_and(|a| a == "url-proxy") {
        let secs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
        println!(
            "wayline-bench url-proxy on {} ({} cores)",
            hostname(),
            cores()
        );
        url_proxy::bench(secs);
        return;
    }
    while !args.is_empty() {
        let a = args.remove(0);
        match a.as_str() {
            "--wayline" => opts.wayline = PathBuf::from(args.remove(0)),
            "--runs" => opts.runs = args.remove(0).parse().expect("--runs takes a number"),
            "--instances" => {
                fleet_opts.instances = args.remove(0).parse().expect("--instances takes a number");
            }
            other => other.clone_into(&mut what),
        }
    }
    opts.wayline = std::fs::canonicalize(&opts.wayline).unwrap_or_else(|_| {
        panic!(
            "`{}` not found; build it with `cargo build --release -p wayline-cli`",
            opts.wayline.display()
        )
    });
    println!(
        "wayline-bench on {} ({} cores), binary {}",
        hostname(),
        cores(),
        opts.wayline.display()
    );
    let all = what == "all";
    if all || what == "cli" {
        bench_cli(&opts);
    }
    if all || what == "server" {
        bench_server(&opts);
    }
    if all || what == "exec-up" {
        bench_exec_up(&opts);
    }
    if all || what == "docker-up" {
        bench_docker_up(&opts);
    }
    if all || what == "compare" {
        compare::bench_compare(&opts);
    }
    if what == "swarm" {
        swarm::bench_swarm(&opts);
    }
    if all || what == "fleet" {
        fleet::bench_fleet(&opts, &fleet_opts);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Median and p90 of durations, in milliseconds.
fn stats(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    let median = ms(d[d.len() / 2]);
    let p90 = ms(d[(d.len() * 9 / 10).min(d.len() - 1)]);
    (median, p90)
}

fn report(name: &str, d: Vec<Duration>, goal: &str) {
    let n = d.len();
    let (median, p90) = stats(d);
    println!("{name:<44} median {median:>8.2} ms   p90 {p90:>8.2} ms   (n={n}; goal {goal})");
}

/// A temporary home with its own embedded server.
struct Home {
    dir: PathBuf,
    wayline: PathBuf,
}

impl Home {
    fn new(wayline: &Path, tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wayline-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("project")).unwrap();
        Self {
            dir,
            wayline: wayline.to_owned(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.wayline);
        c.args(args)
            .current_dir(self.dir.join("project"))
            .env("HOME", &self.dir)
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Duration {
        let t = Instant::now();
        let out = self.cmd(args).output().expect("run wayline");
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "`wayline {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join("project").join(name), text).unwrap();
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self.cmd(&["server", "stop"]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bench_cli(o: &Opts) {
    let home = Home::new(&o.wayline, "cli");
    let runs = (0..o.runs.max(50))
        .map(|_| home.run(&["version"]))
        .collect();
    report("`wayline version`", runs, "< 10 ms");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn bench_server(o: &Opts) {
    let mut ready = Vec::new();
    let mut rss = Vec::new();
    for i in 0..o.runs.min(10) {
        let dir =
            std::env::temp_dir().join(format!("wayline-bench-srv-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sock = dir.join("s.sock");
        let t = Instant::now();
        let mut child = Command::new(&o.wayline)
            .args(["server", "run", "--data-dir"])
            .arg(&dir)
            .args([
                "--listen-grpc",
                "127.0.0.1:0",
                "--listen-http",
                "127.0.0.1:0",
                "--listen-url",
                "127.0.0.1:0",
                "--listen-unix",
            ])
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server");
        // Ready = a gRPC call answers over the socket; `wayline` itself makes the call.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_micros(200));
        }
        ready.push(t.elapsed());
        std::thread::sleep(Duration::from_secs(2));
        rss.push(rss_kib(child.id()));
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }
    report("server start → accepting on its socket", ready, "< 100 ms");
    rss.sort_unstable();
    println!(
        "{:<44} median {:>8.1} MiB   max {:>8.1} MiB   (n={}; goal < 30 MiB)",
        "server idle RSS (2 s after start)",
        rss[rss.len() / 2] as f64 / 1024.0,
        *rss.last().unwrap() as f64 / 1024.0,
        rss.len()
    );
}

fn bench_exec_up(o: &Opts) {
    let home = Home::new(&o.wayline, "exec");
    home.write(
        "wayline.hcl",
        "project = \"bench\"\n\napp \"noop\" {\n  build {\n    use \"files\" {}\n  }\n  deploy {\n    use \"exec\" {\n      command = [\"true\"]\n    }\n  }\n}\n",
    );
    // Warm: the embedded server is already running, as it is for a user after the first command.
    home.run(&["up"]);
    let runs = (0..o.runs).map(|_| home.run(&["up"])).collect();
    report(
        "`wayline up`, exec platform, command exits",
        runs,
        "< 100 ms end to end",
    );
}

fn docker_output(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn docker(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn bench_docker_up(o: &Opts) {
    if !docker(&["info"])
        || std::env::var_os("WAYLINE_ENTRYPOINT_BINARY").is_none()
        || !Path::new("/usr/bin/busybox").exists()
    {
        println!(
            "docker-up: skipped (needs a Docker engine, /usr/bin/busybox and WAYLINE_ENTRYPOINT_BINARY)"
        );
        return;
    }
    let home = Home::new(&o.wayline, "docker");
    let project = home.dir.join("project");
    std::fs::copy("/usr/bin/busybox", project.join("busybox")).unwrap();
    home.write("index.html", "<h1>bench</h1>\n");
    home.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY index.html /www/index.html\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"3000\", \"-h\", \"/www\"]\n",
    );
    home.write(
        "wayline.hcl",
        "project = \"bench\"\n\napp \"benchweb\" {\n  build {\n    use \"docker\" {}\n  }\n  deploy {\n    use \"docker\" {\n      service_port = 3000\n    }\n  }\n}\n",
    );
    let runs = o.runs.min(10);
    home.run(&["up"]);
    home.run(&["up"]);
    // By hand, the same work `wayline up` does: build, run with a published port, wait until the
    // app accepts connections, and remove the container it replaces.
    let mut by_hand = Vec::new();
    let mut by_hand_run_only = Vec::new();
    let mut previous: Option<String> = None;
    for i in 0..runs {
        let name = format!("wayline-bench-hand-{}-{i}", std::process::id());
        let t = Instant::now();
        assert!(docker(&[
            "build",
            "-q",
            "-t",
            "wayline-bench-hand:latest",
            project.to_str().unwrap()
        ]));
        assert!(docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            "127.0.0.1::3000",
            "wayline-bench-hand:latest"
        ]));
        by_hand_run_only.push(t.elapsed());
        let port = docker_output(&["port", &name, "3000/tcp"]);
        let addr: std::net::SocketAddr = port
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .expect("published port");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(p) = previous.replace(name) {
            docker(&["rm", "-f", &p]);
        }
        by_hand.push(t.elapsed());
    }
    if let Some(p) = previous {
        docker(&["rm", "-f", &p]);
    }
    docker(&["rmi", "-f", "wayline-bench-hand:latest"]);
    let with_wayline: Vec<Duration> = (0..runs).map(|_| home.run(&["up"])).collect();
    let no_prune: Vec<Duration> = (0..runs)
        .map(|_| home.run(&["up", "-prune=false"]))
        .collect();
    let (hand, _) = stats(by_hand.clone());
    let (wl, _) = stats(with_wayline.clone());
    report(
        "by hand: docker build + docker run -d",
        by_hand_run_only,
        "(no readiness wait)",
    );
    report(
        "by hand: build + run + wait ready + rm old",
        by_hand,
        "baseline",
    );
    report(
        "`wayline up` busybox (warm)",
        with_wayline,
        "≤ 1.15 × baseline",
    );
    report("`wayline up -prune=false` busybox (warm)", no_prune, "");
    println!(
        "{:<44} {:.2}",
        "overhead ratio (median / median)",
        wl / hand
    );
    let _ = home.cmd(&["destroy", "-auto-approve"]).status();
}
