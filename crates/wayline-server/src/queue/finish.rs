//! A job ends: its record is committed, the slots it held (singleton, serialised deploy, runner)
//! are freed, its dependents fail or become ready, and waiting jobs are assigned.

use std::sync::Arc;

use tokio::sync::oneshot;
use wayline_core::jobs as rules;
use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response as gjs;
use wayline_proto::v1::job::State;

use super::assign::serial_key;
use super::transition::transition;
use super::{Active, Queue, QueueError, QueueState, describe_job, job_error, orphans, state_event};
use crate::store::{Pending, StoreError};

impl Queue {
    /// Ends an unfinished job now. Returns the commit ticket.
    pub(super) fn finish_locked(
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
        let ticket = self.commit_finished(&a.job, state, error.as_ref());
        a.log.push(state_event(previous, &a.job), false);
        a.log.push(
            gjs::Event::Complete(gjs::Complete {
                error,
                result: a.job.result.clone(),
            }),
            true,
        );
        st.finished.insert(id.to_owned(), Arc::clone(&a.log));
        st.finished_states.insert(id.to_owned(), state);
        // A job that did not succeed keeps its app's deploy slot until the steps it left RUNNING
        // are failed (commit_finished): the next deploy or destroy of the app reads those
        // records, and one read before the write would carry "running" back into the store.
        Self::release_slots(st, &a, state != State::Success);
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
        self.cascade(st, &a.job, state);
        self.assign_all(st);
        Some(ticket)
    }

    /// Writes the finished record. Followers that arrive before the commit find the log in
    /// `finished`; it goes once the record is durable, also for jobs ended by a cascade that
    /// nobody awaits. A job that did not succeed then finishes the steps it left RUNNING.
    fn commit_finished(
        &self,
        job: &pb::Job,
        state: State,
        error: Option<&pb::JobError>,
    ) -> Pending<()> {
        let write = self.store.save_job(job);
        let (done, wait) = oneshot::channel();
        let me = self.me.clone();
        let key = job.id.clone();
        let failed = (state != State::Success).then(|| {
            let reason = error.map(|e| e.message.clone()).unwrap_or_default();
            (job.clone(), rules::state_name(state), reason)
        });
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            let r = write.await;
            if let Some(q) = me.upgrade() {
                let mut st = q.lock();
                st.finished.remove(&key);
                st.finished_states.remove(&key);
            }
            let _ = done.send(r);
            if let Some((job, state, reason)) = failed {
                orphans::fail_steps_of(store, job.clone(), state, reason).await;
                if let Some(q) = me.upgrade() {
                    let mut st = q.lock();
                    Self::release_serial_holder(&mut st, &job);
                    q.assign_all(&mut st);
                }
            }
        });
        Box::pin(async move { wait.await.map_err(|_| StoreError::Closed)? })
    }

    /// Frees what the ended job `a` held: its queue place, its singleton id, its serialised
    /// deploy slot (unless `keep_serial`: then [`Self::release_serial_holder`] frees it later).
    fn release_slots(st: &mut QueueState, a: &Active, keep_serial: bool) {
        let id = &a.job.id;
        st.queued.remove(&a.order);
        if !a.job.singleton_id.is_empty()
            && st
                .singletons
                .get(&a.job.singleton_id)
                .is_some_and(|j| j == id)
        {
            st.singletons.remove(&a.job.singleton_id);
        }
        if !keep_serial {
            Self::release_serial_holder(st, &a.job);
        }
        if let Some(k) = serial_key(&a.job)
            && let Some(q) = st.serial_queue.get_mut(&k)
        {
            q.retain(|j| j != id);
            if q.is_empty() {
                st.serial_queue.remove(&k);
            }
        }
    }

    /// Frees the app's deploy slot if `job` holds it.
    fn release_serial_holder(st: &mut QueueState, job: &pb::Job) {
        if let Some(k) = serial_key(job)
            && st.serial_holder.get(&k).is_some_and(|h| *h == job.id)
        {
            st.serial_holder.remove(&k);
        }
    }

    /// Dependents of a job that ended in anything but SUCCESS fail, unless they allow its
    /// failure; the others may now run.
    fn cascade(&self, st: &mut QueueState, ended: &pb::Job, state: State) {
        let id = &ended.id;
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
                let desc = describe_job(ended);
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
    }

    /// Waits for the commit of a finished job, if one ended.
    pub(super) async fn await_finish(ticket: Option<Pending<()>>) -> Result<(), QueueError> {
        if let Some(t) = ticket {
            t.await?;
        }
        Ok(())
    }
}
