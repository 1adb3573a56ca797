//! The plugin side: `wayline_plugin::serve(PluginBuilder::new("hello").platform(MyPlatform))`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use wayline_proto::plugin::v1 as pp;
use wayline_proto::plugin::v1::plugin_server::{Plugin, PluginServer};

use super::{HANDSHAKE_MAGIC, PROTOCOL_VERSION, SOCKET_DIR_ENV, to_proto_result};
use crate::component::{Builder, ComponentKind, ConfigSourcer, Function, Platform, ReleaseManager};
use crate::mapper::Mapper;
use crate::registry::{CallArgs, ComponentSpec, PluginSpec};
use crate::{Ctx, Registry, TerminalUi, Ui};

/// Collects an external plugin's components and mappers for [`serve`].
#[derive(Debug, Clone)]
pub struct PluginBuilder {
    spec: PluginSpec,
}

impl PluginBuilder {
    /// A plugin named `name` (the `<name>` in `wayline-plugin-<name>` and `use "<name>"`).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            spec: PluginSpec::new(name),
        }
    }

    /// Adds a builder.
    pub fn builder<C: Builder>(mut self, c: C) -> Self {
        let s = ComponentSpec::builder(&self.spec.name, c);
        self.spec.add_component(s);
        self
    }

    /// Adds a registry.
    pub fn registry<C: Registry>(mut self, c: C) -> Self {
        let s = ComponentSpec::registry(&self.spec.name, c);
        self.spec.add_component(s);
        self
    }

    /// Adds a platform.
    pub fn platform<C: Platform>(mut self, c: C) -> Self {
        let s = ComponentSpec::platform(&self.spec.name, c);
        self.spec.add_component(s);
        self
    }

    /// Adds a release manager.
    pub fn release_manager<C: ReleaseManager>(mut self, c: C) -> Self {
        let s = ComponentSpec::release_manager(&self.spec.name, c);
        self.spec.add_component(s);
        self
    }

    /// Adds a config sourcer.
    pub fn config_sourcer<C: ConfigSourcer>(mut self, c: C) -> Self {
        let s = ComponentSpec::config_sourcer(&self.spec.name, c);
        self.spec.add_component(s);
        self
    }

    /// Adds a mapper.
    pub fn mapper(mut self, m: Mapper) -> Self {
        self.spec.mappers.push(m);
        self
    }

    /// The collected plugin (also usable as a built-in via `BuiltinRegistry::add_plugin`).
    pub fn into_spec(self) -> PluginSpec {
        self.spec
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Socket or stdout IO failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("plugin server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the plugin until the host goes away; call it from `main`. Returns the exit code.
pub fn serve(plugin: PluginBuilder) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve_async(plugin)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// [`serve`] inside an existing tokio runtime.
pub async fn serve_async(plugin: PluginBuilder) -> Result<(), ServeError> {
    let dir = std::env::var_os(SOCKET_DIR_ENV).map_or_else(std::env::temp_dir, PathBuf::from);
    let socket = dir.join(format!("{}-{}.sock", plugin.spec.name, std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| ServeError::Io {
        context: format!("cannot listen on `{}`", socket.display()),
        source: e,
    })?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{HANDSHAKE_MAGIC}|{PROTOCOL_VERSION}|unix|{}",
            socket.display()
        )
        .and_then(|()| out.flush())
        .map_err(|e| ServeError::Io {
            context: "cannot write the handshake".into(),
            source: e,
        })?;
    }
    // The host keeps our stdin open; EOF means it is gone, so we stop.
    let host_gone = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let svc = Service {
        spec: Arc::new(plugin.spec),
    };
    let r = tonic::transport::Server::builder()
        .add_service(PluginServer::new(svc))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), host_gone)
        .await;
    let _ = std::fs::remove_file(&socket);
    Ok(r?)
}

struct Service {
    spec: Arc<PluginSpec>,
}

impl Service {
    fn component(&self, t: i32) -> Result<&Arc<ComponentSpec>, Status> {
        let kind = wayline_proto::v1::component::Type::try_from(t)
            .ok()
            .and_then(ComponentKind::from_proto)
            .ok_or_else(|| Status::invalid_argument(format!("unknown component type {t}")))?;
        self.spec
            .component(kind)
            .ok_or_else(|| Status::not_found(format!("plugin `{}` has no {kind}", self.spec.name)))
    }
}

/// Sends terminal events into the call's response stream.
struct StreamUi(mpsc::UnboundedSender<pp::CallResponse>);

