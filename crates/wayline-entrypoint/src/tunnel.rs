//! The URL-service tunnel: once the server hands this deployment its URL token, keep one
//! tunnel open to the URL service (see `wayline_url::client`), reconnecting with the same
//! jittered backoff as the server session. Local deployments reach the tunnel socket in the
//! directory of the server's socket (bind-mounted, so a restarted server's new socket shows up).

use std::time::Instant;

use tokio::sync::watch;
use wayline_url::client::{self, TunnelAddr};
use wayline_url::preface::Hello;

use crate::backoff::{Backoff, SERVER_MAX};
use crate::settings::ServerAddr;

/// What the server said about the URL service: the token and the socket's file name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlGrant {
    /// The deployment's URL token.
    pub token: String,
    /// The tunnel socket's file name, next to the server's socket.
    pub socket_name: String,
}

/// Where the tunnel goes: beside the server's unix socket; `None` over TCP (remote tunnels
/// are not offered yet).
pub fn tunnel_addr(server: &ServerAddr, grant: &UrlGrant) -> Option<TunnelAddr> {
    match server {
        ServerAddr::Unix(p)
            if !grant.socket_name.is_empty() && !grant.socket_name.contains('/') =>
        {
            Some(TunnelAddr::Unix(p.parent()?.join(&grant.socket_name)))
        }
        _ => None,
    }
}

/// Keeps the tunnel up for the life of the process.
pub async fn run(
    server: ServerAddr,
    deployment_id: String,
    instance_id: String,
    port: String,
    mut grant: watch::Receiver<Option<UrlGrant>>,
) {
    let Ok(port) = port.parse::<u16>() else {
        tracing::warn!("PORT {port:?} is not a port number; no URL-service tunnel");
        return;
    };
    let mut backoff = Backoff::up_to(SERVER_MAX);
    loop {
        let Ok(current) = grant.wait_for(Option::is_some).await.map(|g| g.clone()) else {
            return;
        };
        let current = current.unwrap_or_default();
        let Some(addr) = tunnel_addr(&server, &current) else {
            tracing::debug!(
                "the server runs a URL service this deployment cannot reach over {server}"
            );
            return;
        };
        let hello = Hello {
            deployment_id: deployment_id.clone(),
            instance_id: instance_id.clone(),
            token: current.token.clone(),
        };
        let started = Instant::now();
        let result = client::run(&addr, &hello, port, || {
            tracing::info!("URL-service tunnel open at {addr}");
        })
        .await;
        let (wait, first) = backoff.after_session(started);
        match result {
            Ok(()) => tracing::info!("URL-service tunnel closed; reconnecting in {wait:?}"),
            Err(e) if first || e.refused() => {
                tracing::warn!("URL-service tunnel: {e}; retrying in {wait:?}");
            }
            Err(e) => tracing::debug!("URL-service tunnel: {e}; retrying in {wait:?}"),
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunnel_socket_sits_beside_the_server_socket() {
        let grant = UrlGrant {
            token: "t".into(),
            socket_name: "url.sock".into(),
        };
        let unix = ServerAddr::Unix("/run/wayline/server.sock".into());
        assert_eq!(
            tunnel_addr(&unix, &grant),
            Some(TunnelAddr::Unix("/run/wayline/url.sock".into()))
        );
        let sneaky = UrlGrant {
            socket_name: "../x".into(),
            ..grant.clone()
        };
        assert_eq!(tunnel_addr(&unix, &sneaky), None);
        let tcp = ServerAddr::Tcp {
            authority: "h:1".into(),
            tls: true,
            skip_verify: false,
        };
        assert_eq!(tunnel_addr(&tcp, &grant), None);
    }
}
