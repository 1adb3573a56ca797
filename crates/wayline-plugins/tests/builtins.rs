//! The null, exec and files plugins driven through the host, the way the runner drives them.
#![allow(clippy::many_single_char_names)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use wayline_plugin::{
    Call, CallResult, CancellationToken, Capability, ComponentHandle, ComponentKind, CoreValues,
    Function, Health, JobInfo, PluginHost, Ui, Value,
};
use wayline_plugins::exec::ExecDeployment;
use wayline_plugins::files::Files;

fn host(dir: &Path) -> PluginHost {
    PluginHost::new(wayline_plugins::builtins(), vec![dir.join("plugins")])
}

fn core(src: &Path, data: &Path) -> CoreValues {
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
        labels: BTreeMap::new(),
        deployment_env: BTreeMap::from([
            ("GREETING".into(), "there".into()),
            ("PORT".into(), "8080".into()),
        ]),
        data_dir: data.to_owned(),
        consumers: Vec::new(),
    }
}

async fn component(
    h: &PluginHost,
    kind: ComponentKind,
    name: &str,
    cfg: serde_json::Value,
) -> Arc<dyn ComponentHandle> {
    let c = h.component(kind, name).await.unwrap();
    c.configure(cfg).await.unwrap();
    c
}

async fn call(
    c: &dyn ComponentHandle,
    f: Function,
    core: &CoreValues,
    inputs: Vec<prost_types::Any>,
    res: Vec<wayline_plugin::DeclaredResource>,
) -> (Result<CallResult, wayline_plugin::PluginError>, Vec<String>) {
    let (ui, events) = Ui::collecting();
    let mut call = Call::new(f, core.clone(), ui, CancellationToken::new()).resources(res);
    for i in inputs {
        call = call.input(i);
    }
    let r = c.call(call).await;
    (r, events.lines())
}

#[tokio::test]
async fn unknown_plugin_suggests_a_close_name() {
    let t = tempfile::tempdir().unwrap();
    let h = host(t.path());
    let err = h
        .component(ComponentKind::Platform, "exce")
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "unknown platform plugin `exce`: no built-in plugin has that name and no `wayline-plugin-exce` executable was found in `{}`, PATH; did you mean `exec`?",
            t.path().join("plugins").display()
        )
    );
    let err = h
        .component(ComponentKind::Registry, "exec")
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "unknown registry plugin `exec`: plugin `exec` has no registry (it has: platform)"
    );
}

