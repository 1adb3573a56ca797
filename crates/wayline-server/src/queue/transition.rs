//! The one place a job's state changes. Every move is checked against
//! [`wayline_core::jobs::can_transition`], the rules clients display, so the queue cannot drift
//! from them.

use wayline_core::jobs as rules;
use wayline_proto::v1 as pb;
use wayline_proto::v1::job::State;

/// The job's state (UNKNOWN for a value this build does not know).
pub(super) fn state_of(job: &pb::Job) -> State {
    State::try_from(job.state).unwrap_or(State::Unknown)
}

/// A new job enters the queue: QUEUED whatever the request said.
pub(super) fn enter_queue(job: &mut pb::Job) {
    job.state = State::Queued as i32;
}

/// Moves `job` to `to` and returns the state it had. A move the rules forbid is a bug in the
/// queue: tests panic on it; a release build logs it and still moves, so that the job ends
/// instead of staying stuck.
pub(super) fn transition(job: &mut pb::Job, to: State) -> State {
    let from = state_of(job);
    let allowed = rules::can_transition(from, to);
    debug_assert!(
        allowed,
        "job {}: {from:?} -> {to:?} breaks the job-state rules",
        job.id
    );
    if !allowed {
        tracing::error!(job = %job.id, ?from, ?to, "job state change outside the rules");
    }
    job.state = to as i32;
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_and_returns_the_previous_state() {
        let mut job = pb::Job::default();
        enter_queue(&mut job);
        assert_eq!(transition(&mut job, State::Waiting), State::Queued);
        assert_eq!(transition(&mut job, State::Running), State::Waiting);
        assert_eq!(transition(&mut job, State::Success), State::Running);
        assert_eq!(state_of(&job), State::Success);
    }

    #[test]
    #[should_panic(expected = "breaks the job-state rules")]
    fn a_forbidden_move_is_caught_in_tests() {
        let mut job = pb::Job::default();
        enter_queue(&mut job);
        transition(&mut job, State::Success);
    }
}
