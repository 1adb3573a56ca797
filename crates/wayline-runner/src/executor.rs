//! What a job does on a runner: prepare the source, evaluate the config, run the operation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wayline_config::{EvalContext, EvalInputs, Format};
use wayline_plugin::{BuiltinRegistry, PluginHost};
use wayline_proto::v1::{self as pb, Job, JobError, JobResult, job::Operation, variable};

use crate::agent::{JobContext, JobExecutor, JobFuture};
use crate::pipeline::{Run, urls};
use crate::source;

/// The runner's job executor.
#[derive(Debug, Clone)]
pub struct Executor {
    /// Where plugins keep scratch data and clones go.
    data_root: PathBuf,
    /// Read the process environment for `WL_VAR_*` (the CLI's local runner does; a remote
    /// runner's environment is not the user's).
    use_process_env: bool,
    /// Registers the built-in plugins (tests register fakes).
    builtins: fn(&mut BuiltinRegistry),
}

impl Executor {
    /// The executor of the CLI's local runner.
    pub fn local() -> Self {
        Self {
            data_root: default_data_root(),
            use_process_env: true,
            builtins: wayline_plugins::register_builtins,
        }
    }

    /// The executor of `wayline runner agent`.
    pub fn remote() -> Self {
        Self {
            data_root: default_data_root(),
            use_process_env: false,
            builtins: wayline_plugins::register_builtins,
        }
    }

    /// The same executor with other built-in plugins, e.g. fakes in tests.
    #[must_use]
    pub fn with_builtins(mut self, register: fn(&mut BuiltinRegistry)) -> Self {
        self.builtins = register;
        self
    }

    /// The same executor keeping its scratch data and clones under `root`.
    #[must_use]
    pub fn with_data_root(mut self, root: PathBuf) -> Self {
        self.data_root = root;
        self
    }
}

fn default_data_root() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from(".local/share"))
        .join("wayline")
        .join("runner")
}

fn fail(code: i32, message: impl Into<String>) -> JobError {
    JobError {
        code,
        message: message.into(),
    }
}

impl JobExecutor for Executor {
    fn execute(&self, job: Job, ctx: JobContext) -> JobFuture {
        let this = self.clone();
        Box::pin(async move {
            if let Some(Operation::Noop(noop)) = &job.operation {
                if noop.sleep_ms > 0 {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(u64::from(noop.sleep_ms))) => {}
                        () = ctx.cancel.cancelled() => return Err(fail(1, "cancelled")),
                    }
                }
                if noop.fail {
                    return Err(fail(2, "noop job asked to fail"));
                }
                return Ok(JobResult::default());
            }
            this.run(job, ctx).await
        })
    }
}

impl Executor {
    async fn run(&self, job: Job, ctx: JobContext) -> Result<JobResult, JobError> {
        let scratch = self.data_root.join("scratch");
        let source = match job.data_source.clone() {
            Some(s) => Some(s),
            None => project_source(&ctx, &job).await?,
        };
        let workdir =
            source::prepare(source.as_ref(), &scratch).map_err(|e| fail(3, e.to_string()))?;
        let provenance = source::provenance(&workdir.path);
        let (config_text, config_name, format) =
            self.config_text(&job, &ctx, &workdir.path).await?;
        let mut config =
            wayline_config::parse_str_for(&config_text, &config_name, format, &job.workspace)
                .map_err(|d| fail(3, d.to_string()))?;
        config.project_dir.clone_from(&workdir.path);
        let inputs = self.inputs(&job, &ctx, &workdir.path, &scratch).await?;
        let eval = EvalContext::new(&config, &inputs).map_err(|d| fail(3, d.to_string()))?;
        let mut result = JobResult {
            variables: eval
                .variables()
                .iter()
                .map(|v| pb::Variable {
                    name: v.name.clone(),
                    value: if v.sensitive {
                        String::new()
                    } else {
                        v.value_json.to_string()
                    },
                    source: match v.source {
                        wayline_config::VariableSource::Default => variable::Source::Default,
                        wayline_config::VariableSource::Server => variable::Source::Server,
                        wayline_config::VariableSource::File => variable::Source::File,
                        wayline_config::VariableSource::Env => variable::Source::Env,
                        wayline_config::VariableSource::Cli => variable::Source::Cli,
                        wayline_config::VariableSource::Dynamic => variable::Source::Dynamic,
                    } as i32,
                    sensitive: v.sensitive,
                    hash: v.hash.clone().unwrap_or_default(),
                })
                .collect(),
            ..Default::default()
        };
        let host = Arc::new(host_with(self.builtins, &workdir.path));
        for p in &config.plugins {
            if host.builtins().get(&p.name).is_none() {
                host.load_plugin(&p.name, p.checksum.as_deref())
                    .await
                    .map_err(|e| fail(3, e.to_string()))?;
            }
        }
        let mut run = Run {
            job: job.clone(),
            ctx: ctx.clone(),
            config: &config,
            eval,
            host,
            source_path: workdir.path.clone(),
            provenance,
            data_root: self.data_root.join("data"),
        };
        run.resolve_dynamic_defaults()
            .await
            .map_err(|e| fail(3, e.0))?;
        let outcome = crate::operate::operate(&run, &job, &mut result).await;
        outcome.map_err(JobError::from)?;
        urls(&mut result);
        Ok(result)
    }

