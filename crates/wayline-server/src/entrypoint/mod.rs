//! The server side of the entrypoint: an in-memory hub of connected instances, their rolling log
//! windows, live log followers and exec routing.
//!
//! The tonic service authenticates, maps the request to deployment ids and calls the hub. Nothing
//! here is persisted: instances exist while their config stream lives (as in Waypoint, where
//! instances, exec sessions and log buffers live in memdb only).
//!
//! This module uses nothing else from the server crate, so the entrypoint's tests compile it on
//! its own (`#[path]`) behind a small tonic harness and run the real binary against it.

mod exec;
mod follow;
mod logs;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_isolation;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use futures::stream::BoxStream;
use tokio::sync::{Notify, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use wayline_proto::prost_types::Timestamp;
use wayline_proto::v1::{
    ConfigSource, ConfigVar, EntrypointConfig, EntrypointConfigRequest, EntrypointConfigResponse,
    Instance, entrypoint_config::ExecRequest, r#ref,
};

pub use self::logs::format_dropped;

/// Tuning of the hub.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Lines kept per instance (the rolling window `wayline logs` shows without `-since`).
    pub log_window_lines: usize,
    /// Bytes kept per instance: the window holds at most this much text, whatever its line
    /// count (a flood of 3 MB lines must not grow the server by gigabytes).
    pub log_window_bytes: usize,
    /// Longest line kept; longer ones are cut there and end with a marker saying so.
    pub max_log_line_bytes: usize,
    /// Windows kept in all; beyond it the windows of disconnected instances go, oldest first.
    pub max_log_windows: usize,
    /// Instances (connected, or with a kept log window) one deployment may have: one token
    /// inventing instance ids cannot fill the server's windows.
    pub max_instances_per_deployment: usize,
    /// Log-window bytes kept in all; beyond it the windows of disconnected instances go,
    /// oldest first.
    pub max_log_bytes_total: usize,
    /// How long an exec waits for an instance to exist and then to open its session.
    pub exec_timeout: Duration,
    /// Live batches buffered per follower; beyond it a slow follower loses batches and is
    /// told how many lines it lost.
    pub follow_buffer: usize,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            log_window_lines: 10_000,
            log_window_bytes: 2 * 1024 * 1024,
            max_log_line_bytes: 16 * 1024,
            max_log_windows: 1024,
            max_instances_per_deployment: 64,
            max_log_bytes_total: 256 * 1024 * 1024,
            exec_timeout: Duration::from_secs(10),
            follow_buffer: 4096,
        }
    }
}

/// The app an instance belongs to, for `ListInstances`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppRef {
    /// Project name.
    pub project: String,
    /// Application name.
    pub app: String,
    /// Workspace name.
    pub workspace: String,
}

/// Resolves a deployment's config (scopes, workspace and labels applied) for its entrypoints.
#[tonic::async_trait]
pub trait ConfigResolver: Send + Sync {
    /// The variables (env and files) for the deployment; dynamic values stay unresolved.
    async fn resolve(&self, deployment_id: &str) -> Result<Vec<ConfigVar>, Status>;

    /// Config sources (e.g. the etcd endpoints) the entrypoint needs for dynamic values.
    async fn sources(&self, _deployment_id: &str) -> Result<Vec<ConfigSource>, Status> {
        Ok(Vec::new())
    }

    /// The signal sent to the app when only config files changed (e.g. `SIGHUP`).
    async fn file_change_signal(&self, _deployment_id: &str) -> Result<String, Status> {
        Ok(String::new())
    }

    /// The URL-service tunnel token and socket name, when the server runs a URL service.
    async fn url_tunnel(&self, _deployment_id: &str) -> Result<Option<(String, String)>, Status> {
        Ok(None)
    }
}

/// The entrypoint hub. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct EntrypointHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EntrypointHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntrypointHub")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

struct Inner {
    opts: HubOptions,
    state: Mutex<State>,
    /// Bumped by `config_changed`; every config stream re-resolves.
    config_epoch: watch::Sender<u64>,
    /// Bumped whenever an instance comes or goes (exec waits on it).
    registry_epoch: watch::Sender<u64>,
}

