//! Persistence behind a trait, so the server logic does not depend on SQLite.
//!
//! Every method returns a [`Pending`] future. Writes are *enqueued at call time* (in call order)
//! and the future resolves once the write is committed, so callers that do not need the
//! acknowledgement may drop it and still get ordered, durable writes.

mod schema;
mod sqlite;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use wayline_proto::v1 as pb;

pub use sqlite::SqliteStore;
pub(crate) use sqlite::verify_database;

/// A store result that may still be in flight.
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored message could not be decoded.
    #[error("stored record is corrupt: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The caller's input was rejected (shown to the user as INVALID_ARGUMENT).
    #[error("{0}")]
    Invalid(String),
    /// The record does not exist (shown as NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// The record already exists (shown as ALREADY_EXISTS).
    #[error("{0}")]
    Exists(String),
    /// The batch this write was part of failed to commit.
    #[error("database commit failed: {0}")]
    Commit(String),
    /// The database file was written by a newer Wayline.
    #[error(
        "the database has schema version {found} but this server supports up to {supported}; upgrade Wayline"
    )]
    TooNew {
        /// Version found in the file.
        found: u32,
        /// Highest version this build knows.
        supported: u32,
    },
    /// Filesystem error around the database file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is damaged: SQLite's `quick_check` failed, or a record failed its checksum.
    #[error("{0}")]
    Damaged(String),
    /// The store was closed (server shutting down).
    #[error("the store is closed because the server is shutting down")]
    Closed,
}

/// Which operation record [`Store::get_operation`] returns.
#[derive(Debug, Clone)]
pub enum OperationTarget {
    /// By id.
    Id(String),
    /// The latest of the kind for an app and workspace.
    Latest {
        /// Project name.
        project: String,
        /// Application name.
        app: String,
        /// Workspace name.
        workspace: String,
        /// Only records whose status is SUCCESS.
        success_only: bool,
    },
    /// By `vN` sequence within the app.
    Sequence {
        /// Project name.
        project: String,
        /// Application name.
        app: String,
        /// The sequence.
        seq: u64,
    },
    /// The live release's record for an app and workspace.
    Live {
        /// Project name.
        project: String,
        /// Application name.
        app: String,
        /// Workspace name.
        workspace: String,
    },
}

/// Filter for [`Store::list_operations`].
#[derive(Debug, Clone, Default)]
pub struct OperationFilter {
    /// Operation kind (`pb::OperationKind` as i32).
    pub kind: i32,
    /// Project and application; `None` lists every app.
    pub app: Option<(String, String)>,
    /// Workspace; `None` lists all workspaces.
    pub workspace: Option<String>,
    /// Only records whose provenance commit starts with this.
    pub commit_prefix: Option<String>,
    /// Only records in this physical state.
    pub physical_state: Option<i32>,
    /// Only records whose status is this.
    pub state: Option<i32>,
    /// 0 = no limit.
    pub limit: u32,
    /// Oldest first.
    pub ascending: bool,
}

/// Filter for [`Store::list_jobs`].
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Project and application.
    pub app: Option<(String, String)>,
    /// Workspace.
    pub workspace: Option<String>,
    /// Any of these states; empty = all.
    pub states: Vec<i32>,
    /// Jobs targeted at this runner id.
    pub target_runner_id: Option<String>,
    /// 0 = no limit.
    pub limit: u32,
    /// Oldest first.
    pub ascending: bool,
}

/// A token's record (the token itself is never stored, only its id).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Token id.
    pub id: String,
    /// `login`, `runner`, …
    pub kind: String,
    /// Creation time.
    pub created_ms: i64,
    /// Expiry, if any.
    pub expires_ms: Option<i64>,
}

/// Records whose ids [`Store::ids_with_prefix`] searches.
#[derive(Debug, Clone, Copy)]
pub enum IdTable {
    /// Jobs.
    Jobs,
    /// Operations of one kind (`pb::OperationKind` as i32).
    Operations(i32),
}

