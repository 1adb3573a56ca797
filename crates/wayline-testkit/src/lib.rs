//! Test support for the workspace's tests, one copy of each helper (dev-dependency only, never
//! published):
//!
//! - [`wait_for`] / [`wait_for_async`] and [`eventually`] / [`eventually_async`]: wait on a
//!   condition itself, bounded, instead of sleeping and hoping; the `wait_for` forms hand back
//!   what the probe last saw so a failing test can say it.
//! - [`Need`] with [`skip`], [`tool`], [`docker_engine`] and [`docker_ready`]: tests that need
//!   Docker, etcd, sshd, Chromium or the Swarm fixture skip with a printed reason on a machine
//!   without them, and fail instead when CI sets `WAYLINE_REQUIRE_<NEED>=1`.
//! - [`TempHome`]: an empty home and project folder in which to run the real binaries, and
//!   [`git`] to commit in it as a fixed author.

mod home;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use home::{TempHome, git};

/// How often the waits look at their condition.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it gives `Ok`, for at most `limit` (it runs at least once, and once more
/// at the deadline). On timeout, `Err` holds what the probe last saw.
pub fn wait_for<T, L>(limit: Duration, mut probe: impl FnMut() -> Result<T, L>) -> Result<T, L> {
    let deadline = Instant::now() + limit;
    loop {
        let seen = probe();
        if seen.is_ok() || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(POLL);
    }
}

/// Whether `cond` became true within `limit`, polling.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    wait_for(limit, || if cond() { Ok(()) } else { Err(()) }).is_ok()
}

/// [`wait_for`] for async probes. Uses tokio's clock, so it also works under
/// `#[tokio::test(start_paused = true)]`.
pub async fn wait_for_async<T, L, F>(limit: Duration, mut probe: impl FnMut() -> F) -> Result<T, L>
where
    F: Future<Output = Result<T, L>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let seen = probe().await;
        if seen.is_ok() || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the async `cond` became true within `limit`, polling.
pub async fn eventually_async<F>(limit: Duration, mut cond: impl FnMut() -> F) -> bool
where
    F: Future<Output = bool>,
{
    wait_for_async(limit, || {
        let f = cond();
        async move { if f.await { Ok(()) } else { Err(()) } }
    })
    .await
    .is_ok()
}

/// Something a test needs from the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A Docker engine (and, for end-to-end tests, the static entrypoint).
    Docker,
    /// An `etcd` binary (Debian's `etcd-server`).
    Etcd,
    /// An OpenSSH server binary.
    Sshd,
    /// Chromium and chromedriver.
    Chromium,
    /// The three-node Swarm fixture (`sudo scripts/swarm-fixture.sh up`).
    Swarm,
    /// The corpus of real `waypoint.hcl` files.
    Corpus,
}

impl Need {
    /// The variable that, set to `1`, turns a skip into a failure.
    pub fn require_var(self) -> &'static str {
        match self {
            Need::Docker => "WAYLINE_REQUIRE_DOCKER",
            Need::Etcd => "WAYLINE_REQUIRE_ETCD",
            Need::Sshd => "WAYLINE_REQUIRE_SSHD",
            Need::Chromium => "WAYLINE_REQUIRE_CHROMIUM",
            Need::Swarm => "WAYLINE_REQUIRE_SWARM",
            Need::Corpus => "WAYLINE_REQUIRE_CORPUS",
        }
    }

    /// Whether this run must have it (`WAYLINE_REQUIRE_<NEED>=1`).
    pub fn required(self) -> bool {
        std::env::var(self.require_var()).is_ok_and(|v| v == "1")
    }
}

/// Skips `test` for want of `need`: prints `skipping <test>: <reason>` and returns `false`, or
/// panics with the reason when the run requires `need`.
pub fn skip(test: &str, need: Need, reason: &str) -> bool {
    assert!(
        !need.required(),
        "{test}: {}=1 but {reason}",
        need.require_var()
    );
    eprintln!(
        "skipping {test}: {reason} (set {}=1 to fail instead)",
        need.require_var()
    );
    false
}

/// The first of `candidates` that exists (absolute paths as they are, bare names looked up on
/// `PATH`), or `None` after [`skip`] with `reason`.
pub fn tool(test: &str, need: Need, candidates: &[&str], reason: &str) -> Option<PathBuf> {
    let found = candidates.iter().find_map(|c| find_program(c));
    if found.is_none() {
        skip(test, need, reason);
    }
    found
}

fn find_program(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(name);
    if p.is_absolute() {
        return p.is_file().then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether a Docker engine answers `docker info`; otherwise skips (or fails, see [`skip`]).
pub fn docker_engine(test: &str) -> bool {
    let answers = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    answers || skip(test, Need::Docker, "no Docker engine answers `docker info`")
}

/// Whether end-to-end Docker tests can run: an engine answers and `WAYLINE_ENTRYPOINT_BINARY`
/// names the static entrypoint; otherwise skips (or fails, see [`skip`]).
pub fn docker_ready(test: &str) -> bool {
    docker_engine(test)
        && (std::env::var_os("WAYLINE_ENTRYPOINT_BINARY").is_some()
            || skip(
                test,
                Need::Docker,
                "WAYLINE_ENTRYPOINT_BINARY is not set (scripts/build-entrypoint.sh builds it)",
            ))
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

#[cfg(test)]
mod tests;
