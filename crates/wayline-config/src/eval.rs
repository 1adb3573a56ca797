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
mod expr;
mod use_body;
mod variables;

pub use config_values::{ConfigScope, ConfigValue, ConfigVarDef};
use expr::{Finder, eval_minimal};
pub(crate) use expr::{eval_in, project_scope};
pub use use_body::{EffectiveStage, EvaluatedUse, Hook};
use variables::resolve_variables;
pub use variables::{ResolvedVariable, VariableSource, sensitive_hash};

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

/// Files with this many apps or more are checked on all cores.
const PARALLEL_APPS: usize = 2048;

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

    /// Variables whose `dynamic()` default a config sourcer must resolve before anything
    /// uses them: (name, sourcer, its settings), as Waypoint's `LoadDynamicDefaults` read them.
    pub fn dynamic_defaults(&self) -> Vec<(String, String, BTreeMap<String, String>)> {
        self.variables
            .iter()
            .filter(|v| v.source == VariableSource::Dynamic)
            .map(|v| {
                let from = v.value_json["from"].as_str().unwrap_or_default().to_owned();
                let config = v.value_json["config"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, x)| {
                                (
                                    k.clone(),
                                    x.as_str().map_or_else(|| x.to_string(), str::to_owned),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (v.name.clone(), from, config)
            })
            .collect()
    }

    /// Sets a `dynamic()` default to the text its config sourcer returned, converted to the
    /// declared type (HCL literal syntax for lists, maps and numbers; raw for strings).
    pub fn resolve_dynamic(&mut self, name: &str, text: &str) -> Result<(), Diagnostic> {
        let Some(decl) = self.config.variable(name) else {
            return Err(Diagnostic::error(format!("no variable `{name}`")));
        };
        let value = variables::parse_text_value(text, &decl.ty)
            .and_then(|v| convert(v, &decl.ty))
            .map_err(|m| {
                let at = decl.default.as_ref().map_or_else(
                    || Diagnostic::error(String::new()),
                    |e| Diagnostic::at(&e.file, e.span.clone(), ""),
                );
                Diagnostic {
                    message: format!(
                        "the value the config sourcer returned for variable `{name}` is not a {}: {m}",
                        decl.ty
                    ),
                    ..at
                }
            })?;
        if let Some(Value::Object(vars)) = self.vars.get_mut("var") {
            vars.insert(name.to_owned(), value.clone());
        }
        if let Some(v) = self.variables.iter_mut().find(|v| v.name == name) {
            v.value_json = to_json(&value);
            if v.sensitive {
                v.hash = Some(sensitive_hash(&self.config.project, &v.value_json));
            }
        }
        self.unknown_vars.retain(|n| n != name);
        Ok(())
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
            catalog.check_dynamic_sources(config, &mut diags);
        }
        if let Err(d) = base.config_vars() {
            diags.extend(d);
        }
        for p in &config.pipelines {
            base.check_pipeline_exprs(p, &mut diags);
        }
        // Each app is checked on its own: a file with thousands of them is shared across the
        // cores (issue 10), each thread pure like this one.
        let threads = crate::parallel::threads_for(config.apps.len(), PARALLEL_APPS);
        let chunks: Vec<&[App]> = config
            .apps
            .chunks(config.apps.len().div_ceil(threads).max(1))
            .collect();
        for d in crate::parallel::map(&chunks, |apps| {
            funcs::pure(|| base.check_apps(apps, inputs.plugins.as_deref()))
        }) {
            diags.extend(d);
        }
        diags.sort();
        diags
    }

    /// What `validate` checks in each app: its plugins, path, config and every stage's
    /// variants.
    fn check_apps(&self, apps: &'c [App], plugins: Option<&crate::PluginCatalog>) -> Diagnostics {
        let mut diags = Diagnostics::new();
        for app in apps {
            if let Some(catalog) = plugins {
                catalog.check_app_stages(app, &mut diags);
            }
            let ctx = match self.for_app_block(app) {
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
        if let Some(u) = &s.use_block {
            self.check_use_body(&u.body, &u.file, Some(s.kind), diags);
            if let Some(catalog) = &self.plugins {
                let mut path = Vec::new();
                self.check_use_types(catalog, u, s.kind, &u.body, &mut path, diags);
            }
        }
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
