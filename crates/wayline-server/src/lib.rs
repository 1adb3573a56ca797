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

pub mod auth;
mod config;
pub mod entrypoint;
mod http;
mod queue;
mod runners;
mod service;
pub mod store;
mod tls;
mod ui;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::{Identity, Server, ServerTlsConfig};
use wayline_proto::v1::wayline_server::WaylineServer;

use crate::store::{SqliteStore, Store};

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
}

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Directory for the generated certificate and temporary files.
    pub data_dir: PathBuf,
    /// The SQLite database file.
    pub db_path: PathBuf,
    /// gRPC (TLS) address; port 0 picks a free port.
    pub listen_grpc: SocketAddr,
    /// HTTP address (health, metrics); port 0 picks a free port.
    pub listen_http: SocketAddr,
    /// Plaintext gRPC on this unix socket (the CLI and local containers use it).
    pub unix_socket: Option<PathBuf>,
    /// PEM certificate for the gRPC listener; with neither file a self-signed one is generated
    /// once and kept in `data_dir/tls`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Serve plaintext gRPC on TCP too (for tests and servers behind a TLS-terminating proxy).
    pub disable_tls: bool,
    /// Address runners and entrypoints should dial (`host:port`); default the gRPC listen address.
    pub advertise_addr: Option<String>,
    /// How long a runner has to acknowledge an assigned job before it is requeued.
    pub ack_timeout: Duration,
    /// How long a running job may go without a heartbeat (also the reattach grace period).
    pub heartbeat_timeout: Duration,
    /// Log lines kept per deployment instance for `wayline logs`.
    pub log_window_lines: usize,
    /// More HTTP routes (the web UI, trigger URLs) served beside `/healthz` and `/metrics`.
    pub http_routes: Option<axum::Router>,
}

impl ServerOptions {
    /// Defaults: database `data_dir/wayline.db`, gRPC on 127.0.0.1:9701, HTTP on 127.0.0.1:9702,
    /// ack timeout 60 s, heartbeat timeout 30 s.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            db_path: data_dir.join("wayline.db"),
            data_dir,
            listen_grpc: SocketAddr::from(([127, 0, 0, 1], 9701)),
            listen_http: SocketAddr::from(([127, 0, 0, 1], 9702)),
            unix_socket: None,
            tls_cert_file: None,
            tls_key_file: None,
            disable_tls: false,
            advertise_addr: None,
            ack_timeout: Duration::from_mins(1),
            heartbeat_timeout: Duration::from_secs(30),
            log_window_lines: 1000,
            http_routes: None,
        }
    }
}

/// The tokio runtime `wayline server run` should use: two workers and few blocking threads,
/// which keeps idle memory small.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_name("wayline-server")
        .enable_all()
        .build()
}

/// A started server.
pub struct RunningServer {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    unix_socket: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    store: Arc<dyn Store>,
    shared: Arc<service::Shared>,
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

