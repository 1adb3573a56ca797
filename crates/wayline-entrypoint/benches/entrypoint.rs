//! Entrypoint figures (issue 6). Run with `cargo bench -p wayline-entrypoint`; set
//! `WAYLINE_ENTRYPOINT_STATIC` to the static binary to size it without rebuilding (otherwise
//! `scripts/build-entrypoint.sh` builds it). Prints one line per figure with its goal.
//!
//! The server side is the real entrypoint hub behind the test harness, on a unix socket, on
//! this machine: what a `wayline logs -f` or `wayline exec` client sees minus the CLI.
//!
//! Timed by hand, not with criterion: the figures are sizes, tail latencies (p99) of lines and
//! keystrokes through the hub, and process start times, not per-call estimates.

#![allow(dead_code, unused_imports, unreachable_pub)]

#[path = "../tests/it/harness.rs"]
mod harness;
#[path = "../../wayline-server/src/entrypoint/mod.rs"]
mod hub;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio_stream::wrappers::ReceiverStream;
use wayline_proto::v1::{
    ExecStreamRequest, GetLogStreamRequest, exec_stream_request as req,
    exec_stream_response as resp,
};

const BIN: &str = env!("CARGO_BIN_EXE_wayline-entrypoint");
const MIB: f64 = 1_048_576.0;

struct Server {
    hub: hub::EntrypointHub,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("w.sock");
    let opts = hub::HubOptions {
        log_window_lines: 100_000,
        follow_buffer: 65_536,
        ..hub::HubOptions::default()
    };
    let hub = hub::EntrypointHub::new(opts);
    let resolver = Arc::new(harness::StaticResolver::default());
    harness::serve(
        harness::Harness {
            hub: hub.clone(),
            resolver,
        },
        &socket,
    );
    Server {
        hub,
        socket,
        _dir: dir,
    }
}

