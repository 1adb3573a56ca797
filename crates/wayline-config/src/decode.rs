//! Decoding the parsed HCL body into [`Config`], collecting every schema error.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::expr::Expression as EditExpr;
use hcl::edit::structure::{Attribute, Block, Body, Structure};

use crate::diag::{Diagnostic, Diagnostics, Source, did_you_mean};
use crate::schema::*;

mod blocks;
mod pipelines;
mod stages;
mod url;

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

/// Parses durations like `30s`, `5m`, `1h30m`, `250ms`: humantime's grammar, the one the
/// CLI's flags use too.
pub(crate) fn humantime_like(s: &str) -> Option<std::time::Duration> {
    humantime::parse_duration(s.trim()).ok()
}
