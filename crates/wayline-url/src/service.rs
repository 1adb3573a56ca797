//! The running URL service: the ingress listener, the tunnel listener(s), and the task that
//! rebuilds the routing table when the server's routes or the tunnels change.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use wayline_core::url::{UrlLimits, UrlRoute};

use crate::table::{Kept, Table};
use crate::tunnels::{Authority, TunnelLimits, Tunnels};

/// The server's routes, replaced as a whole when anything changes.
pub type Routes = watch::Receiver<Arc<Vec<UrlRoute>>>;

/// Why the URL service could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be set up.
    #[error("URL service: {what} {path}: {source}")]
    Listen {
        /// `tunnel socket` or `ingress`.
        what: &'static str,
        /// The path or address.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// How to run the URL service.
#[derive(Debug, Clone)]
pub struct Options {
    /// Apps answer at `<app>.<domain>` and `<app>--v<N>.<domain>`.
    pub domain: String,
    /// The unix socket entrypoints on this machine dial (in the server's socket directory).
    pub tunnel_socket: Option<PathBuf>,
    /// Its permission bits.
    pub socket_mode: u32,
    /// Ingress connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Longest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// How long a client has to send a request's head.
    pub header_timeout: Duration,
    /// Bounds on tunnels.
    pub tunnels: TunnelLimits,
    /// Limits for hosts and deployments whose app sets none (0: no limit).
    pub limits: UrlLimits,
}

impl Options {
    /// Defaults for a local server.
    pub fn new(domain: impl Into<String>) -> Self {
        Self {
            domain: domain.into(),
            tunnel_socket: None,
            socket_mode: 0o600,
            max_connections: 10_000,
            max_header_bytes: 64 << 10,
            header_timeout: Duration::from_secs(30),
            tunnels: TunnelLimits::default(),
            limits: UrlLimits::default(),
        }
    }
}

/// What request handlers share.
pub struct State {
    pub(crate) domain: String,
    pub(crate) public_port: u16,
    table: RwLock<Arc<Table>>,
    roll: AtomicU32,
}

impl State {
    /// The current table.
    pub fn table(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().expect("table"))
    }

    /// A number in `0..100` for weighted picks: a spread sequence, so 10 % means every tenth.
    pub(crate) fn roll(&self) -> u32 {
        // 37 is coprime to 100: consecutive requests walk all 100 values before repeating.
        self.roll.fetch_add(37, Ordering::Relaxed) % 100
    }
}

/// Runs health checks against a running service's table.
#[derive(Clone)]
pub struct HealthChecker(Arc<State>);

impl std::fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecker").finish_non_exhaustive()
    }
}

impl HealthChecker {
    /// See [`crate::health::check`].
    pub async fn check(&self, id: &str, path: &str, within: Duration) -> Result<String, String> {
        crate::health::check(&self.0, id, path, within).await
    }
}

/// Renders a running service's figures for `/metrics`.
#[derive(Clone)]
pub struct Metrics(Arc<State>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The per-host families as OpenMetrics text (no `# EOF`), see [`crate::metrics`].
    pub fn render(&self) -> String {
        let table = self.0.table();
        let mut hosts: Vec<_> = table.hosts().collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        crate::metrics::render(hosts.iter().map(|h| (h.name.as_str(), &*h.stats)))
    }
}

/// Lists a running service's tunnels.
#[derive(Clone)]
pub struct TunnelList(Arc<Tunnels>);

impl std::fmt::Debug for TunnelList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelList").finish_non_exhaustive()
    }
}

impl TunnelList {
    /// Every open tunnel, see [`Tunnels::list`].
    pub fn list(&self) -> Vec<wayline_core::url::TunnelInfo> {
        self.0.list()
    }
}

/// A started URL service; dropping it does not stop it, [`UrlService::shutdown`] does.
pub struct UrlService {
    ingress: SocketAddr,
    state: Arc<State>,
    tunnels: Arc<Tunnels>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    socket: Option<PathBuf>,
}

impl std::fmt::Debug for UrlService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlService")
            .field("ingress", &self.ingress)
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

fn bind_socket(path: &Path, mode: u32) -> Result<UnixListener, Error> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| Error::Listen {
        what: "tunnel socket",
        path: path.display().to_string(),
        source,
    };
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let l = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    Ok(l)
}

