//! Talking to the Docker engine: connection, build, entrypoint injection, tag, push, pull. Plain
//! async functions over bollard, independent of the component traits, so each step is testable on
//! its own. Output for the user goes through an [`Out`] callback, one line at a time.
//!
//! This module holds the error type; [`connect`](mod@connect) reaches the engine (unix, tcp, or
//! TLS with client certificates); [`build`](mod@build) builds images with the classic builder and
//! [`buildkit`] with BuildKit (choosing between them too),
//! [`inject`] puts the entrypoint into them (or [`mount`] into a local container instead),
//! [`images`] tags, removes, pushes and pulls them,
//! [`reference`] reads image references, and [`auth`] turns the Waypoint-style credential
//! attributes into the engine's.

mod auth;
mod build;
pub mod buildkit;
mod connect;
mod images;
mod inject;
mod mount;
mod reference;

use std::path::PathBuf;

use bollard::errors::Error as BollardError;

use super::config::Invalid;
use super::context::ContextError;

pub use auth::credentials;
pub use build::{BuildSpec, build};
pub use connect::{Endpoint, connect};
pub use images::{local_image, pull, push, remove_tag, tag_image};
pub use inject::{
    elf_interpreter, entrypoint_binary, entrypoint_dockerfile, has_entrypoint, inject_entrypoint,
    injection_key,
};
pub use mount::{EntrypointMount, entrypoint_mount, shares_files};
pub use reference::ImageReference;

/// Where user-facing output lines go (the terminal UI, in the components).
pub type Out<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Env var naming the static `wayline-entrypoint` binary to inject.
pub const ENTRYPOINT_ENV: &str = "WAYLINE_ENTRYPOINT_BINARY";
/// The binary's file name, looked for next to the running executable.
pub const ENTRYPOINT_FILE: &str = "wayline-entrypoint";
/// Where the entrypoint lives inside an injected image.
pub const ENTRYPOINT_IN_IMAGE: &str = "/bin/wayline-entrypoint";

/// Label put on every image, container and network Wayline creates: the app's name.
pub const LABEL_APP: &str = "wayline.app";
/// Label on a built image: the builder that made it (`buildkit` or `classic`).
pub const LABEL_BUILDER: &str = "wayline.builder";
/// Label on an injected image: the digest of its injection (parent image id, the Dockerfile and
/// the entrypoint binary), so the same injection again is found instead of rebuilt.
pub const LABEL_INJECTION: &str = "wayline.entrypoint-injection";
/// Label on containers (and networks) naming the deployment that created them.
pub const LABEL_DEPLOYMENT: &str = "wayline.deployment-id";

/// Everything that can go wrong in the docker plugins.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine can't be reached.
    #[error("cannot reach the Docker engine at `{addr}`: {message}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The engine client's reason.
        message: String,
    },
    /// The Dockerfile failed to build.
    #[error("docker build failed{}: {message}", .step.as_ref().map(|s| format!(" at `{s}`")).unwrap_or_default())]
    Build {
        /// The last `Step n/m : …` line before the failure.
        step: Option<String>,
        /// The engine's error, e.g. `COPY failed: …`.
        message: String,
    },
    /// The engine refused a BuildKit build as something it lacks (the classic builder may work).
    #[error("the engine refused the BuildKit build (HTTP {status}): {message}")]
    BuildKitRefused {
        /// The HTTP status.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// No entrypoint binary to inject.
    #[error(
        "cannot inject the entrypoint: no `wayline-entrypoint` binary at {ENTRYPOINT_ENV} ({}) nor at `{}`; build it, set {ENTRYPOINT_ENV}, or set `disable_entrypoint = true`",
        .env.as_ref().map_or_else(|| "not set".to_owned(), |p| format!("`{}` does not exist", p.display())),
        .next_to_exe.display()
    )]
    EntrypointMissing {
        /// The env var's value when it was set.
        env: Option<PathBuf>,
        /// The file looked for next to the executable.
        next_to_exe: PathBuf,
    },
    /// The registry refused the push.
    #[error("pushing `{reference}` failed: {message}")]
    Push {
        /// `image:tag`.
        reference: String,
        /// The registry's message.
        message: String,
    },
    /// An image reference that does not parse, or a digest where a tag is needed.
    #[error("image reference `{reference}` is not valid: {message}")]
    Reference {
        /// The reference as given.
        reference: String,
        /// Why it is not valid.
        message: String,
    },
    /// The image could not be pulled.
    #[error("pulling `{reference}` failed: {message}")]
    Pull {
        /// `image:tag`.
        reference: String,
        /// The registry's or engine's message.
        message: String,
    },
    /// The container stopped right after it started.
    #[error("container `{name}` exited at once with code {code}; its last log lines:\n{logs}")]
    ExitedAtOnce {
        /// Container name.
        name: String,
        /// Exit code.
        code: i64,
        /// Its last log lines.
        logs: String,
    },
    /// Config values that make no sense.
    #[error("invalid config: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Invalid>),
    /// The build context could not be read.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// Any other engine call that failed.
    #[error("{action}: {}", message(.source))]
    Api {
        /// What we were doing, e.g. ``inspecting image `x` ``.
        action: String,
        /// The engine client's error.
        source: BollardError,
    },
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}

/// The engine's own message without bollard's "Docker responded with status code" wrapper.
pub fn message(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        BollardError::DockerStreamError { error } => error.trim().to_owned(),
        other => other.to_string(),
    }
}

/// Whether an engine error is a 404.
pub fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Wraps an engine error with what we were doing.
pub fn api(action: impl Into<String>) -> impl FnOnce(BollardError) -> DockerError {
    let action = action.into();
    move |source| DockerError::Api { action, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_entrypoint_names_both_places() {
        let err = DockerError::EntrypointMissing {
            env: Some(PathBuf::from("/nope/ep")),
            next_to_exe: PathBuf::from("/opt/wayline/wayline-entrypoint"),
        };
        assert_eq!(
            err.to_string(),
            "cannot inject the entrypoint: no `wayline-entrypoint` binary at WAYLINE_ENTRYPOINT_BINARY (`/nope/ep` does not exist) nor at `/opt/wayline/wayline-entrypoint`; build it, set WAYLINE_ENTRYPOINT_BINARY, or set `disable_entrypoint = true`"
        );
        let build = DockerError::Build {
            step: Some("Step 2/3 : COPY x /x".into()),
            message: "COPY failed".into(),
        };
        assert_eq!(
            build.to_string(),
            "docker build failed at `Step 2/3 : COPY x /x`: COPY failed"
        );
    }
}
