//! Value helpers: type names, conversion to declared variable types, JSON bridges.

use hcl::{Map, Value};

use crate::schema::VarType;

/// The HCL name of a value's type, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// A short rendering of a value for error messages.
pub(crate) fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => serde_json::to_string(&to_json(other)).unwrap_or_default(),
    };
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Converts a value to a declared type, the way HCL converts: numbers and bools become strings,
/// strings that spell a number or bool become one, collections convert element-wise.
pub(crate) fn convert(v: Value, ty: &VarType) -> Result<Value, String> {
    convert_at(v, ty, "")
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

fn convert_at(v: Value, ty: &VarType, path: &str) -> Result<Value, String> {
    if v.is_null() || crate::funcs::is_dynamic(&v) {
        return Ok(v);
    }
    let mismatch = |v: &Value, want: &str| {
        Err(format!(
            "expected {want}{}, found {} {}",
            at(path),
            type_name(v),
            short(v)
        ))
    };
    match ty {
        VarType::Any => Ok(v),
        VarType::String => match v {
            Value::String(_) => Ok(v),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            other => mismatch(&other, "a string"),
        },
        VarType::Number => match &v {
            Value::Number(_) => Ok(v),
            Value::String(s) => match parse_number(s.trim()) {
                Some(n) => Ok(Value::Number(n)),
                None => mismatch(&v, "a number"),
            },
            _ => mismatch(&v, "a number"),
        },
        VarType::Bool => match &v {
            Value::Bool(_) => Ok(v),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => mismatch(&v, "a bool"),
        },
        VarType::List(el) | VarType::Set(el) => {
            let Value::Array(items) = v else {
                return mismatch(&v, &format!("a {ty}"));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let c = convert_at(item, el, &format!("{path}[{i}]"))?;
                if matches!(ty, VarType::Set(_)) && out.contains(&c) {
                    continue;
                }
                out.push(c);
            }
            Ok(Value::Array(out))
        }
        VarType::Tuple(els) => {
            let Value::Array(items) = v else {
                return mismatch(&v, &format!("a {ty}"));
            };
            if items.len() != els.len() {
                return Err(format!(
                    "expected a tuple of {} elements{}, found {}",
                    els.len(),
                    at(path),
                    items.len()
                ));
            }
            items
                .into_iter()
                .zip(els)
                .enumerate()
                .map(|(i, (item, t))| convert_at(item, t, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        VarType::Map(el) => {
            let Value::Object(m) = v else {
                return mismatch(&v, &format!("a {ty}"));
            };
            let mut out = Map::new();
            for (k, item) in m {
                let c = convert_at(item, el, &format!("{path}[{k:?}]"))?;
                out.insert(k, c);
            }
            Ok(Value::Object(out))
        }
        VarType::Object(fields) => {
            let Value::Object(mut m) = v else {
                return mismatch(&v, &format!("an {ty}"));
            };
            let mut out = Map::new();
            for (k, t) in fields {
                let item = m.shift_remove(k).unwrap_or(Value::Null);
                if item.is_null() {
                    return Err(format!("attribute `{k}` is required{}", at(path)));
                }
                out.insert(k.clone(), convert_at(item, t, &format!("{path}.{k}"))?);
            }
            if let Some(extra) = m.keys().next() {
                return Err(format!("unexpected attribute `{extra}`{}", at(path)));
            }
            Ok(Value::Object(out))
        }
    }
}

/// Parses a decimal or float literal into an HCL number.
pub(crate) fn parse_number(s: &str) -> Option<hcl::Number> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    s.parse::<f64>().ok().and_then(hcl::Number::from_f64)
}

/// HCL value → JSON.
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                serde_json::Number::from_f64(n.as_f64().unwrap_or(0.0))
                    .map_or(serde_json::Value::Null, Into::into)
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(o) => {
            serde_json::Value::Object(o.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// JSON → HCL value.
pub(crate) fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                n.as_f64()
                    .and_then(hcl::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// A value as config text: strings as-is, everything else as JSON.
pub(crate) fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => serde_json::to_string(&to_json(other)).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_hcl() {
        let num = convert(Value::String("8080".into()), &VarType::Number).unwrap();
        assert_eq!(num, Value::Number(8080.into()));
        assert_eq!(
            convert(Value::Bool(true), &VarType::String).unwrap(),
            Value::String("true".into())
        );
        let err = convert(Value::String("abc".into()), &VarType::Number).unwrap_err();
        assert_eq!(err, "expected a number, found string \"abc\"");
        let list = Value::Array(vec![Value::String("1".into()), Value::String("x".into())]);
        let err = convert(list, &VarType::List(Box::new(VarType::Number))).unwrap_err();
        assert_eq!(err, "expected a number at [1], found string \"x\"");
        let set = Value::Array(vec![Value::String("a".into()), Value::String("a".into())]);
        assert_eq!(
            convert(set, &VarType::Set(Box::new(VarType::String))).unwrap(),
            Value::Array(vec![Value::String("a".into())])
        );
    }
}