impl TerminalUi for StreamUi {
    fn emit(&self, event: wayline_proto::v1::TerminalEvent) {
        let _ = self.0.send(pp::CallResponse {
            event: Some(pp::call_response::Event::Terminal(event)),
        });
    }
}

#[tonic::async_trait]
impl Plugin for Service {
    async fn info(&self, _: Request<()>) -> Result<Response<pp::PluginInfo>, Status> {
        Ok(Response::new(pp::PluginInfo {
            name: self.spec.name.clone(),
            protocol_version: PROTOCOL_VERSION,
            components: self
                .spec
                .components
                .values()
                .map(|c| c.info().to_proto())
                .collect(),
            mappers: self
                .spec
                .mappers
                .iter()
                .map(|m| pp::MapperInfo {
                    name: m.name.clone(),
                    input: m.input.clone(),
                    output: m.output.clone(),
                })
                .collect(),
        }))
    }

    type CallStream = ReceiverStream<Result<pp::CallResponse, Status>>;

    async fn call(
        &self,
        req: Request<pp::CallRequest>,
    ) -> Result<Response<Self::CallStream>, Status> {
        let req = req.into_inner();
        let spec = self.component(req.component)?.clone();
        let function = Function::parse(&req.function).ok_or_else(|| {
            Status::invalid_argument(format!("unknown function `{}`", req.function))
        })?;
        let json: serde_json::Value = if req.config_json.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&req.config_json)
                .map_err(|e| Status::invalid_argument(format!("config is not JSON: {e}")))?
        };
        let cfg = spec
            .decode(&json)
            .map_err(|e| Status::failed_precondition(format!("invalid config: {e}")))?;
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let mut ctx = Ctx::new(
            req.core.unwrap_or_default().into(),
            Ui::new(Arc::new(StreamUi(ev_tx.clone()))),
            cancel.clone(),
        );
        ctx.input_template_data =
            serde_json::from_str(&req.input_template_data_json).unwrap_or_default();
        let args = CallArgs {
            inputs: req.inputs,
            resources: req.resources,
        };
        let run = tokio::spawn({
            let ev_tx = ev_tx.clone();
            let call_id = req.call_id;
            async move {
                let r = spec.call(cfg, function, ctx, args).await;
                if call_id != 0 {
                    // Everything the call wrote to stderr is in the pipe before this line, and
                    // this line is in the pipe before the result is sent.
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(err, "{}{call_id}", super::CALL_DONE_MARKER);
                    let _ = err.flush();
                }
                let event = match r {
                    Ok(r) => pp::call_response::Event::Result(to_proto_result(r)),
                    Err(e) => pp::call_response::Event::Error(e.to_string()),
                };
                let _ = ev_tx.send(pp::CallResponse { event: Some(event) });
            }
        });
        drop(ev_tx);
        // Forward events in order; when the host drops the stream, cancel the call.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = ev_rx.recv() => match ev {
                        Some(ev) => if tx.send(Ok(ev)).await.is_err() { cancel.cancel(); break; },
                        None => break,
                    },
                    () = tx.closed() => { cancel.cancel(); break; }
                }
            }
            let _ = run.await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn map(&self, req: Request<pp::MapRequest>) -> Result<Response<pp::MapResponse>, Status> {
        let req = req.into_inner();
        let m = self
            .spec
            .mappers
            .iter()
            .find(|m| m.name == req.mapper)
            .ok_or_else(|| Status::not_found(format!("no mapper `{}`", req.mapper)))?;
        let input = req.input.unwrap_or_default();
        let out = m
            .apply(input)
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(pp::MapResponse { output: Some(out) }))
    }

    async fn configure(
        &self,
        req: Request<pp::ConfigureRequest>,
    ) -> Result<Response<pp::ConfigureResponse>, Status> {
        let req = req.into_inner();
        let spec = self.component(req.component)?;
        let errors = match serde_json::from_str::<serde_json::Value>(&req.config_json) {
            Err(e) => vec![pp::ConfigFieldError {
                path: String::new(),
                message: format!("config is not JSON: {e}"),
            }],
            Ok(json) => match spec.decode(&json) {
                Ok(_) => Vec::new(),
                Err(errs) => errs
                    .0
                    .into_iter()
                    .map(|e| pp::ConfigFieldError {
                        path: e.path,
                        message: e.message,
                    })
                    .collect(),
            },
        };
        Ok(Response::new(pp::ConfigureResponse { errors }))
    }
}
