//! What users type for runners, jobs and pipelines.

use std::path::PathBuf;

use clap::Subcommand;

use super::OpFlags;

#[derive(Debug, Subcommand)]
pub(crate) enum RunnerCmd {
    /// Run a runner that takes jobs from the server.
    Agent {
        /// Runner id (default: generated and kept in the state dir) [env: WAYLINE_RUNNER_ID or
        /// WAYPOINT_RUNNER_ID].
        #[arg(long = "id")]
        id: Option<String>,
        /// Runner label `key=value` (repeatable).
        #[arg(long = "label")]
        label: Vec<String>,
        /// Jobs run at once.
        #[arg(long = "concurrency", default_value_t = 4)]
        concurrency: usize,
        /// Where the runner keeps its id.
        #[arg(long = "state-dir")]
        state_dir: Option<PathBuf>,
        /// Register without a token and wait until an operator runs `wayline runner adopt <id>`.
        #[arg(long = "request-adoption")]
        request_adoption: bool,
    },
    /// List runners.
    List {
        /// Only runners waiting to be adopted.
        #[arg(long = "pending")]
        pending: bool,
    },
    /// Show one runner.
    Inspect {
        /// The runner's id or a unique prefix of it.
        id: String,
    },
    /// Adopt a pending runner.
    Adopt {
        /// The runner's id or a unique prefix of it.
        id: String,
    },
    /// Reject a pending runner.
    Reject {
        /// The runner's id or a unique prefix of it.
        id: String,
    },
    /// Forget a runner: it is disconnected and its token revoked.
    Forget {
        /// The runner's id or a unique prefix of it.
        id: String,
    },
    /// Create a runner token.
    Token {
        /// Only the runner with this id may use it.
        #[arg(long = "id")]
        id: Option<String>,
        /// Labels the runner gets, `key=value` (repeatable).
        #[arg(long = "label")]
        label: Vec<String>,
        /// How long the token is valid, e.g. `720h`.
        #[arg(long = "expires-in", default_value = "720h")]
        expires_in: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobCmd {
    /// List jobs.
    List {
        /// Only jobs in this state (queued, waiting, running, success, error, cancelled).
        #[arg(long = "state")]
        state: Vec<String>,
        /// Only jobs targeted at this runner.
        #[arg(long = "target-runner-id")]
        target_runner_id: Option<String>,
        /// At most this many rows.
        #[arg(long = "limit", default_value_t = 50)]
        limit: u32,
        /// Show full ids.
        #[arg(long = "long-ids")]
        long_ids: bool,
    },
    /// Show a job, including why it waits.
    Inspect {
        /// The job's id or a unique prefix of it.
        id: String,
        /// Also print a trace of its steps: when each started and how long it took.
        #[arg(long = "timings")]
        timings: bool,
    },
    /// Cancel a job.
    Cancel {
        /// The job's id or a unique prefix of it.
        id: String,
        /// Mark it cancelled even if its runner does not answer.
        #[arg(long = "force", alias = "dangerously-force")]
        force: bool,
    },
    /// Follow the output of a job, live or finished.
    GetStream {
        /// The job's id or a unique prefix of it.
        id: String,
    },
    /// Run one job queued for a runner id nobody runs yet, as that runner, then exit: what
    /// `up` starts in the background for the prune after its release.
    #[command(hide = true)]
    RunBackground {
        /// The job's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PipelineCmd {
    /// List the pipelines and their steps.
    List,
    /// Run a pipeline: one job per step, each waiting for the steps it depends on.
    Run {
        /// The pipeline's name.
        name: String,
        #[command(flatten)]
        op: OpFlags,
    },
}
