//! Lists and detail pages of an app's builds, pushed artifacts, deployments and releases: the
//! record, its declared resources with health, and its job's stored output.

use axum::extract::Path;
use axum::response::IntoResponse;
use maud::{Markup, html};
use wayline_proto::v1 as pb;

use super::api::{Page, UiError};
use super::jobs::{output_markup, stored_events};
use super::layout::{
    Ctx, app_path, commit, destroyed, health, job_link, labels, none, op_state, page, physical,
    seg, url_link, when,
};
use super::output::render;
use super::{Viewer, actions};

/// Rows on a list page.
const LIST_LIMIT: u32 = 100;

/// The URL word of each kind, its title and the service's kind.
const KINDS: &[(&str, &str, pb::OperationKind)] = &[
    ("builds", "Builds", pb::OperationKind::Build),
    (
        "artifacts",
        "Pushed artifacts",
        pb::OperationKind::PushedArtifact,
    ),
    ("deployments", "Deployments", pb::OperationKind::Deployment),
    ("releases", "Releases", pb::OperationKind::Release),
];

fn kind_of(word: &str) -> Result<(&'static str, &'static str, pb::OperationKind), UiError> {
    KINDS
        .iter()
        .find(|(w, _, _)| *w == word)
        .copied()
        .ok_or_else(|| {
            UiError::not_found(format!(
                "There is no list called {word}: builds, artifacts, deployments or releases."
            ))
        })
}

/// `/projects/{p}/apps/{a}/{kind}`.
pub(crate) async fn list(
    v: Viewer,
    Path((project, app, kind)): Path<(String, String, String)>,
) -> Page {
    let Viewer { api, ctx } = v;
    let (word, title, k) = kind_of(&kind)?;
    let ops = api
        .ops(k, &project, &app, &ctx.workspace, LIST_LIMIT)
        .await?;
    let base = app_path(&project, &app);
    // Releases say which deployment they point at (its version when it is among the newest).
    let deployments = if k == pb::OperationKind::Release {
        api.ops(
            pb::OperationKind::Deployment,
            &project,
            &app,
            &ctx.workspace,
            LIST_LIMIT,
        )
        .await?
    } else {
        Vec::new()
    };
    let body = html! {
        p.muted { a href=(ctx.href(&base)) { (project) " / " (app) } }
        h1 { (title) }
        @if ops.is_empty() { (none("None yet.")) } @else {
            div.scroll { table {
                thead { tr { th { "Version" } th { "Status" } th { "State" } th { "Commit" } th.hide-narrow { "Job" } th.hide-narrow { "Labels" } th { "Time" } @if k == pb::OperationKind::Release { th { "Deployment" } } @if k == pb::OperationKind::Deployment || k == pb::OperationKind::Release { th { "URL" } } } }
                tbody { @for op in &ops { tr class=[destroyed(op).then_some("destroyed")] {
                    td { a href=(ctx.href(&format!("{base}/{word}/{}", seg(&op.id)))) { "v" (op.sequence) } }
                    td { (op_state(op)) @if op.live { " " span.live { "● live" } } }
                    td { (physical(op)) }
                    td { (commit(op.provenance.as_ref())) }
                    td.hide-narrow { (job_link(&op.job_id)) }
                    td.hide-narrow { (labels(&op.labels)) }
                    td { (when(op.status.as_ref().and_then(|s| s.complete_time.as_ref()))) }
                    @if k == pb::OperationKind::Release { td { (deployment_link(&ctx, &base, &op.deployment_id, &deployments)) } }
                    @if k == pb::OperationKind::Deployment || k == pb::OperationKind::Release { td { (url_link(&op.url)) } }
                    @if k == pb::OperationKind::Deployment && !destroyed(op) { td {
                        (actions::button(&ctx, &project, &app, "release", &op.id, "Release"))
                        (actions::button(&ctx, &project, &app, "destroy", &op.id, "Destroy"))
                    } }
                } } }
            } }
        }
    };
    Ok(page(&ctx, title, false, body).into_response())
}

