//! An app for the streaming tests: a WebSocket echo (`/ws`), server-sent events that wait for
//! the test between events (`/events`), a streaming sha256 of the upload (`/sha256`), a
//! streamed download of a known pattern (`/bytes/<n>`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Chunk size of generated bodies.
pub(crate) const CHUNK: usize = 64 << 10;

type Body = BoxBody<Bytes, Infallible>;

/// The app's handle: the event gate the test opens between server-sent events.
pub(crate) struct StreamApp {
    pub(crate) addr: SocketAddr,
    pub(crate) next_event: Arc<Notify>,
}

/// The byte pattern of generated bodies: byte `i` is `i % 251`, in `CHUNK`-sized pieces.
pub(crate) fn pattern(total: u64) -> impl Iterator<Item = Bytes> {
    let base = Bytes::from(
        (0..CHUNK + 251)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect::<Vec<u8>>(),
    );
    let chunk = CHUNK as u64;
    (0..total.div_ceil(chunk)).map(move |k| {
        let off = usize::try_from((k * chunk) % 251).unwrap();
        let len = usize::try_from(chunk.min(total - k * chunk)).unwrap();
        base.slice(off..off + len)
    })
}

/// The sha256 (hex) of `pattern(total)`.
pub(crate) fn pattern_sha256(total: u64) -> String {
    let mut h = Sha256::new();
    for c in pattern(total) {
        h.update(&c);
    }
    hex::encode(h.finalize())
}

fn text(status: StatusCode, s: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(s)).boxed());
    *r.status_mut() = status;
    r
}

fn websocket(mut req: Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return text(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key".into());
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = upgrade.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await;
        // A close is answered by the library on the next read, which then ends the stream.
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .body(Full::new(Bytes::new()).boxed())
        .unwrap()
}

/// Three events; each after the first waits until the test saw the one before.
fn events(next: Arc<Notify>) -> Response<Body> {
    let stream = futures::stream::unfold(0u8, move |n| {
        let next = Arc::clone(&next);
        async move {
            if n == 3 {
                return None;
            }
            if n > 0 {
                next.notified().await;
            }
            let names = ["one", "two", "three"];
            let ev = format!("event: tick\ndata: {}\n\n", names[usize::from(n)]);
            Some((Ok::<_, Infallible>(Frame::data(Bytes::from(ev))), n + 1))
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

async fn sha256(req: Request<Incoming>) -> Response<Body> {
    let mut body = req.into_body();
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    n += d.len() as u64;
                    h.update(d);
                }
            }
            Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    text(StatusCode::OK, format!("{} {n}", hex::encode(h.finalize())))
}

fn download(n: &str) -> Response<Body> {
    let Ok(total) = n.parse::<u64>() else {
        return text(StatusCode::BAD_REQUEST, format!("not a size: {n}"));
    };
    let frames = futures::stream::iter(pattern(total).map(|c| Ok(Frame::data(c))));
    Response::builder()
        .header(header::CONTENT_LENGTH, total)
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .unwrap()
}

async fn route(next: Arc<Notify>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/ws" => websocket(req),
        "/events" => events(next),
        "/sha256" => sha256(req).await,
        p if p.starts_with("/bytes/") => download(&p["/bytes/".len()..]),
        _ => text(StatusCode::NOT_FOUND, format!("no {path}")),
    }
}

/// Starts the app on a free port.
pub(crate) async fn stream_app() -> StreamApp {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let next_event = Arc::new(Notify::new());
    let next = Arc::clone(&next_event);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let next = Arc::clone(&next);
                    async move { Ok::<_, Infallible>(route(next, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    StreamApp { addr, next_event }
}
