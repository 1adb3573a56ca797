//! Evaluation: input variables with precedence and sources, predefined values, stage selection,
//! `use` bodies to JSON, and the flattened `config {}` stanzas.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use hcl::edit::Span as _;
use hcl::edit::expr::{Expression as EditExpr, TraversalOperator};
use hcl::edit::structure::{Body, Structure};
use hcl::edit::visit::{self, Visit};
use hcl::eval::{Context, ErrorKind, Evaluate};
use hcl::{Map, Value};
use sha2::Digest as _;

use crate::diag::{Diagnostic, Diagnostics, Location, SourceFile, did_you_mean};
use crate::funcs::{self, DYNAMIC_KEY, FnEnv, is_dynamic};
use crate::schema::*;
use crate::value::{convert, from_json, to_json, to_text};

mod config_values;

pub use config_values::{ConfigScope, ConfigValue, ConfigVarDef};

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

/// Everything evaluation needs from outside the file.
#[derive(Debug, Clone, Default)]
pub struct EvalInputs {
    /// The workspace (`workspace.name`); empty means `default`.
    pub workspace: String,
    /// The app being operated on, if any (enables `app.*`, `path.app`, app labels and config).
    pub app: Option<String>,
    /// Project variables stored on the server: name → HCL literal (or raw string for string
    /// variables).
    pub server_vars: Vec<(String, String)>,
    /// Environment variables (pass `std::env::vars().collect()`; tests pass their own).
    pub env: HashMap<String, String>,
    /// Read `*.auto.wlvars[.json]` / `*.auto.wpvars[.json]` from the project directory.
    pub auto_var_files: bool,
    /// `-var-file` paths, in order.
    pub var_files: Vec<PathBuf>,
    /// `-var k=v` flags, in order.
    pub cli_vars: Vec<String>,
    /// `path.pwd`; empty means the current directory.
    pub pwd: PathBuf,
    /// Extra operation labels (e.g. `-label`), merged over the project and app labels.
    pub labels: BTreeMap<String, String>,
    /// Salt for sensitive-value hashes (the server cookie); empty uses the project name.
    pub salt: String,
    /// The plugins a job could use: when set, `validate` checks plugin names and `use` bodies.
    pub plugins: Option<std::sync::Arc<crate::plugins::PluginCatalog>>,
}

/// An evaluated `hook`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hook {
    /// Before or after the operation.
    pub when: HookWhen,
    /// argv.
    pub command: Vec<String>,
    /// Fail or continue when the command fails.
    pub on_failure: OnFailure,
}

/// A `use` block evaluated for a plugin.
#[derive(Debug, Clone)]
pub struct EvaluatedUse {
    /// The plugin name (the `use` label).
    pub plugin: String,
    /// The body as JSON: attributes are fields, blocks are objects (labelled blocks nest by label),
    /// a block type that repeats becomes an array.
    pub body: serde_json::Value,
    /// Operation labels: project, app, stage and scope labels merged.
    pub labels: BTreeMap<String, String>,
    /// Hooks of the effective stage.
    pub hooks: Vec<Hook>,
    /// Where the `use` block is.
    pub location: Location,
    file: crate::diag::Source,
    /// JSON path → span of the attribute key or block, and of the attribute value.
    locations: Vec<FieldSpan>,
}

/// JSON path → span of the attribute key (or block), and of the attribute value.
type FieldSpan = (Vec<String>, Range<usize>, Option<Range<usize>>);

impl EvaluatedUse {
    /// The location of the attribute or block at a JSON path (e.g. `["auth", "username"]`, or
    /// `["port", "0"]` for an array element); falls back to the nearest enclosing item, then to
    /// the `use` block, so a plugin's decode error can always point into the file.
    pub fn location_of(&self, path: &[&str]) -> Option<Location> {
        let mut best: Option<(usize, &FieldSpan)> = None;
        for field in &self.locations {
            let p = &field.0;
            if p.len() <= path.len()
                && p.iter().zip(path).all(|(a, b)| a == b)
                && best.is_none_or(|(n, _)| p.len() > n)
            {
                best = Some((p.len(), field));
            }
        }
        Some(match best {
            None => self.location.clone(),
            // Inside an attribute's value (a map or list element): point at the value.
            Some((n, (_, key, value))) => {
                let span = if n < path.len() {
                    value.as_ref().unwrap_or(key)
                } else {
                    key
                };
                self.file.location(span.clone())
            }
        })
    }

    /// Decodes the body into a plugin's config struct; a decode error points at the attribute.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, Diagnostic> {
        serde_json::from_value(self.body.clone()).map_err(|e| {
            let mut d = Diagnostic::error(format!(
                "invalid `use \"{}\"` configuration: {e}",
                self.plugin
            ));
            d.location = Some(self.location.clone());
            d
        })
    }
}

/// Variables and predefined values, ready to evaluate expressions of one project (and app).
#[derive(Debug, Clone)]
pub struct EvalContext<'c> {
    config: &'c Config,
    app: Option<&'c App>,
    workspace: String,
    variables: Vec<ResolvedVariable>,
    labels: BTreeMap<String, String>,
    project_labels: BTreeMap<String, String>,
    extra_labels: BTreeMap<String, String>,
    vars: Map<String, Value>,
    /// Variables whose value only a job knows: `dynamic()` defaults, and (in `validate`)
    /// variables with no value, which the server may hold.
    unknown_vars: Vec<String>,
    plugins: Option<std::sync::Arc<crate::plugins::PluginCatalog>>,
}

impl<'c> EvalContext<'c> {
    /// Resolves variables and predefined values; every error is reported at once. With
    /// `inputs.app` set, the context is for that app (same as [`EvalContext::for_app`]).
    pub fn new(config: &'c Config, inputs: &EvalInputs) -> Result<Self, Diagnostics> {
        let mut diags = Diagnostics::new();
        if let Some(name) = &inputs.app {
            // Fail fast on a wrong app name, before reporting anything else.
            find_app(config, name)?;
        }
        let ctx = Self::build(config, inputs, &mut diags, false);
        let ctx = diags.into_result(ctx)?;
        match &inputs.app {
            Some(name) => ctx.for_app(name),
            None => Ok(ctx),
        }
    }

