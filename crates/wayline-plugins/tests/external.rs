//! The example external plugin (`examples/plugin-hello`), built with cargo and driven through the
#![allow(clippy::many_single_char_names)]
//! host exactly like a built-in: discovery, handshake, config errors, mapper chain from a built-in
//! value, deploy/status/destroy, stderr as job output, crash reports, checksums, and cleanup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::json;
use wayline_plugin::{
    Call, CancellationToken, ComponentHandle, ComponentKind, CoreValues, Function, Health, JobInfo,
    PluginHost, Ui,
};
use wayline_testkit::{eventually_async, wait_for_async};

/// Builds `wayline-plugin-hello` once per test run and returns its path.
fn hello_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let st = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "wayline-plugin-hello"])
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(st.success(), "cargo build -p wayline-plugin-hello failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        target.join("debug/wayline-plugin-hello")
    })
}

/// A project dir with the plugin installed as `<project>/.wayline/plugins/<file name>`.
fn project(file_name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join(".wayline/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(hello_binary(), dir.join(file_name)).unwrap();
    t
}

fn host(project: &Path) -> PluginHost {
    PluginHost::new(
        wayline_plugins::builtins(),
        PluginHost::default_search_dirs(project),
    )
}

fn core(src: &Path) -> CoreValues {
    CoreValues {
        job: JobInfo {
            id: "j1".into(),
            app: "web".into(),
            sequence: 2,
            ..JobInfo::default()
        },
        source_path: src.to_owned(),
        data_dir: src.join("data"),
        consumers: Vec::new(),
        labels: BTreeMap::new(),
        deployment_env: BTreeMap::new(),
    }
}

async fn run(
    c: &Arc<dyn ComponentHandle>,
    f: Function,
    core: &CoreValues,
    input: Option<prost_types::Any>,
) -> (
    Result<wayline_plugin::CallResult, wayline_plugin::PluginError>,
    Vec<String>,
) {
    let (ui, ev) = Ui::collecting();
    let mut call = Call::new(f, core.clone(), ui, CancellationToken::new());
    if let Some(i) = input {
        call = call.input(i);
    }
    let r = c.call(call).await;
    (r, ev.lines())
}

#[tokio::test]
async fn external_platform_works_like_a_builtin() {
    let proj = project("wayline-plugin-hello");
    let h = host(proj.path());
    let core = core(proj.path());

    // A built-in builder makes a `wayline.null.Value`…
    let b = h.component(ComponentKind::Builder, "null").await.unwrap();
    let (built, _) = run(&b, Function::Build, &core, None).await;
    let artifact = built.unwrap().value.unwrap();

    // …and the external platform wants a `wayline.hello.Greeting`: its mapper bridges them.
    let p = h.component(ComponentKind::Platform, "hello").await.unwrap();
    assert_eq!(p.accepts(), ["wayline.hello.Greeting"]);
    assert_eq!(p.returns(), "wayline.hello.Written");
    assert!(
        p.info()
            .docs
            .as_ref()
            .unwrap()
            .description
            .contains("greeting")
    );
    let chain = h.find_chain("wayline.null.Value", &p.accepts()[0]).unwrap();
    assert_eq!(chain.names(), ["null-to-greeting"]);
    let input = h.map(&chain, artifact).await.unwrap();

    let err = p
        .configure(json!({"path": "x", "colour": 1}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "colour: unknown attribute `colour` (known: path, message, crash, delay_ms)"
    );
    p.configure(json!({"path": "greeting.txt", "message": "hi"}))
        .await
        .unwrap();
    let (r, lines) = run(&p, Function::Deploy, &core, Some(input)).await;
    let r = r.unwrap();
    let file = proj.path().join("greeting.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hi from web v2\n");
    assert_eq!(r.template_data["path"], file.display().to_string());
    assert!(
        lines.contains(&format!("Wrote `{}`", file.display())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"hello: deploying greeting from builder:j1".to_owned()),
        "{lines:?}"
    );

    let deployed = r.value.unwrap();
    let (s, _) = run(&p, Function::Status, &core, Some(deployed.clone())).await;
    assert_eq!(s.unwrap().health, Some(Health::Ready));
    let (d, _) = run(&p, Function::Destroy, &core, Some(deployed.clone())).await;
    d.unwrap();
    assert!(!file.exists());
    let (s, _) = run(&p, Function::Status, &core, Some(deployed)).await;
    assert_eq!(s.unwrap().health, Some(Health::Missing));

    // One process serves every handle; dropping the host kills it.
    let running = h.running_plugins();
    assert_eq!(running.len(), 1);
    let pid = running[0].2;
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop((p, h, chain));
    wait_gone(pid).await;
}

async fn wait_gone(pid: u32) {
    // Gone, or a zombie (exited; reaping is its parent's business).
    wait_for_async(Duration::from_secs(10), || async {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => Ok(()),
            Ok(s) if s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z') => Ok(()),
            Ok(s) => Err(s),
        }
    })
    .await
    .unwrap_or_else(|stat| {
        panic!("plugin process {pid} still runs after its host was dropped: {stat}")
    });
}

#[tokio::test]
async fn crashed_plugin_fails_the_call_with_its_last_stderr_lines() {
    let proj = project("wayline-plugin-hello");
    let h = host(proj.path());
    let core = core(proj.path());
    let p = h.component(ComponentKind::Platform, "hello").await.unwrap();
    p.configure(json!({"path": "g.txt", "crash": true}))
        .await
        .unwrap();
    let input = h
        .find_chain("wayline.null.Value", "wayline.hello.Greeting")
        .unwrap();
    let b = h.component(ComponentKind::Builder, "null").await.unwrap();
    let v = run(&b, Function::Build, &core, None)
        .await
        .0
        .unwrap()
        .value
        .unwrap();
    let v = h.map(&input, v).await.unwrap();
    let (r, _) = run(&p, Function::Deploy, &core, Some(v)).await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "plugin `hello` exited during `deploy` (exit status: 3); its last stderr lines:\n\
         hello: deploying greeting from builder:j1\nhello: crashing on purpose"
    );

    // The next handle gets a fresh process.
    let first = h.running_plugins()[0].2;
    let p = h.component(ComponentKind::Platform, "hello").await.unwrap();
    assert_ne!(h.running_plugins()[0].2, first);
    p.configure(json!({"path": "g.txt"})).await.unwrap();
    let v = run(&b, Function::Build, &core, None)
        .await
        .0
        .unwrap()
        .value
        .unwrap();
    let v = h
        .map(
            &h.find_chain("wayline.null.Value", "wayline.hello.Greeting")
                .unwrap(),
            v,
        )
        .await
        .unwrap();
    run(&p, Function::Deploy, &core, Some(v)).await.0.unwrap();
    assert!(proj.path().join("g.txt").exists());
}

