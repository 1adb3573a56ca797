//! Decoding the parsed HCL body into [`Config`], collecting every schema error.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::expr::Expression as EditExpr;
use hcl::edit::structure::{Attribute, Block, Body, Structure};

use crate::diag::{Diagnostic, Diagnostics, Source, did_you_mean};
use crate::schema::*;

/// The step kinds a pipeline `use` may name.
const STEP_USES: &[&str] = &["build", "deploy", "release", "up", "exec", "pipeline"];

pub(crate) struct Decoder<'a> {
    pub(crate) file: &'a Source,
    pub(crate) diags: &'a mut Diagnostics,
    /// The workspace `workspace.name` means in `project` and variable defaults.
    pub(crate) workspace: String,
    /// `path.project` at load time.
    pub(crate) project_dir: std::path::PathBuf,
}

fn span_of(s: &impl Span) -> Range<usize> {
    s.span().unwrap_or(0..0)
}

/// A block's label spans or, without labels, the identifier span.
fn block_head_span(b: &Block) -> Range<usize> {
    b.labels.first().map_or_else(|| span_of(&b.ident), span_of)
}

impl Decoder<'_> {
    fn error(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::at(self.file, span, msg));
    }

    fn error_help(&mut self, span: Range<usize>, msg: impl Into<String>, help: Option<String>) {
        let mut d = Diagnostic::at(self.file, span, msg);
        d.help = help;
        self.diags.push(d);
    }

    /// Reports unknown, misplaced and duplicate attributes and blocks, and wrong label counts.
    fn check(&mut self, body: &Body, ctx: &str, attrs: &[&str], blocks: &[(&str, usize)]) {
        let mut seen: HashMap<&str, Range<usize>> = HashMap::new();
        let inn = if ctx == "the top level" {
            "at the top level".to_owned()
        } else {
            format!("in {ctx}")
        };
        let names = || attrs.iter().copied().chain(blocks.iter().map(|(b, _)| *b));
        for s in body {
            match s {
                Structure::Attribute(a) => {
                    let key = a.key.as_str();
                    let span = span_of(&a.key);
                    if attrs.contains(&key) {
                        if let Some(first) = seen.get(key) {
                            let line = self.file.location(first.clone()).line;
                            self.error(
                                span,
                                format!("attribute `{key}` is set twice {inn}; the first is on line {line}"),
                            );
                        } else {
                            seen.insert(key, span);
                        }
                    } else if blocks.iter().any(|(b, _)| *b == key) {
                        self.error_help(
                            span,
                            format!("`{key}` is a block {inn}, not an attribute"),
                            Some(format!("write `{key} {{ ... }}`")),
                        );
                    } else {
                        let help = did_you_mean(key, names()).or_else(|| {
                            // In a stage, a stray attribute is usually a plugin setting.
                            (ctx.starts_with('`') && ctx.contains("` of app ")).then(|| {
                                format!("plugin settings go inside the `use` block: `use \"<plugin>\" {{ {key} = ... }}`")
                            })
                        });
                        self.error_help(span, format!("unknown attribute `{key}` {inn}"), help);
                    }
                }
                Structure::Block(b) => {
                    let key = b.ident.as_str();
                    let span = span_of(&b.ident);
                    if let Some((_, want)) = blocks.iter().find(|(n, _)| *n == key) {
                        if b.labels.len() != *want {
                            let msg = match want {
                                0 => format!(
                                    "block `{key}` takes no labels, found {}",
                                    b.labels.len()
                                ),
                                1 => format!(
                                    "block `{key}` needs exactly one label (a name), found {}",
                                    b.labels.len()
                                ),
                                n => format!(
                                    "block `{key}` needs {n} labels, found {}",
                                    b.labels.len()
                                ),
                            };
                            self.error(span, msg);
                        }
                    } else if attrs.contains(&key) {
                        self.error_help(
                            span,
                            format!("`{key}` is an attribute {inn}, not a block"),
                            Some(format!("write `{key} = ...`")),
                        );
                    } else {
                        let help = did_you_mean(key, names());
                        self.error_help(span, format!("unknown block `{key}` {inn}"), help);
                    }
                }
            }
        }
    }

    fn expr(&self, body: &Body, name: &str) -> Option<Expr> {
        body.get_attribute(name)
            .map(|a| Expr::new(&a.value, self.file))
    }

    fn literal_string(&mut self, body: &Body, name: &str, ctx: &str) -> Option<String> {
        let a = body.get_attribute(name)?;
        if let EditExpr::String(s) = &a.value {
            Some(s.as_str().to_owned())
        } else {
            self.error(
                span_of(&a.value),
                format!("`{name}` in {ctx} must be a literal string"),
            );
            None
        }
    }

    fn literal_bool(&mut self, body: &Body, name: &str, ctx: &str) -> Option<bool> {
        let a = body.get_attribute(name)?;
        if let EditExpr::Bool(b) = &a.value {
            Some(*b.value())
        } else {
            self.error(
                span_of(&a.value),
                format!("`{name}` in {ctx} must be `true` or `false`"),
            );
            None
        }
    }

    fn literal_string_list(&mut self, a: &Attribute, ctx: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let EditExpr::Array(arr) = &a.value {
            for item in arr {
                if let EditExpr::String(s) = item {
                    out.push(s.as_str().to_owned());
                } else {
                    self.error(
                        span_of(item),
                        format!("`{}` in {ctx} must list literal strings", a.key.as_str()),
                    );
                }
            }
        } else {
            self.error(
                span_of(&a.value),
                format!("`{}` in {ctx} must be a list of strings", a.key.as_str()),
            );
        }
        out
    }

    /// The single block of this kind, reporting repeats.
    fn single<'b>(&mut self, body: &'b Body, name: &'b str, ctx: &str) -> Option<&'b Block> {
        let mut found: Option<&Block> = None;
        for b in body.get_blocks(name) {
            if let Some(first) = found {
                let line = self.file.location(span_of(&first.ident)).line;
                self.error(
                    span_of(&b.ident),
                    format!("block `{name}` appears twice in {ctx}; the first is on line {line}"),
                );
            } else {
                found = Some(b);
            }
        }
        found
    }

    fn label(b: &Block) -> String {
        b.labels
            .first()
            .map(|l| l.as_str().to_owned())
            .unwrap_or_default()
    }

    fn unique_labels<'b>(&mut self, blocks: impl Iterator<Item = &'b Block>, what: &str) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for b in blocks {
            let name = Self::label(b);
            let span = block_head_span(b);
            if let Some(line) = seen.get(&name) {
                self.error(
                    span,
                    format!("{what} \"{name}\" is declared twice; the first is on line {line}"),
                );
            } else {
                seen.insert(name, self.file.location(span).line);
            }
        }
    }

    pub(crate) fn config(
        &mut self,
        body: &Body,
        project_dir: std::path::PathBuf,
    ) -> Option<Config> {
        self.project_dir.clone_from(&project_dir);
        let top = "the top level";
        self.check(
            body,
            top,
            &["project", "labels"],
            &[
                ("variable", 1),
                ("runner", 0),
                ("plugin", 1),
                ("config", 0),
                ("app", 1),
                ("pipeline", 1),
            ],
        );
        let project = match body.get_attribute("project") {
            None => {
                self.diags.push(
                    Diagnostic::at(
                        self.file,
                        0..0,
                        "missing required attribute `project` at the top level",
                    )
                    .with_help("add `project = \"my-project\"` at the top of the file"),
                );
                String::new()
            }
            Some(a) => match &a.value {
                EditExpr::String(s) if s.is_empty() => {
                    self.error(span_of(&a.value), "`project` must not be empty");
                    String::new()
                }
                EditExpr::String(s) => {
                    check_name(self, s.as_str(), span_of(&a.value), "project name");
                    s.as_str().to_owned()
                }
                // Waypoint evaluates `project` with `workspace.name`, `path.*` and functions.
                other => self.project_expr(other),
            },
        };
        self.unique_labels(body.get_blocks("variable"), "variable");
        self.unique_labels(body.get_blocks("app"), "app");
        self.unique_labels(body.get_blocks("pipeline"), "pipeline");
        self.unique_labels(body.get_blocks("plugin"), "plugin");
        let variables = body
            .get_blocks("variable")
            .filter(|b| b.labels.len() == 1)
            .map(|b| self.variable(b))
            .collect();
        let runner = self
            .single(body, "runner", top)
            .map(|b| self.runner(&b.body, "`runner`"));
        let plugins = body
            .get_blocks("plugin")
            .filter(|b| b.labels.len() == 1)
            .map(|b| self.plugin(b))
            .collect();
        let config = self
            .single(body, "config", top)
            .map(|b| self.config_block(&b.body, "the project `config`", true));
        let apps = body
            .get_blocks("app")
            .filter(|b| b.labels.len() == 1)
            .filter_map(|b| self.app(b))
            .collect();
        let pipelines = body
            .get_blocks("pipeline")
            .filter(|b| b.labels.len() == 1)
            .map(|b| self.pipeline(b))
            .collect::<Vec<_>>();
        for p in &pipelines {
            self.check_pipeline_graph(p, body);
        }
        Some(Config {
            file: self.file.clone(),
            project_dir,
            project,
            labels: self.expr(body, "labels"),
            variables,
            runner,
            plugins,
            config,
            apps,
            pipelines,
        })
    }

    /// Evaluates a non-literal `project` (e.g. `"${workspace.name}-api"`, `upper("x")`,
    /// `path.project`) with the workspace this load is for.
    fn project_expr(&mut self, e: &EditExpr) -> String {
        let s = self.scoped_string(e, "project");
        if !s.is_empty() {
            check_name(self, &s, span_of(e), "project name");
        }
        s
    }

    /// A string attribute evaluated at load time with `workspace.name`, `path.project`,
    /// `path.pwd` and functions (`project`, a runner `profile`); empty after an error.
    fn scoped_string(&mut self, e: &EditExpr, what: &str) -> String {
        let span = span_of(e);
        let scope = crate::eval::project_scope(&self.workspace, &self.project_dir);
        match crate::eval::eval_in(e, &scope, &self.project_dir) {
            Ok(hcl::Value::String(s)) if !s.is_empty() => s,
            Ok(hcl::Value::String(_)) => {
                self.error(span, format!("`{what}` evaluates to an empty string"));
                String::new()
            }
            Ok(other) => {
                self.error(
                    span,
                    format!(
                        "`{what}` must be a string, found {}",
                        crate::value::type_name(&other)
                    ),
                );
                String::new()
            }
            Err(err) => {
                let msg = match err.kind() {
                    hcl::eval::ErrorKind::UndefinedVar(v) => format!(
                        "`{what}` may use `workspace.name`, `path.project`, `path.pwd` and functions, not `{v}`"
                    ),
                    other => format!("cannot evaluate `{what}`: {other}"),
                };
                self.error(span, msg);
                String::new()
            }
        }
    }

    fn variable(&mut self, b: &Block) -> VariableDecl {
        let name = Self::label(b);
        let ctx = format!("variable \"{name}\"");
        self.check(
            &b.body,
            &ctx,
            &["default", "type", "description", "env", "sensitive"],
            &[],
        );
        check_name(self, &name, block_head_span(b), "variable name");
        let ty = match b.body.get_attribute("type") {
            None => VarType::Any,
            Some(a) => self.var_type(&a.value).unwrap_or(VarType::Any),
        };
        let env = b
            .body
            .get_attribute("env")
            .map(|a| self.literal_string_list(a, &ctx))
            .unwrap_or_default();
        VariableDecl {
            default: self.expr(&b.body, "default"),
            ty,
            description: self.literal_string(&b.body, "description", &ctx),
            env,
            sensitive: self
                .literal_bool(&b.body, "sensitive", &ctx)
                .unwrap_or(false),
            name_span: block_head_span(b),
            name,
        }
    }

    fn var_type(&mut self, e: &EditExpr) -> Option<VarType> {
        const TYPES: &[&str] = &[
            "string", "number", "bool", "any", "list", "set", "map", "object", "tuple",
        ];
        match e {
            EditExpr::Variable(v) => match v.as_str() {
                "string" => Some(VarType::String),
                "number" => Some(VarType::Number),
                "bool" => Some(VarType::Bool),
                "any" => Some(VarType::Any),
                "list" | "set" | "map" => Some(match v.as_str() {
                    "list" => VarType::List(Box::new(VarType::Any)),
                    "set" => VarType::Set(Box::new(VarType::Any)),
                    _ => VarType::Map(Box::new(VarType::Any)),
                }),
                other => {
                    self.error_help(
                        span_of(e),
                        format!("unknown type `{other}`"),
                        did_you_mean(other, TYPES.iter().copied()),
                    );
                    None
                }
            },
            EditExpr::FuncCall(f) => {
                let name = f.name.name.as_str();
                let args: Vec<&EditExpr> = f.args.iter().collect();
                if args.len() != 1 {
                    self.error(
                        span_of(e),
                        format!("type `{name}(...)` takes exactly one argument"),
                    );
                    return None;
                }
                match name {
                    "list" => Some(VarType::List(Box::new(self.var_type(args[0])?))),
                    "set" => Some(VarType::Set(Box::new(self.var_type(args[0])?))),
                    "map" => Some(VarType::Map(Box::new(self.var_type(args[0])?))),
                    "object" => {
                        let EditExpr::Object(o) = args[0] else {
                            self.error(span_of(args[0]), "`object(...)` takes an object of attribute types, e.g. `object({ name = string })`");
                            return None;
                        };
                        let mut fields = BTreeMap::new();
                        for (k, v) in o {
                            let key = match k {
                                hcl::edit::expr::ObjectKey::Ident(i) => i.as_str().to_owned(),
                                hcl::edit::expr::ObjectKey::Expression(EditExpr::String(s)) => {
                                    s.as_str().to_owned()
                                }
                                hcl::edit::expr::ObjectKey::Expression(other) => {
                                    self.error(
                                        span_of(other),
                                        "object type attribute names must be literal",
                                    );
                                    continue;
                                }
                            };
                            fields.insert(key, self.var_type(v.expr())?);
                        }
                        Some(VarType::Object(fields))
                    }
                    "tuple" => {
                        let EditExpr::Array(items) = args[0] else {
                            self.error(span_of(args[0]), "`tuple(...)` takes a list of element types, e.g. `tuple([string, number])`");
                            return None;
                        };
                        let mut out = Vec::new();
                        for i in items {
                            out.push(self.var_type(i)?);
                        }
                        Some(VarType::Tuple(out))
                    }
                    other => {
                        self.error_help(
                            span_of(e),
                            format!("unknown type constructor `{other}`"),
                            did_you_mean(other, TYPES.iter().copied()),
                        );
                        None
                    }
                }
            }
            _ => {
                self.error(span_of(e), "`type` must be a type such as `string`, `list(string)` or `object({ name = string })`");
                None
            }
        }
    }

    fn runner(&mut self, body: &Body, ctx: &str) -> RunnerBlock {
        self.check(
            body,
            ctx,
            &["enabled", "profile"],
            &[("data_source", 1), ("poll", 0)],
        );
        let data_source = self.single(body, "data_source", ctx).map(|b| {
            let kind = Self::label(b);
            let dctx = format!("data_source \"{kind}\"");
            if !b.labels.is_empty() && kind != "git" && kind != "local" {
                self.error_help(
                    block_head_span(b),
                    format!("unknown data source `{kind}`"),
                    did_you_mean(&kind, ["git", "local"]),
                );
            }
            const GIT: &[&str] = &[
                "url",
                "ref",
                "path",
                "username",
                "password",
                "key",
                "key_password",
                "recurse_submodules",
                "ignore_changes_outside_path",
            ];
            self.check(&b.body, &dctx, GIT, &[]);
            let attrs = GIT
                .iter()
                .filter_map(|k| self.expr(&b.body, k).map(|e| ((*k).to_owned(), e)))
                .collect();
            DataSourceBlock { kind, attrs }
        });
        let poll = self.single(body, "poll", ctx).map(|b| {
            self.check(&b.body, "`poll`", &["enabled", "interval"], &[]);
            let interval = self.literal_string(&b.body, "interval", "`poll`");
            if let (Some(i), Some(a)) = (&interval, b.body.get_attribute("interval"))
                && humantime_like(i).is_none()
            {
                self.error(
                    span_of(&a.value),
                    format!(
                        "`interval` must be a duration such as \"30s\" or \"5m\", found \"{i}\""
                    ),
                );
            }
            PollBlock {
                enabled: self.literal_bool(&b.body, "enabled", "`poll`"),
                interval,
            }
        });
        let profile = body.get_attribute("profile").map(|a| match &a.value {
            EditExpr::String(s) => s.as_str().to_owned(),
            // Like `project`: `"odr-${workspace.name}"` is common.
            other => self.scoped_string(other, "profile"),
        });
        RunnerBlock {
            enabled: self.literal_bool(body, "enabled", ctx),
            profile,
            data_source,
            poll,
        }
    }

    fn plugin(&mut self, b: &Block) -> PluginDecl {
        let name = Self::label(b);
        let ctx = format!("plugin \"{name}\"");
        self.check(&b.body, &ctx, &["checksum"], &[("type", 0)]);
        let mut types = PluginTypes::default();
        if let Some(t) = self.single(&b.body, "type", &ctx) {
            let kinds = ["mapper", "build", "registry", "deploy", "release"];
            self.check(&t.body, "plugin `type`", &kinds, &[]);
            let get = |d: &mut Self, k: &str| {
                d.literal_bool(&t.body, k, "plugin `type`").unwrap_or(false)
            };
            types = PluginTypes {
                mapper: get(self, "mapper"),
                build: get(self, "build"),
                registry: get(self, "registry"),
                deploy: get(self, "deploy"),
                release: get(self, "release"),
            };
        }
        let checksum = self.literal_string(&b.body, "checksum", &ctx);
        if let (Some(c), Some(a)) = (&checksum, b.body.get_attribute("checksum"))
            && (c.len() != 64 || !c.chars().all(|ch| ch.is_ascii_hexdigit()))
        {
            self.error(
                span_of(&a.value),
                "`checksum` must be a SHA-256 hex digest (64 hex characters)",
            );
        }
        PluginDecl {
            name,
            types,
            checksum,
        }
    }

    fn config_block(&mut self, body: &Body, ctx: &str, allow_runner: bool) -> ConfigBlock {
        let mut blocks = vec![("workspace", 1), ("label", 1)];
        if allow_runner {
            blocks.push(("runner", 0));
        }
        self.check(
            body,
            ctx,
            &["env", "internal", "file", "file_change_signal"],
            &blocks,
        );
        for name in ["env", "internal", "file"] {
            if let Some(a) = body.get_attribute(name)
                && !matches!(
                    a.value,
                    EditExpr::Object(_)
                        | EditExpr::FuncCall(_)
                        | EditExpr::Variable(_)
                        | EditExpr::Traversal(_)
                )
            {
                self.error(
                    span_of(&a.value),
                    format!(
                        "`{name}` in {ctx} must be a map, e.g. `{name} = {{ NAME = \"value\" }}`"
                    ),
                );
            }
        }
        let workspaces = body
            .get_blocks("workspace")
            .filter(|b| b.labels.len() == 1)
            .map(|b| {
                let name = Self::label(b);
                (
                    name.clone(),
                    self.config_block(&b.body, &format!("config workspace \"{name}\""), false),
                )
            })
            .collect();
        let labels = body
            .get_blocks("label")
            .filter(|b| b.labels.len() == 1)
            .filter_map(|b| {
                let scope = self.label_scope(b)?;
                let inner = self.config_block(
                    &b.body,
                    &format!("config label \"{}\"", scope.source),
                    false,
                );
                Some((scope, inner))
            })
            .collect();
        let runner = if allow_runner {
            self.single(body, "runner", ctx).map(|b| {
                // `runner {}` has the same shape, with its own workspace/label scopes.
                Box::new(self.config_block(&b.body, "config `runner`", false))
            })
        } else {
            None
        };
        ConfigBlock {
            env: self.expr(body, "env"),
            internal: self.expr(body, "internal"),
            file: self.expr(body, "file"),
            file_change_signal: self.expr(body, "file_change_signal"),
            workspaces,
            labels,
            runner,
        }
    }

    fn label_scope(&mut self, b: &Block) -> Option<LabelScope> {
        let source = Self::label(b);
        match wayline_core::selector::parse(&source) {
            Ok(selector) => Some(LabelScope { source, selector }),
            Err(e) => {
                // Point inside the quoted label: +1 for the opening quote.
                let base = span_of(&b.labels[0]).start + 1;
                let offset = source
                    .char_indices()
                    .nth(e.column - 1)
                    .map_or(source.len(), |(i, _)| i);
                let at = base + offset;
                self.error(at..at + 1, format!("invalid label selector: {}", e.message));
                None
            }
        }
    }

    fn app(&mut self, b: &Block) -> Option<App> {
        let name = Self::label(b);
        let ctx = format!("app \"{name}\"");
        check_name(self, &name, block_head_span(b), "app name");
        self.check(
            &b.body,
            &ctx,
            &["path", "labels"],
            &[
                ("url", 0),
                ("config", 0),
                ("runner", 0),
                ("build", 0),
                ("deploy", 0),
                ("release", 0),
            ],
        );
        let url = self.single(&b.body, "url", &ctx).map(|u| {
            self.check(&u.body, "`url`", &["auto_hostname"], &[]);
            UrlBlock {
                auto_hostname: self.literal_bool(&u.body, "auto_hostname", "`url`"),
            }
        });
        let config = self
            .single(&b.body, "config", &ctx)
            .map(|c| self.config_block(&c.body, &format!("the `config` of app \"{name}\""), true));
        let runner = self
            .single(&b.body, "runner", &ctx)
            .map(|r| self.runner(&r.body, &format!("the `runner` of app \"{name}\"")));
        let build = self.required_stage(b, StageKind::Build, &name);
        let deploy = self.required_stage(b, StageKind::Deploy, &name);
        let release = self
            .single(&b.body, "release", &ctx)
            .map(|r| self.stage(r, StageKind::Release, &name, true));
        Some(App {
            path: self.expr(&b.body, "path"),
            labels: self.expr(&b.body, "labels"),
            url,
            config,
            runner,
            build: build?,
            deploy: deploy?,
            release,
            name_span: block_head_span(b),
            name,
        })
    }

    fn required_stage(&mut self, app: &Block, kind: StageKind, app_name: &str) -> Option<Stage> {
        let key = kind.as_str();
        match self.single(&app.body, key, &format!("app \"{app_name}\"")) {
            Some(b) => Some(self.stage(b, kind, app_name, true)),
            // A misspelt `deplyo {}` was already reported with "did you mean `deploy`?".
            None if app.body.blocks().any(|b| {
                b.ident.as_str() != key && did_you_mean(b.ident.as_str(), [key]).is_some()
            }) =>
            {
                None
            }
            None => {
                self.error_help(
                    block_head_span(app),
                    format!(
                        "app \"{app_name}\" has no `{key}` block; `build` and `deploy` are required"
                    ),
                    Some(format!(
                        "add `{key} {{ use \"<plugin>\" {{}} }}` to the app"
                    )),
                );
                None
            }
        }
    }

    fn stage(&mut self, b: &Block, kind: StageKind, app: &str, top: bool) -> Stage {
        let key = kind.as_str();
        let ctx = format!("`{key}` of app \"{app}\"");
        let mut blocks = vec![("use", 1), ("hook", 0)];
        if top {
            blocks.extend([("workspace", 1), ("label", 1)]);
        }
        if kind == StageKind::Build && top {
            blocks.push(("registry", 0));
        }
        self.check(&b.body, &ctx, &["labels"], &blocks);
        let use_ = self
            .single(&b.body, "use", &ctx)
            .filter(|u| u.labels.len() == 1)
            .map(|u| self.use_block(u));
        if top && use_.is_none() && b.body.get_blocks("use").next().is_none() {
            // Waypoint loads such a file; the operation then says the plugin is missing.
            let d = Diagnostic::at(
                self.file,
                span_of(&b.ident),
                format!("{ctx} has no `use` block; operations that need it will fail"),
            )
            .with_help("say which plugin to use, e.g. `use \"docker\" {}`")
            .warning();
            self.diags.push(d);
        }
        let hooks = b
            .body
            .get_blocks("hook")
            .filter(|h| h.labels.is_empty())
            .filter_map(|h| self.hook(h))
            .collect();
        let registry = if kind == StageKind::Build && top {
            self.single(&b.body, "registry", &ctx)
                .map(|r| Box::new(self.stage(r, StageKind::Registry, app, true)))
        } else {
            None
        };
        let (workspaces, label_scopes) = if top {
            let ws = b
                .body
                .get_blocks("workspace")
                .filter(|w| w.labels.len() == 1)
                .map(|w| (Self::label(w), self.stage(w, kind, app, false)))
                .collect();
            let ls = b
                .body
                .get_blocks("label")
                .filter(|l| l.labels.len() == 1)
                .filter_map(|l| {
                    let scope = self.label_scope(l)?;
                    Some((scope, self.stage(l, kind, app, false)))
                })
                .collect();
            (ws, ls)
        } else {
            (Vec::new(), Vec::new())
        };
        Stage {
            kind,
            use_,
            labels: self.expr(&b.body, "labels"),
            hooks,
            registry,
            workspaces,
            label_scopes,
            span: span_of(&b.ident),
            file: self.file.clone(),
        }
    }

    fn use_block(&self, u: &Block) -> UseBlock {
        UseBlock {
            plugin: Self::label(u),
            body: u.body.clone(),
            span: block_head_span(u),
            file: self.file.clone(),
        }
    }

    fn hook(&mut self, h: &Block) -> Option<HookBlock> {
        self.check(&h.body, "`hook`", &["when", "command", "on_failure"], &[]);
        let when = match self.literal_string(&h.body, "when", "`hook`").as_deref() {
            Some("before") => HookWhen::Before,
            Some("after") => HookWhen::After,
            Some(other) => {
                let span = span_of(&h.body.get_attribute("when")?.value);
                self.error(
                    span,
                    format!("`when` must be \"before\" or \"after\", found \"{other}\""),
                );
                return None;
            }
            None => {
                if h.body.get_attribute("when").is_none() {
                    self.error(
                        span_of(&h.ident),
                        "`hook` needs `when = \"before\"` or `when = \"after\"`",
                    );
                }
                return None;
            }
        };
        let on_failure = match self
            .literal_string(&h.body, "on_failure", "`hook`")
            .as_deref()
        {
            None | Some("fail") => OnFailure::Fail,
            Some("continue") => OnFailure::Continue,
            Some(other) => {
                let span = span_of(&h.body.get_attribute("on_failure")?.value);
                self.error(
                    span,
                    format!("`on_failure` must be \"fail\" or \"continue\", found \"{other}\""),
                );
                OnFailure::Fail
            }
        };
        let command = self.expr(&h.body, "command");
        if command.is_none() {
            self.error(
                span_of(&h.ident),
                "`hook` needs `command = [\"program\", \"arg\"]`",
            );
        }
        Some(HookBlock {
            when,
            command,
            on_failure,
        })
    }

    fn pipeline(&mut self, b: &Block) -> Pipeline {
        let name = Self::label(b);
        let ctx = format!("pipeline \"{name}\"");
        self.check(&b.body, &ctx, &[], &[("step", 1)]);
        self.unique_labels(b.body.get_blocks("step"), "step");
        let mut steps: Vec<Step> = Vec::new();
        for s in b.body.get_blocks("step").filter(|s| s.labels.len() == 1) {
            let sname = Self::label(s);
            let sctx = format!("step \"{sname}\" of pipeline \"{name}\"");
            self.check(
                &s.body,
                &sctx,
                &["depends_on", "image_url", "workspace", "labels"],
                &[("use", 1), ("pipeline", 1)],
            );
            let use_ = self
                .single(&s.body, "use", &sctx)
                .filter(|u| u.labels.len() == 1)
                .map(|u| self.use_block(u));
            let nested = self
                .single(&s.body, "pipeline", &sctx)
                .filter(|p| p.labels.len() == 1)
                .map(|p| self.pipeline(p));
            let kind = match (use_, nested) {
                (Some(u), None) => {
                    if !STEP_USES.contains(&u.plugin.as_str()) {
                        self.error_help(
                            u.span.clone(),
                            format!("unknown step kind `{}`; a step uses one of build, deploy, release, up, exec, pipeline", u.plugin),
                            did_you_mean(&u.plugin, STEP_USES.iter().copied()),
                        );
                    }
                    StepKind::Use(u)
                }
                (None, Some(p)) => StepKind::Pipeline(Box::new(p)),
                (Some(_), Some(_)) => {
                    self.error(
                        span_of(&s.ident),
                        format!("{sctx} has both `use` and `pipeline`; a step does one thing"),
                    );
                    continue;
                }
                (None, None) => {
                    if s.body.get_blocks("use").next().is_none() {
                        self.error_help(
                            block_head_span(s),
                            format!("{sctx} has no `use` block"),
                            Some("add `use \"build\" {}` (or deploy, release, up, exec), or an embedded `pipeline`".to_owned()),
                        );
                    }
                    continue;
                }
            };
            let depends_on = match s.body.get_attribute("depends_on") {
                Some(a) => self.literal_string_list(a, &sctx),
                None => steps
                    .last()
                    .map(|p| vec![p.name.clone()])
                    .unwrap_or_default(),
            };
            steps.push(Step {
                name: sname,
                kind,
                depends_on,
                image_url: self.expr(&s.body, "image_url"),
                workspace: self.expr(&s.body, "workspace"),
                labels: self.expr(&s.body, "labels"),
            });
        }
        if steps.is_empty() && b.body.get_blocks("step").next().is_none() {
            self.error(block_head_span(b), format!("{ctx} has no steps"));
        }
        Pipeline { name, steps }
    }

    /// Unknown `depends_on` targets and dependency cycles.
    fn check_pipeline_graph(&mut self, p: &Pipeline, top: &Body) {
        let Some(block) = top
            .get_blocks("pipeline")
            .find(|b| b.labels.first().is_some_and(|l| l.as_str() == p.name))
        else {
            return;
        };
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        let step_block = |n: &str| {
            block
                .body
                .get_blocks("step")
                .find(|s| s.labels.first().is_some_and(|l| l.as_str() == n))
        };
        for s in &p.steps {
            for d in &s.depends_on {
                if !names.contains(&d.as_str()) {
                    let span = step_block(&s.name)
                        .and_then(|b| b.body.get_attribute("depends_on"))
                        .map_or(0..0, |a| span_of(&a.value));
                    self.error_help(
                        span,
                        format!(
                            "step \"{}\" depends on unknown step \"{d}\" in pipeline \"{}\"",
                            s.name, p.name
                        ),
                        did_you_mean(d, names.iter().copied()),
                    );
                }
            }
        }
        if let Some(cycle) = find_cycle(p) {
            let first = &cycle[0];
            let span = step_block(first).map_or(0..0, block_head_span);
            self.error(
                span,
                format!(
                    "pipeline \"{}\" has a dependency cycle: {}",
                    p.name,
                    cycle.join(" -> ")
                ),
            );
        }
    }
}

