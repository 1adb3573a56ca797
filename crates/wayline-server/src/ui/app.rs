//! An application's page: cards for its latest build, deployment and release (status, health,
//! instances, commit, job, time, labels, URLs; destroyed things look destroyed), and the
//! newest jobs.

use axum::extract::Path;
use axum::response::IntoResponse;
use maud::{Markup, html};
use wayline_proto::v1 as pb;

use super::api::Page;
use super::layout::{
    Ctx, app_path, commit, destroyed, health, job_link, job_state, labels, none, op_state, page,
    physical, project_path, seg, url_link, when,
};
use super::{Viewer, actions};

/// Deployments read to find the one a release points at.
const RECENT: u32 = 20;

/// What the app page shows.
struct AppData {
    project: String,
    app: String,
    build: Option<pb::Operation>,
    deployments: Vec<pb::Operation>,
    release: Option<pb::Operation>,
    instances: Vec<pb::Instance>,
    /// Why instances could not be listed (a token that may not).
    instances_note: String,
    jobs: Vec<pb::Job>,
    /// The share of the app host's traffic one deployment takes, when a canary is in force.
    canary: Option<pb::Canary>,
}

/// `/projects/{p}/apps/{a}`.
pub(crate) async fn page_handler(v: Viewer, project: String, app: String) -> Page {
    let Viewer { api, ctx } = v;
    let p = api.project(&project).await?;
    if !p.applications.iter().any(|a| a.name == app) {
        return Err(super::api::UiError::not_found(format!(
            "Application {app} does not exist in project {project}."
        )));
    }
    let ws = ctx.workspace.clone();
    let build = api
        .ops(pb::OperationKind::Build, &project, &app, &ws, 1)
        .await?;
    let deployments = api
        .ops(pb::OperationKind::Deployment, &project, &app, &ws, RECENT)
        .await?;
    let release = api
        .ops(pb::OperationKind::Release, &project, &app, &ws, 1)
        .await?;
    let (instances, instances_note) = match deployments.first() {
        Some(d) if !destroyed(d) => match api.instances(&project, &app, &ws, &d.id).await {
            Ok(i) => (i, String::new()),
            Err(e) => (Vec::new(), e.0.message().to_owned()),
        },
        _ => (Vec::new(), String::new()),
    };
    let jobs = api
        .jobs(pb::ListJobsRequest {
            application: Some(pb::r#ref::Application {
                project: project.clone(),
                application: app.clone(),
            }),
            workspace: ws.clone(),
            limit: 10,
            ..Default::default()
        })
        .await?;
    let canary = api.canary(&project, &app, &ws).await?;
    let data = AppData {
        project,
        app,
        build: build.into_iter().next(),
        deployments,
        release: release.into_iter().next(),
        instances,
        instances_note,
        jobs,
        canary,
    };
    Ok(page(
        &ctx,
        &format!("{}/{}", data.project, data.app),
        false,
        render(&ctx, &data),
    )
    .into_response())
}

/// The axum handler.
pub(crate) async fn page_route(v: Viewer, Path((project, app)): Path<(String, String)>) -> Page {
    page_handler(v, project, app).await
}

fn render(ctx: &Ctx, d: &AppData) -> Markup {
    let base = app_path(&d.project, &d.app);
    let pointed = d
        .release
        .as_ref()
        .and_then(|r| d.deployments.iter().find(|x| x.id == r.deployment_id));
    html! {
        p.muted { a href=(ctx.href(&project_path(&d.project))) { (d.project) } " / " (d.app) " · workspace " (ctx.workspace) }
        h1 { (d.app) }
        nav aria-label="Records" {
            a href=(ctx.href(&format!("{base}/builds"))) { "Builds" } " · "
            a href=(ctx.href(&format!("{base}/artifacts"))) { "Artifacts" } " · "
            a href=(ctx.href(&format!("{base}/deployments"))) { "Deployments" } " · "
            a href=(ctx.href(&format!("{base}/releases"))) { "Releases" } " · "
            a href=(ctx.href(&format!("{base}/logs"))) { "Logs" } " · "
            a href=(ctx.href(&format!("{base}/exec"))) { "Exec" } " · "
            a href={ (ctx.href("/jobs")) (if ctx.ws_query().is_empty() { "?" } else { "&" }) "app=" (seg(&d.project)) "/" (seg(&d.app)) } { "Jobs" }
        }
        p {
            (actions::button(ctx, &d.project, &d.app, "up", "", "Up (build, deploy, release)"))
            (actions::button(ctx, &d.project, &d.app, "deploy", "", "Deploy the latest artifact"))
        }
        div.cards {
            (card(ctx, &base, "Build", "builds", d.build.as_ref(), html! {}))
            (card(ctx, &base, "Deployment", "deployments", d.deployments.first(), deployment_extra(ctx, d)))
            (card(ctx, &base, "Release", "releases", d.release.as_ref(), release_extra(ctx, &base, d, pointed)))
        }
        h2 { "Recent jobs" }
        (jobs_table(&d.jobs))
    }
}

