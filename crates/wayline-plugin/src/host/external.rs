//! The host side: start a plugin, handshake, and wrap it as component handles and mappers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use prost_types::Any;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint};
use wayline_proto::plugin::v1 as pp;
use wayline_proto::plugin::v1::plugin_client::PluginClient;
use wayline_proto::v1::terminal_event as te;

use super::discover;
use super::handle::{Call, ComponentHandle, HostError};
use crate::component::{ComponentKind, Function};
use crate::external::{
    CALL_DONE_MARKER, HANDSHAKE_MAGIC, PROTOCOL_VERSION, SOCKET_DIR_ENV, from_proto_result,
};
use crate::mapper::{MapFn, Mapper};
use crate::registry::{CallResult, ComponentInfo};
use crate::{ConfigError, ConfigErrors, PluginError, Style, Ui};

/// How many stderr lines a crash report shows.
const STDERR_TAIL: usize = 20;
/// How long a plugin may take to print its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The external plugins a host has started, by name.
#[derive(Default)]
pub(super) struct Externals {
    started: Mutex<BTreeMap<String, Arc<ExternalPlugin>>>,
    starting: tokio::sync::Mutex<()>,
}

impl Externals {
    pub(super) fn get(&self, name: &str) -> Option<Arc<ExternalPlugin>> {
        self.started
            .lock()
            .expect("plugins lock")
            .get(name)
            .cloned()
    }

    pub(super) fn all(&self) -> Vec<Arc<ExternalPlugin>> {
        self.started
            .lock()
            .expect("plugins lock")
            .values()
            .cloned()
            .collect()
    }

    /// Starts plugin `name` once (later calls return the running one), looking for its
    /// executable in `search_dirs` then PATH; `not_found` makes the error when there is none.
    pub(super) async fn load(
        &self,
        name: &str,
        checksum: Option<&str>,
        search_dirs: &[PathBuf],
        not_found: impl FnOnce() -> HostError,
    ) -> Result<Arc<ExternalPlugin>, HostError> {
        let _guard = self.starting.lock().await;
        if let Some(p) = self.get(name) {
            if p.exited() {
                // It crashed (the call that saw it said so); the next user gets a fresh process.
                self.started.lock().expect("plugins lock").remove(name);
            } else {
                if let Some(sum) = checksum {
                    discover::verify(name, &p.path, sum).map_err(HostError::Start)?;
                }
                return Ok(p);
            }
        }
        let Some(path) = discover::find(search_dirs, name) else {
            return Err(not_found());
        };
        if let Some(sum) = checksum {
            discover::verify(name, &path, sum).map_err(HostError::Start)?;
        }
        let p = ExternalPlugin::start(name, &path)
            .await
            .map_err(HostError::Start)?;
        self.started
            .lock()
            .expect("plugins lock")
            .insert(name.to_owned(), p.clone());
        Ok(p)
    }
}

/// The last stderr lines and where new ones go.
#[derive(Default)]
struct Stderr {
    tail: Mutex<VecDeque<String>>,
    sink: Mutex<Option<Ui>>,
    closed: tokio::sync::Notify,
    done: std::sync::atomic::AtomicBool,
    /// Calls whose end marker was read.
    calls_done: Mutex<std::collections::HashSet<u64>>,
    call_done: tokio::sync::Notify,
}

impl Stderr {
    fn line(&self, plugin: &str, line: String) {
        if let Some(id) = line.strip_prefix(CALL_DONE_MARKER) {
            if let Ok(id) = id.trim().parse() {
                self.calls_done.lock().expect("stderr lock").insert(id);
                self.call_done.notify_waiters();
            }
            return;
        }
        {
            let mut t = self.tail.lock().expect("stderr lock");
            if t.len() == STDERR_TAIL {
                t.pop_front();
            }
            t.push_back(line.clone());
        }
        match &*self.sink.lock().expect("stderr lock") {
            Some(ui) => ui.output(line, Style::Plain),
            None => tracing::info!(plugin, "{line}"),
        }
    }

    fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .expect("stderr lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Waits until the end marker of call `id` was read (every line the call printed has been
    /// forwarded), at most `max`.
    async fn wait_call(&self, id: u64, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let notified = self.call_done.notified();
            if self.calls_done.lock().expect("stderr lock").remove(&id) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    async fn wait_closed(&self, max: Duration) {
        let notified = self.closed.notified();
        if self.done.load(Ordering::Acquire) {
            return;
        }
        let _ = tokio::time::timeout(max, notified).await;
    }
}

/// A running external plugin process.
pub(crate) struct ExternalPlugin {
    name: String,
    path: PathBuf,
    pid: u32,
    child: Mutex<Child>,
    client: PluginClient<Channel>,
    info: pp::PluginInfo,
    stderr: Arc<Stderr>,
    socket_dir: PathBuf,
}

impl Drop for ExternalPlugin {
    fn drop(&mut self) {
        if let Ok(c) = self.child.get_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.socket_dir);
    }
}

/// A new 0700 directory with an unpredictable name (tempfile), removed by the plugin's Drop.
fn socket_dir() -> std::io::Result<PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix("wayline-plugin-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()?
        .keep())
}

fn tail_text(lines: &[String]) -> String {
    if lines.is_empty() {
        "(no stderr output)".to_owned()
    } else {
        lines.join("\n")
    }
}

/// Collects the plugin's stderr lines (each also reaches the UI of the call that is running)
/// until the pipe closes.
fn forward_stderr(name: &str, pipe: tokio::process::ChildStderr) -> Arc<Stderr> {
    let stderr = Arc::new(Stderr::default());
    let s = stderr.clone();
    let plugin = name.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            s.line(&plugin, l);
        }
        s.done.store(true, Ordering::Release);
        s.closed.notify_waiters();
    });
    stderr
}

/// A gRPC channel over the unix socket the plugin's handshake named.
async fn connect_unix(socket: PathBuf) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_static("http://wayline-plugin.invalid")
        .connect_with_connector(tower::service_fn(move |_| {
            let sock = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(sock).await?)) }
        }))
        .await
}

