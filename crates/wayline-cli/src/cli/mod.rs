//! The command-line grammar. Command logic lives in `commands/`; this module only says what
//! users can type. Both `-flag` and `--flag` work (see [`normalize_args`]).
//!
//! Here: the top-level [`Command`] and the flags operations share; one file per group of
//! subcommands (`catalog`, `config`, `jobs`, `server`, `plugin`); `normalize` rewrites
//! single-dash flags; `reference` keeps `docs/cli.md` generated from these definitions.

mod catalog;
mod config;
mod jobs;
mod normalize;
mod plugin;
#[cfg(test)]
mod reference;
mod server;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub(crate) use catalog::{
    ArtifactCmd, DeploymentCmd, HostnameCmd, ProjectCmd, UrlServiceCmd, WorkspaceCmd,
};
pub(crate) use config::{ConfigCmd, ConfigScope, ContextCmd, UserCmd};
pub(crate) use jobs::{JobCmd, PipelineCmd, RunnerCmd};
pub(crate) use normalize::normalize_args;
pub(crate) use plugin::{DocsArgs, PluginCmd};
pub(crate) use server::{ServerCmd, ServerRunArgs};

/// Build, deploy and release applications from one HCL file.
#[derive(Debug, Parser)]
#[command(
    name = "wayline",
    version,
    disable_version_flag = true,
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct Global {
    /// App to target (default: the only app in the config file) [env: WAYLINE_APP or
    /// WAYPOINT_APP].
    #[arg(long = "app", short = 'a', global = true)]
    pub(crate) app: Option<String>,
    /// Project to target (default: the `project` of the config file) [env: WAYLINE_PROJECT
    /// or WAYPOINT_PROJECT].
    #[arg(long = "project", short = 'p', global = true)]
    pub(crate) project: Option<String>,
    /// Workspace to operate in (default: `default`) [env: WAYLINE_WORKSPACE or
    /// WAYPOINT_WORKSPACE].
    #[arg(long = "workspace", short = 'w', global = true)]
    pub(crate) workspace: Option<String>,
    /// Plain output: no colour, no spinners [env: WAYLINE_PLAIN or WAYPOINT_PLAIN].
    #[arg(long = "plain", global = true)]
    pub(crate) plain: bool,
    /// Machine-readable JSON output (lists, inspect, validate; operations emit JSON lines).
    #[arg(long = "json", global = true)]
    pub(crate) json: bool,
    /// More log output (-v, -vv, -vvv); `wayline -v` alone prints the version.
    #[arg(short = 'v', action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
}

/// Flags of operations (build, deploy, release, up, destroy).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct OpFlags {
    /// Label for the operation, `key=value` (repeatable).
    #[arg(long = "label")]
    pub(crate) label: Vec<String>,
    /// Input variable `name=value` (repeatable).
    #[arg(long = "var")]
    pub(crate) var: Vec<String>,
    /// File of input variable values (repeatable).
    #[arg(long = "var-file")]
    pub(crate) var_file: Vec<PathBuf>,
    /// Run on this machine (true) or on a remote runner (false). Default: local.
    #[arg(long = "local", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) local: Option<bool>,
    /// Override the remote data source, e.g. `ref=main` (with -local=false).
    #[arg(long = "remote-source")]
    pub(crate) remote_source: Vec<String>,
    /// Seconds to wait for a server that went away mid-job before giving up (the job's
    /// server writes are retried meanwhile).
    #[arg(long = "server-wait", default_value_t = 60, value_name = "SECONDS")]
    pub(crate) server_wait: u64,
    /// After the job, print a trace of its steps: when each started and how long it took.
    #[arg(long = "timings")]
    pub(crate) timings: bool,
}

