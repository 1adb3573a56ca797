//! The link to the server: dial, register the instance through the config stream, ship logs,
//! start exec sessions; on any failure, retry with jittered exponential backoff. The app never
//! waits on any of this.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use wayline_proto::v1::EntrypointConfigRequest;

use crate::backoff::{Backoff, SERVER_MAX};
use crate::child::Reaper;
use crate::config::ServerConfig;
use crate::logs::{LogRing, ship};
use crate::settings::{ServerAddr, Settings};

/// What the session shares with the rest of the entrypoint.
#[derive(Debug)]
pub struct Shared {
    /// Parsed environment.
    pub settings: Settings,
    /// This instance's id, a new ULID per process.
    pub instance_id: String,
    /// Log lines waiting to be shipped.
    pub ring: Arc<LogRing>,
    /// Reaps exec children too.
    pub reaper: Arc<Reaper>,
    /// Latest config from the server.
    pub server_config: watch::Sender<Option<ServerConfig>>,
    /// The URL-service grant the server sent last.
    pub url_grant: watch::Sender<Option<crate::tunnel::UrlGrant>>,
    /// The app's current full env, which exec sessions run with; `None` until the app was
    /// started with the server's first config.
    pub app_env: watch::Receiver<Option<BTreeMap<String, String>>>,
}

/// Stays connected for the life of the process.
pub async fn run(shared: Arc<Shared>, addr: ServerAddr) {
    let mut backoff = Backoff::up_to(SERVER_MAX);
    loop {
        let started = Instant::now();
        let result = session(&shared, &addr).await;
        let (wait, first) = backoff.after_session(started);
        match result {
            Ok(()) => tracing::warn!("server closed the config stream; reconnecting in {wait:?}"),
            // Say it once loudly, then quietly until it works again.
            Err(e) if first => {
                tracing::warn!("server {addr} unreachable: {e}; retrying in {wait:?}");
            }
            Err(e) => tracing::debug!("server {addr} still unreachable: {e}; retrying in {wait:?}"),
        }
        tokio::time::sleep(wait).await;
    }
}

async fn session(shared: &Arc<Shared>, addr: &ServerAddr) -> Result<(), String> {
    let s = &shared.settings;
    let client = crate::client::connect(addr, &s.token)
        .await
        .map_err(|e| e.to_string())?;
    let mut config = client
        .clone()
        .entrypoint_config(EntrypointConfigRequest {
            deployment_id: s.deployment_id.clone(),
            instance_id: shared.instance_id.clone(),
            exec_disabled: s.disable_exec,
        })
        .await
        .map_err(|e| e.message().to_owned())?
        .into_inner();

    let mut announced = false;
    let mut seen_exec: HashSet<i64> = HashSet::new();
    loop {
        let msg = match config.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.message().to_owned()),
        };
        if !announced {
            tracing::info!(instance = %shared.instance_id, "connected to the server at {addr}");
            announced = true;
        }
        let cfg = msg.config.unwrap_or_default();
        if !cfg.url_token.is_empty() {
            let grant = crate::tunnel::UrlGrant {
                token: cfg.url_token.clone(),
                socket_name: cfg.url_socket_name.clone(),
            };
            shared.url_grant.send_if_modified(|cur| {
                let changed = cur.as_ref() != Some(&grant);
                if changed {
                    *cur = Some(grant);
                }
                changed
            });
        }
        for request in &cfg.exec {
            if seen_exec.insert(request.index) {
                if s.disable_exec {
                    tracing::warn!(index = request.index, "exec requested but disabled here");
                    continue;
                }
                tokio::spawn(crate::exec::run(
                    client.clone(),
                    shared.instance_id.clone(),
                    request.clone(),
                    shared.app_env.clone(),
                    shared.reaper.clone(),
                ));
            }
        }
        // The server lists an exec until it was opened; forget those it no longer lists.
        seen_exec.retain(|i| cfg.exec.iter().any(|r| r.index == *i));
        let next = ServerConfig::from(&cfg);
        shared.server_config.send_if_modified(|cur| {
            if cur.as_ref() == Some(&next) {
                false
            } else {
                *cur = Some(next);
                true
            }
        });
    }
}

/// Ships logs on a thread of its own, over a connection of its own, at lower CPU priority: when
/// the app and the entrypoint compete for CPU, the app wins and lines are dropped (and counted)
/// rather than the app slowing down. Exec and config stay on the main thread at normal priority
/// (children inherit their spawning thread's priority).
pub fn spawn_log_shipper(
    settings: Settings,
    addr: ServerAddr,
    instance_id: String,
    ring: Arc<LogRing>,
) {
    let spawned = std::thread::Builder::new()
        .name("log-shipper".into())
        .spawn(move || {
            #[allow(unsafe_code)]
            // SAFETY: plain syscall with integer arguments; `0` targets the calling thread.
            let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("cannot start the log shipper: {e}");
                    return;
                }
            };
            rt.block_on(ship_logs(settings, addr, instance_id, ring));
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the log shipper: {e}");
    }
}

async fn ship_logs(settings: Settings, addr: ServerAddr, instance_id: String, ring: Arc<LogRing>) {
    let mut backoff = Backoff::up_to(SERVER_MAX);
    loop {
        let started = Instant::now();
        if let Ok(mut client) = crate::client::connect(&addr, &settings.token).await {
            let (tx, rx) = mpsc::channel(8);
            let shipper = tokio::spawn(ship(
                ring.clone(),
                tx,
                settings.deployment_id.clone(),
                instance_id.clone(),
            ));
            // Unreachable servers are reported by the config session; stay quiet here.
            if let Err(e) = client.entrypoint_log_stream(ReceiverStream::new(rx)).await {
                tracing::debug!(error = %e, "log stream ended");
            }
            shipper.abort();
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff.reset();
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
