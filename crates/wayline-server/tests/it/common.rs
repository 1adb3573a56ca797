//! A server started in-process on port 0 with a temp data dir, and gRPC helpers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Status, Streaming};
use wayline_proto::v1 as pb;
use wayline_proto::v1::wayline_client::WaylineClient;
use wayline_server::{RunningServer, ServerOptions};

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub type Client = WaylineClient<InterceptedService<Channel, Auth>>;

/// Bootstraps the server on `sock`: its first login token and a client holding it.
pub async fn bootstrap(sock: &Path) -> (String, Client) {
    let token = with_token(unix_channel(sock).await, None)
        .bootstrap_token(())
        .await
        .expect("bootstrap")
        .into_inner()
        .token;
    let client = with_token(unix_channel(sock).await, Some(&token));
    (token, client)
}

pub fn with_token(channel: Channel, token: Option<&str>) -> Client {
    let auth = Auth(token.map(|t| format!("Bearer {t}").parse().expect("token is ascii")));
    WaylineClient::with_interceptor(channel, auth)
}

pub async fn unix_channel(path: &Path) -> Channel {
    let path = path.to_owned();
    Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
            }
        }))
        .await
        .expect("connect to the unix socket")
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub opts: ServerOptions,
    pub server: Option<RunningServer>,
    pub token: String,
}

pub fn options(dir: &Path) -> ServerOptions {
    let mut o = ServerOptions::new(dir);
    o.listen_grpc = "127.0.0.1:0".parse().unwrap();
    o.listen_http = "127.0.0.1:0".parse().unwrap();
    o.unix_socket = Some(dir.join("wayline.sock"));
    o
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server and bootstraps it.
    pub async fn start_with(tweak: impl FnOnce(&mut ServerOptions)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        tweak(&mut opts);
        let server = wayline_server::start(opts.clone())
            .await
            .expect("server starts");
        let mut h = Self {
            dir,
            opts,
            server: Some(server),
            token: String::new(),
        };
        h.token = h
            .anon()
            .await
            .bootstrap_token(())
            .await
            .expect("bootstrap")
            .into_inner()
            .token;
        h
    }

    pub fn socket(&self) -> PathBuf {
        self.opts.unix_socket.clone().unwrap()
    }

    pub async fn anon(&self) -> Client {
        with_token(unix_channel(&self.socket()).await, None)
    }

    pub async fn client(&self) -> Client {
        with_token(unix_channel(&self.socket()).await, Some(&self.token))
    }

    pub async fn client_with(&self, token: &str) -> Client {
        with_token(unix_channel(&self.socket()).await, Some(token))
    }

    /// Stops the server (gracefully) and starts a new one on the same database.
    pub async fn restart(&mut self) {
        self.server.take().unwrap().shutdown().await;
        self.server = Some(
            wayline_server::start(self.opts.clone())
                .await
                .expect("server restarts"),
        );
    }
}

pub fn app(project: &str, app: &str) -> Option<pb::r#ref::Application> {
    Some(pb::r#ref::Application {
        project: project.into(),
        application: app.into(),
    })
}

pub fn noop_job(target: Option<pb::target_runner::Target>) -> pb::Job {
    pb::Job {
        application: app("p", "web"),
        operation: Some(pb::job::Operation::Noop(pb::NoopOp::default())),
        target_runner: target.map(|t| pb::TargetRunner { target: Some(t) }),
        ..Default::default()
    }
}

pub fn op_job(op: pb::job::Operation, target: &str) -> pb::Job {
    pb::Job {
        application: app("p", "web"),
        operation: Some(op),
        target_runner: Some(pb::TargetRunner {
            target: Some(pb::target_runner::Target::Id(target.into())),
        }),
        ..Default::default()
    }
}

pub fn deploy() -> pb::job::Operation {
    pb::job::Operation::Deploy(pb::DeployOp::default())
}

pub async fn queue(c: &mut Client, job: pb::Job) -> String {
    c.queue_job(pb::QueueJobRequest {
        job: Some(job),
        expires_in: String::new(),
    })
    .await
    .expect("queue job")
    .into_inner()
    .job_id
}

pub async fn get_job(c: &mut Client, id: &str) -> pb::Job {
    c.get_job(pb::GetJobRequest { job_id: id.into() })
        .await
        .expect("get job")
        .into_inner()
}

