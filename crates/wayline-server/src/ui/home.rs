//! The projects list and a project's page: apps, data source, input variables and config
//! variables (set and delete; values masked until asked for).

use axum::Form;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;
use wayline_proto::v1 as pb;
use wayline_proto::v1::config_var;

use super::Viewer;
use super::api::{Page, UiError};
use super::layout::{Ctx, app_path, commit, none, op_state, page, project_path, url_link};

/// Projects listed on the index page.
const MAX_PROJECTS: usize = 200;

/// `/`: every project, its apps, each app's newest deployment and live release.
pub(crate) async fn index(v: Viewer) -> Page {
    let Viewer { api, ctx } = v;
    let projects = api.projects().await?;
    let more = projects.len().saturating_sub(MAX_PROJECTS);
    let mut rows = Vec::new();
    for p in projects.iter().take(MAX_PROJECTS) {
        let mut apps: Vec<&pb::Application> = p.applications.iter().collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        for a in apps {
            let d = api
                .ops(
                    pb::OperationKind::Deployment,
                    &p.name,
                    &a.name,
                    &ctx.workspace,
                    1,
                )
                .await?;
            let r = api
                .ops(
                    pb::OperationKind::Release,
                    &p.name,
                    &a.name,
                    &ctx.workspace,
                    1,
                )
                .await?;
            rows.push((
                p.name.clone(),
                a.name.clone(),
                d.into_iter().next(),
                r.into_iter().next(),
            ));
        }
        if p.applications.is_empty() {
            rows.push((p.name.clone(), String::new(), None, None));
        }
    }
    let body = html! {
        h1 { "Projects" }
        @if rows.is_empty() {
            (none("No projects yet. Run `wayline init` and `wayline up` in a project folder."))
        } @else {
            div.scroll { table {
                thead { tr { th { "Project" } th { "App" } th { "Deployment" } th { "Release" } th.hide-narrow { "Commit" } } }
                tbody {
                    @for (p, a, d, r) in &rows {
                        tr {
                            td { a href=(ctx.href(&project_path(p))) { (p) } }
                            td { @if !a.is_empty() { a href=(ctx.href(&app_path(p, a))) { (a) } } }
                            td { @if let Some(d) = d { "v" (d.sequence) " " (op_state(d))
                                @if super::layout::destroyed(d) { " " span.badge { "destroyed" } } } }
                            td { @if let Some(r) = r { "v" (r.sequence) " " (release_liveness(r, d.as_ref())) " " (url_link(&r.url)) } }
                            td.hide-narrow { @if let Some(d) = d { (commit(d.provenance.as_ref())) } }
                        }
                    }
                }
            } }
            @if more > 0 { p.muted { (more) " more projects are not shown." } }
        }
    };
    Ok(page(&ctx, "Projects", false, body).into_response())
}

/// "● live" only for a live release whose deployment still exists.
pub(crate) fn release_liveness(r: &pb::Operation, newest: Option<&pb::Operation>) -> Markup {
    let gone = newest.is_some_and(|d| d.id == r.deployment_id && super::layout::destroyed(d))
        || super::layout::destroyed(r);
    html! {
        @if gone { span.badge { "destroyed" } }
        @else if r.live { span.live { "● live" } }
        @else { span.muted { "not live" } }
    }
}

/// `?show=1` reveals variable values.
#[derive(Debug, Deserialize)]
pub(crate) struct Show {
    show: Option<String>,
}

/// `/projects/{p}`.
pub(crate) async fn project(v: Viewer, Path(name): Path<String>, Query(show): Query<Show>) -> Page {
    let Viewer { api, ctx } = v;
    let p = api.project(&name).await?;
    let config = api
        .config(pb::GetConfigRequest {
            scope: config_var::Scope::Project as i32,
            project: name.clone(),
            ..Default::default()
        })
        .await?;
    let show = show.show.as_deref() == Some("1");
    let body = html! {
        h1 { "Project " (p.name) }
        h2 { "Applications" }
        @if p.applications.is_empty() { (none("No applications.")) }
        ul { @for a in &p.applications { li { a href=(ctx.href(&app_path(&p.name, &a.name))) { (a.name) } } } }
        h2 #source { "Data source" }
        (super::settings::section(&ctx, &p))
        h2 #variables { "Input variables" }
        (variables(&ctx, &p, show))
        h2 #config { "Config variables" }
        (config_vars(&ctx, &p, &config, show))
    };
    Ok(page(&ctx, &p.name, false, body).into_response())
}

fn masked(value: &str, show: bool) -> Markup {
    html! { @if show { code { (value) } } @else { span.muted aria-label="value hidden" { "••••••" } } }
}

fn show_toggle(ctx: &Ctx, show: bool, anchor: &str) -> Markup {
    let mut href = ctx.href(&ctx.path);
    href.push(if href.contains('?') { '&' } else { '?' });
    let link = if show {
        format!("{href}show=0#{anchor}")
    } else {
        format!("{href}show=1#{anchor}")
    };
    html! { p { a href=(link) { (if show { "Hide values" } else { "Show values" }) } } }
}