/// Names users type on the command line: letters, digits, `-`, `_`, `.`.
fn check_name(d: &mut Decoder<'_>, name: &str, span: Range<usize>, what: &str) {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        d.error(
            span,
            format!("{what} \"{name}\" may only contain letters, digits, `-`, `_` and `.`"),
        );
    }
}

/// A dependency cycle as a list of step names ending with its first element.
pub(crate) fn find_cycle(p: &Pipeline) -> Option<Vec<String>> {
    let idx: HashMap<&str, usize> = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; p.steps.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        p: &Pipeline,
        idx: &HashMap<&str, usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        state[i] = 1;
        stack.push(i);
        for d in &p.steps[i].depends_on {
            let Some(&j) = idx.get(d.as_str()) else {
                continue;
            };
            if state[j] == 1 {
                let pos = stack.iter().position(|&k| k == j).unwrap_or(0);
                let mut names: Vec<String> = stack[pos..]
                    .iter()
                    .map(|&k| p.steps[k].name.clone())
                    .collect();
                names.push(p.steps[j].name.clone());
                return Some(names);
            }
            if state[j] == 0
                && let Some(c) = visit(j, p, idx, state, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    for i in 0..p.steps.len() {
        if state[i] == 0
            && let Some(c) = visit(i, p, &idx, &mut state, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

/// Parses durations like `30s`, `5m`, `1h30m`, `250ms`.
pub(crate) fn humantime_like(s: &str) -> Option<std::time::Duration> {
    let mut total = 0u64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(ms)?)?;
        rest = &rest[unit_len..];
    }
    Some(std::time::Duration::from_millis(total))
}
