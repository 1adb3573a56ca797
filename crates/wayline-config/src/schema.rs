//! The decoded structure of `wayline.hcl`: blocks and attributes, with expressions kept
//! unevaluated (evaluation needs a workspace, variables and, for `use` bodies, `artifact.*`).

use std::collections::BTreeMap;
use std::ops::Range;

use hcl::edit::expr::Expression as EditExpr;
use hcl::edit::structure::Body;
use wayline_core::selector::Selector;

use crate::diag::{Location, Source};

/// An unevaluated expression with its place in the file.
#[derive(Debug, Clone)]
pub struct Expr {
    /// Boxed: an `App` holds a dozen optional expressions, mostly absent, and inline each
    /// would take 150 bytes (issue 10: 54,544 apps).
    pub(crate) expr: Box<EditExpr>,
    /// The same expression converted for hcl-rs evaluation, once, when first needed (never
    /// for a literal, which is read directly: issue 10).
    pub(crate) hexpr: std::sync::OnceLock<hcl::Expression>,
    pub(crate) span: Range<usize>,
    pub(crate) file: Source,
}

impl Expr {
    pub(crate) fn new(expr: &EditExpr, file: &Source) -> Expr {
        use hcl::edit::Span as _;
        Expr {
            expr: Box::new(expr.clone()),
            hexpr: std::sync::OnceLock::new(),
            span: expr.span().unwrap_or(0..0),
            file: file.clone(),
        }
    }

    /// Where the expression starts.
    pub fn location(&self) -> Location {
        self.file.location(self.span.clone())
    }

    /// The literal string, when the expression is one (no interpolation).
    pub fn as_literal_str(&self) -> Option<&str> {
        match &*self.expr {
            EditExpr::String(s) => Some(s.as_str()),
            _ => None,
        }
    }
}

/// A whole configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: Source,
    /// Directory holding the file (`path.project`).
    pub project_dir: std::path::PathBuf,
    /// `project = "name"`.
    pub project: String,
    /// Top-level `labels = {}`.
    pub labels: Option<Expr>,
    /// `variable "name" {}` blocks, in file order.
    pub variables: Vec<VariableDecl>,
    /// Top-level `runner {}`.
    pub runner: Option<RunnerBlock>,
    /// `plugin "name" {}` blocks.
    pub plugins: Vec<PluginDecl>,
    /// Project-scoped `config {}`.
    pub config: Option<ConfigBlock>,
    /// `app "name" {}` blocks, in file order.
    pub apps: Vec<App>,
    /// `pipeline "name" {}` blocks, in file order.
    pub pipelines: Vec<Pipeline>,
}

impl Config {
    /// The app with this name.
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The pipeline with this name.
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    /// The declared variable with this name.
    pub fn variable(&self, name: &str) -> Option<&VariableDecl> {
        self.variables.iter().find(|v| v.name == name)
    }
}

/// A declared type of an input variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarType {
    /// `any` (or no `type`): the value is kept as given.
    Any,
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `list(T)`
    List(Box<VarType>),
    /// `set(T)`: a list without duplicates.
    Set(Box<VarType>),
    /// `map(T)`
    Map(Box<VarType>),
    /// `object({a = T, ...})`
    Object(BTreeMap<String, VarType>),
    /// `tuple([T, ...])`
    Tuple(Vec<VarType>),
}

impl std::fmt::Display for VarType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarType::Any => f.write_str("any"),
            VarType::String => f.write_str("string"),
            VarType::Number => f.write_str("number"),
            VarType::Bool => f.write_str("bool"),
            VarType::List(t) => write!(f, "list({t})"),
            VarType::Set(t) => write!(f, "set({t})"),
            VarType::Map(t) => write!(f, "map({t})"),
            VarType::Object(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                write!(f, "object({{{}}})", parts.join(", "))
            }
            VarType::Tuple(items) => {
                let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "tuple([{}])", parts.join(", "))
            }
        }
    }
}

