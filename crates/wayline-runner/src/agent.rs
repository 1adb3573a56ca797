//! The runner loop: register with the server, take jobs, run them, report.
//!
//! One `RunnerConfig` stream keeps the runner registered (and delivers its token when it is
//! adopted, or a rejection when it is forgotten). Each of `concurrency` slots opens a
//! `RunnerJobStream`, waits for an assignment, acks, then streams terminal events and
//! heartbeats until the job completes. If the stream breaks while a job runs, the job keeps
//! running and the slot reconnects with `reattach_job_id`, resending what the server missed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use wayline_proto::v1::runner_config_request::{self, Open};
use wayline_proto::v1::runner_job_stream_request::{
    Ack, Complete, Error as StreamError, Request, TerminalBatch,
};
use wayline_proto::v1::runner_job_stream_response::Event as Inbound;
use wayline_proto::v1::{
    ConfigVar, Job, JobError, JobResult, Runner as RunnerRecord, RunnerConfigRequest,
    RunnerJobStreamRequest, TerminalEvent, runner, runner_job_stream_request::Event as Outbound,
};

use crate::client::{Auth, Client};
use crate::events::EventSink;
use crate::retry::Backoff;

/// How often a running job tells the server it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// What a runner is.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub id: String,
    pub labels: HashMap<String, String>,
    /// Take only jobs targeted at this runner's id (the CLI's local runner).
    pub by_id_only: bool,
    pub local: bool,
    pub concurrency: usize,
    /// How long a job waits for a server that went away (its calls are retried meanwhile)
    /// before it fails; [`crate::retry::DEFAULT_SERVER_WAIT`] for `wayline runner agent`.
    pub server_wait: Duration,
}

/// Everything a job gets from the runner besides the job itself.
#[derive(Clone)]
pub struct JobContext {
    pub client: Client,
    pub events: EventSink,
    pub cancel: CancellationToken,
    /// Server-side config for runners (RUNNER scope).
    pub config_vars: Vec<ConfigVar>,
    pub runner_id: String,
    /// How long the job's server calls wait out an unreachable server.
    pub server_wait: Duration,
}

/// A boxed job future.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<JobResult, JobError>> + Send>>;

/// Runs one job. The runner crate's [`crate::executor::Executor`] is the real one; tests and
/// benchmarks may plug in their own.
pub trait JobExecutor: Send + Sync + 'static {
    fn execute(&self, job: Job, ctx: JobContext) -> JobFuture;
}

/// Why the runner stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("the server rejected this runner: {0}")]
    Rejected(String),
}

/// A runner bound to a server.
pub struct Runner {
    client: Client,
    auth: Auth,
    opts: RunnerOptions,
    executor: Arc<dyn JobExecutor>,
}

impl Runner {
    /// A runner that will talk to the server through `client` (whose token `auth` controls).
    pub fn new(
        client: Client,
        auth: Auth,
        opts: RunnerOptions,
        executor: Arc<dyn JobExecutor>,
    ) -> Self {
        Self {
            client,
            auth,
            opts,
            executor,
        }
    }

