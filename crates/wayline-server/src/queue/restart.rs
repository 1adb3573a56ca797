//! After a (re)start: the unfinished jobs the store holds become the queue again.

use std::sync::Arc;

use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response as gjs;
use wayline_proto::v1::job::State;

use super::assign::serial_key;
use super::transition::{state_of, transition};
use super::{Active, JobLog, Queue, QueueState, orphans};
use crate::runners;
use crate::store::StoreError;

impl Queue {
    /// Loads unfinished jobs after a (re)start. WAITING jobs go back to the queue; RUNNING jobs
    /// wait `heartbeat` for their runner to reattach, then fail.
    pub(crate) async fn load(&self) -> Result<(), StoreError> {
        let jobs = self.store.unfinished_jobs().await?;
        let unfinished = jobs.iter().map(|j| j.id.clone()).collect();
        orphans::fail_left_over(&self.store, &unfinished).await?;
        let mut logs = Vec::with_capacity(jobs.len());
        for job in &jobs {
            logs.push(self.stored_log(&job.id).await?);
        }
        let mut running = Vec::new();
        {
            let mut st = self.lock();
            for (job, log) in jobs.into_iter().zip(logs) {
                if let Some(runner) = self.restore_locked(&mut st, job, log) {
                    running.push(runner);
                }
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

    /// A log holding the terminal output the store kept for job `id`.
    async fn stored_log(&self, id: &str) -> Result<Arc<JobLog>, StoreError> {
        let log = JobLog::new();
        let events = self.store.job_events(id).await?;
        if !events.is_empty() {
            log.push(
                gjs::Event::Terminal(gjs::Terminal {
                    events,
                    buffered: true,
                }),
                false,
            );
        }
        Ok(log)
    }

    /// Puts one stored unfinished job back in memory: a WAITING job is queued again, a RUNNING
    /// one keeps its serialised slot and is returned as (job id, runner id) so that the caller
    /// waits for its runner to reattach.
    fn restore_locked(
        &self,
        st: &mut QueueState,
        mut job: pb::Job,
        log: Arc<JobLog>,
    ) -> Option<(String, String)> {
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
        let mut running = None;
        if state == State::Running {
            if let Some(k) = key {
                st.serial_holder.insert(k, id.clone());
            }
            running = Some((id.clone(), job.assigned_runner_id.clone()));
        } else {
            st.queued.insert(order, id.clone());
            if let Some(k) = key {
                st.serial_queue.entry(k).or_default().push_back(id.clone());
            }
            if !job.singleton_id.is_empty() {
                st.singletons.insert(job.singleton_id.clone(), id.clone());
            }
        }
        Self::index_dependencies(st, &job);
        st.jobs.insert(
            id,
            Active {
                job,
                order,
                log,
                stream: None,
                generation: 0,
                detached: state == State::Running,
            },
        );
        running
    }
}