    /// The context without failing: errors go to `diags`. With `placeholders`, a declared
    /// variable that got no valid value is `null` rather than missing, so that validation goes
    /// on to report the other errors instead of a follow-on "unknown variable" for each use.
    fn build(
        config: &'c Config,
        inputs: &EvalInputs,
        diags: &mut Diagnostics,
        placeholders: bool,
    ) -> Self {
        let workspace = if inputs.workspace.is_empty() {
            "default".to_owned()
        } else {
            inputs.workspace.clone()
        };
        let variables = resolve_variables(config, inputs, diags, placeholders);
        let mut var_obj = Map::new();
        if placeholders {
            for decl in &config.variables {
                var_obj.insert(decl.name.clone(), Value::Null);
            }
        }
        for v in &variables {
            let value = from_json(&v.value_json);
            // A dynamic default stays opaque so that `config` can pass it on as a source.
            let value = if v.source == VariableSource::Dynamic {
                obj1(DYNAMIC_KEY, value)
            } else {
                value
            };
            var_obj.insert(v.name.clone(), value);
        }
        let pwd = if inputs.pwd.as_os_str().is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            inputs.pwd.clone()
        };
        let mut vars = Map::new();
        vars.insert("var".to_owned(), Value::Object(var_obj));
        let mut path = Map::new();
        path.insert(
            "project".to_owned(),
            Value::String(config.project_dir.display().to_string()),
        );
        path.insert("pwd".to_owned(), Value::String(pwd.display().to_string()));
        vars.insert("path".to_owned(), Value::Object(path));
        vars.insert(
            "workspace".to_owned(),
            obj1("name", Value::String(workspace.clone())),
        );
        let unknown_vars = config
            .variables
            .iter()
            .filter(|d| match variables.iter().find(|v| v.name == d.name) {
                Some(v) => v.source == VariableSource::Dynamic,
                None => placeholders,
            })
            .map(|d| d.name.clone())
            .collect();
        let mut ctx = EvalContext {
            config,
            app: None,
            workspace,
            unknown_vars,
            plugins: inputs.plugins.clone(),
            variables,
            labels: BTreeMap::new(),
            project_labels: BTreeMap::new(),
            extra_labels: inputs.labels.clone(),
            vars,
        };
        // Labels may use variables, so they come after.
        ctx.project_labels = ctx.eval_labels(config.labels.as_ref(), diags);
        ctx.set_labels(BTreeMap::new());
        ctx
    }

    /// The same variables and values, for one app: adds `app.name`, `path.app` and the app's
    /// labels. Cheaper than [`EvalContext::new`] per app (variables are resolved once).
    pub fn for_app(&self, name: &str) -> Result<EvalContext<'c>, Diagnostics> {
        self.for_app_block(find_app(self.config, name)?)
    }

    /// [`EvalContext::for_app`] for an app of this config (no lookup by name: validating a file
    /// with thousands of apps stays linear).
    fn for_app_block(&self, app: &'c App) -> Result<EvalContext<'c>, Diagnostics> {
        let mut diags = Diagnostics::new();
        let mut ctx = self.clone();
        ctx.app = Some(app);
        ctx.vars.insert(
            "app".to_owned(),
            obj1("name", Value::String(app.name.clone())),
        );
        let project_dir = &self.config.project_dir;
        let app_dir = match &app.path {
            None => project_dir.clone(),
            Some(e) => match ctx.eval(e, None) {
                Ok(Value::String(p)) if is_child_path(&p) => project_dir.join(p),
                Ok(Value::String(p)) => {
                    diags.push(ctx.error_at(
                        e,
                        format!("app `path` \"{p}\" must be a child of the project directory"),
                    ));
                    project_dir.clone()
                }
                Ok(other) => {
                    diags.push(ctx.error_at(
                        e,
                        format!(
                            "`path` must be a string, found {}",
                            crate::value::type_name(&other)
                        ),
                    ));
                    project_dir.clone()
                }
                Err(d) => {
                    diags.push(d);
                    project_dir.clone()
                }
            },
        };
        if let Some(Value::Object(path)) = ctx.vars.get_mut("path") {
            path.insert(
                "app".to_owned(),
                Value::String(app_dir.display().to_string()),
            );
        }
        let app_labels = ctx.eval_labels(app.labels.as_ref(), &mut diags);
        ctx.set_labels(app_labels);
        diags.into_result(ctx)
    }

    /// Operation labels: project, then app, then extra (`-label`), then `wayline/workspace`.
    fn set_labels(&mut self, app_labels: BTreeMap<String, String>) {
        let mut labels = self.project_labels.clone();
        labels.extend(app_labels);
        labels.extend(self.extra_labels.clone());
        labels.insert("wayline/workspace".to_owned(), self.workspace.clone());
        self.vars.insert("labels".to_owned(), labels_value(&labels));
        self.labels = labels;
    }

    /// The configuration this context evaluates.
    pub fn config(&self) -> &'c Config {
        self.config
    }

    /// The resolved input variables, in declaration order.
    pub fn variables(&self) -> &[ResolvedVariable] {
        &self.variables
    }

    /// The operation labels (project, app, extra, `wayline/workspace`).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The workspace name.
    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// The app, when the context was made for one.
    pub fn app(&self) -> Option<&'c App> {
        self.app
    }

    /// The directory of the app (`path.app`), or the project directory.
    pub fn app_dir(&self) -> PathBuf {
        match self.vars.get("path") {
            Some(Value::Object(p)) => p
                .get("app")
                .or_else(|| p.get("project"))
                .and_then(Value::as_str)
                .map(PathBuf::from)
                .unwrap_or_default(),
            _ => PathBuf::new(),
        }
    }

    /// Evaluates any expression of the file to JSON (pipeline step fields, runner settings, ...).
    pub fn eval_json(&self, e: &Expr) -> Result<serde_json::Value, Diagnostics> {
        let v = self.eval(e, None)?;
        if is_dynamic(&v) {
            return Err(self
                .error_at(
                    e,
                    "`dynamic()` may only be used in a variable default or inside `config`",
                )
                .into());
        }
        Ok(to_json(&v))
    }

    fn eval(&self, e: &Expr, extra: Option<&Map<String, Value>>) -> Result<Value, Diagnostic> {
        let lookup = |n: &str| extra.and_then(|x| x.get(n)).or_else(|| self.vars.get(n));
        eval_minimal(&e.expr, Some(&e.hexpr), &lookup, &self.config.project_dir)
            .map_err(|err| self.locate(e, err.kind(), extra))
    }

    fn error_at(&self, e: &Expr, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&e.file, e.span.clone(), msg)
    }

    /// Turns an hcl-rs evaluation error (which has no position) into a located diagnostic by
    /// finding the sub-expression it is about.
    fn locate(&self, e: &Expr, kind: &ErrorKind, extra: Option<&Map<String, Value>>) -> Diagnostic {
        let mut finder = Finder::default();
        finder.visit_expr(&e.expr);
        let file: &SourceFile = &e.file;
        let whole = e.span.clone();
        match kind {
            ErrorKind::UndefinedVar(name) => {
                let name = name.as_str();
                let span = finder
                    .vars
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(whole, |(_, s)| s.clone());

                if matches!(name, "artifact" | "deploy" | "entrypoint") {
                    let at = match name {
                        "artifact" => "registry, deploy and release",
                        "deploy" => "release",
                        _ => "deploy",
                    };
                    Diagnostic::at(
                        file,
                        span,
                        format!("`{name}` is not available here; it exists in {at}"),
                    )
                } else if name == "config" {
                    Diagnostic::at(
                        file,
                        span,
                        "`config.env` and `config.internal` are only available inside `config` values",
                    )
                } else {
                    let mut known: Vec<&str> = self.vars.keys().map(String::as_str).collect();
                    if let Some(x) = extra {
                        known.extend(x.keys().map(String::as_str));
                    }
                    let d = Diagnostic::at(file, span, format!("unknown variable `{name}`"));
                    match did_you_mean(name, known.iter().copied()) {
                        Some(h) => d.with_help(h),
                        None => d,
                    }
                }
            }
            ErrorKind::NoSuchKey(key) => {
                let hit = finder.attrs.iter().find(|(_, k, _)| k == key);
                let span = hit.map_or(whole, |(_, _, s)| s.clone());
                let root = hit.map_or("", |(r, _, _)| r.as_str());
                if root == "var" {
                    let d = Diagnostic::at(
                        file,
                        span,
                        format!("undeclared input variable `var.{key}`"),
                    );
                    let names = self.config.variables.iter().map(|v| v.name.as_str());
                    return match did_you_mean(key, names) {
                        Some(h) => d.with_help(h),
                        None => d.with_help(format!("declare it with `variable \"{key}\" {{}}`")),
                    };
                }
                let d = Diagnostic::at(file, span, format!("`{root}` has no attribute `{key}`"));
                let keys: Vec<String> = match self
                    .vars
                    .get(root)
                    .or_else(|| extra.and_then(|x| x.get(root)))
                {
                    Some(Value::Object(o)) => o.keys().cloned().collect(),
                    _ => Vec::new(),
                };
                match did_you_mean(key, keys.iter().map(String::as_str)) {
                    Some(h) => d.with_help(h),
                    None => d,
                }
            }
            ErrorKind::UndefinedFunc(name) => {
                let n = name.to_string();
                let span = finder
                    .calls
                    .iter()
                    .find(|(c, _)| *c == n)
                    .map_or(whole, |(_, s)| s.clone());
                let d = Diagnostic::at(file, span, format!("unknown function `{n}`"));
                match did_you_mean(&n, funcs::names().iter().copied()) {
                    Some(h) => d.with_help(h),
                    None => d,
                }
            }
            ErrorKind::FuncCall(name, msg) => {
                let n = name.to_string();
                let span = finder
                    .calls
                    .iter()
                    .find(|(c, _)| *c == n)
                    .map_or(whole, |(_, s)| s.clone());
                Diagnostic::at(file, span, format!("`{n}()`: {msg}"))
            }
            other => Diagnostic::at(file, whole, other.to_string()),
        }
    }

    fn eval_labels(&self, e: Option<&Expr>, diags: &mut Diagnostics) -> BTreeMap<String, String> {
        let Some(e) = e else { return BTreeMap::new() };
        match self.eval(e, None) {
            Ok(Value::Object(m)) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    if wayline_core::labels::is_reserved(&k) {
                        diags.push(self.error_at(e, format!("label key `{k}` is reserved: keys starting with `wayline/` or `waypoint/` are set by Wayline")));
                        continue;
                    }
                    match v {
                        Value::Array(_) | Value::Object(_) => {
                            diags.push(self.error_at(e, format!("label `{k}` must be a string")));
                        }
                        other => {
                            out.insert(k, to_text(&other));
                        }
                    }
                }
                out
            }
            Ok(other) => {
                diags.push(self.error_at(
                    e,
                    format!(
                        "`labels` must be a map of strings, found {}",
                        crate::value::type_name(&other)
                    ),
                ));
                BTreeMap::new()
            }
            Err(d) => {
                diags.push(d);
                BTreeMap::new()
            }
        }
    }

    /// Evaluates everything that can be evaluated without a server or artifacts: variables,
    /// labels, paths, config, hooks and every `use` body (references to `artifact.*` etc. are
    /// checked, not evaluated). Returns all problems found.
    pub fn validate(config: &Config, inputs: &EvalInputs) -> Diagnostics {
        funcs::pure(|| Self::validate_pure(config, inputs))
    }

    fn validate_pure(config: &Config, inputs: &EvalInputs) -> Diagnostics {
        let mut diags = Diagnostics::new();
        let inputs = EvalInputs {
            app: None,
            ..inputs.clone()
        };
        // Variable errors are reported and validation goes on, so one run shows every error.
        let base = EvalContext::build(config, &inputs, &mut diags, true);
        if let Some(catalog) = &inputs.plugins {
            diags.extend(catalog.check(config));
        }
        if let Err(d) = base.config_vars() {
            diags.extend(d);
        }
        for p in &config.pipelines {
            base.check_pipeline_exprs(p, &mut diags);
        }
        for app in &config.apps {
            let ctx = match base.for_app_block(app) {
                Ok(c) => c,
                Err(d) => {
                    diags.extend(d);
                    continue;
                }
            };
            // Project-level config was checked by the base context; check the app's own.
            if let Some(c) = &app.config {
                ctx.check_app_config(c, &mut diags);
            }
            let mut stages = vec![&app.build, &app.deploy];
            stages.extend(app.build.registry.as_deref());
            stages.extend(app.release.as_ref());
            for s in stages {
                for variant in s.variants() {
                    ctx.check_stage(variant, &mut diags);
                }
            }
        }
        diags.sort();
        diags
    }

    fn check_pipeline_exprs(&self, p: &Pipeline, diags: &mut Diagnostics) {
        for s in &p.steps {
            for e in [&s.image_url, &s.workspace, &s.labels]
                .into_iter()
                .flatten()
            {
                if !self.refers_to_unknown(e)
                    && let Err(d) = self.eval_json(e)
                {
                    diags.extend(d);
                }
            }
            match &s.kind {
                StepKind::Use(u) => self.check_use_body(&u.body, &u.file, None, diags),
                StepKind::Pipeline(inner) => self.check_pipeline_exprs(inner, diags),
            }
        }
    }

    /// Whether `e` uses a variable whose value only a job knows (then only its references are
    /// checked, as for `artifact.*`).
    fn refers_to_unknown(&self, e: &Expr) -> bool {
        if self.unknown_vars.is_empty() {
            return false;
        }
        let mut f = Finder::default();
        f.visit_expr(&e.expr);
        f.first_attrs
            .iter()
            .any(|(root, key, _)| root == "var" && self.unknown_vars.contains(key))
    }

    fn check_stage(&self, s: &Stage, diags: &mut Diagnostics) {
        if let Some(l) = s.labels.as_ref().filter(|l| !self.refers_to_unknown(l)) {
            let _ = self.eval_labels(Some(l), diags);
        }
        for h in &s.hooks {
            if let Some(c) = &h.command
                && !self.refers_to_unknown(c)
                && let Err(d) = self.command(c)
            {
                diags.push(d);
            }
        }
        if let Some(u) = &s.use_ {
            self.check_use_body(&u.body, &u.file, Some(s.kind), diags);
            if let Some(catalog) = &self.plugins {
                let mut path = Vec::new();
                self.check_use_types(catalog, u, s.kind, &u.body, &mut path, diags);
            }
        }
    }

    /// Evaluates the attributes of a body that don't need stage values; checks the others'
    /// references.
    fn check_use_body(
        &self,
        body: &Body,
        file: &crate::diag::Source,
        stage: Option<StageKind>,
        diags: &mut Diagnostics,
    ) {
        for s in body {
            match s {
                Structure::Attribute(a) => {
                    let e = Expr::new(&a.value, file);
                    let mut f = Finder::default();
                    f.visit_expr(&a.value);
                    let stage_only = f
                        .vars
                        .iter()
                        .any(|(n, _)| matches!(n.as_str(), "artifact" | "deploy" | "entrypoint"))
                        || f.first_attrs.iter().any(|(root, key, _)| {
                            root == "var" && self.unknown_vars.contains(key)
                        })
                        // Templates may use stage values inside their text, which only the
                        // runner has.
                        || f.calls.iter().any(|(c, _)| c.starts_with("template"));
                    if let Some(kind) = stage {
                        for (n, span) in &f.vars {
                            let allowed = match n.as_str() {
                                "artifact" => kind != StageKind::Build,
                                "deploy" => kind == StageKind::Release,
                                "entrypoint" => kind == StageKind::Deploy,
                                _ => true,
                            };
                            if !allowed {
                                let exists = match n.as_str() {
                                    "artifact" => "registry, deploy and release",
                                    "deploy" => "release",
                                    _ => "deploy",
                                };
                                diags.push(Diagnostic::at(
                                    file,
                                    span.clone(),
                                    format!(
                                        "`{n}` is not available in `{}`; it exists in {exists}",
                                        kind.as_str()
                                    ),
                                ));
                            }
                        }
                    }
                    if stage_only {
                        // Check references only: the values exist only at run time.
                        for (root, key, span) in &f.first_attrs {
                            if root == "var" && self.config.variable(key).is_none() {
                                let d = Diagnostic::at(
                                    file,
                                    span.clone(),
                                    format!("undeclared input variable `var.{key}`"),
                                );
                                let names = self.config.variables.iter().map(|v| v.name.as_str());
                                diags.push(match did_you_mean(key, names) {
                                    Some(h) => d.with_help(h),
                                    None => d.with_help(format!(
                                        "declare it with `variable \"{key}\" {{}}`"
                                    )),
                                });
                            }
                        }
                        for (n, span) in &f.vars {
                            if !self.vars.contains_key(n)
                                && !f.bound.contains(n)
                                && !matches!(n.as_str(), "artifact" | "deploy" | "entrypoint")
                            {
                                let d = Diagnostic::at(
                                    file,
                                    span.clone(),
                                    format!("unknown variable `{n}`"),
                                );
                                diags.push(
                                    match did_you_mean(n, self.vars.keys().map(String::as_str)) {
                                        Some(h) => d.with_help(h),
                                        None => d,
                                    },
                                );
                            }
                        }
                        for (c, span) in &f.calls {
                            if !funcs::names().contains(&c.as_str()) {
                                let d = Diagnostic::at(
                                    file,
                                    span.clone(),
                                    format!("unknown function `{c}`"),
                                );
                                diags.push(match did_you_mean(c, funcs::names().iter().copied()) {
                                    Some(h) => d.with_help(h),
                                    None => d,
                                });
                            }
                        }
                    } else {
                        match self.eval(&e, None) {
                            Ok(v) if is_dynamic(&v) => diags.push(self.error_at(&e, "`dynamic()` may only be used in a variable default or inside `config`")),
                            Ok(_) => {}
                            Err(d) => diags.push(d),
                        }
                    }
                }
                Structure::Block(b) => self.check_use_body(&b.body, file, stage, diags),
            }
        }
    }

    /// The type of every attribute of a `use` body against the plugin's schema: evaluated
    /// values with HCL's conversions, and for values only a job knows (`artifact.*`), the kind
    /// of expression (a quoted string is never a list).
    fn check_use_types(
        &self,
        catalog: &crate::plugins::PluginCatalog,
        u: &UseBlock,
        kind: StageKind,
        body: &Body,
        path: &mut Vec<String>,
        diags: &mut Diagnostics,
    ) {
        for s in body {
            match s {
                Structure::Attribute(a) => {
                    path.push(a.key.as_str().to_owned());
                    if let Some(schema) = catalog.field_schema(&u.plugin, kind, path) {
                        let e = Expr::new(&a.value, &u.file);
                        let value = match self.eval(&e, None) {
                            Ok(v) if !contains_dynamic(&v) => Some(v),
                            _ => literal_shape(&a.value),
                        };
                        if let Some(v) = value
                            && let Err(m) = crate::plugins::conforms(&v, schema)
                        {
                            diags.push(self.error_at(
                                &e,
                                format!("`{}` of `use \"{}\"`: {m}", path.join("."), u.plugin),
                            ));
                        }
                    }
                    path.pop();
                }
                Structure::Block(b) => {
                    path.push(b.ident.as_str().to_owned());
                    self.check_use_types(catalog, u, kind, &b.body, path, diags);
                    path.pop();
                }
            }
        }
    }

    fn command(&self, e: &Expr) -> Result<Vec<String>, Diagnostic> {
        match self.eval(e, None)? {
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Ok(to_text(v)),
                    _ => Err(self.error_at(e, "`command` must be a list of strings")),
                })
                .collect(),
            _ => Err(self.error_at(
                e,
                "`command` must be a non-empty list of strings, e.g. [\"make\", \"test\"]",
            )),
        }
    }

    fn use_to_json(
        &self,
        body: &Body,
        file: &crate::diag::Source,
        extra: &Map<String, Value>,
        path: &mut Vec<String>,
        locs: &mut Vec<FieldSpan>,
        diags: &mut Diagnostics,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        // Block types that repeat become arrays.
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for b in body.blocks().filter(|b| b.labels.is_empty()) {
            *counts.entry(b.ident.as_str()).or_default() += 1;
        }
        for s in body {
            match s {
                Structure::Attribute(a) => {
                    let key = a.key.as_str().to_owned();
                    path.push(key.clone());
                    locs.push((path.clone(), a.key.span().unwrap_or(0..0), a.value.span()));
                    let e = Expr::new(&a.value, file);
                    match self.eval(&e, Some(extra)) {
                        Ok(v) if contains_dynamic(&v) => {
                            diags.push(self.error_at(&e, "`dynamic()` may only be used in a variable default or inside `config`"));
                        }
                        Ok(v) => {
                            out.insert(key, to_json(&v));
                        }
                        Err(d) => diags.push(d),
                    }
                    path.pop();
                }
                Structure::Block(b) => {
                    let key = b.ident.as_str().to_owned();
                    path.push(key.clone());
                    let mut labels: Vec<String> =
                        b.labels.iter().map(|l| l.as_str().to_owned()).collect();
                    let repeated =
                        b.labels.is_empty() && counts.get(key.as_str()).copied().unwrap_or(0) > 1;
                    if repeated {
                        let idx = out.get(&key).and_then(|v| v.as_array()).map_or(0, Vec::len);
                        path.push(idx.to_string());
                    }
                    path.extend(labels.iter().cloned());
                    locs.push((path.clone(), b.ident.span().unwrap_or(0..0), None));
                    let inner = serde_json::Value::Object(
                        self.use_to_json(&b.body, file, extra, path, locs, diags),
                    );
                    for _ in 0..labels.len() + usize::from(repeated) {
                        path.pop();
                    }
                    path.pop();
                    if repeated {
                        let slot = out
                            .entry(key)
                            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                        if let Some(a) = slot.as_array_mut() {
                            a.push(inner);
                        }
                    } else {
                        // Labelled blocks nest by label: `port "http" {}` → {"port": {"http": {}}}.
                        let mut value = inner;
                        while let Some(l) = labels.pop() {
                            let mut m = serde_json::Map::new();
                            m.insert(l, value);
                            value = serde_json::Value::Object(m);
                        }
                        merge_json(out.entry(key).or_insert(serde_json::Value::Null), value);
                    }
                }
            }
        }
        out
    }
}