fn entrypoint(socket: Option<&Path>, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("WAYLINE_DEPLOYMENT_ID", "D")
        .env("WAYLINE_ENTRYPOINT_TOKEN", "D")
        .env("WAYLINE_LOG_LEVEL", "warn");
    if let Some(s) = socket {
        cmd.env("WAYLINE_SERVER_ADDR", format!("unix://{}", s.display()));
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

async fn wait_instances(hub: &hub::EntrypointHub, n: usize) {
    while hub.list_instances(&[]).len() != n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn binary_size() -> PathBuf {
    let path = match std::env::var("WAYLINE_ENTRYPOINT_STATIC")
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or(())
    {
        Ok(p) => PathBuf::from(p),
        Err(()) => {
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../scripts/build-entrypoint.sh"
            );
            let out = std::process::Command::new("bash")
                .arg(script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap();
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        }
    };
    let mib = std::fs::metadata(&path).unwrap().len() as f64 / MIB;
    println!(
        "binary size (static, profile entrypoint): {mib:.2} MiB  goal < 5 MiB  {}",
        verdict(mib < 5.0)
    );
    path
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// RSS of the binary users run (the static one when `binary_size` found it).
async fn idle_rss(bin: Option<PathBuf>) {
    let s = server();
    let bin = bin.map_or_else(|| BIN.to_owned(), |p| p.display().to_string());
    let mut cmd = entrypoint(Some(&s.socket), &["sleep", "60"]);
    let std_cmd = cmd.as_std_mut();
    let mut c = tokio::process::Command::new(&bin);
    c.args(std_cmd.get_args()).env_clear();
    for (k, v) in std_cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let child = c.stdout(Stdio::null()).kill_on_drop(true).spawn().unwrap();
    wait_instances(&s.hub, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mib = rss_kib(child.id().unwrap()) as f64 / 1024.0;
    println!(
        "idle RSS (connected, app idle, {bin}): {mib:.2} MiB  goal < 5 MiB  {}",
        verdict(mib < 5.0)
    );
}

async fn start_overhead() {
    const N: usize = 200;
    let mut direct = Vec::new();
    let mut wrapped = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        tokio::process::Command::new("true").status().await.unwrap();
        direct.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        entrypoint(None, &["true"]).status().await.unwrap();
        wrapped.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (d50, _) = stats(direct);
    let (w50, w99) = stats(wrapped);
    let added = w50 - d50;
    println!(
        "start overhead (`true` direct {d50:.2} ms, via entrypoint {w50:.2} ms median / {w99:.2} ms p99): +{added:.2} ms  goal < 10 ms  {}",
        verdict(added < 10.0)
    );
    // With a server: the app starts once config arrived.
    let s = server();
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let mut c = entrypoint(Some(&s.socket), &["sh", "-c", "echo up"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut buf = [0u8; 3];
        c.stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut buf)
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        c.wait().await.unwrap();
    }
    let (m, p) = stats(times);
    println!(
        "app start with a server (dial, config, spawn, first output): {m:.2} ms median / {p:.2} ms p99"
    );
}

/// Ships `lines` written by `app` (after it reads a line from stdin) and reports the rate at
/// which they became visible to a follower, the latency of each, and drops.
async fn ship(label: &str, app: &[&str], lines: u64, goal: Option<(f64, f64)>) {
    let s = server();
    let req = GetLogStreamRequest {
        follow: true,
        ..Default::default()
    };
    let mut follow = s.hub.log_stream(vec![], req);
    let mut child = entrypoint(Some(&s.socket), app)
        .env("WAYLINE_ENTRYPOINT_LOG_BUFFER", "100000")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_instances(&s.hub, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    tokio::io::AsyncWriteExt::write_all(child.stdin.as_mut().unwrap(), b"go\n")
        .await
        .unwrap();
    let mut latencies = Vec::with_capacity(lines as usize);
    let (mut seen, mut dropped) = (0u64, 0u64);
    while seen + dropped < lines {
        let b = follow.next().await.unwrap().unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        dropped += b.dropped;
        for l in b.lines.iter().filter(|l| l.source == 0) {
            let ts = l.timestamp.unwrap();
            latencies.push((now - (ts.seconds as f64 + f64::from(ts.nanos) / 1e9)) * 1e3);
            seen += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = seen as f64 / secs;
    let (p50, p99) = stats(latencies);
    let mut msg = format!(
        "log shipping, {label}: {seen} lines visible in {secs:.2} s = {rate:.0} lines/s, {dropped} dropped; latency {p50:.1} ms median / {p99:.1} ms p99"
    );
    if let Some((min_rate, max_p99)) = goal {
        let ok = rate >= min_rate && p99 < max_p99 && dropped == 0;
        let _ = write!(
            msg,
            "  goal >= {min_rate:.0} lines/s, p99 < {max_p99:.0} ms  {}",
            verdict(ok)
        );
    }
    println!("{msg}");
}

async fn log_shipping() {
    let me = std::env::current_exe().unwrap();
    let me = me.to_str().unwrap();
    // A steady 200,000 lines/s for 5 s, one write per line (a line-buffered app).
    let paced = format!("read go; exec {me} --writer 200000 1000000");
    ship(
        "paced 200k lines/s",
        &["sh", "-c", &paced],
        1_000_000,
        Some((195_000.0, 50.0)),
    )
    .await;
    // As fast as `seq` can write: the entrypoint's ceiling (drops expected past it).
    ship(
        "flat out (seq)",
        &["sh", "-c", "read go; seq 1 1000000"],
        1_000_000,
        None,
    )
    .await;
}

/// The bench re-executed as an app: `--writer RATE COUNT` writes COUNT lines, one write(2) each,
/// paced at RATE lines/s (0: as fast as possible), and reports its time in `$WRITER_REPORT`.
fn writer(rate: u64, count: u64) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    for i in 0..count {
        if rate > 0 && i % 1000 == 0 {
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        // The stdout lock is line-buffered: one write per line, like most apps.
        writeln!(out, "line {i} of the paced writer").unwrap();
    }
    if let Ok(path) = std::env::var("WRITER_REPORT") {
        std::fs::write(path, start.elapsed().as_secs_f64().to_string()).unwrap();
    }
}

/// Runs `cmd` (whose app is the `--writer` mode), drains its stdout, and returns the app's own
/// write time, which the writer reports in the file named by `WRITER_REPORT`.
async fn app_write_secs(cmd: tokio::process::Command) -> f64 {
    app_and_wall_secs(cmd).await.0
}

/// The app's own write time, and the wall time until all its output was drained here.
async fn app_and_wall_secs(mut cmd: tokio::process::Command) -> (f64, f64) {
    let t = Instant::now();
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut c = cmd
        .env("WRITER_REPORT", report.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = c.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    while out.read(&mut buf).await.unwrap() > 0 {}
    c.wait().await.unwrap();
    let wall = t.elapsed().as_secs_f64();
    let app = std::fs::read_to_string(report.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (app, wall)
}

/// The app's write throughput (`--writer` flat out, one write per line, its stdout drained by
/// this process) alone and under the entrypoint, with a server on this machine and with none.
async fn write_throughput() {
    const LINES: &str = "1000000";
    let me = std::env::current_exe().unwrap();
    let me = me.to_str().unwrap();
    let s = server();
    let unreachable = s.socket.with_file_name("nobody.sock");
    let (mut alone, mut shipped, mut unshipped) = (Vec::new(), Vec::new(), Vec::new());
    let (mut alone_wall, mut shipped_wall) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let mut direct = tokio::process::Command::new(me);
        direct.args(["--writer", "0", LINES]);
        let (app, wall) = app_and_wall_secs(direct).await;
        alone.push(app);
        alone_wall.push(wall);
        let mut cmd = entrypoint(Some(&s.socket), &[me, "--writer", "0", LINES]);
        cmd.env("WAYLINE_ENTRYPOINT_LOG_BUFFER", "100000");
        let (app, wall) = app_and_wall_secs(cmd).await;
        shipped.push(app);
        shipped_wall.push(wall);
    }
    for _ in 0..2 {
        // Fails open after 5 s; the writer times only its own writes.
        let cmd = entrypoint(Some(&unreachable), &[me, "--writer", "0", LINES]);
        unshipped.push(app_write_secs(cmd).await);
    }
    let rate = |v: Vec<f64>| 1e6 / stats(v).0;
    let (a, w, u) = (rate(alone), rate(shipped), rate(unshipped));
    println!(
        "app write throughput (1M lines, one write each): alone {a:.0} lines/s; under the entrypoint {w:.0} ({:.0}%) shipping to a server on the same 2 cores, {u:.0} ({:.0}%) with the server unreachable  goal >= 90%  {}",
        w / a * 100.0,
        u / a * 100.0,
        verdict(w / a >= 0.9)
    );
    let (aw, ww) = (rate(alone_wall), rate(shipped_wall));
    println!(
        "  end to end (until the container's stdout got every byte): alone {aw:.0} lines/s, under the entrypoint {ww:.0} ({:.0}%)",
        ww / aw * 100.0
    );
}

async fn exec_round_trip() {
    let s = server();
    let _app = entrypoint(Some(&s.socket), &["sleep", "60"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_instances(&s.hub, 1).await;
    let ch = tonic::transport::Endpoint::from_shared(format!("unix://{}", s.socket.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = wayline_proto::v1::wayline_client::WaylineClient::new(ch);
    let mut times = Vec::new();
    for i in 0..120 {
        let t = Instant::now();
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let start = req::Start {
            deployment_id: "D".into(),
            args: vec!["echo".into(), "hi".into()],
            ..Default::default()
        };
        tx.send(ExecStreamRequest {
            event: Some(req::Event::Start(start)),
        })
        .await
        .unwrap();
        let mut out = client
            .clone()
            .start_exec_stream(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let mut got = String::new();
        while let Some(m) = out.message().await.unwrap() {
            match m.event.unwrap() {
                resp::Event::Stdout(b) => got.push_str(&String::from_utf8_lossy(&b)),
                resp::Event::ExitCode(_) => break,
                resp::Event::Error(e) => panic!("{e}"),
                resp::Event::OpenedInstanceId(_) | resp::Event::Stderr(_) => {}
            }
        }
        assert_eq!(got, "hi\n");
        if i >= 20 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (m, p) = stats(times);
    println!(
        "exec `echo hi` round trip: {m:.2} ms median / {p:.2} ms p99  goal < 5 ms  {}",
        verdict(m < 5.0)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--writer") {
        writer(args[i + 1].parse().unwrap(), args[i + 2].parse().unwrap());
        return;
    }
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let static_bin = run("size").then(binary_size);
    if run("rss") {
        idle_rss(static_bin).await;
    }
    if run("start") {
        start_overhead().await;
    }
    if run("logs") {
        log_shipping().await;
    }
    if run("throughput") {
        write_throughput().await;
    }
    if run("exec") {
        exec_round_trip().await;
    }
}