    /// Mints a login token without the one-time bootstrap (for the CLI's embedded server, which
    /// owns the process and stores the token in the user's default context).
    pub async fn mint_login_token(&self) -> Result<String, tonic::Status> {
        self.shared
            .mint(auth::Tokens::claims(auth::TokenKind::Login, None))
            .await
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
        if let Some(p) = &self.unix_socket {
            let _ = std::fs::remove_file(p);
        }
        tracing::info!("server stopped");
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn wait(self) {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => futures::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = term => tracing::info!("SIGTERM received; shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
        }
        self.shutdown().await;
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

/// Moves a verified snapshot staged by `RestoreSnapshot` into place.
fn apply_staged_restore(db: &Path) -> Result<(), Error> {
    let staged = service::staged_restore_path(db);
    if !staged.exists() {
        return Ok(());
    }
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?;
        }
    }
    std::fs::rename(&staged, db).map_err(|source| Error::Io {
        path: db.to_owned(),
        source,
    })?;
    tracing::warn!(db = %db.display(), "restored the database from a snapshot");
    Ok(())
}

/// Opens the store, binds every listener and starts serving.
pub async fn start(opts: ServerOptions) -> Result<RunningServer, Error> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| Error::Io {
        path: opts.data_dir.clone(),
        source,
    })?;
    apply_staged_restore(&opts.db_path)?;
    let store_err = |source| Error::Store {
        path: opts.db_path.clone(),
        source,
    };
    let sqlite = SqliteStore::open(&opts.db_path).map_err(store_err)?;
    let store: Arc<dyn Store> = Arc::new(sqlite);

    let key = store
        .init_state("hmac_key", rand::random::<[u8; 32]>().to_vec())
        .await
        .map_err(store_err)?;
    let revoked = store.revoked_tokens().await.map_err(store_err)?;
    let tokens = auth::Tokens::new(key, revoked);
    let runners = Arc::new(runners::Runners::default());
    runners.load(store.list_runners().await.map_err(store_err)?);

    let grpc = tokio::net::TcpListener::bind(opts.listen_grpc)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.listen_grpc.to_string(),
            source,
        })?;
    let grpc_addr = grpc.local_addr().map_err(|source| Error::Listen {
        addr: opts.listen_grpc.to_string(),
        source,
    })?;
    let http = tokio::net::TcpListener::bind(opts.listen_http)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.listen_http.to_string(),
            source,
        })?;
    let http_addr = http.local_addr().map_err(|source| Error::Listen {
        addr: opts.listen_http.to_string(),
        source,
    })?;

    let settings = service::Settings {
        data_dir: opts.data_dir.clone(),
        db_path: opts.db_path.clone(),
        advertise_addr: opts
            .advertise_addr
            .clone()
            .unwrap_or_else(|| grpc_addr.to_string()),
        unix_socket: opts.unix_socket.clone(),
        tls: !opts.disable_tls,
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

    let tls = if opts.disable_tls {
        None
    } else {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if let Some(host) = opts
            .advertise_addr
            .as_deref()
            .map(|a| a.rsplit_once(':').map_or(a, |(h, _)| h))
        {
            names.push(host.trim_matches(['[', ']']).to_owned());
        }
        Some(tls::load_or_generate(
            opts.tls_cert_file.as_deref(),
            opts.tls_key_file.as_deref(),
            &opts.data_dir,
            names,
        )?)
    };

    let (stop, stop_rx) = watch::channel(false);
    let svc = WaylineServer::new(service::Service {
        shared: Arc::clone(&shared),
    });
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(wayline_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Config(format!("reflection: {e}")))?;
    // v1alpha too: grpcurl and Python's grpcio-reflection still ask for it.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(wayline_proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Config(format!("reflection: {e}")))?;
    let (health, health_svc) = tonic_health::server::health_reporter();
    health
        .set_serving::<WaylineServer<service::Service>>()
        .await;

    let mut tasks = Vec::new();
    let mut builder = grpc_server();
    if let Some(pem) = &tls {
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(&pem.cert, &pem.key)))
            .map_err(|e| Error::Tls(e.to_string()))?;
    }
    let router = builder
        .add_service(svc.clone())
        .add_service(reflection.clone())
        .add_service(reflection_alpha.clone())
        .add_service(health_svc.clone());
    let signal = stop_signal(stop_rx.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), signal)
            .await
        {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }));

    if let Some(path) = &opts.unix_socket {
        if path.exists() {
            // A socket left by a server that was killed; binding would fail with EADDRINUSE.
            std::fs::remove_file(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let unix = tokio::net::UnixListener::bind(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        // Containers that bind-mount the socket may run as any user; every call still needs a
        // token, so the socket itself is open to all local users.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        let router = grpc_server()
            .add_service(svc)
            .add_service(reflection)
            .add_service(reflection_alpha)
            .add_service(health_svc);
        let signal = stop_signal(stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = router
                .serve_with_incoming_shutdown(UnixListenerStream::new(unix), signal)
                .await
            {
                tracing::error!(error = %e, "gRPC unix-socket server failed");
            }
        }));
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
        tls_cert: tls.map(|t| t.cert_path),
        stop,
        tasks,
        store,
        shared,
    })
}
