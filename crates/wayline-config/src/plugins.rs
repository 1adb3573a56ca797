//! What `validate` (and `up`, before any job) knows about plugins: which names exist for which
//! stage, and each one's config schema, checked against the `use` bodies of the file.
//!
//! The catalog is filled by the caller (the CLI knows the plugin host); this crate only reads
//! it, so configuration stays free of the plugin machinery. Schemas are JSON Schema objects as
//! `wayline_plugin::Docs::config_schema` writes them: `{"type": "object", "properties": {..},
//! "required": [..]}`, with `string`, `number`, `boolean`, `array` (`items`) and `object`
//! (`additionalProperties` for maps, `properties` for blocks).

use std::collections::BTreeMap;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::expr::Expression as EditExpr;
use hcl::edit::structure::{Body, Structure};
use hcl::edit::visit::{self, Visit};

use crate::diag::{Diagnostic, Diagnostics, Source, did_you_mean};
use crate::schema::*;

/// The component kinds a stage or function needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginKind {
    /// `build { use }`
    Builder,
    /// `registry { use }`
    Registry,
    /// `deploy { use }`
    Platform,
    /// `release { use }`
    ReleaseManager,
    /// `dynamic("<name>", …)`
    ConfigSourcer,
}

impl PluginKind {
    /// `builder`, `registry`, `platform`, `release manager`, `config sourcer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builder => "builder",
            Self::Registry => "registry",
            Self::Platform => "platform",
            Self::ReleaseManager => "release manager",
            Self::ConfigSourcer => "config sourcer",
        }
    }

    fn of_stage(kind: StageKind) -> Self {
        match kind {
            StageKind::Build => Self::Builder,
            StageKind::Registry => Self::Registry,
            StageKind::Deploy => Self::Platform,
            StageKind::Release => Self::ReleaseManager,
        }
    }
}

/// Plugins Waypoint ships (`builtin/*`): a name from this list that the catalog lacks is
/// "a Waypoint plugin Wayline does not provide", not a typo.
pub const WAYPOINT_PLUGINS: &[&str] = &[
    "aws-alb",
    "aws-ami",
    "aws-ec2",
    "aws-ecr",
    "aws-ecr-pull",
    "aws-ecs",
    "aws-lambda",
    "aws-ssm",
    "azure-container-instance",
    "consul",
    "docker",
    "docker-pull",
    "docker-ref",
    "exec",
    "files",
    "google-cloud-run",
    "helm",
    "kubernetes",
    "kubernetes-apply",
    "lambda-function-url",
    "nomad",
    "nomad-jobspec",
    "nomad-jobspec-canary",
    "null",
    "pack",
    "packer",
    "terraform-cloud",
    "vault",
];

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Kind → config schema (`None`: the plugin does not document one; names only).
    kinds: BTreeMap<PluginKind, Option<serde_json::Value>>,
    /// An external executable: its kinds are only known once started, so any stage may use it.
    external: bool,
}

/// Every plugin a job on this machine could use.
#[derive(Debug, Clone, Default)]
pub struct PluginCatalog {
    plugins: BTreeMap<String, Entry>,
    /// Finds external plugins (a scan of PATH and the plugin dirs), run only when a file
    /// names a plugin that is not built in: most files never pay for it.
    discover: Option<Discover>,
    discovered: std::sync::OnceLock<std::collections::BTreeSet<String>>,
    /// Whether one external plugin is installed (a few `stat`s), so that a file naming a
    /// plugin that is not built in need not list every directory on PATH (issue 11).
    find: Option<Find>,
}

/// The closure behind [`PluginCatalog::find_external_with`].
#[derive(Clone)]
struct Find(std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for Find {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Find")
    }
}

/// The closure behind [`PluginCatalog::discover_externals_with`].
#[derive(Clone)]
struct Discover(std::sync::Arc<dyn Fn() -> Vec<String> + Send + Sync>);

impl std::fmt::Debug for Discover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Discover")
    }
}

