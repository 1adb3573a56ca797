//! A test harness: a tonic service that serves the entrypoint RPCs (and `ListInstances`,
//! `GetLogStream`, `StartExecStream`) straight from an [`EntrypointHub`], without the rest of the
//! server. Tests run the real entrypoint and real gRPC clients against it over a unix socket.
//!
//! Auth is reduced to its effect: the bearer token *is* the deployment id the caller may act for.

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use tonic::body::Body;
use tonic::server::{Grpc, NamedService};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;
use wayline_proto::v1::{
    ConfigSource, ConfigVar, EntrypointConfigRequest, EntrypointExecRequest, EntrypointLogBatch,
    ExecStreamRequest, GetLogStreamRequest, ListInstancesRequest, ListInstancesResponse,
    exec_stream_request,
};

use crate::hub::{AppRef, ConfigResolver, EntrypointHub};

/// Config that tests set directly.
#[derive(Debug, Default)]
pub struct StaticResolver {
    /// The variables every deployment gets.
    pub vars: Mutex<Vec<ConfigVar>>,
    /// The config sources every deployment gets.
    pub sources: Mutex<Vec<ConfigSource>>,
    /// The file change signal.
    pub signal: Mutex<String>,
}

#[tonic::async_trait]
impl ConfigResolver for StaticResolver {
    async fn resolve(&self, _: &str) -> Result<Vec<ConfigVar>, Status> {
        Ok(self.vars.lock().unwrap().clone())
    }
    async fn sources(&self, _: &str) -> Result<Vec<ConfigSource>, Status> {
        Ok(self.sources.lock().unwrap().clone())
    }
    async fn file_change_signal(&self, _: &str) -> Result<String, Status> {
        Ok(self.signal.lock().unwrap().clone())
    }
}

/// The service; serve it with [`serve`].
#[derive(Clone)]
pub struct Harness {
    /// The hub behind the RPCs.
    pub hub: EntrypointHub,
    /// The config it hands out.
    pub resolver: Arc<StaticResolver>,
}

impl NamedService for Harness {
    const NAME: &'static str = "wayline.v1.Wayline";
}

fn token<T>(req: &Request<T>) -> Result<String, Status> {
    req.metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .ok_or_else(|| Status::unauthenticated("no token"))
}

type HttpFuture = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl tower::Service<http::Request<Body>> for Harness {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = HttpFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> HttpFuture {
        let h = self.clone();
        let path = req.uri().path().to_owned();
        Box::pin(async move {
            let res = match path.rsplit('/').next().unwrap_or("") {
                "EntrypointConfig" => {
                    let svc = tower::service_fn(move |r: Request<EntrypointConfigRequest>| {
                        let h = h.clone();
                        async move {
                            let dep = token(&r)?;
                            let app = AppRef {
                                project: "p".into(),
                                app: "a".into(),
                                workspace: "default".into(),
                            };
                            let s = h
                                .hub
                                .entrypoint_config(dep, r.into_inner(), app, h.resolver.clone())
                                .await?;
                            Ok::<_, Status>(Response::new(s))
                        }
                    });
                    Grpc::new(ProstCodec::default())
                        .server_streaming(svc, req)
                        .await
                }
                "EntrypointLogStream" => {
                    let svc =
                        tower::service_fn(move |r: Request<Streaming<EntrypointLogBatch>>| {
                            let h = h.clone();
                            async move {
                                let dep = token(&r)?;
                                h.hub.entrypoint_logs(dep, r.into_inner()).await?;
                                Ok::<_, Status>(Response::new(()))
                            }
                        });
                    Grpc::new(ProstCodec::default())
                        .client_streaming(svc, req)
                        .await
                }
                "EntrypointExecStream" => {
                    let svc =
                        tower::service_fn(move |r: Request<Streaming<EntrypointExecRequest>>| {
                            let h = h.clone();
                            async move {
                                let dep = token(&r)?;
                                Ok::<_, Status>(Response::new(
                                    h.hub.entrypoint_exec(dep, r.into_inner()).await?,
                                ))
                            }
                        });
                    Grpc::new(ProstCodec::default()).streaming(svc, req).await
                }
                "ListInstances" => {
                    let svc = tower::service_fn(move |r: Request<ListInstancesRequest>| {
                        let h = h.clone();
                        async move {
                            let ids = one(r.into_inner().deployment_id);
                            Ok::<_, Status>(Response::new(ListInstancesResponse {
                                instances: h.hub.list_instances(&ids),
                            }))
                        }
                    });
                    Grpc::new(ProstCodec::default()).unary(svc, req).await
                }
                "GetLogStream" => {
                    let svc = tower::service_fn(move |r: Request<GetLogStreamRequest>| {
                        let h = h.clone();
                        async move {
                            let r = r.into_inner();
                            Ok::<_, Status>(Response::new(
                                h.hub.log_stream(one(r.deployment_id.clone()), r),
                            ))
                        }
                    });
                    Grpc::new(ProstCodec::default())
                        .server_streaming(svc, req)
                        .await
                }
                "StartExecStream" => {
                    let svc = tower::service_fn(move |r: Request<Streaming<ExecStreamRequest>>| {
                        let h = h.clone();
                        async move {
                            Ok::<_, Status>(Response::new(
                                start_exec(&h.hub, r.into_inner()).await?,
                            ))
                        }
                    });
                    Grpc::new(ProstCodec::default()).streaming(svc, req).await
                }
                _ => Status::unimplemented(format!("{path} is not served by the harness"))
                    .into_http(),
            };
            Ok(res)
        })
    }
}

fn one(id: String) -> Vec<String> {
    if id.is_empty() { Vec::new() } else { vec![id] }
}

async fn start_exec(
    hub: &EntrypointHub,
    mut rest: Streaming<ExecStreamRequest>,
) -> Result<BoxStream<'static, Result<wayline_proto::v1::ExecStreamResponse, Status>>, Status> {
    let Some(ExecStreamRequest {
        event: Some(exec_stream_request::Event::Start(first)),
    }) = rest.message().await?
    else {
        return Err(Status::invalid_argument("the first message must be Start"));
    };
    hub.start_exec(one(first.deployment_id.clone()), first, rest)
        .await
}

/// Serves `harness` on a unix socket at `path` until the returned task is aborted.
pub fn serve(harness: Harness, path: &Path) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::UnixListener::bind(path).expect("bind harness socket");
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(harness)
            .serve_with_incoming(incoming)
            .await;
    })
}

/// Serves `harness` over TLS on a loopback TCP port; returns the port.
pub fn serve_tls(
    harness: Harness,
    cert_pem: &str,
    key_pem: &str,
) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let identity = tonic::transport::Identity::from_pem(cert_pem, key_pem);
    let tls = tonic::transport::ServerTlsConfig::new().identity(identity);
    let server = tonic::transport::Server::builder().tls_config(tls).unwrap();
    let task = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = server
            .clone()
            .add_service(harness)
            .serve_with_incoming(incoming)
            .await;
    });
    (port, task)
}