impl ExternalPlugin {
    async fn start(name: &str, path: &Path) -> Result<Arc<Self>, String> {
        let dir = socket_dir().map_err(|e| format!("cannot create a socket dir: {e}"))?;
        let mut cmd = Command::new(path);
        cmd.env(SOCKET_DIR_ENV, &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = super::spawn_executable(&mut cmd)
            .await
            .map_err(|e| format!("cannot start plugin `{name}` (`{}`): {e}", path.display()))?;
        let stderr = forward_stderr(name, child.stderr.take().expect("piped"));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        let read = tokio::time::timeout(HANDSHAKE_TIMEOUT, stdout.read_line(&mut line)).await;
        let fail = |what: String, stderr: &Stderr| {
            format!(
                "plugin `{name}` (`{}`) {what}; its stderr:\n{}",
                path.display(),
                tail_text(&stderr.tail())
            )
        };
        match read {
            Err(_) => {
                return Err(fail(
                    format!("printed no handshake within {HANDSHAKE_TIMEOUT:?}"),
                    &stderr,
                ));
            }
            Ok(Err(e)) => return Err(fail(format!("handshake read failed: {e}"), &stderr)),
            Ok(Ok(0)) => {
                let status = child
                    .wait()
                    .await
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                stderr.wait_closed(Duration::from_secs(1)).await;
                return Err(fail(
                    format!("exited before its handshake ({status})"),
                    &stderr,
                ));
            }
            Ok(Ok(_)) => {}
        }
        // Keep draining stdout so a chatty plugin never blocks on a full pipe.
        tokio::spawn(async move {
            let mut lines = stdout.lines();
            while let Ok(Some(l)) = lines.next_line().await {
                tracing::debug!(stdout = %l, "plugin stdout");
            }
        });
        let socket = parse_handshake(line.trim_end()).map_err(|e| {
            fail(
                format!("sent a bad handshake `{}`: {e}", line.trim_end()),
                &stderr,
            )
        })?;
        let channel = connect_unix(socket.clone()).await.map_err(|e| {
            fail(
                format!("cannot be reached on `{}`: {e}", socket.display()),
                &stderr,
            )
        })?;
        let mut client = PluginClient::new(channel);
        let info = client
            .info(())
            .await
            .map_err(|e| fail(format!("failed its Info call: {}", e.message()), &stderr))?
            .into_inner();
        tracing::debug!(
            plugin = name,
            components = info.components.len(),
            mappers = info.mappers.len(),
            "external plugin started"
        );
        Ok(Arc::new(Self {
            name: name.to_owned(),
            path: path.to_owned(),
            pid: child.id().unwrap_or_default(),
            child: Mutex::new(child),
            client,
            info,
            stderr,
            socket_dir: dir,
        }))
    }

    /// Whether the process has exited.
    fn exited(&self) -> bool {
        self.child
            .lock()
            .expect("child lock")
            .try_wait()
            .map_or(true, |s| s.is_some())
    }

    /// Name, executable and pid.
    pub(crate) fn describe(&self) -> (String, PathBuf, u32) {
        (self.name.clone(), self.path.clone(), self.pid)
    }

    pub(crate) fn kinds(&self) -> Vec<ComponentKind> {
        self.info
            .components
            .iter()
            .filter_map(|c| ComponentKind::from_proto(c.r#type()))
            .collect()
    }

    pub(crate) fn handle(
        self: &Arc<Self>,
        kind: ComponentKind,
    ) -> Option<Arc<dyn ComponentHandle>> {
        let c = self
            .info
            .components
            .iter()
            .find(|c| ComponentKind::from_proto(c.r#type()) == Some(kind))?;
        let info = ComponentInfo::from_proto(&self.name, c)?;
        Some(Arc::new(ExternalHandle {
            plugin: self.clone(),
            info,
            config_json: RwLock::new("{}".to_owned()),
        }))
    }

    pub(crate) fn mappers(self: &Arc<Self>) -> Vec<Mapper> {
        self.info
            .mappers
            .iter()
            .map(|m| {
                Mapper::erased(
                    m.name.clone(),
                    m.input.clone(),
                    m.output.clone(),
                    Arc::new(ExternalMap {
                        plugin: self.clone(),
                        name: m.name.clone(),
                    }),
                )
            })
            .collect()
    }

    /// Explains a failed RPC: a crash (with the last stderr lines) or the plugin's message.
    async fn failure(&self, what: &str, status: &tonic::Status) -> PluginError {
        let mut exited = None;
        for _ in 0..20 {
            exited = self
                .child
                .lock()
                .expect("child lock")
                .try_wait()
                .ok()
                .flatten();
            if exited.is_some()
                || status.code() != tonic::Code::Unavailable
                    && status.code() != tonic::Code::Unknown
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        match exited {
            Some(st) => {
                self.stderr.wait_closed(Duration::from_secs(1)).await;
                PluginError::Plugin(format!(
                    "plugin `{}` exited during {what} ({st}); its last stderr lines:\n{}",
                    self.name,
                    tail_text(&self.stderr.tail())
                ))
            }
            None => PluginError::Plugin(format!(
                "plugin `{}` {what}: {}",
                self.name,
                status.message()
            )),
        }
    }
}

fn parse_handshake(line: &str) -> Result<PathBuf, String> {
    let parts: Vec<&str> = line.splitn(4, '|').collect();
    match parts.as_slice() {
        [magic, version, "unix", path] if *magic == HANDSHAKE_MAGIC => {
            if *version != PROTOCOL_VERSION.to_string() {
                return Err(format!(
                    "protocol version {version}, this host speaks {PROTOCOL_VERSION}"
                ));
            }
            Ok(PathBuf::from(path))
        }
        _ => Err(format!(
            "expected `{HANDSHAKE_MAGIC}|{PROTOCOL_VERSION}|unix|<socket path>`"
        )),
    }
}

struct ExternalMap {
    plugin: Arc<ExternalPlugin>,
    name: String,
}

#[async_trait]
impl MapFn for ExternalMap {
    async fn map(&self, input: Any) -> Result<Any, PluginError> {
        let r = self
            .plugin
            .client
            .clone()
            .map(pp::MapRequest {
                mapper: self.name.clone(),
                input: Some(input),
            })
            .await;
        match r {
            Ok(r) => r.into_inner().output.ok_or_else(|| {
                PluginError::Plugin(format!("mapper `{}` returned nothing", self.name))
            }),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                Err(PluginError::Failed(s.message().to_owned()))
            }
            Err(s) => Err(self
                .plugin
                .failure(&format!("mapper `{}`", self.name), &s)
                .await),
        }
    }
}

struct ExternalHandle {
    plugin: Arc<ExternalPlugin>,
    info: ComponentInfo,
    config_json: RwLock<String>,
}

#[async_trait]
impl ComponentHandle for ExternalHandle {
    fn info(&self) -> &ComponentInfo {
        &self.info
    }

    async fn configure(&self, config: serde_json::Value) -> Result<(), ConfigErrors> {
        let json = if config.is_null() {
            "{}".to_owned()
        } else {
            config.to_string()
        };
        let r = self
            .plugin
            .client
            .clone()
            .configure(pp::ConfigureRequest {
                component: self.info.kind.to_proto() as i32,
                config_json: json.clone(),
            })
            .await;
        match r {
            Ok(r) => {
                let errs = r.into_inner().errors;
                if errs.is_empty() {
                    *self.config_json.write().expect("config lock") = json;
                    Ok(())
                } else {
                    Err(ConfigErrors(
                        errs.into_iter()
                            .map(|e| ConfigError::new(e.path, e.message))
                            .collect(),
                    ))
                }
            }
            Err(s) => Err(ConfigErrors::one(
                "",
                self.plugin.failure("configure", &s).await.to_string(),
            )),
        }
    }

    async fn call(&self, call: Call) -> Result<CallResult, PluginError> {
        static CALL_IDS: AtomicU64 = AtomicU64::new(1);
        let call_id = CALL_IDS.fetch_add(1, Ordering::Relaxed);
        let function = call.function;
        let req = pp::CallRequest {
            call_id,
            component: self.info.kind.to_proto() as i32,
            function: function.as_str().to_owned(),
            config_json: self.config_json.read().expect("config lock").clone(),
            core: Some((&call.core).into()),
            inputs: call.inputs,
            resources: call.resources,
            input_template_data_json: if call.input_template_data.is_null() {
                String::new()
            } else {
                call.input_template_data.to_string()
            },
        };
        *self.plugin.stderr.sink.lock().expect("stderr lock") = Some(call.ui.clone());
        let r = tokio::select! {
            r = self.run(function, req, &call.ui) => r,
            () = call.cancel.cancelled() => Err(PluginError::Cancelled),
        };
        if !matches!(r, Err(PluginError::Cancelled | PluginError::Plugin(_))) {
            // The marker precedes the result on the wire, so this is a wait for our own reader.
            self.plugin
                .stderr
                .wait_call(call_id, Duration::from_secs(1))
                .await;
        }
        *self.plugin.stderr.sink.lock().expect("stderr lock") = None;
        r
    }
}

impl ExternalHandle {
    async fn run(
        &self,
        function: Function,
        req: pp::CallRequest,
        ui: &Ui,
    ) -> Result<CallResult, PluginError> {
        let what = format!("`{function}`");
        let mut stream = match self.plugin.client.clone().call(req).await {
            Ok(s) => s.into_inner(),
            Err(s) => return Err(self.plugin.failure(&what, &s).await),
        };
        // Plugin step ids are remapped into the host UI's id space so they never collide.
        let mut steps: HashMap<i32, i32> = HashMap::new();
        loop {
            match stream.message().await {
                Ok(Some(m)) => match m.event {
                    Some(pp::call_response::Event::Terminal(mut ev)) => {
                        if let Some(te::Event::Step(s)) = &mut ev.event {
                            s.id = *steps.entry(s.id).or_insert_with(|| ui.next_step_id());
                        }
                        ui.emit(ev);
                    }
                    Some(pp::call_response::Event::Result(r)) => {
                        return Ok(from_proto_result(function, r));
                    }
                    Some(pp::call_response::Event::Error(e)) => return Err(PluginError::Failed(e)),
                    None => {}
                },
                Ok(None) => {
                    return Err(self
                        .plugin
                        .failure(
                            &what,
                            &tonic::Status::unavailable("stream ended without a result"),
                        )
                        .await);
                }
                Err(s) => return Err(self.plugin.failure(&what, &s).await),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_lines() {
        assert_eq!(
            parse_handshake("WAYLINE_PLUGIN|1|unix|/tmp/a b.sock").unwrap(),
            PathBuf::from("/tmp/a b.sock")
        );
        assert_eq!(
            parse_handshake("WAYLINE_PLUGIN|2|unix|/x").unwrap_err(),
            "protocol version 2, this host speaks 1"
        );
        assert_eq!(
            parse_handshake("hello").unwrap_err(),
            "expected `WAYLINE_PLUGIN|1|unix|<socket path>`"
        );
    }
}
