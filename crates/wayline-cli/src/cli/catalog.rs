//! What users type to read and change the catalog: artifacts, deployments, projects,
//! workspaces and hostnames.

use std::path::PathBuf;

use clap::Subcommand;

use super::{ListFlags, OpFlags};

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
pub(crate) enum UrlServiceCmd {
    /// The tunnels entrypoints hold open: deployment, app, hostnames, instance, when it
    /// connected, requests in flight (`-json` for scripts).
    Status,
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
