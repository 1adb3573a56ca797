//! A plugin's config shape from `ConfigStruct` (a `protostructure.Struct`: a Go struct with
//! `hcl:"…"` tags), and the `use` body decoded into it: HCL attribute names in, JSON keyed by
//! the Go field names out (what `Configure` takes), with the same diagnostics a native plugin's
//! config gets (unknown attributes with a suggestion, missing required ones, wrong types).

use wayline_plugin::{ConfigError, ConfigErrors, Docs, FieldDoc};

use crate::pb::protostructure as ps;
use crate::pb::sdk::config::Documentation;

/// Deepest nesting of structs accepted from a plugin (protostructure has no cycles, but the
/// message comes over the wire).
const MAX_DEPTH: usize = 16;

/// Go's `reflect.Kind` numbers that protostructure sends.
mod kind {
    pub(super) const BOOL: u32 = 1;
    pub(super) const INT: std::ops::RangeInclusive<u32> = 2..=6;
    pub(super) const UINT: std::ops::RangeInclusive<u32> = 7..=12;
    pub(super) const FLOAT: std::ops::RangeInclusive<u32> = 13..=14;
    pub(super) const ARRAY: u32 = 17;
    pub(super) const INTERFACE: u32 = 20;
    pub(super) const MAP: u32 = 21;
    pub(super) const PTR: u32 = 22;
    pub(super) const SLICE: u32 = 23;
    pub(super) const STRING: u32 = 24;
}

/// A Go type, as far as config decoding cares.
#[derive(Debug, Clone, PartialEq)]
pub enum GoType {
    /// `bool`
    Bool,
    /// Any signed integer.
    Int,
    /// Any unsigned integer.
    Uint,
    /// `float32`/`float64`.
    Float,
    /// `string`
    String,
    /// `interface{}`: any value.
    Any,
    /// `map[string]T`
    Map(Box<GoType>),
    /// `[]T` or `[N]T`
    List(Box<GoType>),
    /// `*T`: optional.
    Ptr(Box<GoType>),
    /// A nested struct (a block).
    Struct(Shape),
}

/// How a field appears in HCL (`hcl:"name,<kind>"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// `attr` (required) or `optional`.
    Attr,
    /// `block`.
    Block,
    /// `label` or `remain`: not set from the body's attributes.
    Other,
}

/// One config field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The Go field name (the key in `Configure`'s JSON).
    pub go_name: String,
    /// The HCL name.
    pub hcl_name: String,
    /// Attribute, block or other.
    pub kind: FieldKind,
    /// Must be set.
    pub required: bool,
    /// Its type.
    pub ty: GoType,
}

/// A config struct.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Fields with an `hcl` tag, in declaration order.
    pub fields: Vec<Field>,
}

/// `hcl:"name,kind"` from a Go struct tag.
fn hcl_tag(tag: &str) -> Option<(String, String)> {
    let start = tag.find("hcl:\"")? + 5;
    let rest = &tag[start..];
    let v = &rest[..rest.find('"')?];
    let (name, kind) = v.split_once(',').unwrap_or((v, "attr"));
    Some((name.to_owned(), kind.to_owned()))
}

fn go_type(t: Option<&ps::Type>, depth: usize) -> Result<GoType, String> {
    if depth > MAX_DEPTH {
        return Err(format!("config struct nested deeper than {MAX_DEPTH}"));
    }
    let t = t
        .and_then(|t| t.r#type.as_ref())
        .ok_or("a field without a type")?;
    Ok(match t {
        ps::r#type::Type::Primitive(p) => match p.kind {
            kind::BOOL => GoType::Bool,
            k if kind::INT.contains(&k) => GoType::Int,
            k if kind::UINT.contains(&k) => GoType::Uint,
            k if kind::FLOAT.contains(&k) => GoType::Float,
            kind::STRING => GoType::String,
            kind::INTERFACE => GoType::Any,
            k => return Err(format!("unsupported Go kind {k}")),
        },
        ps::r#type::Type::Container(c) => {
            let elem = Box::new(go_type(c.elem.as_deref(), depth + 1)?);
            match c.kind {
                kind::MAP => GoType::Map(elem),
                kind::PTR => GoType::Ptr(elem),
                kind::SLICE | kind::ARRAY => GoType::List(elem),
                k => return Err(format!("unsupported Go container kind {k}")),
            }
        }
        ps::r#type::Type::Struct(s) => GoType::Struct(shape_at(s, depth + 1)?),
    })
}

