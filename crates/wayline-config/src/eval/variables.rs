//! Input variables: defaults, server values, var files, environment and `-var` flags, in
//! that order of precedence, each error located.

use super::*;

/// Where a variable's final value came from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VariableSource {
    /// The `default` in the `variable` block.
    Default,
    /// A project variable stored on the server.
    Server,
    /// A `*.auto.wlvars` / `*.auto.wpvars` file or a `-var-file`.
    File,
    /// An environment variable.
    Env,
    /// A `-var` flag.
    Cli,
    /// A `dynamic()` default, resolved later by a config sourcer.
    Dynamic,
}

/// A variable's final value, as recorded on the job.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResolvedVariable {
    /// The variable name.
    pub name: String,
    /// The value (for `dynamic`, the `{from, config}` description).
    pub value_json: serde_json::Value,
    /// Where it came from.
    pub source: VariableSource,
    /// Declared `sensitive`.
    pub sensitive: bool,
    /// Salted SHA-256 of the value, set for sensitive variables: show this, never the value.
    pub hash: Option<String>,
}

impl ResolvedVariable {
    /// The value as it may be shown to users: the hash for sensitive variables.
    pub fn display_value(&self) -> String {
        match &self.hash {
            Some(h) => format!("(sensitive, sha256:{})", &h[..12.min(h.len())]),
            None => serde_json::to_string(&self.value_json).unwrap_or_default(),
        }
    }
}

/// Salted SHA-256 (hex) of a value's JSON text.
pub fn sensitive_hash(salt: &str, value: &serde_json::Value) -> String {
    let mut h = sha2::Sha256::new();
    h.update(salt.as_bytes());
    h.update(serde_json::to_string(value).unwrap_or_default().as_bytes());
    hex::encode(h.finalize())
}

/// Resolves every declared variable through the precedence chain.
pub(super) fn resolve_variables(
    config: &Config,
    inputs: &EvalInputs,
    diags: &mut Diagnostics,
    missing_is_warning: bool,
) -> Vec<ResolvedVariable> {
    let salt = if inputs.salt.is_empty() {
        config.project.as_str()
    } else {
        inputs.salt.as_str()
    };
    let mut r = Resolver {
        config,
        values: vec![None; config.variables.len()],
        bad_default: vec![false; config.variables.len()],
    };
    // 1. defaults: literals (functions allowed, no variables), or dynamic().
    r.defaults(inputs, diags);
    // 2. server-side project variables.
    for (k, v) in &inputs.server_vars {
        let what = || Diagnostic::error("server variable");
        r.set(
            k,
            RawValue::Text(v.clone()),
            VariableSource::Server,
            &what,
            diags,
            false,
        );
    }
    // 3. auto files.
    if inputs.auto_var_files {
        for p in auto_var_files(&config.project_dir) {
            read_var_file(&p, diags, &mut r);
        }
    }
    // 4. environment.
    r.set_from_env(&inputs.env, diags);
    // 5. -var-file.
    for p in &inputs.var_files {
        read_var_file(p, diags, &mut r);
    }
    // 6. -var.
    r.set_from_flags(&inputs.cli_vars, diags);
    r.finish(salt, missing_is_warning, diags)
}

/// The value each declared variable has so far, and where it came from.
struct Resolver<'c> {
    config: &'c Config,
    values: Vec<Option<(Value, VariableSource)>>,
    /// Variables whose default was wrong: "has no value" would only repeat the problem.
    bad_default: Vec<bool>,
}

