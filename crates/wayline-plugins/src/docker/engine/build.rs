//! Image builds with the classic builder, the engine's output streamed line by line.

use std::collections::HashMap;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::BuildImageOptions;
use futures::StreamExt;

use super::{DockerError, Out, message};

/// Options for one image build.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    /// Dockerfile path inside the context tar.
    pub dockerfile: String,
    /// `repo:tag` to give the result, if any.
    pub tag: Option<String>,
    /// Build args.
    pub build_args: HashMap<String, String>,
    /// Target stage.
    pub target: Option<String>,
    /// Platform, e.g. `linux/amd64`.
    pub platform: Option<String>,
    /// Skip the cache.
    pub no_cache: bool,
    /// Labels for the image.
    pub labels: HashMap<String, String>,
    /// Credentials for pulling base images, by registry.
    pub credentials: Option<HashMap<String, DockerCredentials>>,
}

/// Builds the context `tar` with the classic builder, streaming its output to `out`; returns the
/// image id. A failed build returns [`DockerError::Build`] with the failing step and message.
pub async fn build(
    docker: &Docker,
    tar: Vec<u8>,
    spec: BuildSpec,
    out: Out<'_>,
) -> Result<String, DockerError> {
    let options = BuildImageOptions {
        dockerfile: spec.dockerfile,
        t: spec.tag,
        nocache: spec.no_cache,
        rm: true,
        forcerm: true,
        buildargs: Some(spec.build_args),
        labels: Some(spec.labels),
        platform: spec.platform.unwrap_or_default(),
        target: spec.target.unwrap_or_default(),
        ..BuildImageOptions::default()
    };
    let mut stream = docker.build_image(
        options,
        spec.credentials,
        Some(bollard::body_full(tar.into())),
    );
    let mut step = None;
    let mut id = None;
    let mut pending = String::new();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(err) => {
                flush_lines(&mut pending, out, &mut step, true);
                return Err(DockerError::Build {
                    step,
                    message: message(&err),
                });
            }
        };
        if let Some(text) = info.stream {
            pending.push_str(&text);
            flush_lines(&mut pending, out, &mut step, false);
        }
        if let Some(status) = info.status {
            out(status.trim_end());
        }
        if let Some(aux) = info.aux.and_then(|a| a.id) {
            id = Some(aux);
        }
    }
    flush_lines(&mut pending, out, &mut step, true);
    id.ok_or_else(|| DockerError::Build {
        step,
        message: "the engine did not report an image id".to_owned(),
    })
}

/// Sends the complete lines in `pending` to `out`, remembering the last `Step` line.
fn flush_lines(pending: &mut String, out: Out<'_>, step: &mut Option<String>, all: bool) {
    while let Some(nl) = pending.find('\n') {
        let line: String = pending.drain(..=nl).collect();
        emit_line(line.trim_end(), out, step);
    }
    if all && !pending.is_empty() {
        let line = std::mem::take(pending);
        emit_line(line.trim_end(), out, step);
    }
}

fn emit_line(line: &str, out: Out<'_>, step: &mut Option<String>) {
    if line.is_empty() {
        return;
    }
    if line.starts_with("Step ") {
        *step = Some(line.to_owned());
    }
    out(line);
}