/// The server's persistent state.
pub trait Store: Send + Sync + 'static {
    /// Up to `limit` ids in `table` that start with `prefix`, in id order (short ids typed by
    /// users resolve through this).
    fn ids_with_prefix(&self, table: IdTable, prefix: &str, limit: u32) -> Pending<Vec<String>>;
    /// A value from the server's key/value state.
    fn get_state(&self, key: &str) -> Pending<Option<Vec<u8>>>;
    /// Stores `value` under `key` unless a value is there; returns the stored value.
    fn init_state(&self, key: &str, value: Vec<u8>) -> Pending<Vec<u8>>;
    /// Stores `value` under `key` if absent; true when this call stored it (exactly-once claims).
    fn claim_state(&self, key: &str, value: Vec<u8>) -> Pending<bool>;
    /// Stores `value` under `key`.
    fn put_state(&self, key: &str, value: Vec<u8>) -> Pending<()>;
    /// Removes `key`.
    fn delete_state(&self, key: &str) -> Pending<()>;

    /// Records a minted token.
    fn insert_token(&self, token: TokenRecord) -> Pending<()>;
    /// Marks a token revoked; false when no such token exists.
    fn revoke_token(&self, id: &str) -> Pending<bool>;
    /// Ids of every revoked token.
    fn revoked_tokens(&self) -> Pending<Vec<String>>;

    /// Creates or replaces a project (its applications are kept and merged).
    fn upsert_project(&self, project: pb::Project) -> Pending<pb::Project>;
    /// A project with its applications.
    fn get_project(&self, name: &str) -> Pending<Option<pb::Project>>;
    /// Every project.
    fn list_projects(&self) -> Pending<Vec<pb::Project>>;
    /// Removes a project, its apps and their records; false when it did not exist.
    fn delete_project(&self, name: &str) -> Pending<bool>;
    /// Creates an application (and its project) if missing.
    fn upsert_application(&self, project: &str, name: &str) -> Pending<pb::Application>;
    /// Creates the workspace for the project on first use and marks it active now.
    fn touch_workspace(&self, workspace: &str, project: &str) -> Pending<()>;
    /// Every workspace with its projects.
    fn list_workspaces(&self) -> Pending<Vec<pb::Workspace>>;

    /// Inserts or updates an operation; assigns id and sequence on first insert, maintains `live`.
    fn upsert_operation(&self, op: pb::Operation) -> Pending<pb::Operation>;
    /// One operation record.
    fn get_operation(&self, kind: i32, target: OperationTarget) -> Pending<Option<pb::Operation>>;
    /// Operation records, newest first unless `ascending`.
    fn list_operations(&self, filter: OperationFilter) -> Pending<Vec<pb::Operation>>;

    /// Inserts or replaces a job.
    fn save_job(&self, job: &pb::Job) -> Pending<()>;
    /// Appends a batch of terminal events to a job's stored output.
    fn append_job_events(
        &self,
        job_id: &str,
        idx: u64,
        events: Vec<pb::TerminalEvent>,
    ) -> Pending<()>;
    /// One job.
    fn get_job(&self, id: &str) -> Pending<Option<pb::Job>>;
    /// A job's stored terminal events, in order.
    fn job_events(&self, id: &str) -> Pending<Vec<pb::TerminalEvent>>;
    /// Jobs, newest first unless `ascending`.
    fn list_jobs(&self, filter: JobFilter) -> Pending<Vec<pb::Job>>;
    /// Jobs in QUEUED, WAITING or RUNNING, oldest first (loaded at start).
    fn unfinished_jobs(&self) -> Pending<Vec<pb::Job>>;
    /// Number of jobs per state.
    fn job_counts(&self) -> Pending<Vec<(i32, u64)>>;

    /// Inserts or replaces a runner.
    fn save_runner(&self, runner: &pb::Runner) -> Pending<()>;
    /// One runner.
    fn get_runner(&self, id: &str) -> Pending<Option<pb::Runner>>;
    /// Every runner.
    fn list_runners(&self) -> Pending<Vec<pb::Runner>>;
    /// Removes a runner; false when unknown.
    fn delete_runner(&self, id: &str) -> Pending<bool>;

    /// Sets config vars (a var whose value is `unset` is deleted), all in one transaction.
    fn set_config(&self, vars: Vec<pb::ConfigVar>) -> Pending<()>;
    /// Every stored config var.
    fn list_config(&self) -> Pending<Vec<pb::ConfigVar>>;
    /// Sets (or with `delete`, removes) a config source.
    fn set_config_source(&self, source: pb::ConfigSource) -> Pending<()>;
    /// Every config source.
    fn list_config_sources(&self) -> Pending<Vec<pb::ConfigSource>>;

    /// Registers a hostname; `Exists` when taken.
    fn create_hostname(&self, hostname: pb::Hostname) -> Pending<pb::Hostname>;
    /// Removes a hostname; false when unknown.
    fn delete_hostname(&self, hostname: &str) -> Pending<bool>;
    /// Every hostname.
    fn list_hostnames(&self) -> Pending<Vec<pb::Hostname>>;

    /// Stores the app's canary (replacing the one before), or with weight 0 removes it.
    fn set_canary(&self, canary: pb::Canary) -> Pending<()>;
    /// Every stored canary, by project, app and workspace.
    fn list_canaries(&self) -> Pending<Vec<pb::Canary>>;

    /// Inserts or replaces a trigger (assigning an id when empty).
    fn upsert_trigger(&self, trigger: pb::Trigger) -> Pending<pb::Trigger>;
    /// Every trigger.
    fn list_triggers(&self) -> Pending<Vec<pb::Trigger>>;

    /// Writes a consistent copy of the whole database to `path` while the server keeps running.
    fn backup_to(&self, path: PathBuf) -> Pending<()>;
    /// Finishes queued writes and stops accepting new ones.
    fn close(&self) -> Pending<()>;
}
