//! HTTP/1.1 `Upgrade` (WebSockets and the like) at the ingress.
//!
//! Through a tunnel the upgrade travels as an extended CONNECT stream (RFC 8441): `:protocol`
//! is the `Upgrade` value and the request keeps its path and headers (`Sec-WebSocket-Key` and
//! friends, end to end between the browser and the app), so the entrypoint can replay it to the
//! app as the same HTTP/1.1 upgrade. A 200 on the stream means the app switched; the client
//! gets `101 Switching Protocols` with the app's headers, and the two byte streams are joined.
//! To a platform address the upgrade is simply forwarded as HTTP/1.1.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::backend::Backend;
use crate::proxy::{RespBody, forwarded, strip_hop_headers};
use crate::splice::splice;

/// The protocol an HTTP/1.1 request asks to switch to: `Upgrade: <one protocol>` with
/// `upgrade` among its `Connection` tokens. `h2c` is not forwarded (the tunnel already is h2).
pub fn requested(h: &HeaderMap) -> Option<HeaderValue> {
    let asks = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return None;
    }
    let p = h.get(header::UPGRADE)?.to_str().ok()?.trim();
    let valid = !p.is_empty()
        && !p.eq_ignore_ascii_case("h2c")
        && p.bytes().all(|b| b.is_ascii_graphic() && b != b',');
    if !valid {
        return None;
    }
    HeaderValue::from_str(&p.to_ascii_lowercase()).ok()
}

/// Proxies one upgrade request to `backend`: the instance's refusal as it is, or `101` and the
/// bytes joined in the background (counted as one request in flight while they flow).
pub async fn proxy(
    backend: &Arc<Backend>,
    mut req: Request<Incoming>,
    protocol: HeaderValue,
    peer: SocketAddr,
    raw_host: &str,
    path: &str,
) -> Result<Response<RespBody>, String> {
    let client = hyper::upgrade::on(&mut req);
    let (mut parts, _) = req.into_parts();
    strip_hop_headers(&mut parts.headers);
    forwarded(&mut parts.headers, peer, raw_host);
    parts.extensions = http::Extensions::new();
    let body = Empty::<Bytes>::new().map_err(|n| match n {}).boxed();
    let outgoing = Request::from_parts(parts, body);
    let (mut resp, switched) = {
        let _flight = backend.begin();
        backend
            .send_upgrade(outgoing, &protocol, raw_host, path)
            .await?
    };
    let instance = hyper::upgrade::on(&mut resp);
    let (mut head, body) = resp.into_parts();
    strip_hop_headers(&mut head.headers);
    if !switched {
        return Ok(Response::from_parts(head, Either::Left(body)));
    }
    head.status = StatusCode::SWITCHING_PROTOCOLS;
    head.headers.remove(header::CONTENT_LENGTH);
    head.headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    head.headers.insert(header::UPGRADE, protocol);
    head.extensions = http::Extensions::new();
    let backend = Arc::clone(backend);
    tokio::spawn(async move {
        let _flight = backend.begin();
        join(client, instance).await;
    });
    Ok(Response::from_parts(
        head,
        Either::Right(Full::new(Bytes::new())),
    ))
}

/// Waits for both sides' upgrades, then joins them until both directions end.
async fn join(client: OnUpgrade, instance: OnUpgrade) {
    let (c, i) = match tokio::try_join!(client, instance) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    match splice(TokioIo::new(c), TokioIo::new(i)).await {
        Ok((up, down)) => tracing::debug!(up, down, "upgraded stream closed"),
        Err(e) => tracing::debug!(error = %e, "upgraded stream broke"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn an_upgrade_needs_both_headers_one_protocol_and_not_h2c() {
        let ws = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ]);
        assert_eq!(requested(&ws), Some(HeaderValue::from_static("websocket")));
        assert_eq!(requested(&headers(&[("upgrade", "websocket")])), None);
        assert_eq!(requested(&headers(&[("connection", "upgrade")])), None);
        let h2c = headers(&[("connection", "upgrade"), ("upgrade", "h2c")]);
        assert_eq!(requested(&h2c), None);
        let two = headers(&[("connection", "upgrade"), ("upgrade", "a, b")]);
        assert_eq!(requested(&two), None);
    }
}