impl PluginCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds component `kind` of plugin `name`, with its config schema when it has one.
    pub fn add(&mut self, name: &str, kind: PluginKind, schema: Option<serde_json::Value>) {
        self.plugins
            .entry(name.to_owned())
            .or_default()
            .kinds
            .insert(kind, schema);
    }

    /// Adds an external plugin found on the machine (kinds and schema unknown until started).
    pub fn add_external(&mut self, name: &str) {
        self.plugins.entry(name.to_owned()).or_default().external = true;
    }

    /// External plugins are found by `discover` (their names), called at most once and only
    /// when a name is not in the catalog already.
    pub fn discover_externals_with(
        &mut self,
        discover: impl Fn() -> Vec<String> + Send + Sync + 'static,
    ) {
        self.discover = Some(Discover(std::sync::Arc::new(discover)));
    }

    /// Whether external plugin `name` is installed is answered by `find` (without listing
    /// them all); the list of [`PluginCatalog::discover_externals_with`] is then needed only
    /// for the help of a name that is nowhere.
    pub fn find_external_with(&mut self, find: impl Fn(&str) -> bool + Send + Sync + 'static) {
        self.find = Some(Find(std::sync::Arc::new(find)));
    }

    fn is_external(&self, name: &str) -> bool {
        match &self.find {
            Some(f) => (f.0)(name),
            None => self.externals().contains(name),
        }
    }

    fn externals(&self) -> &std::collections::BTreeSet<String> {
        self.discovered.get_or_init(|| {
            self.discover
                .as_ref()
                .map(|d| (d.0)().into_iter().collect())
                .unwrap_or_default()
        })
    }

    /// The schema of component `kind` of `name`, when known.
    fn schema(&self, name: &str, kind: PluginKind) -> Option<&serde_json::Value> {
        self.plugins.get(name)?.kinds.get(&kind)?.as_ref()
    }

    /// Checks that `name` provides `kind`; the error says why not.
    fn lookup(&self, name: &str, kind: PluginKind) -> Result<(), (String, Option<String>)> {
        match self.plugins.get(name) {
            Some(e) if e.external || e.kinds.contains_key(&kind) => Ok(()),
            Some(e) => {
                let has: Vec<&str> = e.kinds.keys().map(|k| k.as_str()).collect();
                Err((
                    format!(
                        "plugin `{name}` has no {} (it has: {})",
                        kind.as_str(),
                        has.join(", ")
                    ),
                    None,
                ))
            }
            None if self.is_external(name) => Ok(()),
            None if WAYPOINT_PLUGINS.contains(&name) => Err((
                format!(
                    "`{name}` is a Waypoint plugin; Wayline does not provide it natively — see `wayline plugin list`"
                ),
                Some(format!(
                    "a `waypoint-plugin-{name}` or `wayline-plugin-{name}` executable in the project's `.wayline/plugins`, the config dir or PATH provides it"
                )),
            )),
            None => {
                let mut names: Vec<&str> = self
                    .plugins
                    .iter()
                    .filter(|(_, e)| e.external || e.kinds.contains_key(&kind))
                    .map(|(n, _)| n.as_str())
                    .chain(self.externals().iter().map(String::as_str))
                    .collect();
                names.sort_unstable();
                names.dedup();
                let names = names.into_iter();
                let list = names.clone().collect::<Vec<_>>().join(", ");
                match did_you_mean(name, names) {
                    // Close to a plugin that is here: a typo.
                    Some(hint) => Err((
                        format!("unknown {} plugin `{name}`", kind.as_str()),
                        Some(format!("{hint} ({} plugins here: {list})", kind.as_str())),
                    )),
                    // A third-party plugin this machine does not have.
                    None => Err((
                        format!(
                            "plugin `{name}` is not installed: it is not built in and no `wayline-plugin-{name}` or `waypoint-plugin-{name}` executable was found"
                        ),
                        Some(format!(
                            "put the executable in the project's `.wayline/plugins`, the config dir's `wayline/plugins` or PATH; {} plugins here: {list}",
                            kind.as_str()
                        )),
                    )),
                }
            }
        }
    }

    /// Plugin names of every stage and `dynamic()` source, and each `use` body's attributes
    /// and blocks against the plugin's schema (names, blocks vs attributes, required ones).
    /// Needs no evaluation: `up` runs it before queueing anything.
    pub fn check(&self, config: &Config) -> Diagnostics {
        self.check_apps(config, None)
    }

    /// [`PluginCatalog::check`] for one app's stages (and every `dynamic()` source).
    pub fn check_app(&self, config: &Config, app: &str) -> Diagnostics {
        self.check_apps(config, Some(app))
    }

    fn check_apps(&self, config: &Config, only: Option<&str>) -> Diagnostics {
        let mut diags = Diagnostics::new();
        for app in config
            .apps
            .iter()
            .filter(|a| only.is_none_or(|n| a.name == n))
        {
            self.check_app_stages(app, &mut diags);
        }
        self.check_dynamic_sources(config, &mut diags);
        diags.sort();
        diags
    }

    /// The plugin names and `use` bodies of an app's stages.
    pub(crate) fn check_app_stages(&self, app: &App, diags: &mut Diagnostics) {
        let mut stages = vec![&app.build, &app.deploy];
        stages.extend(app.build.registry.as_deref());
        stages.extend(app.release.as_ref());
        for stage in stages {
            for variant in stage.variants() {
                if let Some(u) = &variant.use_block {
                    self.check_use(u, PluginKind::of_stage(stage.kind), diags);
                }
            }
        }
    }

    /// The config sourcers `dynamic()` names.
    pub(crate) fn check_dynamic_sources(&self, config: &Config, diags: &mut Diagnostics) {
        for e in dynamic_sources(config) {
            let mut finder = DynamicCalls::default();
            finder.visit_expr(&e.expr);
            for (name, span) in finder.found {
                if let Err((msg, help)) = self.lookup(&name, PluginKind::ConfigSourcer) {
                    let d = Diagnostic::at(&e.file, span, msg);
                    diags.push(match help {
                        Some(h) => d.with_help(h),
                        None => d,
                    });
                }
            }
        }
    }

    fn check_use(&self, u: &UseBlock, kind: PluginKind, diags: &mut Diagnostics) {
        if let Err((msg, help)) = self.lookup(&u.plugin, kind) {
            let d = Diagnostic::at(&u.file, u.span.clone(), msg);
            diags.push(match help {
                Some(h) => d.with_help(h),
                None => d,
            });
            return;
        }
        if let Some(schema) = self.schema(&u.plugin, kind) {
            let what = format!("`use \"{}\"`", u.plugin);
            check_body(&u.body, schema, &what, &u.file, u.span.clone(), diags);
        }
    }

    /// The schema of the value at `path` inside plugin `name`'s config, for type checks.
    pub(crate) fn field_schema(
        &self,
        name: &str,
        kind: StageKind,
        path: &[String],
    ) -> Option<&serde_json::Value> {
        let mut s = self.schema(name, PluginKind::of_stage(kind))?;
        for p in path {
            s = s.get("properties")?.get(p)?;
        }
        Some(s)
    }
}

