//! The state every RPC shares: store, tokens, queue, runners, the entrypoint hub and caches.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tonic::Status;
use wayline_proto::v1 as pb;

use super::access::Metrics;
use super::store_status;
use crate::auth::{Claims, TokenKind, Tokens};
use crate::queue::{Queue, Timeouts};
use crate::runners::Runners;
use crate::store::Store;

/// Settings the service needs from [`crate::ServerOptions`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) db_path: PathBuf,
    pub(crate) advertise_addr: String,
    pub(crate) unix_socket: Option<PathBuf>,
    pub(crate) tls: bool,
}

/// State shared by every RPC.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: Tokens,
    pub(crate) queue: Arc<Queue>,
    pub(crate) runners: Arc<Runners>,
    pub(crate) metrics: Metrics,
    pub(crate) settings: Settings,
    pub(crate) timeouts: Timeouts,
    /// Connected entrypoints, log windows and exec routing.
    pub(crate) hub: crate::entrypoint::EntrypointHub,
    /// Cached copy of every config var; `None` after a change until the next read.
    config_cache: RwLock<Option<Arc<Vec<pb::ConfigVar>>>>,
    next_conn: AtomicU64,
}

impl Shared {
    /// Builds the shared state; the caller loads the queue.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        tokens: Tokens,
        runners: Arc<Runners>,
        settings: Settings,
        timeouts: Timeouts,
        hub: crate::entrypoint::EntrypointHub,
    ) -> Arc<Self> {
        let queue = Queue::new(Arc::clone(&store), Arc::clone(&runners), timeouts);
        Arc::new(Self {
            store,
            tokens,
            queue,
            runners,
            metrics: Metrics::default(),
            settings,
            timeouts,
            hub,
            config_cache: RwLock::new(None),
            next_conn: AtomicU64::new(0),
        })
    }

    pub(super) fn conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Every stored config var (cached until the next SetConfig).
    pub(crate) async fn config_vars(&self) -> Result<Arc<Vec<pb::ConfigVar>>, Status> {
        if let Some(c) = self.config_cache.read().expect("config cache").as_ref() {
            return Ok(Arc::clone(c));
        }
        let vars = Arc::new(self.store.list_config().await.map_err(store_status)?);
        *self.config_cache.write().expect("config cache") = Some(Arc::clone(&vars));
        Ok(vars)
    }

    pub(super) fn invalidate_config(&self) {
        *self.config_cache.write().expect("config cache") = None;
    }

    /// Mints an entrypoint token for one deployment (the platform passes it to the deployment).
    pub(crate) async fn mint_entrypoint_token(
        &self,
        deployment_id: &str,
        expires_in: Option<std::time::Duration>,
    ) -> Result<String, Status> {
        let mut claims = Tokens::claims(TokenKind::Entrypoint, expires_in);
        claims.deployment_id = deployment_id.to_owned();
        self.mint(claims).await
    }

    /// Records and signs claims.
    pub(crate) async fn mint(&self, claims: Claims) -> Result<String, Status> {
        self.store
            .insert_token(crate::store::TokenRecord {
                id: claims.id.clone(),
                kind: claims.kind.name().to_owned(),
                created_ms: wayline_core::time::to_millis(&wayline_core::time::now()),
                expires_ms: claims.exp,
            })
            .await
            .map_err(store_status)?;
        Ok(self.tokens.sign(&claims))
    }
}
