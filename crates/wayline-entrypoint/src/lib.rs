//! `wayline-entrypoint`: the small static supervisor inside every deployment.
//!
//! It runs the app as its child (PID-1 duties included: signal forwarding to the app's process
//! group, zombie reaping, the child's exit code as its own), and, when `WAYLINE_SERVER_ADDR` is
//! set, dials out to the server to register the instance, receive config (env vars, files,
//! dynamic values), ship logs and serve exec sessions, and keeps a tunnel open to the URL
//! service that forwards the deployment's public traffic to the app's `$PORT`. The server being slow, absent or gone
//! never stops or blocks the app.
//!
//! No server-side crates and no CLI parser: the binary's size is measured (see `benches/`).

pub mod backoff;
pub mod child;
pub mod client;
pub mod config;
pub mod dynamic;
pub mod etcd;
pub mod etcd_watch;
pub mod exec;
pub mod logger;
pub mod logs;
pub mod session;
pub mod settings;
pub mod tunnel;
pub mod ulid;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::child::{App, Reaper, parse_signal, spawn_app};
use crate::config::AppConfig;
use crate::logs::LogRing;
use crate::settings::{PRIVATE_VARS, ServerAddr, Settings};

/// How long the app waits for the server's config before starting without it.
pub const FAIL_OPEN_AFTER: Duration = Duration::from_secs(5);

/// Runs the app under supervision until it exits; returns the exit code to exit with.
pub fn run(argv: Vec<OsString>, settings: Settings, logger: &'static logger::Logger) -> i32 {
    // One thread: the app's output is copied by two plain threads, everything else is light.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(supervise(argv, settings, logger))
}

