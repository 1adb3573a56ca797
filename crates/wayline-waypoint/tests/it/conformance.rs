//! The protocol facts the host and the test plugin both rely on, pinned against the vendored
//! public protos (so the two cannot agree on a private dialect): the cookie, the handshake
//! line, service and method names, and message field numbers.

use std::io::BufRead;
use std::process::{Command, Stdio};

use prost_types::{DescriptorProto, FileDescriptorSet};
use wayline_waypoint::handshake;

fn descriptors() -> FileDescriptorSet {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let files = [
        "plugin.proto",
        "grpc_broker.proto",
        "grpc_controller.proto",
        "grpc_stdio.proto",
    ];
    protox::compile(files.map(|f| root.join(f)), [&root]).unwrap()
}

/// The message `pkg.Outer.Inner`.
fn message<'a>(fds: &'a FileDescriptorSet, full: &str) -> &'a DescriptorProto {
    for f in &fds.file {
        let pkg = f.package();
        let Some(rest) = full.strip_prefix(&format!("{pkg}.")) else {
            continue;
        };
        let mut parts = rest.split('.');
        let first = parts.next().unwrap();
        let Some(mut m) = f.message_type.iter().find(|m| m.name() == first) else {
            continue;
        };
        for p in parts {
            m = m
                .nested_type
                .iter()
                .find(|n| n.name() == p)
                .unwrap_or_else(|| panic!("{full}: no {p}"));
        }
        return m;
    }
    panic!("no message {full}")
}

fn fields(fds: &FileDescriptorSet, full: &str) -> Vec<(String, i32)> {
    let mut v: Vec<(String, i32)> = message(fds, full)
        .field
        .iter()
        .map(|f| (f.name().to_owned(), f.number()))
        .collect();
    v.sort_by_key(|f| f.1);
    v
}

fn f(pairs: &[(&str, i32)]) -> Vec<(String, i32)> {
    pairs.iter().map(|(n, i)| ((*n).to_owned(), *i)).collect()
}

#[test]
fn services_and_methods_are_the_sdks() {
    let fds = descriptors();
    let mut services: Vec<String> = fds
        .file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| format!("{}.{}", f.package(), s.name()))
        })
        .collect();
    services.sort();
    assert_eq!(
        services,
        [
            "hashicorp.waypoint.sdk.Builder",
            "hashicorp.waypoint.sdk.ConfigSourcer",
            "hashicorp.waypoint.sdk.ExecSessionService",
            "hashicorp.waypoint.sdk.LogViewer",
            "hashicorp.waypoint.sdk.Mapper",
            "hashicorp.waypoint.sdk.Platform",
            "hashicorp.waypoint.sdk.Registry",
            "hashicorp.waypoint.sdk.ReleaseManager",
            "hashicorp.waypoint.sdk.TaskLauncher",
            "hashicorp.waypoint.sdk.TerminalUIService",
            "plugin.GRPCBroker",
            "plugin.GRPCController",
            "plugin.GRPCStdio",
        ]
    );
    let methods = |svc: &str| -> Vec<String> {
        fds.file
            .iter()
            .flat_map(|f| f.service.iter())
            .find(|s| s.name() == svc)
            .unwrap()
            .method
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    };
    for m in [
        "ConfigStruct",
        "Configure",
        "Documentation",
        "DeploySpec",
        "Deploy",
        "IsDestroyer",
        "DestroySpec",
        "Destroy",
        "IsStatus",
        "StatusSpec",
        "Status",
    ] {
        assert!(methods("Platform").contains(&m.to_owned()), "Platform.{m}");
    }
    assert_eq!(methods("GRPCBroker"), ["StartStream"]);
    assert_eq!(methods("GRPCController"), ["Shutdown"]);
    assert_eq!(methods("GRPCStdio"), ["StreamStdio"]);
    assert_eq!(
        methods("TerminalUIService"),
        ["Output", "Events", "IsInteractive"]
    );
    assert_eq!(methods("Mapper"), ["ListMappers", "Map"]);
}

