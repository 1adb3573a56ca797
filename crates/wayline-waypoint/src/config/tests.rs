use serde_json::json;

use super::*;

fn prim(kind: u32) -> ps::Type {
    ps::Type {
        r#type: Some(ps::r#type::Type::Primitive(ps::Primitive { kind })),
    }
}

fn field(go: &str, tag: &str, ty: ps::Type) -> ps::r#struct::Field {
    ps::r#struct::Field {
        name: go.into(),
        pkg_path: String::new(),
        tag: tag.into(),
        r#type: Some(ty),
    }
}

fn container(kind: u32, elem: ps::Type) -> ps::Type {
    ps::Type {
        r#type: Some(ps::r#type::Type::Container(Box::new(ps::Container {
            kind,
            elem: Some(Box::new(elem)),
            key: Some(Box::new(prim(24))),
            count: 0,
        }))),
    }
}

/// A struct like the Kubernetes platform's: attributes, an optional map, a list, a block.
fn shape() -> Shape {
    let probe = ps::Struct {
        fields: vec![
            field("Path", r#"hcl:"path,attr""#, prim(24)),
            field("Port", r#"hcl:"port,optional""#, prim(2)),
        ],
    };
    let s = ps::Struct {
        fields: vec![
            field("Namespace", r#"hcl:"namespace""#, prim(24)),
            field(
                "Replicas",
                r#"hcl:"replicas,optional""#,
                container(22, prim(5)),
            ),
            field(
                "Labels",
                r#"hcl:"labels,optional""#,
                container(21, prim(24)),
            ),
            field("Args", r#"hcl:"args,optional""#, container(23, prim(24))),
            field("Debug", r#"hcl:"debug,optional""#, prim(1)),
            field(
                "Probe",
                r#"hcl:"probe,block""#,
                ps::Type {
                    r#type: Some(ps::r#type::Type::Struct(probe)),
                },
            ),
            field("Internal", "json:\"internal\"", prim(24)),
        ],
    };
    Shape::from_proto(&s).unwrap()
}

#[test]
fn tags_give_names_kinds_and_requiredness() {
    let s = shape();
    let f: Vec<(&str, &str, bool)> = s
        .fields
        .iter()
        .map(|f| (f.go_name.as_str(), f.hcl_name.as_str(), f.required))
        .collect();
    assert_eq!(
        f,
        [
            ("Namespace", "namespace", true),
            ("Replicas", "replicas", false),
            ("Labels", "labels", false),
            ("Args", "args", false),
            ("Debug", "debug", false),
            ("Probe", "probe", true),
        ]
    );
}

#[test]
fn a_body_becomes_json_keyed_by_go_names_with_hcl_conversions() {
    let out = shape()
        .decode(&json!({
            "namespace": "prod", "replicas": "3", "labels": {"team": 7},
            "args": ["a", 1], "debug": "true", "probe": {"path": "/health", "port": 8080}
        }))
        .unwrap();
    assert_eq!(
        out,
        json!({
            "Namespace": "prod", "Replicas": 3, "Labels": {"team": "7"}, "Args": ["a", "1"],
            "Debug": true, "Probe": {"Path": "/health", "Port": 8080}
        })
    );
}

#[test]
fn every_error_is_reported_with_its_path() {
    let err = shape()
        .decode(&json!({"namespac": "x", "replicas": "many", "probe": {"port": 1.5}}))
        .unwrap_err();
    let got: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "namespac: unknown attribute `namespac`; did you mean `namespace`?",
            "probe.port: invalid type: number 1.5, expected an integer",
            "probe: missing field `path`",
            "replicas: invalid type: string \"many\", expected an integer",
            "missing field `namespace`",
        ]
    );
}

#[test]
fn the_schema_is_what_validate_reads() {
    let s = shape().schema(None);
    assert_eq!(s["required"], json!(["namespace", "probe"]));
    assert_eq!(
        s["properties"]["labels"]["additionalProperties"]["type"],
        "string"
    );
    assert_eq!(s["properties"]["probe"]["required"], json!(["path"]));
    assert_eq!(s["additionalProperties"], false);
}
