//! What an operation acts on: the config file found and validated, the app picked, and the
//! job built from it and the operation flags.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use wayline_core::pb::{self, DataSource, Job, Variable, data_source, job::Operation};

use crate::cli::OpFlags;
use crate::commands::Env;
use crate::render::note;

/// The project and app an operation targets, from the config file and flags.
pub(crate) struct Target {
    pub(crate) project: String,
    pub(crate) app: String,
    pub(crate) workspace: String,
    pub(crate) project_dir: PathBuf,
    pub(crate) config_path: PathBuf,
    pub(crate) config_text: String,
    pub(crate) format: wayline_config::Format,
}

/// Finds and validates the config file, and picks the app.
pub(crate) fn target(env: &Env) -> Result<Target> {
    let mut all = targets(env)?;
    if all.len() == 1 {
        return Ok(all.remove(0));
    }
    bail!(
        "`{}` declares several apps ({}); choose one with `-app <name>`",
        all[0].config_path.display(),
        all.iter()
            .map(|t| t.app.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The apps an operation targets: `-app`, else every app in the file (in file order).
pub(crate) fn targets(env: &Env) -> Result<Vec<Target>> {
    let cwd = std::env::current_dir()?;
    let found = wayline_config::find_config(&cwd)?.with_context(|| {
        format!(
            "no `wayline.hcl` or `waypoint.hcl` in `{}` or its parents; `wayline init` writes a starter file",
            cwd.display()
        )
    })?;
    if let Some(w) = &found.warning {
        note!("warning: {w}");
    }
    let text = fs_err::read_to_string(&found.path)?;
    let config = match wayline_config::load_file(&found.path) {
        Ok(c) => c,
        Err(diags) => bail!("{diags}"),
    };
    let project = env
        .global
        .project
        .clone()
        .unwrap_or_else(|| config.project.clone());
    let apps: Vec<String> = match &env.global.app {
        Some(a) => {
            if config.app(a).is_none() {
                let names: Vec<&str> = config.apps.iter().map(|a| a.name.as_str()).collect();
                let hint = wayline_config::did_you_mean(a, names.iter().copied())
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                bail!(
                    "there is no app `{a}` in `{}`{hint}; apps: {}",
                    found.path.display(),
                    names.join(", ")
                );
            }
            vec![a.clone()]
        }
        None if config.apps.is_empty() => {
            bail!("`{}` declares no `app` block", found.path.display())
        }
        None => config.apps.iter().map(|a| a.name.clone()).collect(),
    };
    Ok(apps
        .into_iter()
        .map(|app| Target {
            project: project.clone(),
            app,
            workspace: workspace(env),
            project_dir: config.project_dir.clone(),
            config_path: found.path.clone(),
            config_text: text.clone(),
            format: found.format,
        })
        .collect())
}

/// Plugin names and `use` bodies of the target app against the plugins on this machine, so a
/// typo fails here, in milliseconds, not in the job after the build.
pub(crate) fn check_plugins(target: &Target) -> Result<()> {
    let config = wayline_config::parse_str_for(
        &target.config_text,
        &target.config_path.display().to_string(),
        target.format,
        &target.workspace,
    )
    .map_err(|d| anyhow::anyhow!("{d}"))?;
    let catalog =
        crate::commands::plugin_cmd::catalog(&target.project_dir, Some(&target.config_text));
    let diags = catalog.check_app(&config, &target.app);
    if diags.has_errors() {
        bail!("{diags}");
    }
    Ok(())
}

/// The workspace from `-workspace`, else `default`.
pub(crate) fn workspace(env: &Env) -> String {
    env.global
        .workspace
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

/// A job for `operation` on the target, carrying the config file and the user's variables.
pub(crate) fn job_for(target: &Target, op: &OpFlags, operation: Operation) -> Result<Job> {
    let labels = wayline_core::labels::parse_user_labels(op.label.iter().map(String::as_str))?;
    let mut variables = Vec::new();
    for v in &op.var {
        let (name, value) =
            wayline_core::labels::parse_key_value(v).with_context(|| format!("-var {v}"))?;
        variables.push(Variable {
            name,
            value,
            source: pb::variable::Source::Cli as i32,
            ..Default::default()
        });
    }
    let mut var_files = Vec::new();
    for f in &op.var_file {
        let content = fs_err::read(f)?;
        var_files.push(pb::VarFile {
            name: f.display().to_string(),
            content,
        });
    }
    Ok(Job {
        application: Some(pb::r#ref::Application {
            project: target.project.clone(),
            application: target.app.clone(),
        }),
        workspace: target.workspace.clone(),
        labels: labels.into_iter().collect(),
        data_source: Some(DataSource {
            source: Some(data_source::Source::Local(data_source::Local {
                path: target.project_dir.display().to_string(),
            })),
        }),
        config_file: target.config_text.clone().into_bytes(),
        config_format: match target.format {
            wayline_config::Format::Hcl => pb::ConfigFormat::Hcl,
            wayline_config::Format::Json => pb::ConfigFormat::Json,
        } as i32,
        config_path: target.config_path.display().to_string(),
        variables,
        var_files,
        operation: Some(operation),
        ..Default::default()
    })
}
