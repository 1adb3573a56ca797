//! One running Waypoint plugin process: started with the magic cookie, its handshake read, the
//! gRPC connection made, go-plugin's broker and stdio streams opened, its hclog stderr turned
//! into our logs, and stopped through `GRPCController.Shutdown`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint};

use crate::broker::Broker;
use crate::handshake;
use crate::pb::plugin as gp;
use crate::pb::plugin::grpc_controller_client::GrpcControllerClient;
use crate::pb::plugin::grpc_stdio_client::GrpcStdioClient;

/// How many stderr lines an error report shows.
const STDERR_TAIL: usize = 20;
/// The default time a plugin has to print its handshake line.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Shutdown` may take before the process is killed (go-plugin waits 2 s too).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Longest stderr line kept (a plugin printing a huge line does not bloat the host).
const MAX_LINE: usize = 4096;

/// How to start a plugin: an executable and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The plugin name (`use "<name>"`).
    pub name: String,
    /// The executable: `waypoint-plugin-<name>`, or the `waypoint` binary.
    pub program: PathBuf,
    /// `[]`, or `["plugin", "<name>"]` for a Waypoint built-in.
    pub args: Vec<String>,
}

impl Launch {
    /// The plugin's command: go-plugin's magic cookie and protocol versions in its environment,
    /// its temporary files in the private `dir`, stdout (the handshake) and stderr piped.
    fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env(handshake::COOKIE_KEY, handshake::COOKIE_VALUE)
            .env(
                handshake::PROTOCOL_VERSIONS_ENV,
                handshake::APP_PROTOCOL_VERSION.to_string(),
            )
            .env("TMPDIR", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// "plugin `x` (`path`)", or "Waypoint built-in `x` (`waypoint plugin x`)", for messages.
    pub fn describe(&self) -> String {
        if self.args.is_empty() {
            format!("plugin `{}` (`{}`)", self.name, self.program.display())
        } else {
            format!(
                "Waypoint built-in plugin `{}` (`{} {}`)",
                self.name,
                self.program.display(),
                self.args.join(" ")
            )
        }
    }
}

impl Launch {
    /// What to do when the executable cannot be started.
    fn missing_hint(&self) -> String {
        if self.args.is_empty() {
            format!(
                "check that `{}` is an executable for this machine, or remove it",
                self.program.display()
            )
        } else {
            format!(
                "set {} to a Waypoint 0.11 `waypoint` binary (or put one on PATH), or install \
                 `waypoint-plugin-{}` in ./.waypoint/plugins",
                crate::WAYPOINT_BINARY_ENV,
                self.name
            )
        }
    }
}

/// The plugin's last log lines, and whether its stderr has closed.
#[derive(Default)]
pub(crate) struct Logs {
    tail: Mutex<VecDeque<String>>,
    closed: tokio::sync::Notify,
    done: std::sync::atomic::AtomicBool,
}

impl Logs {
    /// One stderr line: an hclog JSON record goes to our log with its level and fields; any
    /// other line (a Go panic) is logged as is.
    fn line(&self, plugin: &str, raw: &str) {
        let raw: String = raw.chars().take(MAX_LINE).collect();
        let shown = match crate::hclog::parse(&raw) {
            Some(rec) => {
                rec.log(plugin);
                rec.to_string()
            }
            None => {
                tracing::info!(plugin, "{raw}");
                raw
            }
        };
        let mut t = self.tail.lock().expect("log lock");
        if t.len() == STDERR_TAIL {
            t.pop_front();
        }
        t.push_back(shown);
    }

