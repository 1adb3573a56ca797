//! The tunnel endpoint: accepts the connections entrypoints dial, checks their preface with the
//! server's [`Authority`], then speaks HTTP/2 as the *client* over them. Each live tunnel is
//! one [`Backend`] of its deployment until its connection ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::backend::Backend;
use crate::preface::{self, Hello};

/// Decides whether a tunnel may serve the deployment it names: the token must be the
/// URL-service token of exactly that deployment. The server implements it (it holds the keys).
pub trait Authority: Send + Sync + 'static {
    /// `Err(reason)` refuses the tunnel; the reason is sent to the entrypoint.
    fn authorize(&self, hello: &Hello) -> Result<(), String>;
}

/// Bounds on tunnels.
#[derive(Debug, Clone, Copy)]
pub struct TunnelLimits {
    /// Tunnels one deployment may hold (its instances; a restarting one briefly holds two).
    pub per_deployment: usize,
    /// Tunnels in all.
    pub total: usize,
    /// How long an entrypoint has to send its preface.
    pub preface_timeout: Duration,
}

impl Default for TunnelLimits {
    fn default() -> Self {
        Self {
            per_deployment: 64,
            total: 20_000,
            preface_timeout: Duration::from_secs(10),
        }
    }
}

/// Live tunnels by deployment id; `changed` ticks on every open and close.
pub struct Tunnels {
    by_deployment: Mutex<HashMap<String, Vec<Arc<Backend>>>>,
    changed: watch::Sender<u64>,
    authority: Arc<dyn Authority>,
    limits: TunnelLimits,
}

impl Tunnels {
    /// No tunnels yet.
    pub fn new(authority: Arc<dyn Authority>, limits: TunnelLimits) -> Arc<Self> {
        Arc::new(Self {
            by_deployment: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            authority,
            limits,
        })
    }

    /// Ticks whenever a tunnel opens or closes.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A copy of the live tunnels.
    pub fn snapshot(&self) -> HashMap<String, Vec<Arc<Backend>>> {
        self.by_deployment.lock().expect("tunnels").clone()
    }

    /// Every open tunnel, for `wayline url-service status`.
    pub fn list(&self) -> Vec<wayline_core::url::TunnelInfo> {
        let map = self.by_deployment.lock().expect("tunnels");
        let mut out = Vec::new();
        for (deployment, backends) in map.iter() {
            for b in backends {
                if let Some((instance, connected_ms)) = b.tunnel_info() {
                    out.push(wayline_core::url::TunnelInfo {
                        deployment_id: deployment.clone(),
                        instance_id: instance.to_owned(),
                        connected_ms,
                        in_flight: b.outstanding(),
                    });
                }
            }
        }
        out
    }

    /// How many tunnels are open.
    pub fn count(&self) -> usize {
        self.by_deployment
            .lock()
            .expect("tunnels")
            .values()
            .map(Vec::len)
            .sum()
    }

    fn admit(&self, hello: &Hello) -> Result<(), String> {
        self.authority.authorize(hello)?;
        let map = self.by_deployment.lock().expect("tunnels");
        let total: usize = map.values().map(Vec::len).sum();
        if total >= self.limits.total {
            return Err(format!(
                "the URL service holds its limit of {} tunnels",
                self.limits.total
            ));
        }
        let here = map.get(&hello.deployment_id).map_or(0, Vec::len);
        if here >= self.limits.per_deployment {
            return Err(format!(
                "deployment {} already has {here} tunnels open, its limit (the URL service's `-url-max-tunnels`)",
                hello.deployment_id
            ));
        }
        Ok(())
    }

    fn add(&self, deployment: &str, b: &Arc<Backend>) {
        self.by_deployment
            .lock()
            .expect("tunnels")
            .entry(deployment.to_owned())
            .or_default()
            .push(Arc::clone(b));
        self.changed.send_modify(|n| *n += 1);
    }

    fn remove(&self, deployment: &str, b: &Arc<Backend>) {
        b.close();
        let mut map = self.by_deployment.lock().expect("tunnels");
        if let Some(v) = map.get_mut(deployment) {
            v.retain(|x| !Arc::ptr_eq(x, b));
            if v.is_empty() {
                map.remove(deployment);
            }
        }
        drop(map);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Serves one dialled connection until it ends.
    pub async fn serve<S>(self: Arc<Self>, mut stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let read =
            tokio::time::timeout(self.limits.preface_timeout, preface::read_line(&mut stream));
        let hello = match read.await {
            Ok(Ok(line)) => Hello::parse(&line),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                tracing::debug!("tunnel preface timed out");
                return;
            }
        };
        let hello = match hello {
            Ok(h) => h,
            Err(e) => {
                let _ = preface::answer(&mut stream, Err(&e.to_string())).await;
                return;
            }
        };
        if let Err(reason) = self.admit(&hello) {
            tracing::warn!(deployment = %hello.deployment_id, %reason, "tunnel refused");
            let _ = preface::answer(&mut stream, Err(&reason)).await;
            return;
        }
        if preface::answer(&mut stream, Ok(())).await.is_err() {
            return;
        }
        let handshake = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(15))
            .keep_alive_timeout(Duration::from_secs(20))
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .max_header_list_size(64 << 10)
            .handshake(TokioIo::new(stream))
            .await;
        let (sender, conn) = match handshake {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(deployment = %hello.deployment_id, error = %e, "tunnel handshake failed");
                return;
            }
        };
        let backend = Arc::new(Backend::tunnel(sender, &hello.instance_id));
        self.add(&hello.deployment_id, &backend);
        tracing::info!(deployment = %hello.deployment_id, instance = %hello.instance_id, "tunnel open");
        if let Err(e) = conn.await {
            tracing::debug!(deployment = %hello.deployment_id, error = %e, "tunnel ended");
        }
        self.remove(&hello.deployment_id, &backend);
        tracing::info!(deployment = %hello.deployment_id, instance = %hello.instance_id, "tunnel closed");
    }
}
