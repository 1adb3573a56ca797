//! A URL service with a fake authority and routes, apps that say who they are, a tunnel
//! client, and a plain HTTP/1 client that sets `Host`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use wayline_core::url::UrlRoute;
use wayline_url::preface::Hello;
use wayline_url::{Authority, Options, UrlService};

/// Accepts `tok-<deployment>` for that deployment only.
pub(crate) struct FakeAuthority;

impl Authority for FakeAuthority {
    fn authorize(&self, hello: &Hello) -> Result<(), String> {
        match hello.token.strip_prefix("tok-") {
            Some(d) if d == hello.deployment_id => Ok(()),
            Some(d) => Err(format!(
                "this tunnel token is for deployment {d}, not {}",
                hello.deployment_id
            )),
            None => Err("bad token".into()),
        }
    }
}

/// A running service and its inputs.
pub(crate) struct Running {
    pub(crate) svc: UrlService,
    pub(crate) routes: watch::Sender<Arc<Vec<UrlRoute>>>,
    pub(crate) socket: PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn route(host: &str, seq: u64, address: &str, weight: u32) -> UrlRoute {
    UrlRoute {
        host: host.into(),
        sequence: seq,
        deployment_id: format!("d{seq}"),
        address: address.into(),
        weight,
        ..UrlRoute::default()
    }
}

pub(crate) async fn service(routes: Vec<UrlRoute>) -> Running {
    service_with(routes, |_| {}).await
}

/// [`service`] with options set by `f`.
pub(crate) async fn service_with(routes: Vec<UrlRoute>, f: impl FnOnce(&mut Options)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("url.sock");
    let mut opts = Options::new("localhost");
    opts.tunnel_socket = Some(socket.clone());
    f(&mut opts);
    let (tx, rx) = watch::channel(Arc::new(routes));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let svc = UrlService::start(opts, listener, Arc::new(FakeAuthority), rx).unwrap();
    Running {
        svc,
        routes: tx,
        socket,
        _dir: dir,
    }
}

/// How many `/slow` requests reached an app (one test sends them), so it can act mid-request.
pub(crate) static SLOW_REQUESTS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// An app answering `<name> <path> host=<Host> xff=<X-Forwarded-For> xfh=<X-Forwarded-Host>`;
/// `/slow` waits 2 s first, `/echo` returns the request body.
pub(crate) async fn app(name: &'static str) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| async move {
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let text = format!(
                        "{name} {} host={} xff={} xfh={} xfp={}",
                        req.uri().path(),
                        h("host"),
                        h("x-forwarded-for"),
                        h("x-forwarded-host"),
                        h("x-forwarded-proto")
                    );
                    let body = match req.uri().path() {
                        "/slow" => {
                            SLOW_REQUESTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            Bytes::from(text)
                        }
                        "/echo" => req.into_body().collect().await?.to_bytes(),
                        _ => Bytes::from(text),
                    };
                    Ok::<_, hyper::Error>(Response::new(Full::new(body)))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// `GET path` with `Host: host` through the ingress: status and body.
pub(crate) async fn get(ingress: SocketAddr, host: &str, path: &str) -> (StatusCode, String) {
    send(ingress, host, path, Bytes::new()).await
}

/// A request with a body (`POST` when not empty).
pub(crate) async fn send(
    ingress: SocketAddr,
    host: &str,
    path: &str,
    body: Bytes,
) -> (StatusCode, String) {
    let (parts, body) = fetch(ingress, host, path, body).await.into_parts();
    (parts.status, String::from_utf8_lossy(&body).into_owned())
}

/// The whole answer, headers included.
pub(crate) async fn fetch(
    ingress: SocketAddr,
    host: &str,
    path: &str,
    body: Bytes,
) -> Response<Bytes> {
    let s = tokio::net::TcpStream::connect(ingress).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    let method = if body.is_empty() { "GET" } else { "POST" };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .body(Full::new(body))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), tx.send_request(req))
        .await
        .expect("answered within 10 s")
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, body)
}

/// Opens a tunnel for deployment `d` to the app at `port` (in the background).
pub(crate) fn tunnel(
    socket: &std::path::Path,
    d: &str,
    token: &str,
    port: u16,
) -> tokio::task::JoinHandle<Result<(), wayline_url::client::TunnelError>> {
    let addr = wayline_url::client::TunnelAddr::Unix(socket.to_owned());
    let hello = Hello {
        deployment_id: d.into(),
        instance_id: format!("i-{d}"),
        token: token.into(),
    };
    tokio::spawn(async move { wayline_url::client::run(&addr, &hello, port, || {}).await })
}