#[tokio::test]
async fn cancelling_the_host_call_cancels_the_plugin_call() {
    let proj = project("wayline-plugin-hello");
    let h = host(proj.path());
    let core = core(proj.path());
    let p = h.component(ComponentKind::Platform, "hello").await.unwrap();
    p.configure(json!({"path": "slow.txt", "delay_ms": 600_000}))
        .await
        .unwrap();
    let greeting = prost_types::Any {
        type_url: "type.googleapis.com/wayline.hello.Greeting".into(),
        value: Vec::new(),
    };
    let cancel = CancellationToken::new();
    let call = Call::new(
        Function::Deploy,
        core.clone(),
        Ui::discard(),
        cancel.clone(),
    )
    .input(greeting);
    let file = proj.path().join("slow.txt");
    let running = tokio::spawn(async move { p.call(call).await });
    assert!(
        eventually_async(Duration::from_secs(30), || async { file.exists() }).await,
        "the plugin never started its slow deploy ({} never appeared)",
        file.display()
    );
    cancel.cancel();
    let err = running.await.unwrap().unwrap_err();
    assert!(
        matches!(err, wayline_plugin::PluginError::Cancelled),
        "{err}"
    );
    // The plugin saw `ctx.cancel` fire and cleaned up.
    assert!(
        eventually_async(Duration::from_secs(10), || async { !file.exists() }).await,
        "the plugin did not clean up after cancellation: {} is still there",
        file.display()
    );
}

#[tokio::test]
async fn docs_come_from_external_and_builtin_plugins() {
    let proj = project("wayline-plugin-hello");
    let h = host(proj.path());
    let docs = h.plugin_docs("hello").await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, ComponentKind::Platform);
    assert!(docs[0].1.to_markdown("hello").contains(
        "| `path` | string | yes |  | File to write, relative to the source directory. |"
    ));
    let docs = h.plugin_docs("files").await.unwrap();
    assert_eq!(
        docs.iter().map(|d| d.0).collect::<Vec<_>>(),
        [ComponentKind::Builder, ComponentKind::Registry]
    );
}

#[tokio::test]
async fn checksums_are_verified() {
    // (`waypoint-plugin-<name>` executables speak Waypoint's protocol: wayline-waypoint's tests.)
    let proj = project("wayline-plugin-hello");
    let path = proj.path().join(".wayline/plugins/wayline-plugin-hello");
    let h = host(proj.path());
    let err = h.load_plugin("hello", Some("00ff")).await.unwrap_err();
    let actual = wayline_plugin::host::sha256_file(&path).unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "checksum mismatch for plugin `hello` at `{}`: expected sha256 00ff, got {actual}",
            path.display()
        )
    );
    assert!(h.running_plugins().is_empty());
    h.load_plugin("hello", Some(&actual.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(h.running_plugins()[0].1, path);
    assert!(h.mappers().iter().any(|m| m.name == "null-to-greeting"));
    let err = h
        .component(ComponentKind::Builder, "hello")
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "unknown builder plugin `hello`: plugin `hello` has no builder (it has: platform)"
    );
}
