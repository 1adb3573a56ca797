//! Evaluating one expression with only what it refers to, and locating hcl-rs errors (which
//! have no position) in the source.

use super::*;

impl EvalContext<'_> {
    /// Turns an hcl-rs evaluation error (which has no position) into a located diagnostic by
    /// finding the sub-expression it is about.
    pub(super) fn locate(
        &self,
        e: &Expr,
        kind: &ErrorKind,
        extra: Option<&Map<String, Value>>,
    ) -> Diagnostic {
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
}

/// Collects variables, attribute accesses and calls with their spans.
#[derive(Default)]
pub(super) struct Finder {
    pub(super) vars: Vec<(String, Range<usize>)>,
    /// (root variable, attribute, span of the attribute), for every attribute of a traversal
    pub(super) attrs: Vec<(String, String, Range<usize>)>,
    /// The same for the first attribute only (`var.x` of `var.x.y`).
    pub(super) first_attrs: Vec<(String, String, Range<usize>)>,
    pub(super) calls: Vec<(String, Range<usize>)>,
    /// Names bound by `for` expressions (not references to the scope).
    pub(super) bound: Vec<String>,
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
pub(super) fn eval_minimal<'v>(
    expr: &EditExpr,
    converted: Option<&std::sync::OnceLock<hcl::Expression>>,
    lookup: &dyn Fn(&str) -> Option<&'v Value>,
    base_dir: &Path,
) -> Result<Value, hcl::eval::Error> {
    if let Some(v) = literal_value(expr) {
        return Ok(v);
    }
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
        c.get_or_init(|| hcl::Expression::from(expr.clone()))
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

/// The value of an expression made of literals only (strings, numbers, bools, `null`, and
/// lists and maps of them, keyed by names or quoted strings), read straight from the syntax
/// tree: the value hcl-rs's evaluation gives, without converting the expression or making a
/// context. Most attributes are such; `None` for anything else.
pub(crate) fn literal_value(e: &EditExpr) -> Option<Value> {
    use hcl::edit::expr::ObjectKey;
    Some(match e {
        EditExpr::Null(_) => Value::Null,
        EditExpr::Bool(b) => Value::Bool(*b.value()),
        EditExpr::Number(n) => Value::Number(*n.value()),
        EditExpr::String(s) => Value::String(s.as_str().to_owned()),
        EditExpr::Array(a) => Value::Array(a.iter().map(literal_value).collect::<Option<_>>()?),
        EditExpr::Object(o) => {
            let mut m = Map::with_capacity(o.len());
            for (k, v) in o {
                let key = match k {
                    ObjectKey::Ident(i) => i.as_str().to_owned(),
                    ObjectKey::Expression(EditExpr::String(s)) => s.as_str().to_owned(),
                    ObjectKey::Expression(_) => return None,
                };
                m.insert(key, literal_value(v.expr())?);
            }
            Value::Object(m)
        }
        _ => return None,
    })
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
