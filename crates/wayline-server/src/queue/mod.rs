//! The job queue: in-memory state machine for unfinished jobs, written through to the store.
//!
//! Assignment is event-driven: a job is matched when it is queued, when a runner asks for work,
//! and when something that blocked it ends (a dependency, a serialised deploy). No loop polls.
//! Every state change is enqueued to the store while the queue lock is held, so the store sees
//! changes in the order they happened; only QueueJob and job completion wait for the commit.
//! Timeouts (ack, heartbeat, reattach, expiry) are one sleeping task per event, checked against
//! a generation number so a stale timer does nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use wayline_core::jobs as rules;
use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response as gjs;
use wayline_proto::v1::job::State;

use crate::runners::{self, Runners};

mod log;
mod orphans;
mod transition;
mod wait;

use crate::store::{Pending, Store};
pub(crate) use log::JobLog;
use transition::{enter_queue, state_of, transition};
pub(crate) use wait::describe_job;

/// Sender half of a runner's RunnerJobStream responses.
pub(crate) type JobTx = mpsc::Sender<Result<pb::RunnerJobStreamResponse, Status>>;

/// What a runner that asks for work looks like to the queue.
#[derive(Debug, Clone)]
pub(crate) struct RunnerInfo {
    pub(crate) id: String,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) by_id_only: bool,
}

type SerialKey = (String, String, String);

struct Active {
    job: pb::Job,
    order: u64,
    log: Arc<JobLog>,
    stream: Option<(u64, JobTx)>,
    /// Bumped on every assignment/attachment so stale timers can tell.
    generation: u64,
    /// Set while a RUNNING job's runner is disconnected.
    detached: bool,
}

struct Waiter {
    id: u64,
    runner: RunnerInfo,
    tx: oneshot::Sender<pb::Job>,
    stream: (u64, JobTx),
}

#[derive(Default)]
struct QueueState {
    jobs: HashMap<String, Active>,
    queued: BTreeMap<u64, String>,
    waiters: Vec<Waiter>,
    serial_holder: HashMap<SerialKey, String>,
    serial_queue: HashMap<SerialKey, VecDeque<String>>,
    singletons: HashMap<String, String>,
    /// Unfinished job id → unfinished jobs that depend on it.
    dependents: HashMap<String, Vec<String>>,
    finished: HashMap<String, Arc<JobLog>>,
    next_order: u64,
    next_id: u64,
}

/// Timeouts the queue enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) ack: Duration,
    pub(crate) heartbeat: Duration,
}

/// The job queue.
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    store: Arc<dyn Store>,
    runners: Arc<Runners>,
    timeouts: Timeouts,
    me: std::sync::Weak<Queue>,
}

/// What a blocked job waits for.
enum Blocker {
    Dependency(String),
    Serial(String),
}

fn serial_key(job: &pb::Job) -> Option<SerialKey> {
    if !rules::is_serialized(job.operation.as_ref()) {
        return None;
    }
    let app = job.application.clone().unwrap_or_default();
    Some((app.project, app.application, job.workspace.clone()))
}

fn runner_matches(job: &pb::Job, r: &RunnerInfo) -> bool {
    use pb::target_runner::Target;
    match job.target_runner.as_ref().and_then(|t| t.target.as_ref()) {
        Some(Target::Id(id)) => *id == r.id,
        Some(Target::Labels(l)) => {
            !r.by_id_only && wayline_core::labels::is_subset(&l.labels, &r.labels)
        }
        Some(Target::Any(())) | None => !r.by_id_only,
    }
}

fn state_event(previous: State, job: &pb::Job) -> gjs::Event {
    gjs::Event::State(gjs::State {
        previous: previous as i32,
        current: job.state,
        job: Some(job.clone()),
    })
}

fn job_error(message: impl Into<String>) -> pb::JobError {
    pb::JobError {
        code: tonic::Code::Unknown as i32,
        message: message.into(),
    }
}

