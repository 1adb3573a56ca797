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
    /// The URL service beside this server, if any.
    pub(crate) url: Option<crate::urls::UrlOptions>,
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
    /// What the URL service routes.
    pub(crate) urls: Arc<crate::urls::UrlRoutes>,
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
        let urls = Arc::new(crate::urls::UrlRoutes::new(settings.url.clone()));
        Arc::new(Self {
            urls,
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

    /// The URL-service token of one deployment (minted once per server run and deployment).
    pub(crate) async fn url_token(&self, deployment_id: &str) -> Result<String, Status> {
        if let Some(t) = self.urls.cached_token(deployment_id) {
            return Ok(t);
        }
        let mut claims = Tokens::claims(TokenKind::Url, None);
        claims.deployment_id = deployment_id.to_owned();
        let token = self.mint(claims).await?;
        self.urls.remember_token(deployment_id, &token);
        Ok(token)
    }

    /// Whether `token` may open a tunnel for `deployment_id`: a valid URL token of exactly
    /// that deployment.
    pub(crate) fn verify_url_tunnel(&self, token: &str, deployment_id: &str) -> Result<(), String> {
        let claims = self
            .tokens
            .verify(token)
            .map_err(|s| s.message().to_owned())?;
        if claims.kind != TokenKind::Url {
            let article =
                if claims.kind == TokenKind::Entrypoint || claims.kind == TokenKind::Invite {
                    "an"
                } else {
                    "a"
                };
            return Err(format!(
                "the token is {article} {} token; a URL tunnel needs the deployment's URL token",
                claims.kind.name()
            ));
        }
        if claims.deployment_id != deployment_id {
            return Err(format!(
                "this tunnel token is for deployment {}, not {deployment_id}",
                claims.deployment_id
            ));
        }
        Ok(())
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