/// The app's env: ours minus the entrypoint's secrets, `PORT`, then the server's variables.
pub fn app_env(base: &BTreeMap<String, String>, cfg: &AppConfig) -> BTreeMap<String, String> {
    let mut env = base.clone();
    env.extend(cfg.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Names (never values: they may be secrets) of the variables that differ.
pub fn changed_names(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> String {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let names: Vec<&str> = keys
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(String::as_str)
        .collect();
    names.join(", ")
}

enum Event {
    Exited(i32),
    Config,
    Signal(Signal),
}

const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGQUIT,
];

fn forward_signals() -> mpsc::UnboundedReceiver<Signal> {
    let (tx, rx) = mpsc::unbounded_channel();
    for sig in FORWARDED {
        match signal(SignalKind::from_raw(sig as i32)) {
            Ok(mut s) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(sig).is_err() {
                            return;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!("cannot handle {sig}: {e}"),
        }
    }
    rx
}

fn is_terminating(sig: Signal) -> bool {
    matches!(sig, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT)
}

async fn supervise(
    argv: Vec<OsString>,
    settings: Settings,
    logger: &'static logger::Logger,
) -> i32 {
    let mut signals = forward_signals();
    let reaper = Reaper::new();
    tokio::spawn(reaper.clone().run());
    let base = base_env(&settings.port);
    let ring = settings
        .server
        .as_ref()
        .map(|_| LogRing::new(settings.log_buffer_lines));
    let (app_env_tx, app_env_rx) = watch::channel(None);
    let (app_cfg_tx, mut app_cfg_rx) = watch::channel::<Option<AppConfig>>(None);
    if let (Some(addr), Some(ring)) = (settings.server.clone(), ring.clone()) {
        logger.ship_to(ring.clone());
        connect(&settings, addr, ring, &reaper, app_cfg_tx, app_env_rx);
        if let Some(code) = first_config(&settings, &mut app_cfg_rx, &mut signals).await {
            return code;
        }
    } else {
        drop(app_cfg_tx);
    }
    let supervisor = Supervisor {
        argv,
        settings,
        reaper,
        ring,
        base,
        app_env: app_env_tx,
    };
    supervisor.run(app_cfg_rx, signals).await
}

/// Our environment minus the entrypoint's secrets, plus the app's `PORT`.
fn base_env(port: &str) -> BTreeMap<String, String> {
    let mut base: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .filter(|(k, _)| !PRIVATE_VARS.contains(&k.as_str()))
        .collect();
    base.insert("PORT".into(), port.to_owned());
    base
}

/// Starts everything that talks to the server, each on its own task (or thread, for the log
/// shipper): the config loop, config errors to the log ring, the log shipper, the URL tunnel
/// and the session (config stream and exec).
fn connect(
    settings: &Settings,
    addr: ServerAddr,
    ring: Arc<LogRing>,
    reaper: &Arc<Reaper>,
    app_cfg: watch::Sender<Option<AppConfig>>,
    app_env: watch::Receiver<Option<BTreeMap<String, String>>>,
) {
    let (server_tx, server_rx) = watch::channel(None);
    let (errors_tx, mut errors_rx) = watch::channel(Vec::new());
    tokio::spawn(config::run(
        server_rx,
        app_cfg,
        errors_tx,
        settings.config_refresh,
    ));
    // Unresolvable values travel to the server with the logs, for the deployment's status.
    tokio::spawn({
        let ring = ring.clone();
        async move {
            while errors_rx.changed().await.is_ok() {
                ring.set_config_errors(errors_rx.borrow_and_update().clone());
            }
        }
    });
    let instance_id = instance_id(std::env::var("WAYLINE_INSTANCE_ID").ok());
    session::spawn_log_shipper(
        settings.clone(),
        addr.clone(),
        instance_id.clone(),
        ring.clone(),
    );
    let (url_tx, url_rx) = watch::channel(None);
    tokio::spawn(tunnel::run(
        addr.clone(),
        settings.deployment_id.clone(),
        instance_id.clone(),
        settings.port.clone(),
        url_rx,
    ));
    let shared = Arc::new(session::Shared {
        settings: settings.clone(),
        url_grant: url_tx,
        instance_id,
        ring,
        reaper: reaper.clone(),
        server_config: server_tx,
        app_env,
    });
    tokio::spawn(session::run(shared, addr));
}

/// Waits for the server's first config, at most [`FAIL_OPEN_AFTER`] unless the server is
/// required; `Some(code)` when a terminating signal came first.
async fn first_config(
    settings: &Settings,
    app_cfg: &mut watch::Receiver<Option<AppConfig>>,
    signals: &mut mpsc::UnboundedReceiver<Signal>,
) -> Option<i32> {
    let first = app_cfg.wait_for(Option::is_some);
    tokio::pin!(first);
    let deadline = tokio::time::sleep(FAIL_OPEN_AFTER);
    tokio::pin!(deadline);
    let mut waited = false;
    loop {
        tokio::select! {
            _ = &mut first => return None,
            () = &mut deadline, if !waited => {
                waited = true;
                if settings.server_required {
                    tracing::warn!(
                        "no config from the server within {}s; the server is required, so the app waits for it",
                        FAIL_OPEN_AFTER.as_secs()
                    );
                    continue;
                }
                tracing::warn!(
                    "no config from the server within {}s; starting the app without it and retrying in the background",
                    FAIL_OPEN_AFTER.as_secs()
                );
                return None;
            }
            Some(sig) = signals.recv() => {
                if is_terminating(sig) {
                    tracing::info!("{sig} before the app started; exiting");
                    return Some(128 + sig as i32);
                }
            }
        }
    }
}

/// The app under supervision: what it is started with, and what restarts it.
struct Supervisor {
    argv: Vec<OsString>,
    settings: Settings,
    reaper: Arc<Reaper>,
    ring: Option<Arc<LogRing>>,
    /// The environment before the server's variables.
    base: BTreeMap<String, String>,
    /// The app's current environment, for exec sessions.
    app_env: watch::Sender<Option<BTreeMap<String, String>>>,
}

/// The running app and the config it was started with.
struct Running {
    app: App,
    env: BTreeMap<String, String>,
    applied: AppConfig,
}

impl Supervisor {
    /// Starts the app and follows it, config changes and signals until it exits.
    async fn run(
        self,
        mut app_cfg: watch::Receiver<Option<AppConfig>>,
        mut signals: mpsc::UnboundedReceiver<Signal>,
    ) -> i32 {
        let applied = app_cfg.borrow_and_update().clone().unwrap_or_default();
        config::write_files(&applied.files);
        let env = app_env(&self.base, &applied);
        let _ = self.app_env.send(Some(env.clone()));
        let app = match self.start(&env) {
            Ok(app) => app,
            Err(code) => return finish(code, self.ring.as_ref()).await,
        };
        let mut running = Running { app, env, applied };
        let mut config_live = self.settings.server.is_some();
        let code = loop {
            let event = tokio::select! {
                code = &mut running.app.exit => Event::Exited(code.unwrap_or(1)),
                r = app_cfg.changed(), if config_live => {
                    if r.is_err() { config_live = false; continue; }
                    Event::Config
                }
                Some(sig) = signals.recv() => Event::Signal(sig),
            };
            match event {
                Event::Exited(code) => {
                    running.app.join_tees().await;
                    break code;
                }
                Event::Signal(sig) => running.app.signal(sig),
                Event::Config => {
                    let next = app_cfg.borrow_and_update().clone().unwrap_or_default();
                    if let Err(code) = self.apply(&mut running, next).await {
                        return finish(code, self.ring.as_ref()).await;
                    }
                }
            }
        };
        tracing::info!(code, "app exited");
        finish(code, self.ring.as_ref()).await
    }

    /// Applies a new config: changed variables restart the app, changed files only are
    /// written and signalled. `Err(code)` when the app cannot be started again.
    async fn apply(&self, running: &mut Running, next: AppConfig) -> Result<(), i32> {
        let next_env = app_env(&self.base, &next);
        if next_env != running.env {
            tracing::info!(
                "config changed ({}); restarting the app",
                changed_names(&running.env, &next_env)
            );
            let old = running.app.stop(self.settings.restart_grace).await;
            tracing::info!(code = old, "app stopped for the restart");
            config::write_files(&next.files);
            running.env = next_env;
            let _ = self.app_env.send(Some(running.env.clone()));
            running.app = self.start(&running.env)?;
        } else if next.files != running.applied.files {
            config::write_files(&next.files);
            match parse_signal(&next.file_change_signal) {
                Some(sig) => {
                    tracing::info!("config files changed; sending {sig} to the app");
                    running.app.signal(sig);
                }
                None => tracing::info!("config files changed (no file_change_signal set)"),
            }
        }
        running.applied = next;
        Ok(())
    }

    fn start(&self, env: &BTreeMap<String, String>) -> Result<App, i32> {
        start(&self.argv, env, &self.reaper, self.ring.as_ref())
    }
}

fn start(
    argv: &[OsString],
    env: &BTreeMap<String, String>,
    reaper: &Reaper,
    ring: Option<&Arc<LogRing>>,
) -> Result<App, i32> {
    spawn_app(reaper, argv, env, ring).map_err(|e| {
        tracing::error!("cannot start {:?}: {e}", argv[0]);
        // The shell's codes: 127 not found, 126 found but not runnable.
        if e.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        }
    })
}

/// Gives the shipper a moment to send the last lines (the crash message matters most).
async fn finish(code: i32, ring: Option<&Arc<LogRing>>) -> i32 {
    if let Some(ring) = ring {
        // Up to 2 s, but not while nothing moves (the server is unreachable).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut last = (ring.len(), tokio::time::Instant::now());
        while !ring.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if ring.len() != last.0 {
                last = (ring.len(), tokio::time::Instant::now());
            } else if last.1.elapsed() > Duration::from_millis(300) {
                break;
            }
        }
        if ring.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_names_lists_added_removed_and_modified() {
        let old = BTreeMap::from([
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "2".to_owned()),
        ]);
        let new = BTreeMap::from([
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "3".to_owned()),
            ("C".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(changed_names(&old, &new), "B, C");
        assert_eq!(changed_names(&new, &old), "B, C");
        assert_eq!(changed_names(&old, &old), "");
    }
}

/// The instance id: `WAYLINE_INSTANCE_ID` when the platform set a usable one (the Swarm platform
/// sets `<service>.<slot>.<task id>@<node>`, unique per task, so logs say where a line came
/// from), else a ULID.
fn instance_id(given: Option<String>) -> String {
    match given {
        Some(g)
            if !g.is_empty()
                && g.len() <= 100
                && g.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c)) =>
        {
            g
        }
        _ => ulid::new_ulid(),
    }
}

#[cfg(test)]
mod instance_id_tests {
    use super::instance_id;

    #[test]
    fn a_platform_given_id_is_kept_and_a_bad_one_ignored() {
        let id = instance_id(Some("web-v1.2@swl-n2".into()));
        assert_eq!(id, "web-v1.2@swl-n2");
        assert_eq!(instance_id(Some("a b".into())).len(), 26);
        assert_eq!(instance_id(None).len(), 26);
    }
}
