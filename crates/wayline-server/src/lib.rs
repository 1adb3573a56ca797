//! The Wayline server as a library: the `wayline server run` command calls [`start`].
//!
//! One gRPC service (`wayline.v1.Wayline`, plus reflection and health) served over TLS on TCP
//! and in plaintext on a unix socket (for the CLI and local containers), and plain HTTP for
//! `/healthz`, `/metrics` and the read-only web UI (`/`, `/projects/{p}/apps/{a}`, `/jobs/{id}`;
//! open it with a login token as `/?token=…`). State lives in a [`store::Store`] (SQLite by
//! default); unfinished jobs live in the in-memory queue, written through to the store.
//!
//! Snapshot restore is *staged*: `RestoreSnapshot` verifies the upload and leaves it next to the
//! database; the server keeps serving its current data and swaps the snapshot in when it next
//! starts (the response carries `wayline-restart-required: true`).
//!
//! # Who may call what
//! No token: GetVersionInfo, BootstrapToken (once per database), ConvertInviteToken, and
//! RunnerConfig (the runner then waits as PENDING until `AdoptRunner` sends it a runner token on
//! that stream). Runner tokens (optionally bound to one runner id): RunnerConfig,
//! RunnerJobStream, Upsert/List/Get of operations, GetJob/ListJobs, GetProject, GetConfig,
//! GetConfigSource, GetServerConfig, ListWorkspaces/GetWorkspace, UpsertApplication,
//! GenerateEntrypointToken. Entrypoint tokens: the three Entrypoint* RPCs of their deployment.
//! Login tokens: everything else (and everything runner tokens may call).
//!
//! # Runner protocol
//! A runner opens RunnerConfig first (it is *online* while that stream lives), then one
//! RunnerJobStream per job: `request` → `assignment` → `ack` (within the ack timeout, else the
//! job is requeued) → `terminal`/`provenance`/`heartbeat` (at least one message per heartbeat
//! timeout) → `complete` or `error`; the server then ends the stream. A runner that lost the
//! stream opens a new one with `reattach_job_id` within the heartbeat timeout: the server sends
//! the assignment again and the job continues (no second ack needed). `cancel` arrives on the job
//! stream; after `cancel{force}` the job is already CANCELLED.
//!
//! # Durability
//! Writes are committed (SQLite WAL, `synchronous=NORMAL`) before they are acknowledged, so
//! `kill -9` of the server loses nothing acknowledged; an OS crash may lose the last commits.
//!
//! # Start
//! In order: the data dir is created 0700 (or refused when open to other users), the server's
//! locks are taken ([`lock`]: one server per data dir and database), a staged restore is moved
//! into place, a lost database is refused when the data dir shows a previous life (unless
//! `reinitialize`), SQLite's `quick_check` runs, the signing key is loaded ([`keys`]), and only
//! then are the listeners bound and the holder's addresses recorded in the lock files.

pub mod auth;
mod canary;
mod config;
mod datadir;
pub mod entrypoint;
mod http;
mod keys;
pub mod lock;
mod options;
mod queue;
mod runners;
mod service;
mod socket;
mod startup;
pub mod store;
mod tls;
mod ui;
mod url_tunnels;
mod urls;

pub use options::{ServerOptions, runtime};
pub use url_tunnels::UrlTunnels;
pub use urls::{UrlHealth, UrlMetrics, UrlOptions};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use wayline_proto::v1::wayline_server::WaylineServer;