/// Every expression that may call `dynamic()`: variable defaults and `config` values.
fn dynamic_sources(config: &Config) -> Vec<&Expr> {
    fn block<'c>(b: &'c ConfigBlock, out: &mut Vec<&'c Expr>) {
        out.extend([&b.env, &b.internal, &b.file].into_iter().flatten());
        for (_, inner) in &b.workspaces {
            block(inner, out);
        }
        for (_, inner) in &b.labels {
            block(inner, out);
        }
        if let Some(r) = &b.runner {
            block(r, out);
        }
    }
    let mut out: Vec<&Expr> = config
        .variables
        .iter()
        .filter_map(|v| v.default.as_ref())
        .collect();
    for c in std::iter::once(&config.config)
        .chain(config.apps.iter().map(|a| &a.config))
        .flatten()
    {
        block(c, &mut out);
    }
    out
}

/// `dynamic("<literal>", …)` calls: the sourcer name and its span.
#[derive(Default)]
struct DynamicCalls {
    found: Vec<(String, std::ops::Range<usize>)>,
}

impl Visit for DynamicCalls {
    fn visit_func_call(&mut self, node: &hcl::edit::expr::FuncCall) {
        let name = node.name.name.as_str();
        if (name == "dynamic" || name == "configdynamic")
            && let Some(EditExpr::String(s)) = node.args.iter().next()
        {
            self.found.push((
                s.as_str().to_owned(),
                s.span().or_else(|| node.span()).unwrap_or(0..0),
            ));
        }
        visit::visit_func_call(self, node);
    }
}

fn props(schema: &serde_json::Value) -> Option<&serde_json::Map<String, serde_json::Value>> {
    schema.get("properties")?.as_object()
}

/// A block schema (nested attributes), not a map.
fn is_block(schema: &serde_json::Value) -> bool {
    props(schema).is_some()
}

/// Unknown attributes and blocks (with the closest name), attributes written as blocks and
/// the other way round, and missing required attributes, all reported.
fn check_body(
    body: &Body,
    schema: &serde_json::Value,
    what: &str,
    file: &Source,
    head: std::ops::Range<usize>,
    diags: &mut Diagnostics,
) {
    let Some(fields) = props(schema) else { return };
    let names = || fields.keys().map(String::as_str);
    for s in body {
        let (key, span, block) = match s {
            Structure::Attribute(a) => (a.key.as_str(), a.key.span(), None),
            Structure::Block(b) => (b.ident.as_str(), b.ident.span(), Some(b)),
        };
        let span = span.unwrap_or(0..0);
        let noun = if block.is_some() {
            "block"
        } else {
            "attribute"
        };
        let Some(field) = fields.get(key) else {
            let d = Diagnostic::at(file, span, format!("unknown {noun} `{key}` in {what}"));
            diags.push(match did_you_mean(key, names()) {
                Some(h) => d.with_help(h),
                None if fields.is_empty() => d.with_help("this block takes no attributes"),
                None => d.with_help(format!(
                    "it takes: {}",
                    names().collect::<Vec<_>>().join(", ")
                )),
            });
            continue;
        };
        match block {
            Some(b) if is_block(field) => {
                let inner = format!("`{key}` of {what}");
                let head = b.ident.span().unwrap_or(0..0);
                check_body(&b.body, field, &inner, file, head, diags);
            }
            Some(_) => {
                // A map attribute written as a block: HCL does not accept that either.
                diags.push(
                    Diagnostic::at(
                        file,
                        span,
                        format!("`{key}` is an attribute of {what}, not a block"),
                    )
                    .with_help(format!("write `{key} = ...`")),
                );
            }
            None => {}
        }
    }
    let present = |k: &str| {
        body.iter().any(|s| match s {
            Structure::Attribute(a) => a.key.as_str() == k,
            Structure::Block(b) => b.ident.as_str() == k,
        })
    };
    for r in schema
        .get("required")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
    {
        if !present(r) {
            diags.push(Diagnostic::at(
                file,
                head.clone(),
                format!("{what} needs `{r}`, which is missing"),
            ));
        }
    }
}

