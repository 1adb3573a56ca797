//! Dynamic calls: a `FuncSpec` names the argument types a function wants; the host answers with
//! `FuncSpec.Args`, each value matched by type (and by name where the spec names it), not by
//! position, as go-argmapper does. A type no value has directly is reached through the mappers
//! (the host's and the plugin's own), shortest chain first.

use prost_types::Any;
use wayline_plugin::{Mapper, MapperRegistry, type_name};

use crate::pb::opaqueany;
use crate::pb::sdk::{FuncSpec, func_spec};

/// Prefix of the standard argument types the host supplies itself.
pub const ARGS_PREFIX: &str = "hashicorp.waypoint.sdk.Args.";

/// A value the host can pass, with the argument name it answers to (empty: any name).
#[derive(Debug, Clone)]
pub struct Provided {
    /// Argument name, or empty.
    pub name: String,
    /// The packed value.
    pub value: Any,
}

impl Provided {
    /// A typed value.
    pub fn typed(value: Any) -> Self {
        Self {
            name: String::new(),
            value,
        }
    }

    /// A standard `hashicorp.waypoint.sdk.Args.*` value.
    pub fn arg<M: prost::Message>(short: &str, m: &M) -> Self {
        Self::typed(Any {
            type_url: format!("type.googleapis.com/{ARGS_PREFIX}{short}"),
            value: m.encode_to_vec(),
        })
    }
}

/// An argument nobody provides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Missing(pub String);

/// The types a spec asks for that the host does not supply itself (the component's inputs).
pub fn input_types(spec: &FuncSpec) -> Vec<String> {
    spec.args
        .iter()
        .filter(|a| a.primitive_type == 0 && !a.r#type.starts_with(ARGS_PREFIX))
        .map(|a| a.r#type.clone())
        .collect()
}

fn pack(name: &str, ty: &str, v: &Any) -> func_spec::Value {
    func_spec::Value {
        name: name.to_owned(),
        r#type: ty.to_owned(),
        primitive_type: 0,
        value: Some(func_spec::value::Value::ProtoAny(opaqueany::Any {
            type_url: v.type_url.clone(),
            value: v.value.clone(),
        })),
    }
}

/// Answers `spec` from `provided`, mapping through `mappers` where no value has a wanted type.
/// `what` names the plugin and function for the error (``plugin `k8s` `deploy` ``).
pub async fn resolve(
    what: &str,
    spec: &FuncSpec,
    provided: &[Provided],
    mappers: &[Mapper],
) -> Result<Vec<func_spec::Value>, Missing> {
    let mut out = Vec::with_capacity(spec.args.len());
    for want in &spec.args {
        if want.primitive_type != 0 {
            return Err(Missing(format!(
                "{what} asks for `{}`, a {:?} value, which Wayline does not supply",
                want.name,
                want.primitive_type()
            )));
        }
        let matches = |p: &&Provided| {
            type_name(&p.value) == want.r#type
                && (want.name.is_empty() || p.name.is_empty() || p.name == want.name)
        };
        // A value named like the argument wins; an unnamed argument prefers an unnamed value.
        let direct = provided
            .iter()
            .filter(matches)
            .max_by_key(|p| p.name == want.name);
        if let Some(p) = direct {
            out.push(pack(&want.name, &want.r#type, &p.value));
            continue;
        }
        out.push(map_to(what, want, provided, mappers).await?);
    }
    Ok(out)
}

async fn map_to(
    what: &str,
    want: &func_spec::Value,
    provided: &[Provided],
    mappers: &[Mapper],
) -> Result<func_spec::Value, Missing> {
    let mut reg = MapperRegistry::new();
    for m in mappers {
        reg.add(m.clone());
    }
    let best = provided
        .iter()
        .filter(|p| !type_name(&p.value).starts_with(ARGS_PREFIX))
        .filter_map(|p| {
            reg.find_chain(type_name(&p.value), &want.r#type)
                .ok()
                .map(|c| (c, p))
        })
        .min_by_key(|(c, _)| c.len());
    if let Some((chain, p)) = best {
        let v = chain
            .apply(p.value.clone())
            .await
            .map_err(|e| Missing(format!("{what}: mapping to `{}` failed: {e}", want.r#type)))?;
        return Ok(pack(&want.name, &want.r#type, &v));
    }
    let have: Vec<String> = provided
        .iter()
        .map(|p| format!("`{}`", type_name(&p.value)))
        .collect();
    let tried: Vec<String> = mappers
        .iter()
        .map(|m| format!("`{}` ({} → {})", m.name, m.input, m.output))
        .collect();
    let named = if want.name.is_empty() {
        String::new()
    } else {
        format!(" named `{}`", want.name)
    };
    Err(Missing(format!(
        "{what} needs an argument of type `{}`{named}, which nothing provides; values: {}; mappers tried: {}",
        want.r#type,
        have.join(", "),
        if tried.is_empty() {
            "none".to_owned()
        } else {
            tried.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(t: &str, v: &[u8]) -> Any {
        Any {
            type_url: format!("type.googleapis.com/{t}"),
            value: v.to_vec(),
        }
    }

    fn spec(args: &[(&str, &str)]) -> FuncSpec {
        FuncSpec {
            name: "deploy".into(),
            args: args
                .iter()
                .map(|(n, t)| func_spec::Value {
                    name: (*n).into(),
                    r#type: (*t).into(),
                    ..Default::default()
                })
                .collect(),
            result: Vec::new(),
        }
    }

    fn got(v: &[func_spec::Value]) -> Vec<(String, Vec<u8>)> {
        v.iter()
            .map(|v| match &v.value {
                Some(func_spec::value::Value::ProtoAny(a)) => (v.r#type.clone(), a.value.clone()),
                _ => panic!("not an any"),
            })
            .collect()
    }

    #[tokio::test]
    async fn arguments_match_by_type_in_any_order_and_by_name() {
        let provided = [
            Provided::typed(any("b.B", b"b")),
            Provided {
                name: "second".into(),
                value: any("a.A", b"a2"),
            },
            Provided::typed(any("a.A", b"a1")),
        ];
        let r = resolve(
            "p",
            &spec(&[("", "a.A"), ("", "b.B"), ("second", "a.A")]),
            &provided,
            &[],
        )
        .await
        .unwrap();
        assert_eq!(
            got(&r),
            [
                ("a.A".into(), b"a1".to_vec()),
                ("b.B".into(), b"b".to_vec()),
                ("a.A".into(), b"a2".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_type_is_reached_through_mappers_or_named_with_the_mappers_tried() {
        let m = Mapper::erased("a-to-c", "a.A", "c.C", std::sync::Arc::new(Upper));
        let provided = [Provided::typed(any("a.A", b"x"))];
        let r = resolve(
            "p",
            &spec(&[("", "c.C")]),
            &provided,
            std::slice::from_ref(&m),
        )
        .await
        .unwrap();
        assert_eq!(got(&r), [("c.C".into(), b"X".to_vec())]);
        let err = resolve(
            "plugin `k` `deploy`",
            &spec(&[("", "d.D")]),
            &provided,
            &[m],
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin `k` `deploy` needs an argument of type `d.D`, which nothing provides; values: `a.A`; mappers tried: `a-to-c` (a.A → c.C)"
        );
    }

    struct Upper;

    #[async_trait::async_trait]
    impl wayline_plugin::mapper::MapFn for Upper {
        async fn map(&self, input: Any) -> Result<Any, wayline_plugin::PluginError> {
            Ok(Any {
                type_url: "type.googleapis.com/c.C".into(),
                value: input.value.to_ascii_uppercase(),
            })
        }
    }
}
