//! Streams through the tunnel: WebSockets (an upgrade carried as an extended CONNECT), server-sent
//! events arriving one by one, and 100 MiB both ways with checksums in bounded memory.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::harness::{route, service, tunnel};
use crate::stream_app::{pattern, pattern_sha256, stream_app};
use wayline_testkit::eventually_async;

const LIMIT: Duration = Duration::from_secs(20);

async fn ws_connect(
    ingress: SocketAddr,
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    tokio_tungstenite::tungstenite::Error,
> {
    let tcp = tokio::net::TcpStream::connect(ingress).await.unwrap();
    let connect = tokio_tungstenite::client_async(url, tcp);
    let (ws, resp) = tokio::time::timeout(LIMIT, connect)
        .await
        .expect("handshake")?;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    Ok(ws)
}

/// Text and 1 MiB binary echoed, then the close handshake and the connection closed.
async fn echo_round(mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) {
    ws.send(Message::text("hello through the tunnel"))
        .await
        .unwrap();
    let big = Bytes::from(vec![7u8; 1 << 20]);
    ws.send(Message::binary(big.clone())).await.unwrap();
    let first = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    assert_eq!(
        first.unwrap().unwrap(),
        Message::text("hello through the tunnel")
    );
    let second = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    assert_eq!(second.unwrap().unwrap(), Message::binary(big));
    ws.close(None).await.unwrap();
    // The app answers the close; then the stream ends.
    let mut frames = 0;
    while let Some(m) = tokio::time::timeout(LIMIT, ws.next()).await.unwrap() {
        frames += 1;
        assert!(frames < 3, "only the close answer comes back: {m:?}");
        match m {
            Ok(Message::Close(_)) | Err(WsError::ConnectionClosed) => {}
            other => panic!("after close: {other:?}"),
        }
    }
    drop(ws);
}

#[tokio::test]
async fn websockets_echo_through_the_tunnel_and_to_a_platform_address() {
    let app = stream_app().await;
    let s = service(vec![
        route("web", 1, "", 100),
        route("web", 2, &format!("http://{}", app.addr), 0),
    ])
    .await;
    let ingress = s.svc.ingress_addr();
    let t = tunnel(&s.socket, "d1", "tok-d1", app.addr.port());
    assert!(eventually_async(LIMIT, || async { s.svc.tunnel_count() == 1 }).await);

    for url in [
        "ws://web--v1.localhost/ws",
        "ws://web.localhost/ws",
        "ws://web--v2.localhost/ws",
    ] {
        echo_round(ws_connect(ingress, url).await.unwrap()).await;
    }

    // The app refuses an upgrade where it has none: the refusal comes back as it is.
    match ws_connect(ingress, "ws://web--v1.localhost/nope").await {
        Err(WsError::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::NOT_FOUND);
            assert_eq!(resp.body().as_deref(), Some(&b"no /nope"[..]));
        }
        other => panic!("expected the app's 404, got {other:?}"),
    }
    // The ingress finished each stream: nothing stays counted in flight.
    let backend = s.svc.table().apps["web"].deployments[&1].pick().unwrap();
    assert!(eventually_async(LIMIT, || async { backend.outstanding() == 0 }).await);
    t.abort();
}

#[tokio::test]
async fn server_sent_events_arrive_one_at_a_time() {
    let app = stream_app().await;
    let s = service(vec![route("web", 1, "", 100)]).await;
    let t = tunnel(&s.socket, "d1", "tok-d1", app.addr.port());
    assert!(eventually_async(LIMIT, || async { s.svc.tunnel_count() == 1 }).await);
    let tcp = tokio::net::TcpStream::connect(s.svc.ingress_addr())
        .await
        .unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/events")
        .header("host", "web--v1.localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut seen = String::new();
    for want in ["one", "two", "three"] {
        // The app sends the next event only once this one arrived: a buffering proxy hangs here.
        let event = format!("event: tick\ndata: {want}\n\n");
        while !seen.ends_with(&event) {
            let frame = tokio::time::timeout(LIMIT, body.frame())
                .await
                .unwrap_or_else(|_| panic!("event {want} did not arrive; so far {seen:?}"))
                .expect("the stream goes on")
                .unwrap();
            if let Some(d) = frame.data_ref() {
                seen.push_str(std::str::from_utf8(d).unwrap());
            }
            assert!(seen.len() < 200, "{seen:?}");
        }
        app.next_event.notify_one();
    }
    assert!(
        tokio::time::timeout(LIMIT, body.frame())
            .await
            .unwrap()
            .is_none()
    );
    t.abort();
}

/// Peak resident memory of this process since the last [`reset_peak`], bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

fn reset_peak() {
    // "5" resets the peak RSS (proc(5), clear_refs).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

#[tokio::test]
async fn a_100_mib_upload_and_download_stream_with_their_checksums_in_bounded_memory() {
    const SIZE: u64 = 100 << 20;
    let app = stream_app().await;
    let s = service(vec![route("web", 1, "", 100)]).await;
    let t = tunnel(&s.socket, "d1", "tok-d1", app.addr.port());
    assert!(eventually_async(LIMIT, || async { s.svc.tunnel_count() == 1 }).await);
    let want = pattern_sha256(SIZE);
    let tcp = tokio::net::TcpStream::connect(s.svc.ingress_addr())
        .await
        .unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    reset_peak();
    let before = peak_rss();

    // Upload: chunked, generated as it goes.
    let frames = futures::stream::iter(pattern(SIZE).map(|c| Ok::<_, Infallible>(Frame::data(c))));
    let req = Request::post("/sha256")
        .header("host", "web--v1.localhost")
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_mins(2), tx.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let answer = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&answer), format!("{want} {SIZE}"));

    // Download: hashed frame by frame.
    let req = Request::get(format!("/bytes/{SIZE}"))
        .header("host", "web--v1.localhost")
        .body(Empty::new().boxed())
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.headers()["content-length"], SIZE.to_string().as_str());
    let mut body = resp.into_body();
    let (mut h, mut n) = (Sha256::new(), 0u64);
    while let Some(f) = tokio::time::timeout(LIMIT, body.frame()).await.unwrap() {
        if let Some(d) = f.unwrap().data_ref() {
            n += d.len() as u64;
            h.update(d);
        }
    }
    assert_eq!((hex::encode(h.finalize()), n), (want, SIZE));
    // Streaming holds a few flow-control windows, not the body: far under 100 MiB.
    let grew = peak_rss().saturating_sub(before);
    assert!(grew < 48 << 20, "peak RSS grew by {} MiB", grew >> 20);
    t.abort();
}
