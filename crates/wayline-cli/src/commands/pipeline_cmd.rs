//! `pipeline list` and `pipeline run`: each step becomes a job that depends on the jobs of the
//! steps it waits for, so the server runs them in order and a failure cancels what follows.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use wayline_config::{Config, EvalContext, EvalInputs, Pipeline, StepKind};
use wayline_core::pb::{self, job::Operation};

use super::{Env, ops};
use crate::cli::OpFlags;
use crate::render;
use crate::render::{note, say};
use crate::session;

/// One step, flattened (steps of embedded pipelines are named `outer.inner`).
struct Planned {
    name: String,
    depends_on: Vec<String>,
    operation: Operation,
    what: String,
}

fn load(target: &ops::Target) -> Result<Config> {
    wayline_config::load_file(&target.config_path).map_err(|d| anyhow::anyhow!("{d}"))
}

pub(crate) fn list(env: &Env) -> Result<ExitCode> {
    let target = ops::target(env)?;
    let config = load(&target)?;
    if config.pipelines.is_empty() {
        say!("`{}` declares no pipelines.", target.config_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for p in &config.pipelines {
        for s in &p.steps {
            let kind = match &s.kind {
                StepKind::Use(u) => u.plugin.clone(),
                StepKind::Pipeline(inner) => format!("pipeline {}", inner.name),
            };
            rows.push(vec![
                p.name.clone(),
                s.name.clone(),
                kind,
                s.depends_on.join(", "),
            ]);
        }
    }
    render::table(&["PIPELINE", "STEP", "USES", "DEPENDS ON"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// How deep `use "pipeline"` steps may nest (a pipeline that runs itself would never end).
const MAX_PIPELINE_NESTING: usize = 16;

/// The pipeline a `use "pipeline" { project = "…" name = "…" }` step names.
fn referenced_pipeline<'c>(
    config: &'c Config,
    body: &serde_json::Value,
    step: &str,
    u: &wayline_config::UseBlock,
) -> Result<&'c Pipeline> {
    let Some(name) = body["name"].as_str() else {
        bail!(
            "{}: the `pipeline` step `{step}` needs `name = \"<pipeline>\"`",
            u.location()
        );
    };
    if let Some(project) = body["project"].as_str()
        && project != config.project
    {
        bail!(
            "{}: step `{step}` runs a pipeline of project `{project}`; only pipelines of this project (`{}`) can be embedded",
            u.location(),
            config.project
        );
    }
    config.pipeline(name).with_context(|| {
        format!(
            "{}: step `{step}` runs pipeline `{name}`, which this file does not declare",
            u.location()
        )
    })
}

/// The job a `use "build|deploy|release|up|exec"` step queues, and how it is described.
fn step_operation(
    step: &wayline_config::Step,
    u: &wayline_config::UseBlock,
    body: &serde_json::Value,
    name: &str,
) -> Result<(Operation, String)> {
    Ok(match u.plugin.as_str() {
        "build" => (
            Operation::Build(pb::BuildOp {
                disable_push: body["disable_push"].as_bool().unwrap_or(false),
            }),
            "build".to_owned(),
        ),
        "deploy" => (
            Operation::Deploy(pb::DeployOp {
                artifact_id: String::new(),
                release: false,
            }),
            "deploy".to_owned(),
        ),
        "release" => (
            Operation::Release(pb::ReleaseOp {
                deployment_id: String::new(),
                prune: body["prune"].as_bool().unwrap_or(true),
                prune_retain: 1,
                rollback: false,
                prune_runner_id: String::new(),
            }),
            "release".to_owned(),
        ),
        "up" => (
            Operation::Up(pb::UpOp {
                release: true,
                prune: true,
                prune_retain: 1,
                prune_runner_id: String::new(),
            }),
            "up".to_owned(),
        ),
        "exec" => {
            if step.image_url.is_some() {
                bail!(
                    "{}: step `{name}` sets `image_url`; running exec steps inside an image is not supported by this runner, run the command on the runner instead",
                    u.location()
                );
            }
            let command: Vec<String> = body["command"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if command.is_empty() {
                bail!(
                    "{}: the `exec` step `{name}` needs `command = [\"program\", \"args\"...]`",
                    u.location()
                );
            }
            let what = format!("exec `{}`", command.join(" "));
            (Operation::Exec(pb::ExecOp { command }), what)
        }
        other => bail!(
            "{}: step `{name}` uses `{other}`; a step uses build, deploy, release, up or exec",
            u.location()
        ),
    })
}

/// The jobs of a pipeline, in an order where every step comes after those it depends on.
fn plan(
    ctx: &EvalContext<'_>,
    pipeline: &Pipeline,
    prefix: &str,
    after: &[String],
    out: &mut Vec<Planned>,
) -> Result<()> {
    let full = |n: &str| {
        if prefix.is_empty() {
            n.to_owned()
        } else {
            format!("{prefix}.{n}")
        }
    };
    // The last step of an embedded pipeline is what "depends on the embedded step" means.
    let mut last_of: HashMap<String, String> = HashMap::new();
    for step in &pipeline.steps {
        let mut deps: Vec<String> = step
            .depends_on
            .iter()
            .map(|d| last_of.get(d).cloned().unwrap_or_else(|| full(d)))
            .collect();
        if step.depends_on.is_empty() && step.name == pipeline.steps[0].name {
            deps.extend(after.iter().cloned());
        }
        let name = full(&step.name);
        match &step.kind {
            StepKind::Pipeline(inner) => {
                let before = out.len();
                plan(ctx, inner, &name, &deps, out)?;
                if let Some(last) = out[before..].last() {
                    last_of.insert(step.name.clone(), last.name.clone());
                }
            }
            StepKind::Use(u) => {
                let body = u
                    .evaluate(ctx, &serde_json::json!({}))
                    .map_err(|d| anyhow::anyhow!("{d}"))?;
                if u.plugin == "pipeline" {
                    // `use "pipeline" { project name }` runs another pipeline of the file here.
                    let inner = referenced_pipeline(ctx.config(), &body, &name, u)?;
                    if prefix.split('.').count() >= MAX_PIPELINE_NESTING {
                        bail!(
                            "{}: pipelines nest more than {MAX_PIPELINE_NESTING} deep (does `{}` refer to itself?)",
                            u.location(),
                            inner.name
                        );
                    }
                    let before = out.len();
                    plan(ctx, inner, &name, &deps, out)?;
                    if let Some(last) = out[before..].last() {
                        last_of.insert(step.name.clone(), last.name.clone());
                    }
                    continue;
                }
                let (operation, what) = step_operation(step, u, &body, &name)?;
                out.push(Planned {
                    name,
                    depends_on: deps,
                    operation,
                    what,
                });
            }
        }
    }
    Ok(())
}

pub(crate) async fn run(env: &Env, name: &str, op: &OpFlags) -> Result<ExitCode> {
    let target = ops::target(env)?;
    let config = load(&target)?;
    let Some(pipeline) = config.pipeline(name) else {
        let names: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
        let hint = wayline_config::did_you_mean(name, names.iter().copied())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        bail!(
            "there is no pipeline `{name}` in `{}`{hint}; pipelines: {}",
            target.config_path.display(),
            names.join(", ")
        );
    };
    let inputs =
        wayline_runner::evaluate::inputs_from_flags(&op.var, &op.var_file, &target.workspace)
            .map_err(|d| anyhow::anyhow!("{d}"))?;
    let ctx = EvalContext::new(
        &config,
        &EvalInputs {
            app: Some(target.app.clone()),
            ..inputs
        },
    )
    .map_err(|d| anyhow::anyhow!("{d}"))?;
    let mut steps = Vec::new();
    plan(&ctx, pipeline, "", &[], &mut steps)?;

    let mut session = session::connect().await?;
    say!(
        "{}",
        env.style.bold(&format!(
            "» Running pipeline {name} of {} ({} steps)",
            target.app,
            steps.len()
        ))
    );
    // One runner (local, or the remote pool) takes every step; the server orders them.
    let mut first = ops::job_for(&target, op, Operation::Noop(pb::NoopOp::default()))?;
    let runner = ops::place(op, &session, &mut first)?;
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut queued = Vec::new();
    for step in &steps {
        let mut job = ops::job_for(&target, op, step.operation.clone())?;
        job.target_runner.clone_from(&first.target_runner);
        job.data_source.clone_from(&first.data_source);
        job.labels
            .insert("wayline/pipeline".into(), name.to_owned());
        job.labels
            .insert("wayline/pipeline-step".into(), step.name.clone());
        for d in &step.depends_on {
            let id = ids.get(d).with_context(|| {
                format!(
                    "step `{}` depends on `{d}`, which is not in the pipeline",
                    step.name
                )
            })?;
            job.depends_on.push(id.clone());
        }
        let id = ops::queue(&mut session, job).await?;
        ids.insert(step.name.clone(), id.clone());
        queued.push((step, id));
    }
    let mut code = ExitCode::SUCCESS;
    for (step, id) in &queued {
        say!(
            "{}",
            env.style
                .bold(&format!("\n» Step {} ({})", step.name, step.what))
        );
        code = ops::follow_job(
            env,
            &mut session,
            id,
            false,
            Duration::from_secs(op.server_wait),
        )
        .await?;
        if code != ExitCode::SUCCESS {
            note!(
                "Pipeline {name} stopped at step {}; the steps after it were not run.",
                step.name
            );
            break;
        }
    }
    if let Some(r) = runner {
        r.stop().await;
    }
    if code == ExitCode::SUCCESS {
        say!(
            "\n{}",
            env.style.green(&format!("✓ Pipeline {name} succeeded."))
        );
    }
    Ok(code)
}
