//! A new job enters the queue: its dependencies are checked, it is stored QUEUED, and it is
//! assigned at once when a matching runner waits.

use wayline_core::jobs as rules;
use wayline_proto::v1 as pb;
use wayline_proto::v1::job::State;

use super::assign::serial_key;
use super::transition::{enter_queue, state_of};
use crate::store::Pending;

use super::{Active, JobLog, Queue, QueueError, QueueState, job_error, state_event};

impl Queue {
    /// Stores and enqueues a validated job; resolves when the QUEUED record is committed.
    pub(crate) async fn enqueue(&self, mut job: pb::Job) -> Result<String, QueueError> {
        let failed_dep = self.ended_dependency(&job).await?;
        job.id = wayline_core::id::new_id();
        enter_queue(&mut job);
        job.queue_time = Some(wayline_core::time::now());
        let id = job.id.clone();
        let ticket;
        {
            let mut st = self.lock();
            ticket = self.insert_queued(&mut st, job);
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
        ticket.await?;
        self.arm_expiry(&id);
        Ok(id)
    }

    /// Checks `job`'s dependencies; returns the first one that already ended in a state the job
    /// does not accept. Dependencies that ended are looked up in the store before taking the lock.
    async fn ended_dependency(&self, job: &pb::Job) -> Result<Option<(String, State)>, QueueError> {
        let mut failed_dep: Option<(String, State)> = None;
        for dep in &job.depends_on {
            let (active, just_ended) = {
                let st = self.lock();
                (
                    st.jobs.contains_key(dep),
                    st.finished_states.get(dep).copied(),
                )
            };
            if active {
                continue;
            }
            let s = match just_ended {
                Some(s) => s,
                None => match self.store.get_job(dep).await? {
                    Some(stored) => state_of(&stored),
                    None => return Err(QueueError::UnknownDependency(dep.clone())),
                },
            };
            if s != State::Success
                && !job.depends_on_allow_failure.contains(dep)
                && failed_dep.is_none()
            {
                failed_dep = Some((dep.clone(), s));
            }
        }
        if let Some(dep) = job
            .depends_on_allow_failure
            .iter()
            .find(|dep| !job.depends_on.contains(dep))
        {
            return Err(QueueError::AllowFailureNotADependency(dep.clone()));
        }
        Ok(failed_dep)
    }

    /// Stores a QUEUED job and puts it in the in-memory queue, replacing a still-queued job with
    /// the same singleton id. Returns the commit ticket of the QUEUED record.
    fn insert_queued(&self, st: &mut QueueState, job: pb::Job) -> Pending<()> {
        let id = job.id.clone();
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
                st,
                &old,
                State::Cancelled,
                None,
                Some(job_error(format!(
                    "replaced by the newer job {id} with the same singleton id"
                ))),
            );
        }
        let ticket = self.store.save_job(&job);
        if let Some(k) = serial_key(&job) {
            st.serial_queue.entry(k).or_default().push_back(id.clone());
        }
        st.queued.insert(order, id.clone());
        Self::index_dependencies(st, &job);
        st.jobs.insert(
            id,
            Active {
                job,
                order,
                log,
                stream: None,
                generation: 0,
                detached: false,
            },
        );
        ticket
    }
}