    /// The config file: sent with the job, else in the source, else stored with the project.
    async fn config_text(
        &self,
        job: &Job,
        ctx: &JobContext,
        dir: &std::path::Path,
    ) -> Result<(String, String, Format), JobError> {
        let fmt = |f: i32| {
            if f == pb::ConfigFormat::Json as i32 {
                Format::Json
            } else {
                Format::Hcl
            }
        };
        if !job.config_file.is_empty() {
            let name = if job.config_path.is_empty() {
                "wayline.hcl".to_owned()
            } else {
                job.config_path.clone()
            };
            return Ok((
                String::from_utf8_lossy(&job.config_file).into_owned(),
                name,
                fmt(job.config_format),
            ));
        }
        if let Some(found) = wayline_config::find_config(dir).map_err(|e| fail(3, e.to_string()))? {
            let text = fs_err::read_to_string(&found.path).map_err(|e| fail(3, e.to_string()))?;
            return Ok((text, found.path.display().to_string(), found.format));
        }
        let project = job
            .application
            .as_ref()
            .map(|a| a.project.clone())
            .unwrap_or_default();
        let stored = ctx
            .client
            .clone()
            .get_project(pb::GetProjectRequest {
                project: project.clone(),
            })
            .await;
        match stored {
            Ok(p) if !p.get_ref().config_file.is_empty() => {
                let p = p.into_inner();
                Ok((
                    String::from_utf8_lossy(&p.config_file).into_owned(),
                    format!("{project} (stored on the server)"),
                    fmt(p.config_format),
                ))
            }
            _ => Err(fail(
                3,
                format!(
                    "no `wayline.hcl` or `waypoint.hcl` in `{}`, and project `{project}` stores none",
                    dir.display()
                ),
            )),
        }
    }

    async fn inputs(
        &self,
        job: &Job,
        ctx: &JobContext,
        dir: &std::path::Path,
        scratch: &std::path::Path,
    ) -> Result<EvalInputs, JobError> {
        let mut var_files = Vec::new();
        if !job.var_files.is_empty() {
            let vdir = scratch.join(format!("vars-{}", job.id));
            fs_err::create_dir_all(&vdir).map_err(|e| fail(3, e.to_string()))?;
            for (i, f) in job.var_files.iter().enumerate() {
                let base = std::path::Path::new(&f.name).file_name().map_or_else(
                    || format!("{i}.wlvars"),
                    |n| n.to_string_lossy().into_owned(),
                );
                let path = vdir.join(format!("{i}-{base}"));
                fs_err::write(&path, &f.content).map_err(|e| fail(3, e.to_string()))?;
                var_files.push(path);
            }
        }
        let project = job
            .application
            .as_ref()
            .map(|a| a.project.clone())
            .unwrap_or_default();
        let server_vars = match ctx
            .client
            .clone()
            .get_project(pb::GetProjectRequest { project })
            .await
        {
            Ok(p) => p.into_inner().variables.into_iter().collect(),
            Err(_) => Vec::new(),
        };
        Ok(EvalInputs {
            workspace: job.workspace.clone(),
            app: job.application.as_ref().map(|a| a.application.clone()),
            server_vars,
            env: if self.use_process_env {
                std::env::vars().collect()
            } else {
                std::collections::HashMap::default()
            },
            auto_var_files: true,
            var_files,
            cli_vars: job
                .variables
                .iter()
                .filter(|v| v.source == variable::Source::Cli as i32)
                .map(|v| format!("{}={}", v.name, v.value))
                .collect(),
            pwd: dir.to_path_buf(),
            plugins: None,
            labels: job.labels.clone().into_iter().collect(),
            salt: String::new(),
        })
    }
}

/// The project's stored data source, for jobs queued without one (remote runs).
async fn project_source(ctx: &JobContext, job: &Job) -> Result<Option<pb::DataSource>, JobError> {
    let project = job
        .application
        .as_ref()
        .map(|a| a.project.clone())
        .unwrap_or_default();
    match ctx
        .client
        .clone()
        .get_project(pb::GetProjectRequest { project })
        .await
    {
        Ok(p) => Ok(p.into_inner().data_source),
        Err(s) => Err(fail(
            3,
            format!("cannot read the project's data source: {}", s.message()),
        )),
    }
}

/// The plugin host for a project: built-ins, then external plugins next to it, then Waypoint's.
pub fn plugin_host(project_dir: &std::path::Path) -> PluginHost {
    host_with(wayline_plugins::register_builtins, project_dir)
}

fn host_with(register: fn(&mut BuiltinRegistry), project_dir: &std::path::Path) -> PluginHost {
    let mut builtins = BuiltinRegistry::new();
    register(&mut builtins);
    let dirs = PluginHost::default_search_dirs(project_dir);
    // Names no built-in or `wayline-plugin-*` has come from Waypoint: `waypoint-plugin-<name>`
    // executables, or the built-ins of a `waypoint` binary.
    let waypoint = wayline_waypoint::WaypointPlugins::for_project(project_dir, &dirs);
    let mut host = PluginHost::new(builtins, dirs);
    host.add_provider(std::sync::Arc::new(waypoint));
    host
}