use crate::store::Store;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened or migrated.
    #[error("database {path}: {source}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// The error.
        source: store::StoreError,
    },
    /// A file or socket could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// The options do not make sense together.
    #[error("{0}")]
    Config(String),
    /// The TLS certificate or key was rejected.
    #[error("TLS: {0}")]
    Tls(String),
    /// A file or directory that must be private is open to other users.
    #[error(
        "`{path}` is accessible by other users (mode {mode:04o}); make it private with `chmod {fix} {path}`"
    )]
    Permissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode to set.
        fix: String,
    },
    /// Another server holds the data dir's or the database's lock.
    #[error(
        "another Wayline server is already using {what} ({}); stop it first (`wayline server stop` for the local server, or `kill {}`)",
        holder.describe(), holder.pid
    )]
    AlreadyRunning {
        /// `data dir …` or `database …`.
        what: String,
        /// What the running server recorded about itself.
        holder: lock::Holder,
    },
    /// SQLite found the database damaged.
    #[error(
        "the database `{}` is damaged ({detail}); the server did not open it. Restore the last snapshot with `cp <snapshot> {0} && rm -f {0}-wal {0}-shm` and start again, or move the file away and start a new, empty server with `-reinitialize`",
        path.display()
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// SQLite's finding.
        detail: String,
    },
}

/// A started server.
pub struct RunningServer {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    unix_socket: Option<PathBuf>,
    unix_listener: Option<socket::UnixSocket>,
    tls_cert: Option<PathBuf>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    store: Arc<dyn Store>,
    shared: Arc<service::Shared>,
    /// Held until the server has stopped.
    lock: lock::ServerLock,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("unix_socket", &self.unix_socket)
            .finish_non_exhaustive()
    }
}

/// Checks that a tunnel token is the URL token of the deployment the tunnel names.
#[derive(Clone)]
pub struct UrlVerifier(Arc<service::Shared>);

impl std::fmt::Debug for UrlVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlVerifier").finish_non_exhaustive()
    }
}

impl UrlVerifier {
    /// `Err(reason)` when `token` may not open a tunnel for `deployment_id`.
    pub fn verify(&self, token: &str, deployment_id: &str) -> Result<(), String> {
        self.0.verify_url_tunnel(token, deployment_id)
    }
}

/// How long open streams (runners, followers) get to finish when the server stops.
const DRAIN: Duration = Duration::from_secs(3);

impl RunningServer {
    /// The bound gRPC TCP address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The unix socket path, when one is served.
    pub fn unix_socket(&self) -> Option<&Path> {
        self.unix_socket.as_deref()
    }

    /// The PEM certificate clients should trust (`None` when TLS is disabled).
    pub fn tls_cert_path(&self) -> Option<&Path> {
        self.tls_cert.as_deref()
    }

    /// Mints an entrypoint token for one deployment (what `GenerateEntrypointToken` returns),
    /// for in-process callers such as an embedded platform.
    pub async fn mint_entrypoint_token(
        &self,
        deployment_id: &str,
        expires_in: Option<Duration>,
    ) -> Result<String, tonic::Status> {
        self.shared
            .mint_entrypoint_token(deployment_id, expires_in)
            .await
    }

    /// The URL service's routes, as they change.
    pub fn url_routes(&self) -> watch::Receiver<Arc<Vec<wayline_core::url::UrlRoute>>> {
        self.shared.urls.subscribe()
    }

    /// Plugs in the URL service's health check (once; later calls are ignored).
    pub fn set_url_health(&self, h: Arc<dyn UrlHealth>) {
        let _ = self.shared.urls.health.set(h);
    }

    /// Plugs in the URL service's per-host figures, which `/metrics` then shows (once).
    pub fn set_url_metrics(&self, m: Arc<dyn UrlMetrics>) {
        let _ = self.shared.urls.metrics.set(m);
    }

    /// Plugs in the URL service's list of tunnels, which `ListUrlTunnels` then answers (once).
    pub fn set_url_tunnels(&self, t: Arc<dyn UrlTunnels>) {
        let _ = self.shared.urls.tunnels.set(t);
    }

    /// Checks tunnel tokens for the URL service (cheap to clone, lives past this handle).
    pub fn url_verifier(&self) -> UrlVerifier {
        UrlVerifier(Arc::clone(&self.shared))
    }

    /// Mints a login token without the one-time bootstrap (for the CLI's embedded server, which
    /// owns the process and stores the token in the user's default context).
    pub async fn mint_login_token(&self) -> Result<String, tonic::Status> {
        self.shared
            .mint(auth::Tokens::claims(auth::TokenKind::Login, None))
            .await
    }

