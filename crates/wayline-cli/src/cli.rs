//! The command-line grammar. Command logic lives in `commands/`; this module only says what
//! users can type. Both `-flag` and `--flag` work (see [`normalize_args`]).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

#[derive(Debug, Subcommand)]
pub(crate) enum ArtifactCmd {
    /// List pushed artifacts.
    List(ListFlags),
    /// List builds.
    ListBuilds(ListFlags),
    /// Push the latest build to the registry.
    Push {
        #[command(flatten)]
        op: OpFlags,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeploymentCmd {
    /// List deployments.
    List {
        #[command(flatten)]
        list: ListFlags,
        /// Only deployments in this physical state: created, destroyed, pending, any.
        #[arg(long = "physical-state", default_value = "any")]
        physical_state: String,
    },
    /// Destroy deployments by id or `vN`.
    Destroy {
        /// The deployments: `v2`, a full id or a unique id prefix (repeatable).
        ids: Vec<String>,
        #[command(flatten)]
        op: OpFlags,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCmd {
    /// Create or update a project on the server.
    Apply {
        /// The project's name.
        name: String,
        /// `local` or `git`.
        #[arg(long = "data-source", default_value = "local")]
        data_source: String,
        /// The repository to clone (with `-data-source=git`).
        #[arg(long = "git-url")]
        git_url: Option<String>,
        /// The branch, tag or commit to check out.
        #[arg(long = "git-ref", default_value = "HEAD")]
        git_ref: String,
        /// The project's folder inside the repository.
        #[arg(long = "git-path")]
        git_path: Option<String>,
        /// User name for HTTPS basic authentication.
        #[arg(long = "git-username")]
        git_username: Option<String>,
        /// Password or access token for HTTPS basic authentication.
        #[arg(long = "git-password")]
        git_password: Option<String>,
        /// Private key (PEM) for SSH authentication.
        #[arg(long = "git-private-key-path")]
        git_private_key_path: Option<PathBuf>,
        /// Store this config file with the project (remote runners use it).
        #[arg(long = "waypoint-hcl", alias = "wayline-hcl")]
        config_file: Option<PathBuf>,
    },
    /// List projects.
    List,
    /// Show one project.
    Inspect {
        /// The project (default: `-project`, else the config file's).
        name: Option<String>,
    },
    /// Delete a project and (unless skipped) destroy its deployments.
    Destroy {
        /// The project (default: `-project`, else the config file's).
        name: Option<String>,
        /// Only forget the project; leave its deployments running.
        #[arg(long = "skip-destroy-resources")]
        skip_destroy_resources: bool,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long = "auto-approve")]
        auto_approve: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkspaceCmd {
    /// List workspaces.
    List,
    /// Show one workspace.
    Inspect {
        /// The workspace (default: the current one).
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCmd {
    /// Set config variables `NAME=value`; running instances restart with the new values.
    Set {
        /// `NAME=value` pairs (repeatable).
        pairs: Vec<String>,
        #[command(flatten)]
        scope: ConfigScope,
        /// Only for the app's templates, not exported as env vars.
        #[arg(long = "internal")]
        internal: bool,
    },
    /// Show config variables (optionally only names starting with a prefix).
    Get {
        /// Only variables whose names start with this.
        prefix: Option<String>,
        #[command(flatten)]
        scope: ConfigScope,
        /// Print only the value of one variable.
        #[arg(long = "raw")]
        raw: bool,
    },
    /// Delete config variables.
    Delete {
        /// The variables' names (repeatable).
        names: Vec<String>,
        #[command(flatten)]
        scope: ConfigScope,
    },
    /// Send the `config {}` stanza of the config file to the server without deploying.
    Sync {
        #[command(flatten)]
        op: OpFlags,
    },
    /// Check the config file (same as `wayline validate`).
    Validate {
        /// The file (default: found from the working directory).
        file: Option<PathBuf>,
        #[command(flatten)]
        op: OpFlags,
    },
}

/// Where a config variable applies.
#[derive(Debug, Args, Clone)]
pub(crate) struct ConfigScope {
    /// global, project or app (default: app when an app is known, else project).
    #[arg(long = "scope")]
    pub(crate) scope: Option<String>,
    /// Only deployments whose labels match this selector.
    #[arg(long = "label-scope")]
    pub(crate) label_scope: Option<String>,
    /// Config for runners instead of deployments.
    #[arg(long = "runner")]
    pub(crate) runner: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ContextCmd {
    /// Create a context.
    Create {
        /// The context's name (letters, digits, `-`, `_`, `.`).
        name: String,
        /// Server address, `host:port` or `unix:///path`.
        #[arg(long = "server-addr")]
        server_addr: String,
        /// The token to authenticate with.
        #[arg(long = "server-auth-token")]
        token: Option<String>,
        /// Use TLS (set false for a plaintext TCP server).
        #[arg(long = "server-tls", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        tls: bool,
        /// Skip verification of the server's TLS certificate.
        #[arg(long = "server-tls-skip-verify")]
        tls_skip_verify: bool,
        /// Make it the default context.
        #[arg(long = "set-default", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        set_default: bool,
    },
    /// Make a context the default.
    Use {
        /// The context's name.
        name: String,
    },
    /// List contexts.
    List,
    /// Show a context (default: the current one).
    Inspect {
        /// The context's name.
        name: Option<String>,
    },
    /// Delete a context.
    Delete {
        /// The context's name.
        name: String,
    },
    /// Check that the current context reaches its server.
    Verify {
        /// The context's name (default: the current one).
        name: Option<String>,
    },
    /// Unset the default context.
    Clear,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCmd {
    /// Create a new login token.
    Token {
        /// How long the token is valid, e.g. `720h`.
        #[arg(long = "expires-in", default_value = "720h")]
        expires_in: String,
    },
    /// Create an invite token that can be exchanged for a login token.
    Invite {
        /// How long the invite is valid, e.g. `24h`.
        #[arg(long = "expires-in", default_value = "24h")]
        expires_in: String,
    },
}

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
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServerCmd {
    /// Run the server in the foreground.
    Run(ServerRunArgs),
    /// Get the first token of a new server (works once).
    Bootstrap {
        /// Server address.
        #[arg(long = "server-addr")]
        server_addr: String,
        /// Skip verification of the server's TLS certificate.
        #[arg(long = "server-tls-skip-verify")]
        tls_skip_verify: bool,
        /// Use TLS (set false for a plaintext TCP server).
        #[arg(long = "server-tls", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        tls: bool,
        /// Also create a context with this name and make it the default.
        #[arg(long = "context-create")]
        context_create: Option<String>,
    },
    /// Write a consistent snapshot of the server's data to a file (0600; it holds every config
    /// secret). Back up this way, not by copying `wayline.db`: a lost `wayline.db-wal` silently
    /// drops the latest commits (see docs/server-security.md).
    Snapshot {
        /// Where to write the snapshot.
        file: PathBuf,
    },
    /// Restore the server's data from a snapshot.
    Restore {
        /// The snapshot to restore.
        file: PathBuf,
    },
    /// Stop the embedded default server (found through its data dir's lock, so this works even
    /// when its socket was deleted).
    Stop,
    /// Set the address deployments and runners use to reach the server.
    ConfigSet {
        /// The address, `host:port` or `unix:///path`.
        #[arg(long = "advertise-addr")]
        advertise_addr: Option<String>,
        /// Whether deployments and runners use TLS to reach it.
        #[arg(long = "advertise-tls", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        advertise_tls: Option<bool>,
        /// Whether they skip verification of its TLS certificate.
        #[arg(long = "advertise-tls-skip-verify", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        advertise_tls_skip_verify: Option<bool>,
    },
}

/// An octal permission mode such as `600` or `0660`.
fn parse_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("`{s}` is not an octal mode such as 600 or 660")),
    }
}

#[derive(Debug, Args, Clone)]
pub(crate) struct ServerRunArgs {
    /// The database file (default: in the data dir).
    #[arg(long = "db")]
    pub(crate) db: Option<PathBuf>,
    /// Where the server keeps its files.
    #[arg(long = "data-dir")]
    pub(crate) data_dir: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long = "listen-grpc", default_value = "127.0.0.1:9701")]
    pub(crate) listen_grpc: String,
    /// HTTP listen address (health, metrics, UI).
    #[arg(long = "listen-http", default_value = "127.0.0.1:9702")]
    pub(crate) listen_http: String,
    /// Unix socket for local clients and deployments (default: `socket/server.sock` in the data
    /// dir). Local Docker deployments bind-mount its directory: give it one of its own.
    #[arg(long = "listen-unix")]
    pub(crate) listen_unix: Option<PathBuf>,
    /// The unix socket's permissions, in octal (default 600: only this user; 666 lets
    /// containers running as other users connect, each call still needs a token).
    #[arg(long = "socket-mode", default_value = "600", value_parser = parse_mode)]
    pub(crate) socket_mode: u32,
    /// Start a new, empty server although the data dir was used before and its database is
    /// missing or empty (makes a new signing key: earlier tokens stop working).
    #[arg(long = "reinitialize")]
    pub(crate) reinitialize: bool,
    /// TLS certificate (PEM) for the gRPC listener (default: a self-signed one).
    #[arg(long = "tls-cert-file")]
    pub(crate) tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `-tls-cert-file`.
    #[arg(long = "tls-key-file")]
    pub(crate) tls_key_file: Option<PathBuf>,
    /// Address runners and deployments use to reach this server.
    #[arg(long = "advertise-addr")]
    pub(crate) advertise_addr: Option<String>,
    /// Seconds a runner has to ack an assigned job.
    #[arg(long = "ack-timeout", default_value_t = 60)]
    pub(crate) ack_timeout: u64,
    /// Seconds without a heartbeat after which a running job fails.
    #[arg(long = "heartbeat-timeout", default_value_t = 30)]
    pub(crate) heartbeat_timeout: u64,
    /// Run as the embedded default server of this user (set by the CLI).
    #[arg(long = "embedded", hide = true)]
    pub(crate) embedded: bool,
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

#[derive(Debug, Subcommand)]
pub(crate) enum PluginCmd {
    /// List built-in and external plugins with their component kinds.
    List,
    /// Show the config attributes of plugins.
    Docs(DocsArgs),
}

/// Which plugin docs to show.
#[derive(Debug, Args, Clone)]
pub(crate) struct DocsArgs {
    /// Only this plugin.
    #[arg(long = "plugin")]
    pub(crate) plugin: Option<String>,
    /// Only this component kind: builder, registry, platform, releasemanager, configsourcer.
    #[arg(long = "type")]
    pub(crate) kind: Option<String>,
    /// Markdown instead of plain text.
    #[arg(long = "markdown")]
    pub(crate) markdown: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HostnameCmd {
    /// List hostnames.
    List,
    /// Register a hostname for the app.
    Register {
        /// The hostname (default: a generated one).
        hostname: Option<String>,
    },
    /// Delete a hostname.
    Delete {
        /// The hostname.
        hostname: String,
    },
}

/// Flags before or within `exec` whose value is the next argument (so that argument is not
/// taken for the remote command).
const VALUE_FLAGS: &[&str] = &[
    "-a",
    "-p",
    "-w",
    "-d",
    "--app",
    "--project",
    "--workspace",
    "--instance",
    "--deployment",
];

/// Turns Waypoint-style `-flag` into `--flag` so both spellings work. Short flags (`-a`),
/// counted verbosity (`-vv`), negative numbers and everything after `--` pass unchanged, and
/// so does the remote command of `exec` (from its first positional argument on), which
/// belongs to another program. `wayline -v`, `-version` and `--version` alone mean `version`.
pub(crate) fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.into_iter().collect();
    if args.len() == 2
        && matches!(
            args[1].to_str(),
            Some("-v" | "-V" | "-version" | "--version")
        )
    {
        return vec![args[0].clone(), OsString::from("version")];
    }
    let mut out = Vec::new();
    let mut passthrough = false;
    let mut command_seen = false;
    let mut in_exec = false;
    let mut value_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        if !s.starts_with('-') || s == "-" {
            if !value_next {
                if in_exec {
                    // The remote command starts here: its flags are its own.
                    passthrough = true;
                } else if !command_seen {
                    command_seen = true;
                    in_exec = s == "exec";
                }
            }
            value_next = false;
            out.push(arg);
            continue;
        }
        let single_dash_long = s.len() > 2
            && !s.starts_with("--")
            && s[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && !s[1..].chars().all(|c| c == 'v');
        let flag = if single_dash_long {
            format!("-{s}")
        } else {
            s.to_owned()
        };
        value_next = !flag.contains('=') && VALUE_FLAGS.contains(&flag.as_str());
        out.push(OsString::from(flag));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(OsString::from))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    /// The server refused a negative `-prune-retain`; the CLI sent it.
    #[test]
    fn a_negative_prune_retain_is_refused() {
        use clap::Parser;
        let err = Cli::try_parse_from(["wayline", "up", "--prune-retain=-1"]).unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            msg.lines().next().unwrap(),
            "error: invalid value '-1' for '--prune-retain <PRUNE_RETAIN>': -1 is not in 0..=2147483647"
        );
        assert!(Cli::try_parse_from(["wayline", "up", "--prune-retain=0"]).is_ok());
    }

    #[test]
    fn single_dash_flags_become_long() {
        assert_eq!(
            norm(&["wayline", "up", "-prune-retain", "2"]),
            ["wayline", "up", "--prune-retain", "2"]
        );
        assert_eq!(
            norm(&["wayline", "-vv", "up", "-a", "web"]),
            ["wayline", "-vv", "up", "-a", "web"]
        );
        assert_eq!(
            norm(&["wayline", "exec", "--", "ls", "-la"]),
            ["wayline", "exec", "--", "ls", "-la"]
        );
        assert_eq!(
            norm(&["wayline", "up", "-release=false"]),
            ["wayline", "up", "--release=false"]
        );
    }

    #[test]
    fn the_remote_command_of_exec_keeps_its_flags() {
        assert_eq!(
            norm(&["wayline", "exec", "/bin/busybox", "echo", "-version"]),
            ["wayline", "exec", "/bin/busybox", "echo", "-version"]
        );
        assert_eq!(
            norm(&[
                "wayline",
                "-app",
                "web",
                "exec",
                "-instance",
                "i1",
                "ls",
                "-la",
                "-color"
            ]),
            [
                "wayline",
                "--app",
                "web",
                "exec",
                "--instance",
                "i1",
                "ls",
                "-la",
                "-color"
            ]
        );
        assert_eq!(
            norm(&[
                "wayline",
                "exec",
                "-d",
                "v3",
                "-tty=false",
                "sh",
                "-c",
                "-x"
            ]),
            [
                "wayline",
                "exec",
                "-d",
                "v3",
                "--tty=false",
                "sh",
                "-c",
                "-x"
            ]
        );
        // Other commands' positionals do not stop the rewriting.
        assert_eq!(
            norm(&["wayline", "deployment", "destroy", "v2", "-auto-approve"]),
            ["wayline", "deployment", "destroy", "v2", "--auto-approve"]
        );
    }

    #[test]
    fn version_flags_mean_the_version_command() {
        for flag in ["-v", "-V", "-version", "--version"] {
            assert_eq!(norm(&["wayline", flag]), ["wayline", "version"]);
        }
        assert_eq!(norm(&["wayline", "-v", "up"]), ["wayline", "-v", "up"]);
    }

    #[test]
    fn every_flag_and_argument_is_described() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            for arg in cmd.get_arguments() {
                if arg.is_hide_set() || ["help", "version"].contains(&arg.get_id().as_str()) {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (command)", sub.get_name()));
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "without a description:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn grammar_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

/// The CLI reference (`docs/cli.md`), generated from the clap definitions above.
#[cfg(test)]
mod reference {
    use std::fmt::Write as _;

    use clap::CommandFactory;

    use super::Cli;

    fn render(cmd: &mut clap::Command, path: &str, out: &mut String) {
        if cmd.is_hide_set() {
            return;
        }
        let name = if path.is_empty() {
            cmd.get_name().to_owned()
        } else {
            format!("{path} {}", cmd.get_name())
        };
        let depth = name.matches(' ').count() + 1;
        let _ = writeln!(out, "{} `{name}`\n", "#".repeat(depth.min(4) + 1));
        let help = cmd.render_long_help().to_string();
        let _ = writeln!(out, "```text\n{}\n```\n", help.trim_end());
        let mut subs: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
        for sub in &mut subs {
            if sub.get_name() != "help" {
                render(sub, &name, out);
            }
        }
    }

    /// Keeps `docs/cli.md` in step with the code: regenerate with `UPDATE_DOCS=1 cargo test -p
    /// wayline-cli reference`.
    #[test]
    fn cli_reference_is_up_to_date() {
        let mut out = String::from(
            "# `wayline` command reference\n\nGenerated from the code by `cargo test -p wayline-cli reference` \
             (`UPDATE_DOCS=1` rewrites it). Every flag also takes the single-dash form (`-app web`).\n\n",
        );
        let mut cmd = Cli::command();
        cmd.build();
        render(&mut cmd, "", &mut out);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &out).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == out,
            "docs/cli.md is out of date: run `UPDATE_DOCS=1 cargo test -p wayline-cli reference`"
        );
    }
}
