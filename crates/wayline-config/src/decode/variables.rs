//! Decoding `variable` blocks: defaults, types (`list(string)`, `object({...})`), `env`.

use super::*;

impl Decoder<'_> {
    pub(super) fn variable(&mut self, b: &Block) -> VariableDecl {
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
            // In the whole file, which is what a variable's errors are shown against.
            name_span: self.file.absolute(block_head_span(b)),
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