/// `variable "name" { default type description env sensitive }`.
#[derive(Debug, Clone)]
pub struct VariableDecl {
    /// The label.
    pub name: String,
    /// `default`: a literal, or `dynamic(...)`.
    pub default: Option<Expr>,
    /// `type`, `Any` when absent.
    pub ty: VarType,
    /// `description`.
    pub description: Option<String>,
    /// `env = ["NAME"]`: extra environment variables read for the value.
    pub env: Vec<String>,
    /// `sensitive = true`: the value is shown as a salted hash.
    pub sensitive: bool,
    pub(crate) name_span: Range<usize>,
}

/// `runner {}` at the top level or in an app.
#[derive(Debug, Clone, Default)]
pub struct RunnerBlock {
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `profile`: the on-demand runner profile.
    pub profile: Option<String>,
    /// `data_source "git" {}`.
    pub data_source: Option<DataSourceBlock>,
    /// `poll {}`.
    pub poll: Option<PollBlock>,
}

/// `data_source "<type>" { ... }` in `runner`.
#[derive(Debug, Clone, Default)]
pub struct DataSourceBlock {
    /// The label (`git`).
    pub kind: String,
    /// Attributes (`url`, `ref`, `path`, `username`, `password`, `key`, `key_password`,
    /// `recurse_submodules`, `ignore_changes_outside_path`), unevaluated: secrets often come
    /// from variables.
    pub attrs: BTreeMap<String, Expr>,
}

/// `poll { enabled interval }`.
#[derive(Debug, Clone, Default)]
pub struct PollBlock {
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `interval` (e.g. `"30s"`).
    pub interval: Option<String>,
}

/// `plugin "name" { type { ... } checksum }`.
#[derive(Debug, Clone, Default)]
pub struct PluginDecl {
    /// The label.
    pub name: String,
    /// `type { mapper build registry deploy release }`.
    pub types: PluginTypes,
    /// `checksum`: SHA-256 of the plugin binary.
    pub checksum: Option<String>,
}

/// The component kinds a plugin provides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginTypes {
    /// Provides mappers.
    pub mapper: bool,
    /// Provides a builder.
    pub build: bool,
    /// Provides a registry.
    pub registry: bool,
    /// Provides a platform.
    pub deploy: bool,
    /// Provides a release manager.
    pub release: bool,
}

/// A `config {}` stanza (or one of its scopes).
#[derive(Debug, Clone, Default)]
pub struct ConfigBlock {
    /// `env = {}`.
    pub env: Option<Expr>,
    /// `internal = {}`.
    pub internal: Option<Expr>,
    /// `file = { "path" = contents }`.
    pub file: Option<Expr>,
    /// `file_change_signal`.
    pub file_change_signal: Option<Expr>,
    /// `workspace "<name>" {}` scopes.
    pub workspaces: Vec<(String, ConfigBlock)>,
    /// `label "<selector>" {}` scopes.
    pub labels: Vec<(LabelScope, ConfigBlock)>,
    /// `runner {}`: config for runners, never exposed to apps.
    pub runner: Option<Box<ConfigBlock>>,
}

/// A parsed `label "<selector>"` scope.
#[derive(Debug, Clone)]
pub struct LabelScope {
    /// The selector as written.
    pub source: String,
    /// The parsed selector.
    pub selector: Selector,
}

/// `app "name" {}`.
#[derive(Debug, Clone)]
pub struct App {
    /// The label.
    pub name: String,
    /// `path` (relative to the project directory), unevaluated.
    pub path: Option<Expr>,
    /// `labels = {}`.
    pub labels: Option<Expr>,
    /// `url { auto_hostname, health_path, limits {} }`.
    pub url: Option<UrlBlock>,
    /// App-scoped `config {}`.
    pub config: Option<ConfigBlock>,
    /// App `runner {}`.
    pub runner: Option<RunnerBlock>,
    /// `build {}` (with an optional `registry {}`).
    pub build: Stage,
    /// `deploy {}`.
    pub deploy: Stage,
    /// `release {}`.
    pub release: Option<Stage>,
    pub(crate) name_span: Range<usize>,
}

