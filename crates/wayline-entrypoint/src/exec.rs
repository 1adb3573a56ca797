//! Exec sessions: the server asks (over the config stream) for a command to run; we open an
//! `EntrypointExecStream` back to it and run the command with the app's current env, under a
//! real pty when requested, or with plain pipes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use wayline_proto::v1::entrypoint_config::ExecRequest;
use wayline_proto::v1::{
    EntrypointExecRequest, WindowSize, entrypoint_exec_request as req,
    entrypoint_exec_response as resp,
};

use crate::child::Reaper;
use crate::client::Client;

type Out = mpsc::Sender<EntrypointExecRequest>;

async fn send(tx: &Out, event: req::Event) -> bool {
    tx.send(EntrypointExecRequest { event: Some(event) })
        .await
        .is_ok()
}

/// Runs one exec session to its end.
pub async fn run(
    mut client: Client,
    instance_id: String,
    request: ExecRequest,
    mut app_env: watch::Receiver<Option<BTreeMap<String, String>>>,
    reaper: Arc<Reaper>,
) {
    let index = request.index;
    // An exec that arrives with the first config must see that config's variables: wait until
    // the app was started with it (the supervisor publishes the env it started the app with).
    let env = match app_env.wait_for(Option::is_some).await {
        Ok(env) => env.clone().unwrap_or_default(),
        Err(_) => return,
    };
    let (tx, rx) = mpsc::channel(64);
    let _ = send(&tx, req::Event::Open(req::Open { instance_id, index })).await;
    let mut inbound = match client.entrypoint_exec_stream(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(e) => {
            tracing::warn!(index, error = %e, "cannot open exec stream");
            return;
        }
    };
    let args = request.args.clone();
    tracing::info!(index, command = ?args, pty = request.pty.as_ref().is_some_and(|p| p.enable), "exec session started");
    let result = match request.pty.as_ref().filter(|p| p.enable) {
        Some(size) => run_pty(&request, size, env, &reaper, &tx, &mut inbound).await,
        None => run_pipes(&request, env, &reaper, &tx, &mut inbound).await,
    };
    match result {
        Ok(code) => {
            tracing::info!(index, code, "exec session ended");
            let _ = send(&tx, req::Event::Exit(code)).await;
        }
        Err(e) => {
            let msg = format!(
                "cannot run {:?}: {e}",
                args.first().map_or("", String::as_str)
            );
            tracing::warn!(index, "{msg}");
            let _ = send(&tx, req::Event::Error(msg)).await;
        }
    }
    // Dropping the response half of a call resets the whole HTTP/2 stream, which could lose the
    // exit code still in flight: close our half, then let the server end the call.
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = inbound.message().await {}
    })
    .await;
}

fn command(request: &ExecRequest, env: BTreeMap<String, String>) -> std::io::Result<Command> {
    let Some((prog, args)) = request.args.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no command given",
        ));
    };
    let mut cmd = Command::new(prog);
    cmd.args(args).env_clear().envs(env);
    Ok(cmd)
}

/// Kills the session's process group when the client goes away first.
struct KillOnDrop(Option<Pid>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = killpg(pid, Signal::SIGHUP);
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

async fn run_pipes(
    request: &ExecRequest,
    env: BTreeMap<String, String>,
    reaper: &Reaper,
    tx: &Out,
    inbound: &mut tonic::Streaming<wayline_proto::v1::EntrypointExecResponse>,
) -> std::io::Result<i32> {
    let mut cmd = command(request, env)?;
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut child, exit) = reaper.spawn(&mut cmd)?;
    let mut guard = KillOnDrop(Some(Pid::from_raw(child.id() as i32)));
    let pipe = |fd: OwnedFd| tokio::net::unix::pipe::Receiver::from_owned_fd(fd);
    let mut stdin = child
        .stdin
        .take()
        .map(|s| tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(s)))
        .transpose()?;
    let stdout = child
        .stdout
        .take()
        .map(|s| pipe(OwnedFd::from(s)))
        .transpose()?;
    let stderr = child
        .stderr
        .take()
        .map(|s| pipe(OwnedFd::from(s)))
        .transpose()?;
    let pump = |r: Option<tokio::net::unix::pipe::Receiver>, wrap: fn(Vec<u8>) -> req::Event| {
        let tx = tx.clone();
        tokio::spawn(async move {
            let Some(mut r) = r else { return };
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 || !send(&tx, wrap(buf[..n].to_vec())).await {
                    break;
                }
            }
        })
    };
    let out_task = pump(stdout, req::Event::Stdout);
    let err_task = pump(stderr, req::Event::Stderr);
    let input = async {
        loop {
            match inbound.message().await {
                Ok(Some(m)) => match m.event {
                    Some(resp::Event::Stdin(data)) => {
                        if let Some(s) = stdin.as_mut()
                            && s.write_all(&data).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    Some(resp::Event::StdinEof(_)) => stdin = None,
                    Some(resp::Event::Window(_)) | None => {}
                },
                // The client went away: the session ends.
                Ok(None) | Err(_) => return,
            }
        }
    };
    tokio::pin!(input);
    let mut exit = exit;
    let code = tokio::select! {
        code = &mut exit => code.unwrap_or(1),
        () = &mut input => return Err(std::io::Error::other("client disconnected")),
    };
    guard.0 = None;
    // Output written just before exit is still in the pipes.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = out_task.await;
        let _ = err_task.await;
    })
    .await;
    Ok(code)
}

