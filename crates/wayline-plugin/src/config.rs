//! Decoding a component's config from the JSON of its HCL `use` body.

use serde::de::DeserializeOwned;

use crate::{ConfigError, ConfigErrors};

/// Most unknown attributes reported for one config.
const MAX_UNKNOWN: usize = 32;

/// Most values converted for one config (each costs a decode).
const MAX_CONVERSIONS: usize = 256;

/// HCL's type conversion, as Waypoint applied it when decoding plugin config (cty): numbers
/// and bools become strings where a string is expected, numeric strings numbers, `"true"` and
/// `"false"` bools. From serde's "invalid type: string \"3000\", expected u16": converts the
/// value at `path` when the rules allow; false when they don't (the error stands).
fn convert_at(json: &mut serde_json::Value, path: &str, msg: &str) -> bool {
    let Some(expected) = msg
        .strip_prefix("invalid type: ")
        .and_then(|m| m.rsplit_once(", expected "))
        .map(|(_, e)| e)
    else {
        return false;
    };
    let Some(slot) = value_at(json, path) else {
        return false;
    };
    let wants_string = expected.contains("string") || expected.contains("char");
    let wants_bool = expected.contains("bool");
    let wants_number = [
        "integer", "float", "number", "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32",
        "i64", "isize", "f32", "f64",
    ]
    .iter()
    .any(|n| {
        expected
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == *n)
    });
    let converted = match &*slot {
        serde_json::Value::Number(n) if wants_string => {
            Some(serde_json::Value::String(n.to_string()))
        }
        serde_json::Value::Bool(b) if wants_string => {
            Some(serde_json::Value::String(b.to_string()))
        }
        serde_json::Value::String(s) if wants_bool => match s.as_str() {
            "true" => Some(serde_json::Value::Bool(true)),
            "false" => Some(serde_json::Value::Bool(false)),
            _ => None,
        },
        serde_json::Value::String(s) if wants_number => {
            let t = s.trim();
            t.parse::<u64>()
                .map(serde_json::Value::from)
                .or_else(|_| t.parse::<i64>().map(serde_json::Value::from))
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(serde_json::Value::Number)
                })
        }
        _ => None,
    };
    match converted {
        Some(v) => {
            *slot = v;
            true
        }
        None => false,
    }
}

/// The value at `path` (`a.b[0].c`; empty is the root).
fn value_at<'j>(json: &'j mut serde_json::Value, path: &str) -> Option<&'j mut serde_json::Value> {
    let mut cur = json;
    if path.is_empty() {
        return Some(cur);
    }
    for seg in path.split('.') {
        let (key, idx) = split_index(seg);
        if !key.is_empty() {
            cur = cur.get_mut(key)?;
        }
        for i in idx {
            cur = cur.get_mut(i)?;
        }
    }
    Some(cur)
}

/// Decodes a JSON config into `T`. Each error carries its field path (`template.path`,
/// `command[1]`). serde stops at the first unknown attribute, so this removes it and decodes
/// again until every unknown attribute is found; each gets the closest known name as a
/// suggestion.
pub fn decode_config<T: DeserializeOwned>(json: &serde_json::Value) -> Result<T, ConfigErrors> {
    let mut json = if json.is_null() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        json.clone()
    };
    let mut unknown = Vec::new();
    let mut conversions = 0;
    loop {
        match serde_path_to_error::deserialize::<_, T>(&json) {
            Ok(v) if unknown.is_empty() => return Ok(v),
            Ok(_) => return Err(ConfigErrors(unknown)),
            Err(e) => {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                let msg = e.into_inner().to_string();
                if conversions < MAX_CONVERSIONS && convert_at(&mut json, &path, &msg) {
                    conversions += 1;
                    continue;
                }
                match unknown_field(&msg) {
                    Some((key, known))
                        if unknown.len() < MAX_UNKNOWN && remove(&mut json, &path) =>
                    {
                        unknown.push(ConfigError::new(path, describe(&key, &known)));
                    }
                    _ => {
                        unknown.push(ConfigError::new(path, msg));
                        return Err(ConfigErrors(unknown));
                    }
                }
            }
        }
    }
}

/// From serde's "unknown field `k`, expected one of `a`, `b`" (or "expected `a`", or "there are
/// no fields"): the key and the known names.
fn unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((key.to_owned(), known))
}