/// Polls GetJob until the job is in `state` (tests only: the server itself never polls).
pub async fn wait_state(c: &mut Client, id: &str, state: pb::job::State) -> pb::Job {
    for _ in 0..500 {
        let j = get_job(c, id).await;
        if j.state == state as i32 {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "job {id} never reached {state:?}: {:?}",
        get_job(c, id).await
    );
}

/// A registered runner; it stays online while this lives.
pub struct TestRunner {
    pub id: String,
    pub config: Streaming<pb::RunnerConfigResponse>,
    _tx: mpsc::Sender<pb::RunnerConfigRequest>,
}

pub async fn register(
    c: &mut Client,
    id: &str,
    labels: &[(&str, &str)],
    by_id_only: bool,
) -> TestRunner {
    let (tx, rx) = mpsc::channel(4);
    let runner = pb::Runner {
        id: id.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
        by_id_only,
        ..Default::default()
    };
    tx.send(pb::RunnerConfigRequest {
        event: Some(pb::runner_config_request::Event::Open(
            pb::runner_config_request::Open {
                runner: Some(runner),
            },
        )),
    })
    .await
    .unwrap();
    let config = c
        .runner_config(ReceiverStream::new(rx))
        .await
        .expect("runner config")
        .into_inner();
    TestRunner {
        id: id.into(),
        config,
        _tx: tx,
    }
}

/// Registers and waits for the first config message (so the runner is online and adopted).
pub async fn online(
    c: &mut Client,
    id: &str,
    labels: &[(&str, &str)],
    by_id_only: bool,
) -> TestRunner {
    let mut r = register(c, id, labels, by_id_only).await;
    r.config
        .message()
        .await
        .expect("config")
        .expect("first config message");
    r
}

/// One RunnerJobStream.
pub struct JobConn {
    pub tx: mpsc::Sender<pb::RunnerJobStreamRequest>,
    pub rx: Streaming<pb::RunnerJobStreamResponse>,
}

pub fn ev(e: pb::runner_job_stream_request::Event) -> pb::RunnerJobStreamRequest {
    pb::RunnerJobStreamRequest { event: Some(e) }
}

pub async fn job_conn(c: &mut Client, runner_id: &str, reattach: &str) -> JobConn {
    let (tx, rx) = mpsc::channel(16);
    tx.send(ev(pb::runner_job_stream_request::Event::Request(
        pb::runner_job_stream_request::Request {
            runner_id: runner_id.into(),
            reattach_job_id: reattach.into(),
        },
    )))
    .await
    .unwrap();
    let rx = c
        .runner_job_stream(ReceiverStream::new(rx))
        .await
        .expect("job stream")
        .into_inner();
    JobConn { tx, rx }
}

impl JobConn {
    pub async fn assignment(&mut self) -> pb::Job {
        match self
            .rx
            .message()
            .await
            .expect("stream ok")
            .expect("a message")
            .event
        {
            Some(pb::runner_job_stream_response::Event::Assignment(a)) => a.job.unwrap(),
            other => panic!("expected an assignment, got {other:?}"),
        }
    }

    pub async fn send(&self, e: pb::runner_job_stream_request::Event) {
        self.tx.send(ev(e)).await.unwrap();
    }

    pub async fn ack(&self) {
        self.send(pb::runner_job_stream_request::Event::Ack(
            pb::runner_job_stream_request::Ack {},
        ))
        .await;
    }

    pub async fn complete(&self) {
        self.send(pb::runner_job_stream_request::Event::Complete(
            pb::runner_job_stream_request::Complete {
                result: Some(pb::JobResult::default()),
            },
        ))
        .await;
    }

    pub async fn fail(&self, message: &str) {
        self.send(pb::runner_job_stream_request::Event::Error(
            pb::runner_job_stream_request::Error {
                error: Some(pb::JobError {
                    code: 2,
                    message: message.into(),
                }),
            },
        ))
        .await;
    }

    pub async fn line(&self, msg: &str) {
        self.send(pb::runner_job_stream_request::Event::Terminal(
            pb::runner_job_stream_request::TerminalBatch {
                events: vec![pb::TerminalEvent {
                    timestamp: None,
                    event: Some(pb::terminal_event::Event::Line(pb::terminal_event::Line {
                        msg: msg.into(),
                        style: String::new(),
                    })),
                }],
            },
        ))
        .await;
    }
}
