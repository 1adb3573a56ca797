//! `waypoint-plugin-wltest`: a Waypoint plugin written in Rust from the public protocol sources
//! (go-plugin's handshake, broker, stdio and controller; the SDK's Builder, Platform and Mapper
//! services with FuncSpec/Args, ConfigStruct/Configure, Documentation, terminal UI through the
//! broker), so the host is tested against the plugin side without a Go toolchain.
//!
//! Builder `wltest` → `wltest.Artifact`; platform `wltest` (`wltest.Artifact` → `wltest.Deployment`,
//! a file in the source dir; destroy, status); mapper `hashicorp.waypoint.builtin.docker.Image` →
//! `wltest.Artifact`. Misbehaviour on purpose through `WLTEST_HANDSHAKE` (`slow`, `v2`, `die`)
//! and config (`crash = true` exits during deploy, `need = "<type>"` asks for an extra argument).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::{Request, Response, Status, Streaming};
use wayline_waypoint::handshake;
use wayline_waypoint::pb::opaqueany::Any;
use wayline_waypoint::pb::plugin::{self as gp, ConnInfo};
use wayline_waypoint::pb::sdk::{self, args, func_spec, terminal_ui as wt};
use wayline_waypoint::pb::{docker, protostructure as ps};

use gp::grpc_broker_server::{GrpcBroker, GrpcBrokerServer};
use gp::grpc_controller_server::{GrpcController, GrpcControllerServer};
use gp::grpc_stdio_server::{GrpcStdio, GrpcStdioServer};
use sdk::builder_server::{Builder, BuilderServer};
use sdk::mapper_server::{Mapper, MapperServer};
use sdk::platform_server::PlatformServer;
use sdk::terminal_ui_service_client::TerminalUiServiceClient;

const ARTIFACT: &str = "wltest.Artifact";
const DEPLOYMENT: &str = "wltest.Deployment";

/// What the builder makes.
#[derive(Clone, PartialEq, prost::Message)]
struct Artifact {
    #[prost(string, tag = "1")]
    message: String,
    #[prost(string, tag = "2")]
    app: String,
    #[prost(string, tag = "3")]
    image: String,
}

/// What the platform makes: a file.
#[derive(Clone, PartialEq, prost::Message)]
struct Deployment {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    path: String,
}

fn pack(type_name: &str, m: &impl prost::Message) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: m.encode_to_vec(),
    }
}

/// hclog's JSON line format, as a Go plugin writes its logs.
fn log(level: &str, msg: &str) {
    let line = serde_json::json!({
        "@level": level, "@message": msg, "@module": "wltest",
        "@timestamp": "2026-01-01T00:00:00.000000Z",
    });
    eprintln!("{line}");
}

/// The config as the host sends it: JSON keyed by the Go field names.
#[derive(Default, Clone)]
struct Config {
    json: serde_json::Value,
}

impl Config {
    fn str(&self, go_name: &str) -> String {
        self.json[go_name].as_str().unwrap_or_default().to_owned()
    }
}

/// The broker, plugin side: the host's announcements by id.
#[derive(Default)]
struct BrokerState {
    conns: Mutex<HashMap<u32, ConnInfo>>,
    notify: tokio::sync::Notify,
}

impl BrokerState {
    /// go-plugin's `Dial`: waits up to 5 s for the host's ConnInfo, then connects.
    async fn dial(&self, id: u32) -> Result<tonic::transport::Channel, Status> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let info = loop {
            let n = self.notify.notified();
            if let Some(i) = self.conns.lock().unwrap().get(&id) {
                break i.clone();
            }
            if tokio::time::timeout_at(deadline, n).await.is_err() {
                return Err(Status::unavailable(format!(
                    "timeout waiting for connection info for id {id}"
                )));
            }
        };
        wayline_waypoint::process::connect_unix(std::path::Path::new(&info.address))
            .await
            .map_err(|e| Status::unavailable(e.to_string()))
    }
}

struct Broker(Arc<BrokerState>);

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = ReceiverStream<Result<ConnInfo, Status>>;
    async fn start_stream(
        &self,
        req: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut s = req.into_inner();
        let st = self.0.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let _keep = tx;
            while let Ok(Some(c)) = s.message().await {
                st.conns.lock().unwrap().insert(c.service_id, c);
                st.notify.notify_waiters();
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct Controller;

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        log("info", "shutdown requested");
        // go-plugin's server exits without answering.
        std::process::exit(0)
    }
}

