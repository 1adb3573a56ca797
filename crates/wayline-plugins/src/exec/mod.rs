//! The `exec` platform: runs a command as the deployment.
//!
//! Waypoint's attributes, with the same meaning: `command` (a list; each element is a template,
//! and `<TPL>` is replaced by the path of the rendered `template`), `template { path }` (a file or
//! directory rendered with `{{.Env.X}}`, `{{.Input.x}}`, `{{.App}}`… substitution), and `dir`.
//!
//! The command starts detached in its own process group, with the deployment env, its output in
//! a log file in the data dir. If it exits 0 within `startup_wait_ms` it was a one-shot command
//! (e.g. `kubectl apply`); if it exits non-zero the deploy fails with its last output lines;
//! if it still runs it is a long-running deployment whose pid is recorded, so `destroy` stops the
//! process group and `status` checks it.

pub mod process;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use wayline_plugin::pb::{LogBatch, LogLine, LogsRequest};
use wayline_plugin::{
    AnyValue, BuiltinRegistry, Capabilities, Component, ConfigErrors, Ctx, DeclaredResource,
    Destroyer, Docs, Documented, FieldDoc, Health, LogPlatform, Outcome, Platform, PluginError,
    ResourceKind, ResourceManager, Status, StatusReport, Style, Value,
};

use crate::files::remove_path;

/// What `<TPL>` in a command element is replaced with.
pub const TPL: &str = "<TPL>";
/// How long destroy waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How many output lines a failure shows.
const FAIL_LINES: usize = 20;

/// An exec deployment.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ExecDeployment {
    /// Which deployment (id, `v<sequence>`, or job id).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The command as run.
    #[prost(string, repeated, tag = "2")]
    pub command: Vec<String>,
    /// Pid (and process group) of a long-running deployment; 0 for a one-shot command.
    #[prost(int32, tag = "3")]
    pub pid: i32,
    /// The command's output.
    #[prost(string, tag = "4")]
    pub log_path: String,
    /// The command exited 0 at once.
    #[prost(bool, tag = "5")]
    pub one_shot: bool,
    /// The rendered template path (what `<TPL>` became), if any.
    #[prost(string, tag = "6")]
    pub rendered: String,
}

impl Value for ExecDeployment {
    const TYPE_NAME: &'static str = "wayline.exec.Deployment";
}

/// `template { path = "…" }`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TemplateBlock {
    /// Template file or directory, relative to the source directory.
    pub path: String,
}

/// `template` must be one block: a map, never a list of them.
fn one_block<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<TemplateBlock>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<TemplateBlock>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("one `template { path = \"…\" }` block")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            // Through the map access itself, so field paths of inner errors are kept.
            TemplateBlock::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(serde::de::Error::custom(
                "only one `template` block is allowed",
            ))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

fn default_wait() -> u64 {
    1000
}

/// `deploy { use "exec" { … } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The command and its arguments; each element is a template.
    pub command: Vec<String>,
    /// A file or directory rendered before the command runs.
    #[serde(default, deserialize_with = "one_block")]
    pub template: Option<TemplateBlock>,
    /// Working directory, relative to the source directory.
    #[serde(default)]
    pub dir: Option<String>,
    /// How long to watch the command before calling it long-running (Wayline extension).
    #[serde(default = "default_wait")]
    pub startup_wait_ms: u64,
}

/// The `exec` platform.
#[derive(Debug, Clone, Copy)]
pub struct ExecPlatform;

impl Component for ExecPlatform {
    type Config = ExecConfig;
    type Output = ExecDeployment;

    fn validate(c: &ExecConfig) -> Result<(), ConfigErrors> {
        let mut errs = ConfigErrors::default();
        if c.command.is_empty() {
            errs.push("command", "must have at least one element");
        }
        for (i, a) in c.command.iter().enumerate() {
            if a.contains(TPL) && c.template.is_none() {
                errs.push(format!("command[{i}]"), "`<TPL>` needs a `template` block");
            }
        }
        if let Some(t) = &c.template
            && t.path.trim().is_empty()
        {
            errs.push("template.path", "must not be empty");
        }
        errs.into_result()
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer().status().log_platform().documented();
    }
}

