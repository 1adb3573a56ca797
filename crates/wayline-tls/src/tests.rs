//! Handshakes against a loopback TLS server whose certificate (for `localhost`) is signed by a
//! test CA, in each verification mode.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;

use super::*;

/// A CA (its PEM) and a TLS server on 127.0.0.1 presenting a `localhost` certificate it signed.
struct CaSignedServer {
    ca_pem: String,
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

async fn ca_signed_server() -> CaSignedServer {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Wayline test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &*ca)
        .unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        // Bounded: every test makes at most a few connections.
        for _ in 0..8 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            // A refused handshake is what some tests expect; the client reports it.
            let _ = acceptor.accept(tcp).await;
        }
    });
    CaSignedServer {
        ca_pem: ca.pem(),
        port,
        task,
    }
}

impl Drop for CaSignedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ca_file(pem: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), pem).unwrap();
    f
}

fn with_ca(file: &tempfile::NamedTempFile) -> TlsOptions {
    TlsOptions {
        skip_verify: false,
        ca_file: Some(file.path().to_owned()),
    }
}

#[tokio::test]
async fn verified_with_the_signing_ca_succeeds() {
    let server = ca_signed_server().await;
    let file = ca_file(&server.ca_pem);
    let config = client_config(&with_ca(&file)).unwrap();
    connect(&format!("localhost:{}", server.port), config)
        .await
        .expect("a certificate signed by the given CA, for the dialled name, is accepted");
}

#[tokio::test]
async fn verified_refuses_a_name_the_certificate_does_not_carry() {
    let server = ca_signed_server().await;
    let file = ca_file(&server.ca_pem);
    let config = client_config(&with_ca(&file)).unwrap();
    let err = connect(&format!("127.0.0.1:{}", server.port), config)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not valid for name"),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn verified_refuses_another_ca() {
    let server = ca_signed_server().await;
    let other = ca_signed_server().await;
    let file = ca_file(&other.ca_pem);
    let config = client_config(&with_ca(&file)).unwrap();
    let err = connect(&format!("localhost:{}", server.port), config)
        .await
        .unwrap_err();
    // Both test CAs have the same name, so rustls finds the issuer and the signature fails.
    assert!(
        err.to_string().starts_with("invalid peer certificate: "),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn system_roots_do_not_trust_the_test_ca() {
    let server = ca_signed_server().await;
    match client_config(&TlsOptions::default()) {
        // A machine without a trust store: verified mode says so instead of trusting nothing.
        Err(e @ TlsError::NoSystemRoots(_)) => {
            assert!(e.to_string().contains("WAYLINE_SERVER_TLS_CA"), "{e}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(config) => {
            let err = connect(&format!("localhost:{}", server.port), config)
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("UnknownIssuer"),
                "unexpected error: {err}"
            );
        }
    }
}

#[tokio::test]
async fn skip_verify_accepts_any_certificate() {
    let server = ca_signed_server().await;
    let config = client_config(&TlsOptions {
        skip_verify: true,
        ca_file: None,
    })
    .unwrap();
    connect(&format!("127.0.0.1:{}", server.port), config)
        .await
        .expect("skip-verify accepts a certificate for another name from an unknown CA");
}

#[test]
fn a_bad_ca_file_is_refused_with_its_path() {
    let empty = ca_file("not a certificate\n");
    let err = client_config(&with_ca(&empty)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the TLS CA file {} holds no usable PEM certificate",
            empty.path().display()
        )
    );
    let missing = TlsOptions {
        skip_verify: false,
        ca_file: Some("/nonexistent/ca.pem".into()),
    };
    assert_eq!(
        client_config(&missing).unwrap_err().to_string(),
        "cannot read the TLS CA file /nonexistent/ca.pem: No such file or directory (os error 2)"
    );
}

#[test]
fn server_names_come_from_the_host_part() {
    assert_eq!(
        server_name("example.com:9701").unwrap(),
        ServerName::try_from("example.com").unwrap()
    );
    assert_eq!(
        server_name("[::1]:9701").unwrap(),
        ServerName::try_from("::1").unwrap()
    );
}
