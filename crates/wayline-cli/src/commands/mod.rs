//! Command logic, one module per command group. `run` dispatches.

mod canary;
mod catalog;
mod config_cmd;
mod context_cmd;
mod job_cmd;
mod logs_exec;
mod ops;
mod pipeline_cmd;
mod plugin_cmd;
mod project;
mod runner_cmd;
mod server_cmd;
mod status;
mod timings;
mod url_service;
mod url_status;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::render::Style;

/// Everything a command needs besides its own arguments.
pub(crate) struct Env {
    pub(crate) global: crate::cli::Global,
    pub(crate) style: Style,
}

/// Runs a command that needs no async runtime (`validate`), outside any.
pub(crate) fn run_sync(cli: Cli) -> Result<ExitCode> {
    let env = Env {
        style: Style::detect(cli.global.plain),
        global: cli.global,
    };
    match cli.command {
        Command::Validate { file, op } => config_cmd::validate(&env, file, &op),
        _ => anyhow::bail!("internal error: this command needs the async runtime"),
    }
}

/// Runs one parsed command.
pub(crate) async fn run(cli: Cli) -> Result<ExitCode> {
    let env = Env {
        style: Style::detect(cli.global.plain),
        global: cli.global,
    };
    match cli.command {
        Command::Up { op, prune, release } => ops::up(&env, op, prune, release).await,
        Command::Build { op, push } => ops::build(&env, op, push).await,
        Command::Deploy { op, release } => ops::deploy(&env, op, release).await,
        Command::Release(args) => match args.list {
            Some(crate::cli::ReleaseCmd::List(list)) => catalog::release_list(&env, &list).await,
            None => match args.weight {
                Some(w) if w < 100 => canary::set(&env, args.deployment, w).await,
                _ => ops::release(&env, args.op, args.prune, args.deployment, false).await,
            },
        },
        Command::Rollback { op, to } => {
            let prune = crate::cli::PruneFlags {
                prune: false,
                prune_retain: 1,
            };
            ops::release(&env, op, prune, to.clone(), to.is_none()).await
        }
        Command::Destroy { op, auto_approve } => {
            ops::destroy(&env, op, auto_approve, Vec::new()).await
        }
        Command::Status { all_projects } => status::status(&env, all_projects).await,
        Command::Logs {
            deployment,
            instance,
            since,
            timestamps,
            follow,
        } => {
            let opts = logs_exec::LogsOptions {
                deployment,
                instance,
                since,
                timestamps,
                follow,
            };
            logs_exec::logs(&env, opts).await
        }
        Command::Exec {
            instance,
            deployment,
            tty,
            command,
        } => logs_exec::exec(&env, instance, deployment, tty, command).await,
        Command::Init { no_server } => config_cmd::init(&env, no_server).await,
        Command::Validate { file, op } => config_cmd::validate(&env, file, &op),
        Command::Fmt { file, check } => config_cmd::fmt(file, check),
        Command::Artifact(cmd) => catalog::artifact(&env, cmd).await,
        Command::Deployment(cmd) => catalog::deployment(&env, cmd).await,
        Command::Project(cmd) => project::project(&env, cmd).await,
        Command::Workspace(cmd) => project::workspace(&env, cmd).await,
        Command::Config(cmd) => config_cmd::config(&env, cmd).await,
        Command::Context(cmd) => context_cmd::context(&env, cmd).await,
        Command::Login {
            addr,
            token,
            tls_skip_verify,
            context,
        } => context_cmd::login(addr, token, tls_skip_verify, context).await,
        Command::User(cmd) => context_cmd::user(&env, cmd).await,
        Command::Runner(cmd) => runner_cmd::runner(&env, cmd).await,
        Command::Job(cmd) => job_cmd::job(&env, cmd).await,
        Command::Server(cmd) => server_cmd::server(&env, cmd).await,
        Command::Hostname(cmd) => project::hostname(&env, cmd).await,
        Command::UrlService(crate::cli::UrlServiceCmd::Status) => url_status::status(&env).await,
        Command::Pipeline(crate::cli::PipelineCmd::List) => pipeline_cmd::list(&env),
        Command::Pipeline(crate::cli::PipelineCmd::Run { name, op }) => {
            pipeline_cmd::run(&env, &name, &op).await
        }
        Command::Plugin(crate::cli::PluginCmd::List) => plugin_cmd::list(&env).await,
        Command::Plugin(crate::cli::PluginCmd::Docs(args)) | Command::Docs(args) => {
            plugin_cmd::docs(&env, &args).await
        }
        Command::Ui {
            http_addr,
            no_browser,
        } => server_cmd::ui(http_addr, no_browser).await,
        Command::Version => Ok(ExitCode::SUCCESS),
        Command::Completion { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "wayline", &mut script);
            crate::render::out_bytes(&script);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Turns an error into the sentence a user sees: gRPC statuses lose their code noise.
pub(crate) fn describe_error(e: &anyhow::Error) -> String {
    if let Some(status) = e.downcast_ref::<tonic::Status>() {
        return describe_status(status);
    }
    // Like `{e:#}`, but a cause already quoted by the message before it is not repeated.
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// A gRPC status in words.
/// Whether a failed call or stream means the connection to the server broke (it stopped or
/// restarted), as opposed to an answer.
pub(crate) fn is_disconnect(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => true,
        // A server killed mid-stream surfaces as an h2 error on the body.
        tonic::Code::Internal => status.message().contains("h2 protocol error"),
        _ => false,
    }
}

pub(crate) fn describe_status(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unauthenticated => {
            format!(
                "the server did not accept the token: {} (log in again with `wayline login`)",
                status.message()
            )
        }
        tonic::Code::PermissionDenied => format!("not allowed: {}", status.message()),
        tonic::Code::Unavailable => format!("the server is not reachable: {}", status.message()),
        tonic::Code::NotFound => status.message().to_owned(),
        _ => status.message().to_owned(),
    }
}
