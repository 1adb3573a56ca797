//! How to run a server: [`ServerOptions`] and the runtime `wayline server run` uses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::urls::UrlOptions;

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
    /// The socket's permission bits (default 0600: the owner only).
    pub socket_mode: u32,
    /// Start on a missing or empty database even though the data dir was used before (with a
    /// new signing key).
    pub reinitialize: bool,
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
    /// The URL service run beside this server: entrypoints get a tunnel token and API records
    /// their public URLs.
    pub url: Option<UrlOptions>,
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
            socket_mode: 0o600,
            reinitialize: false,
            tls_cert_file: None,
            tls_key_file: None,
            disable_tls: false,
            advertise_addr: None,
            ack_timeout: Duration::from_mins(1),
            heartbeat_timeout: Duration::from_secs(30),
            log_window_lines: 1000,
            http_routes: None,
            url: None,
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
