//! How the store's and the queue's errors reach clients: one `tonic::Status` for each, mapped
//! here at the RPC edge so neither layer knows about gRPC.

use tonic::Status;

use crate::queue::QueueError;
use crate::store::StoreError;

/// Maps a store error to the status a client sees.
pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Invalid(m) => Status::invalid_argument(m),
        StoreError::NotFound(m) => Status::not_found(m),
        StoreError::Exists(m) => Status::already_exists(m),
        StoreError::Closed => Status::unavailable(e.to_string()),
        StoreError::Damaged(m) => {
            tracing::error!(error = %m, "the database is damaged");
            Status::data_loss(m)
        }
        other => {
            tracing::error!(error = %other, "store error");
            Status::internal(other.to_string())
        }
    }
}

/// Maps a queue error to the status a client sees.
impl From<QueueError> for Status {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Store(e) => store_status(e),
            QueueError::UnknownDependency(_) | QueueError::AllowFailureNotADependency(_) => {
                Status::invalid_argument(e.to_string())
            }
            QueueError::NotFound(_) => Status::not_found(e.to_string()),
            QueueError::AssignedElsewhere { .. } => Status::permission_denied(e.to_string()),
            QueueError::AlreadyEnded { .. }
            | QueueError::EndedWhileCancelling(_)
            | QueueError::NotThisStream(_)
            | QueueError::Ended(_)
            | QueueError::WrongState { .. }
            | QueueError::NotReattachable(_) => Status::failed_precondition(e.to_string()),
        }
    }
}
