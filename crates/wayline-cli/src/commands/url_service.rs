//! The URL service beside `wayline server run`: its ingress is bound before the server starts
//! (so the server knows the port it prints in URLs), then it is started with the server's
//! routes and token checks.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use wayline_url::preface::Hello;

use crate::cli::ServerRunArgs;

/// The tunnel socket's file name, beside the server's socket.
pub(crate) const TUNNEL_SOCKET: &str = "url.sock";

/// Tunnel checks done by the server, which holds the signing key.
struct ServerAuthority(wayline_server::UrlVerifier);

impl wayline_url::Authority for ServerAuthority {
    fn authorize(&self, hello: &Hello) -> Result<(), String> {
        self.0.verify(&hello.token, &hello.deployment_id)
    }
}

/// The server's health checks, answered by the service's router.
struct Checker(wayline_url::service::HealthChecker);

#[tonic::async_trait]
impl wayline_server::UrlHealth for Checker {
    async fn check(
        &self,
        id: &str,
        path: &str,
        within: std::time::Duration,
    ) -> Result<String, String> {
        self.0.check(id, path, within).await
    }
}

/// The service's per-host figures on the server's `/metrics`.
struct Figures(wayline_url::Metrics);

impl wayline_server::UrlMetrics for Figures {
    fn render(&self) -> String {
        self.0.render()
    }
}

/// The service's tunnels for `ListUrlTunnels`.
struct Tunnels(wayline_url::TunnelList);

impl wayline_server::UrlTunnels for Tunnels {
    fn tunnels(&self) -> Vec<wayline_core::url::TunnelInfo> {
        self.0.list()
    }
}

/// Checks `-url-domain`: DNS labels separated by dots.
fn domain(d: &str) -> Result<String> {
    let d = d.trim().trim_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 200
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        bail!("-url-domain `{d}` is not a domain name such as `localhost` or `apps.example.com`");
    }
    Ok(d)
}

/// Binds the ingress (a free port when the embedded server finds it taken) and describes the
/// service to the server. `None` when the URL service is off.
pub(crate) async fn prepare(
    args: &ServerRunArgs,
    unix_socket: &Path,
) -> Result<Option<(tokio::net::TcpListener, wayline_server::UrlOptions)>> {
    if !args.url_service {
        return Ok(None);
    }
    let domain = domain(&args.url_domain)?;
    let mut addr: std::net::SocketAddr = args
        .listen_url
        .parse()
        .with_context(|| format!("-listen-url `{}`", args.listen_url))?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(_) if args.embedded => {
            addr.set_port(0);
            tokio::net::TcpListener::bind(addr).await?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {addr} (-listen-url)")),
    };
    let port = listener.local_addr()?.port();
    let dir = unix_socket
        .parent()
        .context("the unix socket has no directory")?;
    Ok(Some((
        listener,
        wayline_server::UrlOptions {
            domain,
            port,
            tunnel_socket: dir.join(TUNNEL_SOCKET),
        },
    )))
}

/// Starts the service; records its address in `url.addr` of the data dir.
pub(crate) fn start(
    server: &wayline_server::RunningServer,
    listener: tokio::net::TcpListener,
    opts: &wayline_server::UrlOptions,
    args: &ServerRunArgs,
    data_dir: &Path,
) -> Result<wayline_url::UrlService> {
    let mut o = wayline_url::Options::new(opts.domain.clone());
    o.tunnel_socket = Some(opts.tunnel_socket.clone());
    o.socket_mode = args.socket_mode;
    o.limits = wayline_core::url::UrlLimits {
        requests_per_second: args.url_rate_limit,
        burst: args.url_rate_burst,
        bytes_per_second: args.url_bandwidth,
        max_requests: args.url_max_requests,
    };
    o.tunnels.per_deployment = args.url_max_tunnels as usize;
    let svc = wayline_url::UrlService::start(
        o,
        listener,
        Arc::new(ServerAuthority(server.url_verifier())),
        server.url_routes(),
    )?;
    server.set_url_health(Arc::new(Checker(svc.checker())));
    server.set_url_metrics(Arc::new(Figures(svc.metrics())));
    server.set_url_tunnels(Arc::new(Tunnels(svc.tunnel_list())));
    fs_err::write(
        data_dir.join("url.addr"),
        format!("{}\n", svc.ingress_addr()),
    )?;
    Ok(svc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_checked() {
        assert_eq!(domain("Apps.Example.com.").unwrap(), "apps.example.com");
        assert_eq!(
            domain("a b").unwrap_err().to_string(),
            "-url-domain `a b` is not a domain name such as `localhost` or `apps.example.com`"
        );
        assert!(domain("-x.com").is_err());
    }
}
