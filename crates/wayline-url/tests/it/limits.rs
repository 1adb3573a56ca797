//! Limits through the ingress: a rate per host (429 with `Retry-After`), bandwidth shaping, a
//! bound on a deployment's requests in flight (503), tunnels per deployment; and the per-host
//! figures for `/metrics`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use wayline_core::url::{UrlLimits, UrlRoute};

use crate::harness::{Running, app, fetch, get, route, service_with, tunnel};
use crate::stream_app::stream_app;
use wayline_testkit::eventually_async;

const LIMIT: Duration = Duration::from_secs(10);

/// Opens d1's tunnel to the app at `port` and waits until `web` v1 can be routed to it.
async fn serve_web_v1(
    s: &Running,
    port: u16,
) -> tokio::task::JoinHandle<Result<(), wayline_url::client::TunnelError>> {
    let t = tunnel(&s.socket, "d1", "tok-d1", port);
    assert!(eventually_async(LIMIT, || async { s.svc.tunnel_count() == 1 }).await);
    assert!(
        eventually_async(LIMIT, || async {
            s.svc.table().apps["web"].deployments[&1].pick().is_some()
        })
        .await
    );
    t
}

fn limited(host: &str, seq: u64, limits: UrlLimits) -> UrlRoute {
    UrlRoute {
        limits,
        ..route(host, seq, "", 100)
    }
}

#[tokio::test]
async fn a_burst_over_the_rate_gets_429_with_retry_after_and_the_limit_named() {
    let app1 = app("one").await;
    let app2 = app("two").await;
    let own = UrlLimits {
        requests_per_second: 1,
        burst: 2,
        ..UrlLimits::default()
    };
    let api = UrlRoute {
        deployment_id: "api1".into(),
        ..route("api", 1, &format!("http://{app2}"), 100)
    };
    // `web` sets its own rate; `api` takes the service's default (no rate).
    let s = service_with(vec![limited("web", 1, own), api], |o| {
        o.limits.max_requests = 50;
    })
    .await;
    let ingress = s.svc.ingress_addr();
    let t = serve_web_v1(&s, app1.port()).await;

    for _ in 0..2 {
        let (status, body) = get(ingress, "web.localhost", "/").await;
        assert_eq!(status, 200, "{body}");
    }
    let r = fetch(ingress, "web.localhost", "/", Bytes::new()).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let reason =
        "web.localhost is over its rate limit of 1 requests per second (burst 2); retry in 1 s";
    assert_eq!(r.headers()["x-wayline-reason"], reason);
    assert!(String::from_utf8_lossy(r.body()).contains(reason));
    let text = s.svc.metrics().render();
    let refused = "wayline_url_refused_total{host=\"web.localhost\",limit=\"rate\"} 1";
    assert!(text.lines().any(|l| l == refused), "{text}");
    // Each host has its own bucket: the deployment's host is not spent by the app host's.
    let (status, _) = get(ingress, "web--v1.localhost", "/").await;
    assert_eq!(status, 200);
    for _ in 0..5 {
        let (status, _) = get(ingress, "api.localhost", "/").await;
        assert_eq!(status, 200, "api has no rate limit");
    }
    t.abort();
}

#[tokio::test]
async fn bandwidth_shapes_a_download_without_cutting_it() {
    let app = stream_app().await;
    let own = UrlLimits {
        bytes_per_second: 256 << 10,
        ..UrlLimits::default()
    };
    let s = service_with(vec![limited("web", 1, own)], |_| {}).await;
    let ingress = s.svc.ingress_addr();
    let t = serve_web_v1(&s, app.addr.port()).await;
    let started = Instant::now();
    let r = fetch(ingress, "web.localhost", "/bytes/1048576", Bytes::new()).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(r.body().len(), 1 << 20, "all of it arrives");
    // 1 MiB at 256 KiB/s is 4 s less the quarter second let through at once; only the
    // lower bound is asserted (a slow machine only adds time).
    assert!(took >= Duration::from_secs(3), "took {took:?}");
    t.abort();
}

#[tokio::test]
async fn a_deployment_at_its_requests_in_flight_limit_answers_503_with_the_reason() {
    let app1 = app("one").await;
    let s = service_with(vec![route("web", 1, "", 100)], |o| {
        o.limits.max_requests = 1;
    })
    .await;
    let ingress = s.svc.ingress_addr();
    let t = serve_web_v1(&s, app1.port()).await;
    let slow = tokio::spawn(async move { get(ingress, "web.localhost", "/slow").await });
    let table = s.svc.table();
    let host = &table.apps["web"].deployments[&1].host;
    assert!(eventually_async(LIMIT, || async { host.in_flight() == 1 }).await);
    // Through the deployment's own host too: the bound is the deployment's.
    let r = fetch(ingress, "web--v1.localhost", "/", Bytes::new()).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers()["x-wayline-reason"],
        "web v1 is at its limit of 1 requests in flight (max_requests); try again shortly"
    );
    let text = s.svc.metrics().render();
    let refused = "wayline_url_refused_total{host=\"web--v1.localhost\",limit=\"requests\"} 1";
    assert!(text.lines().any(|l| l == refused), "{text}");
    let (status, _) = slow.await.unwrap();
    assert_eq!(status, 200);
    assert!(eventually_async(LIMIT, || async { host.in_flight() == 0 }).await);
    let (status, _) = get(ingress, "web.localhost", "/").await;
    assert_eq!(status, 200);
    t.abort();
}

#[tokio::test]
async fn a_tunnel_over_the_deployments_limit_is_refused_with_the_reason() {
    let app1 = app("one").await;
    let s = service_with(vec![route("web", 1, "", 100)], |o| {
        o.tunnels.per_deployment = 1;
    })
    .await;
    let t = tunnel(&s.socket, "d1", "tok-d1", app1.port());
    assert!(eventually_async(LIMIT, || async { s.svc.tunnel_count() == 1 }).await);
    let err = tunnel(&s.socket, "d1", "tok-d1", app1.port())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the URL service refused the tunnel: deployment d1 already has 1 tunnels open, its limit (the URL service's `-url-max-tunnels`)"
    );
    assert!(err.refused());
    assert_eq!(s.svc.tunnel_count(), 1);
    t.abort();
}

#[tokio::test]
async fn figures_are_counted_per_existing_host() {
    let app1 = app("one").await;
    let s = service_with(vec![route("web", 1, "", 100)], |_| {}).await;
    let ingress = s.svc.ingress_addr();
    let t = serve_web_v1(&s, app1.port()).await;
    for _ in 0..3 {
        assert_eq!(get(ingress, "web.localhost", "/").await.0, 200);
    }
    let (status, body) = crate::harness::send(
        ingress,
        "web--v1.localhost",
        "/echo",
        Bytes::from_static(b"0123456789"),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (http::StatusCode::OK, "0123456789")
    );
    assert_eq!(get(ingress, "web--v9.localhost", "/").await.0, 404);
    assert_eq!(get(ingress, "nope.localhost", "/").await.0, 404);
    let text = s.svc.metrics().render();
    for line in [
        "wayline_url_requests_total{host=\"web.localhost\",class=\"2xx\"} 3",
        "wayline_url_requests_total{host=\"web--v1.localhost\",class=\"2xx\"} 1",
        "wayline_url_received_bytes_total{host=\"web--v1.localhost\"} 10",
        "wayline_url_sent_bytes_total{host=\"web--v1.localhost\"} 10",
        "wayline_url_request_duration_seconds_count{host=\"web.localhost\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(!text.contains("nope") && !text.contains("v9"), "{text}");
    t.abort();
}
