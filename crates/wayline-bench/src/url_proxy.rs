//! `wayline-bench url-proxy`: the URL service through its tunnel against the app direct and
//! nginx as a reverse proxy (keepalive upstream), with `wrk`, on a small response and a 1 MiB
//! one. The app, the URL service (two workers, as in the server) and the tunnel client (one
//! thread, as in the entrypoint) each get their own runtime; nginx runs from a temp dir.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use wayline_core::url::UrlRoute;
use wayline_url::preface::Hello;

const BIG: usize = 1 << 20;

struct AnyToken;

impl wayline_url::Authority for AnyToken {
    fn authorize(&self, _hello: &Hello) -> Result<(), String> {
        Ok(())
    }
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("runtime")
}

/// The app: `/small` answers 13 bytes, `/big` 1 MiB.
fn start_app() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime(2).block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let big = Bytes::from(vec![b'x'; BIG]);
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let _ = s.set_nodelay(true);
                let big = big.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let body = if req.uri().path() == "/big" {
                            big.clone()
                        } else {
                            Bytes::from_static(b"hello, world\n")
                        };
                        async move { Ok::<_, hyper::Error>(hyper::Response::new(Full::new(body))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    rx.recv().unwrap()
}

/// The URL service with one released deployment, and its tunnel to the app.
fn start_url_service(app: SocketAddr, dir: &std::path::Path) -> SocketAddr {
    let socket = dir.join("url.sock");
    let (tx, rx) = std::sync::mpsc::channel();
    let sock = socket.clone();
    std::thread::spawn(move || {
        runtime(2).block_on(async move {
            let route = UrlRoute {
                host: "web".into(),
                sequence: 1,
                deployment_id: "d1".into(),
                address: String::new(),
                weight: 100,
                ..UrlRoute::default()
            };
            let (keep, routes) = watch::channel(Arc::new(vec![route]));
            let mut opts = wayline_url::Options::new("localhost");
            opts.tunnel_socket = Some(sock);
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let svc = wayline_url::UrlService::start(opts, l, Arc::new(AnyToken), routes).unwrap();
            tx.send(svc.ingress_addr()).unwrap();
            std::future::pending::<()>().await;
            drop((svc, keep));
        });
    });
    let ingress = rx.recv().unwrap();
    std::thread::spawn(move || {
        runtime(1).block_on(async move {
            let hello = Hello {
                deployment_id: "d1".into(),
                instance_id: "i1".into(),
                token: "t".into(),
            };
            let addr = wayline_url::client::TunnelAddr::Unix(socket);
            let r = wayline_url::client::run(&addr, &hello, app.port(), || {}).await;
            eprintln!("tunnel ended: {r:?}");
        });
    });
    ingress
}

fn start_nginx(
    app: SocketAddr,
    dir: &std::path::Path,
) -> Option<(SocketAddr, std::process::Child)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let d = dir.display();
    let conf = format!(
        "worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\ndaemon off;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream app {{ server {app}; keepalive 64; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n\
               proxy_set_header X-Forwarded-For $remote_addr;\n    }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).ok()?;
    let child = Command::new("nginx")
        .args(["-p", &d.to_string(), "-c"])
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Some((addr, child));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

/// Requests per second `wrk` measured (`-t2 -c64`, `secs` seconds).
fn wrk(addr: SocketAddr, path: &str, secs: u32) -> f64 {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            &format!("-d{secs}s"),
            "-H",
            "Host: web.localhost",
        ])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk saw errors on {addr}{path}:\n{text}");
    }
    rps
}

/// Runs the comparison and prints one line per response size.
pub(crate) fn bench(secs: u32) {
    let dir = tempfile_dir();
    let app = start_app();
    let url = start_url_service(app, &dir);
    let nginx = start_nginx(app, &dir);
    // The tunnel opens in the background; wait until the release answers.
    for _ in 0..200 {
        if wrk_probe(url) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    for (name, path) in [("small (13 B)", "/small"), ("1 MiB", "/big")] {
        let _ = wrk(app, path, 1); // warm up
        let direct = wrk(app, path, secs);
        let via_nginx = nginx.as_ref().map_or(0.0, |(a, _)| wrk(*a, path, secs));
        let via_url = wrk(url, path, secs);
        println!(
            "url-proxy {name}: direct {direct:.0} req/s, nginx {via_nginx:.0} ({:.2}), wayline {via_url:.0} ({:.2})",
            via_nginx / direct,
            via_url / direct
        );
    }
    if let Some((_, mut child)) = nginx {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn wrk_probe(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /small HTTP/1.0\r\nHost: web.localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wayline-bench-url-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