/// A relative path that stays inside its base (`./a`, `a/../b`; not `..`, `/x`, `a/../..`).
fn is_child_path(p: &str) -> bool {
    let mut depth = 0usize;
    for c in Path::new(p).components() {
        match c {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if depth > 0 => depth -= 1,
            _ => return false,
        }
    }
    true
}

fn find_app<'c>(config: &'c Config, name: &str) -> Result<&'c App, Diagnostics> {
    config.app(name).ok_or_else(|| {
        let d = Diagnostic::error(format!("no app named `{name}` in `{}`", config.file.name));
        let names = || config.apps.iter().map(|a| a.name.as_str());
        match did_you_mean(name, names()) {
            Some(h) => d.with_help(h),
            None => d.with_help(format!(
                "the apps are: {}",
                names().collect::<Vec<_>>().join(", ")
            )),
        }
        .into()
    })
}

fn merge_json(slot: &mut serde_json::Value, value: serde_json::Value) {
    match (slot, value) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge_json(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// The shape of an expression whose value is unknown before the job: a quoted string or
/// template is a string, `[...]` a list, `{...}` a map; anything else could be anything.
fn literal_shape(e: &EditExpr) -> Option<Value> {
    match e {
        EditExpr::String(_) | EditExpr::StringTemplate(_) | EditExpr::HeredocTemplate(_) => {
            Some(Value::String(String::new()))
        }
        EditExpr::Array(_) => Some(Value::Array(Vec::new())),
        EditExpr::Object(_) => Some(Value::Object(Map::new())),
        _ => None,
    }
}

fn contains_dynamic(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key(DYNAMIC_KEY) || o.values().any(contains_dynamic),
        Value::Array(a) => a.iter().any(contains_dynamic),
        _ => false,
    }
}

fn obj1(k: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(k.to_owned(), v);
    Value::Object(m)
}

fn labels_value(l: &BTreeMap<String, String>) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

impl Stage {
    /// This stage and its scoped overrides.
    pub(crate) fn variants(&self) -> impl Iterator<Item = &Stage> {
        std::iter::once(self)
            .chain(self.workspaces.iter().map(|(_, s)| s))
            .chain(self.label_scopes.iter().map(|(_, s)| s))
    }

    /// The effective stage for a workspace and labels: a matching `workspace` scope overrides
    /// the unscoped stage, then the first matching `label` scope overrides both. Each override
    /// replaces `use` (when it has one), adds its labels and replaces the hooks (when it has any).
    pub fn effective<'s>(
        &'s self,
        workspace: &str,
        labels: &BTreeMap<String, String>,
    ) -> EffectiveStage<'s> {
        let mut eff = EffectiveStage {
            use_: self.use_.as_ref(),
            labels: self.labels.iter().collect(),
            hooks: self.hooks.iter().collect(),
        };
        let mut apply = |s: &'s Stage| {
            if let Some(u) = &s.use_ {
                eff.use_ = Some(u);
            }
            eff.labels.extend(s.labels.iter());
            if !s.hooks.is_empty() {
                eff.hooks = s.hooks.iter().collect();
            }
        };
        if let Some((_, s)) = self.workspaces.iter().find(|(w, _)| w == workspace) {
            apply(s);
        }
        // Waypoint files select on `waypoint/workspace`; Wayline sets `wayline/workspace`.
        let get = |k: &str| {
            labels
                .get(k)
                .or_else(|| {
                    k.strip_prefix("waypoint/")
                        .and_then(|r| labels.get(&format!("wayline/{r}")))
                })
                .map(String::as_str)
        };
        if let Some((_, s)) = self
            .label_scopes
            .iter()
            .find(|(ls, _)| ls.selector.matches_with(&get))
        {
            apply(s);
        }
        eff
    }

    /// Picks the effective `use` for the context's workspace and labels and evaluates it.
    /// `extra` adds stage values, e.g. `{"artifact": {...}, "entrypoint": {"env": {...}}}`.
    pub fn evaluate_use(
        &self,
        ctx: &EvalContext<'_>,
        extra: &serde_json::Value,
    ) -> Result<EvaluatedUse, Diagnostics> {
        let eff = self.effective(&ctx.workspace, &ctx.labels);
        let mut diags = Diagnostics::new();
        let Some(u) = eff.use_ else {
            let d = Diagnostic::at(
                &self.file,
                self.span.clone(),
                format!(
                    "`{}` has no `use` block for workspace `{}`",
                    self.kind.as_str(),
                    ctx.workspace
                ),
            );
            return Err(d.into());
        };
        let mut extra_vars = match from_json(extra) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut labels = ctx.labels.clone();
        for l in &eff.labels {
            labels.extend(ctx.eval_labels(Some(l), &mut diags));
        }
        extra_vars.insert("labels".to_owned(), labels_value(&labels));
        let hooks = eff
            .hooks
            .iter()
            .filter_map(|h| {
                let cmd = h.command.as_ref()?;
                match ctx.command(cmd) {
                    Ok(command) => Some(Hook {
                        when: h.when,
                        command,
                        on_failure: h.on_failure,
                    }),
                    Err(d) => {
                        diags.push(d);
                        None
                    }
                }
            })
            .collect();
        let mut locations = Vec::new();
        let body = ctx.use_to_json(
            &u.body,
            &u.file,
            &extra_vars,
            &mut Vec::new(),
            &mut locations,
            &mut diags,
        );
        let out = EvaluatedUse {
            plugin: u.plugin.clone(),
            body: serde_json::Value::Object(body),
            labels,
            hooks,
            location: u.location(),
            file: u.file.clone(),
            locations,
        };
        diags.into_result(out)
    }
}

