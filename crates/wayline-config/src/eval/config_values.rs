//! The `config {}` stanzas: flattened with every scope kept for the server, with references
//! between values (`config.env.A`, `config.internal.B`) resolved in dependency order and a
//! reference loop reported as one.

use std::collections::BTreeMap;
use std::ops::Range;

use hcl::edit::Span as _;
use hcl::edit::expr::{Expression as EditExpr, ObjectKey, TraversalOperator};
use hcl::edit::visit::{self, Visit};
use hcl::{Map, Value};

use super::EvalContext;
use crate::diag::{Diagnostic, Diagnostics};
use crate::funcs::{DYNAMIC_KEY, is_dynamic};
use crate::schema::*;
use crate::value::to_text;

/// Which `config {}` a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigScope {
    /// The top-level `config`.
    Project,
    /// The app's `config`.
    App,
}

/// A config value: a literal or a `dynamic()` source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigValue {
    /// A literal (non-strings are JSON-encoded).
    Static(String),
    /// Read at runtime by a config sourcer.
    Dynamic {
        /// The sourcer (`vault`, `aws-ssm`, `kubernetes`, ...).
        from: String,
        /// Its settings.
        config: BTreeMap<String, String>,
    },
}

/// One entry of a `config {}` stanza, ready for `SetConfig`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigVarDef {
    /// Env var name, internal name, or file path.
    pub name: String,
    /// The value.
    pub value: ConfigValue,
    /// From `internal = {}`.
    pub internal: bool,
    /// From `file = {}` (`name` is a path).
    pub file: bool,
    /// Set inside `workspace "<name>" {}`.
    pub workspace: Option<String>,
    /// Set inside `label "<selector>" {}`.
    pub label_selector: Option<String>,
    /// Project or app.
    pub scope: ConfigScope,
    /// Set inside `runner {}`: for runners, never exposed to apps.
    pub runner: bool,
}

/// Where a stanza sits: which `config`, which scopes.
#[derive(Clone, Copy)]
struct Place<'a> {
    scope: ConfigScope,
    workspace: Option<&'a str>,
    selector: Option<&'a str>,
    runner: bool,
}

/// `env` or `internal`: the two maps other values may refer to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Env,
    Internal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Env => "env",
            Kind::Internal => "internal",
        }
    }
}

/// One value of an unscoped `env`/`internal` map literal, not yet evaluated.
struct Pending<'c> {
    kind: Kind,
    key: String,
    expr: &'c EditExpr,
    at: &'c Expr,
}

/// The `config.env.X` / `config.internal.X` references of an expression.
#[derive(Default)]
struct ConfigRefs(Vec<(Kind, String)>);

impl Visit for ConfigRefs {
    fn visit_traversal(&mut self, node: &hcl::edit::expr::Traversal) {
        if matches!(&node.expr, EditExpr::Variable(v) if v.as_str() == "config") {
            let mut ops = node.operators.iter().map(|o| o.value());
            let kind = match ops.next() {
                Some(TraversalOperator::GetAttr(a)) if a.as_str() == "env" => Some(Kind::Env),
                Some(TraversalOperator::GetAttr(a)) if a.as_str() == "internal" => {
                    Some(Kind::Internal)
                }
                _ => None,
            };
            let key = match ops.next() {
                Some(TraversalOperator::GetAttr(a)) => Some(a.as_str().to_owned()),
                Some(TraversalOperator::Index(EditExpr::String(s))) => Some(s.as_str().to_owned()),
                _ => None,
            };
            if let (Some(kind), Some(key)) = (kind, key) {
                self.0.push((kind, key));
            }
        }
        visit::visit_traversal(self, node);
    }
}

impl<'c> EvalContext<'c> {
    /// The flattened `config {}` stanzas (project, then app), every scope kept, for
    /// `wayline config sync` and for the server to resolve per deployment.
    pub fn config_vars(&self) -> Result<Vec<ConfigVarDef>, Diagnostics> {
        let mut diags = Diagnostics::new();
        let mut out = Vec::new();
        let extra = self.config_scope(&mut diags);
        if diags.has_errors() {
            return Err(diags);
        }
        for (scope, b) in self.config_blocks() {
            let at = Place {
                scope,
                workspace: None,
                selector: None,
                runner: false,
            };
            self.flatten_config(b, at, &extra, &mut out, &mut diags);
        }
        diags.into_result(out)
    }