impl Resolver<'_> {
    fn defaults(&mut self, inputs: &EvalInputs, diags: &mut Diagnostics) {
        let config = self.config;
        let scope = project_scope(&inputs.workspace, &config.project_dir);
        for (i, v) in config.variables.iter().enumerate() {
            let Some(e) = &v.default else { continue };
            match eval_minimal(
                &e.expr,
                Some(&e.hexpr),
                &|n| scope.get(n),
                &config.project_dir,
            ) {
                Ok(val) if is_dynamic(&val) => {
                    self.values[i] = Some((val, VariableSource::Dynamic));
                }
                Ok(val) => match convert(val, &v.ty) {
                    Ok(c) => self.values[i] = Some((c, VariableSource::Default)),
                    Err(m) => {
                        self.bad_default[i] = true;
                        diags.push(Diagnostic::at(
                            &e.file,
                            e.span.clone(),
                            format!("invalid default for variable `{}`: {m}", v.name),
                        ));
                    }
                },
                Err(err) => {
                    let msg = match err.kind() {
                        ErrorKind::UndefinedVar(_) => format!(
                            "the default of variable `{}` must be a literal value; it cannot refer to other values",
                            v.name
                        ),
                        other => format!("invalid default for variable `{}`: {other}", v.name),
                    };
                    self.bad_default[i] = true;
                    diags.push(Diagnostic::at(&e.file, e.span.clone(), msg));
                }
            }
        }
    }

    /// Sets variable `name` from `source`; a wrong value is reported where `what` says, an
    /// undeclared name only when `strict` (server values and the environment may hold others).
    fn set(
        &mut self,
        name: &str,
        raw: RawValue,
        source: VariableSource,
        what: &dyn Fn() -> Diagnostic,
        diags: &mut Diagnostics,
        strict: bool,
    ) {
        let config = self.config;
        let Some(i) = config.variables.iter().position(|v| v.name == name) else {
            if strict {
                diags.push(undeclared(config, name, what()));
            }
            return;
        };
        let decl = &config.variables[i];
        let value = match raw {
            RawValue::Text(s) => parse_text_value(&s, &decl.ty),
            RawValue::Value(v) => Ok(v),
        };
        match value.and_then(|v| convert(v, &decl.ty)) {
            Ok(v) => {
                self.values[i] = Some((v, source));
                self.bad_default[i] = false;
            }
            Err(m) => {
                // "has no value" would only repeat this error.
                self.bad_default[i] = self.values[i].is_none();
                diags.push(invalid_value(config, decl, &m, what()));
            }
        }
    }

    /// `WL_VAR_<name>`, `WP_VAR_<name>` and the variable's own `env` names, first found wins.
    fn set_from_env(&mut self, env: &HashMap<String, String>, diags: &mut Diagnostics) {
        for v in &self.config.variables {
            let names = [format!("WL_VAR_{}", v.name), format!("WP_VAR_{}", v.name)];
            let found = names
                .iter()
                .chain(v.env.iter())
                .find_map(|n| env.get(n).map(|val| (n.clone(), val.clone())));
            if let Some((n, val)) = found {
                let what = || Diagnostic::error(format!("environment variable `{n}`"));
                self.set(
                    &v.name,
                    RawValue::Text(val),
                    VariableSource::Env,
                    &what,
                    diags,
                    false,
                );
            }
        }
    }

    /// `-var NAME=VALUE` flags, in order.
    fn set_from_flags(&mut self, flags: &[String], diags: &mut Diagnostics) {
        for item in flags {
            match item.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    let k = k.trim().to_owned();
                    let what = || Diagnostic::error(format!("`-var {k}=…`"));
                    self.set(
                        &k,
                        RawValue::Text(v.to_owned()),
                        VariableSource::Cli,
                        &what,
                        diags,
                        true,
                    );
                }
                _ => diags.push(Diagnostic::error(format!(
                    "`-var {item}`: expected NAME=VALUE"
                ))),
            }
        }
    }

    /// The final values, in declaration order; a variable with none is reported (a warning
    /// when `missing_is_warning`: `validate` cannot see the server's values).
    fn finish(
        self,
        salt: &str,
        missing_is_warning: bool,
        diags: &mut Diagnostics,
    ) -> Vec<ResolvedVariable> {
        let config = self.config;
        let mut out = Vec::with_capacity(config.variables.len());
        for ((decl, v), bad) in config
            .variables
            .iter()
            .zip(self.values)
            .zip(self.bad_default)
        {
            let Some((value, source)) = v else {
                if !bad {
                    diags.push(no_value(config, decl, missing_is_warning));
                }
                continue;
            };
            let value_json = match (&source, &value) {
                (VariableSource::Dynamic, Value::Object(o)) => {
                    to_json(o.get(DYNAMIC_KEY).unwrap_or(&Value::Null))
                }
                _ => to_json(&value),
            };
            let hash = decl.sensitive.then(|| sensitive_hash(salt, &value_json));
            out.push(ResolvedVariable {
                name: decl.name.clone(),
                value_json,
                source,
                sensitive: decl.sensitive,
                hash,
            });
        }
        out
    }
}

/// `*.auto.wlvars[.json]` and `*.auto.wpvars[.json]` in `dir`, in name order.
fn auto_var_files(dir: &Path) -> Vec<PathBuf> {
    const SUFFIXES: [&str; 4] = [
        ".auto.wlvars",
        ".auto.wpvars",
        ".auto.wlvars.json",
        ".auto.wpvars.json",
    ];
    let mut auto: Vec<PathBuf> = fs_err::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let n = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    SUFFIXES.iter().any(|s| n.ends_with(s))
                })
                .collect()
        })
        .unwrap_or_default();
    auto.sort();
    auto
}

/// "<what>: undeclared variable `name`", with the closest declared name.
fn undeclared(config: &Config, name: &str, d: Diagnostic) -> Diagnostic {
    let d = Diagnostic {
        message: format!("{}: undeclared variable `{name}`", d.message),
        ..d
    };
    match did_you_mean(name, config.variables.iter().map(|v| v.name.as_str())) {
        Some(h) => d.with_help(h),
        None => d.with_help(format!("declare it with `variable \"{name}\" {{}}`")),
    }
}

