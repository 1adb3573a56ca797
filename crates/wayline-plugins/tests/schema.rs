//! `wayline validate` checks `use` bodies against each component's documented schema, so the
//! docs must name exactly the attributes the config struct accepts: here every documented
//! component's decoder is asked (with an unknown attribute) what it knows, and the answer is
//! compared with its docs, nested blocks included.

use std::collections::BTreeSet;

use wayline_plugin::{ComponentKind, FieldDoc, PluginHost};

/// The attribute names the decoder at `path` knows, from its "unknown attribute" error.
async fn accepted(
    host: &PluginHost,
    kind: ComponentKind,
    name: &str,
    block: Option<&str>,
) -> BTreeSet<String> {
    let inner = serde_json::json!({"zz_not_an_attribute": 1});
    // A block may be one object or a list of them (a repeated block).
    let probes = match block {
        None => vec![inner],
        Some(b) => vec![
            serde_json::json!({ b: inner.clone() }),
            serde_json::json!({ b: [inner] }),
        ],
    };
    let handle = host.component(kind, name).await.unwrap();
    let mut seen = Vec::new();
    let mut found = None;
    for probe in probes {
        let errors = handle.configure(probe).await.unwrap_err();
        found = errors
            .0
            .iter()
            .map(ToString::to_string)
            .find(|m| m.contains("zz_not_an_attribute"));
        if found.is_some() {
            break;
        }
        seen.push(errors.to_string());
    }
    let msg =
        found.unwrap_or_else(|| panic!("{name} {kind}: no unknown-attribute error in {seen:?}"));
    match msg.split_once("(known: ") {
        Some((_, rest)) => rest
            .trim_end_matches(')')
            .split(", ")
            .map(str::to_owned)
            .collect(),
        None if msg.contains("takes none") => BTreeSet::new(),
        None => panic!("{name} {kind}: unexpected message {msg}"),
    }
}

fn documented(fields: &[FieldDoc]) -> BTreeSet<String> {
    fields.iter().map(|f| f.name.clone()).collect()
}

#[tokio::test]
async fn every_documented_schema_matches_its_config_struct() {
    let host = PluginHost::new(wayline_plugins::builtins(), Vec::new());
    let mut checked = 0;
    for p in host.builtins().plugins() {
        for kind in p.kinds() {
            let info = p.component(kind).unwrap().info().clone();
            let docs = info.docs.unwrap_or_else(|| {
                panic!("{} {kind} has no docs, so validate cannot check it", p.name)
            });
            assert_eq!(
                documented(&docs.fields),
                accepted(&host, kind, &p.name, None).await,
                "{} {kind}: documented attributes differ from the config struct",
                p.name
            );
            for block in docs.fields.iter().filter(|f| f.r#type == "block") {
                assert_eq!(
                    documented(&block.fields),
                    accepted(&host, kind, &p.name, Some(&block.name)).await,
                    "{} {kind}: block `{}`",
                    p.name,
                    block.name
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} components checked");
}