/// The values templates see.
fn template_data(ctx: &Ctx) -> serde_json::Value {
    let c = &ctx.core;
    serde_json::json!({
        "Env": c.deployment_env,
        "Input": ctx.input_template_data,
        "App": c.job.app,
        "Project": c.job.project,
        "Workspace": c.job.workspace,
        "Sequence": c.job.sequence,
        "DeploymentID": c.job.deployment_id,
        "Labels": c.labels,
        "Source": c.source_path,
    })
}

fn deployment_tag(ctx: &Ctx) -> String {
    let j = &ctx.core.job;
    if !j.deployment_id.is_empty() {
        j.deployment_id.clone()
    } else if j.sequence > 0 {
        format!("v{}", j.sequence)
    } else {
        j.id.clone()
    }
}

/// A long-running process group.
struct ProcessKind;

#[async_trait]
impl ResourceKind for ProcessKind {
    fn type_name(&self) -> &'static str {
        "process"
    }

    async fn destroy(&self, _: &Ctx, _: &str, s: &serde_json::Value) -> Result<(), PluginError> {
        let (pid, start) = pid_state(s)?;
        process::stop(pid, start, STOP_GRACE)
            .await
            .map_err(PluginError::msg)
    }

    async fn status(
        &self,
        _: &Ctx,
        _: &str,
        s: &serde_json::Value,
    ) -> Result<(Health, String), PluginError> {
        let (pid, start) = pid_state(s)?;
        Ok(match process::state(pid, start) {
            process::ProcState::Running => (Health::Alive, format!("process {pid} is running")),
            process::ProcState::Gone => (Health::Down, format!("process {pid} has exited")),
        })
    }
}

fn pid_state(s: &serde_json::Value) -> Result<(i32, u64), PluginError> {
    let pid = s["pid"]
        .as_i64()
        .ok_or_else(|| PluginError::msg("process state has no pid"))?;
    Ok((pid as i32, s["start_time"].as_u64().unwrap_or_default()))
}

/// A file or directory the deployment wrote (rendered templates, the log).
struct PathKind;

#[async_trait]
impl ResourceKind for PathKind {
    fn type_name(&self) -> &'static str {
        "path"
    }

    async fn destroy(&self, _: &Ctx, _: &str, s: &serde_json::Value) -> Result<(), PluginError> {
        match s["path"].as_str() {
            Some(p) => remove_path(Path::new(p)).await,
            None => Ok(()),
        }
    }

    async fn status(
        &self,
        _: &Ctx,
        _: &str,
        s: &serde_json::Value,
    ) -> Result<(Health, String), PluginError> {
        let p = s["path"].as_str().unwrap_or_default();
        Ok(if Path::new(p).exists() {
            (Health::Ready, format!("`{p}` exists"))
        } else {
            (Health::Missing, format!("`{p}` is missing"))
        })
    }
}

fn resources() -> ResourceManager {
    ResourceManager::new("exec")
        .kind(ProcessKind)
        .kind(PathKind)
}

fn failed_with_output(msg: String, log: &Path) -> PluginError {
    let lines = process::tail(log, FAIL_LINES);
    if lines.is_empty() {
        PluginError::msg(format!("{msg} (no output)"))
    } else {
        PluginError::msg(format!("{msg}; last output:\n{}", lines.join("\n")))
    }
}

/// Renders the `template` block's tree into the deployment's own directory (a resource, so
/// destroy removes it); the rendered path, for `<TPL>` in the command, or empty without one.
async fn render_template(
    ctx: &Ctx,
    cfg: &ExecConfig,
    rm: &mut ResourceManager,
    data: &serde_json::Value,
    tag: &str,
    data_dir: &Path,
) -> Result<String, PluginError> {
    let Some(t) = &cfg.template else {
        return Ok(String::new());
    };
    let src = ctx.core.source_path.join(&t.path);
    let name = src
        .file_name()
        .map_or_else(|| "template".into(), |n| n.to_owned());
    let dst = data_dir.join(format!("exec-{tag}")).join(name);
    let root = data_dir.join(format!("exec-{tag}"));
    rm.create(ctx, &root.to_string_lossy(), "path", async {
        let (src, dst, data) = (src.clone(), dst.clone(), data.clone());
        let _ = std::fs::remove_dir_all(dst.parent().unwrap_or(&dst));
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(dst.parent().unwrap_or(&dst))
                .map_err(|e| template::TemplateError(e.to_string()))?;
            template::render_tree(&src, &dst, &data)
        })
        .await
        .map_err(|e| PluginError::msg(e.to_string()))?
        .map_err(|e| PluginError::msg(format!("template: {e}")))?;
        Ok(serde_json::json!({ "path": root }))
    })
    .await?;
    Ok(dst.to_string_lossy().into_owned())
}

