//! What users type to run and administer a server.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub(crate) enum ServerCmd {
    /// Run the server in the foreground.
    Run(ServerRunArgs),
    /// Get the first token of a new server (works once).
    Bootstrap {
        /// Server address.
        #[arg(long = "server-addr")]
        server_addr: String,
        /// Skip verification of the server's TLS certificate.
        #[arg(long = "server-tls-skip-verify")]
        tls_skip_verify: bool,
        /// Use TLS (set false for a plaintext TCP server).
        #[arg(long = "server-tls", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        tls: bool,
        /// Also create a context with this name and make it the default.
        #[arg(long = "context-create")]
        context_create: Option<String>,
    },
    /// Write a consistent snapshot of the server's data to a file (0600; it holds every config
    /// secret). Back up this way, not by copying `wayline.db`: a lost `wayline.db-wal` silently
    /// drops the latest commits (see docs/server-security.md).
    Snapshot {
        /// Where to write the snapshot.
        file: PathBuf,
    },
    /// Restore the server's data from a snapshot.
    Restore {
        /// The snapshot to restore.
        file: PathBuf,
    },
    /// Stop the embedded default server (found through its data dir's lock, so this works even
    /// when its socket was deleted).
    Stop,
    /// Set the address deployments and runners use to reach the server.
    ConfigSet {
        /// The address, `host:port` or `unix:///path`.
        #[arg(long = "advertise-addr")]
        advertise_addr: Option<String>,
        /// Whether deployments and runners use TLS to reach it.
        #[arg(long = "advertise-tls", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        advertise_tls: Option<bool>,
        /// Whether they skip verification of its TLS certificate.
        #[arg(long = "advertise-tls-skip-verify", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        advertise_tls_skip_verify: Option<bool>,
    },
}

/// An octal permission mode such as `600` or `0660`.
fn parse_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("`{s}` is not an octal mode such as 600 or 660")),
    }
}

/// A bandwidth: bytes per second, optionally with a unit (`256KiB`, `1MB`).
fn parse_bandwidth(s: &str) -> Result<u64, String> {
    wayline_core::url::parse_bandwidth(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args, Clone)]
pub(crate) struct ServerRunArgs {
    /// The database file (default: in the data dir).
    #[arg(long = "db")]
    pub(crate) db: Option<PathBuf>,
    /// Where the server keeps its files.
    #[arg(long = "data-dir")]
    pub(crate) data_dir: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long = "listen-grpc", default_value = "127.0.0.1:9701")]
    pub(crate) listen_grpc: String,
    /// HTTP listen address (health, metrics, UI).
    #[arg(long = "listen-http", default_value = "127.0.0.1:9702")]
    pub(crate) listen_http: String,
    /// Unix socket for local clients and deployments (default: `socket/server.sock` in the data
    /// dir). Local Docker deployments bind-mount its directory: give it one of its own.
    #[arg(long = "listen-unix")]
    pub(crate) listen_unix: Option<PathBuf>,
    /// The unix socket's permissions, in octal (default 600: only this user; 666 lets
    /// containers running as other users connect, each call still needs a token).
    #[arg(long = "socket-mode", default_value = "600", value_parser = parse_mode)]
    pub(crate) socket_mode: u32,
    /// Start a new, empty server although the data dir was used before and its database is
    /// missing or empty (makes a new signing key: earlier tokens stop working).
    #[arg(long = "reinitialize")]
    pub(crate) reinitialize: bool,
    /// TLS certificate (PEM) for the gRPC listener (default: a self-signed one).
    #[arg(long = "tls-cert-file")]
    pub(crate) tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `-tls-cert-file`.
    #[arg(long = "tls-key-file")]
    pub(crate) tls_key_file: Option<PathBuf>,
    /// Address runners and deployments use to reach this server.
    #[arg(long = "advertise-addr")]
    pub(crate) advertise_addr: Option<String>,
    /// Seconds a runner has to ack an assigned job.
    #[arg(long = "ack-timeout", default_value_t = 60)]
    pub(crate) ack_timeout: u64,
    /// Seconds without a heartbeat after which a running job fails.
    #[arg(long = "heartbeat-timeout", default_value_t = 30)]
    pub(crate) heartbeat_timeout: u64,
    /// The URL service's HTTP ingress: apps answer here at `<app>.<domain>` (the release) and
    /// `<app>--v<N>.<domain>` (one deployment).
    #[arg(long = "listen-url", default_value = "127.0.0.1:9703")]
    pub(crate) listen_url: String,
    /// The domain apps answer under (`localhost` needs no DNS: browsers resolve
    /// `*.localhost` to loopback). For a real domain point a wildcard record at this host.
    #[arg(long = "url-domain", default_value = "localhost")]
    pub(crate) url_domain: String,
    /// Requests per second each app hostname takes (`web.<domain>` and `web--v2.<domain>` each
    /// on their own); beyond it and its burst the URL service answers 429 with `Retry-After`.
    /// 0: no limit. Apps set their own in `url { limits { requests_per_second } }`.
    #[arg(long = "url-rate-limit", default_value_t = 0)]
    pub(crate) url_rate_limit: u32,
    /// Requests a hostname may take at once above `-url-rate-limit` (0: one second's worth).
    #[arg(long = "url-rate-burst", default_value_t = 0)]
    pub(crate) url_rate_burst: u32,
    /// Bytes per second of request bodies, and of response bodies, each hostname carries, such
    /// as `1MiB` or `500KB` (0: no limit). Bodies are slowed down to it, never cut.
    #[arg(long = "url-bandwidth", default_value = "0", value_parser = parse_bandwidth)]
    pub(crate) url_bandwidth: u64,
    /// Requests in flight at once per deployment (through either of its hosts); more are
    /// answered 503 with the reason. 0: no limit.
    #[arg(long = "url-max-requests", default_value_t = 0)]
    pub(crate) url_max_requests: u32,
    /// Tunnels one deployment may hold open (one per instance; a restarting instance briefly
    /// holds two). The entrypoint of one more is refused and logs why.
    #[arg(long = "url-max-tunnels", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) url_max_tunnels: u32,
    /// Run the URL service beside the server (`-url-service=false` turns it off).
    #[arg(long = "url-service", env = "WAYLINE_URL_SERVICE", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) url_service: bool,
    /// Run as the embedded default server of this user (set by the CLI).
    #[arg(long = "embedded", hide = true)]
    pub(crate) embedded: bool,
}