impl App {
    /// Where the app's name label is.
    pub fn location(&self) -> Location {
        self.build.file.location(self.name_span.clone())
    }
}

/// `url { auto_hostname, health_path, limits {} }`.
#[derive(Debug, Clone, Default)]
pub struct UrlBlock {
    /// `auto_hostname`: ask the URL service for a hostname (default true).
    pub auto_hostname: Option<bool>,
    /// `health_path`: what the URL service asks a deployment before releasing it through its
    /// router (e.g. `/up`, which must answer 2xx or 3xx); unset, any HTTP answer to `/` does.
    pub health_path: Option<String>,
    /// `limits { requests_per_second, burst, bandwidth, max_requests }`: this app's limits on
    /// the URL service, each unset one the service's default (`-url-rate-limit`, …).
    pub limits: Option<wayline_core::url::UrlLimits>,
}

/// Which stage a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// `build`
    Build,
    /// `registry` (inside `build`)
    Registry,
    /// `deploy`
    Deploy,
    /// `release`
    Release,
}

impl StageKind {
    /// The block name.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Build => "build",
            StageKind::Registry => "registry",
            StageKind::Deploy => "deploy",
            StageKind::Release => "release",
        }
    }
}

/// A `build`, `registry`, `deploy` or `release` block.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Which one.
    pub kind: StageKind,
    /// `use "<plugin>" {}` (absent only in scoped overrides that change labels or hooks).
    pub use_block: Option<UseBlock>,
    /// `labels = {}`.
    pub labels: Option<Expr>,
    /// `hook {}` blocks, in order.
    pub hooks: Vec<HookBlock>,
    /// `registry {}` (only in `build`).
    pub registry: Option<Box<Stage>>,
    /// `workspace "<name>" {}` overrides.
    pub workspaces: Vec<(String, Stage)>,
    /// `label "<selector>" {}` overrides.
    pub label_scopes: Vec<(LabelScope, Stage)>,
    pub(crate) span: Range<usize>,
    pub(crate) file: Source,
}

/// `use "<plugin>" { ... }`: the body stays unevaluated until the runner has `artifact.*`.
#[derive(Debug, Clone)]
pub struct UseBlock {
    /// The label: which plugin.
    pub plugin: String,
    pub(crate) body: Body,
    pub(crate) span: Range<usize>,
    pub(crate) file: Source,
}

impl UseBlock {
    /// Where the block starts.
    pub fn location(&self) -> Location {
        self.file.location(self.span.clone())
    }
}

/// `hook { when command on_failure }`.
#[derive(Debug, Clone)]
pub struct HookBlock {
    /// `when`: `"before"` or `"after"`.
    pub when: HookWhen,
    /// `command = [argv...]`, unevaluated.
    pub command: Option<Expr>,
    /// `on_failure`: `"fail"` (default) or `"continue"`.
    pub on_failure: OnFailure,
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookWhen {
    /// Before the operation.
    Before,
    /// After the operation.
    After,
}

/// What a failed hook does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Fail the operation.
    #[default]
    Fail,
    /// Carry on.
    Continue,
}

/// `pipeline "name" { step "name" {} ... }`.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The label.
    pub name: String,
    /// Steps, in file order, with `depends_on` filled in.
    pub steps: Vec<Step>,
}

/// What a pipeline step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// `use "build|deploy|release|up|exec" {}`.
    Use(UseBlock),
    /// An embedded `pipeline "name" {}`.
    Pipeline(Box<Pipeline>),
}

/// `step "name" { use ..., depends_on, image_url, workspace, labels }`.
#[derive(Debug, Clone)]
pub struct Step {
    /// The label.
    pub name: String,
    /// The work.
    pub kind: StepKind,
    /// Steps this one waits for; defaults to the previous step.
    pub depends_on: Vec<String>,
    /// `image_url`: OCI image for `exec` steps.
    pub image_url: Option<Expr>,
    /// `workspace`.
    pub workspace: Option<Expr>,
    /// `labels`.
    pub labels: Option<Expr>,
}
