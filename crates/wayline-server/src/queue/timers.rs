//! Timeouts, each one sleeping task per event checked against the job's generation so a stale
//! timer does nothing: a detached runner's reattach window, a live stream's heartbeat, and a
//! queued job's expiry.

use wayline_proto::v1::job::State;

use super::transition::state_of;
use super::{Queue, job_error};
use crate::runners;

impl Queue {
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

    pub(super) fn arm_reattach_timer(&self, id: &str, generation: u64, message: String) {
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

    pub(super) fn arm_expiry(&self, id: &str) {
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
}
