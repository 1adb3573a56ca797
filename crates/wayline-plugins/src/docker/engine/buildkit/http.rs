//! One `POST /build` over an HTTP/1 connection of our own. bollard's build call decodes every
//! line into its classic-builder type, which a BuildKit trace (`"aux": "<base64>"`) does not fit,
//! so its stream ends at the first one; here the body comes back as raw lines instead. The engine
//! is reached like [`Endpoint`] says: a unix socket, plain tcp, or TLS with the client
//! certificate and the CA from the cert directory (as bollard's own TLS connection does).

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::super::Endpoint;

/// Where the default engine listens.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The request could not be sent or its answer not read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting failed.
    #[error("connecting to `{addr}`: {message}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        message: String,
    },
    /// The HTTP exchange failed.
    #[error("talking to the engine: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be put together.
    #[error("building the request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The answer's body could not be read.
    #[error("reading the engine's answer: {0}")]
    Body(String),
}

/// Sends `request` to the engine at `endpoint` and returns its answer (any status).
pub(super) async fn send(
    endpoint: &Endpoint,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, HttpError> {
    let addr = endpoint.addr();
    let connect = |e: std::io::Error| HttpError::Connect {
        addr: addr.clone(),
        message: e.to_string(),
    };
    let host = endpoint.host.as_deref().unwrap_or(DEFAULT_SOCKET);
    if let Some(authority) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
        .or_else(|| host.strip_prefix("https://"))
    {
        let authority = authority.trim_end_matches('/');
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(connect)?;
        return match &endpoint.tls {
            Some(dir) => {
                let tls = tls_connect(dir, authority, tcp).await.map_err(connect)?;
                exchange(tls, request).await
            }
            None => exchange(tcp, request).await,
        };
    }
    let path = host.strip_prefix("unix://").unwrap_or(host);
    let unix = tokio::net::UnixStream::connect(path)
        .await
        .map_err(connect)?;
    exchange(unix, request).await
}

/// One request on a fresh HTTP/1 connection over `io`.
async fn exchange<T>(io: T, request: Request<Full<Bytes>>) -> Result<Response<Incoming>, HttpError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "engine connection ended");
        }
    });
    Ok(sender.send_request(request).await?)
}

/// The next piece of `body`, or `None` at its end.
pub(super) async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, HttpError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| HttpError::Body(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// The whole of a (short) error answer's body, as text.
pub(super) async fn text(body: Incoming) -> Result<String, HttpError> {
    let bytes = body
        .collect()
        .await
        .map_err(|e| HttpError::Body(e.to_string()))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// TLS over `tcp`, verifying the engine against `ca.pem` and showing `cert.pem`/`key.pem`.
async fn tls_connect(
    dir: &std::path::Path,
    authority: &str,
    tcp: tokio::net::TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let read = |name: &str| {
        let path = dir.join(name);
        fs_err::read(&path)
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read("ca.pem")?) {
        let cert = cert.map_err(|e| invalid(format!("ca.pem: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("ca.pem: {e}")))?;
    }
    let chain = CertificateDer::pem_slice_iter(&read("cert.pem")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("cert.pem: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&read("key.pem")?)
        .map_err(|e| invalid(format!("key.pem: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| invalid(format!("cert.pem/key.pem: {e}")))?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned()).map_err(|e| invalid(e.to_string()))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}