impl Queue {
    /// A queue over `store`, using `runners` to explain waits.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        runners: Arc<Runners>,
        timeouts: Timeouts,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(QueueState::default()),
            store,
            runners,
            timeouts,
            me: me.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().expect("queue lock")
    }

    /// Loads unfinished jobs after a (re)start. WAITING jobs go back to the queue; RUNNING jobs
    /// wait `heartbeat` for their runner to reattach, then fail.
    pub(crate) async fn load(&self) -> Result<(), crate::store::StoreError> {
        let jobs = self.store.unfinished_jobs().await?;
        let unfinished = jobs.iter().map(|j| j.id.clone()).collect();
        orphans::fail_left_over(&self.store, &unfinished).await?;
        let mut logs = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let log = JobLog::new();
            let events = self.store.job_events(&job.id).await?;
            if !events.is_empty() {
                log.push(
                    gjs::Event::Terminal(gjs::Terminal {
                        events,
                        buffered: true,
                    }),
                    false,
                );
            }
            logs.push(log);
        }
        let mut running = Vec::new();
        {
            let mut st = self.lock();
            for (mut job, log) in jobs.into_iter().zip(logs) {
                let order = st.next_order;
                st.next_order += 1;
                let state = state_of(&job);
                if state == State::Waiting {
                    transition(&mut job, State::Queued);
                    job.assigned_runner_id.clear();
                    job.assign_time = None;
                    drop(self.store.save_job(&job));
                }
                let id = job.id.clone();
                let key = serial_key(&job);
                if state == State::Running {
                    if let Some(k) = key {
                        st.serial_holder.insert(k, id.clone());
                    }
                    running.push((id.clone(), job.assigned_runner_id.clone()));
                } else {
                    st.queued.insert(order, id.clone());
                    if let Some(k) = key {
                        st.serial_queue.entry(k).or_default().push_back(id.clone());
                    }
                    if !job.singleton_id.is_empty() {
                        st.singletons.insert(job.singleton_id.clone(), id.clone());
                    }
                }
                let detached = state == State::Running;
                Self::index_dependencies(&mut st, &job);
                st.jobs.insert(
                    id,
                    Active {
                        job,
                        order,
                        log,
                        stream: None,
                        generation: 0,
                        detached,
                    },
                );
            }
        }
        for (id, runner) in running {
            self.arm_reattach_timer(
                &id,
                0,
                format!(
                    "{} did not reconnect after the server restarted",
                    runners::describe(&runner, self.runners.get(&runner).as_ref())
                ),
            );
        }
        let ids: Vec<String> = self.lock().jobs.keys().cloned().collect();
        for id in ids {
            self.arm_expiry(&id);
        }
        Ok(())
    }

    /// Stores and enqueues a validated job; resolves when the QUEUED record is committed.
    pub(crate) async fn enqueue(&self, mut job: pb::Job) -> Result<String, Status> {
        // Dependencies that already ended are looked up before taking the lock.
        let mut failed_dep: Option<(String, State)> = None;
        for dep in &job.depends_on {
            let active = self.lock().jobs.contains_key(dep);
            if active {
                continue;
            }
            let stored = self
                .store
                .get_job(dep)
                .await
                .map_err(crate::service::store_status)?;
            let Some(stored) = stored else {
                return Err(Status::invalid_argument(format!(
                    "the job depends on job {dep}, which does not exist"
                )));
            };
            let s = state_of(&stored);
            if s != State::Success
                && !job.depends_on_allow_failure.contains(dep)
                && failed_dep.is_none()
            {
                failed_dep = Some((dep.clone(), s));
            }
        }
        for dep in &job.depends_on_allow_failure {
            if !job.depends_on.contains(dep) {
                return Err(Status::invalid_argument(format!(
                    "depends_on_allow_failure names job {dep}, which is not in depends_on"
                )));
            }
        }
        job.id = wayline_core::id::new_id();
        enter_queue(&mut job);
        job.queue_time = Some(wayline_core::time::now());
        let id = job.id.clone();
        let ticket;
        {
            let mut st = self.lock();
            let order = st.next_order;
            st.next_order += 1;
            let log = JobLog::new();
            log.push(state_event(State::Unknown, &job), false);
            // Only a job still waiting in the queue is replaced; one that already runs finishes.
            if !job.singleton_id.is_empty()
                && let Some(old) = st.singletons.insert(job.singleton_id.clone(), id.clone())
                && st
                    .jobs
                    .get(&old)
                    .is_some_and(|a| state_of(&a.job) == State::Queued)
            {
                self.finish_locked(
                    &mut st,
                    &old,
                    State::Cancelled,
                    None,
                    Some(job_error(format!(
                        "replaced by the newer job {id} with the same singleton id"
                    ))),
                );
            }
            ticket = self.store.save_job(&job);
            if let Some(k) = serial_key(&job) {
                st.serial_queue.entry(k).or_default().push_back(id.clone());
            }
            st.queued.insert(order, id.clone());
            Self::index_dependencies(&mut st, &job);
            st.jobs.insert(
                id.clone(),
                Active {
                    job,
                    order,
                    log,
                    stream: None,
                    generation: 0,
                    detached: false,
                },
            );
            if let Some((dep, s)) = failed_dep {
                self.finish_locked(
                    &mut st,
                    &id,
                    State::Error,
                    None,
                    Some(job_error(format!(
                        "job {dep} that this job depends on ended in {}",
                        rules::state_name(s)
                    ))),
                );
            } else {
                self.try_assign_job(&mut st, &id);
            }
        }
        ticket.await.map_err(crate::service::store_status)?;
        self.arm_expiry(&id);
        Ok(id)
    }

    fn index_dependencies(st: &mut QueueState, job: &pb::Job) {
        for dep in &job.depends_on {
            if st.jobs.contains_key(dep) {
                st.dependents
                    .entry(dep.clone())
                    .or_default()
                    .push(job.id.clone());
            }
        }
    }

    /// A runner asks for work: returns a receiver that yields the assigned job.
    pub(crate) fn request(
        &self,
        runner: RunnerInfo,
        stream: (u64, JobTx),
    ) -> (u64, oneshot::Receiver<pb::Job>) {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        st.next_id += 1;
        let waiter = Waiter {
            id: st.next_id,
            runner,
            tx,
            stream,
        };
        let wid = waiter.id;
        // Our own receiver is alive, so `assign` cannot find this waiter stale.
        let found = st
            .queued
            .values()
            .find(|id| {
                let a = &st.jobs[*id];
                runner_matches(&a.job, &waiter.runner) && Self::blocker(&st, &a.job).is_none()
            })
            .cloned();
        if let Some(id) = found {
            self.assign(&mut st, &id, waiter);
            return (wid, rx);
        }
        st.waiters.push(waiter);
        (wid, rx)
    }

    /// Drops every pending request of a runner (it was forgotten, rejected or its token revoked):
    /// their streams end without a job.
    pub(crate) fn drop_waiters(&self, runner_id: &str) {
        self.lock().waiters.retain(|w| w.runner.id != runner_id);
    }

    /// Withdraws a runner's request (its stream closed before it got a job).
    pub(crate) fn withdraw(&self, waiter_id: u64) {
        self.lock().waiters.retain(|w| w.id != waiter_id);
    }

    fn blocker(st: &QueueState, job: &pb::Job) -> Option<Blocker> {
        if let Some(dep) = job.depends_on.iter().find(|d| st.jobs.contains_key(*d)) {
            return Some(Blocker::Dependency(dep.clone()));
        }
        if let Some(k) = serial_key(job) {
            if let Some(h) = st.serial_holder.get(&k).filter(|h| **h != job.id) {
                return Some(Blocker::Serial(h.clone()));
            }
            if let Some(front) = st.serial_queue.get(&k).and_then(|q| q.front())
                && *front != job.id
            {
                return Some(Blocker::Serial(front.clone()));
            }
        }
        None
    }

    fn try_assign_job(&self, st: &mut QueueState, id: &str) {
        let Some(a) = st.jobs.get(id) else { return };
        if state_of(&a.job) != State::Queued || Self::blocker(st, &a.job).is_some() {
            return;
        }
        loop {
            let job = &st.jobs[id].job;
            let Some(pos) = st
                .waiters
                .iter()
                .position(|w| runner_matches(job, &w.runner))
            else {
                return;
            };
            let w = st.waiters.remove(pos);
            if self.assign(st, id, w) {
                return;
            }
        }
    }

    /// Assigns every queued job that can be, in queue order.
    fn assign_all(&self, st: &mut QueueState) {
        if st.waiters.is_empty() {
            return;
        }
        let mut from = 0;
        while !st.waiters.is_empty() {
            let Some((order, id)) = st
                .queued
                .range(from..)
                .next()
                .map(|(o, id)| (*o, id.clone()))
            else {
                break;
            };
            from = order + 1;
            self.try_assign_job(st, &id);
        }
    }

    /// Hands job `id` to `waiter`. False when the waiter's stream is gone: the stale waiter is
    /// dropped and the job stays queued for the next one.
    fn assign(&self, st: &mut QueueState, id: &str, waiter: Waiter) -> bool {
        if waiter.tx.is_closed() {
            return false;
        }
        let a = st.jobs.get_mut(id).expect("assigning a known job");
        let mut job = a.job.clone();
        transition(&mut job, State::Waiting);
        job.assigned_runner_id.clone_from(&waiter.runner.id);
        job.assign_time = Some(wayline_core::time::now());
        job.wait_reason.clear();
        if waiter.tx.send(job.clone()).is_err() {
            return false;
        }
        a.log.push(state_event(State::Queued, &job), false);
        a.job = job;
        a.stream = Some(waiter.stream);
        a.generation += 1;
        let order = a.order;
        drop(self.store.save_job(&a.job));
        let key = serial_key(&a.job);
        st.queued.remove(&order);
        if let Some(k) = key {
            if let Some(q) = st.serial_queue.get_mut(&k) {
                q.retain(|j| j != id);
            }
            st.serial_holder.insert(k, id.to_owned());
        }
        self.runners.add_running(&waiter.runner.id, 1);
        true
    }

    /// The runner acknowledged the job: WAITING → RUNNING.
    pub(crate) fn ack(&self, id: &str, conn: u64) -> Result<pb::Job, Status> {
        let mut st = self.lock();
        let a = Self::attached(&mut st, id, conn)?;
        match state_of(&a.job) {
            State::Waiting => {}
            State::Running => return Ok(a.job.clone()),
            s => return Err(Self::not_active(id, s)),
        }
        let mut job = a.job.clone();
        transition(&mut job, State::Running);
        job.ack_time = Some(wayline_core::time::now());
        a.log.push(state_event(State::Waiting, &job), false);
        a.job = job;
        drop(self.store.save_job(&a.job));
        Ok(a.job.clone())
    }

    fn attached<'a>(st: &'a mut QueueState, id: &str, conn: u64) -> Result<&'a mut Active, Status> {
        match st.jobs.get_mut(id) {
            Some(a) if a.stream.as_ref().is_some_and(|(c, _)| *c == conn) => Ok(a),
            Some(_) => Err(Status::failed_precondition(format!(
                "job {id} is no longer assigned to this stream"
            ))),
            None => Err(Status::failed_precondition(format!(
                "job {id} has already ended"
            ))),
        }
    }

    fn not_active(id: &str, s: State) -> Status {
        Status::failed_precondition(format!("job {id} is {}", rules::state_name(s)))
    }

    /// The runner did not ack in time or went away before acking: back to the queue.
    pub(crate) fn requeue(&self, id: &str, conn: u64, why: &str) {
        let mut st = self.lock();
        let Some(a) = st.jobs.get_mut(id) else { return };
        if a.stream.as_ref().is_none_or(|(c, _)| *c != conn) || state_of(&a.job) != State::Waiting {
            return;
        }
        tracing::info!(
            job = id,
            runner = a.job.assigned_runner_id,
            why,
            "job given back to the queue"
        );
        let runner = std::mem::take(&mut a.job.assigned_runner_id);
        let mut job = a.job.clone();
        transition(&mut job, State::Queued);
        job.assign_time = None;
        a.log.push(state_event(State::Waiting, &job), false);
        a.job = job;
        a.stream = None;
        let order = a.order;
        drop(self.store.save_job(&a.job));
        if let Some(k) = serial_key(&a.job) {
            st.serial_holder.remove(&k);
            st.serial_queue
                .entry(k)
                .or_default()
                .push_front(id.to_owned());
        }
        st.queued.insert(order, id.to_owned());
        self.runners.add_running(&runner, -1);
        self.assign_all(&mut st);
    }

    /// Records terminal output from the runner.
    pub(crate) fn terminal(
        &self,
        id: &str,
        conn: u64,
        events: Vec<pb::TerminalEvent>,
    ) -> Result<(), Status> {
        let mut st = self.lock();
        let a = Self::attached(&mut st, id, conn)?;
        let idx = a.log.next_batch();
        drop(self.store.append_job_events(id, idx, events.clone()));
        a.log.push(
            gjs::Event::Terminal(gjs::Terminal {
                events,
                buffered: false,
            }),
            false,
        );
        Ok(())
    }

    /// Records the git provenance the runner resolved.
    pub(crate) fn provenance(&self, id: &str, conn: u64, p: pb::Provenance) -> Result<(), Status> {
        let mut st = self.lock();
        let a = Self::attached(&mut st, id, conn)?;
        a.job.provenance = Some(p);
        drop(self.store.save_job(&a.job));
        Ok(())
    }

    /// The runner reported the outcome; resolves once it is committed.
    pub(crate) async fn complete(
        &self,
        id: &str,
        conn: u64,
        result: Result<Option<pb::JobResult>, pb::JobError>,
    ) -> Result<(), Status> {
        let ticket = {
            let mut st = self.lock();
            let a = Self::attached(&mut st, id, conn)?;
            let cancelled = a.job.cancel_time.is_some();
            let (state, res, err) = match result {
                Ok(r) => (State::Success, r, None),
                Err(e) if cancelled => (State::Cancelled, None, Some(e)),
                Err(e) => (State::Error, None, Some(e)),
            };
            self.finish_locked(&mut st, id, state, res, err)
        };
        Self::await_finish(ticket).await
    }

    /// Ends an unfinished job now. Returns the commit ticket.
    fn finish_locked(
        &self,
        st: &mut QueueState,
        id: &str,
        state: State,
        result: Option<pb::JobResult>,
        error: Option<pb::JobError>,
    ) -> Option<Pending<()>> {
        let mut a = st.jobs.remove(id)?;
        let previous = transition(&mut a.job, state);
        a.job.complete_time = Some(wayline_core::time::now());
        a.job.result = result;
        a.job.error.clone_from(&error);
        a.job.wait_reason.clear();
        // Followers that arrive before the commit find the log in `finished`; it goes once the
        // record is durable, also for jobs ended by a cascade that nobody awaits.
        let ticket = {
            let write = self.store.save_job(&a.job);
            let (done, wait) = oneshot::channel();
            let me = self.me.clone();
            let key = id.to_owned();
            let failed = (state != State::Success).then(|| {
                let reason = error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                (a.job.clone(), rules::state_name(state), reason)
            });
            let store = Arc::clone(&self.store);
            tokio::spawn(async move {
                let r = write.await;
                if let Some(q) = me.upgrade() {
                    q.lock().finished.remove(&key);
                }
                let _ = done.send(r);
                if let Some((job, state, reason)) = failed {
                    orphans::fail_steps_of(store, job, state, reason).await;
                }
            });
            let pending: Pending<()> =
                Box::pin(async move { wait.await.map_err(|_| crate::store::StoreError::Closed)? });
            pending
        };
        a.log.push(state_event(previous, &a.job), false);
        a.log.push(
            gjs::Event::Complete(gjs::Complete {
                error,
                result: a.job.result.clone(),
            }),
            true,
        );
        st.finished.insert(id.to_owned(), Arc::clone(&a.log));
        st.queued.remove(&a.order);
        if !a.job.singleton_id.is_empty()
            && st
                .singletons
                .get(&a.job.singleton_id)
                .is_some_and(|j| j == id)
        {
            st.singletons.remove(&a.job.singleton_id);
        }
        if let Some(k) = serial_key(&a.job) {
            if st.serial_holder.get(&k).is_some_and(|h| h == id) {
                st.serial_holder.remove(&k);
            }
            if let Some(q) = st.serial_queue.get_mut(&k) {
                q.retain(|j| j != id);
                if q.is_empty() {
                    st.serial_queue.remove(&k);
                }
            }
        }
        if matches!(previous, State::Waiting | State::Running) {
            self.runners.add_running(&a.job.assigned_runner_id, -1);
        }
        if let Some((_, tx)) = a.stream.take()
            && state == State::Cancelled
        {
            let _ = tx.try_send(Ok(pb::RunnerJobStreamResponse {
                event: Some(pb::runner_job_stream_response::Event::Cancel(
                    pb::runner_job_stream_response::JobCancel { force: true },
                )),
            }));
        }
        // Cascade: dependents of a failed job fail; others may now run.
        let dependents = st.dependents.remove(id).unwrap_or_default();
        for dep_id in dependents {
            if !st.jobs.contains_key(&dep_id) {
                continue;
            }
            let allowed = st.jobs[&dep_id]
                .job
                .depends_on_allow_failure
                .iter()
                .any(|x| x == id);
            if state != State::Success && !allowed {
                let desc = describe_job(&a.job);
                drop(self.finish_locked(
                    st,
                    &dep_id,
                    State::Error,
                    None,
                    Some(job_error(format!(
                        "job {id} ({desc}) that this job depends on ended in {}",
                        rules::state_name(state)
                    ))),
                ));
            }
        }
        self.assign_all(st);
        Some(ticket)
    }

    async fn await_finish(ticket: Option<Pending<()>>) -> Result<(), Status> {
        if let Some(t) = ticket {
            t.await.map_err(crate::service::store_status)?;
        }
        Ok(())
    }

    /// The runner's stream broke while the job ran: wait `heartbeat` for a reattach, then fail.
    pub(crate) fn detach(&self, id: &str, conn: u64) {
        let (generation, runner) = {
            let mut st = self.lock();
            let Some(a) = st.jobs.get_mut(id) else { return };
            if a.stream.as_ref().is_none_or(|(c, _)| *c != conn) {
                return;
            }
            a.stream = None;
            a.detached = true;
            a.generation += 1;
            (a.generation, a.job.assigned_runner_id.clone())
        };
        let t = self.timeouts.heartbeat;
        self.arm_reattach_timer(
            id,
            generation,
            format!(
                "{} lost its connection and did not reattach within {}",
                runners::describe(&runner, self.runners.get(&runner).as_ref()),
                humantime::format_duration(t)
            ),
        );
    }

    fn arm_reattach_timer(&self, id: &str, generation: u64, message: String) {
        let me = self.me.clone();
        let id = id.to_owned();
        let t = self.timeouts.heartbeat;
        tokio::spawn(async move {
            tokio::time::sleep(t).await;
            let Some(q) = me.upgrade() else { return };
            let ticket = {
                let mut st = q.lock();
                match st.jobs.get(&id) {
                    Some(a) if a.detached && a.generation == generation => {
                        q.finish_locked(&mut st, &id, State::Error, None, Some(job_error(message)))
                    }
                    _ => None,
                }
            };
            let _ = Self::await_finish(ticket).await;
        });
    }

    /// The runner stopped heartbeating on a live stream.
    /// Returns false when the job had already left this stream (e.g. a forced cancel).
    pub(crate) async fn heartbeat_lost(&self, id: &str, conn: u64, runner_id: &str) -> bool {
        let msg = format!(
            "{} sent no heartbeat for {}; the job was marked failed",
            runners::describe(runner_id, self.runners.get(runner_id).as_ref()),
            humantime::format_duration(self.timeouts.heartbeat)
        );
        let ticket = {
            let mut st = self.lock();
            match Self::attached(&mut st, id, conn) {
                Ok(_) => self.finish_locked(&mut st, id, State::Error, None, Some(job_error(msg))),
                Err(_) => None,
            }
        };
        let failed = ticket.is_some();
        let _ = Self::await_finish(ticket).await;
        failed
    }

    /// A runner reconnects to the job it was running.
    pub(crate) fn reattach(
        &self,
        id: &str,
        runner_id: &str,
        stream: (u64, JobTx),
    ) -> Result<pb::Job, Status> {
        let mut st = self.lock();
        let Some(a) = st.jobs.get_mut(id) else {
            return Err(Status::failed_precondition(format!(
                "job {id} cannot be reattached: it is not running (it ended or does not exist)"
            )));
        };
        if a.job.assigned_runner_id != runner_id {
            return Err(Status::permission_denied(format!(
                "job {id} is assigned to runner {}, not to runner {runner_id}",
                a.job.assigned_runner_id
            )));
        }
        if state_of(&a.job) != State::Running {
            return Err(Self::not_active(id, state_of(&a.job)));
        }
        a.stream = Some(stream);
        a.detached = false;
        a.generation += 1;
        tracing::info!(job = id, runner = runner_id, "runner reattached to its job");
        Ok(a.job.clone())
    }

    /// Cancels a job. QUEUED/WAITING jobs end now; RUNNING jobs get a cancel request on their
    /// stream and end when the runner reports, or now with `force`.
    pub(crate) async fn cancel(&self, id: &str, force: bool) -> Result<(), Status> {
        let active = self.lock().jobs.contains_key(id);
        if !active {
            let job = self
                .store
                .get_job(id)
                .await
                .map_err(crate::service::store_status)?;
            return match job {
                None => Err(Status::not_found(format!("job {id} does not exist"))),
                Some(j) => Err(Status::failed_precondition(format!(
                    "job {id} already ended ({})",
                    rules::state_name(state_of(&j))
                ))),
            };
        }
        let ticket = {
            let mut st = self.lock();
            let Some(a) = st.jobs.get_mut(id) else {
                return Err(Status::failed_precondition(format!(
                    "job {id} ended while it was being cancelled"
                )));
            };
            a.job.cancel_time = Some(wayline_core::time::now());
            a.job.cancel_force = force;
            let state = state_of(&a.job);
            if state == State::Running && !force {
                if let Some((_, tx)) = &a.stream {
                    let _ = tx.try_send(Ok(pb::RunnerJobStreamResponse {
                        event: Some(pb::runner_job_stream_response::Event::Cancel(
                            pb::runner_job_stream_response::JobCancel { force: false },
                        )),
                    }));
                }
                drop(self.store.save_job(&a.job));
                None
            } else {
                let msg = if force {
                    "the job was force-cancelled"
                } else {
                    "the job was cancelled"
                };
                self.finish_locked(&mut st, id, State::Cancelled, None, Some(job_error(msg)))
            }
        };
        Self::await_finish(ticket).await
    }

    fn arm_expiry(&self, id: &str) {
        let Some(exp) = self.lock().jobs.get(id).and_then(|a| a.job.expire_time) else {
            return;
        };
        let wait = wayline_core::time::to_system(&exp)
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        let me = self.me.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(q) = me.upgrade() else { return };
            let ticket = {
                let mut st = q.lock();
                match st.jobs.get(&id) {
                    Some(a) if state_of(&a.job) == State::Queued => q.finish_locked(
                        &mut st,
                        &id,
                        State::Error,
                        None,
                        Some(job_error("the job expired before a runner took it")),
                    ),
                    _ => None,
                }
            };
            let _ = Self::await_finish(ticket).await;
        });
    }

    /// The live output log of an unfinished (or just finished) job.
    pub(crate) fn log(&self, id: &str) -> Option<Arc<JobLog>> {
        let st = self.lock();
        st.jobs
            .get(id)
            .map(|a| Arc::clone(&a.log))
            .or_else(|| st.finished.get(id).cloned())
    }

    /// The in-memory view of an unfinished job, with its wait reason filled in.
    pub(crate) fn get(&self, id: &str) -> Option<pb::Job> {
        let st = self.lock();
        let a = st.jobs.get(id)?;
        let mut job = a.job.clone();
        job.wait_reason = self.wait_reason(&st, a);
        Some(job)
    }

    /// Overlays live state and wait reasons on jobs read from the store.
    pub(crate) fn overlay(&self, jobs: &mut [pb::Job]) {
        let st = self.lock();
        for job in jobs {
            if let Some(a) = st.jobs.get(&job.id) {
                *job = a.job.clone();
                job.wait_reason = self.wait_reason(&st, a);
            }
        }
    }

    /// Number of unfinished jobs per state, from memory.
    pub(crate) fn active_counts(&self) -> HashMap<i32, u64> {
        let st = self.lock();
        let mut out = HashMap::new();
        for a in st.jobs.values() {
            *out.entry(a.job.state).or_insert(0) += 1;
        }
        out
    }
}