struct Stdio;

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = ReceiverStream<Result<gp::StdioData, Status>>;
    async fn stream_stdio(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let _ = tx
            .send(Ok(gp::StdioData {
                channel: gp::stdio_data::Channel::Stderr as i32,
                data: b"wltest: stdio attached\n".to_vec(),
            }))
            .await;
        tokio::spawn(async move { tx.closed().await });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The host's terminal for one call, through the broker.
struct Term {
    tx: tokio::sync::mpsc::Sender<wt::Event>,
    /// Ends when the host has read the event stream to its end (it then closes its side).
    done: tokio::task::JoinHandle<()>,
}

impl Term {
    async fn open(broker: &BrokerState, id: u32) -> Result<Self, Status> {
        let ch = broker.dial(id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut client = TerminalUiServiceClient::new(ch);
        let done = tokio::spawn(async move {
            if let Ok(r) = client.events(ReceiverStream::new(rx)).await {
                let mut answers = r.into_inner();
                while let Ok(Some(_)) = answers.message().await {}
            }
        });
        Ok(Self { tx, done })
    }

    async fn send(&self, ev: wt::event::Event) {
        let _ = self.tx.send(wt::Event { event: Some(ev) }).await;
    }

    async fn line(&self, msg: &str) {
        self.send(wt::event::Event::Line(wt::event::Line {
            msg: msg.into(),
            style: String::new(),
        }))
        .await;
    }

    async fn status(&self, status: &str, msg: &str) {
        self.send(wt::event::Event::Status(wt::event::Status {
            status: status.into(),
            msg: msg.into(),
            step: !status.is_empty(),
        }))
        .await;
    }

    /// Closes the stream and waits (at most 5 s) until the host has taken every event, as the
    /// SDK's UI `Close` does.
    async fn close(self) {
        drop(self.tx);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.done).await;
    }
}

/// The call's arguments by type name.
struct CallArgs(Vec<func_spec::Value>);

impl CallArgs {
    fn get<M: prost::Message + Default>(&self, type_name: &str) -> Result<M, Status> {
        let v = self
            .0
            .iter()
            .find(|v| v.r#type == type_name)
            .ok_or_else(|| {
                Status::invalid_argument(format!("argument of type {type_name} not provided"))
            })?;
        let Some(func_spec::value::Value::ProtoAny(a)) = &v.value else {
            return Err(Status::invalid_argument(format!(
                "{type_name} is not a proto value"
            )));
        };
        M::decode(a.value.as_slice()).map_err(|e| Status::invalid_argument(e.to_string()))
    }
}

fn spec(name: &str, args: &[&str], result: &[&str]) -> sdk::FuncSpec {
    let v = |t: &&str| func_spec::Value {
        r#type: (*t).to_owned(),
        ..func_spec::Value::default()
    };
    sdk::FuncSpec {
        name: name.into(),
        args: args.iter().map(v).collect(),
        result: result.iter().map(v).collect(),
    }
}

fn field(go: &str, tag: &str, kind: u32) -> ps::r#struct::Field {
    ps::r#struct::Field {
        name: go.into(),
        pkg_path: String::new(),
        tag: tag.into(),
        r#type: Some(ps::Type {
            r#type: Some(ps::r#type::Type::Primitive(ps::Primitive { kind })),
        }),
    }
}

fn map_field(go: &str, tag: &str) -> ps::r#struct::Field {
    let string = ps::Type {
        r#type: Some(ps::r#type::Type::Primitive(ps::Primitive { kind: 24 })),
    };
    ps::r#struct::Field {
        name: go.into(),
        pkg_path: String::new(),
        tag: tag.into(),
        r#type: Some(ps::Type {
            r#type: Some(ps::r#type::Type::Container(Box::new(ps::Container {
                kind: 21,
                elem: Some(Box::new(string.clone())),
                key: Some(Box::new(string)),
                count: 0,
            }))),
        }),
    }
}

fn doc_field(
    name: &str,
    synopsis: &str,
    ty: &str,
    optional: bool,
) -> (String, sdk::config::FieldDocumentation) {
    (
        name.to_owned(),
        sdk::config::FieldDocumentation {
            name: name.into(),
            synopsis: synopsis.into(),
            r#type: ty.into(),
            optional,
            ..Default::default()
        },
    )
}