fn shape_at(s: &ps::Struct, depth: usize) -> Result<Shape, String> {
    let mut fields = Vec::new();
    for f in &s.fields {
        let Some((hcl_name, k)) = hcl_tag(&f.tag) else {
            continue;
        };
        let ty =
            go_type(f.r#type.as_ref(), depth).map_err(|e| format!("field `{}`: {e}", f.name))?;
        let kind = match k.as_str() {
            "attr" | "optional" => FieldKind::Attr,
            "block" => FieldKind::Block,
            _ => FieldKind::Other,
        };
        let required = match kind {
            FieldKind::Attr => k == "attr",
            // gohcl: a block field that is not a pointer or a slice must appear once.
            FieldKind::Block => matches!(ty, GoType::Struct(_)),
            FieldKind::Other => false,
        };
        fields.push(Field {
            go_name: f.name.clone(),
            hcl_name,
            kind,
            required,
            ty,
        });
    }
    Ok(Shape { fields })
}

impl Shape {
    /// The shape of a `ConfigStruct` answer.
    pub fn from_proto(s: &ps::Struct) -> Result<Self, String> {
        shape_at(s, 0)
    }

    /// Decodes a `use` body (JSON keyed by HCL names) into `Configure`'s JSON (keyed by Go
    /// field names), collecting every error with its path.
    pub fn decode(&self, body: &serde_json::Value) -> Result<serde_json::Value, ConfigErrors> {
        let mut errs = ConfigErrors(Vec::new());
        let empty = serde_json::Value::Object(serde_json::Map::new());
        let body = if body.is_null() { &empty } else { body };
        let out = self.decode_at(body, "", &mut errs);
        if errs.0.is_empty() {
            Ok(out)
        } else {
            Err(errs)
        }
    }

    fn decode_at(
        &self,
        body: &serde_json::Value,
        path: &str,
        errs: &mut ConfigErrors,
    ) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        let Some(obj) = body.as_object() else {
            errs.0.push(ConfigError::new(
                path,
                format!("invalid type: {}, expected a block", found(body)),
            ));
            return serde_json::Value::Object(out);
        };
        let settable = || self.fields.iter().filter(|f| f.kind != FieldKind::Other);
        for (k, v) in obj {
            let p = join(path, k);
            let Some(f) = settable().find(|f| &f.hcl_name == k) else {
                let known: Vec<&str> = settable().map(|f| f.hcl_name.as_str()).collect();
                errs.0.push(ConfigError::new(p, unknown(k, &known)));
                continue;
            };
            out.insert(f.go_name.clone(), convert(&f.ty, v, &p, errs));
        }
        for f in settable().filter(|f| f.required && !obj.contains_key(&f.hcl_name)) {
            errs.0.push(ConfigError::new(
                path,
                format!("missing field `{}`", f.hcl_name),
            ));
        }
        serde_json::Value::Object(out)
    }

    /// JSON Schema of the body, the form `validate` checks `use` bodies against
    /// (`wayline_plugin::Docs::config_schema`); descriptions from the plugin's docs.
    pub fn schema(&self, docs: Option<&Documentation>) -> serde_json::Value {
        let mut props = serde_json::Map::new();
        let mut required = Vec::new();
        for f in self.fields.iter().filter(|f| f.kind != FieldKind::Other) {
            let mut s = type_schema(&f.ty, docs);
            if let Some(d) = docs.and_then(|d| d.fields.get(&f.hcl_name)) {
                s["description"] = d.synopsis.clone().into();
            }
            props.insert(f.hcl_name.clone(), s);
            if f.required {
                required.push(serde_json::Value::from(f.hcl_name.clone()));
            }
        }
        serde_json::json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
    }
}

fn type_schema(t: &GoType, docs: Option<&Documentation>) -> serde_json::Value {
    use serde_json::json;
    match t {
        GoType::Bool => json!({"type": "boolean"}),
        GoType::Int | GoType::Uint | GoType::Float => json!({"type": "number"}),
        GoType::String => json!({"type": "string"}),
        GoType::Any => json!({}),
        GoType::Map(e) => json!({"type": "object", "additionalProperties": type_schema(e, None)}),
        GoType::List(e) => match &**e {
            // A repeated block: its body is checked like the block's.
            GoType::Struct(s) => s.schema(docs),
            e => json!({"type": "array", "items": type_schema(e, None)}),
        },
        GoType::Ptr(e) => type_schema(e, docs),
        GoType::Struct(s) => s.schema(None),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The native decoder's wording (`wayline_plugin::decode_config`).
fn unknown(key: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!("unknown attribute `{key}`; did you mean `{k}`?"),
        None if known.is_empty() => format!("unknown attribute `{key}`; this block takes none"),
        None => format!("unknown attribute `{key}` (known: {})", known.join(", ")),
    }
}

fn found(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => format!("boolean `{b}`"),
        serde_json::Value::Number(n) => format!("number {n}"),
        serde_json::Value::String(s) => format!("string {s:?}"),
        serde_json::Value::Array(_) => "a list".into(),
        serde_json::Value::Object(_) => "a map".into(),
    }
}