    /// Runs until `shutdown` is cancelled (after the jobs in flight finish) or the server
    /// rejects the runner.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunnerError> {
        let this = Arc::new(self);
        let (rejected_tx, mut rejected_rx) = mpsc::channel::<String>(1);
        let (registered_tx, mut registered_rx) = tokio::sync::watch::channel(false);
        let registration = tokio::spawn(Arc::clone(&this).keep_registered(
            shutdown.clone(),
            rejected_tx,
            registered_tx,
        ));
        // Job streams are refused until the server knows the runner: wait for its first answer
        // (a pending runner gets it when it is adopted) instead of failing and backing off.
        tokio::select! {
            _ = registered_rx.wait_for(|r| *r) => {}
            () = shutdown.cancelled() => {}
            Some(reason) = rejected_rx.recv() => {
                registration.abort();
                return Err(RunnerError::Rejected(reason));
            }
        }
        let mut slots = Vec::new();
        for slot in 0..this.opts.concurrency.max(1) {
            slots.push(tokio::spawn(
                Arc::clone(&this).slot_loop(slot, shutdown.clone()),
            ));
        }
        let outcome = tokio::select! {
            () = shutdown.cancelled() => Ok(()),
            Some(reason) = rejected_rx.recv() => Err(RunnerError::Rejected(reason)),
        };
        shutdown.cancel();
        for s in slots {
            let _ = s.await;
        }
        registration.abort();
        outcome
    }

    fn record(&self) -> RunnerRecord {
        RunnerRecord {
            id: self.opts.id.clone(),
            labels: self.opts.labels.clone(),
            by_id_only: self.opts.by_id_only,
            kind: if self.opts.local {
                runner::Kind::Local
            } else {
                runner::Kind::Remote
            } as i32,
            concurrency: self.opts.concurrency as u32,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        }
    }

    /// Holds the `RunnerConfig` stream open, reconnecting with backoff.
    async fn keep_registered(
        self: Arc<Self>,
        shutdown: CancellationToken,
        rejected: mpsc::Sender<String>,
        registered: tokio::sync::watch::Sender<bool>,
    ) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            let (tx, rx) = mpsc::channel(4);
            let open = RunnerConfigRequest {
                event: Some(runner_config_request::Event::Open(Open {
                    runner: Some(self.record()),
                })),
            };
            let _ = tx.send(open).await;
            let mut client = self.client.clone();
            match client.runner_config(ReceiverStream::new(rx)).await {
                Ok(resp) => {
                    let mut inbound = resp.into_inner();
                    let mut beat = tokio::time::interval(HEARTBEAT_INTERVAL);
                    loop {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            _ = beat.tick() => {
                                let hb = RunnerConfigRequest { event: Some(runner_config_request::Event::Heartbeat(())) };
                                if tx.send(hb).await.is_err() { break; }
                            }
                            msg = inbound.message() => match msg {
                                Ok(Some(m)) => {
                                    backoff.reset();
                                    registered.send_replace(true);
                                    if !m.rejected.is_empty() {
                                        let _ = rejected.send(m.rejected).await;
                                        return;
                                    }
                                    if !m.runner_token.is_empty() {
                                        info!(runner = %self.opts.id, "runner adopted; using its runner token");
                                        if let Err(e) = self.auth.set_token(&m.runner_token) {
                                            warn!(error = %e, "server sent an unusable runner token");
                                        }
                                    }
                                }
                                Ok(None) => break,
                                Err(status) => {
                                    if is_rejection(&status) {
                                        let _ = rejected.send(status.message().to_owned()).await;
                                        return;
                                    }
                                    debug!(error = %status, "runner config stream ended");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(status) if is_rejection(&status) => {
                    let _ = rejected.send(status.message().to_owned()).await;
                    return;
                }
                Err(status) => debug!(error = %status, "could not register runner"),
            }
            backoff.sleep(&shutdown).await;
        }
    }

    /// One concurrency slot: take a job, run it, repeat.
    async fn slot_loop(self: Arc<Self>, slot: usize, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            match self.take_one(&shutdown).await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    debug!(slot, error = %e, "job stream failed; retrying");
                    backoff.sleep(&shutdown).await;
                }
            }
        }
    }

    /// Waits for one assignment and runs it to completion.
    async fn take_one(&self, shutdown: &CancellationToken) -> Result<(), tonic::Status> {
        let (tx, rx) = mpsc::channel(64);
        send(
            &tx,
            Outbound::Request(Request {
                runner_id: self.opts.id.clone(),
                reattach_job_id: String::new(),
            }),
        )
        .await?;
        let mut client = self.client.clone();
        let mut inbound = client
            .runner_job_stream(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let assignment = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            m = inbound.message() => m?,
        };
        let Some(Inbound::Assignment(assignment)) = assignment.and_then(|m| m.event) else {
            return Err(tonic::Status::unavailable(
                "job stream closed before an assignment",
            ));
        };
        let Some(job) = assignment.job else {
            return Err(tonic::Status::internal("assignment without a job"));
        };
        send(&tx, Outbound::Ack(Ack {})).await?;
        let stream = JobStream {
            tx,
            inbound,
            pending: Vec::new(),
        };
        self.run_job(job, assignment.config_vars, stream).await;
        Ok(())
    }

    /// Runs an acked job to completion, streaming its events and heartbeats, and reports its
    /// end (reattaching to the job whenever the stream breaks).
    async fn run_job(&self, job: Job, config_vars: Vec<ConfigVar>, mut stream: JobStream) {
        let job_id = job.id.clone();
        info!(job = %job_id, op = wayline_core::jobs::operation_name(job.operation.as_ref()), "running job");
        let cancel = CancellationToken::new();
        let (events, mut events_rx) = EventSink::channel();
        let ctx = JobContext {
            client: self.client.clone(),
            events,
            cancel: cancel.clone(),
            config_vars,
            runner_id: self.opts.id.clone(),
            server_wait: self.opts.server_wait,
        };
        let (done_tx, mut done_rx) = oneshot::channel();
        let work = self.executor.execute(job, ctx);
        tokio::spawn(async move {
            let _ = done_tx.send(work.await);
        });

        let mut beat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let outcome = loop {
            tokio::select! {
                Some(ev) = events_rx.recv() => {
                    stream.pending.push(ev);
                    while stream.pending.len() < 256 {
                        match events_rx.try_recv() { Ok(ev) => stream.pending.push(ev), Err(_) => break }
                    }
                    stream.flush_or_reattach(self, &job_id, &cancel).await;
                }
                _ = beat.tick() => {
                    if send(&stream.tx, Outbound::Heartbeat(())).await.is_err() {
                        stream.reattach(self, &job_id, &cancel).await;
                    }
                }
                msg = stream.inbound.message() => match msg {
                    Ok(Some(m)) => if let Some(Inbound::Cancel(c)) = m.event {
                        info!(job = %job_id, force = c.force, "job cancelled by the server");
                        cancel.cancel();
                    },
                    Ok(None) | Err(_) => stream.reattach(self, &job_id, &cancel).await,
                },
                result = &mut done_rx => {
                    break result.unwrap_or_else(|_| Err(JobError { code: 13, message: "the job's task panicked".into() }));
                }
            }
        };
        while let Ok(ev) = events_rx.try_recv() {
            stream.pending.push(ev);
        }
        stream.flush_or_reattach(self, &job_id, &cancel).await;
        let last = match outcome {
            Ok(result) => Outbound::Complete(Complete {
                result: Some(result),
            }),
            Err(error) => Outbound::Error(StreamError { error: Some(error) }),
        };
        // The final message must arrive; retry through reattachment a few times.
        for _ in 0..5 {
            if send(&stream.tx, last.clone()).await.is_ok() {
                break;
            }
            stream.reattach(self, &job_id, &cancel).await;
        }
        drop(stream.tx);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Ok(Some(_)) = stream.inbound.message().await {}
        })
        .await;
    }
}

