//! The web UI: server-rendered pages (`maud`) on the HTTP listener, with htmx and its SSE
//! extension (vendored from npm at pinned versions, embedded in the binary) for the parts that
//! update live.
//!
//! Every page reads and acts through the gRPC service itself, called in process with the
//! browser's token ([`api`]), so the UI can do exactly what that token can do over gRPC.
//! Signing in, the session cookie and CSRF are in [`session`]. `?workspace=` picks the
//! workspace on any page (default `default`); an unknown one is a 404 that says so.
//!
//! Routes: `/` projects; `/projects/{p}` a project (apps, data source, input and config
//! variables; `POST …/source` sets the data source and polling); `/projects/{p}/apps/{a}` an
//! app's latest build, deployment and release;
//! `…/apps/{a}/{builds,artifacts,deployments,releases}` lists and `…/{kind}/{id}` details;
//! `/jobs`, `/jobs/{id}` (output live over SSE at `/jobs/{id}/events`), `POST /jobs/{id}/cancel`;
//! `/runners` (adopt, reject, forget); `…/apps/{a}/logs` (live over SSE at `…/logs/events`);
//! `POST …/apps/{a}/actions` (up, deploy, release, destroy: queued as jobs); `…/apps/{a}/exec`
//! (a terminal over the WebSocket `…/exec/ws`);
//! `/signin`, `POST /signout`; `/ui/assets/*` the stylesheet and the vendored scripts.

mod actions;
mod api;
mod app;
mod assets;
mod exec;
mod home;
mod jobs;
mod layout;
mod logs;
mod ops;
mod output;
mod runners;
mod session;
mod settings;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use self::api::{Api, UiError};
use self::layout::Ctx;
use self::session::Session;
use crate::service::Shared;

/// The workspace shown when the URL names none.
pub(crate) const DEFAULT_WORKSPACE: &str = "default";

/// The UI's state: the server's shared state and the sign-in links already used.
pub(crate) struct Ui {
    shared: Arc<Shared>,
    used_links: session::UsedLinks,
}

/// The UI routes: pages behind the session check, sign-in and assets open to anyone.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let ui = Arc::new(Ui {
        shared,
        used_links: session::UsedLinks::default(),
    });
    let pages = Router::new()
        .route("/", get(home::index))
        .route("/projects/{project}", get(home::project))
        .route("/projects/{project}/variables", post(home::set_variable))
        .route("/projects/{project}/config", post(home::set_config))
        .route("/projects/{project}/source", post(settings::save))
        .route("/projects/{project}/apps/{app}", get(app::page_route))
        .route("/projects/{project}/apps/{app}/actions", post(actions::act))
        .route("/projects/{project}/apps/{app}/logs", get(logs::page_route))
        .route(
            "/projects/{project}/apps/{app}/logs/events",
            get(logs::events),
        )
        .route("/projects/{project}/apps/{app}/exec", get(exec::page_route))
        .route("/projects/{project}/apps/{app}/exec/ws", get(exec::socket))
        .route("/projects/{project}/apps/{app}/{kind}", get(ops::list))
        .route(
            "/projects/{project}/apps/{app}/{kind}/{id}",
            get(ops::detail),
        )
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::page_route))
        .route("/jobs/{id}/events", get(jobs::events))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/runners", get(runners::list))
        .route("/runners/{id}", post(runners::act))
        .route("/signout", post(session::signout))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&ui),
            session::require_session,
        ));
    Router::new()
        .merge(pages)
        .route(
            "/signin",
            get(session::signin_form).post(session::signin_post),
        )
        .route("/ui/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(harden))
        .with_state(ui)
}

/// Headers every UI response carries: scripts and connections only from this origin, no
/// framing, no referrer (the first URL may carry a token), no caching of pages with data.
async fn harden(req: Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            // xterm.js sets element styles, hence 'unsafe-inline' for styles (not scripts).
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; font-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A signed-in page request: the service as this browser and the layout's context.
pub(crate) struct Viewer {
    api: Api,
    ctx: Ctx,
}

impl FromRequestParts<Arc<Ui>> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, ui: &Arc<Ui>) -> Result<Self, UiError> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| UiError(tonic::Status::unauthenticated("You are not signed in.")))?;
        let api = Api::new(&ui.shared, &session);
        let workspace = parts
            .uri
            .query()
            .and_then(serde_urlencoded_workspace)
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned());
        let workspaces = api.workspaces().await?;
        if !workspaces.contains(&workspace) {
            return Err(UiError::not_found(format!(
                "Workspace {workspace} does not exist (workspaces: {}).",
                workspaces.join(", ")
            )));
        }
        let ctx = Ctx {
            csrf: session.csrf,
            workspace,
            workspaces,
            path: parts.uri.path().to_owned(),
        };
        Ok(Self { api, ctx })
    }
}

fn serde_urlencoded_workspace(query: &str) -> Option<String> {
    session::serde_urlencoded_pairs(query.as_bytes())
        .into_iter()
        .find(|(k, _)| k == "workspace")
        .map(|(_, v)| v)
}