/// A stage after workspace and label scopes were applied.
#[derive(Debug, Clone)]
pub struct EffectiveStage<'s> {
    /// The `use` that applies.
    pub use_: Option<&'s UseBlock>,
    /// Label expressions, unscoped first.
    pub labels: Vec<&'s Expr>,
    /// Hooks that apply.
    pub hooks: Vec<&'s HookBlock>,
}

/// Collects variables, attribute accesses and calls with their spans.
#[derive(Default)]
struct Finder {
    vars: Vec<(String, Range<usize>)>,
    /// (root variable, attribute, span of the attribute), for every attribute of a traversal
    attrs: Vec<(String, String, Range<usize>)>,
    /// The same for the first attribute only (`var.x` of `var.x.y`).
    first_attrs: Vec<(String, String, Range<usize>)>,
    calls: Vec<(String, Range<usize>)>,
    /// Names bound by `for` expressions (not references to the scope).
    bound: Vec<String>,
}

impl Visit for Finder {
    fn visit_expr(&mut self, node: &EditExpr) {
        if let EditExpr::Variable(v) = node {
            self.vars
                .push((v.as_str().to_owned(), v.span().unwrap_or(0..0)));
        }
        visit::visit_expr(self, node);
    }

    fn visit_traversal(&mut self, node: &hcl::edit::expr::Traversal) {
        let root = match &node.expr {
            EditExpr::Variable(v) => v.as_str().to_owned(),
            _ => String::new(),
        };
        if let Some(first) = node.operators.first()
            && let TraversalOperator::GetAttr(a) = first.value()
        {
            self.first_attrs.push((
                root.clone(),
                a.as_str().to_owned(),
                a.span().or_else(|| first.span()).unwrap_or(0..0),
            ));
        }
        for op in &node.operators {
            if let TraversalOperator::GetAttr(a) = op.value() {
                self.attrs.push((
                    root.clone(),
                    a.as_str().to_owned(),
                    a.span().or_else(|| op.span()).unwrap_or(0..0),
                ));
            }
        }
        visit::visit_traversal(self, node);
    }

