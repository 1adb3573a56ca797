//! RunnerConfig (registration and adoption) and RunnerJobStream (one job per stream).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use wayline_proto::v1 as pb;
use wayline_proto::v1::runner::AdoptionState;
use wayline_proto::v1::runner_job_stream_request::Event as FromRunner;
use wayline_proto::v1::runner_job_stream_response as out;

use super::limits::MAX_PENDING_RUNNERS;
use super::{Out, Shared, store_status};
use crate::auth::{Claims, TokenKind, Tokens};
use crate::queue::{JobTx, RunnerInfo};

fn bound_runner(claims: Option<&Claims>, runner_id: &str) -> Result<(), Status> {
    match claims {
        Some(c)
            if c.kind == TokenKind::Runner
                && !c.runner_id.is_empty()
                && c.runner_id != runner_id =>
        {
            Err(Status::permission_denied(format!(
                "this runner token belongs to runner {}, not to runner {runner_id}",
                c.runner_id
            )))
        }
        _ => Ok(()),
    }
}

/// A runner adopted with `AdoptRunner` holds a token bound to its id; only that token may
/// register the id again, so a general runner token (or a login token) cannot take it over.
/// A runner preadopted with a general token belongs to that token the same way.
fn token_may_register(
    claims: &Claims,
    id: &str,
    stored: Option<&pb::Runner>,
) -> Result<(), Status> {
    let Some(stored) = stored else {
        return Ok(());
    };
    let state = AdoptionState::try_from(stored.adoption_state);
    if state == Ok(AdoptionState::Adopted) && claims.runner_id != id {
        return Err(Status::permission_denied(format!(
            "runner {id} is adopted: it connects only with its own runner token, not with a general one"
        )));
    }
    // Records from before the binding carry no token id: the next registration binds them.
    let first = &stored.registered_token_id;
    if state == Ok(AdoptionState::Preadopted)
        && claims.runner_id != id
        && !first.is_empty()
        && *first != claims.id
    {
        return Err(Status::permission_denied(format!(
            "runner {id} was registered with another token: it connects only with that token (to move it to this one, `wayline runner forget {id}` first)"
        )));
    }
    Ok(())
}

/// The runner as `ListRunners` and `GetRunner` show it: without the token binding.
pub(super) fn shown(mut runner: pb::Runner) -> pb::Runner {
    runner.registered_token_id.clear();
    runner
}

/// A runner without a token may register a new id, or reconnect one that still waits for
/// adoption; an adopted id belongs to the holder of its token, and the waiting room is bounded.
fn anonymous_may_register(
    shared: &Shared,
    id: &str,
    stored: Option<&pb::Runner>,
) -> Result<(), Status> {
    let state = stored.map(|s| AdoptionState::try_from(s.adoption_state));
    match state {
        Some(Ok(AdoptionState::Rejected)) => Err(Status::permission_denied(format!(
            "runner {id} was rejected by the server operator"
        ))),
        Some(Ok(AdoptionState::Adopted | AdoptionState::Preadopted)) => {
            Err(Status::permission_denied(format!(
                "runner {id} is adopted: it connects with its runner token, not without one"
            )))
        }
        Some(_) => Ok(()),
        None => {
            let waiting = shared.runners.pending_count();
            if waiting >= MAX_PENDING_RUNNERS {
                return Err(Status::resource_exhausted(format!(
                    "{waiting} runners already wait for adoption (the limit is {MAX_PENDING_RUNNERS}); adopt or forget some (`wayline runner list -pending`)"
                )));
            }
            Ok(())
        }
    }
}

async fn runner_config_vars(
    shared: &Shared,
    runner: &pb::Runner,
) -> Result<Vec<pb::ConfigVar>, Status> {
    let vars = shared.config_vars().await?;
    Ok(crate::config::resolve(
        &vars,
        &crate::config::Target {
            scope: pb::config_var::Scope::Runner as i32,
            project: "",
            app: "",
            workspace: "",
            labels: &runner.labels,
        },
    ))
}

/// Sends every connected runner its (possibly changed) config.
pub(super) async fn push_config(shared: &Shared) -> Result<(), Status> {
    for r in shared.runners.connected() {
        let config_vars = runner_config_vars(shared, &r).await?;
        shared.runners.send(
            &r.id,
            pb::RunnerConfigResponse {
                config: Some(pb::RunnerConfig { config_vars }),
                ..Default::default()
            },
        );
    }
    Ok(())
}