fn deployment_extra(ctx: &Ctx, d: &AppData) -> Markup {
    let Some(dep) = d.deployments.first() else {
        return html! {};
    };
    html! {
        dt { "Health" } dd { (health(dep.health, &dep.health_message)) }
        dt { "Instances" } dd {
            @if destroyed(dep) { "none (destroyed)" }
            @else if !d.instances_note.is_empty() { span.muted { (d.instances_note) } }
            @else if d.instances.is_empty() { span.muted { "none connected" } }
            @else { (d.instances.len()) " connected: " @for i in &d.instances { code { (super::layout::short_id(&i.id)) } " " } }
        }
        dt { "URL" } dd { (url_link(&dep.url)) }
        @if !destroyed(dep) {
            dt { "Actions" } dd {
                @if d.release.as_ref().is_none_or(|r| r.deployment_id != dep.id) {
                    (actions::button(ctx, &d.project, &d.app, "release", &dep.id, "Release"))
                }
                @if d.release.as_ref().is_some_and(|r| !r.deployment_id.is_empty() && r.deployment_id != dep.id) {
                    (actions::canary_form(ctx, &d.project, &d.app, &dep.id))
                }
                (actions::button(ctx, &d.project, &d.app, "destroy", &dep.id, "Destroy"))
            }
        }
    }
}

fn release_extra(ctx: &Ctx, base: &str, d: &AppData, pointed: Option<&pb::Operation>) -> Markup {
    let Some(r) = d.release.as_ref() else {
        return html! {};
    };
    html! {
        dt { "Live" } dd { (super::home::release_liveness(r, pointed)) }
        dt { "Deployment" } dd {
            @if let Some(p) = pointed {
                a href=(ctx.href(&format!("{base}/deployments/{}", seg(&p.id)))) { "v" (p.sequence) }
                @if destroyed(p) { " " span.badge { "destroyed" } }
            } @else { code { (super::layout::short_id(&r.deployment_id)) } }
        }
        dt { "URL" } dd { (url_link(&r.url)) }
        @if let Some(c) = &d.canary {
            dt { "Canary" } dd {
                a href=(ctx.href(&format!("{base}/deployments/{}", seg(&c.deployment_id)))) { "v" (c.sequence) }
                " takes " (c.weight) " %, v" (c.release_sequence) " the rest "
                (actions::end_canary(ctx, &d.project, &d.app))
            }
        }
    }
}

/// One card: the operation's common fields, then `extra` rows.
fn card(
    ctx: &Ctx,
    base: &str,
    title: &str,
    kind: &str,
    op: Option<&pb::Operation>,
    extra: Markup,
) -> Markup {
    html! {
        @if let Some(op) = op {
            section class={ "card" @if destroyed(op) { " destroyed" } } aria-label={ "Latest " (title) } {
                h2 { a href=(ctx.href(&format!("{base}/{kind}/{}", seg(&op.id)))) { (title) " v" (op.sequence) } }
                dl {
                    dt { "Status" } dd { (op_state(op)) @if destroyed(op) { " " span.badge { "destroyed" } } }
                    @let ph = physical(op);
                    @if !ph.is_empty() && !destroyed(op) { dt { "State" } dd { (ph) } }
                    @if let Some(c) = &op.component { dt { "Plugin" } dd { (c.name) } }
                    dt { "Commit" } dd { (commit(op.provenance.as_ref())) }
                    dt { "Job" } dd { (job_link(&op.job_id)) }
                    dt { "Time" } dd { (when(op.status.as_ref().and_then(|s| s.complete_time.as_ref().or(s.start_time.as_ref())))) }
                    @if !op.labels.is_empty() { dt { "Labels" } dd { (labels(&op.labels)) } }
                    (extra)
                }
            }
        } @else {
            section.card aria-label={ "Latest " (title) } { h2 { (title) } (none("None yet.")) }
        }
    }
}

/// The jobs table (also used by the jobs page).
pub(crate) fn jobs_table(jobs: &[pb::Job]) -> Markup {
    html! {
        @if jobs.is_empty() { (none("No jobs.")) } @else {
            div.scroll { table {
                thead { tr { th { "Job" } th { "Operation" } th { "App" } th { "State" } th { "Wait reason or error" } th.hide-narrow { "Queued" } } }
                tbody { @for j in jobs { tr {
                    td { (job_link(&j.id)) }
                    td { (wayline_core::jobs::operation_name(j.operation.as_ref())) }
                    td { @if let Some(a) = &j.application { (a.project) "/" (a.application) } }
                    td { (job_state(j)) }
                    td { (job_note(j)) }
                    td.hide-narrow { (when(j.queue_time.as_ref())) }
                } } }
            } }
        }
    }
}

/// The error of a failed job, else why it waits.
pub(crate) fn job_note(j: &pb::Job) -> Markup {
    html! {
        @match &j.error {
            Some(e) if !e.message.is_empty() => span.error { (e.message) },
            _ => (j.wait_reason),
        }
    }
}