async fn run_pty(
    request: &ExecRequest,
    size: &WindowSize,
    env: BTreeMap<String, String>,
    reaper: &Reaper,
    tx: &Out,
    inbound: &mut tonic::Streaming<wayline_proto::v1::EntrypointExecResponse>,
) -> std::io::Result<i32> {
    let pty = nix::pty::openpty(Some(&winsize(size)), None)?;
    let mut cmd = command(request, env)?;
    if !request.term.is_empty() {
        cmd.env("TERM", &request.term);
    }
    cmd.stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave));
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (setsid, ioctl); it allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            // Make the pty (already on fd 0) the controlling terminal of the new session, so
            // job control and ^C work in the shell.
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (child, exit) = reaper.spawn(&mut cmd)?;
    // The slave copies were moved into `cmd`; drop it so the master sees EIO once the session ends.
    drop(cmd);
    let mut guard = KillOnDrop(Some(Pid::from_raw(child.id() as i32)));
    let flags = nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    let file = std::fs::File::from(pty.master);
    #[allow(unsafe_code)]
    // SAFETY: `File` owns the master fd; it stays open and the same for the AsyncFd's lifetime,
    // because the AsyncFd owns the File and nothing else closes or replaces the fd.
    let master =
        unsafe { AsyncFd::register(file) }.map_err(|e| std::io::Error::other(e.to_string()))?;
    let master = Arc::new(master);

    let reader = {
        let master = master.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let Ok(mut ready) = master.readable().await else {
                    return;
                };
                match ready.try_io(|f| f.get_ref().read(&mut buf)) {
                    Ok(Ok(0) | Err(_)) => return, // EIO: every slave end closed.
                    Ok(Ok(n)) => {
                        if !send(&tx, req::Event::Stdout(buf[..n].to_vec())).await {
                            return;
                        }
                    }
                    Err(_would_block) => {}
                }
            }
        })
    };
    let input = async {
        loop {
            match inbound.message().await {
                Ok(Some(m)) => match m.event {
                    Some(resp::Event::Stdin(data)) => {
                        let _ = write_all(&master, &data).await;
                    }
                    // A terminal's end of input is ^D.
                    Some(resp::Event::StdinEof(_)) => {
                        let _ = write_all(&master, &[4]).await;
                    }
                    Some(resp::Event::Window(w)) => set_winsize(master.get_ref(), &w),
                    None => {}
                },
                Ok(None) | Err(_) => return,
            }
        }
    };
    tokio::pin!(input);
    let mut exit = exit;
    let code = tokio::select! {
        code = &mut exit => code.unwrap_or(1),
        () = &mut input => return Err(std::io::Error::other("client disconnected")),
    };
    guard.0 = None;
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    Ok(code)
}

async fn write_all(fd: &AsyncFd<std::fs::File>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut ready = fd.writable().await?;
        match ready.try_io(|f| f.get_ref().write(data)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}

fn winsize(w: &WindowSize) -> nix::pty::Winsize {
    nix::pty::Winsize {
        ws_row: u16::try_from(w.rows).unwrap_or(u16::MAX).max(1),
        ws_col: u16::try_from(w.cols).unwrap_or(u16::MAX).max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn set_winsize(master: &std::fs::File, w: &WindowSize) {
    let ws = winsize(w);
    #[allow(unsafe_code)]
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which lives for the call; the fd is
    // the open pty master.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &raw const ws) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot resize the pty");
    }
}