    fn visit_for_expr(&mut self, node: &hcl::edit::expr::ForExpr) {
        self.bound.push(node.intro.value_var.as_str().to_owned());
        if let Some(k) = &node.intro.key_var {
            self.bound.push(k.as_str().to_owned());
        }
        visit::visit_for_expr(self, node);
    }

    fn visit_func_call(&mut self, node: &hcl::edit::expr::FuncCall) {
        self.calls.push((
            node.name.name.as_str().to_owned(),
            node.span().unwrap_or(0..0),
        ));
        visit::visit_func_call(self, node);
    }
}

/// Evaluates an expression in a context that holds only the variables and functions it refers
/// to: far cheaper than a context with the whole function library.
fn eval_minimal<'v>(
    expr: &EditExpr,
    converted: Option<&hcl::Expression>,
    lookup: &dyn Fn(&str) -> Option<&'v Value>,
    base_dir: &Path,
) -> Result<Value, hcl::eval::Error> {
    let mut f = Finder::default();
    f.visit_expr(expr);
    let mut ctx = Context::new();
    let mut declared: Vec<&str> = Vec::new();
    for (n, _) in &f.vars {
        if !declared.contains(&n.as_str()) {
            declared.push(n);
            if let Some(v) = lookup(n) {
                ctx.declare_var(n.as_str(), v.clone());
            }
        }
    }
    let mut templates = false;
    for (c, _) in &f.calls {
        if let Some(d) = funcs::def(c) {
            ctx.declare_func(c.as_str(), d.clone());
            templates |= c.starts_with("template");
        }
    }
    let owned;
    let expr = if let Some(c) = converted {
        c
    } else {
        owned = hcl::Expression::from(expr.clone());
        &owned
    };
    if f.calls.is_empty() {
        return expr.evaluate(&ctx);
    }
    // Template functions see every value in scope; the others need only the directory.
    let vars = if templates {
        [
            "var",
            "path",
            "workspace",
            "app",
            "labels",
            "artifact",
            "deploy",
            "entrypoint",
            "config",
        ]
        .iter()
        .filter_map(|n| lookup(n).map(|v| ((*n).to_owned(), v.clone())))
        .collect()
    } else {
        Map::new()
    };
    funcs::with_env(
        FnEnv {
            base_dir: base_dir.to_path_buf(),
            vars,
        },
        || expr.evaluate(&ctx),
    )
}