/// "<what>: invalid value for variable `name` (type): why", never showing a sensitive value.
fn invalid_value(config: &Config, decl: &VariableDecl, m: &str, mut d: Diagnostic) -> Diagnostic {
    if d.location.is_none() {
        // A flag or environment value has no place in a file: point at the declaration it
        // is checked against.
        let at = Diagnostic::at(&config.file, decl.name_span.clone(), "");
        d.location = at.location;
        d.source_line = at.source_line;
        d.width = at.width;
    }
    // Never echo a sensitive value back, even a wrong one.
    let m = if decl.sensitive {
        "the value does not have this type (not shown: sensitive)"
    } else {
        m
    };
    Diagnostic {
        message: format!(
            "{}: invalid value for variable `{}` ({}): {m}",
            d.message, decl.name, decl.ty
        ),
        ..d
    }
}

/// "variable `name` has no value", or in `validate` the warning that a job needs one.
fn no_value(config: &Config, decl: &VariableDecl, missing_is_warning: bool) -> Diagnostic {
    let d = Diagnostic::at(
        &config.file,
        decl.name_span.clone(),
        format!("variable `{}` has no value", decl.name),
    )
    .with_help(format!(
        "give it a `default`, or set it with `-var {0}=...`, a `*.auto.wlvars` file or `WL_VAR_{0}`",
        decl.name
    ));
    // `validate` cannot see the values stored on the server: a job may still get one.
    if missing_is_warning {
        Diagnostic {
            message: format!(
                "variable `{}` has no value here; a job fails unless the server has one",
                decl.name
            ),
            ..d
        }
        .warning()
    } else {
        d
    }
}

enum RawValue {
    Text(String),
    Value(Value),
}

fn read_var_file(path: &Path, diags: &mut Diagnostics, r: &mut Resolver<'_>) {
    let text = match fs_err::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::error(e.to_string()));
            return;
        }
    };
    let name = path.display().to_string();
    let format = crate::Format::from_path(path);
    let file = match format {
        crate::Format::Hcl => SourceFile::new(&name, text),
        crate::Format::Json => match crate::json::translate_values(&text, &name) {
            Ok(f) => f,
            Err(d) => {
                diags.extend(d);
                return;
            }
        },
    };
    let body = match crate::parse::parse_body(&file) {
        Ok(b) => b,
        Err(d) => {
            diags.extend(d);
            return;
        }
    };
    for s in &body {
        match s {
            Structure::Attribute(a) => {
                let span = a.key.span().unwrap_or(0..0);
                let vspan = a.value.span().unwrap_or(0..0);
                match eval_minimal(&a.value, None, &|_| None, Path::new(".")) {
                    Ok(v) => r.set(
                        a.key.as_str(),
                        RawValue::Value(v),
                        VariableSource::File,
                        &|| Diagnostic::at(&file, vspan.clone(), "in variable file"),
                        diags,
                        true,
                    ),
                    Err(e) => diags.push(Diagnostic::at(
                        &file,
                        vspan,
                        format!("variable file values must be literals: {}", e.kind()),
                    )),
                }
                let _ = span;
            }
            Structure::Block(b) => diags.push(Diagnostic::at(
                &file,
                b.ident.span().unwrap_or(0..0),
                "variable files hold only `name = value` lines",
            )),
        }
    }
}

/// A value given as text (env, CLI, server): raw for strings, an HCL literal otherwise.
pub(super) fn parse_text_value(s: &str, ty: &VarType) -> Result<Value, String> {
    if matches!(ty, VarType::String) {
        return Ok(Value::String(s.to_owned()));
    }
    if crate::limits::too_deep(s, false).is_some() {
        return Err(crate::limits::too_deep_message());
    }
    match hcl::edit::parser::parse_expr(s) {
        Ok(e) => match hcl::Expression::from(e).evaluate(&Context::new()) {
            Ok(v) => Ok(v),
            // A bare word such as `abc`: keep it as text so the type check says what's wrong.
            Err(_)
                if !matches!(
                    ty,
                    VarType::List(_)
                        | VarType::Set(_)
                        | VarType::Map(_)
                        | VarType::Object(_)
                        | VarType::Tuple(_)
                ) =>
            {
                Ok(Value::String(s.to_owned()))
            }
            Err(e) => Err(format!("not a literal: {}", e.kind())),
        },
        Err(_) if matches!(ty, VarType::Any | VarType::Number | VarType::Bool) => {
            Ok(Value::String(s.to_owned()))
        }
        Err(e) => Err(format!("cannot parse {s:?}: {}", e.message())),
    }
}
