//! `use` bodies: checked in `validate` (references, types against the plugin schema),
//! evaluated to JSON for the plugin, and the stage a workspace and labels select.

use super::*;

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
pub(super) type FieldSpan = (Vec<String>, Range<usize>, Option<Range<usize>>);

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

impl EvalContext<'_> {
    /// Evaluates the attributes of a body that don't need stage values; checks the others'
    /// references.
    pub(super) fn check_use_body(
        &self,
        body: &Body,
        file: &crate::diag::Source,
        stage: Option<StageKind>,
        diags: &mut Diagnostics,
    ) {
        for s in body {
            match s {
                Structure::Attribute(a) => {
                    if let Some(v) = expr::literal_value(&a.value) {
                        // Nothing to look up: no stage values, no variables, no functions.
                        if is_dynamic(&v) {
                            let e = Expr::new(&a.value, file);
                            diags.push(self.error_at(&e, "`dynamic()` may only be used in a variable default or inside `config`"));
                        }
                        continue;
                    }
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
                        self.check_references(&f, file, diags);
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

    /// The references of an expression only a job can evaluate: declared variables, known
    /// names and functions.
    fn check_references(&self, f: &Finder, file: &crate::diag::Source, diags: &mut Diagnostics) {
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
                    None => d.with_help(format!("declare it with `variable \"{key}\" {{}}`")),
                });
            }
        }
        for (n, span) in &f.vars {
            if !self.vars.contains_key(n)
                && !f.bound.contains(n)
                && !matches!(n.as_str(), "artifact" | "deploy" | "entrypoint")
            {
                let d = Diagnostic::at(file, span.clone(), format!("unknown variable `{n}`"));
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
                let d = Diagnostic::at(file, span.clone(), format!("unknown function `{c}`"));
                diags.push(match did_you_mean(c, funcs::names().iter().copied()) {
                    Some(h) => d.with_help(h),
                    None => d,
                });
            }
        }
    }

    /// The type of every attribute of a `use` body against the plugin's schema: evaluated
    /// values with HCL's conversions, and for values only a job knows (`artifact.*`), the kind
    /// of expression (a quoted string is never a list).
    pub(super) fn check_use_types(
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
                        self.check_use_type(u, a, schema, path, diags);
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

    /// One attribute of a `use` body against its field's schema.
    fn check_use_type(
        &self,
        u: &UseBlock,
        a: &hcl::edit::structure::Attribute,
        schema: &serde_json::Value,
        path: &[String],
        diags: &mut Diagnostics,
    ) {
        let at = |msg: String| Diagnostic::at(&u.file, a.value.span().unwrap_or(0..0), msg);
        if let Some(decl) = self.unknown_var_of(&a.value) {
            // Only the job knows the value (`dynamic()`, or the server's): its declared type
            // still has to fit.
            if let Err(m) = crate::plugins::type_fits(&decl.ty, schema) {
                diags.push(at(format!(
                    "`{}` of `use \"{}\"`: {m}, but `var.{}` is declared `{}` (its value is known only when the job runs)",
                    path.join("."),
                    u.plugin,
                    decl.name,
                    decl.ty
                )));
            }
            return;
        }
        let evaluated = match expr::literal_value(&a.value) {
            Some(v) => Ok(v),
            None => self.eval(&Expr::new(&a.value, &u.file), None),
        };
        let value = match evaluated {
            Ok(v) if !contains_dynamic(&v) => Some(v),
            _ => literal_shape(&a.value),
        };
        if let Some(v) = value
            && let Err(m) = crate::plugins::conforms(&v, schema)
        {
            diags.push(at(format!(
                "`{}` of `use \"{}\"`: {m}",
                path.join("."),
                u.plugin
            )));
        }
    }

    /// The declaration of `var.NAME` when the expression is exactly that and only a job knows
    /// its value.
    fn unknown_var_of(&self, e: &EditExpr) -> Option<&VariableDecl> {
        let EditExpr::Traversal(t) = e else {
            return None;
        };
        let EditExpr::Variable(root) = &t.expr else {
            return None;
        };
        let [op] = t.operators.as_slice() else {
            return None;
        };
        let hcl::edit::expr::TraversalOperator::GetAttr(name) = op.value() else {
            return None;
        };
        let name = name.as_str();
        (root.as_str() == "var" && self.unknown_vars.iter().any(|n| n == name))
            .then(|| self.config.variable(name))
            .flatten()
    }

    pub(super) fn command(&self, e: &Expr) -> Result<Vec<String>, Diagnostic> {
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

    pub(super) fn use_to_json(
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

pub(super) fn merge_json(slot: &mut serde_json::Value, value: serde_json::Value) {
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
pub(super) fn literal_shape(e: &EditExpr) -> Option<Value> {
    match e {
        EditExpr::String(_) | EditExpr::StringTemplate(_) | EditExpr::HeredocTemplate(_) => {
            Some(Value::String(String::new()))
        }
        EditExpr::Array(_) => Some(Value::Array(Vec::new())),
        EditExpr::Object(_) => Some(Value::Object(Map::new())),
        _ => None,
    }
}

pub(super) fn contains_dynamic(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key(DYNAMIC_KEY) || o.values().any(contains_dynamic),
        Value::Array(a) => a.iter().any(contains_dynamic),
        _ => false,
    }
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
            use_block: self.use_block.as_ref(),
            labels: self.labels.iter().collect(),
            hooks: self.hooks.iter().collect(),
        };
        let mut apply = |s: &'s Stage| {
            if let Some(u) = &s.use_block {
                eff.use_block = Some(u);
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
        let Some(u) = eff.use_block else {
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
    pub use_block: Option<&'s UseBlock>,
    /// Label expressions, unscoped first.
    pub labels: Vec<&'s Expr>,
    /// Hooks that apply.
    pub hooks: Vec<&'s HookBlock>,
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
