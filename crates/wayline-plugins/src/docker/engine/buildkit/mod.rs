//! Image builds with BuildKit, the engine's builder since Docker 18.09: faster rebuilds (a cached
//! step costs no container), and build labels are free. `POST /build?version=2` with the same tar
//! as the classic builder; the engine serves the uploaded context to BuildKit itself, so no
//! `/session` is needed (the Dockerfile, `.dockerignore`, build args, target, platform, no-cache,
//! labels and the pull credentials' `X-Registry-Config` all travel as for the classic builder;
//! BuildKit has no `rm`/`forcerm`).
//!
//! [`choice`] decides which builder runs, [`http`] sends the request on a connection of our
//! own, [`trace`] decodes BuildKit's progress. Each line of the answer is bounded by
//! [`MAX_LINE`].

pub mod choice;
#[cfg(test)]
mod engine_tests;
mod http;
#[cfg(test)]
mod tests;
pub mod trace;

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use http_body_util::Full;
use hyper::Request;
use hyper::body::Bytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::{BuildSpec, DockerError, Endpoint, Out};
pub use choice::{BuilderKind, Choice, EngineFacts, choose};
pub use http::HttpError;
use trace::Progress;

/// The longest line of the engine's answer we read (a trace line carries at most a few log
/// chunks; this is far above what BuildKit sends).
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// One line of the engine's answer to `/build`.
#[derive(Debug, Default, Deserialize)]
struct Line {
    id: Option<String>,
    aux: Option<serde_json::Value>,
    stream: Option<String>,
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

/// The request's path and query: `/v<api>/build?version=2&…` from `spec`.
pub fn build_path(api_version: &str, spec: &BuildSpec) -> String {
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    // Sorted, so the same options make the same request.
    let json = |m: &HashMap<String, String>| {
        let sorted: BTreeMap<&String, &String> = m.iter().collect();
        enc(&serde_json::to_string(&sorted).unwrap_or_default())
    };
    let mut q = vec![
        "version=2".to_owned(),
        format!("dockerfile={}", enc(&spec.dockerfile)),
    ];
    if let Some(t) = &spec.tag {
        q.push(format!("t={}", enc(t)));
    }
    if spec.no_cache {
        q.push("nocache=1".to_owned());
    }
    if !spec.build_args.is_empty() {
        q.push(format!("buildargs={}", json(&spec.build_args)));
    }
    if !spec.labels.is_empty() {
        q.push(format!("labels={}", json(&spec.labels)));
    }
    if let Some(p) = spec.platform.as_deref().filter(|p| !p.is_empty()) {
        q.push(format!("platform={}", enc(p)));
    }
    if let Some(t) = spec.target.as_deref().filter(|t| !t.is_empty()) {
        q.push(format!("target={}", enc(t)));
    }
    format!("/v{api_version}/build?{}", q.join("&"))
}

/// Builds the context `tar` with BuildKit on the engine at `endpoint` (API `api_version`, as
/// negotiated), streaming the steps and their output to `out`; returns the image id. A failed
/// step returns [`DockerError::Build`] naming it; an engine that refuses BuildKit returns
/// [`DockerError::BuildKitRefused`], for the caller to try the classic builder.
pub async fn build(
    endpoint: &Endpoint,
    api_version: &str,
    tar: Bytes,
    spec: &BuildSpec,
    out: Out<'_>,
) -> Result<String, DockerError> {
    let http = |e: HttpError| DockerError::Build {
        step: None,
        message: e.to_string(),
    };
    let mut request = Request::post(build_path(api_version, spec))
        .header("Host", "docker")
        .header("Content-Type", "application/x-tar");
    if let Some(creds) = &spec.credentials {
        let json = serde_json::to_string(creds).map_err(|e| DockerError::Other(e.to_string()))?;
        request = request.header(
            "X-Registry-Config",
            base64::engine::general_purpose::STANDARD.encode(json),
        );
    }
    let request = request.body(Full::new(tar)).map_err(|e| http(e.into()))?;
    let response = http::send(endpoint, request).await.map_err(http)?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if status >= 300 {
        let text = http::text(body).await.map_err(http)?;
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
            .unwrap_or(text)
            .trim()
            .to_owned();
        return Err(if choice::refused_for_lack(status, &message) {
            DockerError::BuildKitRefused { status, message }
        } else {
            DockerError::Build {
                step: None,
                message,
            }
        });
    }
    let mut reader = Reader::default();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = http::next_chunk(&mut body).await.map_err(http)? {
        pending.extend_from_slice(&chunk);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            reader.line(&line, out);
        }
        if pending.len() > MAX_LINE {
            return Err(reader.fail(format!(
                "the engine sent a build progress line over {} MiB",
                MAX_LINE / (1024 * 1024)
            )));
        }
    }
    reader.line(&pending, out);
    reader.finish(out)
}

/// BuildKit's error without the layers it wraps round a Dockerfile's own error (`failed to
/// solve with frontend dockerfile.v0: failed to create LLB definition: …`), which say where in
/// BuildKit it failed, not what the user got wrong.
fn without_wrappers(error: &str) -> &str {
    const WRAPPERS: [&str; 3] = [
        "failed to solve with frontend dockerfile.v0: ",
        "failed to solve: ",
        "failed to create LLB definition: ",
    ];
    let mut rest = error.trim();
    while let Some(inner) = WRAPPERS.iter().find_map(|w| rest.strip_prefix(w)) {
        rest = inner;
    }
    rest
}

/// The state of reading one build's answer.
#[derive(Debug, Default)]
struct Reader {
    progress: Progress,
    id: Option<String>,
    error: Option<String>,
}

impl Reader {
    /// Handles one line of the answer.
    fn line(&mut self, raw: &[u8], out: Out<'_>) {
        let raw = raw.trim_ascii();
        if raw.is_empty() {
            return;
        }
        let line: Line = match serde_json::from_slice(raw) {
            Ok(line) => line,
            Err(err) => {
                tracing::debug!(error = %err, "an engine build line that is not JSON");
                return;
            }
        };
        match (line.id.as_deref(), line.aux) {
            (Some("moby.buildkit.trace"), Some(serde_json::Value::String(aux))) => {
                match trace::decode(&aux) {
                    Ok(update) => self.progress.lines(update).iter().for_each(|l| out(l)),
                    Err(err) => tracing::debug!(error = %err, "skipping a BuildKit trace"),
                }
            }
            (Some("moby.image.id"), Some(aux)) => {
                self.id = aux.get("ID").and_then(|v| v.as_str()).map(str::to_owned);
            }
            _ => {}
        }
        if let Some(text) = line.stream {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .for_each(|l| out(l.trim_end()));
        }
        if let Some(error) = line.error_detail.and_then(|d| d.message).or(line.error) {
            self.error.get_or_insert(error);
        }
    }

    /// The build's error, naming the failed step when there is one.
    fn fail(&self, message: String) -> DockerError {
        DockerError::Build {
            step: self.progress.failed().map(|(name, _)| name.to_owned()),
            message,
        }
    }

    /// The image id, or the build's error.
    fn finish(mut self, out: Out<'_>) -> Result<String, DockerError> {
        self.progress.flush().iter().for_each(|l| out(l));
        if let Some(error) = self.error.take() {
            return Err(self.fail(without_wrappers(&error).to_owned()));
        }
        if let Some((_, error)) = self.progress.failed() {
            return Err(self.fail(error.to_owned()));
        }
        let id = self.id.take();
        id.ok_or_else(|| self.fail("the engine did not report an image id".to_owned()))
    }
}