#[derive(Clone)]
struct Plugin {
    broker: Arc<BrokerState>,
    builder_cfg: Arc<Mutex<Config>>,
    platform_cfg: Arc<Mutex<Config>>,
}

impl Plugin {
    fn configure(slot: &Mutex<Config>, json: &[u8]) -> Result<Response<()>, Status> {
        let v: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| Status::invalid_argument(format!("config is not JSON: {e}")))?;
        if v["Message"] == "bad" {
            return Err(Status::invalid_argument("message must not be \"bad\""));
        }
        slot.lock().unwrap().json = v;
        Ok(Response::new(()))
    }

    async fn term(&self, a: &CallArgs) -> Result<Term, Status> {
        let t: args::TerminalUi = a.get("hashicorp.waypoint.sdk.Args.TerminalUI")?;
        Term::open(&self.broker, t.stream_id).await
    }
}

fn config_struct() -> sdk::config::StructResp {
    sdk::config::StructResp {
        r#struct: Some(ps::Struct {
            fields: vec![
                field("Message", r#"hcl:"message,attr""#, 24),
                field("Crash", r#"hcl:"crash,optional""#, 1),
                field("Retries", r#"hcl:"retries,optional""#, 2),
                field("Need", r#"hcl:"need,optional""#, 24),
                map_field("Labels", r#"hcl:"labels,optional""#),
            ],
        }),
    }
}

fn documentation(description: &str) -> sdk::config::Documentation {
    sdk::config::Documentation {
        description: description.into(),
        example: "use \"wltest\" {\n  message = \"hi\"\n}".into(),
        fields: [
            doc_field("message", "What to write.", "string", false),
            doc_field("crash", "Exit during deploy (tests).", "bool", true),
            doc_field("retries", "How often to try.", "int", true),
            doc_field(
                "need",
                "An extra argument type to ask for (tests).",
                "string",
                true,
            ),
            doc_field("labels", "Extra labels.", "map of string to string", true),
        ]
        .into_iter()
        .collect(),
        template_fields: [doc_field("path", "The file written.", "string", false)]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Builder for Plugin {
    async fn is_authenticator(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::ImplementsResp>, Status> {
        Ok(Response::new(sdk::ImplementsResp { implements: false }))
    }
    async fn auth(
        &self,
        _: Request<sdk::func_spec::Args>,
    ) -> Result<Response<sdk::auth::AuthResponse>, Status> {
        Err(Status::unimplemented("auth"))
    }
    async fn auth_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        Err(Status::unimplemented("auth"))
    }
    async fn validate_auth(
        &self,
        _: Request<sdk::func_spec::Args>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("auth"))
    }
    async fn validate_auth_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        Err(Status::unimplemented("auth"))
    }
    async fn config_struct(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::config::StructResp>, Status> {
        Ok(Response::new(config_struct()))
    }
    async fn configure(
        &self,
        r: Request<sdk::config::ConfigureRequest>,
    ) -> Result<Response<()>, Status> {
        Self::configure(&self.builder_cfg, &r.into_inner().json)
    }
    async fn documentation(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::config::Documentation>, Status> {
        Ok(Response::new(documentation(
            "Builds a test artifact from a message.",
        )))
    }
    async fn build_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        Ok(Response::new(spec(
            "build",
            &[
                "hashicorp.waypoint.sdk.Args.Source",
                "hashicorp.waypoint.sdk.Args.JobInfo",
                "hashicorp.waypoint.sdk.Args.TerminalUI",
                "hashicorp.waypoint.sdk.Args.Logger",
            ],
            &[ARTIFACT],
        )))
    }
    async fn build(
        &self,
        r: Request<sdk::func_spec::Args>,
    ) -> Result<Response<sdk::build::Resp>, Status> {
        let a = CallArgs(r.into_inner().args);
        let src: args::Source = a.get("hashicorp.waypoint.sdk.Args.Source")?;
        let job: args::JobInfo = a.get("hashicorp.waypoint.sdk.Args.JobInfo")?;
        let term = self.term(&a).await?;
        let msg = self.builder_cfg.lock().unwrap().str("Message");
        term.status("", "Building the test artifact...").await;
        term.send(wt::event::Event::Table(wt::event::Table {
            headers: vec!["APP".into(), "WORKSPACE".into()],
            rows: vec![wt::event::TableRow {
                entries: vec![
                    wt::event::TableEntry {
                        value: src.app.clone(),
                        color: String::new(),
                    },
                    wt::event::TableEntry {
                        value: job.workspace.clone(),
                        color: String::new(),
                    },
                ],
            }],
        }))
        .await;
        term.status("success", &format!("Built {msg:?} for {}", src.app))
            .await;
        term.close().await;
        log("info", "build done");
        let art = Artifact {
            message: msg.clone(),
            app: src.app,
            image: String::new(),
        };
        Ok(Response::new(sdk::build::Resp {
            result: Some(pack(ARTIFACT, &art)),
            result_json: serde_json::json!({"message": msg}).to_string(),
            labels: HashMap::new(),
            template_data: serde_json::to_vec(&serde_json::json!({"message": msg})).unwrap(),
        }))
    }
    async fn build_odr(
        &self,
        r: Request<sdk::func_spec::Args>,
    ) -> Result<Response<sdk::build::Resp>, Status> {
        Builder::build(self, r).await
    }
    async fn build_spec_odr(&self, r: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        Builder::build_spec(self, r).await
    }
}

mod platform;

#[tonic::async_trait]
impl Mapper for Plugin {
    async fn list_mappers(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::map::ListResponse>, Status> {
        Ok(Response::new(sdk::map::ListResponse {
            funcs: vec![spec(
                "docker-image-to-artifact",
                &["hashicorp.waypoint.builtin.docker.Image"],
                &[ARTIFACT],
            )],
        }))
    }
    async fn map(
        &self,
        r: Request<sdk::map::Request>,
    ) -> Result<Response<sdk::map::Response>, Status> {
        let r = r.into_inner();
        if r.result != ARTIFACT {
            return Err(Status::invalid_argument(format!(
                "no mapper to {}",
                r.result
            )));
        }
        let a = CallArgs(r.args.unwrap_or_default().args);
        let img: docker::Image = a.get("hashicorp.waypoint.builtin.docker.Image")?;
        let art = Artifact {
            message: format!("image {}:{}", img.image, img.tag),
            app: String::new(),
            image: format!("{}:{}", img.image, img.tag),
        };
        Ok(Response::new(sdk::map::Response {
            result: Some(pack(ARTIFACT, &art)),
        }))
    }
}

fn main() {
    if std::env::var(handshake::COOKIE_KEY).as_deref() != Ok(handshake::COOKIE_VALUE) {
        eprintln!(
            "This binary is a plugin. These are not meant to be executed directly.\nPlease execute the program that consumes these plugins, which will\nload any plugins automatically"
        );
        std::process::exit(1);
    }
    let versions = std::env::var(handshake::PROTOCOL_VERSIONS_ENV).unwrap_or_default();
    if !versions.split(',').any(|v| v.trim() == "1") {
        log(
            "error",
            &format!(
                "Incompatible API version with plugin. Plugin version: 1, Client versions: [{versions}]"
            ),
        );
        std::process::exit(1);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(serve());
}

async fn serve() {
    let mode = std::env::var("WLTEST_HANDSHAKE").unwrap_or_default();
    let dir = std::env::var_os("TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let path = dir.join(format!("plugin{}", std::process::id()));
    let listener = UnixListener::bind(&path).expect("bind");
    log("debug", "plugin address");
    match mode.as_str() {
        "slow" => tokio::time::sleep(Duration::from_secs(30)).await,
        "die" => {
            log("error", "cannot start: the test asked me to die");
            std::process::exit(3);
        }
        _ => {}
    }
    let line = if mode == "v2" {
        format!("1|2|unix|{}|grpc|", path.display())
    } else {
        handshake::line(&path.display().to_string())
    };
    println!("{line}");
    let p = Plugin {
        broker: Arc::default(),
        builder_cfg: Arc::default(),
        platform_cfg: Arc::default(),
    };
    tonic::transport::Server::builder()
        .add_service(GrpcBrokerServer::new(Broker(p.broker.clone())))
        .add_service(GrpcControllerServer::new(Controller))
        .add_service(GrpcStdioServer::new(Stdio))
        .add_service(BuilderServer::new(p.clone()))
        .add_service(PlatformServer::new(p.clone()))
        .add_service(MapperServer::new(p))
        .serve_with_incoming(UnixListenerStream::new(listener))
        .await
        .expect("serve");
}