impl ExecPlatform {
    async fn run(
        &self,
        ctx: &Ctx,
        cfg: &ExecConfig,
        rm: &mut ResourceManager,
    ) -> Result<ExecDeployment, PluginError> {
        let data = template_data(ctx);
        let tag = deployment_tag(ctx);
        let data_dir = ctx.core.data_dir.clone();
        tokio::fs::create_dir_all(&data_dir)
            .await
            .map_err(|e| PluginError::io(format!("cannot create `{}`", data_dir.display()), e))?;

        let rendered = render_template(ctx, cfg, rm, &data, &tag, &data_dir).await?;

        let argv = cfg
            .command
            .iter()
            .enumerate()
            .map(|(i, a)| {
                template::render(&a.replace(TPL, &rendered), &data).map_err(|e| {
                    PluginError::Config(ConfigErrors::one(format!("command[{i}]"), e.to_string()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dir = match &cfg.dir {
            Some(d) => ctx.core.source_path.join(d),
            None => ctx.core.source_path.clone(),
        };
        let log = data_dir.join(format!("exec-{tag}.log"));
        rm.create(ctx, &log.to_string_lossy(), "path", async {
            Ok(serde_json::json!({ "path": log }))
        })
        .await?;

        ctx.ui
            .output(format!("Running `{}`", argv.join(" ")), Style::Info);
        let mut child = spawn(&argv, &dir, &ctx.core.deployment_env, &log)?;
        let pid = child.id().map_or(0, |p| p as i32);
        let start_time = process::proc_stat(pid).map(|s| s.0).unwrap_or_default();
        let wait = Duration::from_millis(cfg.startup_wait_ms);
        let outcome = tokio::select! {
            r = tokio::time::timeout(wait, child.wait()) => r,
            () = ctx.cancel.cancelled() => {
                let _ = process::stop(pid, start_time, STOP_GRACE).await;
                return Err(PluginError::Cancelled);
            }
        };
        let mut d = ExecDeployment {
            id: tag,
            command: argv.clone(),
            pid: 0,
            log_path: log.to_string_lossy().into_owned(),
            one_shot: false,
            rendered,
        };
        match outcome {
            Ok(Ok(st)) if st.success() => {
                for l in process::tail(&log, 200) {
                    ctx.ui.output(l, Style::Plain);
                }
                ctx.ui.output("Command completed", Style::Success);
                d.one_shot = true;
            }
            Ok(Ok(st)) => {
                return Err(failed_with_output(
                    format!("`{}` {st}", argv.join(" ")),
                    &log,
                ));
            }
            Ok(Err(e)) => return Err(PluginError::io("waiting for the command failed", e)),
            Err(_) => {
                // Still running after the startup wait: a long-running deployment.
                let state = serde_json::json!({ "pid": pid, "start_time": start_time, "log": log });
                rm.create(ctx, &format!("pid {pid}"), "process", async { Ok(state) })
                    .await?;
                // Dropping the child does not kill it; tokio reaps it when it exits.
                drop(child);
                ctx.ui.output(
                    format!(
                        "Started process {pid}; its output goes to `{}`",
                        log.display()
                    ),
                    Style::Success,
                );
                d.pid = pid;
            }
        }
        Ok(d)
    }
}

fn spawn(
    argv: &[String],
    dir: &Path,
    env: &BTreeMap<String, String>,
    log: &PathBuf,
) -> Result<tokio::process::Child, PluginError> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| PluginError::io(format!("cannot open `{}`", log.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| PluginError::io(format!("cannot open `{}`", log.display()), e))?;
    tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own group: destroy signals the whole group, and a job's Ctrl-C does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            PluginError::io(
                format!("cannot run `{}` in `{}`", argv[0], dir.display()),
                e,
            )
        })
}

#[async_trait]
impl Platform for ExecPlatform {
    type Input = AnyValue;

    async fn deploy(
        &self,
        ctx: &Ctx,
        cfg: &ExecConfig,
        _artifact: AnyValue,
    ) -> Result<Outcome<ExecDeployment>, PluginError> {
        let mut rm = resources();
        match self.run(ctx, cfg, &mut rm).await {
            Ok(d) => {
                let data = serde_json::json!({
                    "id": d.id, "pid": d.pid, "log": d.log_path, "one_shot": d.one_shot, "rendered": d.rendered,
                });
                Ok(Outcome::new(d)
                    .template_data(data)
                    .resources(rm.into_declared()))
            }
            Err(e) => Err(rm.rollback(ctx, e).await),
        }
    }
}

#[async_trait]
impl Destroyer for ExecPlatform {
    async fn destroy(
        &self,
        ctx: &Ctx,
        _: &ExecConfig,
        _: ExecDeployment,
        stored: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        resources().destroy_all(ctx, stored).await
    }
}

#[async_trait]
impl Status for ExecPlatform {
    async fn status(
        &self,
        ctx: &Ctx,
        _: &ExecConfig,
        d: ExecDeployment,
        res: Vec<DeclaredResource>,
    ) -> Result<StatusReport, PluginError> {
        let mut r = resources().status_all(ctx, res).await;
        if d.one_shot && r.resources.iter().all(|x| x.health() != Health::Missing) {
            r.health = Health::Ready;
            "the command completed".clone_into(&mut r.message);
        }
        Ok(r)
    }
}

#[async_trait]
impl LogPlatform for ExecPlatform {
    async fn logs(
        &self,
        _: &Ctx,
        _: &ExecConfig,
        d: ExecDeployment,
        req: LogsRequest,
    ) -> Result<LogBatch, PluginError> {
        let n = if req.limit == 0 {
            usize::MAX
        } else {
            req.limit as usize
        };
        Ok(LogBatch {
            lines: process::tail(Path::new(&d.log_path), n)
                .into_iter()
                .map(|line| LogLine {
                    timestamp_unix_ms: 0,
                    line,
                    source: "output".into(),
                })
                .collect(),
        })
    }
}

impl Documented for ExecPlatform {
    fn docs() -> Docs {
        Docs {
            description: "Runs a command as the deployment: long-running (stopped by destroy) or one-shot (exits 0 at once, e.g. `kubectl apply`).".into(),
            example: "deploy {\n  use \"exec\" {\n    command = [\"kubectl\", \"apply\", \"-f\", \"<TPL>\"]\n    template {\n      path = \"./k8s.yml\"\n    }\n  }\n}".into(),
            fields: vec![
                FieldDoc::new("command", "list(string)", "The command; each element is a template (`{{.Env.PORT}}`, `{{.Input.path}}`, `{{.App}}`), `<TPL>` is the rendered template's path.").required(),
                FieldDoc::block("template", "A file or directory rendered before the command runs.", vec![
                    FieldDoc::new("path", "string", "Template file or directory, relative to the source directory.").required(),
                ]),
                FieldDoc::new("dir", "string", "Working directory, relative to the source directory.").default_value("the source directory"),
                FieldDoc::new("startup_wait_ms", "number", "How long the command is watched: exit 0 within it is a one-shot deploy, non-zero fails the deploy, still running is a long-running deployment.").default_value("1000"),
            ],
            template_fields: vec![
                ("pid".into(), "Pid of a long-running deployment (0 for one-shot).".into()),
                ("log".into(), "Path of the output log.".into()),
                ("one_shot".into(), "Whether the command exited at once.".into()),
                ("rendered".into(), "The rendered template path.".into()),
            ],
        }
    }
}

/// Registers the `exec` platform.
pub fn register(r: &mut BuiltinRegistry) {
    r.platform("exec", ExecPlatform);
}
