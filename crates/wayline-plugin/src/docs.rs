//! Component documentation and config schema, shown by `wayline plugin docs`.

use serde::{Deserialize, Serialize};

/// The documentation of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Docs {
    /// One paragraph saying what the component does.
    pub description: String,
    /// An example `use` block, in HCL.
    pub example: String,
    /// Config attributes and blocks, in declaration order.
    pub fields: Vec<FieldDoc>,
    /// What the component exports to templates (`artifact.*`, `deploy.*`), name and meaning.
    pub template_fields: Vec<(String, String)>,
}

/// One config attribute (or block, when `fields` is not empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDoc {
    /// The attribute name.
    pub name: String,
    /// Its type: `string`, `bool`, `number`, `list(string)`, `map(string)`, `block`.
    pub r#type: String,
    /// What it means.
    pub doc: String,
    /// Must be set.
    pub required: bool,
    /// The default when not set, as shown to users.
    pub default: Option<String>,
    /// Nested attributes of a block.
    pub fields: Vec<FieldDoc>,
}

impl FieldDoc {
    /// An optional attribute.
    pub fn new(name: &str, ty: &str, doc: &str) -> Self {
        Self {
            name: name.into(),
            r#type: ty.into(),
            doc: doc.into(),
            ..Self::default()
        }
    }

    /// Marks it required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the shown default.
    pub fn default_value(mut self, d: &str) -> Self {
        self.default = Some(d.into());
        self
    }

    /// Makes it a block with nested fields.
    pub fn block(name: &str, doc: &str, fields: Vec<FieldDoc>) -> Self {
        Self {
            name: name.into(),
            r#type: "block".into(),
            doc: doc.into(),
            fields,
            ..Self::default()
        }
    }
}

fn schema_type(ty: &str) -> serde_json::Value {
    use serde_json::json;
    match ty {
        "string" => json!({"type": "string"}),
        "bool" => json!({"type": "boolean"}),
        "number" => json!({"type": "number"}),
        t if t.starts_with("list(") => {
            json!({"type": "array", "items": schema_type(&t[5..t.len() - 1])})
        }
        t if t.starts_with("map(") => {
            json!({"type": "object", "additionalProperties": schema_type(&t[4..t.len() - 1])})
        }
        _ => json!({}),
    }
}

fn fields_schema(fields: &[FieldDoc]) -> serde_json::Value {
    let mut props = serde_json::Map::new();
    let mut required = Vec::new();
    for f in fields {
        let mut s = if f.r#type == "block" {
            fields_schema(&f.fields)
        } else {
            schema_type(&f.r#type)
        };
        s["description"] = f.doc.clone().into();
        props.insert(f.name.clone(), s);
        if f.required {
            required.push(serde_json::Value::from(f.name.clone()));
        }
    }
    serde_json::json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

impl Docs {
    /// The config schema as JSON Schema.
    pub fn config_schema(&self) -> serde_json::Value {
        fields_schema(&self.fields)
    }

    /// Markdown for `wayline plugin docs`.
    pub fn to_markdown(&self, title: &str) -> String {
        use std::fmt::Write;
        let mut s = format!("## {title}\n\n{}\n", self.description);
        if !self.example.is_empty() {
            let _ = write!(s, "\n```hcl\n{}\n```\n", self.example.trim_end());
        }
        fn rows(s: &mut String, prefix: &str, fields: &[FieldDoc]) {
            for f in fields {
                let name = format!("{prefix}{}", f.name);
                let req = if f.required { "yes" } else { "no" };
                let def = f.default.as_deref().unwrap_or("");
                let _ = writeln!(s, "| `{name}` | {} | {req} | {def} | {} |", f.r#type, f.doc);
                rows(s, &format!("{name}."), &f.fields);
            }
        }
        if !self.fields.is_empty() {
            s.push_str(
                "\n| attribute | type | required | default | meaning |\n|---|---|---|---|---|\n",
            );
            rows(&mut s, "", &self.fields);
        }
        if !self.template_fields.is_empty() {
            s.push_str("\nTemplate data:\n\n");
            for (k, v) in &self.template_fields {
                let _ = writeln!(s, "- `{k}`: {v}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_nested_blocks_and_required_fields() {
        let d = Docs {
            fields: vec![
                FieldDoc::new("command", "list(string)", "argv").required(),
                FieldDoc::block(
                    "template",
                    "tpl",
                    vec![FieldDoc::new("path", "string", "p")],
                ),
            ],
            ..Docs::default()
        };
        let s = d.config_schema();
        assert_eq!(s["required"], serde_json::json!(["command"]));
        assert_eq!(s["properties"]["command"]["items"]["type"], "string");
        assert_eq!(
            s["properties"]["template"]["properties"]["path"]["type"],
            "string"
        );
        assert!(
            d.to_markdown("exec")
                .contains("| `template.path` | string | no |  | p |")
        );
    }
}
