//! Bounds on every input at the API edge, one rule per kind of input.
//!
//! Every RPC admits its request through [`Shared::admit`](super::Shared::admit), which
//! authenticates and then calls [`Bounded::bounds`] on the message, so the code behind it can
//! trust names, labels and sizes. Each request type states its bounds below (the compiler asks
//! for one impl per type); the rules themselves — what a name is, how many labels, how large a
//! value — are the functions at the top, used by all of them. Messages that arrive later on a
//! stream (a runner's `open`, an exec's `start`) go through the same rules as they arrive.
//! Log lines and log windows are bounded where they are kept, in the entrypoint hub.
//!
//! A field that breaks a rule gets `INVALID_ARGUMENT` naming the field and the limit; a server
//! table that is full (pending runners) gets `RESOURCE_EXHAUSTED`.

use std::collections::HashMap;

use tonic::Status;
use wayline_proto::v1 as pb;

/// Longest project, application, workspace, trigger or hostname name, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 255;
/// Longest id (runner, instance, deployment, job, token), in bytes.
pub(crate) const MAX_ID_BYTES: usize = 128;
/// Most labels on one runner, operation, job or request.
pub(crate) const MAX_LABELS: usize = 64;
/// Longest label key, in bytes.
pub(crate) const MAX_LABEL_KEY_BYTES: usize = 255;
/// Longest label value, in bytes.
pub(crate) const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// Longest label selector, in bytes (its nesting is bounded by the parser).
pub(crate) const MAX_SELECTOR_BYTES: usize = 4096;
/// Longest config variable name (a path for file vars), in bytes.
pub(crate) const MAX_CONFIG_NAME_BYTES: usize = 1024;
/// Largest config value, in bytes.
pub(crate) const MAX_CONFIG_VALUE_BYTES: usize = 1024 * 1024;
/// Most config variables in one `SetConfig`.
pub(crate) const MAX_CONFIG_VARS: usize = 1000;
/// Most runners waiting for adoption at once.
pub(crate) const MAX_PENDING_RUNNERS: usize = 64;

/// A request whose names and sizes are checked before its RPC runs.
pub(crate) trait Bounded {
    /// `Ok` when every field is within its limit; else the first one that is not.
    fn bounds(&self) -> Result<(), Status>;
}

fn too_long(what: &str, len: usize, max: usize) -> Status {
    Status::invalid_argument(format!(
        "{what} is {len} bytes long; the limit is {max} bytes"
    ))
}

/// Text of at most `max` bytes, without control characters (NUL, newline, escapes).
fn text(what: &str, s: &str, max: usize) -> Result<(), Status> {
    if s.len() > max {
        return Err(too_long(what, s.len(), max));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(Status::invalid_argument(format!(
            "{what} contains the control character {c:?}; names and labels are printable text"
        )));
    }
    Ok(())
}

/// A project, application, workspace or other name: printable text without `/` or `..`
/// (names end up in paths, container names and URLs). Empty passes: required fields say so
/// where they are required.
pub(crate) fn name(what: &str, s: &str) -> Result<(), Status> {
    text(what, s, MAX_NAME_BYTES)?;
    if s.contains('/') || s.contains('\\') || s.contains("..") {
        return Err(Status::invalid_argument(format!(
            "{what} `{s}` is not allowed: a name may not contain `/`, `\\` or `..`"
        )));
    }
    Ok(())
}

/// An id chosen by a client (runner and instance ids) or naming a record.
pub(crate) fn id(what: &str, s: &str) -> Result<(), Status> {
    name(what, s)?;
    if s.len() > MAX_ID_BYTES {
        return Err(too_long(what, s.len(), MAX_ID_BYTES));
    }
    Ok(())
}