/// Converts one value under HCL's (cty's) rules: numbers and bools to strings, numeric strings
/// to numbers, `"true"`/`"false"` to bools.
fn convert(
    t: &GoType,
    v: &serde_json::Value,
    path: &str,
    errs: &mut ConfigErrors,
) -> serde_json::Value {
    use serde_json::Value as J;
    let bad = |errs: &mut ConfigErrors, want: &str| {
        errs.0.push(ConfigError::new(
            path,
            format!("invalid type: {}, expected {want}", found(v)),
        ));
        J::Null
    };
    match (t, v) {
        (_, J::Null) | (GoType::Any, _) => v.clone(),
        (GoType::Ptr(e), _) => convert(e, v, path, errs),
        (GoType::String, J::String(_)) => v.clone(),
        (GoType::String, J::Number(n)) => J::String(n.to_string()),
        (GoType::String, J::Bool(b)) => J::String(b.to_string()),
        (GoType::String, _) => bad(errs, "a string"),
        (GoType::Bool, J::Bool(_)) => v.clone(),
        (GoType::Bool, J::String(s)) if s == "true" || s == "false" => J::Bool(s == "true"),
        (GoType::Bool, _) => bad(errs, "a boolean"),
        (GoType::Int | GoType::Uint | GoType::Float, _) => number(t, v).unwrap_or_else(|| {
            bad(
                errs,
                match t {
                    GoType::Int => "an integer",
                    GoType::Uint => "a non-negative integer",
                    _ => "a number",
                },
            )
        }),
        (GoType::Map(e), J::Object(m)) => J::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), convert(e, x, &join(path, k), errs)))
                .collect(),
        ),
        (GoType::Map(_), _) => bad(errs, "a map"),
        (GoType::List(e), J::Array(items)) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| convert(e, x, &format!("{path}[{i}]"), errs))
                .collect(),
        ),
        // A single block given where a list of blocks is declared.
        (GoType::List(e), J::Object(_)) if matches!(**e, GoType::Struct(_)) => {
            J::Array(vec![convert(e, v, path, errs)])
        }
        (GoType::List(_), _) => bad(errs, "a list"),
        (GoType::Struct(s), _) => s.decode_at(v, path, errs),
    }
}

fn number(t: &GoType, v: &serde_json::Value) -> Option<serde_json::Value> {
    let f = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    match t {
        GoType::Int if f.fract() == 0.0 && f.abs() < 9.0e15 => Some((f as i64).into()),
        GoType::Uint if f.fract() == 0.0 && (0.0..9.0e15).contains(&f) => Some((f as u64).into()),
        GoType::Float => serde_json::Number::from_f64(f).map(serde_json::Value::Number),
        _ => None,
    }
}

/// Wayline docs from the plugin's `Documentation`, fields in the config struct's order.
pub fn docs(d: &Documentation, shape: Option<&Shape>) -> Docs {
    let field = |name: &str, f: &crate::pb::sdk::config::FieldDocumentation| {
        let mut doc = f.synopsis.clone();
        if !f.summary.is_empty() {
            doc = if doc.is_empty() {
                f.summary.clone()
            } else {
                format!("{doc} {}", f.summary)
            };
        }
        FieldDoc {
            name: name.to_owned(),
            r#type: f.r#type.clone(),
            doc,
            required: !f.optional,
            default: Some(f.default.clone()).filter(|d| !d.is_empty()),
            fields: Vec::new(),
        }
    };
    let mut names: Vec<&String> = d.fields.keys().collect();
    let order = |n: &str| {
        shape
            .and_then(|s| s.fields.iter().position(|f| f.hcl_name == n))
            .unwrap_or(usize::MAX)
    };
    names.sort_by(|a, b| order(a).cmp(&order(b)).then(a.cmp(b)));
    let mut template: Vec<(String, String)> = d
        .template_fields
        .iter()
        .map(|(k, f)| (k.clone(), f.synopsis.clone()))
        .collect();
    template.sort();
    Docs {
        description: d.description.clone(),
        example: d.example.clone(),
        fields: names.into_iter().map(|n| field(n, &d.fields[n])).collect(),
        template_fields: template,
    }
}

#[cfg(test)]
mod tests;