    /// The last lines, or a note that there were none.
    pub(crate) fn tail_text(&self) -> String {
        let t = self.tail.lock().expect("log lock");
        if t.is_empty() {
            "(no stderr output)".to_owned()
        } else {
            t.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    }

    async fn wait_closed(&self, max: Duration) {
        let notified = self.closed.notified();
        if self.done.load(Ordering::Acquire) {
            return;
        }
        let _ = tokio::time::timeout(max, notified).await;
    }

    fn spawn_reader(self: &Arc<Self>, plugin: &str, pipe: impl AsyncRead + Unpin + Send + 'static) {
        let logs = self.clone();
        let plugin = plugin.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                logs.line(&plugin, &l);
            }
            logs.done.store(true, Ordering::Release);
            logs.closed.notify_waiters();
        });
    }
}

/// A running plugin and its connection.
pub struct Process {
    pub(crate) launch: Launch,
    pid: u32,
    child: Mutex<Child>,
    pub(crate) channel: Channel,
    pub(crate) broker: Broker,
    pub(crate) logs: Arc<Logs>,
    dir: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(c) = self.child.get_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private 0700 directory: the plugin's TMPDIR (it makes its socket there) and the broker's.
/// (tempfile: an unpredictable name, created 0700; removed with the process.)
fn private_dir() -> std::io::Result<PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix("wayline-wp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()?
        .keep())
}

/// Connects a gRPC channel to a unix socket.
pub async fn connect_unix(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_owned();
    Endpoint::from_static("http://waypoint-plugin.invalid")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
}

/// The handshake line's unix socket, or why the line is not a handshake this host can use.
fn unix_handshake(line: &str) -> Result<handshake::Handshake, String> {
    match handshake::parse(line) {
        Ok(h) if h.network == "unix" => Ok(h),
        Ok(h) => Err(format!("serves on `{}`, expected a unix socket", h.network)),
        Err(e) => {
            let hint = if e.contains("protocol version") {
                "; use a build of the plugin for Waypoint 0.11 (waypoint-plugin-sdk, plugin \
                 protocol 1)"
            } else {
                ""
            };
            Err(format!(
                "sent a bad handshake `{}`: {e}{hint}",
                line.trim_end()
            ))
        }
    }
}

impl Process {
    /// Starts the plugin and completes the handshake within `timeout`.
    pub async fn start(launch: Launch, timeout: Duration) -> Result<Arc<Self>, String> {
        let what = launch.describe();
        let dir = private_dir().map_err(|e| format!("cannot create a plugin dir: {e}"))?;
        let mut child = wayline_plugin::host::spawn_executable(&mut launch.command(&dir))
            .await
            .map_err(|e| format!("cannot start {what}: {e}; {}", launch.missing_hint()))?;
        let logs = Arc::new(Logs::default());
        logs.spawn_reader(&launch.name, child.stderr.take().expect("piped"));
        let fail =
            |why: String, logs: &Logs| format!("{what} {why}; its stderr:\n{}", logs.tail_text());
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        match tokio::time::timeout(timeout, stdout.read_line(&mut line)).await {
            Err(_) => {
                let _ = child.start_kill();
                logs.wait_closed(Duration::from_millis(500)).await;
                return Err(fail(
                    format!(
                        "printed no handshake within {timeout:?} (a Waypoint plugin prints \
                         `1|1|unix|<socket>|grpc|` as it starts: is this one? A Wayline plugin \
                         is named `wayline-plugin-<name>`)"
                    ),
                    &logs,
                ));
            }
            Ok(Err(e)) => return Err(fail(format!("handshake read failed: {e}"), &logs)),
            Ok(Ok(0)) => {
                let status = child
                    .wait()
                    .await
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                logs.wait_closed(Duration::from_secs(1)).await;
                return Err(fail(
                    format!("exited before its handshake ({status})"),
                    &logs,
                ));
            }
            Ok(Ok(_)) => {}
        }
        // Keep draining stdout so a chatty plugin never blocks on a full pipe.
        let plugin = launch.name.clone();
        tokio::spawn(async move {
            let mut lines = stdout.lines();
            while let Ok(Some(l)) = lines.next_line().await {
                tracing::debug!(plugin, stdout = %l, "plugin stdout");
            }
        });
        let hs = match unix_handshake(&line) {
            Ok(h) => h,
            Err(why) => {
                let _ = child.start_kill();
                return Err(fail(why, &logs));
            }
        };
        let channel = connect_unix(Path::new(&hs.address))
            .await
            .map_err(|e| fail(format!("cannot be reached on `{}`: {e}", hs.address), &logs))?;
        let broker = Broker::start(&channel, &dir, &launch.name)
            .await
            .map_err(|e| fail(format!("refused the broker stream: {e}"), &logs))?;
        start_stdio(&channel, &launch.name, &logs).await;
        tracing::debug!(
            plugin = launch.name,
            pid = child.id(),
            "Waypoint plugin started"
        );
        Ok(Arc::new(Self {
            pid: child.id().unwrap_or_default(),
            launch,
            child: Mutex::new(child),
            channel,
            broker,
            logs,
            dir,
        }))
    }

