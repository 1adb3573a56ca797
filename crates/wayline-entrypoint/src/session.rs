//! The link to the server: dial, register the instance through the config stream, ship logs,
//! start exec sessions; on any failure, retry with jittered exponential backoff. The app never
//! waits on any of this.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use wayline_proto::v1::EntrypointConfigRequest;

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
    /// The app's current full env, which exec sessions run with.
    pub app_env: watch::Receiver<BTreeMap<String, String>>,
}

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Stays connected for the life of the process.
pub async fn run(shared: Arc<Shared>, addr: ServerAddr) {
    let mut backoff = MIN_BACKOFF;
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let result = session(&shared, &addr).await;
        // A session that lived a while was healthy: start the backoff over.
        if started.elapsed() > Duration::from_secs(10) {
            backoff = MIN_BACKOFF;
            failures = 0;
        }
        failures += 1;
        let wait = jitter(backoff);
        match result {
            Ok(()) => tracing::warn!("server closed the config stream; reconnecting in {wait:?}"),
            // Say it once loudly, then quietly until it works again.
            Err(e) if failures <= 1 => {
                tracing::warn!("server {addr} unreachable: {e}; retrying in {wait:?}");
            }
            Err(e) => tracing::debug!("server {addr} still unreachable: {e}; retrying in {wait:?}"),
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Between 50% and 100% of `d`, so a fleet restarted together doesn't reconnect in step.
pub fn jitter(d: Duration) -> Duration {
    let r = crate::ulid::random_u64() % 1000;
    d.mul_f64(0.5 + r as f64 / 2000.0)
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

    let (log_tx, log_rx) = mpsc::channel(8);
    let mut logs_client = client.clone();
    let log_call = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = logs_client
            .entrypoint_log_stream(ReceiverStream::new(log_rx))
            .await
        {
            tracing::debug!(error = %e, "log stream ended");
        }
    }));
    let shipper = AbortOnDrop(tokio::spawn(ship(
        shared.ring.clone(),
        log_tx,
        s.deployment_id.clone(),
        shared.instance_id.clone(),
    )));

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
        for request in &cfg.exec {
            if seen_exec.insert(request.index) {
                if s.disable_exec {
                    tracing::warn!(index = request.index, "exec requested but disabled here");
                    continue;
                }
                let env = shared.app_env.borrow().clone();
                tokio::spawn(crate::exec::run(
                    client.clone(),
                    shared.instance_id.clone(),
                    request.clone(),
                    env,
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
        if log_call.0.is_finished() || shipper.0.is_finished() {
            return Err("log stream closed".into());
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