/// A label map: at most [`MAX_LABELS`], each key and value bounded and printable.
pub(crate) fn labels<S: std::hash::BuildHasher>(
    what: &str,
    labels: &HashMap<String, String, S>,
) -> Result<(), Status> {
    if labels.len() > MAX_LABELS {
        return Err(Status::invalid_argument(format!(
            "{what} has {} labels; the limit is {MAX_LABELS}",
            labels.len()
        )));
    }
    for (k, v) in labels {
        if k.is_empty() {
            return Err(Status::invalid_argument(format!(
                "{what} has a label with an empty key"
            )));
        }
        text(&format!("a label key in {what}"), k, MAX_LABEL_KEY_BYTES)?;
        text(&format!("label `{k}` in {what}"), v, MAX_LABEL_VALUE_BYTES)?;
    }
    Ok(())
}

/// Config values keyed by name (project variables, dynamic-source settings).
fn values<S: std::hash::BuildHasher>(
    what: &str,
    values: &HashMap<String, String, S>,
) -> Result<(), Status> {
    if values.len() > MAX_CONFIG_VARS {
        return Err(Status::invalid_argument(format!(
            "{what} has {} entries; the limit is {MAX_CONFIG_VARS}",
            values.len()
        )));
    }
    for (k, v) in values {
        text(&format!("a key in {what}"), k, MAX_CONFIG_NAME_BYTES)?;
        if v.len() > MAX_CONFIG_VALUE_BYTES {
            return Err(too_long(
                &format!("`{k}` in {what}"),
                v.len(),
                MAX_CONFIG_VALUE_BYTES,
            ));
        }
    }
    Ok(())
}

fn selector(what: &str, s: &str) -> Result<(), Status> {
    if s.len() > MAX_SELECTOR_BYTES {
        return Err(too_long(what, s.len(), MAX_SELECTOR_BYTES));
    }
    Ok(())
}

fn app_ref(what: &str, a: Option<&pb::r#ref::Application>) -> Result<(), Status> {
    if let Some(a) = a {
        name(&format!("{what} project"), &a.project)?;
        name(&format!("{what} application"), &a.application)?;
    }
    Ok(())
}

fn config_var(v: &pb::ConfigVar) -> Result<(), Status> {
    text("config variable name", &v.name, MAX_CONFIG_NAME_BYTES)?;
    let what = |field: &str| format!("config variable `{}` {field}", v.name);
    name(&what("project"), &v.project)?;
    name(&what("application"), &v.application)?;
    name(&what("workspace"), &v.workspace)?;
    selector(&what("label selector"), &v.label_selector)?;
    match &v.value {
        Some(pb::config_var::Value::Static(s)) if s.len() > MAX_CONFIG_VALUE_BYTES => {
            Err(too_long(&what("value"), s.len(), MAX_CONFIG_VALUE_BYTES))
        }
        Some(pb::config_var::Value::Dynamic(d)) => {
            name(&what("source"), &d.from)?;
            values(&what("dynamic config"), &d.config)
        }
        _ => Ok(()),
    }
}

fn job(j: &pb::Job) -> Result<(), Status> {
    app_ref("job.application", j.application.as_ref())?;
    name("job.workspace", &j.workspace)?;
    labels("job.labels", &j.labels)?;
    use pb::target_runner::Target;
    match j.target_runner.as_ref().and_then(|t| t.target.as_ref()) {
        Some(Target::Id(r)) => id("job.target_runner.id", r)?,
        Some(Target::Labels(l)) => labels("job.target_runner.labels", &l.labels)?,
        Some(Target::Any(())) | None => {}
    }
    let (retain, prune_runner) = match &j.operation {
        Some(pb::job::Operation::Release(r)) => (r.prune_retain, r.prune_runner_id.as_str()),
        Some(pb::job::Operation::Up(u)) => (u.prune_retain, u.prune_runner_id.as_str()),
        _ => (0, ""),
    };
    if !prune_runner.is_empty() {
        id("job.prune_runner_id", prune_runner)?;
    }
    if retain < 0 {
        return Err(Status::invalid_argument(format!(
            "prune_retain is {retain}; it counts deployments to keep, so it must be 0 or more"
        )));
    }
    Ok(())
}

