//! `build` against fake one-request engines, on a unix socket and over TLS with a client
//! certificate: what goes on the wire and how answers are read.

use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_rustls::rustls;

use super::super::Endpoint;
use super::BuildSpec;
use super::tests::{at, log, trace_line, update, vertex};

/// Reads one request from `conn` (the head, then as much body as it announces), writes
/// `parts` (raw HTTP, in pieces, so a line can straddle two reads) and returns the head.
async fn serve_once<S: AsyncRead + AsyncWrite + Unpin>(mut conn: S, parts: Vec<String>) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the client hung up mid-request");
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while got.len() < head_end + length {
        let n = conn.read(&mut buf).await.unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    for part in parts {
        conn.write_all(part.as_bytes()).await.unwrap();
        conn.flush().await.unwrap();
    }
    conn.shutdown().await.ok();
    head
}

/// A fake engine on a unix socket answering `parts` to one request; its task returns the head.
fn unix_engine(
    parts: Vec<String>,
) -> (tempfile::TempDir, Endpoint, tokio::task::JoinHandle<String>) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("engine.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let served = tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        serve_once(conn, parts).await
    });
    let endpoint = Endpoint {
        host: Some(format!("unix://{}", sock.display())),
        tls: None,
    };
    (dir, endpoint, served)
}

fn chunk(text: &str) -> String {
    format!("{:x}\r\n{text}\r\n", text.len())
}

const CHUNKED: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

fn image_id_answer() -> Vec<String> {
    vec![
        CHUNKED.to_owned(),
        chunk("{\"id\":\"moby.image.id\",\"aux\":{\"ID\":\"sha256:feed\"}}\n"),
        "0\r\n\r\n".to_owned(),
    ]
}

#[tokio::test]
async fn a_build_goes_over_http_with_its_options_and_credentials() {
    let mut run = vertex("sha256:b", "[1/1] RUN echo hi");
    run.started = at(1, 0);
    let trace = format!(
        "{}\n",
        trace_line(&update(vec![run], vec![log("sha256:b", "hi\n")]))
    );
    let (first, second) = trace.split_at(trace.len() / 2);
    let mut parts = vec![CHUNKED.to_owned(), chunk(first), chunk(second)];
    parts.extend(image_id_answer().into_iter().skip(1));
    let (_dir, endpoint, served) = unix_engine(parts);
    let creds = bollard::auth::DockerCredentials {
        username: Some("u".into()),
        ..Default::default()
    };
    let spec = BuildSpec {
        dockerfile: "Dockerfile".into(),
        tag: Some("t:1".into()),
        credentials: Some([("reg.example".to_owned(), creds)].into()),
        ..BuildSpec::default()
    };
    let shown = std::sync::Mutex::new(Vec::new());
    let out = |l: &str| shown.lock().unwrap().push(l.to_owned());
    let id = super::build(&endpoint, "1.41", b"tar".to_vec().into(), &spec, &out)
        .await
        .unwrap();
    assert_eq!(id, "sha256:feed");
    assert_eq!(
        shown.into_inner().unwrap(),
        ["#1 [1/1] RUN echo hi", "#1 hi"]
    );
    let head = served.await.unwrap();
    assert!(
        head.starts_with("POST /v1.41/build?version=2&dockerfile=Dockerfile&t=t%3A1 HTTP/1.1\r\n"),
        "{head}"
    );
    let config = head
        .lines()
        .find_map(|l| l.strip_prefix("x-registry-config: "))
        .unwrap_or_else(|| panic!("{head}"));
    let config = base64::engine::general_purpose::STANDARD
        .decode(config)
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["reg.example"]["username"], "u");
}

/// A build of an empty context with no options, its output dropped.
async fn bare_build(endpoint: &Endpoint) -> Result<String, super::DockerError> {
    let out = |_: &str| {};
    super::build(
        endpoint,
        "1.41",
        Vec::new().into(),
        &BuildSpec::default(),
        &out,
    )
    .await
}

#[tokio::test]
async fn an_engine_without_buildkit_is_told_apart_from_a_failed_build() {
    let answer = |status: &str, message: &str| {
        let body = serde_json::json!({ "message": message }).to_string();
        vec![format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )]
    };
    for (status, message, error) in [
        (
            "400 Bad Request",
            "buildkit not supported by daemon",
            "the engine refused the BuildKit build (HTTP 400): buildkit not supported by daemon",
        ),
        (
            "500 Internal Server Error",
            "no space left on device",
            "docker build failed: no space left on device",
        ),
    ] {
        let (_dir, endpoint, _served) = unix_engine(answer(status, message));
        let err = bare_build(&endpoint).await.unwrap_err();
        assert_eq!(err.to_string(), error);
    }
}

/// A CA, and a certificate it signed for `name` with its key, as PEM.
struct Pems {
    ca: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    leaf: (String, String),
}

fn certificates(name: &str) -> (rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, Pems) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &*ca)
        .unwrap();
    let pems = Pems {
        ca: ca.pem(),
        ca_der: ca.der().clone(),
        leaf: (leaf.pem(), key.serialize_pem()),
    };
    (ca, pems)
}

#[tokio::test]
async fn a_tls_engine_is_reached_with_the_client_certificate_and_its_ca() {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (ca, server) = certificates("localhost");
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["client".to_owned()])
        .unwrap()
        .signed_by(&client_key, &*ca)
        .unwrap();
    let certs = tempfile::tempdir().unwrap();
    std::fs::write(certs.path().join("ca.pem"), &server.ca).unwrap();
    std::fs::write(certs.path().join("cert.pem"), client.pem()).unwrap();
    std::fs::write(certs.path().join("key.pem"), client_key.serialize_pem()).unwrap();

    // The engine: requires a client certificate from the same CA.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca_der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(server.leaf.0.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(server.leaf.1.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor
            .accept(tcp)
            .await
            .expect("the client's certificate is accepted");
        serve_once(tls, image_id_answer()).await
    });
    let endpoint = Endpoint {
        host: Some(format!("tcp://localhost:{port}")),
        tls: Some(certs.path().to_owned()),
    };
    let id = bare_build(&endpoint).await.unwrap();
    assert_eq!(id, "sha256:feed");
    assert!(
        served
            .await
            .unwrap()
            .starts_with("POST /v1.41/build?version=2")
    );
}
