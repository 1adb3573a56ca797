//! TLS for TCP server addresses. The server's default certificate is self-signed, so
//! `WAYLINE_SERVER_TLS_SKIP_VERIFY` is common; otherwise the certificate is checked against the
//! CA in `WAYLINE_SERVER_TLS_CA` (a PEM file) when set.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::client::ConnectError;

/// Adds TLS to `ep`.
pub fn configure(
    ep: Endpoint,
    authority: &str,
    skip_verify: bool,
) -> Result<Endpoint, ConnectError> {
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_matches(['[', ']']);
    let cfg = ClientTlsConfig::new().domain_name(host).assume_http2(true);
    if skip_verify {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        return ep
            .tls_config_with_verifier(cfg, Arc::new(AnyCert(provider)))
            .map_err(|e| ConnectError::Tls(e.to_string()));
    }
    let cfg = match std::env::var("WAYLINE_SERVER_TLS_CA")
        .or_else(|_| std::env::var("WAYPOINT_SERVER_TLS_CA"))
    {
        Ok(path) => {
            let pem = std::fs::read(&path)
                .map_err(|e| ConnectError::Tls(format!("cannot read {path}: {e}")))?;
            cfg.ca_certificate(Certificate::from_pem(pem))
        }
        Err(_) => cfg,
    };
    ep.tls_config(cfg)
        .map_err(|e| ConnectError::Tls(e.to_string()))
}

/// Accepts any certificate but still checks the handshake signatures, so the session is
/// encrypted to whoever holds the presented key.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