pub(super) async fn runner_config(
    shared: &Arc<Shared>,
    claims: Option<Claims>,
    mut inbound: Streaming<pb::RunnerConfigRequest>,
) -> Result<Out<pb::RunnerConfigResponse>, Status> {
    let first = inbound
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("the stream closed before the runner opened it"))?;
    let Some(pb::runner_config_request::Event::Open(open)) = first.event else {
        return Err(Status::invalid_argument(
            "the first message on RunnerConfig must be `open` with the runner",
        ));
    };
    let mut runner = open
        .runner
        .ok_or_else(|| Status::invalid_argument("open.runner is required"))?;
    if runner.id.is_empty() {
        return Err(Status::invalid_argument("open.runner.id is required"));
    }
    super::limits::runner(&runner)?;
    bound_runner(claims.as_ref(), &runner.id)?;
    let stored = shared
        .store
        .get_runner(&runner.id)
        .await
        .map_err(store_status)?;
    match &claims {
        None => anonymous_may_register(shared, &runner.id, stored.as_ref())?,
        Some(c) => token_may_register(c, &runner.id, stored.as_ref())?,
    }
    let now = wayline_core::time::now();
    runner.first_seen = stored.as_ref().and_then(|s| s.first_seen).or(Some(now));
    runner.last_seen = Some(now);
    // Adopted: holds a token bound to its id. Preadopted: came with a general token.
    runner.adoption_state = match &claims {
        Some(c) if c.runner_id == runner.id => AdoptionState::Adopted,
        Some(_) => AdoptionState::Preadopted,
        None => AdoptionState::Pending,
    } as i32;
    // Never the client's word: a preadopted id is bound to the token that registered it.
    runner.registered_token_id = match &claims {
        Some(c) if runner.adoption_state == AdoptionState::Preadopted as i32 => c.id.clone(),
        _ => String::new(),
    };
    shared
        .store
        .save_runner(&runner)
        .await
        .map_err(store_status)?;

    let (tx, rx) = mpsc::channel(8);
    if claims.is_some() {
        let config_vars = runner_config_vars(shared, &runner).await?;
        let _ = tx
            .send(Ok(pb::RunnerConfigResponse {
                config: Some(pb::RunnerConfig { config_vars }),
                ..Default::default()
            }))
            .await;
    } else {
        tracing::info!(
            runner = runner.id,
            "runner registered without a token; waiting for adoption"
        );
    }
    let id = runner.id.clone();
    let conn = shared.runners.connect(runner, tx, claims.map(|c| c.id));
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        // The runner stays online while this stream lives; heartbeats just keep it open.
        while let Ok(Some(_)) = inbound.message().await {}
        shared.runners.disconnect(&id, conn);
        match shared.runners.get(&id) {
            // The CLI's local runner lives for one command; once it is gone for good it would
            // only clutter `runner list`, so it is forgotten.
            Some(r) if r.kind == pb::runner::Kind::Local as i32 && !r.online => {
                shared.runners.reject(&id, "", true);
                let _ = shared.store.delete_runner(&id).await;
            }
            Some(r) => drop(shared.store.save_runner(&r)),
            None => {}
        }
        tracing::debug!(runner = id, "runner config stream closed");
    });
    Ok(ReceiverStream::new(rx))
}

/// `ListRunners`: every known runner, or only those waiting for adoption.
pub(super) fn list(shared: &Shared, pending_only: bool) -> pb::ListRunnersResponse {
    let mut runners: Vec<pb::Runner> = shared.runners.list().into_iter().map(shown).collect();
    if pending_only {
        runners.retain(|r| r.adoption_state == AdoptionState::Pending as i32);
    }
    pb::ListRunnersResponse { runners }
}

pub(super) async fn adopt(shared: &Shared, req: pb::AdoptRunnerRequest) -> Result<(), Status> {
    let id = req.runner_id;
    let Some(mut runner) = shared.runners.get(&id) else {
        return Err(Status::not_found(format!(
            "runner {id} is not known to this server"
        )));
    };
    if req.reject {
        runner.adoption_state = AdoptionState::Rejected as i32;
        shared
            .store
            .save_runner(&runner)
            .await
            .map_err(store_status)?;
        shared.runners.update(&runner);
        shared.runners.reject(
            &id,
            &format!("runner {id} was rejected by the server operator"),
            false,
        );
        shared.queue.drop_waiters(&id);
        return Ok(());
    }
    if !runner.online {
        return Err(Status::failed_precondition(format!(
            "runner {id} is not connected; adopt it while it waits (`wayline runner list -pending`)"
        )));
    }
    let mut claims = Tokens::claims(TokenKind::Runner, None);
    claims.runner_id.clone_from(&id);
    let token = shared.mint(claims).await?;
    runner.adoption_state = AdoptionState::Adopted as i32;
    shared
        .store
        .save_runner(&runner)
        .await
        .map_err(store_status)?;
    shared.runners.update(&runner);
    let config_vars = runner_config_vars(shared, &runner).await?;
    shared.runners.send(
        &id,
        pb::RunnerConfigResponse {
            config: Some(pb::RunnerConfig { config_vars }),
            runner_token: token,
            rejected: String::new(),
        },
    );
    tracing::info!(runner = id, "runner adopted");
    Ok(())
}

