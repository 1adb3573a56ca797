//! The ingress: HTTP/1.1 on the public port, each request routed by `Host` through the table to
//! an instance, with `X-Forwarded-*` added and bodies streamed both ways.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;

use crate::backend::Backend;
use crate::host;
use crate::pages::page;
use crate::service::State;

/// What the ingress answers with: an instance's body or one of our pages.
pub type RespBody = Either<Incoming, Full<Bytes>>;

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1).
const HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, and those the `Connection` header names.
pub fn strip_hop_headers(h: &mut HeaderMap) {
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for n in named {
        h.remove(n.as_str());
    }
    for n in HOP {
        h.remove(n);
    }
    h.remove(header::TRANSFER_ENCODING);
}

fn ours(status: StatusCode, msg: &str, hosts: &[String], port: u16) -> Response<RespBody> {
    page(status, msg, hosts, port).map(Either::Right)
}

/// Adds `X-Forwarded-For` (appended), `-Proto` and `-Host`.
pub(crate) fn forwarded(h: &mut HeaderMap, peer: SocketAddr, host: &str) {
    let ip = peer.ip().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) if prev.len() < 1024 => format!("{prev}, {ip}"),
        _ => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Ok(v) = HeaderValue::from_str(host) {
        h.insert("x-forwarded-host", v);
    }
}

/// Routes one request.
pub async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<RespBody> {
    let port = state.public_port;
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str))
        .unwrap_or("")
        .to_ascii_lowercase();
    let public_host = host::strip_port(&raw).to_owned();
    let Some(target) = host::parse(&public_host, &state.domain) else {
        let msg = format!(
            "`{public_host}` is not an app host here: apps answer at <app>.{} and <app>--v<N>.{}",
            state.domain, state.domain
        );
        return ours(StatusCode::NOT_FOUND, &msg, &[], port);
    };
    let table = state.table();
    let Some(app) = table.apps.get(target.app) else {
        let msg = format!("no app has the host `{}`", target.app);
        return ours(StatusCode::NOT_FOUND, &msg, &[], port);
    };
    let deployment = match target.sequence {
        Some(n) => match app.deployments.get(&n) {
            Some(d) => d,
            None => {
                let msg = format!("{} has no deployment v{n}", target.app);
                return ours(
                    StatusCode::NOT_FOUND,
                    &msg,
                    &app.hosts(target.app, &state.domain),
                    port,
                );
            }
        },
        None => match app.released(state.roll()) {
            Some(d) => d,
            None => {
                let msg = format!("{} has no released deployment yet", target.app);
                return ours(
                    StatusCode::NOT_FOUND,
                    &msg,
                    &app.hosts(target.app, &state.domain),
                    port,
                );
            }
        },
    };
    let Some(backend) = deployment.pick() else {
        let msg = format!(
            "{} v{} has no instance to serve it: no entrypoint tunnel is connected and its platform reported no address",
            target.app, deployment.sequence
        );
        return ours(StatusCode::SERVICE_UNAVAILABLE, &msg, &[], port);
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    let result = match crate::upgrade::requested(req.headers()) {
        Some(protocol) => crate::upgrade::proxy(&backend, req, protocol, peer, &raw, &path).await,
        None => forward(&backend, req, peer, &raw, &path).await,
    };
    result.unwrap_or_else(|e| {
        tracing::debug!(app = target.app, sequence = deployment.sequence, error = %e, "proxy error");
        let msg = format!(
            "{} v{} ({}): {e}",
            target.app,
            deployment.sequence,
            backend.name()
        );
        ours(StatusCode::BAD_GATEWAY, &msg, &[], port)
    })
}

/// Sends one plain request to the instance; the answer's body streams back.
async fn forward(
    backend: &Backend,
    req: Request<Incoming>,
    peer: SocketAddr,
    raw_host: &str,
    path: &str,
) -> Result<Response<RespBody>, String> {
    let (mut parts, body) = req.into_parts();
    strip_hop_headers(&mut parts.headers);
    forwarded(&mut parts.headers, peer, raw_host);
    let outgoing = Request::from_parts(parts, body.boxed());
    let _flight = backend.begin();
    let resp = backend.send(outgoing, raw_host, path).await?;
    let (mut parts, body) = resp.into_parts();
    strip_hop_headers(&mut parts.headers);
    Ok(Response::from_parts(parts, Either::Left(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_headers_go_and_forwarded_ones_come() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_headers(&mut h);
        forwarded(
            &mut h,
            "127.0.0.1:5000".parse().unwrap(),
            "web.localhost:9703",
        );
        assert!(h.get("x-secret").is_none() && h.get("connection").is_none());
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "web.localhost:9703");
        assert_eq!(h["accept"], "*/*");
    }
}
