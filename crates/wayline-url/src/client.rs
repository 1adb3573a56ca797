//! The tunnel client, linked by the entrypoint: dial the URL service, say which deployment this
//! is (with its token), then *serve* HTTP/2 on that connection, each stream forwarded to the app
//! on `127.0.0.1:$PORT` over pooled HTTP/1.1 connections. Reconnecting is the caller's loop
//! (the entrypoint's backoff).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Either, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::preface::{self, Hello, PrefaceError};

/// Where the URL service takes tunnels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelAddr {
    /// A unix socket (the server's socket directory, bind-mounted into local containers).
    Unix(PathBuf),
    /// `host:port` over TCP.
    Tcp(String),
}

impl std::fmt::Display for TunnelAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// How one tunnel ended.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The URL service could not be reached.
    #[error("cannot reach the URL service at {addr}: {source}")]
    Dial {
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The preface failed or was refused.
    #[error(transparent)]
    Preface(#[from] PrefaceError),
    /// The HTTP/2 connection failed after it started.
    #[error("the tunnel broke: {0}")]
    Http(String),
}

impl TunnelError {
    /// Whether the URL service refused this tunnel (retrying soon will not help).
    pub fn refused(&self) -> bool {
        matches!(self, Self::Preface(PrefaceError::Refused(_)))
    }
}

/// What the tunnel answers with: the app's body or one of ours.
pub(crate) type AppBody = Either<Incoming, Full<Bytes>>;

/// Request bodies on their way to the app.
pub(crate) type AppReqBody = BoxBody<Bytes, hyper::Error>;

pub(crate) fn bad_gateway(port: u16, e: &dyn std::error::Error) -> Response<AppBody> {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(format!(
        "the app is not answering on port {port}: {msg}\n"
    )))));
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    // The service's health check knows this answer is ours, not the app's.
    r.headers_mut().insert(
        "x-wayline-error",
        HeaderValue::from_static("app-unreachable"),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The app's HTTP client: keep-alive connections to `127.0.0.1:port`.
pub fn app_client() -> Client<HttpConnector, AppReqBody> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_mins(1))
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// Forwards one tunnelled request to the app; the public host travels as `Host`.
async fn forward(
    client: Client<HttpConnector, AppReqBody>,
    port: u16,
    req: Request<Incoming>,
) -> Response<AppBody> {
    if req.method() == http::Method::CONNECT {
        return crate::streams::connect(client, port, req).await;
    }
    let (mut parts, body) = req.into_parts();
    if let Some(a) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        parts.headers.insert(header::HOST, v);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    parts.uri = match Uri::try_from(format!("http://127.0.0.1:{port}{path}")) {
        Ok(u) => u,
        Err(e) => return bad_gateway(port, &e),
    };
    parts.version = http::Version::HTTP_11;
    match client
        .request(Request::from_parts(parts, body.boxed()))
        .await
    {
        Ok(resp) => resp.map(Either::Left),
        Err(e) => bad_gateway(port, &e),
    }
}

/// Dials `addr`, authenticates as `hello`, and serves the tunnel until it ends. `on_open` runs
/// once the URL service accepted the tunnel (the caller resets its backoff there).
pub async fn run(
    addr: &TunnelAddr,
    hello: &Hello,
    app_port: u16,
    on_open: impl FnOnce(),
) -> Result<(), TunnelError> {
    let dial = |source| TunnelError::Dial {
        addr: addr.to_string(),
        source,
    };
    match addr {
        TunnelAddr::Unix(p) => {
            let s = tokio::net::UnixStream::connect(p).await.map_err(dial)?;
            serve(s, hello, app_port, on_open).await
        }
        TunnelAddr::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a).await.map_err(dial)?;
            let _ = s.set_nodelay(true);
            serve(s, hello, app_port, on_open).await
        }
    }
}

/// [`run`] over an already connected stream.
pub async fn serve<S>(
    mut stream: S,
    hello: &Hello,
    app_port: u16,
    on_open: impl FnOnce(),
) -> Result<(), TunnelError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    preface::greet(&mut stream, hello).await?;
    on_open();
    let client = app_client();
    let svc = service_fn(move |req| {
        let client = client.clone();
        async move { Ok::<_, std::convert::Infallible>(forward(client, app_port, req).await) }
    });
    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(20))
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .max_concurrent_streams(1024)
        .max_header_list_size(64 << 10)
        .enable_connect_protocol()
        .serve_connection(TokioIo::new(stream), svc)
        .await
        .map_err(|e| TunnelError::Http(e.to_string()))
}
