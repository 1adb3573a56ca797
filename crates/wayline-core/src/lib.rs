//! Wayline domain types without IO.
//!
//! Ids (ULIDs), `vN` sequences, labels, job-state rules and timestamp helpers shared by the
//! server, the runner and the CLI. Nothing here touches the network or the filesystem.

pub mod id;
pub mod jobs;
pub mod labels;
pub mod selector;
pub mod time;
pub mod url;

pub use wayline_proto::v1 as pb;