pub(super) async fn forget(shared: &Shared, id: &str) -> Result<(), Status> {
    let known = shared.runners.get(id).is_some();
    let stored = shared.store.delete_runner(id).await.map_err(store_status)?;
    if !known && !stored {
        return Err(Status::not_found(format!(
            "runner {id} is not known to this server"
        )));
    }
    shared.runners.reject(
        id,
        &format!("runner {id} was forgotten by the server; register it again to take jobs"),
        true,
    );
    shared.queue.drop_waiters(id);
    Ok(())
}

fn assignment(job: pb::Job, config_vars: Vec<pb::ConfigVar>) -> pb::RunnerJobStreamResponse {
    pb::RunnerJobStreamResponse {
        event: Some(out::Event::Assignment(out::JobAssignment {
            job: Some(job),
            config_vars,
        })),
    }
}

pub(super) async fn job_stream(
    shared: &Arc<Shared>,
    claims: Claims,
    mut inbound: Streaming<pb::RunnerJobStreamRequest>,
) -> Result<Out<pb::RunnerJobStreamResponse>, Status> {
    let first = inbound
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("the stream closed before the runner's request"))?;
    let Some(FromRunner::Request(request)) = first.event else {
        return Err(Status::invalid_argument(
            "the first message on RunnerJobStream must be a request",
        ));
    };
    let runner_id = request.runner_id;
    if runner_id.is_empty() {
        return Err(Status::invalid_argument("request.runner_id is required"));
    }
    bound_runner(Some(&claims), &runner_id)?;
    let runner = match shared.runners.get(&runner_id) {
        Some(r) => r,
        None => shared
            .store
            .get_runner(&runner_id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "runner {runner_id} is not registered: open RunnerConfig before asking for jobs"
                ))
            })?,
    };
    if !crate::runners::is_adopted(&runner) {
        return Err(Status::permission_denied(format!(
            "runner {runner_id} is waiting to be adopted: run `wayline runner adopt {runner_id}`"
        )));
    }
    let config_vars = runner_config_vars(shared, &runner).await?;
    let (tx, rx) = mpsc::channel(16);
    let conn = shared.conn_id();
    let reattach = if request.reattach_job_id.is_empty() {
        None
    } else {
        Some(
            shared
                .queue
                .reattach(&request.reattach_job_id, &runner_id, (conn, tx.clone()))?,
        )
    };
    let shared = Arc::clone(shared);
    let info = RunnerInfo {
        id: runner_id,
        labels: runner.labels,
        by_id_only: runner.by_id_only,
    };
    tokio::spawn(async move {
        drive(&shared, conn, info, tx, inbound, reattach, config_vars).await;
    });
    Ok(ReceiverStream::new(rx))
}

/// Runs one job stream: wait for an assignment, wait for the ack, then follow the job.
async fn drive(
    shared: &Shared,
    conn: u64,
    runner: RunnerInfo,
    tx: JobTx,
    mut inbound: Streaming<pb::RunnerJobStreamRequest>,
    reattach: Option<pb::Job>,
    config_vars: Vec<pb::ConfigVar>,
) {
    let queue = &shared.queue;
    let runner_id = runner.id.clone();
    let (job, acked) = if let Some(job) = reattach {
        (job, true)
    } else {
        let Some(job) = assignment_for(shared, conn, runner, &tx, &mut inbound).await else {
            return;
        };
        (job, false)
    };
    let id = job.id.clone();
    if tx.send(Ok(assignment(job, config_vars))).await.is_err() {
        if acked {
            queue.detach(&id, conn);
        } else {
            queue.requeue(
                &id,
                conn,
                "runner stream closed before the assignment was sent",
            );
        }
        return;
    }
    if !acked && !acknowledged(shared, &id, conn, &tx, &mut inbound).await {
        return;
    }
    follow_job(shared, &id, conn, &runner_id, &tx, &mut inbound).await;
}

