//! The read-only web UI: server-rendered HTML pages over the store, mounted on the HTTP listener.
//!
//! Routes: `/` (projects and apps), `/projects/{project}/apps/{app}` (releases, deployments,
//! builds, jobs) and `/jobs/{id}` (one job and its output); `?workspace=` picks the workspace
//! (default `default`). Every page needs a login token: `?token=<login token>` on any page sets
//! the `wayline_token` cookie (HttpOnly, SameSite=Strict) and redirects to the same URL without
//! the token, so the token leaves the address bar and history. `wayline ui` mints a short-lived
//! login token and opens `http://<http addr>/?token=<token>`.
//!
//! Only login tokens are accepted: converting an invite spends it, which a page load (or a
//! browser's prefetch) should not do.

mod html;
mod output;
mod pages;

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use wayline_proto::v1 as pb;

use crate::auth::TokenKind;
use crate::service::Shared;
use crate::store::{JobFilter, OperationFilter, OperationTarget, StoreError};

/// The workspace shown when the URL names none.
pub(crate) const DEFAULT_WORKSPACE: &str = "default";
/// The cookie holding the login token.
const COOKIE: &str = "wayline_token";
/// Projects listed on the index page.
const MAX_PROJECTS: usize = 100;
/// Rows per table on the application page.
const MAX_ROWS: u32 = 50;

/// The UI routes, each behind the login check.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/projects/{project}/apps/{app}", get(app))
        .route("/jobs/{id}", get(job))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_login,
        ))
        .with_state(shared)
}

/// Checks the `?token=` parameter (and then redirects without it) or the cookie.
async fn require_login(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let response = if let Some((token, rest)) = split_token(req.uri().query()) {
        match check(&shared, token) {
            Ok(max_age) => signed_in(req.uri().path(), &rest, token, max_age),
            Err(reason) => unauthorized(&reason),
        }
    } else {
        match cookie(req.headers()) {
            None => unauthorized("You are not signed in."),
            Some(token) => match check(&shared, token) {
                Ok(_) => next.run(req).await,
                Err(reason) => unauthorized(&reason),
            },
        }
    };
    harden(response)
}

/// The token from the query and the rest of the query (raw, as it came).
fn split_token(query: Option<&str>) -> Option<(&str, String)> {
    let query = query?;
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("token=") {
            // Tokens are `wl1.` + base64url, so they never need percent-decoding.
            Some(t) => token = Some(t),
            None if pair == "token" || pair.is_empty() => {}
            None => rest.push(pair),
        }
    }
    token.map(|t| (t, rest.join("&")))
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|t| !t.is_empty())
}

/// Verifies a login token; returns its remaining lifetime in seconds, or why it was refused.
fn check(shared: &Shared, token: &str) -> Result<Option<i64>, String> {
    let claims = shared
        .tokens
        .verify(token)
        .map_err(|s| format!("The token was refused: {}.", s.message()))?;
    if claims.kind != TokenKind::Login {
        return Err(format!(
            "The UI needs a login token, not a {} token.",
            claims.kind.name()
        ));
    }
    let now = wayline_core::time::to_millis(&wayline_core::time::now());
    Ok(claims.exp.map(|exp| (exp - now) / 1000))
}

/// Sets the cookie and sends the browser to the same page without the token.
fn signed_in(path: &str, rest: &str, token: &str, max_age: Option<i64>) -> Response {
    // A path starting with `//` would be read as another host.
    let path = if path.starts_with("//") { "/" } else { path };
    let location = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{rest}")
    };
    let mut cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(secs) = max_age {
        let _ = write!(cookie, "; Max-Age={}", secs.max(0));
    }
    match (
        HeaderValue::from_str(&location),
        HeaderValue::from_str(&cookie),
    ) {
        (Ok(location), Ok(cookie)) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
        )
            .into_response(),
        _ => unauthorized("The token is not valid in a cookie."),
    }
}

fn unauthorized(reason: &str) -> Response {
    (StatusCode::UNAUTHORIZED, Html(pages::unauthorized(reason))).into_response()
}

/// Headers every UI response carries: no caching of pages with data, no scripts, no framing,
/// no referrer (URLs may carry a token on the first request).
fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `?workspace=`.
#[derive(Debug, Deserialize)]
struct Params {
    workspace: Option<String>,
}

impl Params {
    fn workspace(self) -> String {
        self.workspace
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned())
    }
}

fn failed(e: &StoreError) -> Response {
    tracing::error!(error = %e, "web UI could not read the store");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(pages::message(
            "Server error",
            &format!("The store could not be read: {e}"),
        )),
    )
        .into_response()
}

fn not_found(text: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::message("Not found", text)),
    )
        .into_response()
}

async fn index(State(shared): State<Arc<Shared>>, Query(params): Query<Params>) -> Response {
    let workspace = params.workspace();
    match load_index(&shared, &workspace).await {
        Ok((projects, more)) => Html(pages::index(&workspace, &projects, more)).into_response(),
        Err(e) => failed(&e),
    }
}

