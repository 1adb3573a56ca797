//! The ingress: HTTP/1.1 on the public port, each request routed by `Host` through the table to
//! an instance, with `X-Forwarded-*` added and bodies streamed both ways.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;

use crate::backend::Backend;
use crate::host;
use crate::limits::{Active, Host};
use crate::metered::{Meter, Metered, Way};
use crate::pages::page;
use crate::service::State;
use crate::table::Deployment;

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

/// What a request was routed to.
struct Routed {
    app: String,
    deployment: Arc<Deployment>,
    /// The host it came for (the app's or the deployment's).
    host: Arc<Host>,
}

/// Finds the deployment for `public_host`, or the page that says why there is none (with the
/// host entry when the host exists, so the page is counted on it).
fn resolve(state: &State, public_host: &str) -> Result<Routed, Response<RespBody>> {
    let port = state.public_port;
    let Some(target) = host::parse(public_host, &state.domain) else {
        let msg = format!(
            "`{public_host}` is not an app host here: apps answer at <app>.{} and <app>--v<N>.{}",
            state.domain, state.domain
        );
        return Err(ours(StatusCode::NOT_FOUND, &msg, &[], port));
    };
    let table = state.table();
    let Some(app) = table.apps.get(target.app) else {
        let msg = format!("no app has the host `{}`", target.app);
        return Err(ours(StatusCode::NOT_FOUND, &msg, &[], port));
    };
    let found = match target.sequence {
        Some(n) => app
            .deployments
            .get(&n)
            .map(|d| (Arc::clone(d), Arc::clone(&d.host)))
            .ok_or_else(|| format!("{} has no deployment v{n}", target.app)),
        None => app
            .released(state.roll())
            .map(|d| (Arc::clone(d), Arc::clone(&app.host)))
            .ok_or_else(|| format!("{} has no released deployment yet", target.app)),
    };
    match found {
        Ok((deployment, host)) => Ok(Routed {
            app: target.app.to_owned(),
            deployment,
            host,
        }),
        Err(msg) => {
            let hosts = app.hosts(target.app, &state.domain);
            Err(ours(StatusCode::NOT_FOUND, &msg, &hosts, port))
        }
    }
}

/// Routes one request; the answer is counted on its host and its body metered.
pub async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Metered<RespBody>> {
    let started = Instant::now();
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str))
        .unwrap_or("")
        .to_ascii_lowercase();
    let public_host = host::strip_port(&raw).to_owned();
    let routed = match resolve(&state, &public_host) {
        Ok(r) => r,
        Err(page) => return page.map(Metered::plain),
    };
    let host = Arc::clone(&routed.host);
    let (resp, active) = match limited(&state, routed, peer, req, &raw).await {
        Ok(pair) => pair,
        Err(page) => (page, None),
    };
    host.stats.record(resp.status().as_u16(), started.elapsed());
    resp.map(|b| Metered::new(b, Meter::new(host, Way::Out, active)))
}

/// Applies the host's rate and the deployment's bound on requests in flight, then proxies.
async fn limited(
    state: &State,
    routed: Routed,
    peer: SocketAddr,
    req: Request<Incoming>,
    raw: &str,
) -> Result<(Response<RespBody>, Option<Active>), Response<RespBody>> {
    let port = state.public_port;
    let Routed {
        app,
        deployment,
        host,
    } = routed;
    if let Some(rate) = &host.rate
        && let Err(wait) = rate.check()
    {
        host.stats.over_rate.fetch_add(1, Ordering::Relaxed);
        let secs = crate::limits::retry_after_secs(wait);
        let msg = format!(
            "{} is over its rate limit of {} requests per second (burst {}); retry in {secs} s",
            host.name, rate.per_second, rate.burst
        );
        let mut page = ours(StatusCode::TOO_MANY_REQUESTS, &msg, &[], port);
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Err(page);
    }
    let active = deployment.host.enter().map_err(|limit| {
        host.stats.over_requests.fetch_add(1, Ordering::Relaxed);
        let msg = format!(
            "{app} v{} is at its limit of {limit} requests in flight (max_requests); try again shortly",
            deployment.sequence
        );
        ours(StatusCode::SERVICE_UNAVAILABLE, &msg, &[], port)
    })?;
    let Some(backend) = deployment.pick() else {
        let msg = format!(
            "{app} v{} has no instance to serve it: no entrypoint tunnel is connected and its platform reported no address",
            deployment.sequence
        );
        return Err(ours(StatusCode::SERVICE_UNAVAILABLE, &msg, &[], port));
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    let result = match crate::upgrade::requested(req.headers()) {
        Some(protocol) => crate::upgrade::proxy(&backend, req, protocol, peer, raw, &path).await,
        None => {
            let req = req.map(|b| Metered::new(b, Meter::new(Arc::clone(&host), Way::In, None)));
            forward(&backend, req, peer, raw, &path).await
        }
    };
    let resp = result.unwrap_or_else(|e| {
        tracing::debug!(app, sequence = deployment.sequence, error = %e, "proxy error");
        let msg = format!("{app} v{} ({}): {e}", deployment.sequence, backend.name());
        ours(StatusCode::BAD_GATEWAY, &msg, &[], port)
    });
    Ok((resp, Some(active)))
}

/// Sends one plain request to the instance; the answer's body streams back.
async fn forward(
    backend: &Backend,
    req: Request<Metered<Incoming>>,
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
