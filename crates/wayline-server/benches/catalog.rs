//! Catalog reads with 100,000 deployments across 100 apps (plus 10,000 releases).
//!
//! `cargo bench -p wayline-server --bench catalog` — fills a SQLite store through the `Store`
//! trait, starts a real server on it and times gRPC calls over the unix socket with criterion
//! (one figure per call): `ListDeployments` with `limit 50`, the same across all apps, with a
//! commit filter, and "latest release of app X" (`GetOperation` latest). Goal: each under 10 ms.

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unreachable_pub)]
mod common;

use std::cell::Cell;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};

use common::*;
use wayline_proto::v1 as pb;
use wayline_server::store::{SqliteStore, Store};

const APPS: usize = 100;
const DEPLOYMENTS: usize = 100_000;
const RELEASES: usize = 10_000;

fn record(kind: pb::OperationKind, i: usize) -> pb::Operation {
    pb::Operation {
        kind: kind as i32,
        application: app("p", &format!("app-{}", i % APPS)),
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

async fn fill(dir: &std::path::Path) {
    let store = SqliteStore::open(&dir.join("wayline.db")).expect("open store");
    let t = Instant::now();
    let mut pending = Vec::with_capacity(1000);
    for i in 0..DEPLOYMENTS + RELEASES {
        let kind = if i < DEPLOYMENTS {
            pb::OperationKind::Deployment
        } else {
            pb::OperationKind::Release
        };
        pending.push(store.upsert_operation(record(kind, i)));
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
    println!(
        "filled {DEPLOYMENTS} deployments and {RELEASES} releases across {APPS} apps in {:.1} s",
        t.elapsed().as_secs_f64()
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

fn latest_release(i: usize) -> pb::GetOperationRequest {
    pb::GetOperationRequest {
        kind: pb::OperationKind::Release as i32,
        target: Some(pb::get_operation_request::Target::Latest(
            pb::get_operation_request::Latest {
                application: app("p", &format!("app-{}", (i * 13) % APPS)),
                workspace: String::new(),
                success_only: true,
            },
        )),
    }
}

fn catalog(c: &mut Criterion) {
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
    rt.block_on(fill(dir.path()));
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

    let mut group = c.benchmark_group("catalog");
    group.bench_function("ListDeployments app X limit 50", |b| {
        b.iter(|| {
            let req = list(Some(format!("app-{}", (step() * 37) % APPS)), String::new());
            let ops = rt
                .block_on(client.clone().list_deployments(req))
                .unwrap()
                .into_inner()
                .operations;
            assert_eq!(ops.len(), 50);
        });
    });
    group.bench_function("ListDeployments all apps limit 50", |b| {
        b.iter(|| {
            let ops = rt
                .block_on(client.clone().list_deployments(list(None, String::new())))
                .unwrap()
                .into_inner()
                .operations;
            assert_eq!(ops.len(), 50);
        });
    });
    group.bench_function("ListDeployments app X commit prefix", |b| {
        b.iter(|| {
            let i = step();
            let req = list(
                Some(format!("app-{}", i % APPS)),
                format!("{:040x}", i * 7919)[..7].to_owned(),
            );
            rt.block_on(client.clone().list_deployments(req)).unwrap();
        });
    });
    group.bench_function("latest release of app X (GetOperation latest)", |b| {
        b.iter(|| {
            let r = rt
                .block_on(client.clone().get_operation(latest_release(step())))
                .unwrap()
                .into_inner();
            assert!(r.live);
        });
    });
    group.finish();
    rt.block_on(server.shutdown());
}

criterion_group!(benches, catalog);
criterion_main!(benches);
