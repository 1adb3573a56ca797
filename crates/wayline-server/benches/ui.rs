//! Web UI pages with 10,000 deployments stored, and a log line's way to an open logs page.
//!
//! `cargo bench -p wayline-server --bench ui` — fills a SQLite store with 10,000 deployments of
//! one app (plus builds and releases), starts a real server on it, signs in with a login token
//! as the session cookie and times whole HTTP requests over loopback for each page (server-side
//! render included). Then opens the logs page's event stream, sends lines as an entrypoint
//! (`EntrypointLogStream`) and times each line until it arrives on the stream.
//! Then the exec page's WebSocket: the bench plays the instance's entrypoint (`EntrypointConfig`
//! and `EntrypointExecStream`, echoing stdin as a terminal does) and times each keystroke from
//! the socket's frame to its echo back on the socket. And the app page's weight: its HTML plus
//! every stylesheet and script it loads.
//! Goals: every page p95 < 20 ms; log line to open page p95 < 100 ms; keystroke echo p95 < 20 ms;
//! app page (HTML + CSS + JS) < 200 KB.
//!
//! Timed by hand, not with criterion: the goals are p95 tails of whole requests and of events
//! crossing the server to an open page, which criterion's per-call estimate does not report.

#[path = "ui/exec.rs"]
mod exec;

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unreachable_pub)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wayline_proto::v1 as pb;
use wayline_server::store::{SqliteStore, Store};

const DEPLOYMENTS: usize = 10_000;

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{name}: n={} median={:.2} ms p95={:.2} ms max={:.2} ms",
        v.len(),
        p(0.5),
        p(0.95),
        p(1.0)
    );
}

fn op(kind: pb::OperationKind, i: usize) -> pb::Operation {
    pb::Operation {
        kind: kind as i32,
        application: app("p", "web"),
        workspace: "default".into(),
        status: Some(pb::Status {
            state: pb::status::State::Success as i32,
            complete_time: Some(wayline_core::time::now()),
            ..Default::default()
        }),
        provenance: Some(pb::Provenance {
            commit: format!("{:040x}", i * 7919),
            message: format!("change {i}"),
            ..Default::default()
        }),
        labels: [("team".to_owned(), "shop".to_owned())].into(),
        physical_state: pb::PhysicalState::Created as i32,
        ..Default::default()
    }
}

async fn fill(dir: &std::path::Path) {
    let store = SqliteStore::open(&dir.join("wayline.db")).expect("open store");
    let mut pending = Vec::with_capacity(1000);
    let kinds = [
        (pb::OperationKind::Deployment, DEPLOYMENTS),
        (pb::OperationKind::Build, 1000),
        (pb::OperationKind::Release, 1000),
    ];
    for (kind, n) in kinds {
        for i in 0..n {
            pending.push(store.upsert_operation(op(kind, i)));
            if pending.len() == 1000 {
                for p in futures::future::join_all(pending.drain(..)).await {
                    p.expect("insert");
                }
            }
        }
    }
    for p in futures::future::join_all(pending).await {
        p.expect("insert");
    }
    store.close().await.expect("close");
}