impl UrlService {
    /// Starts serving on `ingress` (already bound, so the caller knows the port early); call
    /// it inside a tokio runtime.
    pub fn start(
        opts: Options,
        ingress: TcpListener,
        authority: Arc<dyn Authority>,
        routes: Routes,
    ) -> Result<Self, Error> {
        let addr = ingress.local_addr().map_err(|source| Error::Listen {
            what: "ingress",
            path: "?".into(),
            source,
        })?;
        let state = Arc::new(State {
            domain: opts.domain.trim_matches('.').to_ascii_lowercase(),
            public_port: addr.port(),
            table: RwLock::new(Arc::new(Table::default())),
            roll: AtomicU32::new(0),
        });
        let tunnels = Tunnels::new(authority, opts.tunnels);
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(rebuild(
            Arc::clone(&state),
            Arc::clone(&tunnels),
            routes,
            opts.limits,
            stop_rx.clone(),
        ))];
        if let Some(path) = &opts.tunnel_socket {
            let l = bind_socket(path, opts.socket_mode)?;
            tasks.push(tokio::spawn(accept_tunnels(
                l,
                Arc::clone(&tunnels),
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(accept_ingress(
            ingress,
            Arc::clone(&state),
            opts.clone(),
            stop_rx,
        )));
        tracing::info!(ingress = %addr, domain = %state.domain, socket = ?opts.tunnel_socket, "URL service ready");
        Ok(Self {
            ingress: addr,
            state,
            tunnels,
            stop,
            tasks,
            socket: opts.tunnel_socket,
        })
    }

    /// The bound ingress address.
    pub fn ingress_addr(&self) -> SocketAddr {
        self.ingress
    }

    /// The tunnel socket, when one is served.
    pub fn tunnel_socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// Open tunnels.
    pub fn tunnel_count(&self) -> usize {
        self.tunnels.count()
    }

    /// A handle that lists the open tunnels.
    pub fn tunnel_list(&self) -> TunnelList {
        TunnelList(Arc::clone(&self.tunnels))
    }

    /// Waits until deployment `id` passes its health check (see [`crate::health::check`]).
    pub async fn check_health(
        &self,
        id: &str,
        path: &str,
        within: Duration,
    ) -> Result<String, String> {
        crate::health::check(&self.state, id, path, within).await
    }

    /// A handle for health checks that outlives borrows of the service.
    pub fn checker(&self) -> HealthChecker {
        HealthChecker(Arc::clone(&self.state))
    }

    /// A handle for `/metrics`.
    pub fn metrics(&self) -> Metrics {
        Metrics(Arc::clone(&self.state))
    }

    /// The current routing table (for status pages and tests).
    pub fn table(&self) -> Arc<Table> {
        self.state.table()
    }

    /// Stops accepting; open connections end with the process.
    pub fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn rebuild(
    state: Arc<State>,
    tunnels: Arc<Tunnels>,
    mut routes: Routes,
    defaults: UrlLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tunnels.watch();
    let mut kept = Kept::default();
    loop {
        let current = Arc::clone(&routes.borrow_and_update());
        ticks.borrow_and_update();
        let table = Table::build(
            &current,
            &tunnels.snapshot(),
            &mut kept,
            defaults,
            &state.domain,
        );
        *state.table.write().expect("table") = Arc::new(table);
        tokio::select! {
            r = routes.changed() => if r.is_err() { return },
            r = ticks.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn accept_tunnels(l: UnixListener, tunnels: Arc<Tunnels>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = l.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(Arc::clone(&tunnels).serve(stream));
            }
            Err(e) => {
                tracing::warn!(error = %e, "tunnel accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_ingress(
    l: TcpListener,
    state: Arc<State>,
    opts: Options,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.wait_for(|s| *s) => return,
        };
        let accepted = tokio::select! {
            a = l.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "ingress accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let opts = opts.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move {
                    Ok::<_, std::convert::Infallible>(crate::proxy::handle(state, peer, req).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(opts.header_timeout)
                .max_buf_size(opts.max_header_bytes.max(8192))
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "ingress connection ended");
            }
            drop(permit);
        });
    }
}
