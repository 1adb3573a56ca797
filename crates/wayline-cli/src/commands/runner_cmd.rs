//! `runner agent|list|inspect|adopt|reject|forget|token`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;
use wayline_core::pb::{self, Runner, runner};
use wayline_core::{labels, time};
use wayline_runner::RunnerOptions;

use super::{Env, describe_status};
use crate::cli::RunnerCmd;
use crate::render;
use crate::render::{note, say};
use crate::session;

fn err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(describe_status(&s))
}

fn runner_json(r: &Runner) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "labels": r.labels, "online": r.online, "kind": if r.kind() == runner::Kind::Local { "local" } else { "remote" },
        "adoption": adoption(r), "by_id_only": r.by_id_only, "concurrency": r.concurrency, "running_jobs": r.running_jobs,
        "last_seen": r.last_seen.as_ref().map(time::to_millis), "version": r.version,
    })
}

fn adoption(r: &Runner) -> &'static str {
    match r.adoption_state() {
        runner::AdoptionState::Pending => "pending",
        runner::AdoptionState::Adopted => "adopted",
        runner::AdoptionState::Preadopted => "preadopted",
        runner::AdoptionState::Rejected => "rejected",
    }
}

/// The rows of `runner list`.
fn runner_rows(runners: &[pb::Runner]) -> Vec<Vec<String>> {
    runners
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                if r.kind() == runner::Kind::Local {
                    "local".into()
                } else {
                    "remote".into()
                },
                if r.online {
                    "online".into()
                } else {
                    "offline".into()
                },
                adoption(r).into(),
                labels::display(&r.labels),
                r.last_seen.as_ref().map(time::ago).unwrap_or_default(),
            ]
        })
        .collect()
}

/// The fields `runner inspect` shows.
fn runner_fields(r: &pb::Runner) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("ID", r.id.clone()),
        (
            "State",
            if r.online { "online" } else { "offline" }.to_owned(),
        ),
        ("Adoption", adoption(r).to_owned()),
        ("Labels", labels::display(&r.labels)),
        (
            "Concurrency",
            format!("{} ({} running)", r.concurrency, r.running_jobs),
        ),
    ];
    if let Some(t) = &r.last_seen {
        rows.push(("Last seen", time::ago(t)));
    }
    rows
}

/// `runner list`: the runners (only those waiting for adoption with `pending`).
fn print_runners(env: &Env, runners: &[pb::Runner], pending: bool) {
    if env.global.json {
        render::json(&serde_json::Value::Array(
            runners.iter().map(runner_json).collect(),
        ));
    } else if runners.is_empty() {
        say!(
            "No runners{}.",
            if pending { " waiting for adoption" } else { "" }
        );
    } else {
        let rows = runner_rows(runners);
        render::table(
            &["ID", "KIND", "STATE", "ADOPTION", "LABELS", "LAST SEEN"],
            &rows,
        );
    }
}

pub(crate) async fn runner(env: &Env, cmd: RunnerCmd) -> Result<ExitCode> {
    if let RunnerCmd::Agent {
        id,
        label,
        concurrency,
        state_dir,
        request_adoption,
    } = cmd
    {
        return agent(id, label, concurrency, state_dir, request_adoption).await;
    }
    let mut s = session::connect().await?;
    match cmd {
        RunnerCmd::Agent { .. } => unreachable!("handled above"),
        RunnerCmd::List { pending } => {
            let runners = s
                .client
                .list_runners(pb::ListRunnersRequest { pending })
                .await
                .map_err(err)?
                .into_inner()
                .runners;
            print_runners(env, &runners, pending);
        }
        RunnerCmd::Inspect { id } => {
            let r = s
                .client
                .get_runner(pb::GetRunnerRequest { runner_id: id })
                .await
                .map_err(err)?
                .into_inner();
            if env.global.json {
                render::json(&runner_json(&r));
            } else {
                render::fields(&runner_fields(&r));
            }
        }
        RunnerCmd::Adopt { id } => {
            s.client
                .adopt_runner(pb::AdoptRunnerRequest {
                    runner_id: id.clone(),
                    reject: false,
                })
                .await
                .map_err(err)?;
            say!("Runner {id} adopted.");
        }
        RunnerCmd::Reject { id } => {
            s.client
                .adopt_runner(pb::AdoptRunnerRequest {
                    runner_id: id.clone(),
                    reject: true,
                })
                .await
                .map_err(err)?;
            say!("Runner {id} rejected.");
        }
        RunnerCmd::Forget { id } => {
            s.client
                .forget_runner(pb::ForgetRunnerRequest {
                    runner_id: id.clone(),
                })
                .await
                .map_err(err)?;
            say!("Runner {id} forgotten.");
        }
        RunnerCmd::Token {
            id,
            label,
            expires_in,
        } => {
            let labels = labels::parse_user_labels(label.iter().map(String::as_str))?;
            let token = s
                .client
                .generate_runner_token(pb::GenerateRunnerTokenRequest {
                    runner_id: id.unwrap_or_default(),
                    labels: labels.into_iter().collect(),
                    expires_in,
                })
                .await
                .map_err(err)?
                .into_inner()
                .token;
            say!("{token}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a runner until Ctrl-C or SIGTERM (jobs in flight finish first).
async fn agent(
    id: Option<String>,
    label: Vec<String>,
    concurrency: usize,
    state_dir: Option<std::path::PathBuf>,
    request_adoption: bool,
) -> Result<ExitCode> {
    let state_dir = state_dir.unwrap_or_else(|| crate::context::data_dir().join("runner"));
    let id = match id.or_else(|| crate::context::env("RUNNER_ID")) {
        Some(id) => id,
        None => {
            fs_err::create_dir_all(&state_dir)?;
            let path = state_dir.join("id");
            if let Ok(existing) = std::fs::read_to_string(&path) {
                existing.trim().to_owned()
            } else {
                let id = wayline_core::id::new_id();
                fs_err::write(&path, &id).context("cannot store the runner id")?;
                id
            }
        }
    };
    let labels = labels::parse_user_labels(label.iter().map(String::as_str))?;
    let session = if request_adoption {
        note!("Runner {id} asks to be adopted: run `wayline runner adopt {id}`.");
        session::connect_without_token().await?
    } else {
        session::connect().await?
    };
    note!(
        "Runner {id} connected to {} (labels {}).",
        session.context.address,
        labels::display(&labels)
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        note!("Stopping: finishing the jobs in flight...");
        stop.cancel();
    });
    let runner = wayline_runner::Runner::new(
        session.client.clone(),
        session.auth.clone(),
        RunnerOptions {
            id,
            labels: labels.into_iter().collect(),
            by_id_only: false,
            local: false,
            concurrency,
            server_wait: wayline_runner::retry::DEFAULT_SERVER_WAIT,
        },
        Arc::new(wayline_runner::executor::Executor::remote()),
    );
    runner.run(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