/// Waits in the queue for a job for this runner; `None` when the stream closed first (the
/// request withdrawn, and a job assigned in the race given back).
async fn assignment_for(
    shared: &Shared,
    conn: u64,
    runner: RunnerInfo,
    tx: &JobTx,
    inbound: &mut Streaming<pb::RunnerJobStreamRequest>,
) -> Option<pb::Job> {
    let queue = &shared.queue;
    let (waiter, mut assigned) = queue.request(runner, (conn, tx.clone()));
    loop {
        tokio::select! {
            job = &mut assigned => match job {
                Ok(j) => return Some(j),
                Err(_) => return None,
            },
            msg = inbound.message() => {
                if let Ok(Some(_)) = msg {
                    continue; // e.g. a heartbeat while idle
                }
                queue.withdraw(waiter);
                // An assignment may have raced with the close: give it back.
                if let Ok(j) = assigned.try_recv() {
                    queue.requeue(&j.id, conn, "runner closed the stream before receiving the job");
                }
                return None;
            }
        }
    }
}

/// Waits (bounded) for the runner's ack of the job just sent; false when the job went back to
/// the queue, failed, or could not be acked, and the stream should end.
async fn acknowledged(
    shared: &Shared,
    id: &str,
    conn: u64,
    tx: &JobTx,
    inbound: &mut Streaming<pb::RunnerJobStreamRequest>,
) -> bool {
    let queue = &shared.queue;
    match tokio::time::timeout(shared.timeouts.ack, inbound.message()).await {
        Ok(Ok(Some(pb::RunnerJobStreamRequest {
            event: Some(FromRunner::Ack(_)),
        }))) => {
            if let Err(e) = queue.ack(id, conn) {
                let _ = tx.send(Err(e.into())).await;
                return false;
            }
            true
        }
        Ok(Ok(Some(pb::RunnerJobStreamRequest {
            event: Some(FromRunner::Error(e)),
        }))) => {
            // The runner refused the job before starting it.
            let err = e.error.unwrap_or_default();
            let _ = queue.complete(id, conn, Err(err)).await;
            false
        }
        Ok(Ok(Some(_))) => {
            queue.requeue(id, conn, "runner sent something other than an ack");
            let _ = tx
                .send(Err(Status::invalid_argument(
                    "expected an ack after the assignment; the job was given back to the queue",
                )))
                .await;
            false
        }
        Ok(Ok(None) | Err(_)) => {
            queue.requeue(id, conn, "runner went away before acknowledging");
            false
        }
        Err(_) => {
            queue.requeue(id, conn, "ack timeout");
            let _ = tx
                .send(Err(Status::deadline_exceeded(format!(
                    "job {id} was not acknowledged within {}; it was given back to the queue",
                    humantime::format_duration(shared.timeouts.ack)
                ))))
                .await;
            false
        }
    }
}

/// Follows a running job: terminal output and provenance into the queue, heartbeats within
/// their timeout, until it completes, fails, or the runner goes away.
async fn follow_job(
    shared: &Shared,
    id: &str,
    conn: u64,
    runner_id: &str,
    tx: &JobTx,
    inbound: &mut Streaming<pb::RunnerJobStreamRequest>,
) {
    let queue = &shared.queue;
    loop {
        match tokio::time::timeout(shared.timeouts.heartbeat, inbound.message()).await {
            Err(_) => {
                if !queue.heartbeat_lost(id, conn, runner_id).await {
                    return;
                }
                let _ = tx
                    .send(Err(Status::deadline_exceeded(format!(
                        "no heartbeat for {}; job {id} was marked failed",
                        humantime::format_duration(shared.timeouts.heartbeat)
                    ))))
                    .await;
                return;
            }
            Ok(Ok(None) | Err(_)) => {
                queue.detach(id, conn);
                return;
            }
            Ok(Ok(Some(msg))) => {
                let r = match msg.event {
                    Some(
                        FromRunner::Heartbeat(()) | FromRunner::Ack(_) | FromRunner::Request(_),
                    )
                    | None => Ok(()),
                    Some(FromRunner::Terminal(batch)) => queue.terminal(id, conn, batch.events),
                    Some(FromRunner::Provenance(p)) => queue.provenance(id, conn, p),
                    Some(FromRunner::Complete(c)) => {
                        let _ = queue.complete(id, conn, Ok(c.result)).await;
                        return;
                    }
                    Some(FromRunner::Error(e)) => {
                        let _ = queue
                            .complete(id, conn, Err(e.error.unwrap_or_default()))
                            .await;
                        return;
                    }
                };
                if let Err(e) = r {
                    // The job ended under us (forced cancel): tell the runner and stop.
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            }
        }
    }
}
