//! The host driving the test plugin through `WaypointPlugins` and `PluginHost`, like the runner.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wayline_plugin::{
    BuiltinRegistry, Call, CancellationToken, ComponentHandle, ComponentKind, CoreValues, Function,
    Health, JobInfo, PluginError, PluginHost, PluginProvider, Ui,
};
use wayline_waypoint::WaypointPlugins;

fn core(src: &Path) -> CoreValues {
    CoreValues {
        job: JobInfo {
            id: "job1".into(),
            project: "p".into(),
            app: "web".into(),
            workspace: "default".into(),
            sequence: 3,
            deployment_id: String::new(),
        },
        source_path: src.to_owned(),
        data_dir: src.join("data"),
        consumers: Vec::new(),
        labels: BTreeMap::new(),
        deployment_env: [
            ("WAYLINE_SERVER_ADDR", "unix:///run/wayline/server.sock"),
            ("WAYLINE_DEPLOYMENT_ID", "01DEP"),
            ("WAYLINE_ENTRYPOINT_TOKEN", "tok"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    }
}

async fn call(
    h: &Arc<dyn ComponentHandle>,
    f: Function,
    core: &CoreValues,
    inputs: Vec<prost_types::Any>,
    resources: Vec<wayline_plugin::DeclaredResource>,
) -> (Result<wayline_plugin::CallResult, PluginError>, Vec<String>) {
    let (ui, ev) = Ui::collecting();
    let mut c = Call::new(f, core.clone(), ui, CancellationToken::new()).resources(resources);
    for i in inputs {
        c = c.input(i);
    }
    let r = h.call(c).await;
    (r, render(&ev.events()))
}

/// Each event as one line of text: lines, statuses and table rows.
fn render(events: &[wayline_plugin::TerminalEvent]) -> Vec<String> {
    use wayline_proto::v1::terminal_event::Event as E;
    events
        .iter()
        .filter_map(|e| match e.event.as_ref()? {
            E::Line(l) => Some(l.msg.clone()),
            E::Status(s) => Some(format!("[{}] {}", s.status, s.msg)),
            E::Table(t) => Some(
                t.rows
                    .iter()
                    .map(|r| r.cells.join(" | "))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            _ => None,
        })
        .collect()
}

fn provider(dir: &Path) -> WaypointPlugins {
    WaypointPlugins::new(vec![dir.to_owned()], None)
}

/// Builds with the test plugin: its docs, and the artifact with the lines and table of its UI.
async fn build_with_the_plugins_ui(
    p: &WaypointPlugins,
    core: &CoreValues,
) -> (Arc<dyn ComponentHandle>, prost_types::Any) {
    let b = p
        .component(ComponentKind::Builder, "wltest", Vec::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.returns(), "wltest.Artifact");
    assert!(b.accepts().is_empty());
    let docs = b.info().docs.clone().unwrap();
    assert_eq!(docs.description, "Builds a test artifact from a message.");
    assert_eq!(
        docs.fields
            .iter()
            .map(|f| (f.name.as_str(), f.required))
            .collect::<Vec<_>>(),
        [
            ("message", true),
            ("crash", false),
            ("retries", false),
            ("need", false),
            ("labels", false)
        ]
    );
    b.configure(json!({"message": "hi", "retries": "2"}))
        .await
        .unwrap();
    let (r, lines) = call(&b, Function::Build, core, vec![], vec![]).await;
    let built = r.unwrap();
    let artifact = built.value.clone().unwrap();
    assert_eq!(artifact.type_url, "type.googleapis.com/wltest.Artifact");
    assert_eq!(built.template_data, json!({"message": "hi"}));
    assert!(
        lines.iter().any(|l| l.contains("Built \"hi\" for web")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("web") && l.contains("default")),
        "the table: {lines:?}"
    );

    (b, artifact)
}

/// Status of the deployment, destroy (the file goes), and status again (missing).
async fn status_then_destroy(
    d: &Arc<dyn ComponentHandle>,
    core: &CoreValues,
    dep: &wayline_plugin::CallResult,
    file: &Path,
) {
    let value = dep.value.clone().unwrap();
    let (r, _) = call(
        d,
        Function::Status,
        core,
        vec![value.clone()],
        dep.resources.clone(),
    )
    .await;
    assert_eq!(r.unwrap().health, Some(Health::Ready));
    let (r, lines) = call(
        d,
        Function::Destroy,
        core,
        vec![value.clone()],
        dep.resources.clone(),
    )
    .await;
    let destroyed = r.unwrap();
    assert!(destroyed.resources.iter().all(|r| r.destroyed));
    assert!(!file.exists());
    assert!(lines.iter().any(|l| l.contains("Removed")), "{lines:?}");
    let (r, _) = call(d, Function::Status, core, vec![value], vec![]).await;
    let st = r.unwrap();
    assert_eq!(
        (st.health, st.health_message.as_str()),
        (Some(Health::Missing), "the file is gone")
    );
}

#[tokio::test]
async fn build_deploy_status_destroy_with_type_matched_args_and_the_plugins_ui() {
    let dir = crate::plugin_dir("wltest", "");
    let src = tempfile::tempdir().unwrap();
    let core = core(src.path());
    let p = provider(dir.path());
    assert_eq!(
        p.source("wltest").unwrap(),
        format!(
            "Waypoint plugin `{}`",
            crate::plugin_path(dir.path(), "wltest").display()
        )
    );
    assert_eq!(
        p.kinds("wltest").await.unwrap(),
        [ComponentKind::Builder, ComponentKind::Platform]
    );

    let (b, artifact) = build_with_the_plugins_ui(&p, &core).await;

    let d = p
        .component(ComponentKind::Platform, "wltest", Vec::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.accepts(), ["wltest.Artifact"]);
    assert_eq!(d.returns(), "wltest.Deployment");
    let caps: Vec<&str> = d.capabilities().iter().map(|c| c.as_str()).collect();
    assert_eq!(caps, ["destroy", "status", "docs"]);
    d.configure(json!({"message": "deployed"})).await.unwrap();
    let (r, lines) = call(&d, Function::Deploy, &core, vec![artifact], vec![]).await;
    let dep = r.unwrap();
    let file = src.path().join("wltest-v3.txt");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "deployed\nhi\nWAYPOINT_SERVER_ADDR=unix:///run/wayline/server.sock\nWAYPOINT_DEPLOYMENT_ID=01DEP\nWAYPOINT_CEB_INVITE_TOKEN=tok\n"
    );
    assert_eq!(
        dep.template_data,
        json!({"path": file.display().to_string()})
    );
    assert_eq!(dep.resources[0].name, "file");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("wrote {}", file.display()))),
        "{lines:?}"
    );

    status_then_destroy(&d, &core, &dep, &file).await;

    let (r, _) = call(&b, Function::Deploy, &core, vec![], vec![]).await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "builder \"wltest\" does not support `deploy`"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn config_errors_read_like_native_ones() {
    let dir = crate::plugin_dir("wltest", "");
    let p = provider(dir.path());
    let d = p
        .component(ComponentKind::Platform, "wltest", Vec::new())
        .await
        .unwrap()
        .unwrap();
    let err = d
        .configure(json!({"mesage": "x", "crash": "maybe", "labels": ["a"]}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "crash: invalid type: string \"maybe\", expected a boolean; labels: invalid type: a list, expected a map; mesage: unknown attribute `mesage`; did you mean `message`?; missing field `message`"
    );
    // The plugin's own validation in Configure.
    let err = d.configure(json!({"message": "bad"})).await.unwrap_err();
    assert_eq!(err.to_string(), "message must not be \"bad\"");
    let schemas = p.schemas("wltest").await.unwrap();
    assert_eq!(schemas[0].1["required"], json!(["message"]));
    assert_eq!(
        schemas[0].1["properties"]["crash"]["description"],
        "Exit during deploy (tests)."
    );
}

#[tokio::test]
async fn a_missing_argument_type_names_the_function_the_type_and_the_mappers_tried() {
    let dir = crate::plugin_dir("wltest", "");
    let src = tempfile::tempdir().unwrap();
    let p = provider(dir.path());
    let m = p.mappers("wltest").await.unwrap();
    let d = p
        .component(ComponentKind::Platform, "wltest", m)
        .await
        .unwrap()
        .unwrap();
    d.configure(json!({"message": "m", "need": "wltest.Missing"}))
        .await
        .unwrap();
    let art = prost_types::Any {
        type_url: "type.googleapis.com/wltest.Artifact".into(),
        value: vec![],
    };
    let (r, _) = call(&d, Function::Deploy, &core(src.path()), vec![art], vec![]).await;
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.starts_with("plugin `wltest` `deploy` needs an argument of type `wltest.Missing`, which nothing provides; values: `wltest.Artifact`, `hashicorp.waypoint.sdk.Args.Source`,"),
        "{msg}"
    );
    assert!(
        msg.ends_with("mappers tried: `wltest:docker-image-to-artifact` (hashicorp.waypoint.builtin.docker.Image → wltest.Artifact)"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_plugin_that_exits_mid_call_is_reported_with_its_last_log_lines() {
    let dir = crate::plugin_dir("wltest", "");
    let src = tempfile::tempdir().unwrap();
    let p = provider(dir.path());
    let d = p
        .component(ComponentKind::Platform, "wltest", Vec::new())
        .await
        .unwrap()
        .unwrap();
    d.configure(json!({"message": "m", "crash": true}))
        .await
        .unwrap();
    let art = prost_types::Any {
        type_url: "type.googleapis.com/wltest.Artifact".into(),
        value: vec![],
    };
    let (r, _) = call(&d, Function::Deploy, &core(src.path()), vec![art], vec![]).await;
    let err = r.unwrap_err();
    assert!(matches!(err, PluginError::Plugin(_)));
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "plugin `wltest` exited during `deploy` (exit status: 3); its last stderr lines:\n"
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("[ERROR] wltest: crashing on purpose"),
        "{msg}"
    );
    assert!(
        msg.contains("wltest: stdio attached"),
        "GRPCStdio output is kept too: {msg}"
    );
    // The next user gets a fresh process.
    assert_eq!(p.kinds("wltest").await.unwrap().len(), 2);
}

#[tokio::test]
async fn handshake_failures_say_what_went_wrong() {
    let slow = crate::plugin_dir("slow", "WLTEST_HANDSHAKE=slow");
    let p = provider(slow.path()).handshake_timeout(Duration::from_millis(300));
    let err = p.kinds("slow").await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "plugin `slow` (`{}`) printed no handshake within 300ms (a Waypoint plugin prints `1|1|unix|<socket>|grpc|` as it starts: is this one? A Wayline plugin is named `wayline-plugin-<name>`); its stderr:\n[DEBUG] wltest: plugin address",
            crate::plugin_path(slow.path(), "slow").display()
        )
    );
    let v2 = crate::plugin_dir("v2", "WLTEST_HANDSHAKE=v2");
    let err = provider(v2.path())
        .kinds("v2")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sent a bad handshake `1|2|unix|") && err.contains("|grpc|`: plugin protocol version 2, this host speaks 1 (Waypoint 0.11); use a build of the plugin for Waypoint 0.11 (waypoint-plugin-sdk, plugin protocol 1); its stderr:"),
        "{err}"
    );
    let die = crate::plugin_dir("die", "WLTEST_HANDSHAKE=die");
    let err = provider(die.path())
        .kinds("die")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited before its handshake (exit status: 3); its stderr:\n[DEBUG] wltest: plugin address\n[ERROR] wltest: cannot start: the test asked me to die"), "{err}");
}