/// Whether any value of a declared variable type converts to `schema`'s type (HCL's rules:
/// strings, numbers and bools convert to strings; a string may hold a number or a bool; a
/// list is never a string). The error says what the field expects.
pub(crate) fn type_fits(ty: &VarType, schema: &serde_json::Value) -> Result<(), String> {
    let want = schema.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let items = |t: &VarType, key: &str| {
        schema
            .get(key)
            .filter(|s| s.is_object())
            .is_none_or(|s| type_fits(t, s).is_ok())
    };
    let ok = match (want, ty) {
        ("", _) | (_, VarType::Any) => true,
        ("string", VarType::String | VarType::Number | VarType::Bool)
        | ("number", VarType::String | VarType::Number)
        | ("boolean", VarType::String | VarType::Bool)
        | ("object", VarType::Object(_)) => true,
        ("array", VarType::List(t) | VarType::Set(t)) => items(t, "items"),
        ("array", VarType::Tuple(ts)) => ts.iter().all(|t| items(t, "items")),
        ("object", VarType::Map(t)) => items(t, "additionalProperties"),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(format!("expected {}", describe(schema)))
}

/// "a list of strings", "a map of numbers", "a block", …
fn describe(schema: &serde_json::Value) -> String {
    let inner = |key: &str| schema.get(key).filter(|s| s.get("type").is_some());
    match schema.get("type").and_then(|t| t.as_str()).unwrap_or("") {
        "array" => match inner("items") {
            Some(i) => format!("a list of {}", plural(&describe(i))),
            None => "a list".to_owned(),
        },
        "object" if is_block(schema) => "a block".to_owned(),
        "object" => match inner("additionalProperties") {
            Some(i) => format!("a map of {}", plural(&describe(i))),
            None => "a map".to_owned(),
        },
        "boolean" => "a bool".to_owned(),
        "number" => "a number".to_owned(),
        _ => "a string".to_owned(),
    }
}

fn plural(one: &str) -> String {
    let bare = one.strip_prefix("a ").unwrap_or(one);
    match bare.split_once(' ') {
        Some((head, rest)) => format!("{head}s {rest}"),
        None => format!("{bare}s"),
    }
}

/// Whether `v` converts to the schema's type under HCL's (cty's) conversion rules: numbers and
/// bools convert to strings, numeric strings to numbers, `"true"`/`"false"` to bools. The error
/// says what was found.
pub(crate) fn conforms(v: &Value, schema: &serde_json::Value) -> Result<(), String> {
    let want = schema.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let found = crate::value::type_name(v);
    let ok = match (want, v) {
        ("", _) | (_, Value::Null) => true,
        ("string", Value::String(_) | Value::Number(_) | Value::Bool(_)) => true,
        ("number", Value::Number(_)) => true,
        ("number", Value::String(s)) => s.trim().parse::<f64>().is_ok(),
        ("boolean", Value::Bool(_)) => true,
        ("boolean", Value::String(s)) => s == "true" || s == "false",
        ("array", Value::Array(items)) => {
            if let Some(item) = schema.get("items") {
                for (i, x) in items.iter().enumerate() {
                    conforms(x, item).map_err(|e| format!("element {i}: {e}"))?;
                }
            }
            true
        }
        ("object", Value::Object(m)) => {
            if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, x) in m {
                    conforms(x, values).map_err(|e| format!("`{k}`: {e}"))?;
                }
            }
            true
        }
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let want = match want {
        "array" => "a list",
        "object" if is_block(schema) => "a block",
        "object" => "a map",
        "boolean" => "a bool",
        "number" => "a number",
        _ => "a string",
    };
    Err(match v {
        Value::String(s) => format!("expected {want}, found the string {s:?}"),
        _ => format!("expected {want}, found {found}"),
    })
}
