//! `logs` and `exec`: both reach the running app through its entrypoint's connection.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use wayline_core::pb::{self, exec_stream_request, exec_stream_response, log_line};

use super::{Env, describe_status, ops};
use crate::render::{self, note, say};
use crate::session;

fn err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(describe_status(&s))
}

/// What `wayline logs` shows.
pub(crate) struct LogsOptions {
    pub(crate) deployment: Option<String>,
    pub(crate) instance: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) timestamps: bool,
    pub(crate) follow: bool,
}

pub(crate) async fn logs(env: &Env, opts: LogsOptions) -> Result<ExitCode> {
    let t = ops::target(env)?;
    let mut s = session::connect().await?;
    let deployment_id = match &opts.deployment {
        Some(d) => ops::resolve_deployment(&mut s, &t.project, &t.app, &t.workspace, d).await?,
        None => String::new(),
    };
    let since = match &opts.since {
        Some(d) => {
            let dur = parse_duration(d)?;
            Some(wayline_core::time::from_system(SystemTime::now() - dur))
        }
        None => None,
    };
    let mut request = pb::GetLogStreamRequest {
        application: Some(pb::r#ref::Application {
            project: t.project.clone(),
            application: t.app.clone(),
        }),
        workspace: t.workspace.clone(),
        deployment_id,
        instance_id: resolve_instance(&mut s, &t, opts.instance.as_deref()).await?,
        since,
        follow: opts.follow,
    };
    let mut stream = s
        .client
        .get_log_stream(request.clone())
        .await
        .map_err(err)?
        .into_inner();
    let mut seen = Seen::default();
    loop {
        let batch = tokio::select! {
            b = stream.message() => b,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        let batch = match batch {
            Ok(Some(b)) => b,
            Ok(None) => break,
            // Following survives a server restart: ask again from the last line shown.
            Err(status) if opts.follow && super::is_disconnect(&status) => {
                note!(
                    "{}",
                    env.style.dim(&format!(
                        "  lost the connection to the server ({}); reconnecting...",
                        status.message()
                    ))
                );
                request.since = seen.last;
                seen.resumed = true;
                stream = reopen_log_stream(&mut s, &request).await?;
                continue;
            }
            Err(status) => return Err(err(status)),
        };
        // Drops arrive as an entrypoint line ("… 1,204 lines dropped") in `lines` too, so
        // `batch.dropped` is not printed again.
        for l in &batch.lines {
            if seen.already_shown(l) {
                continue;
            }
            print_log_line(env, &batch, l, opts.timestamps);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The newest lines shown, so a stream reopened from their timestamp prints nothing twice.
#[derive(Default)]
struct Seen {
    last: Option<prost_types::Timestamp>,
    at_last: Vec<String>,
    /// Set once the stream was reopened: only then can a line come twice.
    resumed: bool,
}

impl Seen {
    /// Whether `l` was shown before; records it otherwise.
    fn already_shown(&mut self, l: &pb::LogLine) -> bool {
        let Some(ts) = l.timestamp else {
            return false;
        };
        let key = (ts.seconds, ts.nanos);
        match self.last.as_ref().map(|t| (t.seconds, t.nanos)) {
            Some(last) if key < last => return self.resumed,
            Some(last) if key == last => {
                if self.resumed && self.at_last.contains(&l.line) {
                    return true;
                }
                self.at_last.push(l.line.clone());
            }
            _ => {
                self.last = Some(ts);
                self.at_last = vec![l.line.clone()];
            }
        }
        false
    }
}

/// Reopens a followed log stream while the server restarts, with backoff, for at most
/// [`ops::DEFAULT_SERVER_WAIT`].
async fn reopen_log_stream(
    s: &mut session::Session,
    request: &pb::GetLogStreamRequest,
) -> Result<tonic::Streaming<pb::LogBatch>> {
    let deadline = std::time::Instant::now() + ops::DEFAULT_SERVER_WAIT;
    let mut backoff = wayline_runner::retry::Backoff::up_to(Duration::from_secs(2));
    loop {
        tokio::time::sleep(backoff.next_delay()).await;
        match s.client.get_log_stream(request.clone()).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(e) if std::time::Instant::now() >= deadline => {
                bail!(
                    "the server did not come back within {}s: {}",
                    ops::DEFAULT_SERVER_WAIT.as_secs(),
                    describe_status(&e)
                );
            }
            Err(_) => {}
        }
    }
}

fn print_log_line(env: &Env, batch: &pb::LogBatch, l: &pb::LogLine, timestamps: bool) {
    if env.global.json {
        let v = serde_json::json!({
            "time": l.timestamp.as_ref().map(wayline_core::time::to_millis),
            "instance": batch.instance_id,
            "deployment": batch.deployment_id,
            "source": if l.source() == log_line::Source::Entrypoint { "entrypoint" } else { "app" },
            "stream": if l.stream() == log_line::Stream::Stderr { "stderr" } else { "stdout" },
            "line": l.line,
        });
        render::json_line(&v);
        return;
    }
    let stamp = if timestamps {
        let at = l
            .timestamp
            .as_ref()
            .map_or_else(SystemTime::now, wayline_core::time::to_system);
        format!("{} ", humantime::format_rfc3339_millis(at))
    } else {
        String::new()
    };
    if l.source() == log_line::Source::Entrypoint {
        say!(
            "{stamp}{}",
            env.style
                .dim(&format!("[entrypoint] {}", render::safe(&l.line)))
        );
    } else {
        // The app's own output, as it wrote it (colours included), like `docker logs`.
        say!("{stamp}{}", l.line);
    }
}

/// Turns a unique prefix of a connected instance's id (as `status` prints it) into the id; an
/// ambiguous one lists the candidates; anything else goes to the server as given (the log
/// window of an instance that has gone is still kept under its full id).
async fn resolve_instance(
    s: &mut session::Session,
    t: &ops::Target,
    given: Option<&str>,
) -> Result<String> {
    let Some(given) = given.filter(|g| !g.is_empty()) else {
        return Ok(String::new());
    };
    let instances = s
        .client
        .list_instances(pb::ListInstancesRequest {
            application: Some(pb::r#ref::Application {
                project: t.project.clone(),
                application: t.app.clone(),
            }),
            workspace: t.workspace.clone(),
            deployment_id: String::new(),
        })
        .await
        .map_err(err)?
        .into_inner()
        .instances;
    if instances.iter().any(|i| i.id == given) {
        return Ok(given.to_owned());
    }
    let matching: Vec<&str> = instances
        .iter()
        .map(|i| i.id.as_str())
        .filter(|id| id.starts_with(given))
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Ok(given.to_owned()),
        many => bail!(
            "`{given}` is the start of several instance ids ({}); type more of it",
            many.join(", ")
        ),
    }
}