fn variables(ctx: &Ctx, p: &pb::Project, show: bool) -> Markup {
    let mut vars: Vec<_> = p.variables.iter().collect();
    vars.sort();
    let action = format!("{}/variables{}", project_path(&p.name), ctx.ws_query());
    html! {
        @if vars.is_empty() { (none("No input variables are set on the server.")) } @else {
            (show_toggle(ctx, show, "variables"))
            table { thead { tr { th { "Name" } th { "Value" } th { span.skip { "Delete" } } } } tbody {
                @for (k, val) in vars { tr {
                    td { code { (k) } } td { (masked(val, show)) }
                    td { form.inline method="post" action=(action) {
                        (ctx.csrf_field())
                        input type="hidden" name="name" value=(k);
                        input type="hidden" name="delete" value="1";
                        button.danger type="submit" aria-label={ "Delete " (k) } { "Delete" }
                    } }
                } }
            } }
        }
        form.row method="post" action=(action) {
            (ctx.csrf_field())
            label { "Name" input name="name" required maxlength="128"; }
            label { "Value" input name="value" type="password" autocomplete="off"; }
            button type="submit" { "Set variable" }
        }
    }
}

fn config_vars(ctx: &Ctx, p: &pb::Project, vars: &[pb::ConfigVar], show: bool) -> Markup {
    let action = format!("{}/config{}", project_path(&p.name), ctx.ws_query());
    html! {
        @if vars.is_empty() { (none("No config variables.")) } @else {
            (show_toggle(ctx, show, "config"))
            div.scroll { table {
                thead { tr { th { "Name" } th { "Scope" } th { "Workspace" } th { "Value" } th { span.skip { "Delete" } } } }
                tbody { @for v in vars { tr {
                    td { code { (v.name) } }
                    td { @if v.application.is_empty() { "project" } @else { "app " (v.application) } }
                    td { (v.workspace) }
                    td { @match &v.value {
                        Some(config_var::Value::Static(s)) => (masked(s, show)),
                        Some(config_var::Value::Dynamic(d)) => { "from " code { (d.from) } },
                        _ => span.muted { "unset" },
                    } }
                    td { form.inline method="post" action=(action) {
                        (ctx.csrf_field())
                        input type="hidden" name="name" value=(v.name);
                        input type="hidden" name="app" value=(v.application);
                        input type="hidden" name="target_workspace" value=(v.workspace);
                        input type="hidden" name="delete" value="1";
                        button.danger type="submit" aria-label={ "Delete " (v.name) } { "Delete" }
                    } }
                } } }
            } }
        }
        form.row method="post" action=(action) {
            (ctx.csrf_field())
            label { "Name" input name="name" required maxlength="128"; }
            label { "Value" input name="value" type="password" autocomplete="off"; }
            label { "App (empty: whole project)" select name="app" {
                option value="" { "whole project" }
                @for a in &p.applications { option value=(a.name) { (a.name) } }
            } }
            label { "Workspace (empty: all)" input name="target_workspace" maxlength="64"; }
            button type="submit" { "Set config" }
        }
    }
}

/// The form of the variable and config forms.
#[derive(Debug, Deserialize)]
pub(crate) struct VarForm {
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    delete: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    target_workspace: String,
}

/// `POST /projects/{p}/variables`: sets or deletes a server-side input variable.
pub(crate) async fn set_variable(
    v: Viewer,
    Path(name): Path<String>,
    Form(f): Form<VarForm>,
) -> Page {
    let Viewer { api, ctx } = v;
    if f.name.trim().is_empty() {
        return Err(UiError::invalid("A variable needs a name."));
    }
    let mut p = api.project(&name).await?;
    if f.delete == "1" {
        p.variables.remove(&f.name);
    } else {
        p.variables.insert(f.name.trim().to_owned(), f.value);
    }
    api.upsert_project(p).await?;
    Ok(back(&ctx, &name, "variables"))
}

/// `POST /projects/{p}/config`: sets or deletes a config variable of the project or one app.
pub(crate) async fn set_config(
    v: Viewer,
    Path(name): Path<String>,
    Form(f): Form<VarForm>,
) -> Page {
    let Viewer { api, ctx } = v;
    let scope = if f.app.is_empty() {
        config_var::Scope::Project
    } else {
        config_var::Scope::App
    };
    let value = if f.delete == "1" {
        config_var::Value::Unset(true)
    } else {
        config_var::Value::Static(f.value)
    };
    api.set_config(vec![pb::ConfigVar {
        scope: scope as i32,
        project: name.clone(),
        application: f.app,
        workspace: f.target_workspace,
        name: f.name.trim().to_owned(),
        value: Some(value),
        ..Default::default()
    }])
    .await?;
    Ok(back(&ctx, &name, "config"))
}

fn back(ctx: &Ctx, project: &str, anchor: &str) -> axum::response::Response {
    // `Redirect::to` is a 303: the browser follows with GET.
    Redirect::to(&format!("{}#{anchor}", ctx.href(&project_path(project)))).into_response()
}
