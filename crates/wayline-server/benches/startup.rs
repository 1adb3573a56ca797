//! Server start time and idle memory, measured on a child process.
//!
//! `cargo bench -p wayline-server --bench startup` — the bench re-executes itself as a server
//! (`WAYLINE_BENCH_SERVER=<dir>`, the small runtime from `wayline_server::runtime()`), and
//! measures (a) process spawn → "ready" (listeners bound, store open, queue loaded), first start
//! (creates the database and a self-signed certificate) and later starts, (b) time until the
//! first gRPC call (GetVersionInfo over the unix socket) succeeds, and (c) VmRSS after 2 s idle.
//!
//! Timed by hand, not with criterion: each sample is a child process's start and its memory, a
//! whole-process figure rather than a call.

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unreachable_pub)]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn serve(dir: &str) {
    let rt = wayline_server::runtime().expect("runtime");
    rt.block_on(async {
        let server = wayline_server::start(common::options(std::path::Path::new(dir)))
            .await
            .expect("start");
        println!("ready");
        // Serve until the parent closes our stdin.
        let _ =
            tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
        server.shutdown().await;
    });
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn one_start(dir: &std::path::Path, measure_rss: bool) -> (Duration, Duration, u64) {
    let t = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("WAYLINE_BENCH_SERVER", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let ready = t.elapsed();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let first_call = rt.block_on(async {
        let mut c = common::with_token(common::unix_channel(&dir.join("wayline.sock")).await, None);
        c.get_version_info(()).await.unwrap();
        t.elapsed()
    });
    let rss = if measure_rss {
        std::thread::sleep(Duration::from_secs(2));
        rss_kib(child.id())
    } else {
        0
    };
    drop(child.stdin.take());
    child.wait().unwrap();
    (ready, first_call, rss)
}

fn main() {
    if let Ok(dir) = std::env::var("WAYLINE_BENCH_SERVER") {
        serve(&dir);
        return;
    }
    let mut first = Vec::new();
    let mut ready = Vec::new();
    let mut call = Vec::new();
    let mut rss = Vec::new();
    for i in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let (r, c, _) = one_start(dir.path(), false);
        first.push(r);
        let (r2, c2, m) = one_start(dir.path(), i < 3);
        ready.push(r2);
        call.push(c.max(c2));
        if m > 0 {
            rss.push(m);
        }
    }
    let ms = |mut v: Vec<Duration>| {
        v.sort();
        format!(
            "median={:.1} ms max={:.1} ms",
            v[v.len() / 2].as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        )
    };
    println!(
        "first start (new database + certificate), spawn → ready: {}",
        ms(first)
    );
    println!("later start, spawn → ready: {}", ms(ready));
    println!("spawn → first GetVersionInfo answered: {}", ms(call));
    println!(
        "idle RSS after 2 s: {:?} MiB",
        rss.iter()
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect::<Vec<_>>()
    );
}
