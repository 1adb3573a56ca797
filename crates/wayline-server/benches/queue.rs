//! Job-queue throughput and assignment latency against a real server (in-process, unix socket).
//!
//! `cargo bench -p wayline-server --bench queue` — 8 registered runners, each taking one noop
//! job per RunnerJobStream (request → assignment → ack → complete), as the real runner does.
//!
//! 1. Throughput: N jobs queued as fast as 32 concurrent QueueJob calls allow; jobs/s from the
//!    first QueueJob to the last completion. Runner-side "request → assignment" latency.
//! 2. Idle assignment latency: one job at a time with 8 idle runners; QueueJob sent → the
//!    runner holds the assignment.
//!
//! Client, runners and server share one process (and the machine's cores), so the figures are
//! conservative for a server process of its own.
//!
//! Timed by hand, not with criterion: the figures are a throughput over a whole run and tail
//! latencies (p99) of concurrent streams, which criterion's per-call estimate does not report.

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unreachable_pub)]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tokio::sync::Mutex;
use wayline_proto::v1 as pb;

const RUNNERS: usize = 8;

/// Job id and when a runner received its assignment.
type AssignLog = Arc<Mutex<Vec<(String, Instant)>>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name}: n={} median={:.3} ms p99={:.3} ms max={:.3} ms",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1e3,
        percentile(&v, 0.99).as_secs_f64() * 1e3,
        v.last().unwrap().as_secs_f64() * 1e3
    );
}

/// Runs a runner loop until `remaining` reaches zero; returns request→assignment latencies.
async fn runner_loop(
    mut c: Client,
    id: String,
    remaining: Arc<AtomicUsize>,
    assigned_at: Option<AssignLog>,
) -> Vec<Duration> {
    let mut lat = Vec::new();
    loop {
        if remaining.load(Ordering::Relaxed) == 0 {
            return lat;
        }
        let t = Instant::now();
        let mut conn = job_conn(&mut c, &id, "").await;
        let msg = tokio::select! {
            m = conn.rx.message() => m,
            () = async {
                while remaining.load(Ordering::Relaxed) > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            } => return lat,
        };
        let job = match msg.expect("stream").expect("message").event {
            Some(pb::runner_job_stream_response::Event::Assignment(a)) => a.job.unwrap(),
            other => panic!("unexpected {other:?}"),
        };
        let now = Instant::now();
        lat.push(now - t);
        if let Some(log) = &assigned_at {
            log.lock().await.push((job.id.clone(), now));
        }
        conn.ack().await;
        conn.complete().await;
        // The server ends the stream once the completion is committed.
        while conn.rx.message().await.ok().flatten().is_some() {}
        remaining.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn throughput(h: &Harness, n: usize) {
    let remaining = Arc::new(AtomicUsize::new(n));
    let mut runners = Vec::new();
    let mut regs = Vec::new();
    for i in 0..RUNNERS {
        let mut c = h.client().await;
        regs.push(online(&mut c, &format!("bench-{i}"), &[], false).await);
        runners.push(tokio::spawn(runner_loop(
            c,
            format!("bench-{i}"),
            Arc::clone(&remaining),
            None,
        )));
    }
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut producers = Vec::new();
    for _ in 0..32 {
        let mut c = h.client().await;
        let next = Arc::clone(&next);
        producers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                queue(&mut c, noop_job(None)).await;
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    let queued = start.elapsed();
    let mut lat = Vec::new();
    for r in runners {
        lat.extend(r.await.unwrap());
    }
    let total = start.elapsed();
    drop(regs);
    println!(
        "throughput: {n} noop jobs queued→assigned→completed by {RUNNERS} runners in {:.2} s = {:.0} jobs/s (all queued after {:.2} s)",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        queued.as_secs_f64()
    );
    report("runner request → assignment (saturated queue)", lat);
}

async fn idle_latency(h: &Harness, n: usize) {
    let remaining = Arc::new(AtomicUsize::new(n));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut runners = Vec::new();
    let mut regs = Vec::new();
    for i in 0..RUNNERS {
        let mut c = h.client().await;
        regs.push(online(&mut c, &format!("idle-{i}"), &[], false).await);
        runners.push(tokio::spawn(runner_loop(
            c,
            format!("idle-{i}"),
            Arc::clone(&remaining),
            Some(Arc::clone(&log)),
        )));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = h.client().await;
    let mut lat = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let id = queue(&mut c, noop_job(None)).await;
        loop {
            if let Some((_, at)) = log.lock().await.iter().find(|(j, _)| *j == id) {
                lat.push(*at - t);
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    for r in runners {
        r.await.unwrap();
    }
    drop(regs);
    report("QueueJob sent → idle runner holds the assignment", lat);
}

fn main() {
    let n: usize = std::env::var("WAYLINE_BENCH_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = Harness::start().await;
        throughput(&h, n).await;
        idle_latency(&h, 2_000).await;
    });
}
