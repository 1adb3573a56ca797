//! The URL service end to end in one process: ingress, tunnels, direct addresses, pages.

mod harness;
mod limits;
mod stream_app;
mod streams;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use harness::{SLOW_REQUESTS, app, get, route, send, service, tunnel};
use wayline_testkit::eventually_async;

#[tokio::test]
async fn hosts_route_to_tunnels_direct_addresses_and_pages() {
    let app1 = app("one").await;
    let app2 = app("two").await;
    let s = service(vec![
        route("web", 1, "", 100),
        route("web", 2, &format!("http://{app2}"), 0),
        wayline_core::url::UrlRoute {
            deployment_id: "api1".into(),
            ..route("api", 1, "", 100)
        },
    ])
    .await;
    let ingress = s.svc.ingress_addr();
    let t = tunnel(&s.socket, "d1", "tok-d1", app1.port());
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            s.svc.tunnel_count() == 1
        })
        .await
    );
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            !s.svc.table().apps["web"].deployments[&1]
                .backends
                .is_empty()
        })
        .await
    );

    let (status, body) = get(ingress, "web--v1.localhost:9703", "/a").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "one /a host=web--v1.localhost:9703 xff=127.0.0.1 xfh=web--v1.localhost:9703 xfp=http"
    );
    let (_, body) = get(ingress, "web.localhost", "/").await;
    assert!(body.starts_with("one / "), "the release is v1: {body}");
    let (_, body) = get(ingress, "WEB--V2.localhost", "/b").await;
    assert!(
        body.starts_with("two /b host=WEB--V2.localhost") && body.contains("xfh=web--v2.localhost"),
        "v2 is direct: {body}"
    );

    let (status, body) = get(ingress, "web--v9.localhost", "/").await;
    assert_eq!(status, 404);
    assert!(body.contains("web has no deployment v9"), "{body}");
    assert!(
        body.contains(&format!("http://web--v2.localhost:{}/", ingress.port())),
        "{body}"
    );
    let (status, body) = get(ingress, "nope.localhost", "/").await;
    assert_eq!(status, 404);
    assert!(body.contains("no app has the host `nope`"), "{body}");
    let (status, body) = get(ingress, "example.com", "/").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("`example.com` is not an app host here"),
        "{body}"
    );
    let (status, body) = get(ingress, "api.localhost", "/").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("api v1 has no instance to serve it"),
        "{body}"
    );

    // Bodies stream both ways through the tunnel.
    let big = Bytes::from(vec![b'x'; 3 << 20]);
    let (status, body) = send(ingress, "web--v1.localhost", "/echo", big.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), big.len());

    // The routes change: v2 released, the app host follows.
    s.routes.send_replace(Arc::new(vec![
        route("web", 1, "", 0),
        route("web", 2, &format!("http://{app2}"), 100),
    ]));
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            s.svc.table().apps["web"]
                .released(0)
                .is_some_and(|d| d.sequence == 2)
        })
        .await
    );
    let (_, body) = get(ingress, "web.localhost", "/").await;
    assert!(body.starts_with("two /"), "{body}");
    t.abort();
}

#[tokio::test]
async fn a_dying_tunnel_fails_its_requests_with_502_and_the_next_tunnel_serves() {
    let app1 = app("one").await;
    let s = service(vec![route("web", 1, "", 100)]).await;
    let ingress = s.svc.ingress_addr();
    let t = tunnel(&s.socket, "d1", "tok-d1", app1.port());
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            s.svc.tunnel_count() == 1
        })
        .await
    );
    let before = SLOW_REQUESTS.load(Ordering::SeqCst);
    let slow = tokio::spawn(async move { get(ingress, "web.localhost", "/slow").await });
    // Cut the tunnel while the request is at the app.
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            SLOW_REQUESTS.load(Ordering::SeqCst) > before
        })
        .await,
        "the slow request never reached the app"
    );
    t.abort();
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("the tunnel failed"), "{body}");
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            s.svc.tunnel_count() == 0
        })
        .await
    );
    let (status, _) = get(ingress, "web.localhost", "/").await;
    assert_eq!(status, 503, "no tunnel, no address");
    let t2 = tunnel(&s.socket, "d1", "tok-d1", app1.port());
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            s.svc.tunnel_count() == 1
        })
        .await
    );
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            s.svc.table().apps["web"].deployments[&1].pick().is_some()
        })
        .await
    );
    let (status, body) = get(ingress, "web.localhost", "/").await;
    assert_eq!(status, 200, "{body}");
    t2.abort();
}

#[tokio::test]
async fn a_token_opens_tunnels_for_its_own_deployment_only() {
    let app1 = app("one").await;
    let s = service(vec![route("web", 1, "", 100), route("web", 2, "", 0)]).await;
    let err = tunnel(&s.socket, "d2", "tok-d1", app1.port())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the URL service refused the tunnel: this tunnel token is for deployment d1, not d2"
    );
    assert!(err.refused());
    assert_eq!(s.svc.tunnel_count(), 0);
}

#[tokio::test]
async fn the_health_check_passes_on_an_answer_and_fails_when_only_the_tunnel_answers() {
    let app1 = app("one").await;
    // A port nothing listens on: the tunnel client answers 502 itself.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = service(vec![
        route("web", 1, "", 100),
        wayline_core::url::UrlRoute {
            deployment_id: "d2".into(),
            ..route("web", 2, "", 0)
        },
    ])
    .await;
    let t1 = tunnel(&s.socket, "d1", "tok-d1", app1.port());
    let t2 = tunnel(&s.socket, "d2", "tok-d2", closed.port());
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            s.svc.tunnel_count() == 2
        })
        .await
    );
    let ok = s
        .svc
        .check_health("d1", "/up", Duration::from_secs(5))
        .await;
    assert_eq!(ok, Ok("GET /up answered 200 OK".to_owned()));
    let err = s
        .svc
        .check_health("d2", "", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        err.starts_with("it did not pass its health check (GET /) within 1s: the app does not answer behind instance i-d2 (502 Bad Gateway)"),
        "{err}"
    );
    t1.abort();
    t2.abort();
}