/// One GET over loopback with the session cookie; returns the body.
async fn get(addr: std::net::SocketAddr, path: &str, cookie: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{path}: {}",
        &out[..out.len().min(400)]
    );
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
        let t = Instant::now();
        fill(dir.path()).await;
        println!(
            "filled {DEPLOYMENTS} deployments in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // The server refuses a data dir others can read.
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        std::fs::set_permissions(dir.path(), perms).unwrap();
        let server = wayline_server::start(options(dir.path()))
            .await
            .expect("server");
        let sock = dir.path().join("wayline.sock");
        let (token, mut c) = bootstrap(&sock).await;
        c.upsert_project(pb::UpsertProjectRequest {
            project: Some(pb::Project {
                name: "p".into(),
                applications: vec![pb::Application {
                    project: "p".into(),
                    name: "web".into(),
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
        let newest = c
            .list_deployments(pb::ListOperationsRequest {
                application: app("p", "web"),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .operations
            .remove(0);
        let addr = server.http_addr();
        let cookie = format!("wayline_token={token}");
        let pages = [
            "/".to_owned(),
            "/projects/p".to_owned(),
            "/projects/p/apps/web".to_owned(),
            "/projects/p/apps/web/builds".to_owned(),
            "/projects/p/apps/web/deployments".to_owned(),
            format!("/projects/p/apps/web/deployments/{}", newest.id),
            "/projects/p/apps/web/releases".to_owned(),
            "/projects/p/apps/web/logs".to_owned(),
            "/projects/p/apps/web/exec".to_owned(),
            "/jobs".to_owned(),
            "/runners".to_owned(),
        ];
        for page in &pages {
            get(addr, page, &cookie).await;
            let mut v = Vec::with_capacity(200);
            for _ in 0..200 {
                let t = Instant::now();
                get(addr, page, &cookie).await;
                v.push(t.elapsed());
            }
            report(&format!("page {page}"), v);
        }
        weigh(addr, &cookie).await;

        let entrypoint = entrypoint_client(&mut c, &sock, &newest).await;
        log_latency(entrypoint.clone(), addr, &cookie, &newest).await;
        exec::echo_latency(entrypoint, addr, &cookie, &newest).await;
        server.shutdown().await;
    });
}

/// The body of a response `get` returned.
fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The app page's weight: its HTML and every `/ui/assets/…` file it loads.
async fn weigh(addr: std::net::SocketAddr, cookie: &str) {
    let page = get(addr, "/projects/p/apps/web", cookie).await;
    let html = body(&page);
    let mut total = html.len();
    let mut parts = vec![format!("HTML {} B", html.len())];
    for piece in html.split("\"/ui/assets/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        let asset = get(addr, &format!("/ui/assets/{name}"), cookie).await;
        let n = body(&asset).len();
        total += n;
        parts.push(format!("{name} {n} B"));
    }
    println!(
        "app page weight: {total} bytes ({:.1} KB) = {}",
        total as f64 / 1024.0,
        parts.join(" + ")
    );
    assert!(total < 200 * 1024, "the app page weighs {total} bytes");
}

/// A client holding an entrypoint token of the deployment `d`.
async fn entrypoint_client(c: &mut Client, sock: &std::path::Path, d: &pb::Operation) -> Client {
    let token = c
        .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
            deployment_id: d.id.clone(),
            expires_in: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    with_token(unix_channel(sock).await, Some(&token))
}

/// Lines sent as the deployment's entrypoint, timed until each shows on the logs page's stream.
async fn log_latency(
    mut ec: Client,
    addr: std::net::SocketAddr,
    cookie: &str,
    dep: &pb::Operation,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::EntrypointLogBatch>(16);
    let sender = tokio::spawn(async move {
        ec.entrypoint_log_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let path = format!("/projects/p/apps/web/logs/events?deployment={}", dep.id);
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut seen = String::new();
    let mut buf = vec![0u8; 65536];
    let mut times = Vec::new();
    for i in 0..100 {
        let marker = format!("bench-line-{i}-end");
        let started = Instant::now();
        tx.send(pb::EntrypointLogBatch {
            deployment_id: dep.id.clone(),
            instance_id: "bench-instance".into(),
            lines: vec![pb::LogLine {
                timestamp: Some(wayline_core::time::now()),
                line: marker.clone(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !seen.contains(&marker) {
            assert!(
                Instant::now() < deadline,
                "line {i} never reached the page; saw:\n{seen}"
            );
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the event stream closed");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        times.push(started.elapsed());
        seen.clear();
    }
    report("log line -> open logs page (SSE)", times);
    drop(tx);
    let _ = sender.await;
}
