//! Connecting to a Wayline server.
//!
//! Addresses are `unix:///path/to/socket` (plaintext gRPC over a unix socket, what the embedded
//! default and local deployments use) or `host:port` (gRPC over TLS unless TLS is turned off).
//! Servers generate a self-signed certificate by default, so `tls_skip_verify` is a supported
//! setting rather than a debugging aid. TLS itself is `wayline-tls`, shared with the entrypoint.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};
use wayline_proto::v1::wayline_client::WaylineClient;

/// A client of the Wayline API that sends the bearer token with every call.
pub type Client = WaylineClient<InterceptedService<Channel, Auth>>;

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddr {
    /// A unix socket path.
    Unix(PathBuf),
    /// `host:port` over TCP.
    Tcp(String),
}

impl FromStr for ServerAddr {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(ConnectError::BadAddress(s.to_owned()));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        let hostport = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        let hostport = hostport.trim_end_matches('/');
        if hostport.is_empty() || !hostport.contains(':') {
            return Err(ConnectError::BadAddress(s.to_owned()));
        }
        Ok(Self::Tcp(hostport.to_owned()))
    }
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp(h) => f.write_str(h),
        }
    }
}

/// How to reach a server.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub addr: ServerAddr,
    pub token: Option<String>,
    /// TLS for TCP addresses (ignored for unix sockets).
    pub tls: bool,
    pub tls_skip_verify: bool,
    /// Verify against the CA certificates in this PEM file instead of the system roots.
    pub tls_ca: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl ConnectOptions {
    /// Options for `addr` with TLS on and verification on, against the CA file in
    /// `WAYLINE_SERVER_TLS_CA` when set, else the system roots.
    pub fn new(addr: ServerAddr) -> Self {
        Self {
            addr,
            token: None,
            tls: true,
            tls_skip_verify: false,
            tls_ca: wayline_tls::TlsOptions::verified_from_env().ca_file,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("`{0}` is not a server address: use `host:port` or `unix:///path/to/socket`")]
    BadAddress(String),
    #[error("could not connect to the Wayline server at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("the token is not valid metadata (it must be printable ASCII)")]
    BadToken,
    #[error(transparent)]
    Tls(#[from] wayline_tls::TlsError),
}

/// Sends `authorization: Bearer <token>` with every request. The token can be replaced while
/// clients are in use (a runner receives its token when it is adopted).
#[derive(Clone)]
pub struct Auth {
    header: Arc<RwLock<Option<MetadataValue<Ascii>>>>,
}

impl Auth {
    /// Replaces the token sent from now on.
    pub fn set_token(&self, token: &str) -> Result<(), ConnectError> {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ConnectError::BadToken)?;
        *self
            .header
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
        Ok(())
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let header = self
            .header
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = header.as_ref() {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// Connects and returns a client; fails fast when the server is not there.
pub async fn connect(opts: &ConnectOptions) -> Result<Client, ConnectError> {
    let channel = channel(opts).await?;
    with_token(channel, opts.token.as_deref())
}

/// Wraps a channel with a token.
pub fn with_token(channel: Channel, token: Option<&str>) -> Result<Client, ConnectError> {
    Ok(with_auth(channel, auth(token)?))
}

/// An [`Auth`] holding `token` (none when empty).
pub fn auth(token: Option<&str>) -> Result<Auth, ConnectError> {
    let auth = Auth {
        header: Arc::new(RwLock::new(None)),
    };
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        auth.set_token(t)?;
    }
    Ok(auth)
}

/// Wraps a channel with a shared [`Auth`].
pub fn with_auth(channel: Channel, auth: Auth) -> Client {
    WaylineClient::with_interceptor(channel, auth)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

/// Opens a gRPC channel to the server.
pub async fn channel(opts: &ConnectOptions) -> Result<Channel, ConnectError> {
    let unreachable = |e: &dyn std::fmt::Display| ConnectError::Unreachable {
        addr: opts.addr.to_string(),
        reason: e.to_string(),
    };
    let endpoint = |uri: &str| -> Result<Endpoint, ConnectError> {
        Ok(Endpoint::from_shared(uri.to_owned())
            .map_err(|e| unreachable(&e))?
            .connect_timeout(opts.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_while_idle(true))
    };
    let result = match &opts.addr {
        ServerAddr::Unix(path) => {
            let path = path.clone();
            endpoint("http://wayline.local")?
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move { UnixStream::connect(path).await.map(TokioIo::new) }
                }))
                .await
        }
        ServerAddr::Tcp(hostport) if !opts.tls => {
            endpoint(&format!("http://{hostport}"))?.connect().await
        }
        ServerAddr::Tcp(hostport) => {
            let config = wayline_tls::client_config(&wayline_tls::TlsOptions {
                skip_verify: opts.tls_skip_verify,
                ca_file: opts.tls_ca.clone(),
            })?;
            wayline_tls::channel(endpoint(&format!("http://{hostport}"))?, hostport, config).await
        }
    };
    result.map_err(|e| unreachable(&error_chain(&e)))
}

/// Joins an error and its sources: tonic's top-level transport error says little on its own.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        src = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            "unix:///tmp/s.sock".parse::<ServerAddr>().unwrap(),
            ServerAddr::Unix("/tmp/s.sock".into())
        );
        assert_eq!(
            "127.0.0.1:9701".parse::<ServerAddr>().unwrap(),
            ServerAddr::Tcp("127.0.0.1:9701".into())
        );
        assert_eq!(
            "https://h:1/".parse::<ServerAddr>().unwrap(),
            ServerAddr::Tcp("h:1".into())
        );
        assert_eq!(
            "nohost".parse::<ServerAddr>().unwrap_err().to_string(),
            "`nohost` is not a server address: use `host:port` or `unix:///path/to/socket`"
        );
    }
}