/// What `project` and variable defaults may refer to: `workspace.name`, `path.project` and
/// `path.pwd` (Waypoint's `EvalContext` at load time).
pub(crate) fn project_scope(workspace: &str, project_dir: &Path) -> Map<String, Value> {
    let workspace = if workspace.is_empty() {
        "default"
    } else {
        workspace
    };
    let pwd = std::env::current_dir().unwrap_or_default();
    let mut path = Map::new();
    path.insert(
        "project".to_owned(),
        Value::String(project_dir.display().to_string()),
    );
    path.insert("pwd".to_owned(), Value::String(pwd.display().to_string()));
    let mut scope = Map::new();
    scope.insert("path".to_owned(), Value::Object(path));
    scope.insert(
        "workspace".to_owned(),
        obj1("name", Value::String(workspace.to_owned())),
    );
    scope
}

/// Evaluates an expression with only `scope` (and the functions) visible.
pub(crate) fn eval_in(
    e: &EditExpr,
    scope: &Map<String, Value>,
    base_dir: &Path,
) -> Result<Value, hcl::eval::Error> {
    eval_minimal(e, None, &|n| scope.get(n), base_dir)
}

/// Resolves every declared variable through the precedence chain.
fn resolve_variables(
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
    let mut values: Vec<Option<(Value, VariableSource)>> = vec![None; config.variables.len()];
    let idx = |name: &str| config.variables.iter().position(|v| v.name == name);

    // 1. defaults: literals (functions allowed, no variables), or dynamic().
    // Variables whose default was wrong: "has no value" would only repeat the problem.
    let mut bad_default = vec![false; config.variables.len()];
    let scope = project_scope(&inputs.workspace, &config.project_dir);
    for (i, v) in config.variables.iter().enumerate() {
        let Some(e) = &v.default else { continue };
        match eval_minimal(
            &e.expr,
            Some(&e.hexpr),
            &|n| scope.get(n),
            &config.project_dir,
        ) {
            Ok(val) if is_dynamic(&val) => values[i] = Some((val, VariableSource::Dynamic)),
            Ok(val) => match convert(val, &v.ty) {
                Ok(c) => values[i] = Some((c, VariableSource::Default)),
                Err(m) => {
                    bad_default[i] = true;
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
                bad_default[i] = true;
                diags.push(Diagnostic::at(&e.file, e.span.clone(), msg));
            }
        }
    }

    let mut set = |name: &str,
                   raw: RawValue,
                   source: VariableSource,
                   what: &dyn Fn() -> Diagnostic,
                   diags: &mut Diagnostics,
                   strict: bool| {
        let Some(i) = idx(name) else {
            if strict {
                let d = what();
                let d = Diagnostic {
                    message: format!("{}: undeclared variable `{name}`", d.message),
                    ..d
                };
                let d = match did_you_mean(name, config.variables.iter().map(|v| v.name.as_str())) {
                    Some(h) => d.with_help(h),
                    None => d.with_help(format!("declare it with `variable \"{name}\" {{}}`")),
                };
                diags.push(d);
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
                values[i] = Some((v, source));
                bad_default[i] = false;
            }
            Err(m) => {
                // "has no value" would only repeat this error.
                bad_default[i] = values[i].is_none();
                let mut d = what();
                if d.location.is_none() {
                    // A flag or environment value has no place in a file: point at the
                    // declaration it is checked against.
                    let at = Diagnostic::at(&config.file, decl.name_span.clone(), "");
                    d.location = at.location;
                    d.source_line = at.source_line;
                    d.width = at.width;
                }
                // Never echo a sensitive value back, even a wrong one.
                let m = if decl.sensitive {
                    "the value does not have this type (not shown: sensitive)".to_owned()
                } else {
                    m
                };
                diags.push(Diagnostic {
                    message: format!(
                        "{}: invalid value for variable `{name}` ({}): {m}",
                        d.message, decl.ty
                    ),
                    ..d
                });
            }
        }
    };

    // 2. server-side project variables.
    for (k, v) in &inputs.server_vars {
        set(
            k,
            RawValue::Text(v.clone()),
            VariableSource::Server,
            &|| Diagnostic::error("server variable"),
            diags,
            false,
        );
    }
    // 3. auto files.
    if inputs.auto_var_files {
        let mut auto: Vec<PathBuf> = fs_err::read_dir(&config.project_dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        let n = p
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        [
                            ".auto.wlvars",
                            ".auto.wpvars",
                            ".auto.wlvars.json",
                            ".auto.wpvars.json",
                        ]
                        .iter()
                        .any(|s| n.ends_with(s))
                    })
                    .collect()
            })
            .unwrap_or_default();
        auto.sort();
        for p in auto {
            read_var_file(&p, diags, &mut set);
        }
    }
    // 4. environment.
    for v in &config.variables {
        let names = [format!("WL_VAR_{}", v.name), format!("WP_VAR_{}", v.name)];
        let found = names
            .iter()
            .chain(v.env.iter())
            .find_map(|n| inputs.env.get(n).map(|val| (n.clone(), val.clone())));
        if let Some((n, val)) = found {
            set(
                &v.name,
                RawValue::Text(val),
                VariableSource::Env,
                &|| Diagnostic::error(format!("environment variable `{n}`")),
                diags,
                false,
            );
        }
    }
    // 5. -var-file.
    for p in &inputs.var_files {
        read_var_file(p, diags, &mut set);
    }
    // 6. -var.
    for item in &inputs.cli_vars {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                let k = k.trim().to_owned();
                set(
                    &k,
                    RawValue::Text(v.to_owned()),
                    VariableSource::Cli,
                    &|| Diagnostic::error(format!("`-var {k}=…`")),
                    diags,
                    true,
                );
            }
            _ => diags.push(Diagnostic::error(format!(
                "`-var {item}`: expected NAME=VALUE"
            ))),
        }
    }

    let mut out = Vec::with_capacity(config.variables.len());
    for ((decl, v), bad) in config.variables.iter().zip(values).zip(bad_default) {
        let Some((value, source)) = v else {
            if bad {
                continue;
            }
            let d = Diagnostic::at(&config.file, decl.name_span.clone(), format!("variable `{}` has no value", decl.name)).with_help(format!(
                "give it a `default`, or set it with `-var {0}=...`, a `*.auto.wlvars` file or `WL_VAR_{0}`",
                decl.name
            ));
            // `validate` cannot see the values stored on the server: a job may still get one.
            diags.push(if missing_is_warning {
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
            });
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

enum RawValue {
    Text(String),
    Value(Value),
}

type SetFn<'a> =
    dyn FnMut(&str, RawValue, VariableSource, &dyn Fn() -> Diagnostic, &mut Diagnostics, bool) + 'a;

fn read_var_file(path: &Path, diags: &mut Diagnostics, set: &mut SetFn<'_>) {
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
    let body = match crate::parse_body(&file) {
        Ok(b) => b,
        Err(d) => {
            diags.push(d);
            return;
        }
    };
    for s in &body {
        match s {
            Structure::Attribute(a) => {
                let span = a.key.span().unwrap_or(0..0);
                let vspan = a.value.span().unwrap_or(0..0);
                match eval_minimal(&a.value, None, &|_| None, Path::new(".")) {
                    Ok(v) => set(
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
fn parse_text_value(s: &str, ty: &VarType) -> Result<Value, String> {
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

impl UseBlock {
    /// Evaluates this `use` body on its own (a pipeline step's), with `extra` values in scope.
    pub fn evaluate(
        &self,
        ctx: &EvalContext<'_>,
        extra: &serde_json::Value,
    ) -> Result<serde_json::Value, Diagnostics> {
        let mut diags = Diagnostics::new();
        let extra_vars = match from_json(extra) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let body = ctx.use_to_json(
            &self.body,
            &self.file,
            &extra_vars,
            &mut Vec::new(),
            &mut Vec::new(),
            &mut diags,
        );
        diags.into_result(serde_json::Value::Object(body))
    }
}