fn describe(key: &str, known: &[String]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!("unknown attribute `{key}`; did you mean `{k}`?"),
        None if known.is_empty() => format!("unknown attribute `{key}`; this block takes none"),
        None => format!("unknown attribute `{key}` (known: {})", known.join(", ")),
    }
}

/// Removes the attribute at `path` (`a.b[0].c`); false when the path does not lead to it.
fn remove(json: &mut serde_json::Value, path: &str) -> bool {
    let mut segs: Vec<&str> = path.split('.').collect();
    let Some(last) = segs.pop() else { return false };
    let mut cur = json;
    for seg in segs {
        let (key, idx) = split_index(seg);
        let Some(next) = cur.get_mut(key) else {
            return false;
        };
        cur = next;
        for i in idx {
            let Some(next) = cur.get_mut(i) else {
                return false;
            };
            cur = next;
        }
    }
    let (key, idx) = split_index(last);
    if !idx.is_empty() {
        return false;
    }
    cur.as_object_mut().is_some_and(|o| o.remove(key).is_some())
}

/// `name[1][2]` → (`name`, [1, 2]).
fn split_index(seg: &str) -> (&str, Vec<usize>) {
    let (key, rest) = seg.split_once('[').map_or((seg, ""), |(k, r)| (k, r));
    let idx = rest
        .split('[')
        .filter_map(|p| p.trim_end_matches(']').parse().ok())
        .collect();
    (key, idx)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        command: Vec<String>,
        #[serde(default)]
        template: Vec<Tpl>,
        #[serde(default)]
        empty: Option<Empty>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tpl {
        path: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}

    fn errs(v: serde_json::Value) -> Vec<String> {
        decode_config::<Cfg>(&v)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_unknown_attribute_is_reported_with_a_suggestion() {
        assert_eq!(
            errs(serde_json::json!({
                "comand": 1, "command": ["x"], "template": [{"path": "a"}, {"path": "b", "paht": "b"}],
                "zzz": 1, "empty": {"a": 1},
            })),
            [
                "comand: unknown attribute `comand`; did you mean `command`?",
                "empty.a: unknown attribute `a`; this block takes none",
                "template[1].paht: unknown attribute `paht`; did you mean `path`?",
                "zzz: unknown attribute `zzz` (known: command, template, empty)",
            ]
        );
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Typed {
        port: u16,
        command: Vec<String>,
        #[serde(default)]
        enabled: bool,
        #[serde(default)]
        ratio: Option<f64>,
        #[serde(default)]
        env: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn values_convert_the_way_hcl_converts_them() {
        let t: Typed = decode_config(&serde_json::json!({
            "port": "3000", "command": ["true", 1, false, 2.5], "enabled": "true",
            "ratio": " 0.5", "env": {"N": 3},
        }))
        .unwrap();
        assert_eq!(
            t,
            Typed {
                port: 3000,
                command: vec!["true".into(), "1".into(), "false".into(), "2.5".into()],
                enabled: true,
                ratio: Some(0.5),
                env: [("N".to_owned(), "3".to_owned())].into(),
            }
        );
        // Where HCL cannot convert, the error names the place and the value.
        let err = decode_config::<Typed>(&serde_json::json!({"port": "http", "command": []}))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "port: invalid type: string \"http\", expected u16");
        let err = decode_config::<Typed>(&serde_json::json!({"port": 1, "command": [[1]]}))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "command[0]: invalid type: sequence, expected a string");
        let err = decode_config::<Typed>(
            &serde_json::json!({"port": 1, "command": [], "enabled": "yes"}),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "enabled: invalid type: string \"yes\", expected a boolean"
        );
    }

    #[test]
    fn other_errors_come_after_the_unknown_attributes() {
        assert_eq!(
            errs(serde_json::json!({"comand": 1, "command": "x"})),
            [
                "comand: unknown attribute `comand`; did you mean `command`?",
                "command: invalid type: string \"x\", expected a sequence",
            ]
        );
        // A misspelt required attribute is also missing; both are reported.
        assert_eq!(
            errs(serde_json::json!({"command": [], "template": [{"paht": "b"}]})),
            [
                "template[0].paht: unknown attribute `paht`; did you mean `path`?",
                "template[0]: missing field `path`",
            ]
        );
        assert_eq!(errs(serde_json::json!({})), ["missing field `command`"]);
        assert!(decode_config::<Cfg>(&serde_json::Value::Null).is_err());
        assert_eq!(
            decode_config::<Tpl>(&serde_json::Value::Null)
                .unwrap_err()
                .to_string(),
            "missing field `path`"
        );
    }
}
