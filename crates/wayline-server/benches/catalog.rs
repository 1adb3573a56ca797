//! Catalog reads with 100,000 deployments across 100 apps (plus 10,000 releases).
//!
//! `cargo bench -p wayline-server --bench catalog` — fills a SQLite store through the `Store`
//! trait, starts a real server on it and times gRPC calls over the unix socket: `ListDeployments`
//! with `limit 50`, the same across all apps, with a commit filter, and "latest release of app X"
//! (`GetOperation` latest). Goal: each under 10 ms.

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unreachable_pub)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use wayline_proto::v1 as pb;
use wayline_server::store::{SqliteStore, Store};

const APPS: usize = 100;
const DEPLOYMENTS: usize = 100_000;
const RELEASES: usize = 10_000;

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{name}: n={} median={:.3} ms p99={:.3} ms",
        v.len(),
        p(0.5),
        p(0.99)
    );
}

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

async fn time<F, Fut>(n: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        v.push(t.elapsed());
    }
    v
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path()).await;
        let server = wayline_server::start(options(dir.path()))
            .await
            .expect("server");
        let token = with_token(unix_channel(&dir.path().join("wayline.sock")).await, None)
            .bootstrap_token(())
            .await
            .unwrap()
            .into_inner()
            .token;
        let c = with_token(
            unix_channel(&dir.path().join("wayline.sock")).await,
            Some(&token),
        );

        let list = |app_name: Option<String>, commit: String| pb::ListOperationsRequest {
            application: app_name.and_then(|a| app("p", &a)),
            limit: 50,
            commit,
            ..Default::default()
        };
        let v = time(500, |i| {
            let mut c = c.clone();
            let req = list(Some(format!("app-{}", (i * 37) % APPS)), String::new());
            async move {
                let ops = c
                    .list_deployments(req)
                    .await
                    .unwrap()
                    .into_inner()
                    .operations;
                assert_eq!(ops.len(), 50);
            }
        })
        .await;
        report("ListDeployments app X limit 50", v);
        let v = time(200, |_| {
            let mut c = c.clone();
            let req = list(None, String::new());
            async move {
                assert_eq!(
                    c.list_deployments(req)
                        .await
                        .unwrap()
                        .into_inner()
                        .operations
                        .len(),
                    50
                );
            }
        })
        .await;
        report("ListDeployments all apps limit 50", v);
        let v = time(200, |i| {
            let mut c = c.clone();
            let req = list(
                Some(format!("app-{}", i % APPS)),
                format!("{:040x}", i * 7919)[..7].to_owned(),
            );
            async move {
                c.list_deployments(req).await.unwrap();
            }
        })
        .await;
        report("ListDeployments app X commit prefix", v);
        let v = time(500, |i| {
            let mut c = c.clone();
            let req = pb::GetOperationRequest {
                kind: pb::OperationKind::Release as i32,
                target: Some(pb::get_operation_request::Target::Latest(
                    pb::get_operation_request::Latest {
                        application: app("p", &format!("app-{}", (i * 13) % APPS)),
                        workspace: String::new(),
                        success_only: true,
                    },
                )),
            };
            async move {
                let r = c.get_operation(req).await.unwrap().into_inner();
                assert!(r.live);
            }
        })
        .await;
        report("latest release of app X (GetOperation latest)", v);
        server.shutdown().await;
    });
}