/// Pruning of old deployments after a release.
#[derive(Debug, Args, Clone)]
pub(crate) struct PruneFlags {
    /// Destroy older deployments after a successful release.
    #[arg(long = "prune", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) prune: bool,
    /// How many previous deployments to keep when pruning.
    #[arg(long = "prune-retain", default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..))]
    pub(crate) prune_retain: i32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build, push, deploy and release the app in one job.
    Up {
        #[command(flatten)]
        op: OpFlags,
        #[command(flatten)]
        prune: PruneFlags,
        /// Release the new deployment (set false to deploy only).
        #[arg(long = "release", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        release: bool,
    },
    /// Build the app and push it to the registry.
    Build {
        #[command(flatten)]
        op: OpFlags,
        /// Push the artifact to the configured registry.
        #[arg(long = "push", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        push: bool,
    },
    /// Deploy the latest pushed artifact.
    Deploy {
        #[command(flatten)]
        op: OpFlags,
        /// Release the new deployment afterwards.
        #[arg(long = "release", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        release: bool,
    },
    /// Release a deployment (the latest, or `-deployment vN`), or list releases.
    Release(ReleaseArgs),
    /// Release the deployment before the live one, or `-to vN`.
    Rollback {
        #[command(flatten)]
        op: OpFlags,
        /// The deployment to go back to, e.g. `v3`.
        #[arg(long = "to")]
        to: Option<String>,
    },
    /// Destroy what the app made in this workspace: deployments, pushed artifacts and builds.
    Destroy {
        #[command(flatten)]
        op: OpFlags,
        /// Do not ask for confirmation.
        #[arg(long = "auto-approve")]
        auto_approve: bool,
    },
    /// Health of the app's deployments and releases.
    Status {
        /// All projects on the server.
        #[arg(long = "all-projects")]
        all_projects: bool,
    },
    /// Show the logs of the current deployment.
    Logs {
        /// A specific deployment, e.g. `v3`.
        #[arg(long = "deployment", short = 'd')]
        deployment: Option<String>,
        /// A specific instance id.
        #[arg(long = "instance")]
        instance: Option<String>,
        /// Only lines newer than this duration ago, e.g. `10m`.
        #[arg(long = "since")]
        since: Option<String>,
        /// Prefix each line with the time it was written (RFC 3339, UTC).
        #[arg(long = "timestamps")]
        timestamps: bool,
        /// Keep following new lines.
        #[arg(long = "follow", short = 'f', default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        follow: bool,
    },
    /// Run a command inside a running instance of the app.
    Exec {
        /// A specific instance id.
        #[arg(long = "instance")]
        instance: Option<String>,
        /// A specific deployment, e.g. `v3`.
        #[arg(long = "deployment", short = 'd')]
        deployment: Option<String>,
        /// Force a pseudo-terminal (default: when stdin is a terminal).
        #[arg(long = "tty", short = 't', num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        tty: Option<bool>,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Write a starter `wayline.hcl`, or register the project in it with the server.
    Init {
        /// Only write the file; do not contact the server.
        #[arg(long = "no-server")]
        no_server: bool,
    },
    /// Check the config file without a server.
    Validate {
        /// The file (default: found from the working directory).
        file: Option<PathBuf>,
        #[command(flatten)]
        op: OpFlags,
    },
    /// Rewrite a config file in canonical format.
    Fmt {
        /// The file (default: found from the working directory).
        file: Option<PathBuf>,
        /// Only check; exit 3 when the file is not formatted.
        #[arg(long = "check")]
        check: bool,
    },
    /// Builds and pushed artifacts.
    #[command(subcommand)]
    Artifact(ArtifactCmd),
    /// Deployments.
    #[command(subcommand)]
    Deployment(DeploymentCmd),
    /// Projects.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
    /// App configuration delivered to deployments.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Server connection profiles.
    #[command(subcommand)]
    Context(ContextCmd),
    /// Log in to a server with a token.
    Login {
        /// Server address, `host:port` or `unix:///path`.
        addr: Option<String>,
        /// The token.
        #[arg(long = "token")]
        token: String,
        /// Skip verification of the server's TLS certificate.
        #[arg(long = "server-tls-skip-verify")]
        tls_skip_verify: bool,
        /// Name of the context to create.
        #[arg(long = "context", default_value = "default")]
        context: String,
    },
    /// Users and tokens.
    #[command(subcommand)]
    User(UserCmd),
    /// Runners.
    #[command(subcommand)]
    Runner(RunnerCmd),
    /// Jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// The server.
    #[command(subcommand)]
    Server(ServerCmd),
    /// Hostnames of the URL service.
    #[command(subcommand)]
    Hostname(HostnameCmd),
    /// The URL service beside the server: its tunnels.
    #[command(subcommand, name = "url-service")]
    UrlService(UrlServiceCmd),
    /// Pipelines of the config file: list them and run them.
    #[command(subcommand)]
    Pipeline(PipelineCmd),
    /// Plugins: what is installed and how to configure it.
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Plugin documentation (same as `wayline plugin docs`).
    Docs(DocsArgs),
    /// Open the web UI with a fresh one-hour token.
    Ui {
        /// The server's HTTP address (default: the local server's, else port 9702 of the
        /// context's host).
        #[arg(long = "http-addr")]
        http_addr: Option<String>,
        /// Print the one-time sign-in link instead of opening a browser.
        #[arg(long = "print-url", visible_alias = "no-browser")]
        no_browser: bool,
    },
    /// Show the version.
    Version,
    /// Print a shell completion script.
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ReleaseArgs {
    #[command(subcommand)]
    pub(crate) list: Option<ReleaseCmd>,
    #[command(flatten)]
    pub(crate) op: OpFlags,
    #[command(flatten)]
    pub(crate) prune: PruneFlags,
    /// The deployment to release, e.g. `v3` (default: the latest).
    #[arg(long = "deployment", short = 'd')]
    pub(crate) deployment: Option<String>,
    /// Canary: send this percentage of the app host's traffic to `-deployment` and the rest to
    /// the live release, once it passes its health check (needs the URL service's router, no
    /// `release` stanza); 100 releases it, 0 sends everything back to the live release.
    #[arg(long = "weight", value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub(crate) weight: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReleaseCmd {
    /// List releases; the live one is marked.
    List(ListFlags),
}

/// Flags of list commands.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ListFlags {
    /// Every workspace, not only the current one.
    #[arg(long = "workspace-all")]
    pub(crate) workspace_all: bool,
    /// At most this many rows.
    #[arg(long = "limit", default_value_t = 50)]
    pub(crate) limit: u32,
    /// Only records built from this commit (prefix).
    #[arg(long = "commit")]
    pub(crate) commit: Option<String>,
    /// Show full ids.
    #[arg(long = "long-ids")]
    pub(crate) long_ids: bool,
}
