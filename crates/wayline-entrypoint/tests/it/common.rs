//! Test support: a hub server on a unix socket and a configured entrypoint command.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tonic::transport::{Channel, Endpoint};
use wayline_proto::v1::wayline_client::WaylineClient;
use wayline_proto::v1::{ConfigVar, GetLogStreamRequest, LogLine, config_var};

pub use wayline_testkit::{Need, docker_engine, free_port, tool, wait_for_async};

use crate::harness::{Harness, StaticResolver, serve};
use crate::hub::{EntrypointHub, HubOptions};

/// The deployment every test entrypoint belongs to (the harness's token is the deployment id).
pub const DEPLOYMENT: &str = "D1";
/// Upper bound on waiting for something that should happen; never a performance threshold.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A hub served on a unix socket in a temp dir.
pub struct Server {
    pub hub: EntrypointHub,
    pub resolver: Arc<StaticResolver>,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("wayline.sock");
        let mut s = Self::at(dir, socket);
        s.task = s.serve();
        s
    }

    /// A server whose socket is chosen but not yet listening (see [`Server::listen`]).
    pub fn not_yet() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("wayline.sock");
        Self::at(dir, socket)
    }

    fn at(dir: tempfile::TempDir, socket: PathBuf) -> Self {
        Server {
            hub: EntrypointHub::new(HubOptions::default()),
            resolver: Arc::new(StaticResolver::default()),
            socket,
            dir,
            task: tokio::spawn(async {}),
        }
    }

    pub fn listen(&mut self) {
        self.task = self.serve();
    }

    fn serve(&self) -> tokio::task::JoinHandle<()> {
        serve(
            Harness {
                hub: self.hub.clone(),
                resolver: self.resolver.clone(),
            },
            &self.socket,
        )
    }

    pub fn set_vars(&self, vars: Vec<ConfigVar>) {
        *self.resolver.vars.lock().unwrap() = vars;
        self.hub.config_changed();
    }

    pub async fn client(&self) -> WaylineClient<Channel> {
        let ch = Endpoint::from_shared(format!("unix://{}", self.socket.display()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        WaylineClient::new(ch)
    }

    /// Follows the deployment's logs until a line matches.
    pub async fn wait_line(&self, pred: impl Fn(&LogLine) -> bool) -> LogLine {
        let req = GetLogStreamRequest {
            follow: true,
            ..Default::default()
        };
        let mut s = self.hub.log_stream(vec![DEPLOYMENT.into()], req);
        let found = tokio::time::timeout(PATIENCE, async {
            while let Some(Ok(b)) = s.next().await {
                if let Some(l) = b.lines.into_iter().find(|l| pred(l)) {
                    return l;
                }
            }
            panic!("log stream ended");
        });
        found.await.expect("line never arrived")
    }

    /// Waits for a line with exactly this text.
    pub async fn wait_text(&self, text: &str) -> LogLine {
        self.wait_line(|l| l.line == text).await
    }

    /// Waits until the deployment has `n` instances.
    pub async fn wait_instances(&self, n: usize) {
        wait_for_async(PATIENCE, || async {
            let seen = self.hub.list_instances(&[DEPLOYMENT.into()]);
            if seen.len() == n { Ok(()) } else { Err(seen) }
        })
        .await
        .unwrap_or_else(|last| panic!("never saw {n} instances; last: {last:?}"));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn static_var(name: &str, value: &str) -> ConfigVar {
    ConfigVar {
        name: name.into(),
        value: Some(config_var::Value::Static(value.into())),
        ..ConfigVar::default()
    }
}

/// The entrypoint running `args`, talking to `socket` (or disabled), with a clean env.
pub fn entrypoint(socket: Option<&Path>, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wayline-entrypoint"));
    cmd.arg("--")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAYLINE_DEPLOYMENT_ID", DEPLOYMENT)
        .env("WAYLINE_ENTRYPOINT_TOKEN", DEPLOYMENT)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(s) = socket {
        cmd.env("WAYLINE_SERVER_ADDR", format!("unix://{}", s.display()));
    }
    cmd
}

/// Runs to completion; returns (code, stdout, stderr).
pub async fn run(mut cmd: tokio::process::Command) -> (i32, String, String) {
    let out = tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("entrypoint hung")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads the child's stdout until a line equal to `text`.
pub async fn wait_stdout(child: &mut tokio::process::Child, text: &str) {
    wait_output(
        child.stdout.as_mut().unwrap(),
        "stdout",
        |l| l == text,
        text,
    )
    .await;
}

/// Reads the child's stderr until a line containing `text`.
pub async fn wait_stderr(child: &mut tokio::process::Child, text: &str) {
    wait_output(
        child.stderr.as_mut().unwrap(),
        "stderr",
        |l| l.contains(text),
        text,
    )
    .await;
}

async fn wait_output(
    out: impl tokio::io::AsyncRead + Unpin,
    name: &str,
    want: impl Fn(&str) -> bool,
    text: &str,
) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(out).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if want(&l) {
                return true;
            }
            seen.push(l);
        }
        false
    })
    .await;
    let Ok(found) = found else {
        panic!("{text:?} never printed on {name}; it said: {seen:#?}");
    };
    assert!(found, "{name} ended before {text:?}; it said: {seen:#?}");
}

pub fn signal(child: &tokio::process::Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, sig).unwrap();
}

pub async fn wait_code(child: &mut tokio::process::Child) -> i32 {
    tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("entrypoint did not exit")
        .unwrap()
        .code()
        .unwrap_or(-1)
}