    /// Binds the unix socket again when its file was deleted or replaced (the CLI asks for
    /// this with SIGHUP); true when it was re-created.
    pub async fn recreate_socket(&self) -> Result<bool, Error> {
        match &self.unix_listener {
            Some(s) => s.recreate().await,
            None => Ok(false),
        }
    }

    /// Stops accepting calls, gives open streams a moment to end, then finishes queued writes.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(DRAIN, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            for a in aborts {
                a.abort();
            }
        }
        if let Err(e) = self.store.close().await {
            tracing::error!(error = %e, "closing the database");
        }
        // Only the lock holder has these files; remove them before another server can start.
        let _ = std::fs::remove_file(self.shared.settings.data_dir.join("server.pid"));
        drop(self.lock);
        tracing::info!("server stopped");
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully. SIGHUP re-creates a
    /// deleted unix socket.
    pub async fn wait(self) -> Result<(), Error> {
        let signals = Signals::install()?;
        self.wait_on(signals).await;
        Ok(())
    }

    /// [`Self::wait`] with handlers installed earlier: install them before [`start`], so a
    /// signal that arrives while the server starts is not lost (or fatal).
    pub async fn wait_on(self, mut signals: Signals) {
        loop {
            tokio::select! {
                _ = signals.term.recv() => {
                    tracing::info!("SIGTERM received; shutting down");
                    break;
                }
                _ = signals.int.recv() => {
                    tracing::info!("interrupted; shutting down");
                    break;
                }
                _ = signals.hup.recv() => {
                    if let Err(e) = self.recreate_socket().await {
                        tracing::error!(error = %e, "re-creating the unix socket");
                    }
                }
            }
        }
        self.shutdown().await;
    }
}

/// The signals a running server answers: SIGTERM and SIGINT stop it, SIGHUP re-creates its
/// socket.
#[derive(Debug)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (from now on these signals no longer kill the process).
    pub fn install() -> Result<Self, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let sig = |kind| {
            signal(kind).map_err(|source| Error::Io {
                path: PathBuf::from("(signal handler)"),
                source,
            })
        };
        Ok(Self {
            term: sig(SignalKind::terminate())?,
            int: sig(SignalKind::interrupt())?,
            hup: sig(SignalKind::hangup())?,
        })
    }
}

/// HTTP/2 keepalive pings find runners and entrypoints whose connection died silently, so a
/// vanished runner goes offline and its job stream breaks (and the job can be reattached).
fn grpc_server() -> Server {
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
}

async fn stop_signal(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// The gRPC services (the API, reflection v1 and v1alpha, health), shared by both listeners.
async fn grpc_routes(shared: &Arc<service::Shared>) -> Result<tonic::service::Routes, Error> {
    let svc = WaylineServer::new(service::Service {
        shared: Arc::clone(shared),
    });
    // Reflection lists every service served here, health included (`grpcurl list`).
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(wayline_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Config(format!("reflection: {e}")))?;
    // v1alpha too: grpcurl and Python's grpcio-reflection still ask for it.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(wayline_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Config(format!("reflection: {e}")))?;
    let (health, health_svc) = tonic_health::server::health_reporter();
    health
        .set_serving::<WaylineServer<service::Service>>()
        .await;
    Ok(tonic::service::Routes::new(svc)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(health_svc))
}

/// Serves gRPC on the TCP listener (with TLS unless disabled).
fn serve_tcp(
    grpc: tokio::net::TcpListener,
    tls: Option<&tls::Pem>,
    routes: tonic::service::Routes,
    stop_rx: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, Error> {
    let mut builder = grpc_server();
    if let Some(pem) = tls {
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(&pem.cert, &pem.key)))
            .map_err(|e| Error::Tls(e.to_string()))?;
    }
    let router = builder.add_routes(routes);
    let signal = stop_signal(stop_rx);
    Ok(tokio::spawn(async move {
        if let Err(e) = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), signal)
            .await
        {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }))
}

