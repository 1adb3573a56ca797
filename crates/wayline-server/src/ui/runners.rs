//! Runners: connected and known runners with their labels, and the ones waiting for adoption
//! (adopt, reject, forget).

use axum::Form;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;
use wayline_proto::v1 as pb;
use wayline_proto::v1::runner::AdoptionState;

use super::Viewer;
use super::api::{Page, UiError};
use super::layout::{Ctx, labels, none, page, seg, when};

/// `/runners`.
pub(crate) async fn list(v: Viewer) -> Page {
    let Viewer { api, ctx } = v;
    let mut runners = api.runners().await?;
    runners.sort_by(|a, b| b.online.cmp(&a.online).then(a.id.cmp(&b.id)));
    let (pending, known): (Vec<_>, Vec<_>) = runners
        .into_iter()
        .partition(|r| r.adoption_state == AdoptionState::Pending as i32);
    let body = html! {
        h1 { "Runners" }
        h2 { "Waiting for adoption" }
        (table(&ctx, &pending, true))
        h2 { "Known runners" }
        (table(&ctx, &known, false))
    };
    Ok(page(&ctx, "Runners", false, body).into_response())
}

fn state_name(r: &pb::Runner) -> &'static str {
    match AdoptionState::try_from(r.adoption_state) {
        Ok(AdoptionState::Pending) => "pending",
        Ok(AdoptionState::Adopted) => "adopted",
        Ok(AdoptionState::Preadopted) => "pre-adopted",
        Ok(AdoptionState::Rejected) => "rejected",
        Err(_) => "",
    }
}

fn table(ctx: &Ctx, runners: &[pb::Runner], pending: bool) -> Markup {
    html! {
        @if runners.is_empty() { (none("None.")) } @else {
            div.scroll { table {
                thead { tr { th { "Id" } th { "Kind" } th { "State" } th { "Labels" } th { "Jobs" } th.hide-narrow { "Last seen" } th { span.skip { "Actions" } } } }
                tbody { @for r in runners { tr {
                    td { code { (r.id) } }
                    td { (if r.kind == pb::runner::Kind::Local as i32 { "local" } else { "remote" }) }
                    td { (state_name(r)) " " @if r.online { span.live { "● online" } } @else { span.muted { "offline" } } }
                    td { (labels(&r.labels)) }
                    td { (r.running_jobs) "/" (r.concurrency) }
                    td.hide-narrow { (when(r.last_seen.as_ref())) }
                    td {
                        @if pending {
                            (action(ctx, &r.id, "adopt", "Adopt"))
                            (action(ctx, &r.id, "reject", "Reject"))
                        }
                        (action(ctx, &r.id, "forget", "Forget"))
                    }
                } } }
            } }
        }
    }
}

fn action(ctx: &Ctx, id: &str, what: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/runners/" (seg(id)) } {
            (ctx.csrf_field())
            input type="hidden" name="action" value=(what);
            button.danger[what != "adopt"] type="submit" aria-label={ (label) " " (id) } { (label) }
            " "
        }
    }
}

/// The runner form.
#[derive(Debug, Deserialize)]
pub(crate) struct RunnerForm {
    action: String,
}

/// `POST /runners/{id}`: adopt, reject or forget.
pub(crate) async fn act(v: Viewer, Path(id): Path<String>, Form(f): Form<RunnerForm>) -> Page {
    match f.action.as_str() {
        "adopt" => v.api.adopt(&id, false).await?,
        "reject" => v.api.adopt(&id, true).await?,
        "forget" => v.api.forget(&id).await?,
        other => {
            return Err(UiError::invalid(format!(
                "A runner can be adopted, rejected or forgotten, not `{other}`."
            )));
        }
    }
    Ok(Redirect::to("/runners").into_response())
}
