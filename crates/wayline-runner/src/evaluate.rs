//! Config evaluation as the runner and CLI need it: inputs from flags and jobs, validation,
//! and the `config {}` stanza as server config variables.

use std::path::PathBuf;

use wayline_config::{
    Config, ConfigScope, ConfigValue, Diagnostic, Diagnostics, EvalContext, EvalInputs,
};
use wayline_proto::v1::{ConfigVar, DynamicValue, config_var};

/// Inputs for evaluating on this machine: the process environment, auto var files, `-var-file`
/// and `-var` flags.
pub fn inputs_from_flags(
    vars: &[String],
    var_files: &[PathBuf],
    workspace: &str,
) -> Result<EvalInputs, Diagnostics> {
    for v in vars {
        if !v.contains('=') {
            return Err(
                Diagnostic::error(format!("-var `{v}` is not of the form name=value")).into(),
            );
        }
    }
    Ok(EvalInputs {
        workspace: workspace.to_owned(),
        env: std::env::vars().collect(),
        auto_var_files: true,
        var_files: var_files.to_vec(),
        cli_vars: vars.to_vec(),
        pwd: std::env::current_dir().unwrap_or_default(),
        ..Default::default()
    })
}

/// Evaluates everything that can be evaluated without a server; every problem at once.
pub fn validate_config(config: &Config, inputs: &EvalInputs) -> Result<(), Diagnostics> {
    let diags = EvalContext::validate(config, inputs);
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(())
    }
}

/// The project's and `app`'s `config {}` stanzas as server config variables.
pub fn config_vars(
    config: &Config,
    app: &str,
    inputs: &EvalInputs,
) -> Result<Vec<ConfigVar>, Diagnostics> {
    let ctx = EvalContext::new(
        config,
        &EvalInputs {
            app: Some(app.to_owned()),
            ..inputs.clone()
        },
    )?;
    Ok(to_proto(ctx.config_vars()?, &config.project, app))
}

/// Evaluated `config {}` entries as server config variables of `project` / `app`.
pub fn to_proto(
    defs: Vec<wayline_config::ConfigVarDef>,
    project: &str,
    app: &str,
) -> Vec<ConfigVar> {
    defs.into_iter()
        .map(|d| {
            let scope = if d.runner {
                config_var::Scope::Runner
            } else {
                match d.scope {
                    ConfigScope::Project => config_var::Scope::Project,
                    ConfigScope::App => config_var::Scope::App,
                }
            };
            let value = match d.value {
                ConfigValue::Static(s) => config_var::Value::Static(s),
                ConfigValue::Dynamic { from, config } => config_var::Value::Dynamic(DynamicValue {
                    from,
                    config: config.into_iter().collect(),
                }),
            };
            ConfigVar {
                scope: scope as i32,
                project: project.to_owned(),
                application: if matches!(d.scope, ConfigScope::App) {
                    app.to_owned()
                } else {
                    String::new()
                },
                workspace: d.workspace.unwrap_or_default(),
                label_selector: d.label_selector.unwrap_or_default(),
                name: d.name,
                value: Some(value),
                internal: d.internal,
                file: d.file,
            }
        })
        .collect()
}