fn operation(o: &pb::Operation) -> Result<(), Status> {
    app_ref("operation.application", o.application.as_ref())?;
    name("operation.workspace", &o.workspace)?;
    labels("operation.labels", &o.labels)
}

/// A runner as it registers (RunnerConfig `open`).
pub(crate) fn runner(r: &pb::Runner) -> Result<(), Status> {
    id("open.runner.id", &r.id)?;
    labels("the runner", &r.labels)
}

/// Messages with nothing to bound: ids and flags only read, or no fields.
macro_rules! nothing_to_bound {
    ($($t:ty),* $(,)?) => {
        $(impl Bounded for $t {
            fn bounds(&self) -> Result<(), Status> {
                Ok(())
            }
        })*
    };
}

nothing_to_bound!(
    (),
    pb::GenerateLoginTokenRequest,
    pb::GenerateInviteTokenRequest,
    pb::ConvertInviteTokenRequest,
    pb::GenerateEntrypointTokenRequest,
    pb::RevokeTokenRequest,
    pb::ListWorkspacesRequest,
    pb::GetWorkspaceRequest,
    pb::GetProjectRequest,
    pb::DestroyProjectRequest,
    pb::ListOperationsRequest,
    pb::GetOperationRequest,
    pb::CheckDeploymentHealthRequest,
    pb::ListCanariesRequest,
    pb::ListUrlTunnelsRequest,
    pb::ListInstancesRequest,
    pb::GetLogStreamRequest,
    pb::GetConfigSourceRequest,
    pb::DeleteHostnameRequest,
    pb::ListHostnamesRequest,
    pb::CancelJobRequest,
    pb::GetJobRequest,
    pb::ListJobsRequest,
    pb::GetJobStreamRequest,
    pb::ListRunnersRequest,
    pb::GetRunnerRequest,
    pb::AdoptRunnerRequest,
    pb::ForgetRunnerRequest,
    pb::ServerConfig,
    pb::RunPipelineRequest,
);

/// Streams: each message is checked by its handler as it arrives, with the rules above.
impl<T> Bounded for tonic::Streaming<T> {
    fn bounds(&self) -> Result<(), Status> {
        Ok(())
    }
}

impl Bounded for pb::GenerateRunnerTokenRequest {
    fn bounds(&self) -> Result<(), Status> {
        id("runner_id", &self.runner_id)?;
        labels("the runner token request", &self.labels)
    }
}

impl Bounded for pb::UpsertProjectRequest {
    fn bounds(&self) -> Result<(), Status> {
        let Some(p) = &self.project else {
            return Ok(());
        };
        name("project name", &p.name)?;
        for a in &p.applications {
            name("application name", &a.name)?;
        }
        values("project variables", &p.variables)
    }
}

impl Bounded for pb::UpsertApplicationRequest {
    fn bounds(&self) -> Result<(), Status> {
        name("project name", &self.project)?;
        name("application name", &self.name)
    }
}

impl Bounded for pb::UpsertOperationRequest {
    fn bounds(&self) -> Result<(), Status> {
        self.operation.as_ref().map_or(Ok(()), operation)
    }
}

impl Bounded for pb::SetConfigRequest {
    fn bounds(&self) -> Result<(), Status> {
        if self.variables.len() > MAX_CONFIG_VARS {
            return Err(Status::invalid_argument(format!(
                "SetConfig carries {} variables; the limit is {MAX_CONFIG_VARS} per call",
                self.variables.len()
            )));
        }
        self.variables.iter().try_for_each(config_var)
    }
}

impl Bounded for pb::GetConfigRequest {
    fn bounds(&self) -> Result<(), Status> {
        labels("GetConfig", &self.labels)
    }
}