/// Parses `30s`, `10m`, `2h`, `1d`, `1h30m` (humantime's grammar, like every duration flag).
fn parse_duration(s: &str) -> Result<Duration> {
    humantime::parse_duration(s)
        .map_err(|e| anyhow::anyhow!("-since `{s}` is not a duration such as 30s, 10m or 2h: {e}"))
}

pub(crate) async fn exec(
    env: &Env,
    instance: Option<String>,
    deployment: Option<String>,
    tty: Option<bool>,
    command: Vec<String>,
) -> Result<ExitCode> {
    let t = ops::target(env)?;
    let mut s = session::connect().await?;
    let deployment_id = match deployment {
        Some(d) => ops::resolve_deployment(&mut s, &t.project, &t.app, &t.workspace, &d).await?,
        None => String::new(),
    };
    let use_tty =
        tty.unwrap_or_else(|| std::io::stdin().is_terminal() && std::io::stdout().is_terminal());
    let size = if use_tty { terminal_size() } else { None };
    let instance_id = resolve_instance(&mut s, &t, instance.as_deref()).await?;
    let (tx, rx) = mpsc::channel::<pb::ExecStreamRequest>(64);
    let start = exec_stream_request::Start {
        deployment_id,
        instance_id,
        application: Some(pb::r#ref::Application {
            project: t.project,
            application: t.app,
        }),
        workspace: t.workspace,
        args: command,
        pty: use_tty.then(|| {
            let (rows, cols) = size.unwrap_or((24, 80));
            pb::WindowSize {
                rows,
                cols,
                enable: true,
            }
        }),
        term: std::env::var("TERM").unwrap_or_else(|_| "xterm".into()),
    };
    tx.send(pb::ExecStreamRequest {
        event: Some(exec_stream_request::Event::Start(start)),
    })
    .await?;
    let mut stream = s
        .client
        .start_exec_stream(ReceiverStream::new(rx))
        .await
        .map_err(err)?
        .into_inner();
    let raw = if use_tty { RawMode::enable() } else { None };

    // stdin → server; `~.` after a newline disconnects, as in ssh.
    let (detach_tx, mut detach_rx) = mpsc::channel::<()>(1);
    tokio::spawn(forward_stdin(tx.clone(), use_tty, detach_tx));
    if use_tty {
        tokio::spawn(forward_window_changes(tx.clone()));
    }
    drop(tx);
    let mut code = 0;
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            Some(()) = detach_rx.recv() => {
                drop(raw);
                note!("\r\nDisconnected (~.).");
                return Ok(ExitCode::SUCCESS);
            }
        };
        let msg = match msg {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => {
                drop(raw);
                return Err(err(e));
            }
        };
        match msg.event {
            Some(exec_stream_response::Event::Stdout(b)) => render::out_bytes(&b),
            Some(exec_stream_response::Event::Stderr(b)) => render::err_bytes(&b),
            Some(exec_stream_response::Event::ExitCode(c)) => {
                code = c;
                break;
            }
            Some(exec_stream_response::Event::Error(e)) => {
                drop(raw);
                bail!("{e}");
            }
            Some(exec_stream_response::Event::OpenedInstanceId(_)) | None => {}
        }
    }
    drop(raw);
    Ok(ExitCode::from(
        u8::try_from(code.clamp(0, 255)).unwrap_or(1),
    ))
}