#[tokio::test]
async fn exec_config_errors_carry_the_field_path() {
    let t = tempfile::tempdir().unwrap();
    let h = host(t.path());
    let c = h.component(ComponentKind::Platform, "exec").await.unwrap();
    let e = |v| {
        let c = c.clone();
        async move {
            c.configure(v)
                .await
                .unwrap_err()
                .0
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        e(json!({"command": ["x"], "comand": 1, "template": {"paht": "t"}, "dirr": "d"})).await,
        [
            "comand: unknown attribute `comand`; did you mean `command`?",
            "dirr: unknown attribute `dirr`; did you mean `dir`?",
            "template.paht: unknown attribute `paht`; did you mean `path`?",
            "template: missing field `path`",
        ]
    );
    assert_eq!(
        e(json!({"command": "x"})).await,
        ["command: invalid type: string \"x\", expected a sequence"]
    );
    assert_eq!(e(json!({})).await, ["missing field `command`"]);
    assert_eq!(
        e(json!({"command": [], "template": {"path": ""}})).await,
        [
            "command: must have at least one element",
            "template.path: must not be empty"
        ]
    );
    assert_eq!(
        e(json!({"command": ["cat", "<TPL>"]})).await,
        ["command[1]: `<TPL>` needs a `template` block"]
    );
    assert_eq!(
        e(json!({"command": ["x"], "template": [{"path": "a"}, {"path": "b"}]})).await,
        ["template: only one `template` block is allowed"]
    );
}

#[tokio::test]
async fn exec_one_shot_renders_templates_and_cleans_up() {
    let t = tempfile::tempdir().unwrap();
    let (src, data) = (t.path().join("src"), t.path().join("data"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("conf.txt"), "port={{.Env.PORT}} app={{.App}}\n").unwrap();
    let h = host(t.path());
    let c = component(
        &h,
        ComponentKind::Platform,
        "exec",
        json!({"command": ["sh", "-c", "cat <TPL>; echo hi {{.Env.GREETING}} > out.txt"], "template": {"path": "conf.txt"}}),
    )
    .await;
    assert_eq!(c.accepts(), ["*"]);
    assert!(c.capabilities().contains(&Capability::Destroyer));
    let artifact = Files { path: "/x".into() }.to_any();
    let (r, lines) = call(
        &*c,
        Function::Deploy,
        &core(&src, &data),
        vec![artifact],
        vec![],
    )
    .await;
    let r = r.unwrap();
    assert_eq!(
        lines,
        [
            "Running `sh -c cat ".to_owned()
                + &data.join("exec-v3/conf.txt").display().to_string()
                + "; echo hi there > out.txt`",
            "port=8080 app=web".into(),
            "Command completed".into()
        ]
    );
    assert_eq!(
        std::fs::read_to_string(src.join("out.txt")).unwrap(),
        "hi there\n"
    );
    let d = ExecDeployment::from_any(r.value.as_ref().unwrap()).unwrap();
    assert!(d.one_shot);
    assert_eq!(r.template_data["one_shot"], true);
    assert_eq!(r.resources.len(), 2);

    let (s, _) = call(
        &*c,
        Function::Status,
        &core(&src, &data),
        vec![d.to_any()],
        r.resources.clone(),
    )
    .await;
    assert_eq!(s.unwrap().health, Some(Health::Ready));

    let (gone, _) = call(
        &*c,
        Function::Destroy,
        &core(&src, &data),
        vec![d.to_any()],
        r.resources.clone(),
    )
    .await;
    assert!(gone.unwrap().resources.iter().all(|r| r.destroyed));
    assert!(!data.join("exec-v3").exists());
    assert!(!Path::new(&d.log_path).exists());
}

/// Pids of processes in group `pgid` that are not zombies.
fn live_in_group(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f[2] == pgid.to_string() && f[0] != "Z" {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn exec_long_running_is_stopped_by_destroy() {
    let t = tempfile::tempdir().unwrap();
    let h = host(t.path());
    let c = component(
        &h,
        ComponentKind::Platform,
        "exec",
        json!({"command": ["sh", "-c", "echo started; sleep 300 & sleep 300"], "startup_wait_ms": 200}),
    )
    .await;
    let core = core(t.path(), &t.path().join("data"));
    let (r, _) = call(
        &*c,
        Function::Deploy,
        &core,
        vec![Files::default().to_any()],
        vec![],
    )
    .await;
    let r = r.unwrap();
    let d = ExecDeployment::from_any(r.value.as_ref().unwrap()).unwrap();
    assert!(d.pid > 0 && !d.one_shot);
    assert_eq!(std::fs::read_to_string(&d.log_path).unwrap(), "started\n");
    assert_eq!(live_in_group(d.pid).len(), 3, "sh and two sleeps");

    let (s, _) = call(
        &*c,
        Function::Status,
        &core,
        vec![d.to_any()],
        r.resources.clone(),
    )
    .await;
    let s = s.unwrap();
    let process = s.resources.iter().find(|r| r.r#type == "process").unwrap();
    assert_eq!(process.health(), Health::Alive);

    let (gone, _) = call(
        &*c,
        Function::Destroy,
        &core,
        vec![d.to_any()],
        r.resources.clone(),
    )
    .await;
    let destroyed = gone.unwrap().resources;
    // The whole group is gone, including the backgrounded `sleep`.
    assert_eq!(live_in_group(d.pid), Vec::<i32>::new());
    // Checked against what was stored at deploy, the process is down; against what destroy
    // returned, every resource is missing.
    let (s, _) = call(&*c, Function::Status, &core, vec![d.to_any()], r.resources).await;
    let s = s.unwrap();
    let process = s.resources.iter().find(|r| r.r#type == "process").unwrap();
    assert_eq!(process.health(), Health::Down);
    let (s, _) = call(&*c, Function::Status, &core, vec![d.to_any()], destroyed).await;
    assert_eq!(s.unwrap().health, Some(Health::Missing));
}

#[tokio::test]
async fn exec_failure_shows_output_and_rolls_back() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let h = host(t.path());
    let c = component(
        &h,
        ComponentKind::Platform,
        "exec",
        json!({"command": ["sh", "-c", "echo oops >&2; exit 3"]}),
    )
    .await;
    let (r, _) = call(
        &*c,
        Function::Deploy,
        &core(t.path(), &data),
        vec![Files::default().to_any()],
        vec![],
    )
    .await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "`sh -c echo oops >&2; exit 3` exit status: 3; last output:\noops"
    );
    assert!(!data.join("exec-v3.log").exists());

    let c = component(
        &h,
        ComponentKind::Platform,
        "exec",
        json!({"command": ["{{.Env.NOPE}}"]}),
    )
    .await;
    let (r, _) = call(
        &*c,
        Function::Deploy,
        &core(t.path(), &data),
        vec![Files::default().to_any()],
        vec![],
    )
    .await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "invalid config: command[0]: `{{.Env.NOPE}}`: no value `NOPE` (known: GREETING, PORT)"
    );
    let (r, _) = call(
        &*c,
        Function::Deploy,
        &core(t.path(), &data),
        vec![],
        vec![],
    )
    .await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "platform \"exec\" `deploy` needs a `*` input, got none"
    );
}

#[tokio::test]
async fn files_builder_and_registry_copy_and_destroy() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("dist/sub")).unwrap();
    std::fs::write(src.join("dist/sub/a.txt"), "a").unwrap();
    let h = host(t.path());
    let core = core(&src, &t.path().join("data"));
    let b = component(&h, ComponentKind::Builder, "files", json!({"path": "dist"})).await;
    let (built, _) = call(&*b, Function::Build, &core, vec![], vec![]).await;
    let built = built.unwrap();
    assert_eq!(
        built.template_data["path"],
        src.join("dist").display().to_string()
    );

    let r = component(
        &h,
        ComponentKind::Registry,
        "files",
        json!({"path": "../out"}),
    )
    .await;
    assert_eq!(r.accepts(), [Files::TYPE_NAME]);
    let (pushed, _) = call(
        &*r,
        Function::Push,
        &core,
        vec![built.value.unwrap()],
        vec![],
    )
    .await;
    let pushed = pushed.unwrap();
    let copy = t.path().join("src/../out/dist/sub/a.txt");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "a");
    let (d, _) = call(
        &*r,
        Function::Destroy,
        &core,
        vec![pushed.value.unwrap()],
        pushed.resources,
    )
    .await;
    d.unwrap();
    assert!(!copy.exists());

    let b = component(
        &h,
        ComponentKind::Builder,
        "files",
        json!({"path": "missing"}),
    )
    .await;
    let (e, _) = call(&*b, Function::Build, &core, vec![], vec![]).await;
    assert_eq!(
        e.unwrap_err().to_string(),
        format!("`{}` does not exist", src.join("missing").display())
    );
    let err = h
        .component(ComponentKind::Registry, "files")
        .await
        .unwrap()
        .configure(json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "missing field `path`");
}

