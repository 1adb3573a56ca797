//! The life of an assigned job: the runner acknowledges it, streams output and provenance,
//! reports the outcome, or reattaches after losing its stream; a user may cancel it.

use wayline_core::jobs as rules;
use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response as gjs;
use wayline_proto::v1::job::State;

use super::transition::{state_of, transition};
use super::{Active, JobTx, Queue, QueueError, QueueState, job_error, state_event};

impl Queue {
    /// The runner acknowledged the job: WAITING → RUNNING.
    pub(crate) fn ack(&self, id: &str, conn: u64) -> Result<pb::Job, QueueError> {
        let mut st = self.lock();
        let a = Self::attached(&mut st, id, conn)?;
        match state_of(&a.job) {
            State::Waiting => {}
            State::Running => return Ok(a.job.clone()),
            s => return Err(Self::wrong_state(id, s)),
        }
        let mut job = a.job.clone();
        transition(&mut job, State::Running);
        job.ack_time = Some(wayline_core::time::now());
        a.log.push(state_event(State::Waiting, &job), false);
        a.job = job;
        drop(self.store.save_job(&a.job));
        Ok(a.job.clone())
    }

    /// The job `id` if the runner stream `conn` holds it.
    pub(super) fn attached<'a>(
        st: &'a mut QueueState,
        id: &str,
        conn: u64,
    ) -> Result<&'a mut Active, QueueError> {
        match st.jobs.get_mut(id) {
            Some(a) if a.stream.as_ref().is_some_and(|(c, _)| *c == conn) => Ok(a),
            Some(_) => Err(QueueError::NotThisStream(id.to_owned())),
            None => Err(QueueError::Ended(id.to_owned())),
        }
    }

    fn wrong_state(id: &str, s: State) -> QueueError {
        QueueError::WrongState {
            id: id.to_owned(),
            state: rules::state_name(s),
        }
    }

    /// Records terminal output from the runner.
    pub(crate) fn terminal(
        &self,
        id: &str,
        conn: u64,
        events: Vec<pb::TerminalEvent>,
    ) -> Result<(), QueueError> {
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
    pub(crate) fn provenance(
        &self,
        id: &str,
        conn: u64,
        p: pb::Provenance,
    ) -> Result<(), QueueError> {
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
    ) -> Result<(), QueueError> {
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

    /// A runner reconnects to the job it was running.
    pub(crate) fn reattach(
        &self,
        id: &str,
        runner_id: &str,
        stream: (u64, JobTx),
    ) -> Result<pb::Job, QueueError> {
        let mut st = self.lock();
        let Some(a) = st.jobs.get_mut(id) else {
            return Err(QueueError::NotReattachable(id.to_owned()));
        };
        if a.job.assigned_runner_id != runner_id {
            return Err(QueueError::AssignedElsewhere {
                id: id.to_owned(),
                assigned: a.job.assigned_runner_id.clone(),
                runner: runner_id.to_owned(),
            });
        }
        if state_of(&a.job) != State::Running {
            return Err(Self::wrong_state(id, state_of(&a.job)));
        }
        a.stream = Some(stream);
        a.detached = false;
        a.generation += 1;
        tracing::info!(job = id, runner = runner_id, "runner reattached to its job");
        Ok(a.job.clone())
    }

    /// Cancels a job. QUEUED/WAITING jobs end now; RUNNING jobs get a cancel request on their
    /// stream and end when the runner reports, or now with `force`.
    pub(crate) async fn cancel(&self, id: &str, force: bool) -> Result<(), QueueError> {
        let active = self.lock().jobs.contains_key(id);
        if !active {
            return Err(match self.store.get_job(id).await? {
                None => QueueError::NotFound(id.to_owned()),
                Some(j) => QueueError::AlreadyEnded {
                    id: id.to_owned(),
                    state: rules::state_name(state_of(&j)),
                },
            });
        }
        let ticket = {
            let mut st = self.lock();
            let Some(a) = st.jobs.get_mut(id) else {
                return Err(QueueError::EndedWhileCancelling(id.to_owned()));
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
}