/// Serves plaintext gRPC on the unix socket at `path`.
fn serve_unix(
    opts: &ServerOptions,
    path: &Path,
    routes: tonic::service::Routes,
    stop_rx: watch::Receiver<bool>,
) -> Result<(socket::UnixSocket, JoinHandle<()>), Error> {
    startup::prepare_socket_dir(opts, path)?;
    let (handle, incoming) =
        socket::UnixSocket::serve(path.to_owned(), opts.socket_mode, stop_rx.clone())?;
    let router = grpc_server().add_routes(routes);
    let signal = stop_signal(stop_rx);
    let task = tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, signal).await {
            tracing::error!(error = %e, "gRPC unix-socket server failed");
        }
    });
    Ok((handle, task))
}

/// Opens the store, binds every listener and starts serving.
pub async fn start(opts: ServerOptions) -> Result<RunningServer, Error> {
    let started = std::time::Instant::now();
    datadir::prepare(&opts.data_dir)?;
    let lock = startup::take_locks(&opts)?;
    let store_err = |source| Error::Store {
        path: opts.db_path.clone(),
        source,
    };
    let store: Arc<dyn Store> = Arc::new(startup::open_store(&opts)?);
    let key = keys::load_or_create(&opts.data_dir, store.as_ref(), &opts.db_path).await?;
    let revoked = store.revoked_tokens().await.map_err(store_err)?;
    let tokens = auth::Tokens::new(key, revoked);
    let runners = Arc::new(runners::Runners::default());
    runners.load(store.list_runners().await.map_err(store_err)?);

    let (grpc, grpc_addr) = startup::bind_tcp(opts.listen_grpc).await?;
    let (http, http_addr) = startup::bind_tcp(opts.listen_http).await?;

    let settings = service::Settings {
        data_dir: opts.data_dir.clone(),
        db_path: opts.db_path.clone(),
        advertise_addr: opts
            .advertise_addr
            .clone()
            .unwrap_or_else(|| grpc_addr.to_string()),
        unix_socket: opts.unix_socket.clone(),
        tls: !opts.disable_tls,
        url: opts.url.clone(),
    };
    let timeouts = queue::Timeouts {
        ack: opts.ack_timeout,
        heartbeat: opts.heartbeat_timeout,
    };
    let hub = entrypoint::EntrypointHub::new(entrypoint::HubOptions {
        log_window_lines: opts.log_window_lines,
        ..entrypoint::HubOptions::default()
    });
    let shared = service::Shared::new(Arc::clone(&store), tokens, runners, settings, timeouts, hub);
    shared.queue.load().await.map_err(store_err)?;

    let tls = startup::load_tls(&opts)?;
    let (stop, stop_rx) = watch::channel(false);
    let routes = grpc_routes(&shared).await?;

    let mut tasks = vec![tokio::spawn(
        Arc::clone(&shared.urls).run(Arc::clone(&store), stop_rx.clone()),
    )];
    // Before the socket answers: whoever connects can already read where the server is.
    startup::record_holder(&opts, &lock, grpc_addr, http_addr)?;
    tasks.push(serve_tcp(
        grpc,
        tls.as_ref(),
        routes.clone(),
        stop_rx.clone(),
    )?);
    let mut unix_listener = None;
    if let Some(path) = &opts.unix_socket {
        let (handle, task) = serve_unix(&opts, path, routes, stop_rx.clone())?;
        unix_listener = Some(handle);
        tasks.push(task);
    }

    let mut app = http::router(Arc::clone(&shared));
    if let Some(extra) = opts.http_routes.clone() {
        app = app.merge(extra);
    }
    let signal = stop_signal(stop_rx);
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(http, app).with_graceful_shutdown(signal).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }));

    tracing::info!(
        grpc = %grpc_addr,
        http = %http_addr,
        unix = ?opts.unix_socket,
        db = %opts.db_path.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "server ready"
    );
    Ok(RunningServer {
        grpc_addr,
        http_addr,
        unix_socket: opts.unix_socket,
        unix_listener,
        tls_cert: tls.map(|t| t.cert_path),
        stop,
        tasks,
        store,
        shared,
        lock,
    })
}