#[test]
fn func_spec_and_args_field_numbers_are_the_public_protos() {
    let fds = descriptors();
    let sdk = |m: &str| fields(&fds, &format!("hashicorp.waypoint.sdk.{m}"));
    assert_eq!(
        sdk("FuncSpec"),
        f(&[("name", 1), ("args", 2), ("result", 3)])
    );
    assert_eq!(
        sdk("FuncSpec.Value"),
        f(&[
            ("name", 1),
            ("type", 2),
            ("proto_any", 3),
            ("primitive_type", 4),
            ("bool", 5),
            ("int", 6),
            ("uint", 7),
            ("string", 8)
        ])
    );
    assert_eq!(sdk("FuncSpec.Args"), f(&[("args", 1)]));
    assert_eq!(sdk("Args.Source"), f(&[("app", 1), ("path", 2)]));
    assert_eq!(
        sdk("Args.JobInfo"),
        f(&[
            ("local", 1),
            ("workspace", 2),
            ("id", 3),
            ("project", 4),
            ("app", 5)
        ])
    );
    assert_eq!(
        sdk("Args.DeploymentConfig"),
        f(&[
            ("id", 1),
            ("server_addr", 2),
            ("server_tls", 3),
            ("server_tls_skip_verify", 4),
            ("entrypoint_invite_token", 5),
            ("sequence", 6)
        ])
    );
    assert_eq!(sdk("Args.TerminalUI"), f(&[("stream_id", 1)]));
}

#[test]
fn result_and_go_plugin_field_numbers_are_the_public_protos() {
    let fds = descriptors();
    let sdk = |m: &str| fields(&fds, &format!("hashicorp.waypoint.sdk.{m}"));
    assert_eq!(sdk("Config.ConfigureRequest"), f(&[("json", 1)]));
    assert_eq!(sdk("Config.StructResp"), f(&[("struct", 1)]));
    assert_eq!(
        sdk("Build.Resp"),
        f(&[
            ("result", 1),
            ("labels", 2),
            ("template_data", 3),
            ("result_json", 4)
        ])
    );
    assert_eq!(
        sdk("Deploy.Resp"),
        f(&[
            ("result", 1),
            ("template_data", 2),
            ("deployment", 3),
            ("declared_resources", 4),
            ("result_json", 5)
        ])
    );
    assert_eq!(
        sdk("Push.Resp"),
        f(&[("result", 1), ("template_data", 2), ("result_json", 3)])
    );
    assert_eq!(sdk("Map.Request"), f(&[("args", 1), ("result", 2)]));
    assert_eq!(
        sdk("TerminalUI.Event.Step"),
        f(&[
            ("id", 1),
            ("close", 2),
            ("msg", 3),
            ("status", 4),
            ("output", 5),
            ("step_group", 6)
        ])
    );
    assert_eq!(
        fields(&fds, "plugin.ConnInfo"),
        f(&[
            ("service_id", 1),
            ("network", 2),
            ("address", 3),
            ("knock", 4)
        ])
    );
    assert_eq!(
        fields(&fds, "plugin.StdioData"),
        f(&[("channel", 1), ("data", 2)])
    );
    assert_eq!(
        fields(&fds, "opaqueany.Any"),
        f(&[("type_url", 1), ("value", 2)])
    );
    assert_eq!(
        fields(&fds, "protostructure.Struct.Field"),
        f(&[("Name", 1), ("PkgPath", 2), ("Tag", 3), ("type", 4)])
    );
}

#[test]
fn the_generated_code_writes_those_numbers() {
    use prost::Message as _;
    use wayline_waypoint::pb::{opaqueany, sdk::func_spec};
    let v = func_spec::Value {
        name: "n".into(),
        r#type: "t".into(),
        primitive_type: 0,
        value: Some(func_spec::value::Value::ProtoAny(opaqueany::Any {
            type_url: "u".into(),
            value: vec![7],
        })),
    };
    // field 1 "n", field 2 "t", field 3 (length-delimited) holding Any{1: "u", 2: [7]}.
    assert_eq!(
        v.encode_to_vec(),
        [
            0x0a, 1, b'n', 0x12, 1, b't', 0x1a, 6, 0x0a, 1, b'u', 0x12, 1, 7
        ]
    );
}

#[test]
fn the_test_plugin_checks_the_cookie_and_prints_the_handshake_line() {
    assert_eq!(handshake::COOKIE_KEY, "WAYPOINT_PLUGIN");
    assert_eq!(
        handshake::COOKIE_VALUE,
        "be6c1928786a4df0222c13eef44ac846da2c0d461d99addc93f804601c6b7205"
    );
    let out = Command::new(crate::plugin_binary())
        .env_remove("WAYPOINT_PLUGIN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("This binary is a plugin."));

    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(crate::plugin_binary())
        .env("WAYPOINT_PLUGIN", handshake::COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let want = format!(
        "1|1|unix|{}/plugin{}|grpc|\n",
        tmp.path().display(),
        child.id()
    );
    assert_eq!(line, want);
    assert_eq!(
        handshake::parse(&line).unwrap().address,
        want.split('|').nth(3).unwrap()
    );

    let out = Command::new(crate::plugin_binary())
        .env("WAYPOINT_PLUGIN", handshake::COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "2,3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "Incompatible API version with plugin. Plugin version: 1, Client versions: [2,3]"
    ));
}