    /// The plugin name.
    pub fn name(&self) -> &str {
        &self.launch.name
    }

    /// How it was started.
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        self.child
            .lock()
            .expect("child lock")
            .try_wait()
            .map_or(true, |s| s.is_some())
    }

    /// Whether the process exits within `grace` (checked every 10 ms).
    pub async fn exits_within(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        while !self.exited() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Asks the plugin to exit (`GRPCController.Shutdown`; it exits without replying, so
    /// UNAVAILABLE is the expected answer), waits up to 2 s, then kills it.
    pub async fn shutdown(&self) -> Result<(), String> {
        let r = GrpcControllerClient::new(self.channel.clone())
            .shutdown(gp::Empty {})
            .await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while !self.exited() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // It exits without answering: UNAVAILABLE, or a reset connection, is the expected reply.
        let answered = match r {
            Ok(_) => Ok(()),
            Err(_) if self.exited() => Ok(()),
            Err(s) => Err(format!(
                "plugin `{}` refused Shutdown: {} {}",
                self.launch.name,
                s.code(),
                s.message()
            )),
        };
        if !self.exited() {
            let _ = self.child.lock().expect("child lock").start_kill();
        }
        answered
    }

    /// Explains a failed RPC: the plugin exited (with its last stderr lines), or its message.
    pub(crate) async fn failure(&self, what: &str, status: &tonic::Status) -> String {
        let mut exited = None;
        // A dead plugin shows as UNAVAILABLE/UNKNOWN a moment before its exit is reaped.
        for _ in 0..40 {
            exited = self
                .child
                .lock()
                .expect("child lock")
                .try_wait()
                .ok()
                .flatten();
            if exited.is_some()
                || !matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown
                )
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        match exited {
            Some(st) => {
                self.logs.wait_closed(Duration::from_secs(1)).await;
                format!(
                    "plugin `{}` exited during {what} ({st}); its last stderr lines:\n{}",
                    self.launch.name,
                    self.logs.tail_text()
                )
            }
            None => format!("plugin `{}` {what}: {}", self.launch.name, status.message()),
        }
    }
}

/// Mirrors what the plugin writes to its stdout/stderr through `GRPCStdio` (go-plugin ≥ 1.4);
/// an older plugin without the service is fine.
async fn start_stdio(channel: &Channel, plugin: &str, logs: &Arc<Logs>) {
    let Ok(stream) = GrpcStdioClient::new(channel.clone()).stream_stdio(()).await else {
        return;
    };
    let mut stream = stream.into_inner();
    let logs = logs.clone();
    let plugin = plugin.to_owned();
    tokio::spawn(async move {
        while let Ok(Some(chunk)) = stream.message().await {
            let text = String::from_utf8_lossy(&chunk.data);
            for l in text.lines() {
                if chunk.channel() == gp::stdio_data::Channel::Stderr {
                    logs.line(&plugin, l);
                } else {
                    tracing::debug!(plugin, stdout = %l, "plugin stdout");
                }
            }
        }
    });
}