async fn load_index(
    shared: &Shared,
    workspace: &str,
) -> Result<(Vec<pages::ProjectSummary>, usize), StoreError> {
    let mut projects = shared.store.list_projects().await?;
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    let more = projects.len().saturating_sub(MAX_PROJECTS);
    projects.truncate(MAX_PROJECTS);
    let mut out = Vec::with_capacity(projects.len());
    for p in projects {
        let mut apps = Vec::with_capacity(p.applications.len());
        for a in &p.applications {
            let latest = OperationTarget::Latest {
                project: p.name.clone(),
                app: a.name.clone(),
                workspace: workspace.to_owned(),
                success_only: false,
            };
            let live = OperationTarget::Live {
                project: p.name.clone(),
                app: a.name.clone(),
                workspace: workspace.to_owned(),
            };
            let deployment = shared
                .store
                .get_operation(pb::OperationKind::Deployment as i32, latest)
                .await?;
            let release = shared
                .store
                .get_operation(pb::OperationKind::Release as i32, live)
                .await?;
            let jobs = recent_jobs(shared, &p.name, &a.name, workspace, 1).await?;
            apps.push(pages::AppSummary {
                name: a.name.clone(),
                deployment,
                release,
                job: jobs.into_iter().next(),
            });
        }
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(pages::ProjectSummary { name: p.name, apps });
    }
    Ok((out, more))
}

/// Newest jobs of an app, with unfinished ones' state from the queue (the store may lag).
async fn recent_jobs(
    shared: &Shared,
    project: &str,
    app: &str,
    workspace: &str,
    limit: u32,
) -> Result<Vec<pb::Job>, StoreError> {
    let mut jobs = shared
        .store
        .list_jobs(JobFilter {
            app: Some((project.to_owned(), app.to_owned())),
            workspace: Some(workspace.to_owned()),
            limit,
            ..JobFilter::default()
        })
        .await?;
    shared.queue.overlay(&mut jobs);
    Ok(jobs)
}

async fn app(
    State(shared): State<Arc<Shared>>,
    Path((project, app)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    let workspace = params.workspace();
    match load_app(&shared, project, app, workspace).await {
        Ok(Ok(detail)) => Html(pages::app(&detail)).into_response(),
        Ok(Err(missing)) => not_found(&missing),
        Err(e) => failed(&e),
    }
}

/// The app's records, or (inner `Err`) the sentence saying what does not exist.
async fn load_app(
    shared: &Shared,
    project: String,
    app: String,
    workspace: String,
) -> Result<Result<pages::AppDetail, String>, StoreError> {
    let Some(p) = shared.store.get_project(&project).await? else {
        return Ok(Err(format!("Project {project} does not exist.")));
    };
    if !p.applications.iter().any(|a| a.name == app) {
        return Ok(Err(format!(
            "Application {app} does not exist in project {project}."
        )));
    }
    let list = |kind: pb::OperationKind| OperationFilter {
        kind: kind as i32,
        app: Some((project.clone(), app.clone())),
        workspace: Some(workspace.clone()),
        limit: MAX_ROWS,
        ..OperationFilter::default()
    };
    let releases = shared
        .store
        .list_operations(list(pb::OperationKind::Release))
        .await?;
    let deployments = shared
        .store
        .list_operations(list(pb::OperationKind::Deployment))
        .await?;
    let builds = shared
        .store
        .list_operations(list(pb::OperationKind::Build))
        .await?;
    let jobs = recent_jobs(shared, &project, &app, &workspace, MAX_ROWS).await?;
    Ok(Ok(pages::AppDetail {
        project,
        app,
        workspace,
        releases,
        deployments,
        builds,
        jobs,
    }))
}

async fn job(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let found = match shared.queue.get(&id) {
        Some(j) => Ok(Some(j)),
        None => shared.store.get_job(&id).await,
    };
    let job = match found {
        Ok(Some(j)) => j,
        Ok(None) => return not_found(&format!("Job {id} does not exist.")),
        Err(e) => return failed(&e),
    };
    match shared.store.job_events(&id).await {
        Ok(events) => Html(pages::job(&job, &output::render(&events))).into_response(),
        Err(e) => failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        assert_eq!(
            split_token(Some("token=wl1.a.b&workspace=dev")),
            Some(("wl1.a.b", "workspace=dev".to_owned()))
        );
        assert_eq!(split_token(Some("workspace=dev")), None);
        assert_eq!(split_token(None), None);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wayline_token=wl1.x.y; b=2"),
        );
        assert_eq!(cookie(&h), Some("wl1.x.y"));
        h.insert(header::COOKIE, HeaderValue::from_static("wayline_tokenx=1"));
        assert_eq!(cookie(&h), None);
    }

    #[test]
    fn the_redirect_stays_on_this_host() {
        let r = signed_in("//evil.test", "", "wl1.a.b", Some(60));
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/");
        assert_eq!(
            r.headers()[header::SET_COOKIE],
            "wayline_token=wl1.a.b; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
    }
}
