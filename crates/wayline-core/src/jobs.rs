//! Job-state rules shared by the server (which enforces them) and clients (which display them).

use crate::pb::job::State;

/// True for SUCCESS, ERROR and CANCELLED.
pub fn is_terminal(state: State) -> bool {
    matches!(state, State::Success | State::Error | State::Cancelled)
}

/// Whether a job may move from `from` to `to`.
pub fn can_transition(from: State, to: State) -> bool {
    use State::{Cancelled, Error, Queued, Running, Success, Waiting};
    match (from, to) {
        (Queued, Waiting | Cancelled | Error) => true,
        // A runner that never acked gives the job back to the queue.
        (Waiting, Queued | Running | Cancelled | Error) => true,
        (Running, Success | Error | Cancelled) => true,
        _ => false,
    }
}

/// The lower-case name users see: `queued`, `running`, …
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Unknown => "unknown",
        State::Queued => "queued",
        State::Waiting => "waiting",
        State::Running => "running",
        State::Success => "success",
        State::Error => "error",
        State::Cancelled => "cancelled",
    }
}

/// The operation's name, e.g. `deploy`.
pub fn operation_name(op: Option<&crate::pb::job::Operation>) -> &'static str {
    use crate::pb::job::Operation as Op;
    match op {
        None => "unknown",
        Some(Op::Noop(_)) => "noop",
        Some(Op::Build(_)) => "build",
        Some(Op::Push(_)) => "push",
        Some(Op::Deploy(_)) => "deploy",
        Some(Op::Release(_)) => "release",
        Some(Op::Up(_)) => "up",
        Some(Op::Destroy(_)) => "destroy",
        Some(Op::StatusReport(_)) => "status-report",
        Some(Op::Validate(_)) => "validate",
        Some(Op::Init(_)) => "init",
        Some(Op::Exec(_)) => "exec",
        Some(Op::Poll(_)) => "poll",
    }
}

/// Operations that change what runs and so must not overlap for one app and workspace.
pub fn is_serialized(op: Option<&crate::pb::job::Operation>) -> bool {
    use crate::pb::job::Operation as Op;
    matches!(
        op,
        Some(Op::Deploy(_) | Op::Release(_) | Op::Destroy(_) | Op::Up(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert!(can_transition(State::Queued, State::Waiting));
        assert!(can_transition(State::Waiting, State::Queued));
        assert!(!can_transition(State::Success, State::Running));
        assert!(!can_transition(State::Queued, State::Success));
        assert!(is_terminal(State::Cancelled));
    }
}
