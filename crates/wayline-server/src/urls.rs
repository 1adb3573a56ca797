//! What the URL service routes, computed from the catalog: one route per deployment that is not
//! destroyed, the live release's deployment weighted 100, hosts assigned in order of first
//! deployment. Recomputed (coalesced) after every deployment or release write, and published
//! on a watch channel the URL service reads. Also mints each deployment's URL token and fills
//! `public_url` on the records the API returns.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use wayline_core::url::{AppKey, UrlRoute, assign_hosts, deployment_label, preferred_host};
use wayline_proto::v1 as pb;

use crate::store::{OperationFilter, OperationTarget, Store, StoreError};

/// The URL service the server runs beside it (the CLI starts it; the server describes it).
#[derive(Debug, Clone)]
pub struct UrlOptions {
    /// Apps answer under this domain (`localhost` for a local server).
    pub domain: String,
    /// The ingress port printed in URLs.
    pub port: u16,
    /// The tunnel socket entrypoints dial; it must be in the unix socket's directory.
    pub tunnel_socket: PathBuf,
}

/// The URL service's health check, which the process running it plugs in.
#[tonic::async_trait]
pub trait UrlHealth: Send + Sync + 'static {
    /// `Ok(summary)` once deployment `id` answers `path` (empty: `/`, any answer), waiting at
    /// most `within`; else what the last attempt saw.
    async fn check(&self, id: &str, path: &str, within: Duration) -> Result<String, String>;
}

/// The URL service's per-host figures, which the process running it plugs in; the server
/// adds them to its `/metrics`.
pub trait UrlMetrics: Send + Sync + 'static {
    /// OpenMetrics families, without the closing `# EOF`.
    fn render(&self) -> String;
}

/// `CheckDeploymentHealth`: bounded, and `checked: false` without a URL service.
pub(crate) async fn check_health(
    shared: &crate::service::Shared,
    req: pb::CheckDeploymentHealthRequest,
) -> Result<pb::CheckDeploymentHealthResponse, tonic::Status> {
    if req.path.len() > 1024 || !(req.path.is_empty() || req.path.starts_with('/')) {
        return Err(tonic::Status::invalid_argument(
            "path must be empty or start with `/`, at most 1024 bytes",
        ));
    }
    if req.timeout_seconds > 600 {
        return Err(tonic::Status::invalid_argument(
            "timeout_seconds is at most 600",
        ));
    }
    let Some(h) = shared.urls.health.get().cloned() else {
        return Ok(pb::CheckDeploymentHealthResponse::default());
    };
    if !expects_route(shared, &req.deployment_id).await {
        return Ok(pb::CheckDeploymentHealthResponse {
            checked: true,
            error: String::new(),
            summary: NOTHING_TO_ROUTE.to_owned(),
        });
    }
    let within = Duration::from_secs(u64::from(req.timeout_seconds.max(1)));
    let result = h.check(&req.deployment_id, &req.path, within).await;
    let (summary, error) = match result {
        Ok(s) => (s, String::new()),
        Err(e) => (String::new(), e),
    };
    Ok(pb::CheckDeploymentHealthResponse {
        checked: true,
        error,
        summary,
    })
}

/// The summary of a check there is nothing to send to: releasing such a deployment moves no
/// traffic, so it is not held up.
const NOTHING_TO_ROUTE: &str = "not checked: the platform reported no address and no entrypoint of this deployment is connected, so the URL service has nothing to route to";

/// Whether the URL service can expect to route deployment `id`: its platform reported an
/// address, or one of its entrypoints is connected (its tunnel follows). A one-shot `exec`
/// deployment has neither, and waiting for a tunnel that never comes would hold its release up
/// for the URL service's whole grace. A deployment the store does not know yet is given the
/// benefit of the doubt.
async fn expects_route(shared: &crate::service::Shared, id: &str) -> bool {
    if id.is_empty() {
        return true;
    }
    let record = shared
        .store
        .get_operation(
            pb::OperationKind::Deployment as i32,
            OperationTarget::Id(id.to_owned()),
        )
        .await;
    match record {
        Ok(Some(d)) => !d.url.is_empty() || !shared.hub.list_instances(&[id.to_owned()]).is_empty(),
        _ => true,
    }
}

/// The routes and the hosts behind them.
pub(crate) struct UrlRoutes {
    pub(crate) opts: Option<UrlOptions>,
    pub(crate) health: std::sync::OnceLock<Arc<dyn UrlHealth>>,
    pub(crate) metrics: std::sync::OnceLock<Arc<dyn UrlMetrics>>,
    pub(crate) tunnels: std::sync::OnceLock<Arc<dyn crate::url_tunnels::UrlTunnels>>,
    tx: watch::Sender<Arc<Vec<UrlRoute>>>,
    dirty: Notify,
    hosts: RwLock<BTreeMap<AppKey, String>>,
    tokens: Mutex<HashMap<String, String>>,
}

fn key_of(op: &pb::Operation) -> AppKey {
    let app = op.application.clone().unwrap_or_default();
    AppKey {
        project: app.project,
        app: app.application,
        workspace: if op.workspace.is_empty() {
            wayline_core::url::DEFAULT_WORKSPACE.to_owned()
        } else {
            op.workspace.clone()
        },
    }
}