/// Sends stdin to the session until it ends (then stdin EOF), or until `~.` is typed at the
/// start of a line on a terminal (then `detach`).
async fn forward_stdin(
    stdin_tx: mpsc::Sender<pb::ExecStreamRequest>,
    use_tty: bool,
    detach: mpsc::Sender<()>,
) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 8192];
    let mut escape = EscapeDetector::default();
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = stdin_tx
                    .send(pb::ExecStreamRequest {
                        event: Some(exec_stream_request::Event::StdinEof(true)),
                    })
                    .await;
                return;
            }
            Ok(n) => {
                if use_tty && escape.feed(&buf[..n]) {
                    let _ = detach.send(()).await;
                    return;
                }
                let ev = exec_stream_request::Event::Stdin(buf[..n].to_vec());
                if stdin_tx
                    .send(pb::ExecStreamRequest { event: Some(ev) })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Sends the terminal's new size on each SIGWINCH, for the remote pty.
async fn forward_window_changes(winch_tx: mpsc::Sender<pb::ExecStreamRequest>) {
    let Ok(mut winch) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
    else {
        return;
    };
    while winch.recv().await.is_some() {
        if let Some((rows, cols)) = terminal_size() {
            let ev = exec_stream_request::Event::Window(pb::WindowSize {
                rows,
                cols,
                enable: true,
            });
            if winch_tx
                .send(pb::ExecStreamRequest { event: Some(ev) })
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Spots `~.` typed at the start of a line.
#[derive(Default)]
struct EscapeDetector {
    after_newline: bool,
    tilde: bool,
    started: bool,
}

impl EscapeDetector {
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            let at_line_start = self.after_newline || !self.started;
            self.started = true;
            if self.tilde && b == b'.' {
                return true;
            }
            self.tilde = at_line_start && b == b'~';
            self.after_newline = b == b'\r' || b == b'\n';
        }
        false
    }
}

fn terminal_size() -> Option<(u32, u32)> {
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let rows = parts.next()?.parse().ok()?;
    let cols = parts.next()?.parse().ok()?;
    Some((rows, cols))
}

/// Puts the local terminal in raw mode while a pty session runs; restores it on drop.
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enable() -> Option<Self> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequence() {
        let mut d = EscapeDetector::default();
        assert!(d.feed(b"~."));
        let mut d = EscapeDetector::default();
        assert!(!d.feed(b"ls ~.\r"));
        assert!(d.feed(b"~."));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_mins(10));
    }
}
