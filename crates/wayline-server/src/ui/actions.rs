//! Actions from the browser: `up`, `deploy`, `release` (of any deployment: an older one is a
//! rollback) and `destroy` of a deployment. Each is queued as a job for any runner (a job
//! nobody can take says why it waits), and the browser is sent to the job's page, which follows
//! it live. A canary (a share of the app host's traffic for one deployment, through the URL
//! service's router) is set at once, no job, and the browser goes back to the app's page.

use axum::Form;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;
use wayline_proto::v1 as pb;
use wayline_proto::v1::job::Operation;

use super::Viewer;
use super::api::{Api, Page, Rs, UiError};
use super::layout::{Ctx, app_path, seg};

/// The action form.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    action: String,
    #[serde(default)]
    deployment: String,
    /// A canary's percent (`canary` only); 0 ends the canary.
    #[serde(default)]
    weight: String,
}

/// The job an action queues: for any runner, with the project's data source, else the one the
/// app's newest job used (a local folder, which a runner on that machine can read).
fn job(
    project: &str,
    app: &str,
    workspace: &str,
    op: Operation,
    data_source: Option<pb::DataSource>,
) -> pb::Job {
    pb::Job {
        data_source,
        application: Some(pb::r#ref::Application {
            project: project.to_owned(),
            application: app.to_owned(),
        }),
        workspace: workspace.to_owned(),
        target_runner: Some(pb::TargetRunner {
            target: Some(pb::target_runner::Target::Any(())),
        }),
        operation: Some(op),
        ..Default::default()
    }
}

/// The data source an action's job carries: none when the project has its own (the runner
/// reads the project's), else the one the app's newest job that had one used.
async fn data_source(
    api: &Api,
    project: &str,
    app: &str,
    workspace: &str,
) -> Rs<Option<pb::DataSource>> {
    let p = api.project(project).await?;
    if p.data_source.as_ref().is_some_and(|d| d.source.is_some()) {
        return Ok(None);
    }
    let jobs = api
        .jobs(pb::ListJobsRequest {
            application: Some(pb::r#ref::Application {
                project: project.to_owned(),
                application: app.to_owned(),
            }),
            workspace: workspace.to_owned(),
            limit: 20,
            ..Default::default()
        })
        .await?;
    Ok(jobs
        .into_iter()
        .find_map(|j| j.data_source.filter(|d| d.source.is_some())))
}

fn operation(f: &ActionForm, rollback: bool) -> Result<Operation, UiError> {
    let needs_deployment = || {
        if f.deployment.is_empty() {
            Err(UiError::invalid(format!(
                "`{}` needs a deployment.",
                f.action
            )))
        } else {
            Ok(f.deployment.clone())
        }
    };
    Ok(match f.action.as_str() {
        "up" => Operation::Up(pb::UpOp {
            release: true,
            ..Default::default()
        }),
        "deploy" => Operation::Deploy(pb::DeployOp::default()),
        "release" => Operation::Release(pb::ReleaseOp {
            deployment_id: needs_deployment()?,
            rollback,
            ..Default::default()
        }),
        "destroy" => Operation::Destroy(pb::DestroyOp {
            target: Some(pb::destroy_op::Target::Deployments(
                pb::destroy_op::Deployments {
                    ids: vec![needs_deployment()?],
                },
            )),
            prune: false,
        }),
        other => {
            return Err(UiError::invalid(format!(
                "The actions are up, deploy, release and destroy, not `{other}`."
            )));
        }
    })
}

/// `POST /projects/{p}/apps/{a}/actions`.
pub(crate) async fn act(
    v: Viewer,
    Path((project, app)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Page {
    let Viewer { api, ctx } = v;
    if f.action == "canary" {
        return canary(&api, &ctx, &project, &app, &f).await;
    }
    // Releasing a deployment older than the live release's is a rollback.
    let rollback = if f.action == "release" {
        let live = api
            .ops(
                pb::OperationKind::Release,
                &project,
                &app,
                &ctx.workspace,
                1,
            )
            .await?;
        let target = api
            .op_by_id(pb::OperationKind::Deployment, &f.deployment)
            .await?;
        match (live.first(), target) {
            (Some(r), Some(t)) => api
                .op_by_id(pb::OperationKind::Deployment, &r.deployment_id)
                .await?
                .is_some_and(|cur| t.sequence < cur.sequence),
            _ => false,
        }
    } else {
        false
    };
    let op = operation(&f, rollback)?;
    let source = data_source(&api, &project, &app, &ctx.workspace).await?;
    let id = api
        .queue(job(&project, &app, &ctx.workspace, op, source))
        .await?;
    Ok(Redirect::to(&format!("/jobs/{}", seg(&id))).into_response())
}

/// Sets the app's canary from the form, then back to the app's page.
async fn canary(api: &Api, ctx: &Ctx, project: &str, app: &str, f: &ActionForm) -> Page {
    let weight: u32 = f.weight.trim().parse().map_err(|_| {
        UiError::invalid(format!(
            "A canary's weight is a whole percent from 0 to 99, not `{}`.",
            f.weight
        ))
    })?;
    api.set_canary(pb::SetCanaryRequest {
        application: Some(pb::r#ref::Application {
            project: project.to_owned(),
            application: app.to_owned(),
        }),
        workspace: ctx.workspace.clone(),
        deployment_id: if weight == 0 {
            String::new()
        } else {
            f.deployment.clone()
        },
        weight,
        health_path: String::new(),
    })
    .await?;
    Ok(Redirect::to(&format!("{}{}", app_path(project, app), ctx.ws_query())).into_response())
}

/// The canary form for `deployment`: a percent of the app host's traffic.
pub(crate) fn canary_form(ctx: &Ctx, project: &str, app: &str, deployment: &str) -> Markup {
    html! {
        form.inline method="post" action={ (app_path(project, app)) "/actions" (ctx.ws_query()) } {
            (ctx.csrf_field())
            input type="hidden" name="action" value="canary";
            input type="hidden" name="deployment" value=(deployment);
            label.inline { "Canary " input type="number" name="weight" min="1" max="99" value="10" required size="3"; " %" }
            " "
            button type="submit" { "Send traffic" }
            " "
        }
    }
}

/// Ends the app's canary: everything back on the live release.
pub(crate) fn end_canary(ctx: &Ctx, project: &str, app: &str) -> Markup {
    html! {
        form.inline method="post" action={ (app_path(project, app)) "/actions" (ctx.ws_query()) } {
            (ctx.csrf_field())
            input type="hidden" name="action" value="canary";
            input type="hidden" name="weight" value="0";
            button type="submit" { "End canary" }
            " "
        }
    }
}

/// One action button (a form with the CSRF token).
pub(crate) fn button(
    ctx: &Ctx,
    project: &str,
    app: &str,
    action: &str,
    deployment: &str,
    label: &str,
) -> Markup {
    html! {
        form.inline method="post" action={ (app_path(project, app)) "/actions" (ctx.ws_query()) } {
            (ctx.csrf_field())
            input type="hidden" name="action" value=(action);
            @if !deployment.is_empty() { input type="hidden" name="deployment" value=(deployment); }
            button.danger[action == "destroy"] type="submit" { (label) }
            " "
        }
    }
}