struct State {
    instances: HashMap<String, Inst>,
    windows: HashMap<String, logs::LogWindow>,
    /// Text bytes in all `windows`, kept under `HubOptions::max_log_bytes_total`.
    window_bytes: usize,
    /// Live log followers.
    followers: follow::Followers,
    next_conn: u64,
    next_exec: i64,
    pending: HashMap<i64, exec::Pending>,
    /// Unresolvable config values by (deployment, instance), as last reported on a log stream.
    config_errors: HashMap<(String, String), ConfigErrors>,
    next_log_stream: u64,
}

/// An instance's config errors and the log stream that reported them: they last as long as
/// that stream (a reconnecting entrypoint reports its current set again).
struct ConfigErrors {
    stream: u64,
    errors: Vec<String>,
}

struct Inst {
    info: Instance,
    /// Which config stream owns the registration (a reconnect replaces an old one).
    conn: u64,
    wake: Arc<Notify>,
    execs: Vec<ExecRequest>,
}

impl EntrypointHub {
    /// An empty hub.
    pub fn new(opts: HubOptions) -> Self {
        EntrypointHub {
            inner: Arc::new(Inner {
                opts,
                state: Mutex::new(State {
                    instances: HashMap::new(),
                    windows: HashMap::new(),
                    window_bytes: 0,
                    followers: follow::Followers::default(),
                    next_conn: 0,
                    next_exec: 0,
                    pending: HashMap::new(),
                    config_errors: HashMap::new(),
                    next_log_stream: 0,
                }),
                config_epoch: watch::channel(0).0,
                registry_epoch: watch::channel(0).0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes every config stream re-resolve its config and push it if it changed. Call after
    /// `SetConfig`, `SetConfigSource`, or anything else that changes resolved config.
    pub fn config_changed(&self) {
        self.inner.config_epoch.send_modify(|e| *e += 1);
    }

    /// The instances of `deployment_ids` (all instances when empty), oldest connection first,
    /// each with the config values it last reported it cannot resolve.
    pub fn list_instances(&self, deployment_ids: &[String]) -> Vec<Instance> {
        let state = self.state();
        let mut out: Vec<Instance> = state
            .instances
            .values()
            .filter(|i| deployment_ids.is_empty() || deployment_ids.contains(&i.info.deployment_id))
            .map(|i| {
                let key = (i.info.deployment_id.clone(), i.info.id.clone());
                Instance {
                    config_errors: state
                        .config_errors
                        .get(&key)
                        .map(|c| c.errors.clone())
                        .unwrap_or_default(),
                    ..i.info.clone()
                }
            })
            .collect();
        out.sort_by(|a, b| {
            let key = |i: &Instance| i.connected_time.map(|t| (t.seconds, t.nanos));
            key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
        });
        out
    }

    /// Serves an entrypoint's `EntrypointConfig` stream: registers the instance for as long as
    /// the stream lives and pushes its config, again whenever config or its exec requests
    /// change. `deployment_id` is the one the caller's token is for.
    pub async fn entrypoint_config(
        &self,
        deployment_id: String,
        req: EntrypointConfigRequest,
        app: AppRef,
        resolver: Arc<dyn ConfigResolver>,
    ) -> Result<BoxStream<'static, Result<EntrypointConfigResponse, Status>>, Status> {
        if !req.deployment_id.is_empty() && req.deployment_id != deployment_id {
            return Err(Status::permission_denied(format!(
                "this entrypoint token is for deployment {deployment_id}, not {}",
                req.deployment_id
            )));
        }
        if req.instance_id.is_empty() {
            return Err(Status::invalid_argument("instance_id is required"));
        }
        let mut config = resolve(&*resolver, &deployment_id).await?;
        let wake = Arc::new(Notify::new());
        let conn = self.register_instance(&deployment_id, &req, app, &wake)?;
        self.inner.registry_epoch.send_modify(|e| *e += 1);
        tracing::info!(instance = %req.instance_id, deployment = %deployment_id, "entrypoint connected");

        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let hub = self.clone();
        let instance_id = req.instance_id;
        let mut epoch = self.inner.config_epoch.subscribe();
        tokio::spawn(async move {
            let _registration = Registration {
                hub: hub.clone(),
                instance_id: instance_id.clone(),
                conn,
            };
            let mut last: Option<EntrypointConfig> = None;
            loop {
                config.exec = hub
                    .state()
                    .instances
                    .get(&instance_id)
                    .map(|i| i.execs.clone())
                    .unwrap_or_default();
                if last.as_ref() != Some(&config) {
                    let msg = EntrypointConfigResponse {
                        config: Some(config.clone()),
                    };
                    if tx.send(Ok(msg)).await.is_err() {
                        return;
                    }
                    last = Some(config.clone());
                }
                tokio::select! {
                    () = tx.closed() => return,
                    () = wake.notified() => {}
                    r = epoch.changed() => {
                        if r.is_err() {
                            return;
                        }
                        match resolve(&*resolver, &deployment_id).await {
                            Ok(c) => config = EntrypointConfig { exec: config.exec, ..c },
                            Err(e) => tracing::warn!(deployment = %deployment_id, error = %e, "cannot resolve config"),
                        }
                    }
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// Registers the instance of `req` for `deployment_id` (its id not another deployment's,
    /// within the per-deployment limit; a reconnect takes over its old entry); the connection
    /// number its stream's cleanup is keyed by.
    fn register_instance(
        &self,
        deployment_id: &str,
        req: &EntrypointConfigRequest,
        app: AppRef,
        wake: &Arc<Notify>,
    ) -> Result<u64, Status> {
        let mut state = self.state();
        // An instance id belongs to the deployment that registered it (while it is
        // connected or its log window is kept): another deployment's token cannot take
        // it over.
        let owner = state
            .instances
            .get(&req.instance_id)
            .map(|i| i.info.deployment_id.as_str())
            .or_else(|| {
                state
                    .windows
                    .get(&req.instance_id)
                    .map(logs::LogWindow::deployment_id)
            });
        if let Some(owner) = owner.filter(|o| *o != deployment_id) {
            tracing::warn!(instance = %req.instance_id, deployment = %deployment_id, owner, "instance id of another deployment refused");
            return Err(Status::permission_denied(format!(
                "instance {} belongs to another deployment, not {deployment_id}",
                req.instance_id
            )));
        }
        if !state.instances.contains_key(&req.instance_id) {
            let max = self.inner.opts.max_instances_per_deployment.max(1);
            let n = state
                .instances
                .values()
                .filter(|i| i.info.deployment_id == deployment_id)
                .count();
            if n >= max {
                return Err(too_many_instances(deployment_id, max));
            }
        }
        state.next_conn += 1;
        let conn = state.next_conn;
        let info = Instance {
            id: req.instance_id.clone(),
            deployment_id: deployment_id.to_owned(),
            application: Some(r#ref::Application {
                project: app.project,
                application: app.app,
            }),
            workspace: app.workspace,
            exec_disabled: req.exec_disabled,
            active_execs: 0,
            connected_time: Some(now()),
            config_errors: Vec::new(),
        };
        // A reconnect with the same id takes over; its old stream's cleanup leaves it be.
        let execs = state
            .instances
            .remove(&req.instance_id)
            .map(|i| i.execs)
            .unwrap_or_default();
        state.instances.insert(
            req.instance_id.clone(),
            Inst {
                info,
                conn,
                wake: Arc::clone(wake),
                execs,
            },
        );
        Ok(conn)
    }
}

async fn resolve(
    resolver: &dyn ConfigResolver,
    deployment_id: &str,
) -> Result<EntrypointConfig, Status> {
    let (url_token, url_socket_name) = resolver
        .url_tunnel(deployment_id)
        .await?
        .unwrap_or_default();
    Ok(EntrypointConfig {
        config_vars: resolver.resolve(deployment_id).await?,
        config_sources: resolver.sources(deployment_id).await?,
        file_change_signal: resolver.file_change_signal(deployment_id).await?,
        url_token,
        url_socket_name,
        ..EntrypointConfig::default()
    })
}

/// Removes the instance when its config stream ends, unless a newer stream took it over.
struct Registration {
    hub: EntrypointHub,
    instance_id: String,
    conn: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let removed = {
            let mut state = self.hub.state();
            if state
                .instances
                .get(&self.instance_id)
                .is_some_and(|i| i.conn == self.conn)
            {
                state.instances.remove(&self.instance_id);
                // Exec sessions still waiting for this instance fail now rather than time out.
                state
                    .pending
                    .retain(|_, p| p.instance_id != self.instance_id);
                true
            } else {
                false
            }
        };
        if removed {
            self.hub.inner.registry_epoch.send_modify(|e| *e += 1);
            tracing::info!(instance = %self.instance_id, "entrypoint disconnected");
        }
    }
}

fn too_many_instances(deployment_id: &str, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "deployment {deployment_id} already has {max} instances; the limit is {max} instances per deployment"
    ))
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}
