//! What users type to inspect plugins.

use clap::{Args, Subcommand};

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
