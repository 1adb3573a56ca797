//! Matching jobs to runners: a queued job goes to the first waiting runner it may run on, in
//! queue order, unless a dependency or a serialised deploy of the same app blocks it.

use tokio::sync::oneshot;
use wayline_core::jobs as rules;
use wayline_proto::v1 as pb;
use wayline_proto::v1::job::State;

use super::transition::{state_of, transition};
use super::{Blocker, JobTx, Queue, QueueState, RunnerInfo, SerialKey, Waiter, state_event};

pub(super) fn serial_key(job: &pb::Job) -> Option<SerialKey> {
    if !rules::is_serialized(job.operation.as_ref()) {
        return None;
    }
    let app = job.application.clone().unwrap_or_default();
    Some((app.project, app.application, job.workspace.clone()))
}

pub(super) fn runner_matches(job: &pb::Job, r: &RunnerInfo) -> bool {
    use pb::target_runner::Target;
    match job.target_runner.as_ref().and_then(|t| t.target.as_ref()) {
        Some(Target::Id(id)) => *id == r.id,
        Some(Target::Labels(l)) => {
            !r.by_id_only && wayline_core::labels::is_subset(&l.labels, &r.labels)
        }
        Some(Target::Any(())) | None => !r.by_id_only,
    }
}

impl Queue {
    pub(super) fn index_dependencies(st: &mut QueueState, job: &pb::Job) {
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

    pub(super) fn blocker(st: &QueueState, job: &pb::Job) -> Option<Blocker> {
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

    pub(super) fn try_assign_job(&self, st: &mut QueueState, id: &str) {
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
    pub(super) fn assign_all(&self, st: &mut QueueState) {
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
}
