//! What users type for config variables, server contexts and users.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::OpFlags;

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
