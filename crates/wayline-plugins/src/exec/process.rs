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

/// Fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses).
fn stat_fields(path: &Path) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// `starttime` from `/proc/<pid>/stat` (clock ticks since boot) and the state letter; `None`
/// when there is no such process.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let fields = stat_fields(Path::new(&format!("/proc/{pid}/stat")))?;
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// Whether any process of group `pgid` is alive (zombies do not count: they have exited and
/// only wait to be reaped).
fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        // No procfs: fall back to asking the kernel, zombies included.
        return killpg(Pid::from_raw(pgid), None).is_ok();
    };
    let pgid = pgid.to_string();
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| stat_fields(&e.path().join("stat")))
        .any(|f| {
            f.get(2) == Some(&pgid) && !matches!(f.first().map(String::as_str), Some("Z" | "X"))
        })
}

/// Whether process group `pgid`, whose leader started at `start_time`, still runs.
pub fn state(pgid: i32, start_time: u64) -> ProcState {
    match proc_stat(pgid) {
        // The pid was reused by another process; a pid is never reused while it names a live
        // process group, so ours is gone.
        Some((st, _)) if st != start_time => ProcState::Gone,
        // The leader (alive, a zombie, or gone) started the group; any live member is ours.
        _ if group_alive(pgid) => ProcState::Running,
        _ => ProcState::Gone,
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

    #[tokio::test]
    async fn a_group_runs_until_stopped() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 300 & sleep 300"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let (start, st) = proc_stat(pid).unwrap();
        assert_ne!(st, 'Z');
        assert_eq!(state(pid, start), ProcState::Running);
        // A different start time means the pid is someone else's now.
        assert_eq!(state(pid, start + 1), ProcState::Gone);
        stop(pid, start, Duration::from_secs(5)).await.unwrap();
        // The leader is a zombie until reaped, and that still counts as gone.
        assert_eq!(state(pid, start), ProcState::Gone);
        child.wait().unwrap();
        assert_eq!(state(pid, start), ProcState::Gone);
        stop(pid, start, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            stop(1, 0, Duration::ZERO).await.unwrap_err(),
            "refusing to signal process group 1"
        );
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
