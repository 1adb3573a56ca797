//! CONNECT streams on the entrypoint's side of the tunnel: byte streams, not requests.
//!
//! - An **extended CONNECT** (RFC 8441, `:protocol` set, e.g. `websocket`) is an HTTP/1.1
//!   `Upgrade` the URL service received: it is replayed to the app as that upgrade request
//!   (same path and headers, `Connection: upgrade`, `Upgrade: <protocol>`); when the app
//!   switches protocols (101), the tunnel stream answers 200 with the app's headers and from then
//!   on carries the bytes both ways. Any other answer (a refusal) goes back as it is.
//! - A plain **CONNECT** is raw TCP (`url { tcp = true }`): the stream is joined to a fresh TCP
//!   connection to the app's port.
//!
//! Either way the stream ends when one side closes: its write half is shut down and the other
//! direction drains.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;

use crate::client::{AppBody, bad_gateway};
use crate::splice::splice;

/// Waits for both upgrades, then joins them.
async fn join(tunnel: OnUpgrade, app: OnUpgrade) {
    let joined = async {
        let t = tunnel.await?;
        let a = app.await?;
        Ok::<_, hyper::Error>((t, a))
    };
    match joined.await {
        Ok((t, a)) => {
            if let Err(e) = splice(TokioIo::new(t), TokioIo::new(a)).await {
                tracing::debug!(error = %e, "upgraded stream ended");
            }
        }
        Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
    }
}

/// Answers one CONNECT stream of the tunnel.
pub(crate) async fn connect(
    client: Client<HttpConnector, crate::client::AppReqBody>,
    port: u16,
    mut req: Request<Incoming>,
) -> Response<AppBody> {
    let tunnel = hyper::upgrade::on(&mut req);
    let protocol = req
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str().to_owned());
    match protocol {
        None => raw_tcp(port, tunnel).await,
        Some(p) => upgrade(client, port, &p, req, tunnel).await,
    }
}

fn empty_ok() -> Response<AppBody> {
    Response::new(Either::Right(Full::new(Bytes::new())))
}

async fn raw_tcp(port: u16, tunnel: OnUpgrade) -> Response<AppBody> {
    let app = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(e) => return bad_gateway(port, &e),
    };
    let _ = app.set_nodelay(true);
    tokio::spawn(async move {
        match tunnel.await {
            Ok(t) => {
                if let Err(e) = splice(TokioIo::new(t), app).await {
                    tracing::debug!(error = %e, "TCP stream ended");
                }
            }
            Err(e) => tracing::debug!(error = %e, "TCP stream did not open"),
        }
    });
    empty_ok()
}

async fn upgrade(
    client: Client<HttpConnector, crate::client::AppReqBody>,
    port: u16,
    protocol: &str,
    req: Request<Incoming>,
    tunnel: OnUpgrade,
) -> Response<AppBody> {
    let (mut parts, _) = req.into_parts();
    if let Some(a) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        parts.headers.insert(header::HOST, v);
    }
    let Ok(proto) = HeaderValue::from_str(protocol) else {
        return bad_gateway(port, &InvalidProtocol);
    };
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    parts.headers.insert(header::UPGRADE, proto);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    parts.uri = match Uri::try_from(format!("http://127.0.0.1:{port}{path}")) {
        Ok(u) => u,
        Err(e) => return bad_gateway(port, &e),
    };
    parts.method = http::Method::GET;
    parts.version = http::Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    let body = Empty::<Bytes>::new().map_err(|n| match n {}).boxed();
    let mut resp = match client.request(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => return bad_gateway(port, &e),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return resp.map(Either::Left);
    }
    let app = hyper::upgrade::on(&mut resp);
    tokio::spawn(join(tunnel, app));
    let (mut head, _) = resp.into_parts();
    head.status = StatusCode::OK;
    for h in [
        header::CONNECTION,
        header::UPGRADE,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        head.headers.remove(h);
    }
    head.extensions = http::Extensions::new();
    let (_, body) = empty_ok().into_parts();
    Response::from_parts(head, body)
}

/// A `:protocol` that is no header value.
#[derive(Debug, thiserror::Error)]
#[error("the upgrade protocol is not a valid header value")]
struct InvalidProtocol;
