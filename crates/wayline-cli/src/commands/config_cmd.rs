//! `init`, `validate`, `fmt` and `config set|get|delete|sync`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use wayline_core::pb::{self, ConfigVar, config_var};

use super::{Env, describe_status, ops};
use crate::cli::{ConfigCmd, ConfigScope, OpFlags};
use crate::render;
use crate::render::{note, say};
use crate::session;

fn err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(describe_status(&s))
}

/// `wayline init`: writes a starter file when none exists, else registers the project.
pub(crate) async fn init(env: &Env, no_server: bool) -> Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let existing = wayline_config::find_config(&cwd)?;
    let Some(found) = existing else {
        let path = cwd.join("wayline.hcl");
        fs_err::write(&path, wayline_config::STARTER_HCL)?;
        say!(
            "Wrote a starter `{}`. Edit it, then run `wayline up`.",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let config = match wayline_config::load_file(&found.path) {
        Ok(c) => c,
        Err(d) => {
            note!("{d}");
            return Ok(ExitCode::FAILURE);
        }
    };
    say!(
        "`{}` is valid: project `{}`, apps {}.",
        found.path.display(),
        config.project,
        app_names(&config)
    );
    if no_server {
        return Ok(ExitCode::SUCCESS);
    }
    let mut session = session::connect().await?;
    let project = pb::Project {
        name: env
            .global
            .project
            .clone()
            .unwrap_or_else(|| config.project.clone()),
        applications: config
            .apps
            .iter()
            .map(|a| pb::Application {
                project: config.project.clone(),
                name: a.name.clone(),
            })
            .collect(),
        ..Default::default()
    };
    session
        .client
        .upsert_project(pb::UpsertProjectRequest {
            project: Some(project),
        })
        .await
        .map_err(err)?;
    for app in &config.apps {
        session
            .client
            .upsert_application(pb::UpsertApplicationRequest {
                project: config.project.clone(),
                name: app.name.clone(),
            })
            .await
            .map_err(err)?;
    }
    say!(
        "Project `{}` is registered with the server.",
        config.project
    );
    Ok(ExitCode::SUCCESS)
}

/// The apps of a file, the first [`APPS_NAMED`] by name (a file with 50,000 apps is one line,
/// not a megabyte).
fn app_names(config: &wayline_config::Config) -> String {
    let names = config
        .apps
        .iter()
        .take(APPS_NAMED)
        .map(|a| format!("`{}`", a.name))
        .collect::<Vec<_>>()
        .join(", ");
    match config.apps.len().checked_sub(APPS_NAMED) {
        Some(more) if more > 0 => format!("{names} and {more} more"),
        _ => names,
    }
}

/// How many app names `validate` prints.
const APPS_NAMED: usize = 20;

fn config_path(file: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(f) = file {
        return Ok(f);
    }
    let cwd = std::env::current_dir()?;
    let found = wayline_config::find_config(&cwd)?.with_context(|| {
        format!(
            "no `wayline.hcl` or `waypoint.hcl` in `{}` or its parents",
            cwd.display()
        )
    })?;
    if let Some(w) = &found.warning {
        note!("warning: {w}");
    }
    Ok(found.path)
}

/// `validate` runs once and exits: the memory a large file's syntax tree frees is kept for what
/// the load allocates next rather than handed back to the kernel (glibc trims a heap whose free
/// top passes 128 KiB) and faulted in again: a third fewer page faults and about a tenth less
/// time on an 8 MB file (issue 10). A long-running server keeps the default.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets a tuning parameter of glibc's allocator, under its own lock;
    // no memory is touched and the call cannot fail in a way that matters (it returns 0).
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// `wayline validate`: parse and evaluate without a server.
pub(crate) fn validate(env: &Env, file: Option<PathBuf>, op: &OpFlags) -> Result<ExitCode> {
    keep_freed_memory();
    let path = config_path(file)?;
    // Schema and evaluation errors are found in one pass, so the user sees all of them at once.
    let result =
        wayline_runner::evaluate::inputs_from_flags(&op.var, &op.var_file, &ops::workspace(env))
            .and_then(|mut inputs| {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .map_or_else(
                        || std::path::PathBuf::from("."),
                        std::path::Path::to_path_buf,
                    );
                let text = std::fs::read_to_string(&path).ok();
                inputs.plugins = Some(std::sync::Arc::new(super::plugin_cmd::catalog(
                    &dir,
                    text.as_deref(),
                )));
                // One parse: the configuration that was validated is the one described.
                match wayline_config::validate_file_config(&path, &inputs) {
                    (Some(config), diags) if !diags.has_errors() => Ok((config, diags)),
                    (_, diags) => Err(diags),
                }
            });
    match result {
        Ok((config, warnings)) => {
            if env.global.json {
                let mut v = warnings.to_json();
                v["file"] = path.display().to_string().into();
                v["project"] = config.project.clone().into();
                render::json(&v);
            } else {
                if !warnings.is_empty() {
                    note!("{warnings}");
                }
                say!(
                    "`{}` is valid: project `{}`, apps {}.",
                    path.display(),
                    config.project,
                    app_names(&config)
                );
            }
            // The process exits next: freeing a file of thousands of apps item by item would
            // only add to the wait (issue 10).
            std::mem::forget(config);
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            if env.global.json {
                let mut v = diags.to_json();
                v["file"] = serde_json::Value::String(path.display().to_string());
                render::json(&v);
            } else {
                note!("{diags}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `wayline fmt`: exit 0 when formatted (or rewritten), 3 with `-check` when not formatted.
pub(crate) fn fmt(file: Option<PathBuf>, check: bool) -> Result<ExitCode> {
    let path = config_path(file)?;
    if wayline_config::Format::from_path(&path) == wayline_config::Format::Json {
        bail!(
            "`{}` is JSON; `wayline fmt` formats HCL files",
            path.display()
        );
    }
    let src = fs_err::read_to_string(&path)?;
    let formatted = match wayline_config::format_source(&src) {
        Ok(f) => f,
        Err(d) => {
            note!("{d}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if formatted == src {
        return Ok(ExitCode::SUCCESS);
    }
    if check {
        note!(
            "`{}` is not formatted; `wayline fmt` rewrites it.",
            path.display()
        );
        return Ok(ExitCode::from(3));
    }
    fs_err::write(&path, formatted)?;
    say!("Formatted `{}`.", path.display());
    Ok(ExitCode::SUCCESS)
}

struct Scoped {
    scope: config_var::Scope,
    project: String,
    app: String,
    workspace: String,
    label_selector: String,
}

fn scoped(env: &Env, s: &ConfigScope) -> Result<Scoped> {
    let needs_target = |env: &Env| -> Result<(String, String)> {
        if let (Some(p), Some(a)) = (&env.global.project, &env.global.app) {
            return Ok((p.clone(), a.clone()));
        }
        let t = ops::target(env)?;
        Ok((t.project, t.app))
    };
    let scope_name = s.scope.clone().unwrap_or_else(|| {
        if s.runner {
            "global".into()
        } else {
            "app".into()
        }
    });
    let (scope, project, app) = match scope_name.as_str() {
        "global" => (
            if s.runner {
                config_var::Scope::Runner
            } else {
                config_var::Scope::Global
            },
            String::new(),
            String::new(),
        ),
        "project" => {
            let project = match &env.global.project {
                Some(p) => p.clone(),
                None => ops::target(env)?.project,
            };
            (config_var::Scope::Project, project, String::new())
        }
        "app" => {
            let (p, a) = needs_target(env)?;
            (config_var::Scope::App, p, a)
        }
        other => bail!("-scope takes global, project or app, not `{other}`"),
    };
    if let Some(sel) = &s.label_scope
        && let Err(e) = wayline_core::selector::parse(sel)
    {
        bail!("-label-scope `{}`: {e}", around_column(sel, e.column));
    }
    Ok(Scoped {
        scope,
        project,
        app,
        workspace: env.global.workspace.clone().unwrap_or_default(),
        label_selector: s.label_scope.clone().unwrap_or_default(),
    })
}

/// At most 80 characters of `text` around the 1-based `column`, cut sides marked with `…`
/// (a 3,000-deep selector's error used to repeat all 6 KB of it).
fn around_column(text: &str, column: usize) -> String {
    const WIDTH: usize = 80;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= WIDTH {
        return text.to_owned();
    }
    let start = column
        .saturating_sub(1 + WIDTH / 2)
        .min(chars.len() - WIDTH);
    let end = start + WIDTH;
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push('…');
    }
    out
}

fn var(s: &Scoped, name: String, value: config_var::Value, internal: bool) -> ConfigVar {
    ConfigVar {
        scope: s.scope as i32,
        project: s.project.clone(),
        application: s.app.clone(),
        workspace: s.workspace.clone(),
        label_selector: s.label_selector.clone(),
        name,
        value: Some(value),
        internal,
        file: false,
    }
}

pub(crate) async fn config(env: &Env, cmd: ConfigCmd) -> Result<ExitCode> {
    match cmd {
        ConfigCmd::Validate { file, op } => validate(env, file, &op),
        ConfigCmd::Set {
            pairs,
            scope,
            internal,
        } => {
            if pairs.is_empty() {
                bail!("give at least one `NAME=value`");
            }
            let s = scoped(env, &scope)?;
            let mut vars = Vec::new();
            for p in &pairs {
                let (k, v) = wayline_core::labels::parse_key_value(p)?;
                vars.push(var(&s, k, config_var::Value::Static(v), internal));
            }
            send(vars, "Set", scope.runner).await
        }
        ConfigCmd::Delete { names, scope } => {
            if names.is_empty() {
                bail!("give at least one variable name");
            }
            let s = scoped(env, &scope)?;
            let vars = names
                .iter()
                .map(|n| var(&s, n.clone(), config_var::Value::Unset(true), false))
                .collect();
            send(vars, "Deleted", scope.runner).await
        }
        ConfigCmd::Get { prefix, scope, raw } => get(env, prefix, &scope, raw).await,
        ConfigCmd::Sync { op } => sync(env, &op).await,
    }
}

/// `config get [PREFIX]`: the variables of a scope, or one value alone with `-raw`.
async fn get(
    env: &Env,
    prefix: Option<String>,
    scope: &ConfigScope,
    raw: bool,
) -> Result<ExitCode> {
    let s = scoped(env, scope)?;
    let mut session = session::connect().await?;
    let vars = session
        .client
        .get_config(pb::GetConfigRequest {
            scope: s.scope as i32,
            project: s.project,
            application: s.app,
            workspace: s.workspace,
            prefix: prefix.clone().unwrap_or_default(),
            labels: std::collections::HashMap::default(),
            resolve: false,
        })
        .await
        .map_err(err)?
        .into_inner()
        .variables;
    if raw {
        let Some(name) = prefix else {
            bail!("-raw prints one variable: name it")
        };
        let Some(v) = vars.iter().find(|v| v.name == name) else {
            bail!("no config variable `{name}`")
        };
        say!("{}", value_text(v));
        return Ok(ExitCode::SUCCESS);
    }
    if env.global.json {
        let v: Vec<_> = vars
            .iter()
            .map(|v| serde_json::json!({"name": v.name, "value": value_text(v), "scope": scope_word(v), "workspace": v.workspace, "label_scope": v.label_selector, "internal": v.internal}))
            .collect();
        render::json(&serde_json::Value::Array(v));
    } else if vars.is_empty() {
        say!("No config variables.");
    } else {
        let rows: Vec<Vec<String>> = vars
            .iter()
            .map(|v| {
                vec![
                    v.name.clone(),
                    value_text(v),
                    scope_word(v).into(),
                    v.workspace.clone(),
                    v.label_selector.clone(),
                ]
            })
            .collect();
        render::table(
            &["NAME", "VALUE", "SCOPE", "WORKSPACE", "LABEL SCOPE"],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `config sync`: the app's `config` stanza, evaluated here, stored on the server.
async fn sync(env: &Env, op: &OpFlags) -> Result<ExitCode> {
    let t = ops::target(env)?;
    let config = wayline_config::load_file(&t.config_path).map_err(|d| anyhow::anyhow!("{d}"))?;
    let inputs = wayline_runner::evaluate::inputs_from_flags(&op.var, &op.var_file, &t.workspace)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let vars = wayline_runner::evaluate::config_vars(&config, &t.app, &inputs)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let n = vars.len();
    let mut session = session::connect().await?;
    session
        .client
        .set_config(pb::SetConfigRequest { variables: vars })
        .await
        .map_err(err)?;
    say!(
        "Synced {n} config variable{} from `{}`.",
        if n == 1 { "" } else { "s" },
        t.config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Sends config changes and says how many, and what happens next: "Set 2 config variables;
/// running instances restart with them."
async fn send(vars: Vec<ConfigVar>, verb: &str, runner: bool) -> Result<ExitCode> {
    let n = vars.len();
    let mut session = session::connect().await?;
    session
        .client
        .set_config(pb::SetConfigRequest { variables: vars })
        .await
        .map_err(err)?;
    let next = if runner {
        "runners use them from their next job"
    } else {
        "running instances of the app restart to pick them up"
    };
    say!(
        "{verb} {n} config variable{}; {next}.",
        if n == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

fn value_text(v: &ConfigVar) -> String {
    match &v.value {
        Some(config_var::Value::Static(s)) => s.clone(),
        Some(config_var::Value::Dynamic(d)) => format!("<dynamic {}>", d.from),
        _ => String::new(),
    }
}

fn scope_word(v: &ConfigVar) -> &'static str {
    match v.scope() {
        config_var::Scope::Global => "global",
        config_var::Scope::Project => "project",
        config_var::Scope::App => "app",
        config_var::Scope::Runner => "runner",
    }
}
