//! `wayline`: build, deploy and release applications from one HCL file.
//!
//! The CLI is a thin client of the server's public API. It queues jobs and, by default, runs a
//! local runner in-process that takes only its own jobs, so `wayline up` works with nothing
//! else running. With no server configured it starts the user's embedded default server.

mod cli;
mod commands;
mod context;
mod render;
mod session;

use std::process::ExitCode;

use crate::render::{note, say};
use clap::Parser;

fn main() -> ExitCode {
    let args = cli::normalize_args(std::env::args_os());
    let mut cli = cli::Cli::parse_from(args);
    context::fill_from_env(&mut cli.global, |var| std::env::var(var).ok());
    init_tracing(cli.global.verbose);
    // `version` answers without starting a runtime: it must be instant.
    if matches!(cli.command, cli::Command::Version) {
        say!("{}", version_text());
        return ExitCode::SUCCESS;
    }
    // `validate` does no IO a runtime would serve: without one, a run per file (an editor, a
    // pre-commit hook) does not start worker threads only to stop them (issue 11).
    if matches!(cli.command, cli::Command::Validate { .. }) {
        return finish(commands::run_sync(cli));
    }
    // The server gets its own small runtime (few blocking threads keep idle memory low).
    let runtime = if matches!(cli.command, cli::Command::Server(cli::ServerCmd::Run(_))) {
        wayline_server::runtime()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            note!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(commands::run(cli));
    // Don't wait for blocking threads: after `exec` on a terminal, one is still parked in a
    // read of stdin that only a keypress would end.
    runtime.shutdown_background();
    finish(outcome)
}

/// The exit code of a command's outcome; an error is reported first.
fn finish(outcome: anyhow::Result<ExitCode>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(e) => {
            let message = commands::describe_error(&e);
            // Config diagnostics already carry their own `error:` headers.
            if message.starts_with("error:") {
                note!("{message}");
            } else {
                note!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `wayline 0.1.0 (commit 0123456789ab)`: the commit is the one the binary was built from.
fn version_text() -> String {
    match option_env!("WAYLINE_GIT_COMMIT").filter(|c| !c.is_empty()) {
        Some(commit) => format!("wayline {} (commit {commit})", env!("CARGO_PKG_VERSION")),
        None => format!("wayline {}", env!("CARGO_PKG_VERSION")),
    }
}

/// Logs go to stderr; `-v`/`-vv`/`-vvv` or `WAYLINE_LOG_LEVEL` raise the level.
fn init_tracing(verbose: u8) {
    let level = context::env("LOG_LEVEL").unwrap_or_else(|| {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
        .to_owned()
    });
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},h2=warn,hyper=warn,tower=warn,rustls=warn"
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only for a person reading a terminal, not in a file or a pipe.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
