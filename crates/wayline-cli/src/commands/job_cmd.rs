//! `job list|inspect|cancel|get-stream`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use wayline_core::pb::{self, Job, job};
use wayline_core::{jobs, labels, time};

use super::{Env, describe_status};
use crate::cli::JobCmd;
use crate::render;
use crate::render::say;
use crate::session;

fn err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(describe_status(&s))
}

fn parse_state(s: &str) -> Result<job::State> {
    Ok(match s {
        "queued" => job::State::Queued,
        "waiting" => job::State::Waiting,
        "running" => job::State::Running,
        "success" => job::State::Success,
        "error" => job::State::Error,
        "cancelled" => job::State::Cancelled,
        other => bail!(
            "`{other}` is not a job state: queued, waiting, running, success, error or cancelled"
        ),
    })
}

fn target_text(j: &Job) -> String {
    match j.target_runner.as_ref().and_then(|t| t.target.as_ref()) {
        Some(pb::target_runner::Target::Id(id)) => format!("runner {id}"),
        Some(pb::target_runner::Target::Labels(l)) => {
            format!("runners with labels {}", labels::display(&l.labels))
        }
        _ => "any runner".to_owned(),
    }
}

fn job_json(j: &Job) -> serde_json::Value {
    serde_json::json!({
        "id": j.id,
        "operation": jobs::operation_name(j.operation.as_ref()),
        "state": jobs::state_name(j.state()),
        "project": j.application.as_ref().map(|a| a.project.clone()),
        "app": j.application.as_ref().map(|a| a.application.clone()),
        "workspace": j.workspace,
        "target": target_text(j),
        "assigned_runner": j.assigned_runner_id,
        "wait_reason": j.wait_reason,
        "error": j.error.as_ref().map(|e| e.message.clone()),
        "queue_time": j.queue_time.as_ref().map(time::to_millis),
        "complete_time": j.complete_time.as_ref().map(time::to_millis),
        "depends_on": j.depends_on,
    })
}

/// The rows of `job list`: ids shortened to what tells them apart (unless `long_ids`).
fn job_rows(jobs: &[pb::Job], long_ids: bool) -> Vec<Vec<String>> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let id_len = if long_ids {
        usize::MAX
    } else {
        render::short_id_len(&ids)
    };
    jobs.iter()
        .map(|j| {
            vec![
                render::short_id(&j.id, id_len),
                jobs::operation_name(j.operation.as_ref()).to_owned(),
                jobs::state_name(j.state()).to_owned(),
                j.application
                    .as_ref()
                    .map(|a| format!("{}/{}", a.project, a.application))
                    .unwrap_or_default(),
                j.workspace.clone(),
                j.queue_time.as_ref().map(time::ago).unwrap_or_default(),
            ]
        })
        .collect()
}

/// The fields `job inspect` shows.
fn job_fields(j: &pb::Job) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("ID", j.id.clone()),
        (
            "Operation",
            jobs::operation_name(j.operation.as_ref()).to_owned(),
        ),
        ("State", jobs::state_name(j.state()).to_owned()),
    ];
    if let Some(a) = &j.application {
        rows.push((
            "App",
            format!(
                "{}/{} (workspace {})",
                a.project, a.application, j.workspace
            ),
        ));
    }
    rows.push(("Target", target_text(j)));
    if !j.assigned_runner_id.is_empty() {
        rows.push(("Runner", j.assigned_runner_id.clone()));
    }
    if !j.wait_reason.is_empty() {
        rows.push(("Waiting", j.wait_reason.clone()));
    }
    if let Some(e) = j.error.as_ref().filter(|e| !e.message.is_empty()) {
        rows.push(("Error", e.message.clone()));
    }
    if let Some(t) = &j.queue_time {
        rows.push(("Queued", time::ago(t)));
    }
    if let Some(t) = &j.complete_time {
        rows.push(("Completed", time::ago(t)));
    }
    if !j.depends_on.is_empty() {
        rows.push(("Depends on", j.depends_on.join(", ")));
    }
    rows
}

pub(crate) async fn job(env: &Env, cmd: JobCmd) -> Result<ExitCode> {
    let mut s = session::connect().await?;
    match cmd {
        JobCmd::List {
            state,
            target_runner_id,
            limit,
            long_ids,
        } => {
            let states = state
                .iter()
                .map(|s| parse_state(s).map(|s| s as i32))
                .collect::<Result<Vec<_>>>()?;
            // `-project` / `-app` / `-workspace` narrow the list (either of the first two alone
            // works too); without them every job is listed.
            let application =
                (env.global.project.is_some() || env.global.app.is_some()).then(|| {
                    pb::r#ref::Application {
                        project: env.global.project.clone().unwrap_or_default(),
                        application: env.global.app.clone().unwrap_or_default(),
                    }
                });
            let jobs = s
                .client
                .list_jobs(pb::ListJobsRequest {
                    application,
                    workspace: env.global.workspace.clone().unwrap_or_default(),
                    states,
                    target_runner_id: target_runner_id.unwrap_or_default(),
                    limit,
                    ..Default::default()
                })
                .await
                .map_err(err)?
                .into_inner()
                .jobs;
            if env.global.json {
                render::json(&serde_json::Value::Array(
                    jobs.iter().map(job_json).collect(),
                ));
            } else if jobs.is_empty() {
                say!("No jobs.");
            } else {
                let rows = job_rows(&jobs, long_ids);
                render::table(
                    &["ID", "OPERATION", "STATE", "APP", "WORKSPACE", "QUEUED"],
                    &rows,
                );
            }
        }
        JobCmd::Inspect { id, timings } => {
            let j = s
                .client
                .get_job(pb::GetJobRequest { job_id: id })
                .await
                .map_err(err)?
                .into_inner();
            if env.global.json {
                render::json(&job_json(&j));
            } else {
                render::fields(&job_fields(&j));
            }
            if timings {
                return super::timings::print(&mut s, &j.id).await;
            }
        }
        JobCmd::Cancel { id, force } => {
            s.client
                .cancel_job(pb::CancelJobRequest {
                    job_id: id.clone(),
                    force,
                })
                .await
                .map_err(err)?;
            say!(
                "Cancellation of job {id} requested{}.",
                if force { " (forced)" } else { "" }
            );
        }
        JobCmd::RunBackground { id } => return super::ops::run_background(s, &id).await,
        JobCmd::GetStream { id } => {
            return super::ops::follow_job(env, &mut s, &id, true, super::ops::DEFAULT_SERVER_WAIT)
                .await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
