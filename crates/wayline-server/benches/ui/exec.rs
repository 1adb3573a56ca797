//! The exec page's keystroke echo: the bench is both ends. As the instance's entrypoint it
//! registers (`EntrypointConfig`), takes the exec session the server hands it and echoes stdin
//! back as stdout (what a terminal in echo mode does); as the browser it opens the page's
//! WebSocket with the session cookie and times each keystroke frame until its echo arrives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wayline_proto::v1 as pb;
use wayline_proto::v1::entrypoint_exec_request::Event as Up;
use wayline_proto::v1::entrypoint_exec_response::Event as Down;

use crate::common::Client;

const INSTANCE: &str = "bench-exec-instance";
const KEYS: usize = 200;

/// Registers as an instance and echoes the stdin of each exec session the server opens.
async fn instance(mut ec: Client, deployment: String) {
    let mut config = ec
        .entrypoint_config(pb::EntrypointConfigRequest {
            deployment_id: deployment,
            instance_id: INSTANCE.into(),
            exec_disabled: false,
        })
        .await
        .expect("EntrypointConfig")
        .into_inner();
    while let Some(Ok(resp)) = config.next().await {
        for e in resp.config.map(|c| c.exec).unwrap_or_default() {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            tx.send(pb::EntrypointExecRequest {
                event: Some(Up::Open(pb::entrypoint_exec_request::Open {
                    instance_id: INSTANCE.into(),
                    index: e.index,
                })),
            })
            .await
            .unwrap();
            let mut session = ec
                .entrypoint_exec_stream(ReceiverStream::new(rx))
                .await
                .expect("EntrypointExecStream")
                .into_inner();
            tokio::spawn(async move {
                while let Some(Ok(m)) = session.next().await {
                    match m.event {
                        Some(Down::Stdin(b)) => {
                            let up = pb::EntrypointExecRequest {
                                event: Some(Up::Stdout(b)),
                            };
                            if tx.send(up).await.is_err() {
                                return;
                            }
                        }
                        Some(Down::StdinEof(_)) => {
                            let _ = tx
                                .send(pb::EntrypointExecRequest {
                                    event: Some(Up::Exit(0)),
                                })
                                .await;
                            return;
                        }
                        _ => {}
                    }
                }
            });
        }
    }
}

/// Times keystrokes typed into the exec page's WebSocket until their echo comes back.
pub(crate) async fn echo_latency(ec: Client, addr: SocketAddr, cookie: &str, dep: &pb::Operation) {
    let entrypoint = tokio::spawn(instance(ec, dep.id.clone()));
    let url = format!(
        "ws://{addr}/projects/p/apps/web/exec/ws?instance={INSTANCE}&command=sh&rows=24&cols=80"
    );
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("cookie", cookie.parse().unwrap());
    h.insert("origin", format!("http://{addr}").parse().unwrap());
    // The instance registers asynchronously: retry the session until it opens.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ws = loop {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(req.clone(), tcp)
            .await
            .expect("WebSocket handshake");
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"instance\"") => break ws,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "the exec session never opened: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let mut times = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let key = char::from(b'a' + (i % 26) as u8);
        let started = Instant::now();
        ws.send(Message::text(format!("0{key}"))).await.unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("no echo within 5 s")
                .expect("the socket closed")
                .unwrap();
            if let Message::Binary(b) = m {
                assert_eq!(&b[..], key.to_string().as_bytes());
                break;
            }
        }
        times.push(started.elapsed());
    }
    crate::report("exec keystroke -> echo (WebSocket)", times);
    let _ = ws.close(None).await;
    entrypoint.abort();
}
