//! Wayline configuration: `wayline.hcl` (and Waypoint's `waypoint.hcl`) loaded, validated and
//! evaluated.
//!
//! - [`find_config`] looks for the file from a directory upwards.
//! - [`load_file`] / [`parse_str`] parse and validate the schema, reporting every error at once
//!   as [`Diagnostics`] (file:line:col, source line, caret, "did you mean").
//! - [`EvalContext`] resolves input variables (with precedence and sources) and evaluates
//!   expressions with the function library; [`Stage::evaluate_use`] turns a `use` body into JSON
//!   for the plugin, [`EvalContext::config_vars`] flattens the `config {}` stanzas for the server.
//! - [`format_source`] is `wayline fmt`; [`STARTER_HCL`] is what `wayline init` writes.

// Short names (`a` for function args, `e` for expressions) keep the function table readable;
// `push_str(&format!(..))` reads better than `write!` into a String in these small renderers.
#![allow(
    clippy::many_single_char_names,
    clippy::format_push_string,
    clippy::unused_self,
    clippy::struct_field_names
)]

mod decode;
pub mod diag;
mod eval;
mod find;
mod fmt;
mod funcs;
pub mod git;
mod json;
pub mod limits;
mod parallel;
mod parse;
mod plugins;
mod recover;
mod schema;
mod value;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics, Location, Severity, SourceFile, did_you_mean};
pub use eval::{
    ConfigScope, ConfigValue, ConfigVarDef, EffectiveStage, EvalContext, EvalInputs, EvaluatedUse,
    Hook, ResolvedVariable, VariableSource, sensitive_hash,
};
pub use find::{Found, find_config};
pub use fmt::format_source;
pub use plugins::{PluginCatalog, PluginKind, WAYPOINT_PLUGINS};
pub use schema::*;

/// The syntax of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Native HCL syntax.
    Hcl,
    /// HCL's JSON syntax (`*.hcl.json`).
    Json,
}

impl Format {
    /// The format a file name implies (`.json` suffix → JSON).
    pub fn from_path(path: &Path) -> Format {
        if path.extension().is_some_and(|e| e == "json") {
            Format::Json
        } else {
            Format::Hcl
        }
    }
}

/// Errors that are not about the content of the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a directory or file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The workspace a load is for when the caller does not say: `WAYLINE_WORKSPACE`, then
/// `WAYPOINT_WORKSPACE`, then `default`.
pub fn default_workspace() -> String {
    ["WAYLINE_WORKSPACE", "WAYPOINT_WORKSPACE"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "default".to_owned())
}

/// Reads, parses and validates a configuration file (for [`default_workspace`]).
pub fn load_file(path: impl AsRef<Path>) -> Result<Config, Diagnostics> {
    load_file_for(path, &default_workspace())
}

/// [`load_file`] for a workspace: `workspace.name` in `project` and variable defaults.
pub fn load_file_for(path: impl AsRef<Path>, workspace: &str) -> Result<Config, Diagnostics> {
    let path = path.as_ref();
    let src = fs_err::read_to_string(path)
        .map_err(|e| Diagnostics::from(Diagnostic::error(e.to_string())))?;
    let dir = file_dir(path);
    let (config, diags) = decode(
        &src,
        &path.display().to_string(),
        Format::from_path(path),
        dir,
        workspace,
    );
    match config {
        Some(c) => diags.into_result(c),
        None => Err(diags),
    }
}

/// Parses and validates configuration text. `file_name` is what diagnostics show; the project
/// directory (`path.project`) is the current directory ([`load_file`] uses the file's).
pub fn parse_str(src: &str, file_name: &str, format: Format) -> Result<Config, Diagnostics> {
    parse_str_for(src, file_name, format, &default_workspace())
}

/// [`parse_str`] for a workspace.
pub fn parse_str_for(
    src: &str,
    file_name: &str,
    format: Format,
    workspace: &str,
) -> Result<Config, Diagnostics> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let (config, diags) = decode(src, file_name, format, cwd, workspace);
    match config {
        Some(c) => diags.into_result(c),
        None => Err(diags),
    }
}

/// The directory holding a config file.
fn file_dir(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::env::current_dir().unwrap_or_default(),
    }
}

/// Parses and decodes, returning the config (when the file parsed) and every diagnostic.
fn decode(
    src: &str,
    file_name: &str,
    format: Format,
    project_dir: std::path::PathBuf,
    workspace: &str,
) -> (Option<Config>, Diagnostics) {
    let file = match format {
        Format::Hcl => SourceFile::new(file_name, src),
        Format::Json => match json::translate(src, file_name) {
            Ok(f) => f,
            Err(d) => return (None, d),
        },
    };
    let file = std::sync::Arc::new(file);
    // Apps are decoded where their part was parsed; the rest of the file after.
    let taken = parse::parse_each(&file, |taken, part| {
        decode::take_apps(taken, part, workspace, &project_dir);
    });
    let mut taken = match taken {
        Ok(t) => t.into_iter(),
        Err(d) => return (None, d),
    };
    let mut all = taken.next().unwrap_or_default();
    for later in taken {
        all.append(later);
    }
    let decode::TakenApps {
        parts,
        apps,
        mut diags,
    } = all;
    let config = decode::Decoder {
        file: &file,
        diags: &mut diags,
        workspace: workspace.to_owned(),
        project_dir: project_dir.clone(),
    }
    .config(&parts, apps, &file, project_dir);
    parse::drop_in_background(parts);
    (config, diags)
}

/// `wayline validate`: parses, checks the schema and evaluates everything that can be evaluated
/// without a server, and returns every problem found (schema and evaluation errors together:
/// the parts of the file that decoded are evaluated even when other parts have errors).
pub fn validate_str(
    src: &str,
    file_name: &str,
    format: Format,
    project_dir: &Path,
    inputs: &EvalInputs,
) -> Diagnostics {
    validate_str_config(src, file_name, format, project_dir, inputs).1
}

/// [`validate_str`] that also hands back the configuration when the file decoded, so a caller
/// that shows it (`wayline validate`: project and apps) need not parse the file again.
pub fn validate_str_config(
    src: &str,
    file_name: &str,
    format: Format,
    project_dir: &Path,
    inputs: &EvalInputs,
) -> (Option<Config>, Diagnostics) {
    let (config, mut diags) = decode(
        src,
        file_name,
        format,
        project_dir.to_path_buf(),
        &inputs.workspace,
    );
    if let Some(config) = &config {
        diags.extend(EvalContext::validate(config, inputs));
    }
    diags.sort();
    (config, diags)
}

/// [`validate_str`] for a file (the project directory is the file's directory).
pub fn validate_file(path: impl AsRef<Path>, inputs: &EvalInputs) -> Diagnostics {
    validate_file_config(path, inputs).1
}

/// [`validate_str_config`] for a file.
pub fn validate_file_config(
    path: impl AsRef<Path>,
    inputs: &EvalInputs,
) -> (Option<Config>, Diagnostics) {
    let path = path.as_ref();
    let src = match fs_err::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return (None, Diagnostic::error(e.to_string()).into()),
    };
    validate_str_config(
        &src,
        &path.display().to_string(),
        Format::from_path(path),
        &file_dir(path),
        inputs,
    )
}

/// The commented starter file `wayline init` writes when no configuration exists.
pub const STARTER_HCL: &str = include_str!("starter.hcl");
