//! Child processes: spawning the app in its own process group, reaping every zombie (we may be
//! PID 1), and stopping the app for a restart.
//!
//! All children are spawned with `std::process` and reaped here with `waitpid(-1)`, never by
//! tokio's child driver: as PID 1 (or a subreaper) we must reap orphans too, and two reapers would
//! steal each other's exit statuses.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;
use wayline_proto::v1::log_line;

use crate::logs::{ChunkQueue, LogRing, split_lines, tee};

/// Reaps every child and hands registered ones their exit code.
#[derive(Debug, Default)]
pub struct Reaper {
    waiters: Mutex<HashMap<i32, oneshot::Sender<i32>>>,
}

/// The exit code a shell would report: the code, or 128 + signal number.
pub fn exit_code(status: WaitStatus) -> Option<(Pid, i32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid, code)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid, 128 + sig as i32)),
        _ => None,
    }
}

impl Reaper {
    /// A reaper; call [`Reaper::run`] on it.
    pub fn new() -> Arc<Self> {
        // Orphaned grandchildren get reparented to us even when we are not PID 1 (a test, or a
        // platform that runs its own init), so they are reaped too.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        Arc::new(Reaper::default())
    }

    /// Spawns `cmd` and returns the child and a receiver of its exit code. The waiter is
    /// registered before the child can be reaped.
    pub fn spawn(
        &self,
        cmd: &mut Command,
    ) -> std::io::Result<(std::process::Child, oneshot::Receiver<i32>)> {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        let child = cmd.spawn()?;
        let (tx, rx) = oneshot::channel();
        waiters.insert(child.id() as i32, tx);
        Ok((child, rx))
    }

    /// Collects every exited child now.
    pub fn reap(&self) {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(status) => {
                    if let Some((pid, code)) = exit_code(status)
                        && let Some(tx) = waiters.remove(&pid.as_raw())
                    {
                        let _ = tx.send(code);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed");
                    break;
                }
            }
        }
    }

    /// Reaps on every SIGCHLD, and once a second in case a signal was coalesced away.
    pub async fn run(self: Arc<Self>) {
        let mut sigchld = match signal(SignalKind::child()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGCHLD; reaping once a second");
                None
            }
        };
        loop {
            self.reap();
            match sigchld.as_mut() {
                Some(s) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), s.recv()).await;
                }
                None => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }
}

/// The running app.
#[derive(Debug)]
pub struct App {
    /// Its pid, also its process group id.
    pub pid: Pid,
    /// Resolves to its exit code.
    pub exit: oneshot::Receiver<i32>,
    /// The tee threads; joined briefly on exit so the last lines are captured.
    tees: Vec<std::thread::JoinHandle<()>>,
}

/// Starts the app with exactly `env`, in a new process group, its output tee'd into `ring`
/// (without a ring the app writes straight to our stdout/stderr).
pub fn spawn_app(
    reaper: &Reaper,
    argv: &[OsString],
    env: &BTreeMap<String, String>,
    ring: Option<&Arc<LogRing>>,
) -> std::io::Result<App> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env)
        .process_group(0)
        .stdin(Stdio::inherit());
    if ring.is_some() {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let (mut child, exit) = reaper.spawn(&mut cmd)?;
    let mut tees = Vec::new();
    let Some(ring) = ring else {
        return Ok(App {
            pid: Pid::from_raw(child.id() as i32),
            exit,
            tees,
        });
    };
    let chunks = ChunkQueue::new(2);
    for fd in [
        child.stdout.as_ref().map(std::os::fd::AsFd::as_fd),
        child.stderr.as_ref().map(std::os::fd::AsFd::as_fd),
    ]
    .into_iter()
    .flatten()
    {
        // A 1 MiB pipe absorbs bursts while our stdout is briefly slow.
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    }
    if let Some(out) = child.stdout.take() {
        let (ring, chunks) = (ring.clone(), chunks.clone());
        tees.push(std::thread::spawn(move || {
            tee(
                out,
                std::io::stdout(),
                log_line::Stream::Stdout,
                &chunks,
                &ring,
            );
        }));
    }
    if let Some(err) = child.stderr.take() {
        let (ring, chunks) = (ring.clone(), chunks.clone());
        tees.push(std::thread::spawn(move || {
            tee(
                err,
                std::io::stderr(),
                log_line::Stream::Stderr,
                &chunks,
                &ring,
            );
        }));
    }
    let ring = ring.clone();
    tees.push(std::thread::spawn(move || {
        // Under overload the app wins the CPU and lines are dropped (and counted), rather than
        // the app slowing down: the splitter yields to everything at normal priority.
        #[allow(unsafe_code)]
        // SAFETY: plain syscall with integer arguments; `0` targets the calling thread.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        split_lines(&chunks, &ring);
    }));
    Ok(App {
        pid: Pid::from_raw(child.id() as i32),
        exit,
        tees,
    })
}

impl App {
    /// Sends `sig` to the app's whole process group.
    pub fn signal(&self, sig: Signal) {
        if let Err(e) = killpg(self.pid, sig) {
            tracing::debug!(error = %e, signal = %sig, "signal not delivered");
        }
    }

    /// Waits for the exit code, then gives the tee threads a moment to capture the last output
    /// (a grandchild may keep the pipes open; we don't wait for it).
    pub async fn wait(&mut self) -> i32 {
        let code = (&mut self.exit).await.unwrap_or(1);
        self.join_tees().await;
        code
    }

    /// Gives the tee threads up to half a second to copy the last output.
    pub async fn join_tees(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        for t in std::mem::take(&mut self.tees) {
            while !t.is_finished() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// SIGTERM to the group, up to `grace` for it to exit, then SIGKILL. Returns the exit code.
    pub async fn stop(&mut self, grace: Duration) -> i32 {
        self.signal(Signal::SIGTERM);
        if let Ok(code) = tokio::time::timeout(grace, &mut self.exit).await {
            self.join_tees().await;
            return code.unwrap_or(1);
        }
        tracing::warn!(grace = ?grace, "app did not exit after SIGTERM; sending SIGKILL");
        self.signal(Signal::SIGKILL);
        self.wait().await
    }
}

/// Parses a signal name as users write it: `SIGHUP`, `HUP`, `hup` or `1`.
pub fn parse_signal(s: &str) -> Option<Signal> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("SIGHUP"), Some(Signal::SIGHUP));
        assert_eq!(parse_signal("usr1"), Some(Signal::SIGUSR1));
        assert_eq!(parse_signal("15"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGNOPE"), None);
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        let pid = Pid::from_raw(42);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), Some((pid, 3)));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some((pid, 137))
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }
}
