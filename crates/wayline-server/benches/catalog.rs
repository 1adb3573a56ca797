//! Catalog reads with many deployments: by default 100,000 across 100 apps (plus 10,000
//! releases); `WAYLINE_BENCH_DEPLOYMENTS=1000000` gives issue 16's 1,000,000 across 1,000 apps.
//! Every app has 1,000 deployments and there is one release for every ten deployments.
//!
//! `cargo bench -p wayline-server --bench catalog` — fills a SQLite store through the `Store`
//! trait, reports the database file's size per deployment, starts a real server on it and times
//! gRPC calls over the unix socket: first with criterion (its mean per call), then each call
//! 2,000 times by hand for the median and p99 the goal is stated in (criterion does not report
//! tails). Calls: `ListDeployments` with `limit 50` for one app, the same across all apps, with
//! a commit filter, and "which commit is live" (the latest successful release of app X,
//! `GetOperation` latest). Goal: each under 10 ms p99.

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unreachable_pub)]
mod common;

use std::cell::Cell;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

use common::*;
use wayline_proto::v1 as pb;
use wayline_server::store::{SqliteStore, Store};

/// Deployments per app, whatever the total.
const PER_APP: usize = 1_000;
/// Calls timed by hand for the tail.
const TAIL_CALLS: usize = 2_000;

/// The catalog's size: deployments, apps and releases.
#[derive(Clone, Copy)]
struct Size {
    deployments: usize,
    apps: usize,
    releases: usize,
}

impl Size {
    fn from_env() -> Self {
        let deployments = std::env::var("WAYLINE_BENCH_DEPLOYMENTS")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(100_000)
            .max(PER_APP);
        Self {
            deployments,
            apps: deployments / PER_APP,
            releases: deployments / 10,
        }
    }
}

fn record(kind: pb::OperationKind, i: usize, apps: usize) -> pb::Operation {
    pb::Operation {
        kind: kind as i32,
        application: app("p", &format!("app-{}", i % apps)),
        status: Some(pb::Status {
            state: pb::status::State::Success as i32,
            ..Default::default()
        }),
        provenance: Some(pb::Provenance {
            commit: format!("{:040x}", i * 7919),
            ..Default::default()
        }),
        physical_state: pb::PhysicalState::Created as i32,
        deployment_id: String::new(),
        ..Default::default()
    }
}

async fn fill(dir: &std::path::Path, size: Size) {
    let db = dir.join("wayline.db");
    let store = SqliteStore::open(&db).expect("open store");
    let t = Instant::now();
    let mut pending = Vec::with_capacity(1000);
    for i in 0..size.deployments + size.releases {
        let kind = if i < size.deployments {
            pb::OperationKind::Deployment
        } else {
            pb::OperationKind::Release
        };
        pending.push(store.upsert_operation(record(kind, i, size.apps)));
        if pending.len() == 1000 {
            for p in futures::future::join_all(pending.drain(..)).await {
                p.expect("insert");
            }
        }
    }
    for p in futures::future::join_all(pending).await {
        p.expect("insert");
    }
    store.close().await.expect("close");
    let bytes: u64 = ["wayline.db", "wayline.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "filled {} deployments and {} releases across {} apps in {:.1} s; database {:.1} MiB, {:.0} bytes per operation record",
        size.deployments,
        size.releases,
        size.apps,
        t.elapsed().as_secs_f64(),
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / (size.deployments + size.releases) as f64
    );
}

fn list(app_name: Option<String>, commit: String) -> pb::ListOperationsRequest {
    pb::ListOperationsRequest {
        application: app_name.and_then(|a| app("p", &a)),
        limit: 50,
        commit,
        ..Default::default()
    }
}

fn latest_release(i: usize, apps: usize) -> pb::GetOperationRequest {
    pb::GetOperationRequest {
        kind: pb::OperationKind::Release as i32,
        target: Some(pb::get_operation_request::Target::Latest(
            pb::get_operation_request::Latest {
                application: app("p", &format!("app-{}", (i * 13) % apps)),
                workspace: String::new(),
                success_only: true,
            },
        )),
    }
}

/// Times `call` [`TAIL_CALLS`] times and prints the median and p99.
fn tail(name: &str, mut call: impl FnMut()) {
    let mut times: Vec<Duration> = (0..TAIL_CALLS)
        .map(|_| {
            let t = Instant::now();
            call();
            t.elapsed()
        })
        .collect();
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "tail catalog/{name}: n={TAIL_CALLS} median={:.3} ms p99={:.3} ms max={:.3} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

fn catalog(c: &mut Criterion) {
    let size = Size::from_env();
    let apps = size.apps;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The server refuses a data dir other users can open (tempdir makes it 0755).
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    rt.block_on(fill(dir.path(), size));
    let server = rt
        .block_on(wayline_server::start(options(dir.path())))
        .expect("server");
    let (_, client) = rt.block_on(bootstrap(&dir.path().join("wayline.sock")));
    // Each iteration asks for another app, so no one app's pages stay hot in the cache.
    let next = Cell::new(0usize);
    let step = || {
        let i = next.get();
        next.set(i + 1);
        i
    };
    let one_app = || {
        let req = list(Some(format!("app-{}", (step() * 37) % apps)), String::new());
        let ops = rt
            .block_on(client.clone().list_deployments(req))
            .unwrap()
            .into_inner()
            .operations;
        assert_eq!(ops.len(), 50);
    };
    let all_apps = || {
        let ops = rt
            .block_on(client.clone().list_deployments(list(None, String::new())))
            .unwrap()
            .into_inner()
            .operations;
        assert_eq!(ops.len(), 50);
    };
    let by_commit = || {
        let i = step();
        let req = list(
            Some(format!("app-{}", i % apps)),
            format!("{:040x}", i * 7919)[..7].to_owned(),
        );
        rt.block_on(client.clone().list_deployments(req)).unwrap();
    };
    let live_commit = || {
        let r = rt
            .block_on(client.clone().get_operation(latest_release(step(), apps)))
            .unwrap()
            .into_inner();
        assert!(r.live);
        assert!(r.provenance.is_some());
    };

    let mut group = c.benchmark_group("catalog");
    group.bench_function("ListDeployments app X limit 50", |b| b.iter(one_app));
    group.bench_function("ListDeployments all apps limit 50", |b| b.iter(all_apps));
    group.bench_function("ListDeployments app X commit prefix", |b| b.iter(by_commit));
    group.bench_function("latest release of app X (GetOperation latest)", |b| {
        b.iter(live_commit);
    });
    group.finish();
    tail("ListDeployments app X limit 50", one_app);
    tail("ListDeployments all apps limit 50", all_apps);
    tail("ListDeployments app X commit prefix", by_commit);
    tail("latest release of app X", live_commit);
    rt.block_on(server.shutdown());
}

criterion_group!(benches, catalog);
criterion_main!(benches);