#[tokio::test]
async fn a_missing_waypoint_binary_says_what_to_set() {
    let p = WaypointPlugins::new(Vec::new(), Some("/nonexistent/waypoint".into()));
    assert_eq!(
        p.source("kubernetes").as_deref(),
        Some("Waypoint built-in via `/nonexistent/waypoint`")
    );
    let err = p.kinds("kubernetes").await.unwrap_err().to_string();
    assert!(
        err.contains("cannot start Waypoint built-in plugin `kubernetes` (`/nonexistent/waypoint plugin kubernetes`): No such file or directory")
            && err.ends_with("; set WAYLINE_WAYPOINT_BINARY to a Waypoint 0.11 `waypoint` binary (or put one on PATH), or install `waypoint-plugin-kubernetes` in ./.waypoint/plugins"),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_stops_the_plugin_through_its_controller() {
    let dir = crate::plugin_dir("wltest", "");
    let p = provider(dir.path());
    p.kinds("wltest").await.unwrap();
    let procs = p.processes().await;
    let proc = procs[0].clone();
    assert!(!proc.exited());
    proc.shutdown().await.unwrap();
    assert!(proc.exited(), "Shutdown makes it exit");
}

#[tokio::test]
async fn through_the_plugin_host_a_docker_image_reaches_the_plugin_by_its_mapper() {
    use prost::Message as _;
    let dir = crate::plugin_dir("wltest", "");
    let mut host = PluginHost::new(BuiltinRegistry::new(), Vec::new());
    host.add_provider(Arc::new(provider(dir.path())));
    assert!(host.known_plugins().contains(&"wltest".to_owned()));
    assert!(
        host.source_of("wltest")
            .unwrap()
            .starts_with("Waypoint plugin `")
    );
    let d = host
        .component(ComponentKind::Platform, "wltest")
        .await
        .unwrap();
    let chain = host
        .find_chain("hashicorp.waypoint.builtin.docker.Image", "wltest.Artifact")
        .unwrap();
    assert_eq!(chain.names(), ["wltest:docker-image-to-artifact"]);
    let img = wayline_waypoint::pb::docker::Image {
        image: "web".into(),
        tag: "v1".into(),
        location: None,
    };
    let any = prost_types::Any {
        type_url: "type.googleapis.com/hashicorp.waypoint.builtin.docker.Image".into(),
        value: img.encode_to_vec(),
    };
    let mapped = host.map(&chain, any).await.unwrap();
    assert_eq!(mapped.type_url, "type.googleapis.com/wltest.Artifact");
    assert_eq!(d.kind(), ComponentKind::Platform);
    let docs = host.plugin_docs("wltest").await.unwrap();
    assert_eq!(
        docs.iter().map(|d| d.0).collect::<Vec<_>>(),
        [ComponentKind::Builder, ComponentKind::Platform]
    );
    let err = host
        .component(ComponentKind::Registry, "wltest")
        .await
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "unknown registry plugin `wltest`: plugin `wltest` has no registry (it has: builder, platform)"
    );
}
