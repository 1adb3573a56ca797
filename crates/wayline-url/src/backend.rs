//! Where one instance's requests go: an HTTP/2 tunnel its entrypoint opened, or (for
//! deployments without an entrypoint) the address its platform reported, over pooled HTTP/1.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Request bodies on their way to an instance.
pub type ReqBody = BoxBody<Bytes, hyper::Error>;

enum Kind {
    Tunnel {
        sender: http2::SendRequest<ReqBody>,
        instance_id: String,
        /// When it opened, Unix milliseconds.
        connected_ms: i64,
    },
    Direct {
        client: Client<HttpConnector, ReqBody>,
        base: String,
    },
}

/// One instance, with its count of requests in flight.
pub struct Backend {
    kind: Kind,
    outstanding: AtomicUsize,
    alive: AtomicBool,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name())
            .field("outstanding", &self.outstanding())
            .finish_non_exhaustive()
    }
}

/// Counts a request as in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Backend);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Backend {
    /// An instance behind a tunnel.
    pub fn tunnel(sender: http2::SendRequest<ReqBody>, instance_id: &str) -> Self {
        let connected_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self::with(Kind::Tunnel {
            sender,
            instance_id: instance_id.to_owned(),
            connected_ms,
        })
    }

    /// A deployment at the address its platform reported (`http://host:port`).
    pub fn direct(address: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_mins(1))
            .pool_max_idle_per_host(256)
            .build(connector);
        Self::with(Kind::Direct {
            client,
            base: address.trim_end_matches('/').to_owned(),
        })
    }

    fn with(kind: Kind) -> Self {
        Self {
            kind,
            outstanding: AtomicUsize::new(0),
            alive: AtomicBool::new(true),
        }
    }

    /// `tunnel <instance>` or `address <url>`.
    pub fn name(&self) -> String {
        match &self.kind {
            Kind::Tunnel { instance_id, .. } => format!("instance {instance_id}"),
            Kind::Direct { base, .. } => format!("address {base}"),
        }
    }

    /// A tunnel's instance id and when it opened (Unix ms); `None` for an address.
    pub fn tunnel_info(&self) -> Option<(&str, i64)> {
        match &self.kind {
            Kind::Tunnel {
                instance_id,
                connected_ms,
                ..
            } => Some((instance_id, *connected_ms)),
            Kind::Direct { .. } => None,
        }
    }

    /// Requests in flight.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// False once its tunnel closed.
    pub fn usable(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
            && match &self.kind {
                Kind::Tunnel { sender, .. } => !sender.is_closed(),
                Kind::Direct { .. } => true,
            }
    }

    /// Marks a tunnel closed (its connection ended).
    pub fn close(&self) {
        self.alive.store(false, Ordering::Relaxed);
    }

    /// Counts one request in flight.
    pub fn begin(&self) -> InFlight<'_> {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Sends the request; `host` is the public host it came for, `path` its path and query.
    pub async fn send(
        &self,
        mut req: Request<ReqBody>,
        host: &str,
        path: &str,
    ) -> Result<Response<Incoming>, String> {
        match &self.kind {
            Kind::Tunnel { sender, .. } => {
                *req.uri_mut() = Uri::try_from(format!("http://{host}{path}"))
                    .map_err(|e| format!("bad request target: {e}"))?;
                let mut sender = sender.clone();
                sender
                    .send_request(req)
                    .await
                    .map_err(|e| format!("the tunnel failed: {e}"))
            }
            Kind::Direct { client, base } => {
                if !base.starts_with("http://") {
                    return Err(format!(
                        "cannot proxy to {base}: only http:// addresses are supported"
                    ));
                }
                *req.uri_mut() = Uri::try_from(format!("{base}{path}"))
                    .map_err(|e| format!("bad address {base}: {e}"))?;
                client
                    .request(req)
                    .await
                    .map_err(|e| format!("{base} did not answer: {e}"))
            }
        }
    }

    /// Sends an upgrade request (see [`crate::upgrade`]): through a tunnel as an extended
    /// CONNECT with `:protocol`, to an address as HTTP/1.1 `Upgrade`. `true` when the instance
    /// switched protocols (the response then carries the upgrade).
    pub async fn send_upgrade(
        &self,
        mut req: Request<ReqBody>,
        protocol: &HeaderValue,
        host: &str,
        path: &str,
    ) -> Result<(Response<Incoming>, bool), String> {
        let tunnel = matches!(self.kind, Kind::Tunnel { .. });
        if tunnel {
            let p = protocol
                .to_str()
                .map_err(|_| "the upgrade protocol is not text".to_owned())?;
            *req.method_mut() = Method::CONNECT;
            req.extensions_mut().insert(hyper::ext::Protocol::from(p));
        } else {
            req.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            req.headers_mut().insert(header::UPGRADE, protocol.clone());
        }
        let resp = self.send(req, host, path).await?;
        let switched = if tunnel {
            resp.status() == StatusCode::OK
        } else {
            resp.status() == StatusCode::SWITCHING_PROTOCOLS
        };
        Ok((resp, switched))
    }
}
