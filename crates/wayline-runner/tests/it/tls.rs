//! The runner's (and the CLI's) TLS client against a server whose certificate a CA signed:
//! verified mode trusts exactly the given CA, and skip-verify accepts the certificate anyway.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use wayline_runner::client::{self, ConnectOptions, ServerAddr};
use wayline_server::{RunningServer, ServerOptions};

/// A running server presenting a `localhost` certificate signed by a fresh CA, whose PEM is
/// in `ca` (in the temp dir).
struct CaSignedServer {
    server: RunningServer,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn ca_signed_server() -> CaSignedServer {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Wayline runner test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &*ca)
        .unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        // The server refuses a key others can read.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        path
    };
    let ca_path = write("ca.pem", ca.pem());
    let mut opts = ServerOptions::new(dir.path().join("server"));
    opts.listen_grpc = "127.0.0.1:0".parse().unwrap();
    opts.listen_http = "127.0.0.1:0".parse().unwrap();
    opts.tls_cert_file = Some(write("cert.pem", cert.pem()));
    opts.tls_key_file = Some(write("key.pem", key.serialize_pem()));
    let server = wayline_server::start(opts).await.expect("server starts");
    CaSignedServer {
        server,
        ca: ca_path,
        _dir: dir,
    }
}

fn options(server: &CaSignedServer, host: &str) -> ConnectOptions {
    let port = server.server.grpc_addr().port();
    let mut opts = ConnectOptions::new(ServerAddr::Tcp(format!("{host}:{port}")));
    opts.tls_ca = None;
    opts
}

#[tokio::test]
async fn verified_tls_trusts_the_given_ca() {
    let server = ca_signed_server().await;
    let mut opts = options(&server, "localhost");
    opts.tls_ca = Some(server.ca.clone());
    let mut client = client::connect(&opts).await.expect("verified TLS connects");
    let info = client.get_version_info(()).await.expect("a call over TLS");
    assert_eq!(info.into_inner().info.unwrap().api_version, 1);
}

#[tokio::test]
async fn verified_tls_refuses_a_certificate_it_cannot_verify() {
    let server = ca_signed_server().await;
    // Right CA, wrong name: the certificate is for `localhost`.
    let mut opts = options(&server, "127.0.0.1");
    opts.tls_ca = Some(server.ca.clone());
    let err = client::connect(&opts).await.unwrap_err().to_string();
    assert!(
        err.contains("not valid for name"),
        "unexpected error: {err}"
    );
    // The system roots do not hold the test CA (or there are none on this machine).
    let err = client::connect(&options(&server, "localhost"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("UnknownIssuer") || err.starts_with("no trusted root certificates"),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn skip_verify_accepts_the_certificate() {
    let server = ca_signed_server().await;
    let mut opts = options(&server, "127.0.0.1");
    opts.tls_skip_verify = true;
    let mut client = client::connect(&opts).await.expect("skip-verify connects");
    client.get_version_info(()).await.expect("a call over TLS");
}