/// The live job stream of one running job.
struct JobStream {
    tx: mpsc::Sender<RunnerJobStreamRequest>,
    inbound: tonic::Streaming<wayline_proto::v1::RunnerJobStreamResponse>,
    /// Events not yet handed to the stream.
    pending: Vec<TerminalEvent>,
}

impl JobStream {
    async fn flush_or_reattach(
        &mut self,
        runner: &Runner,
        job_id: &str,
        cancel: &CancellationToken,
    ) {
        if self.pending.is_empty() {
            return;
        }
        let batch = Outbound::Terminal(TerminalBatch {
            events: self.pending.clone(),
        });
        if send(&self.tx, batch).await.is_ok() {
            self.pending.clear();
        } else {
            self.reattach(runner, job_id, cancel).await;
        }
    }

    /// Reopens the stream for a job that is still running. Gives up after the runner's server
    /// wait; the job then finishes locally and the server marks it failed after its heartbeat
    /// timeout.
    async fn reattach(&mut self, runner: &Runner, job_id: &str, cancel: &CancellationToken) {
        let mut backoff = Backoff::default();
        let started = std::time::Instant::now();
        for attempt in 0u32.. {
            if started.elapsed() > runner.opts.server_wait {
                warn!(job = %job_id, "the server stayed unreachable; giving up on the job stream");
                return;
            }
            let (tx, rx) = mpsc::channel(64);
            let req = Request {
                runner_id: runner.opts.id.clone(),
                reattach_job_id: job_id.to_owned(),
            };
            if send(&tx, Outbound::Request(req)).await.is_err() {
                return;
            }
            let mut client = runner.client.clone();
            match client.runner_job_stream(ReceiverStream::new(rx)).await {
                Ok(resp) => {
                    info!(job = %job_id, attempt, "re-attached to the job after losing the stream");
                    self.tx = tx;
                    self.inbound = resp.into_inner();
                    return;
                }
                Err(status)
                    if status.code() == tonic::Code::NotFound
                        || status.code() == tonic::Code::FailedPrecondition =>
                {
                    warn!(job = %job_id, error = %status, "server no longer has this job; cancelling it");
                    cancel.cancel();
                    return;
                }
                Err(status) => debug!(job = %job_id, error = %status, "re-attach failed"),
            }
            backoff.sleep(&CancellationToken::new()).await;
        }
    }
}

async fn send(
    tx: &mpsc::Sender<RunnerJobStreamRequest>,
    event: Outbound,
) -> Result<(), tonic::Status> {
    tx.send(RunnerJobStreamRequest { event: Some(event) })
        .await
        .map_err(|_| tonic::Status::unavailable("job stream closed"))
}

fn is_rejection(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
    )
}
