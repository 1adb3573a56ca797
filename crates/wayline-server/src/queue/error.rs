//! What the queue refuses, in its own terms. The queue knows nothing of gRPC: the service maps
//! a [`QueueError`] to the status a client sees at the RPC edge (`From<QueueError> for
//! tonic::Status` in `service`).

use crate::store::StoreError;

/// Why the queue refused a request about a job.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueueError {
    /// A new job names a dependency that was never queued.
    #[error("the job depends on job {0}, which does not exist")]
    UnknownDependency(String),
    /// `depends_on_allow_failure` names a job that is not a dependency.
    #[error("depends_on_allow_failure names job {0}, which is not in depends_on")]
    AllowFailureNotADependency(String),
    /// No job has this id.
    #[error("job {0} does not exist")]
    NotFound(String),
    /// The job already finished (in the named state).
    #[error("job {id} already ended ({state})")]
    AlreadyEnded {
        /// The job.
        id: String,
        /// The state it ended in, as users read it.
        state: &'static str,
    },
    /// The job finished between the check and the cancel.
    #[error("job {0} ended while it was being cancelled")]
    EndedWhileCancelling(String),
    /// A runner's stream speaks for a job that moved to another stream.
    #[error("job {0} is no longer assigned to this stream")]
    NotThisStream(String),
    /// A runner's stream speaks for a job that has ended.
    #[error("job {0} has already ended")]
    Ended(String),
    /// The job is in a state where the request makes no sense.
    #[error("job {id} is {state}")]
    WrongState {
        /// The job.
        id: String,
        /// Its current state, as users read it.
        state: &'static str,
    },
    /// A runner asks to reattach to a job that is not running.
    #[error("job {0} cannot be reattached: it is not running (it ended or does not exist)")]
    NotReattachable(String),
    /// A runner asks to reattach to another runner's job.
    #[error("job {id} is assigned to runner {assigned}, not to runner {runner}")]
    AssignedElsewhere {
        /// The job.
        id: String,
        /// The runner it is assigned to.
        assigned: String,
        /// The runner that asked.
        runner: String,
    },
    /// Reading or writing the job failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