impl UrlRoutes {
    pub(crate) fn new(opts: Option<UrlOptions>) -> Self {
        Self {
            opts,
            health: std::sync::OnceLock::new(),
            metrics: std::sync::OnceLock::new(),
            tunnels: std::sync::OnceLock::new(),
            tx: watch::channel(Arc::new(Vec::new())).0,
            dirty: Notify::new(),
            hosts: RwLock::new(BTreeMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The routes, as they change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Vec<UrlRoute>>> {
        self.tx.subscribe()
    }

    /// Something routes depend on changed: recompute soon.
    pub(crate) fn touch(&self) {
        self.dirty.notify_one();
    }

    /// The app's host: the assigned one, else the one it will get when nobody holds it.
    pub(crate) fn host_of(&self, op: &pb::Operation) -> String {
        let key = key_of(op);
        self.hosts
            .read()
            .expect("hosts")
            .get(&key)
            .cloned()
            .unwrap_or_else(|| preferred_host(&key))
    }

    /// A remembered token for the deployment, or none yet.
    pub(crate) fn cached_token(&self, deployment_id: &str) -> Option<String> {
        self.tokens
            .lock()
            .expect("tokens")
            .get(deployment_id)
            .cloned()
    }

    pub(crate) fn remember_token(&self, deployment_id: &str, token: &str) {
        let mut t = self.tokens.lock().expect("tokens");
        // Bounded: a server with more live deployments than this mints again, nothing breaks.
        if t.len() >= 10_000 {
            t.clear();
        }
        t.insert(deployment_id.to_owned(), token.to_owned());
    }

    /// Fills `public_url` of a deployment, or of a release that is live.
    pub(crate) fn decorate(&self, op: &mut pb::Operation) {
        let Some(o) = &self.opts else { return };
        let kind = pb::OperationKind::try_from(op.kind).unwrap_or(pb::OperationKind::Unspecified);
        let host = self.host_of(op);
        op.public_url = match kind {
            pb::OperationKind::Deployment
                if op.physical_state != pb::PhysicalState::Destroyed as i32 =>
            {
                format!(
                    "http://{}.{}:{}/",
                    deployment_label(&host, op.sequence),
                    o.domain,
                    o.port
                )
            }
            pb::OperationKind::Release if op.live => {
                format!("http://{host}.{}:{}/", o.domain, o.port)
            }
            _ => return,
        };
    }

    /// Fills a canary's `public_url`: its app host.
    pub(crate) fn decorate_canary(&self, c: &mut pb::Canary) {
        let Some(o) = &self.opts else { return };
        let key = crate::canary::key_of(c);
        let host = self
            .hosts
            .read()
            .expect("hosts")
            .get(&key)
            .cloned()
            .unwrap_or_else(|| preferred_host(&key));
        c.public_url = format!("http://{host}.{}:{}/", o.domain, o.port);
    }

    /// Recomputes and publishes until the stop flag is set.
    pub(crate) async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            match compute(store.as_ref()).await {
                Ok((routes, hosts)) => {
                    *self.hosts.write().expect("hosts") = hosts;
                    self.tx.send_if_modified(|cur| {
                        if **cur == routes {
                            false
                        } else {
                            *cur = Arc::new(routes);
                            true
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot compute the URL routes"),
            }
            tokio::select! {
                () = self.dirty.notified() => {}
                // A safety net for writes that do not touch (e.g. a restored snapshot).
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// The routes of every deployment that is not destroyed, and every app's host.
pub(crate) async fn compute(
    store: &dyn Store,
) -> Result<(Vec<UrlRoute>, BTreeMap<AppKey, String>), StoreError> {
    let deployments = store
        .list_operations(OperationFilter {
            kind: pb::OperationKind::Deployment as i32,
            ascending: true,
            ..Default::default()
        })
        .await?;
    let keys: Vec<AppKey> = deployments.iter().map(key_of).collect();
    let hosts = assign_hosts(keys.iter());
    let mut live: HashMap<AppKey, String> = HashMap::new();
    for key in hosts.keys() {
        let release = store
            .get_operation(
                pb::OperationKind::Release as i32,
                OperationTarget::Live {
                    project: key.project.clone(),
                    app: key.app.clone(),
                    workspace: key.workspace.clone(),
                },
            )
            .await?;
        if let Some(r) = release.filter(|r| !r.deployment_id.is_empty()) {
            live.insert(key.clone(), r.deployment_id);
        }
    }
    let canaries: HashMap<AppKey, pb::Canary> = crate::canary::in_force(store)
        .await?
        .into_iter()
        .map(|c| (crate::canary::key_of(&c), c))
        .collect();
    let routes = deployments
        .iter()
        .zip(&keys)
        .filter(|(d, _)| d.physical_state != pb::PhysicalState::Destroyed as i32)
        .map(|(d, key)| UrlRoute {
            host: hosts[key].clone(),
            sequence: d.sequence,
            deployment_id: d.id.clone(),
            address: d.url.clone(),
            weight: weight(d, live.get(key), canaries.get(key)),
            health_path: String::new(),
            limits: d.url_limits.map(limits_of).unwrap_or_default(),
        })
        .collect();
    Ok((routes, hosts))
}

/// The limits a deployment was made with.
fn limits_of(l: pb::UrlLimits) -> wayline_core::url::UrlLimits {
    wayline_core::url::UrlLimits {
        requests_per_second: l.requests_per_second,
        burst: l.burst,
        bytes_per_second: l.bytes_per_second,
        max_requests: l.max_requests,
    }
}

/// A deployment's share of its app host: all of it for the live release, less a canary's.
fn weight(d: &pb::Operation, live: Option<&String>, canary: Option<&pb::Canary>) -> u32 {
    let canary = canary.filter(|c| live == Some(&c.release_deployment_id));
    match canary {
        Some(c) if c.deployment_id == d.id => c.weight.min(100),
        Some(c) if live == Some(&d.id) => 100 - c.weight.min(100),
        _ if live == Some(&d.id) => 100,
        _ => 0,
    }
}
