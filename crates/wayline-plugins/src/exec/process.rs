//! Detached processes: each deployment runs in its own process group, so destroy can stop it and
//! everything it started, even from a later job in another process.

use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How a recorded process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// The group leader (or something in its group) still runs.
    Running,
    /// It exited (or the pid now belongs to another process).
    Gone,
}

/// `starttime` from `/proc/<pid>/stat` (clock ticks since boot) and the state letter; `None`
/// when there is no such process.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last `)`.
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// Whether process group `pgid`, whose leader started at `start_time`, still runs.
pub fn state(pgid: i32, start_time: u64) -> ProcState {
    match proc_stat(pgid) {
        // The pid was reused by another process: ours is gone.
        Some((st, _)) if st != start_time => ProcState::Gone,
        Some((_, 'Z' | 'X')) => ProcState::Gone,
        Some(_) => ProcState::Running,
        // Leader gone; a pgid is never reused while its group lives, so members are ours.
        None => match killpg(Pid::from_raw(pgid), None) {
            Ok(()) => ProcState::Running,
            Err(_) => ProcState::Gone,
        },
    }
}

/// Stops process group `pgid`: SIGTERM, then SIGKILL after `grace`. Already gone is fine.
pub async fn stop(pgid: i32, start_time: u64, grace: Duration) -> Result<(), String> {
    if pgid <= 1 {
        return Err(format!("refusing to signal process group {pgid}"));
    }
    if state(pgid, start_time) == ProcState::Gone {
        return Ok(());
    }
    let group = Pid::from_raw(pgid);
    match killpg(group, Signal::SIGTERM) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(format!("cannot stop process group {pgid}: {e}")),
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if state(pgid, start_time) == ProcState::Gone {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match killpg(group, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(format!("cannot kill process group {pgid}: {e}")),
    }
}

/// The last `n` lines of a log file (empty when unreadable).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_running_with_its_start_time() {
        let me = std::process::id() as i32;
        let (start, st) = proc_stat(me).unwrap();
        assert_ne!(st, 'Z');
        assert_eq!(state(me, start), ProcState::Running);
        assert_eq!(state(me, start + 1), ProcState::Gone);
    }

    #[test]
    fn tail_takes_the_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&p, 2), ["b", "c"]);
        assert!(tail(&d.path().join("none"), 2).is_empty());
    }
}