    /// Checks an app's own `config` (validation checks the project's through the base context).
    pub(super) fn check_app_config(&self, c: &ConfigBlock, diags: &mut Diagnostics) {
        let extra = self.config_scope(diags);
        let at = Place {
            scope: ConfigScope::App,
            workspace: None,
            selector: None,
            runner: false,
        };
        self.flatten_config(c, at, &extra, &mut Vec::new(), diags);
    }

    fn config_blocks(&self) -> Vec<(ConfigScope, &'c ConfigBlock)> {
        [
            self.config
                .config
                .as_ref()
                .map(|c| (ConfigScope::Project, c)),
            self.app
                .and_then(|a| a.config.as_ref())
                .map(|c| (ConfigScope::App, c)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// `config.env.*` and `config.internal.*`: the unscoped values of the project and app
    /// stanzas, each evaluated once the values it refers to are (dynamic ones stay
    /// `${config.env.NAME}` for the entrypoint to resolve). A loop is reported at each value
    /// on it.
    fn config_scope(&self, diags: &mut Diagnostics) -> Map<String, Value> {
        let mut done: BTreeMap<Kind, Map<String, Value>> = BTreeMap::new();
        let mut pending: Vec<Pending<'c>> = Vec::new();
        for (_, b) in self.config_blocks() {
            for (kind, e) in [(Kind::Env, &b.env), (Kind::Internal, &b.internal)] {
                let Some(e) = e else { continue };
                match &*e.expr {
                    EditExpr::Object(o) => {
                        for (k, v) in o {
                            let key = match k {
                                ObjectKey::Ident(i) => i.as_str().to_owned(),
                                ObjectKey::Expression(EditExpr::String(s)) => s.as_str().to_owned(),
                                // Computed keys are evaluated with the whole map later.
                                ObjectKey::Expression(_) => continue,
                            };
                            pending.push(Pending {
                                kind,
                                key,
                                expr: v.expr(),
                                at: e,
                            });
                        }
                    }
                    // A map built by a function or variable cannot refer to its own values.
                    _ => {
                        if let Ok(Value::Object(m)) = self.eval(e, None) {
                            for (k, v) in m {
                                let shown = shown(kind, &k, &v);
                                done.entry(kind).or_default().insert(k, shown);
                            }
                        }
                    }
                }
            }
        }
        let deps: Vec<Vec<(Kind, String)>> = pending
            .iter()
            .map(|p| {
                let mut r = ConfigRefs::default();
                r.visit_expr(p.expr);
                r.0
            })
            .collect();
        let mut left: Vec<usize> = (0..pending.len()).collect();
        // Each pass settles at least one value, or stops: at most `pending.len()` passes.
        while !left.is_empty() {
            let before = left.len();
            left.retain(|&i| {
                let waiting = deps[i].iter().any(|(k, key)| {
                    !done.get(k).is_some_and(|m| m.contains_key(key))
                        && pending.iter().any(|p| p.kind == *k && p.key == *key)
                });
                if waiting {
                    return true;
                }
                let p = &pending[i];
                let scope = scope_of(&done);
                let e = Expr::new(p.expr, &p.at.file);
                // Errors are reported when the whole map is evaluated.
                if let Ok(v) = self.eval(&e, Some(&scope)) {
                    let shown = shown(p.kind, &p.key, &v);
                    done.entry(p.kind).or_default().insert(p.key.clone(), shown);
                }
                false
            });
            if left.len() == before {
                break;
            }
        }
        for &i in &left {
            let p = &pending[i];
            let cycle = find_loop(&pending, &deps, i);
            let span: Range<usize> = p.expr.span().unwrap_or_else(|| p.at.span.clone());
            diags.push(Diagnostic::at(
                &p.at.file,
                span,
                format!("reference loop in `config`: {}", cycle.join(" -> ")),
            ));
        }
        // A value on a loop has been reported: an empty stand-in keeps the maps that hold it
        // from adding "`config` has no attribute" for each of its references.
        for &i in &left {
            let p = &pending[i];
            done.entry(p.kind)
                .or_default()
                .insert(p.key.clone(), Value::String(String::new()));
        }
        scope_of(&done)
    }

    /// `file_change_signal` of the app (or project) config.
    pub fn file_change_signal(&self) -> Option<String> {
        let app = self
            .app
            .and_then(|a| a.config.as_ref())
            .and_then(|c| c.file_change_signal.as_ref());
        let e = app.or_else(|| {
            self.config
                .config
                .as_ref()
                .and_then(|c| c.file_change_signal.as_ref())
        })?;
        self.eval(e, None).ok().map(|v| to_text(&v))
    }

    fn flatten_config(
        &self,
        b: &ConfigBlock,
        at: Place<'_>,
        extra: &Map<String, Value>,
        out: &mut Vec<ConfigVarDef>,
        diags: &mut Diagnostics,
    ) {
        for (e, internal, file) in [
            (&b.env, false, false),
            (&b.internal, true, false),
            (&b.file, false, true),
        ] {
            let Some(e) = e else { continue };
            let m = match self.eval(e, Some(extra)) {
                Ok(Value::Object(m)) => m,
                Ok(other) => {
                    diags.push(self.error_at(
                        e,
                        format!("expected a map, found {}", crate::value::type_name(&other)),
                    ));
                    continue;
                }
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            for (name, v) in m {
                out.push(ConfigVarDef {
                    name,
                    value: config_value(&v),
                    internal,
                    file,
                    workspace: at.workspace.map(str::to_owned),
                    label_selector: at.selector.map(str::to_owned),
                    scope: at.scope,
                    runner: at.runner,
                });
            }
        }
        for (ws, inner) in &b.workspaces {
            let place = Place {
                workspace: Some(ws),
                ..at
            };
            self.flatten_config(inner, place, extra, out, diags);
        }
        for (ls, inner) in &b.labels {
            let place = Place {
                selector: Some(&ls.source),
                ..at
            };
            self.flatten_config(inner, place, extra, out, diags);
        }
        if let Some(r) = &b.runner {
            let place = Place { runner: true, ..at };
            self.flatten_config(r, place, extra, out, diags);
        }
    }
}

/// A static value, or a `dynamic()` source.
fn config_value(v: &Value) -> ConfigValue {
    if let Value::Object(o) = v
        && let Some(Value::Object(d)) = o.get(DYNAMIC_KEY)
    {
        let from = d.get("from").map(to_text).unwrap_or_default();
        let config = match d.get("config") {
            Some(Value::Object(c)) => c.iter().map(|(k, v)| (k.clone(), to_text(v))).collect(),
            _ => BTreeMap::new(),
        };
        return ConfigValue::Dynamic { from, config };
    }
    ConfigValue::Static(to_text(v))
}

/// How another value sees this one: its text, or for a dynamic value the reference the
/// entrypoint resolves.
fn shown(kind: Kind, key: &str, v: &Value) -> Value {
    if is_dynamic(v) {
        Value::String(format!("${{config.{}.{key}}}", kind.as_str()))
    } else {
        Value::String(to_text(v))
    }
}

/// `{"config": {"env": {...}, "internal": {...}}}`.
fn scope_of(done: &BTreeMap<Kind, Map<String, Value>>) -> Map<String, Value> {
    let mut config = Map::new();
    for kind in [Kind::Env, Kind::Internal] {
        config.insert(
            kind.as_str().to_owned(),
            Value::Object(done.get(&kind).cloned().unwrap_or_default()),
        );
    }
    let mut m = Map::new();
    m.insert("config".to_owned(), Value::Object(config));
    m
}

/// The loop through value `start`: `config.env.A -> config.env.B -> config.env.A`.
fn find_loop(pending: &[Pending<'_>], deps: &[Vec<(Kind, String)>], start: usize) -> Vec<String> {
    let name = |i: usize| format!("config.{}.{}", pending[i].kind.as_str(), pending[i].key);
    let index = |k: Kind, key: &str| pending.iter().position(|p| p.kind == k && p.key == key);
    let mut path = vec![start];
    let mut cur = start;
    for _ in 0..pending.len() {
        let Some(next) = deps[cur].iter().find_map(|(k, key)| index(*k, key)) else {
            break;
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut names: Vec<String> = path[pos..].iter().map(|&i| name(i)).collect();
            names.push(name(next));
            return names;
        }
        path.push(next);
        cur = next;
    }
    path.into_iter().map(name).collect()
}