/// `/projects/{p}/apps/{a}/{kind}/{id}`.
pub(crate) async fn detail(
    v: Viewer,
    Path((project, app, kind, id)): Path<(String, String, String, String)>,
) -> Page {
    let Viewer { api, ctx } = v;
    let (_, title, k) = kind_of(&kind)?;
    let op = api
        .op_by_id(k, &id)
        .await?
        .filter(|o| {
            o.application
                .as_ref()
                .is_some_and(|a| a.project == project && a.application == app)
        })
        .ok_or_else(|| {
            UiError::not_found(format!("{title} has no record {id} in {project}/{app}."))
        })?;
    let output = if op.job_id.is_empty() {
        Vec::new()
    } else {
        let job = api.job(&op.job_id).await.ok();
        let finished = job.is_some_and(|j| {
            wayline_core::jobs::is_terminal(
                pb::job::State::try_from(j.state).unwrap_or(pb::job::State::Unknown),
            )
        });
        render(
            &stored_events(&api, &op.job_id, finished)
                .await
                .unwrap_or_default(),
        )
    };
    let singular = title.trim_end_matches('s');
    let body = html! {
        p.muted { a href=(ctx.href(&app_path(&project, &app))) { (project) " / " (app) } " · " a href=(ctx.href(&format!("{}/{kind}", app_path(&project, &app)))) { (title) } }
        section class={ "card" @if destroyed(&op) { " destroyed" } } {
            h1 { (singular) " v" (op.sequence) }
            (fields(&ctx, &project, &app, &op))
        }
        h2 { "Resources" }
        (resources(&op.resources))
        h2 { "Job output" }
        pre { (output_markup(&output)) }
    };
    Ok(page(&ctx, &format!("{singular} v{}", op.sequence), false, body).into_response())
}

/// A link to the deployment `id`: `vN` when it is in `known`, else its short id.
fn deployment_link(ctx: &Ctx, base: &str, id: &str, known: &[pb::Operation]) -> Markup {
    let href = ctx.href(&format!("{base}/deployments/{}", seg(id)));
    html! {
        @if id.is_empty() { } @else if let Some(d) = known.iter().find(|d| d.id == id) {
            a href=(href) { "v" (d.sequence) } @if destroyed(d) { " " span.badge { "destroyed" } }
        } @else { a href=(href) { code { (super::layout::short_id(id)) } } }
    }
}

fn fields(ctx: &Ctx, project: &str, app: &str, op: &pb::Operation) -> Markup {
    let base = app_path(project, app);
    let status = op.status.clone().unwrap_or_default();
    html! {
        dl {
            dt { "Id" } dd { code { (op.id) } }
            dt { "Status" } dd { (op_state(op)) @if destroyed(op) { " " span.badge { "destroyed" } } @if op.live { " " span.live { "● live" } } }
            @if !status.error.is_empty() { dt { "Error" } dd.error { (status.error) } }
            @if !status.details.is_empty() { dt { "Details" } dd { (status.details) } }
            @if !physical(op).is_empty() { dt { "State" } dd { (physical(op)) } }
            @if let Some(c) = &op.component { dt { "Plugin" } dd { (c.name) } }
            @if op.health != 0 || !op.health_message.is_empty() { dt { "Health" } dd { (health(op.health, &op.health_message)) } }
            dt { "Commit" } dd { (commit(op.provenance.as_ref())) }
            @if let Some(p) = &op.provenance { @if !p.message.is_empty() { dt { "Message" } dd { (p.message) } } }
            dt { "Job" } dd { (job_link(&op.job_id)) }
            dt { "Started" } dd { (when(status.start_time.as_ref())) }
            dt { "Completed" } dd { (when(status.complete_time.as_ref())) }
            @if !op.labels.is_empty() { dt { "Labels" } dd { (labels(&op.labels)) } }
            @if !op.url.is_empty() { dt { "URL" } dd { (url_link(&op.url)) } }
            @if !op.deployment_id.is_empty() && op.kind == pb::OperationKind::Release as i32 {
                dt { "Deployment" } dd { a href=(ctx.href(&format!("{base}/deployments/{}", seg(&op.deployment_id)))) { code { (super::layout::short_id(&op.deployment_id)) } } }
            }
            @if !op.artifact_id.is_empty() { dt { "Artifact" } dd { a href=(ctx.href(&format!("{base}/artifacts/{}", seg(&op.artifact_id)))) { code { (super::layout::short_id(&op.artifact_id)) } } } }
            @if !op.build_id.is_empty() { dt { "Build" } dd { a href=(ctx.href(&format!("{base}/builds/{}", seg(&op.build_id)))) { code { (super::layout::short_id(&op.build_id)) } } } }
        }
    }
}

fn resources(rs: &[pb::DeclaredResource]) -> Markup {
    html! {
        @if rs.is_empty() { (none("No declared resources.")) } @else {
            div.scroll { table {
                thead { tr { th { "Name" } th { "Type" } th { "Platform" } th { "Health" } } }
                tbody { @for r in rs { tr class=[r.destroyed.then_some("destroyed")] {
                    td { (r.name) @if r.destroyed { " " span.badge { "destroyed" } } }
                    td { (r.r#type) } td { (r.platform) }
                    td { (health(r.health, &r.health_message)) }
                } } }
            } }
        }
    }
}