#[tokio::test]
async fn null_runs_every_stage_and_fails_on_request() {
    let t = tempfile::tempdir().unwrap();
    let h = host(t.path());
    let core = core(t.path(), t.path());
    let mut value = None;
    for (kind, f) in [
        (ComponentKind::Builder, Function::Build),
        (ComponentKind::Registry, Function::Push),
        (ComponentKind::Platform, Function::Deploy),
        (ComponentKind::ReleaseManager, Function::Release),
    ] {
        let c = component(&h, kind, "null", json!({"url": "http://x"})).await;
        let (r, _) = call(&*c, f, &core, value.take().into_iter().collect(), vec![]).await;
        let r = r.unwrap();
        assert_eq!(r.url.as_deref(), Some("http://x"));
        value = r.value;
    }
    let p = h.component(ComponentKind::Platform, "null").await.unwrap();
    assert_eq!(p.info().default_release_manager.as_deref(), Some("null"));
    let c = component(
        &h,
        ComponentKind::Builder,
        "null",
        json!({"fail": "no luck"}),
    )
    .await;
    let (r, _) = call(&*c, Function::Build, &core, vec![], vec![]).await;
    assert_eq!(r.unwrap_err().to_string(), "no luck");
}

#[tokio::test]
async fn every_builtin_component_is_documented() {
    let t = tempfile::tempdir().unwrap();
    let h = host(t.path());
    for p in h.builtins().plugins() {
        for k in p.kinds() {
            let c = h.component(k, &p.name).await.unwrap();
            assert!(c.info().docs.is_some(), "{} {k} has no docs", p.name);
        }
    }
}

#[tokio::test]
async fn null_config_sourcer_reads_static_values_and_config_keys() {
    use wayline_proto::plugin::v1::{ConfigRequest, ConfigRequests, ConfigValues};
    let t = tempfile::tempdir().unwrap();
    let h = host(t.path());
    let c = component(
        &h,
        ComponentKind::ConfigSourcer,
        "null",
        json!({"values": {"db": "postgres://db"}}),
    )
    .await;
    let req = |name: &str, k: &str, v: &str| ConfigRequest {
        name: name.into(),
        config: [(k.to_owned(), v.to_owned())].into(),
    };
    let requests = ConfigRequests {
        requests: vec![
            req("A", "static_value", "fixed"),
            req("B", "config_key", "db"),
            req("C", "config_key", "missing"),
            req("D", "value", "old-style"),
        ],
    };
    let core = core(t.path(), t.path());
    let (r, _) = call(
        &*c,
        Function::ReadConfig,
        &core,
        vec![requests.to_any()],
        vec![],
    )
    .await;
    let values = ConfigValues::from_any(&r.unwrap().value.unwrap()).unwrap();
    let got: Vec<(String, String, String)> = values
        .values
        .into_iter()
        .map(|v| (v.name, v.value, v.error))
        .collect();
    assert_eq!(
        got,
        [
            ("A".into(), "fixed".into(), String::new()),
            ("B".into(), "postgres://db".into(), String::new()),
            (
                "C".into(),
                String::new(),
                "the null config sourcer has no value for key `missing`".into()
            ),
            ("D".into(), "old-style".into(), String::new()),
        ]
    );
}
