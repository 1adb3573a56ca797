//! Decoding the parsed HCL body into [`Config`], collecting every schema error.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::expr::Expression as EditExpr;
use hcl::edit::structure::{Attribute, Block, Body, Structure};

use crate::diag::{Diagnostic, Diagnostics, Source, did_you_mean};
use crate::parse::Part;
use crate::schema::*;

mod blocks;
mod pipelines;
mod stages;
mod url;
mod variables;

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

impl<'a> Decoder<'a> {
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
        let file = self.file;
        self.check_each(body.iter().map(|s| (file, s)), ctx, attrs, blocks);
    }

    /// [`Self::check`] for structures that may come from several parts of a file (the top
    /// level of one parsed in parts), each with its part.
    fn check_each<'s>(
        &mut self,
        structures: impl Iterator<Item = (&'a Source, &'s Structure)>,
        ctx: &str,
        attrs: &[&str],
        blocks: &[(&str, usize)],
    ) {
        let own = self.file;
        let mut seen: HashMap<&str, (&Source, Range<usize>)> = HashMap::new();
        // Only an error needs it: a check of a well-formed body allocates nothing.
        let inn = || {
            if ctx == "the top level" {
                "at the top level".to_owned()
            } else {
                format!("in {ctx}")
            }
        };
        let names = || attrs.iter().copied().chain(blocks.iter().map(|(b, _)| *b));
        for (file, s) in structures {
            // Errors are reported in the structure's own part.
            self.file = file;
            match s {
                Structure::Attribute(a) => {
                    let key = a.key.as_str();
                    let span = span_of(&a.key);
                    if attrs.contains(&key) {
                        if let Some((first_file, first)) = seen.get(key) {
                            let line = first_file.location(first.clone()).line;
                            self.error(
                                span,
                                format!("attribute `{key}` is set twice {}; the first is on line {line}", inn()),
                            );
                        } else {
                            seen.insert(key, (file, span));
                        }
                    } else if blocks.iter().any(|(b, _)| *b == key) {
                        self.error_help(
                            span,
                            format!("`{key}` is a block {}, not an attribute", inn()),
                            Some(format!("write `{key} {{ ... }}`")),
                        );
                    } else {
                        let help = did_you_mean(key, names()).or_else(|| {
                            // In a stage, a stray attribute is usually a plugin setting.
                            (ctx.starts_with('`') && ctx.contains("` of app ")).then(|| {
                                format!("plugin settings go inside the `use` block: `use \"<plugin>\" {{ {key} = ... }}`")
                            })
                        });
                        self.error_help(span, format!("unknown attribute `{key}` {}", inn()), help);
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
                            format!("`{key}` is an attribute {}, not a block", inn()),
                            Some(format!("write `{key} = ...`")),
                        );
                    } else {
                        let help = did_you_mean(key, names());
                        self.error_help(span, format!("unknown block `{key}` {}", inn()), help);
                    }
                }
            }
        }
        self.file = own;
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
        let file = self.file;
        self.single_of(body.get_blocks(name).map(|b| (file, b)), name, ctx)
            .map(|(_, b)| b)
    }

    /// [`Self::single`] among blocks of several parts of a file, each with its part.
    fn single_of<'b>(
        &mut self,
        blocks: impl Iterator<Item = (&'a Source, &'b Block)>,
        name: &str,
        ctx: &str,
    ) -> Option<(&'a Source, &'b Block)> {
        let mut found: Option<(&'a Source, &'b Block)> = None;
        for (file, b) in blocks {
            if let Some((first_file, first)) = found {
                let line = first_file.location(span_of(&first.ident)).line;
                self.diags.push(Diagnostic::at(
                    file,
                    span_of(&b.ident),
                    format!("block `{name}` appears twice in {ctx}; the first is on line {line}"),
                ));
            } else {
                found = Some((file, b));
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

    fn unique_labels<'b>(
        &mut self,
        blocks: impl Iterator<Item = (&'a Source, &'b Block)>,
        what: &str,
    ) {
        let names = blocks.map(|(file, b)| {
            let name = b.labels.first().map_or("", |l| l.as_str());
            (file, name, block_head_span(b))
        });
        self.unique_names(names, what);
    }

    /// Reports each name declared before, with the line of the first.
    fn unique_names<'b>(
        &mut self,
        names: impl Iterator<Item = (&'b Source, &'b str, Range<usize>)>,
        what: &str,
    ) {
        let mut seen: HashMap<&str, (&Source, Range<usize>)> = HashMap::new();
        for (file, name, span) in names {
            if let Some((first_file, first)) = seen.get(name) {
                let line = first_file.location(first.clone()).line;
                self.diags.push(Diagnostic::at(
                    file,
                    span,
                    format!("{what} \"{name}\" is declared twice; the first is on line {line}"),
                ));
            } else {
                seen.insert(name, (file, span));
            }
        }
    }

    /// The whole configuration from the parts of a file (one part unless it was large, see
    /// [`crate::parse`]) with their apps taken out ([`take_apps`]); `whole` is the file itself.
    pub(crate) fn config(
        &mut self,
        parts: &'a [Part],
        apps: Vec<App>,
        whole: &'a Source,
        project_dir: std::path::PathBuf,
    ) -> Option<Config> {
        self.project_dir.clone_from(&project_dir);
        let top = "the top level";
        let structures = || {
            parts
                .iter()
                .flat_map(|p| p.body.iter().map(|s| (&p.file, s)))
        };
        let blocks = move |name: &'static str| {
            structures().filter_map(move |(f, s)| match s {
                Structure::Block(b) if b.ident.as_str() == name => Some((f, b)),
                _ => None,
            })
        };
        let attribute = |name: &str| {
            structures().find_map(|(f, s)| match s {
                Structure::Attribute(a) if a.key.as_str() == name => Some((f, a)),
                _ => None,
            })
        };
        self.check_each(
            structures(),
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
        let project = self.project(attribute("project"), whole);
        let app_names = apps
            .iter()
            .map(|a| (&a.build.file, a.name.as_str(), a.name_span.clone()));
        self.unique_names(app_names, "app");
        for what in ["variable", "pipeline", "plugin"] {
            self.unique_labels(blocks(what), what);
        }
        let one_label = |(_, b): &(&Source, &Block)| b.labels.len() == 1;
        let variables = blocks("variable")
            .filter(one_label)
            .map(|(f, b)| self.in_part(f, |d| d.variable(b)))
            .collect();
        let runner = self
            .single_of(blocks("runner"), "runner", top)
            .map(|(f, b)| self.in_part(f, |d| d.runner(&b.body, "`runner`")));
        let plugins = blocks("plugin")
            .filter(one_label)
            .map(|(f, b)| self.in_part(f, |d| d.plugin(b)))
            .collect();
        let config = self
            .single_of(blocks("config"), "config", top)
            .map(|(f, b)| {
                self.in_part(f, |d| d.config_block(&b.body, "the project `config`", true))
            });
        let pipelines = blocks("pipeline")
            .filter(one_label)
            .map(|(f, b)| {
                self.in_part(f, |d| {
                    let p = d.pipeline(b);
                    d.check_pipeline_graph(&p, b);
                    p
                })
            })
            .collect::<Vec<_>>();
        Some(Config {
            file: whole.clone(),
            project_dir,
            project,
            labels: attribute("labels").map(|(f, a)| Expr::new(&a.value, f)),
            variables,
            runner,
            plugins,
            config,
            apps,
            pipelines,
        })
    }

    /// `project`: a name, or an expression evaluated with the workspace; empty after an error.
    fn project(&mut self, attr: Option<(&'a Source, &Attribute)>, whole: &Source) -> String {
        match attr {
            None => {
                self.diags.push(
                    Diagnostic::at(
                        whole,
                        0..0,
                        "missing required attribute `project` at the top level",
                    )
                    .with_help("add `project = \"my-project\"` at the top of the file"),
                );
                String::new()
            }
            Some((file, a)) => self.in_part(file, |d| match &a.value {
                EditExpr::String(s) if s.is_empty() => {
                    d.error(span_of(&a.value), "`project` must not be empty");
                    String::new()
                }
                EditExpr::String(s) => {
                    check_name(d, s.as_str(), span_of(&a.value), "project name");
                    s.as_str().to_owned()
                }
                // Waypoint evaluates `project` with `workspace.name`, `path.*` and functions.
                other => d.project_expr(other),
            }),
        }
    }

    /// Runs `decode` with diagnostics and spans in part `file`.
    fn in_part<T>(&mut self, file: &'a Source, decode: impl FnOnce(&mut Self) -> T) -> T {
        let own = std::mem::replace(&mut self.file, file);
        let out = decode(self);
        self.file = own;
        out
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
}

/// What [`take_apps`] gathers from the parts of a file.
#[derive(Default)]
pub(crate) struct TakenApps {
    /// Each part without its apps.
    pub(crate) parts: Vec<Part>,
    pub(crate) apps: Vec<App>,
    pub(crate) diags: Diagnostics,
}

impl TakenApps {
    /// `later`'s parts and apps after these.
    pub(crate) fn append(&mut self, mut later: TakenApps) {
        self.parts.append(&mut later.parts);
        self.apps.append(&mut later.apps);
        self.diags.extend(later.diags);
    }
}

/// Decodes the apps of a part of a file into `taken`, and keeps the part without them. Each
/// app's syntax tree is freed as soon as it is decoded, so what follows (the next app's
/// decoding, the next part's parse) reuses that memory instead of asking the kernel for more.
pub(crate) fn take_apps(
    taken: &mut TakenApps,
    part: Part,
    workspace: &str,
    project_dir: &std::path::Path,
) {
    let is_app = |b: &Block| b.ident.as_str() == "app" && b.labels.len() == 1;
    let Part { file, body } = part;
    let mut d = Decoder {
        file: &file,
        diags: &mut taken.diags,
        workspace: workspace.to_owned(),
        project_dir: project_dir.to_path_buf(),
    };
    let mut rest = Body::new();
    for s in body {
        match s {
            Structure::Block(b) if is_app(&b) => taken.apps.extend(d.app(&b)),
            other => rest.push(other),
        }
    }
    taken.parts.push(Part {
        file: file.clone(),
        body: rest,
    });
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
