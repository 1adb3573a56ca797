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
use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response as gjs;
use wayline_proto::v1::job::State;

use crate::runners::Runners;
use crate::store::Store;

mod assign;
mod enqueue;
mod error;
mod finish;
mod lifecycle;
mod log;
mod orphans;
mod restart;
mod timers;
mod transition;
mod wait;

pub(crate) use error::QueueError;
pub(crate) use log::JobLog;
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
    /// Just-finished job id → the state it ended in, until its record is durable: a job that
    /// depends on it and arrives before the commit must not read "running" from the store.
    finished_states: HashMap<String, State>,
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
