//! The one TLS client set-up of every Wayline client: the CLI and the runner (through
//! `wayline-runner::client`) and the static entrypoint.
//!
//! Verified mode checks the server's certificate chain and name against the CA file the user
//! gives (`WAYLINE_SERVER_TLS_CA`, `-server-tls-ca`) or, without one, the system's trust store.
//! Servers generate a self-signed certificate by default, so skipping verification is a supported
//! choice too: the handshake signatures are still checked, so the session is encrypted to
//! whoever holds the presented key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, Error as RustlsError, RootCertStore, SignatureScheme,
};
use tonic::transport::{Channel, Endpoint, Uri};

/// How the server's certificate is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Accept any certificate (the default self-signed one included).
    pub skip_verify: bool,
    /// Trust only the CA certificates in this PEM file instead of the system store.
    pub ca_file: Option<PathBuf>,
}

impl TlsOptions {
    /// Verified TLS with the CA file named by `WAYLINE_SERVER_TLS_CA` (or Waypoint's
    /// `WAYPOINT_SERVER_TLS_CA`) when set, else the system roots.
    pub fn verified_from_env() -> Self {
        let ca_file = ["WAYLINE_SERVER_TLS_CA", "WAYPOINT_SERVER_TLS_CA"]
            .iter()
            .find_map(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
            .map(PathBuf::from);
        Self {
            skip_verify: false,
            ca_file,
        }
    }
}

/// Why a TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS CA file {}: {source}", path.display())]
    ReadCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS CA file {} holds no usable PEM certificate{}", path.display(), reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NoCaCert {
        path: PathBuf,
        reason: Option<String>,
    },
    #[error(
        "no trusted root certificates in the system store{}: give the server's CA with WAYLINE_SERVER_TLS_CA, or skip verification",
        .0.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    NoSystemRoots(Option<String>),
}

/// The rustls client configuration for `opts`, speaking h2 (gRPC).
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let mut config = if opts.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &opts.ca_file {
            Some(path) => ca_file_roots(path)?,
            None => system_roots()?,
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn ca_file_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadCa {
        path: path.to_owned(),
        source,
    })?;
    let no_cert = |reason: Option<String>| TlsError::NoCaCert {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_cert(Some(e.to_string())))?;
    let mut roots = RootCertStore::empty();
    let (_, rejected) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(no_cert(
            (rejected > 0).then(|| format!("{rejected} certificate(s) could not be parsed")),
        ));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(TlsError::NoSystemRoots(
            found.errors.first().map(ToString::to_string),
        ));
    }
    Ok(roots)
}

/// The name the certificate must carry for `authority` (`host:port`, `[v6]:port`).
pub fn server_name(authority: &str) -> std::io::Result<ServerName<'static>> {
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// TCP to `authority`, then the TLS handshake with `config`.
pub async fn connect(
    authority: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = server_name(authority)?;
    let tcp = TcpStream::connect(authority).await?;
    tcp.set_nodelay(true)?;
    TlsConnector::from(config).connect(name, tcp).await
}

/// Opens a gRPC channel over TLS: `endpoint` (an `http://` URI, so tonic adds no TLS of its
/// own) dialled through [`connect`] to `authority`.
pub async fn channel(
    endpoint: Endpoint,
    authority: &str,
    config: Arc<ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let authority = authority.to_owned();
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let (authority, config) = (authority.clone(), config.clone());
            async move { connect(&authority, config).await.map(TokioIo::new) }
        }))
        .await
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