impl Bounded for pb::SetConfigSourceRequest {
    fn bounds(&self) -> Result<(), Status> {
        let Some(s) = &self.source else {
            return Ok(());
        };
        name("config source type", &s.r#type)?;
        name("config source project", &s.project)?;
        name("config source application", &s.application)?;
        values("the config source", &s.config)
    }
}

impl Bounded for pb::SetCanaryRequest {
    fn bounds(&self) -> Result<(), Status> {
        id("deployment_id", &self.deployment_id)?;
        name("workspace", &self.workspace)?;
        if self.health_path.len() > 1024 {
            return Err(Status::invalid_argument(
                "health_path is at most 1024 bytes",
            ));
        }
        Ok(())
    }
}

impl Bounded for pb::CreateHostnameRequest {
    fn bounds(&self) -> Result<(), Status> {
        name("hostname", &self.hostname)?;
        name("workspace", &self.workspace)
    }
}

impl Bounded for pb::QueueJobRequest {
    fn bounds(&self) -> Result<(), Status> {
        self.job.as_ref().map_or(Ok(()), job)
    }
}

impl Bounded for pb::ValidateJobRequest {
    fn bounds(&self) -> Result<(), Status> {
        self.job.as_ref().map_or(Ok(()), job)
    }
}

impl Bounded for pb::EntrypointConfigRequest {
    fn bounds(&self) -> Result<(), Status> {
        id("instance_id", &self.instance_id)
    }
}

impl Bounded for pb::UpsertTriggerRequest {
    fn bounds(&self) -> Result<(), Status> {
        let Some(t) = &self.trigger else {
            return Ok(());
        };
        name("trigger name", &t.name)?;
        name("trigger workspace", &t.workspace)?;
        t.tags.iter().try_for_each(|tag| name("trigger tag", tag))
    }
}

/// An exec's `start`: the names it targets.
pub(crate) fn exec_start(s: &pb::exec_stream_request::Start) -> Result<(), Status> {
    app_ref("start.application", s.application.as_ref())?;
    name("start.workspace", &s.workspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_printable() {
        let cases = [
            (
                "a/b",
                "project name `a/b` is not allowed: a name may not contain `/`, `\\` or `..`",
            ),
            (
                "..",
                "project name `..` is not allowed: a name may not contain `/`, `\\` or `..`",
            ),
            (
                "a\0b",
                "project name contains the control character '\\0'; names and labels are printable text",
            ),
            (
                "a\nb",
                "project name contains the control character '\\n'; names and labels are printable text",
            ),
            (
                "\u{1b}[31mred",
                "project name contains the control character '\\u{1b}'; names and labels are printable text",
            ),
        ];
        for (s, message) in cases {
            let err = name("project name", s).unwrap_err();
            assert_eq!(
                (err.code(), err.message()),
                (tonic::Code::InvalidArgument, message),
                "{s:?}"
            );
        }
        let long = "x".repeat(1 << 20);
        assert_eq!(
            name("project name", &long).unwrap_err().message(),
            "project name is 1048576 bytes long; the limit is 255 bytes"
        );
        assert!(name("project name", "my-app_2.web").is_ok());
    }

    #[test]
    fn labels_are_counted_and_sized() {
        let many: HashMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert_eq!(
            labels("the runner", &many).unwrap_err().message(),
            "the runner has 65 labels; the limit is 64"
        );
        let big = HashMap::from([("pool".to_owned(), "x".repeat(70_000))]);
        assert_eq!(
            labels("the runner", &big).unwrap_err().message(),
            "label `pool` in the runner is 70000 bytes long; the limit is 1024 bytes"
        );
        let ok = HashMap::from([("waypoint/workspace".to_owned(), "prod".to_owned())]);
        assert!(labels("the runner", &ok).is_ok());
    }

    #[test]
    fn prune_retain_must_not_be_negative() {
        let req = pb::QueueJobRequest {
            job: Some(pb::Job {
                operation: Some(pb::job::Operation::Up(pb::UpOp {
                    prune_retain: -1,
                    ..Default::default()
                })),
                ..Default::default()
            }),
            expires_in: String::new(),
        };
        assert_eq!(
            req.bounds().unwrap_err().message(),
            "prune_retain is -1; it counts deployments to keep, so it must be 0 or more"
        );
    }
}
