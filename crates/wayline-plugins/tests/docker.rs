//! The docker plugins against a real Docker engine, called through the SDK's handle API like the
//! runner calls them. Without an engine these tests print why and pass, unless
//! `WAYLINE_REQUIRE_DOCKER=1` (CI), where they fail.
#![cfg(feature = "docker")]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Once};

use serde_json::json;
use wayline_plugin::prost_types::Any;
use wayline_plugin::{
    Call, CallResult, CollectingUi, ComponentHandle, ComponentKind, CoreValues, Function, Health,
    JobInfo, PluginError, PluginHost, Ui, Value, pb,
};
use wayline_plugins::docker::{Deployment, Image, Release};
use wayline_testkit::free_port;

/// Whether a Docker engine answers; otherwise says why (and fails in CI).
fn docker_ready(test: &str) -> bool {
    setup();
    wayline_testkit::docker_engine(test)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker")
}

static SETUP: Once = Once::new();

/// Points the builder at the test stand-in entrypoint.
fn setup() {
    SETUP.call_once(|| {
        let ep = fixtures().join("fake-entrypoint.sh");
        // SAFETY: every test in this binary calls `setup` before anything else, so this single
        // write (guarded by the Once) happens before any test reads the environment.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("WAYLINE_ENTRYPOINT_BINARY", ep);
        }
    });
}

/// A unique, engine-safe app name per test run.
fn app_name(test: &str) -> String {
    format!("wl-{test}-{}", std::process::id())
}

/// Removes whatever a failed test left labelled with its app, so one failure doesn't leave
/// containers and images on the machine. (Passing tests assert nothing is left instead.)
struct CleanupOnPanic(String);

impl Drop for CleanupOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let filter = format!("label=wayline.app={}", self.0);
        let list = |args: &[&str]| {
            Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        for id in list(&["ps", "-aq", "--filter", &filter]) {
            let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        }
        for tag in list(&[
            "images",
            "--filter",
            &filter,
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ]) {
            let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
        }
        for net in list(&["network", "ls", "-q", "--filter", &filter]) {
            let _ = Command::new("docker")
                .args(["network", "rm", &net])
                .output();
        }
    }
}

/// The busybox example copied into a temp dir with the busybox binary, as `prepare.sh` does.
fn example_context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox-docker");
    for f in ["Dockerfile", "index.html", ".dockerignore", "README.md"] {
        std::fs::copy(example.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", dir.path().join("busybox")).unwrap();
    dir
}

fn core(
    app: &str,
    source: &Path,
    sequence: u64,
    deployment_id: &str,
    env: BTreeMap<String, String>,
) -> CoreValues {
    CoreValues {
        job: JobInfo {
            id: format!("job-{sequence}"),
            project: "tests".into(),
            app: app.into(),
            workspace: "default".into(),
            sequence,
            deployment_id: deployment_id.into(),
        },
        source_path: source.to_owned(),
        deployment_env: env,
        ..CoreValues::default()
    }
}

struct Harness {
    host: PluginHost,
}

impl Harness {
    fn new() -> Self {
        Self {
            host: PluginHost::new(wayline_plugins::builtins(), Vec::new()),
        }
    }

    async fn handle(
        &self,
        kind: ComponentKind,
        name: &str,
        config: serde_json::Value,
    ) -> Arc<dyn ComponentHandle> {
        let h = self.host.component(kind, name).await.unwrap();
        h.configure(config).await.unwrap();
        h
    }

    async fn call(
        handle: &Arc<dyn ComponentHandle>,
        function: Function,
        core: CoreValues,
        inputs: Vec<Any>,
        resources: Vec<wayline_plugin::DeclaredResource>,
    ) -> (Result<CallResult, PluginError>, Arc<CollectingUi>) {
        let (ui, lines) = Ui::collecting();
        let mut call = Call::new(function, core, ui, wayline_plugin::CancellationToken::new())
            .resources(resources);
        for i in inputs {
            call = call.input(i);
        }
        (handle.call(call).await, lines)
    }
}

fn value<T: Value>(r: &CallResult) -> T {
    T::from_any(r.value.as_ref().expect("a value")).unwrap()
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Everything labelled with the app: containers, image tags, networks.
fn leftovers(app: &str) -> Vec<String> {
    let filter = format!("label=wayline.app={app}");
    let mut left = Vec::new();
    for (what, args) in [
        (
            "container",
            vec!["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
        ),
        (
            "image",
            vec![
                "images",
                "--filter",
                &filter,
                "--format",
                "{{.Repository}}:{{.Tag}}",
            ],
        ),
        (
            "network",
            vec![
                "network",
                "ls",
                "--filter",
                &filter,
                "--format",
                "{{.Name}}",
            ],
        ),
    ] {
        for line in docker(&args).lines().filter(|l| !l.is_empty()) {
            left.push(format!("{what} {line}"));
        }
    }
    left
}

fn http_get(url: &str) -> String {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

fn inspect(reference: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, reference])
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_deploy_release_redeploy_destroy_leaves_nothing() {
    if !docker_ready("build_deploy_release_redeploy_destroy_leaves_nothing") {
        return;
    }
    let app = app_name("lifecycle");
    let _cleanup = CleanupOnPanic(app.clone());
    let ctx_dir = example_context();
    let h = Harness::new();
    let no_env = BTreeMap::new;

    // Build: the example's Dockerfile, with the entrypoint injected.
    let builder = h.handle(ComponentKind::Builder, "docker", json!({})).await;
    let (built, ui) = Harness::call(
        &builder,
        Function::Build,
        core(&app, ctx_dir.path(), 1, "", no_env()),
        vec![],
        vec![],
    )
    .await;
    let built = built.unwrap();
    let image: Image = value(&built);
    assert_eq!(image.image, format!("wayline.local/{app}"));
    assert_eq!(image.tag, "v1");
    assert_eq!(
        built.template_data,
        json!({"image": image.image, "tag": "v1", "builder": "buildkit"})
    );
    assert_eq!(ui.lines()[0], "Building image with BuildKit");
    assert!(
        ui.lines()
            .iter()
            .any(|l| l.starts_with('#') && l.contains(" [1/3] COPY busybox /bin/busybox")),
        "{:?}",
        ui.lines()
    );
    assert_eq!(
        inspect(&image.reference(), "{{json .Config.Entrypoint}}"),
        r#"["/bin/wayline-entrypoint","--"]"#
    );
    assert_eq!(
        inspect(&image.reference(), "{{json .Config.Cmd}}"),
        r#"["/bin/busybox","httpd","-f","-p","3000","-h","/www"]"#
    );

    // The same build again: the user's build and the injection are both cache hits, so it is
    // the same image, and the entrypoint is not sent to the engine again.
    let (rebuilt, ui) = Harness::call(
        &builder,
        Function::Build,
        core(&app, ctx_dir.path(), 1, "", no_env()),
        vec![],
        vec![],
    )
    .await;
    let rebuilt: Image = value(&rebuilt.unwrap());
    assert_eq!(rebuilt.id, image.id);
    assert!(
        ui.lines()
            .iter()
            .any(|l| l == "Injecting wayline-entrypoint… (cached)"),
        "{:?}",
        ui.lines()
    );
    assert_eq!(
        inspect(
            &image.reference(),
            "{{index .Config.Labels \"wayline.app\"}}"
        ),
        app
    );

    // Registry, local only: a tag, no push.
    let registry = h
        .handle(
            ComponentKind::Registry,
            "docker",
            json!({"image": format!("wayline-test/{app}"), "tag": "one", "local": true}),
        )
        .await;
    let (pushed, _) = Harness::call(
        &registry,
        Function::Push,
        core(&app, ctx_dir.path(), 1, "", no_env()),
        vec![image.to_any()],
        vec![],
    )
    .await;
    let pushed = pushed.unwrap();
    let pushed_image: Image = value(&pushed);
    assert_eq!(pushed_image.reference(), format!("wayline-test/{app}:one"));

    // Deploy: the server's socket directory is mounted, the page answers on 127.0.0.1.
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("server.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let env = BTreeMap::from([
        ("WAYLINE_DEPLOYMENT_ID".to_owned(), "dep1".to_owned()),
        (
            "WAYLINE_SERVER_ADDR".to_owned(),
            format!("unix://{}", sock.display()),
        ),
    ]);
    let network = format!("{app}-net");
    let platform = h
        .handle(
            ComponentKind::Platform,
            "docker",
            json!({"networks": [network]}),
        )
        .await;
    assert_eq!(
        platform.info().default_release_manager.as_deref(),
        Some("docker")
    );
    let (d1, _) = Harness::call(
        &platform,
        Function::Deploy,
        core(&app, ctx_dir.path(), 1, "dep1", env),
        vec![pushed_image.to_any()],
        vec![],
    )
    .await;
    let d1 = d1.unwrap();
    let dep1: Deployment = value(&d1);
    assert_eq!(dep1.name, format!("{app}-dep1"));
    assert_eq!(d1.template_data["url"], json!(dep1.url));
    assert_eq!(d1.template_data["container_id"], json!(dep1.container_id));
    assert_eq!(
        d1.resources
            .iter()
            .map(|r| (r.r#type.as_str(), r.name.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("network", network.clone()),
            ("container", dep1.name.clone()),
        ]
    );
    assert!(http_get(&dep1.url).contains("Hello from busybox, deployed by Wayline"));
    let binds = inspect(&dep1.container_id, "{{json .HostConfig.Binds}}");
    assert_eq!(binds, format!(r#"["{0}:{0}"]"#, sock_dir.path().display()));
    let env_json = inspect(&dep1.container_id, "{{json .Config.Env}}");
    assert!(
        env_json.contains(r#""PORT=3000""#) && env_json.contains(r#""WAYLINE_DEPLOYMENT_ID=dep1""#),
        "{env_json}"
    );
    assert_eq!(
        inspect(
            &dep1.container_id,
            r#"{{index .Config.Labels "wayline.deployment-id"}}"#
        ),
        "dep1"
    );

    let (s1, _) = Harness::call(
        &platform,
        Function::Status,
        core(&app, ctx_dir.path(), 1, "dep1", no_env()),
        vec![dep1.to_any()],
        d1.resources.clone(),
    )
    .await;
    assert_eq!(s1.unwrap().health, Some(Health::Ready));

    // Release through the platform's default release manager.
    let releaser = h
        .handle(ComponentKind::ReleaseManager, "docker", json!({}))
        .await;
    let (rel, _) = Harness::call(
        &releaser,
        Function::Release,
        core(&app, ctx_dir.path(), 1, "dep1", no_env()),
        vec![dep1.to_any()],
        vec![],
    )
    .await;
    let rel = rel.unwrap();
    let release: Release = value(&rel);
    assert_eq!(rel.url.as_deref(), Some(dep1.url.as_str()));
    assert_eq!(release.url, dep1.url);

    // A second deployment on a fixed host port, sharing the network.
    let port = free_port();
    let platform2 = h
        .handle(
            ComponentKind::Platform,
            "docker",
            json!({"networks": [network], "host_port": port,
                   "command": ["/bin/busybox", "sh", "-c", "echo serving; exec /bin/busybox httpd -f -p 3000 -h /www"]}),
        )
        .await;
    let (d2, _) = Harness::call(
        &platform2,
        Function::Deploy,
        core(&app, ctx_dir.path(), 2, "dep2", no_env()),
        vec![pushed_image.to_any()],
        vec![],
    )
    .await;
    let d2 = d2.unwrap();
    let dep2: Deployment = value(&d2);
    assert_eq!(dep2.url, format!("http://127.0.0.1:{port}"));
    assert!(http_get(&dep2.url).contains("Hello from busybox"));

    // Logs come from the engine, exec runs inside the container.
    let (logs, _) = Harness::call(
        &platform2,
        Function::Logs,
        core(&app, ctx_dir.path(), 2, "dep2", no_env()),
        vec![dep2.to_any(), pb::LogsRequest::default().to_any()],
        vec![],
    )
    .await;
    let logs: pb::LogBatch = value(&logs.unwrap());
    assert_eq!(
        logs.lines
            .iter()
            .map(|l| (l.line.as_str(), l.source.as_str()))
            .collect::<Vec<_>>(),
        vec![("serving", "stdout")]
    );
    assert!(logs.lines[0].timestamp_unix_ms > 0);
    let request = pb::ExecRequest {
        args: vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "cat /www/index.html; echo $GREETING >&2; exit 4".into(),
        ],
        env: [("GREETING".to_owned(), "hi".to_owned())].into(),
    };
    let (ran, _) = Harness::call(
        &platform2,
        Function::Exec,
        core(&app, ctx_dir.path(), 2, "dep2", no_env()),
        vec![dep2.to_any(), request.to_any()],
        vec![],
    )
    .await;
    let ran: pb::ExecResult = value(&ran.unwrap());
    assert_eq!(ran.exit_code, 4);
    assert!(String::from_utf8_lossy(&ran.stdout).contains("Hello from busybox"));
    assert_eq!(String::from_utf8_lossy(&ran.stderr), "hi\n");

    // Destroy the first: its container goes, the network stays for the second.
    let (gone, _) = Harness::call(
        &platform,
        Function::Destroy,
        core(&app, ctx_dir.path(), 1, "dep1", no_env()),
        vec![dep1.to_any()],
        d1.resources.clone(),
    )
    .await;
    assert!(gone.unwrap().resources.iter().all(|r| r.destroyed));
    let (s1, _) = Harness::call(
        &platform,
        Function::Status,
        core(&app, ctx_dir.path(), 1, "dep1", no_env()),
        vec![dep1.to_any()],
        d1.resources.clone(),
    )
    .await;
    let s1 = s1.unwrap();
    assert_eq!(
        s1.resources
            .iter()
            .find(|r| r.r#type == "container")
            .unwrap()
            .health(),
        Health::Missing
    );
    assert!(http_get(&dep2.url).contains("Hello from busybox"));

    // A third deployment on the same fixed host port takes it over: the second one is stopped
    // (DOWN), the page answers from the third at the same URL.
    let (d3, ui) = Harness::call(
        &platform2,
        Function::Deploy,
        core(&app, ctx_dir.path(), 3, "dep3", no_env()),
        vec![pushed_image.to_any()],
        vec![],
    )
    .await;
    let d3 = d3.unwrap();
    let dep3: Deployment = value(&d3);
    assert_eq!(dep3.url, dep2.url);
    assert!(
        ui.lines()
            .contains(&format!("Stopped {} to free host port {port}", dep2.name)),
        "{:?}",
        ui.lines()
    );
    assert!(http_get(&dep3.url).contains("Hello from busybox"));
    let container_health = |r: CallResult| {
        r.resources
            .iter()
            .find(|r| r.r#type == "container")
            .unwrap()
            .health()
    };
    let status = |d: &Deployment, res: &CallResult| {
        Harness::call(
            &platform2,
            Function::Status,
            core(&app, ctx_dir.path(), 2, &d.id, no_env()),
            vec![d.to_any()],
            res.resources.clone(),
        )
    };
    assert_eq!(
        container_health(status(&dep2, &d2).await.0.unwrap()),
        Health::Down
    );

    // Rolling back: releasing the second again stops the third and starts the second.
    let (rel2, ui) = Harness::call(
        &releaser,
        Function::Release,
        core(&app, ctx_dir.path(), 2, "dep2", no_env()),
        vec![dep2.to_any()],
        vec![],
    )
    .await;
    assert_eq!(rel2.unwrap().url.as_deref(), Some(dep2.url.as_str()));
    assert!(
        ui.lines()
            .contains(&format!("Stopped {} to free host port {port}", dep3.name)),
        "{:?}",
        ui.lines()
    );
    assert_eq!(
        container_health(status(&dep2, &d2).await.0.unwrap()),
        Health::Ready
    );
    assert_eq!(
        container_health(status(&dep3, &d3).await.0.unwrap()),
        Health::Down
    );
    assert!(http_get(&dep2.url).contains("Hello from busybox"));
    let (gone, _) = Harness::call(
        &platform2,
        Function::Destroy,
        core(&app, ctx_dir.path(), 3, "dep3", no_env()),
        vec![dep3.to_any()],
        d3.resources.clone(),
    )
    .await;
    gone.unwrap();

    // Destroy the rest: second deployment, the local tag, the build.
    let (gone, _) = Harness::call(
        &platform2,
        Function::Destroy,
        core(&app, ctx_dir.path(), 2, "dep2", no_env()),
        vec![dep2.to_any()],
        d2.resources.clone(),
    )
    .await;
    gone.unwrap();
    let (gone, _) = Harness::call(
        &registry,
        Function::Destroy,
        core(&app, ctx_dir.path(), 1, "", no_env()),
        vec![pushed_image.to_any()],
        pushed.resources.clone(),
    )
    .await;
    gone.unwrap();
    let (gone, _) = Harness::call(
        &builder,
        Function::Destroy,
        core(&app, ctx_dir.path(), 1, "", no_env()),
        vec![image.to_any()],
        built.resources.clone(),
    )
    .await;
    gone.unwrap();
    assert_eq!(leftovers(&app), Vec::<String>::new());
    assert_eq!(
        docker(&["images", "-q", &format!("wayline-test/{app}")]),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_dockerfile_shows_its_error() {
    if !docker_ready("failing_dockerfile_shows_its_error") {
        return;
    }
    let app = app_name("badbuild");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new();
    // The classic builder's errors (BuildKit's: `buildkit::a_failing_step_is_the_build_error`).
    let builder = h
        .handle(
            ComponentKind::Builder,
            "docker",
            json!({"disable_entrypoint": true, "buildkit": false}),
        )
        .await;

    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY missing-file /missing-file\n",
    )
    .unwrap();
    let (r, _) = Harness::call(
        &builder,
        Function::Build,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "docker build failed at `Step 2/3 : COPY missing-file /missing-file`: COPY failed: file not found in build context or excluded by .dockerignore: stat missing-file: file does not exist"
    );

    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nBOGUS x\n").unwrap();
    let (r, _) = Harness::call(
        &builder,
        Function::Build,
        core(&app, dir.path(), 2, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "docker build failed: dockerfile parse error line 2: unknown instruction: BOGUS"
    );
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_args_target_dockerfile_and_context_reach_the_build() {
    if !docker_ready("build_args_target_dockerfile_and_context_reach_the_build") {
        return;
    }
    let app = app_name("buildopts");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("docker")).unwrap();
    std::fs::create_dir_all(dir.path().join("site")).unwrap();
    std::fs::write(dir.path().join("site/page.txt"), "page").unwrap();
    std::fs::write(
        dir.path().join("docker/Web.Dockerfile"),
        "FROM scratch AS base\nARG GREETING\nLABEL greeting=$GREETING\nCOPY page.txt /page.txt\nFROM base AS final\nLABEL stage=final\n",
    )
    .unwrap();
    let h = Harness::new();
    let builder = h
        .handle(
            ComponentKind::Builder,
            "docker",
            json!({"dockerfile": "docker/Web.Dockerfile", "context": "site", "target": "base",
                   "build_args": {"GREETING": "hello"}, "no_cache": true, "disable_entrypoint": true}),
        )
        .await;
    let (built, _) = Harness::call(
        &builder,
        Function::Build,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let built = built.unwrap();
    let image: Image = value(&built);
    assert_eq!(
        inspect(&image.reference(), r#"{{index .Config.Labels "greeting"}}"#),
        "hello"
    );
    // The build stopped at `target`: the later stage's label is absent.
    let labels = inspect(&image.reference(), "{{json .Config.Labels}}");
    assert!(!labels.contains("stage"), "{labels}");
    let (gone, _) = Harness::call(
        &builder,
        Function::Destroy,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![image.to_any()],
        built.resources,
    )
    .await;
    gone.unwrap();
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moving_tag_belongs_to_its_latest_push_and_deploys_run_their_own_image() {
    if !docker_ready("a_moving_tag_belongs_to_its_latest_push_and_deploys_run_their_own_image") {
        return;
    }
    let app = app_name("moving");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = example_context();
    let h = Harness::new();
    let builder = h.handle(ComponentKind::Builder, "docker", json!({})).await;
    let registry = h
        .handle(
            ComponentKind::Registry,
            "docker",
            json!({"image": format!("wayline-test/{app}"), "tag": "latest", "local": true}),
        )
        .await;
    let mut builds = Vec::new();
    let mut pushes = Vec::new();
    for (seq, text) in [(1, "first version"), (2, "second version")] {
        std::fs::write(dir.path().join("index.html"), format!("<h1>{text}</h1>\n")).unwrap();
        let (b, _) = Harness::call(
            &builder,
            Function::Build,
            core(&app, dir.path(), seq, "", BTreeMap::new()),
            vec![],
            vec![],
        )
        .await;
        let b = b.unwrap();
        let (p, _) = Harness::call(
            &registry,
            Function::Push,
            core(&app, dir.path(), seq, "", BTreeMap::new()),
            vec![b.value.clone().unwrap()],
            vec![],
        )
        .await;
        pushes.push(p.unwrap());
        builds.push(b);
    }
    // `latest` now names the second build; deploying the first push still runs the first image.
    let platform = h.handle(ComponentKind::Platform, "docker", json!({})).await;
    let first: Image = value(&pushes[0]);
    let (d, _) = Harness::call(
        &platform,
        Function::Deploy,
        core(&app, dir.path(), 1, "dep1", BTreeMap::new()),
        vec![first.to_any()],
        vec![],
    )
    .await;
    let d = d.unwrap();
    let dep: Deployment = value(&d);
    assert!(http_get(&dep.url).contains("first version"));
    let (gone, _) = Harness::call(
        &platform,
        Function::Destroy,
        core(&app, dir.path(), 1, "dep1", BTreeMap::new()),
        vec![dep.to_any()],
        d.resources,
    )
    .await;
    gone.unwrap();

    // Destroying the first push leaves `latest` to the second, which removes it.
    let latest = format!("wayline-test/{app}:latest");
    let second: Image = value(&pushes[1]);
    let (gone, _) = Harness::call(
        &registry,
        Function::Destroy,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![first.to_any()],
        pushes[0].resources.clone(),
    )
    .await;
    gone.unwrap();
    assert_eq!(inspect(&latest, "{{.Id}}"), second.id);
    let (gone, _) = Harness::call(
        &registry,
        Function::Destroy,
        core(&app, dir.path(), 2, "", BTreeMap::new()),
        vec![second.to_any()],
        pushes[1].resources.clone(),
    )
    .await;
    gone.unwrap();
    assert_eq!(docker(&["images", "-q", &latest]), "");
    for b in builds {
        let img: Image = value(&b);
        let (gone, _) = Harness::call(
            &builder,
            Function::Destroy,
            core(&app, dir.path(), 1, "", BTreeMap::new()),
            vec![img.to_any()],
            b.resources,
        )
        .await;
        gone.unwrap();
    }
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_that_exits_at_once_fails_with_its_logs() {
    if !docker_ready("container_that_exits_at_once_fails_with_its_logs") {
        return;
    }
    let app = app_name("crash");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = example_context();
    let h = Harness::new();
    let builder = h.handle(ComponentKind::Builder, "docker", json!({})).await;
    let (built, _) = Harness::call(
        &builder,
        Function::Build,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let built = built.unwrap();
    let image: Image = value(&built);

    // Both lines on stderr: the engine does not keep stdout and stderr lines in order relative
    // to each other.
    let platform = h
        .handle(
            ComponentKind::Platform,
            "docker",
            json!({"command": ["/bin/busybox", "sh", "-c", "echo starting >&2; echo 'fatal: no config' >&2; exit 3"], "networks": [format!("{app}-net")]}),
        )
        .await;
    let (r, _) = Harness::call(
        &platform,
        Function::Deploy,
        core(&app, dir.path(), 1, "dep1", BTreeMap::new()),
        vec![image.to_any()],
        vec![],
    )
    .await;
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "container `{app}-dep1` exited at once with code 3; its last log lines:\nstarting\nfatal: no config"
        )
    );
    // The failed deploy removed its container and network; only the build is left.
    assert_eq!(
        leftovers(&app),
        vec![format!("image {}", image.reference())]
    );
    let (gone, _) = Harness::call(
        &builder,
        Function::Destroy,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![image.to_any()],
        built.resources,
    )
    .await;
    gone.unwrap();
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

/// A `docker-registry serve` on a free loopback port with storage in a temp dir.
struct LocalRegistry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    /// `read_only`: refuses every push. `htpasswd`: requires user `wayline`, password
    /// `wayline-pw` (the fixture's bcrypt hash).
    fn start(read_only: bool, htpasswd: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    readonly:\n      enabled: {read_only}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if htpasswd {
            let path = fixtures().join("htpasswd");
            config.push_str("auth:\n  htpasswd:\n    realm: wayline-test\n    path: ");
            config.push_str(&path.display().to_string());
            config.push('\n');
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", cfg.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry) is installed");
        // Wait until it answers; a registry that never comes up fails the connect below.
        wayline_testkit::eventually(std::time::Duration::from_secs(5), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    fn tags(&self, repo: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "GET /v2/{repo}/tags/list HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        body
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_a_registry_and_a_rejected_push() {
    if !docker_ready("push_to_a_registry_and_a_rejected_push") {
        return;
    }
    let app = app_name("push");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = example_context();
    let h = Harness::new();
    let builder = h
        .handle(
            ComponentKind::Builder,
            "docker",
            json!({"disable_entrypoint": true}),
        )
        .await;
    let (built, _) = Harness::call(
        &builder,
        Function::Build,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let built = built.unwrap();
    let image: Image = value(&built);

    let registry = LocalRegistry::start(false, false);
    let repo = format!("127.0.0.1:{}/{app}", registry.port);
    let push = h
        .handle(
            ComponentKind::Registry,
            "docker",
            json!({"image": repo, "tag": "v1", "username": "u", "password": "p"}),
        )
        .await;
    let (pushed, ui) = Harness::call(
        &push,
        Function::Push,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![image.to_any()],
        vec![],
    )
    .await;
    let pushed = pushed.unwrap();
    let pushed_image: Image = value(&pushed);
    assert!(!pushed_image.local);
    assert!(
        ui.lines().contains(&format!("Pushed {repo}:v1")),
        "{:?}",
        ui.lines()
    );
    assert!(
        registry.tags(&app).contains(r#""tags":["v1"]"#),
        "{}",
        registry.tags(&app)
    );
    let (gone, _) = Harness::call(
        &push,
        Function::Destroy,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![pushed_image.to_any()],
        pushed.resources,
    )
    .await;
    gone.unwrap();

    let read_only = LocalRegistry::start(true, false);
    let repo = format!("127.0.0.1:{}/{app}", read_only.port);
    let push = h
        .handle(
            ComponentKind::Registry,
            "docker",
            json!({"image": repo, "tag": "v1"}),
        )
        .await;
    let (r, _) = Harness::call(
        &push,
        Function::Push,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![image.to_any()],
        vec![],
    )
    .await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("pushing `{repo}:v1` failed: ")),
        "{err}"
    );
    // The engine passes on the registry's refusal (distribution answers 405 in read-only mode).
    assert!(
        err.contains("HTTP 405") && err.contains("Method not allowed"),
        "{err}"
    );
    // The rejected push removed the tag it made for it.
    assert_eq!(docker(&["images", "-q", &repo]), "");

    // A registry with htpasswd auth: the wrong password is refused, the right one pushes.
    let guarded = LocalRegistry::start(false, true);
    let repo = format!("127.0.0.1:{}/{app}", guarded.port);
    let wrong = h
        .handle(
            ComponentKind::Registry,
            "docker",
            json!({"image": repo, "tag": "v1", "username": "wayline", "password": "nope"}),
        )
        .await;
    let (r, _) = Harness::call(
        &wrong,
        Function::Push,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![image.to_any()],
        vec![],
    )
    .await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("pushing `{repo}:v1` failed: ")),
        "{err}"
    );
    assert!(err.contains("authentication required"), "{err}");
    let right = h
        .handle(ComponentKind::Registry, "docker", json!({"image": repo, "tag": "v1", "auth": {"username": "wayline", "password": "wayline-pw"}}))
        .await;
    let (ok, _) = Harness::call(
        &right,
        Function::Push,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![image.to_any()],
        vec![],
    )
    .await;
    let ok = ok.unwrap();
    assert!(
        guarded.tags(&app).contains("UNAUTHORIZED"),
        "anonymous reads are refused too"
    );
    let (gone, _) = Harness::call(
        &right,
        Function::Destroy,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![value::<Image>(&ok).to_any()],
        ok.resources,
    )
    .await;
    gone.unwrap();
    assert_eq!(docker(&["images", "-q", &format!("{repo}:v1")]), "");

    // docker-pull fetches the missing image through the engine, with the registry's auth.
    let pull_wrong = h
        .handle(ComponentKind::Builder, "docker-pull", json!({"image": repo, "tag": "v1", "auth": {"username": "wayline", "password": "nope"}}))
        .await;
    let (r, _) = Harness::call(
        &pull_wrong,
        Function::Build,
        core(&app, dir.path(), 2, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("pulling `{repo}:v1` failed: ")),
        "{err}"
    );
    assert!(err.contains("unauthorized"), "{err}");
    let pull = h
        .handle(ComponentKind::Builder, "docker-pull", json!({"image": repo, "tag": "v1", "auth": {"username": "wayline", "password": "wayline-pw"}}))
        .await;
    let (p, ui) = Harness::call(
        &pull,
        Function::Build,
        core(&app, dir.path(), 2, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let p = p.unwrap();
    let pulled: Image = value(&p);
    assert!(
        ui.lines().contains(&format!("Pulling {repo}:v1")),
        "{:?}",
        ui.lines()
    );
    assert_eq!(
        pulled.created_tags,
        vec![format!("wayline.local/{app}:v2"), format!("{repo}:v1")]
    );
    assert_eq!(
        inspect(&pulled.reference(), "{{json .Config.Entrypoint}}"),
        r#"["/bin/wayline-entrypoint","--"]"#
    );
    let (gone, _) = Harness::call(
        &pull,
        Function::Destroy,
        core(&app, dir.path(), 2, "", BTreeMap::new()),
        vec![pulled.to_any()],
        p.resources,
    )
    .await;
    gone.unwrap();

    let (gone, _) = Harness::call(
        &builder,
        Function::Destroy,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![image.to_any()],
        built.resources,
    )
    .await;
    gone.unwrap();
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_ref_and_docker_pull_use_existing_images() {
    if !docker_ready("docker_ref_and_docker_pull_use_existing_images") {
        return;
    }
    let app = app_name("existing");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = example_context();
    let h = Harness::new();
    let builder = h
        .handle(
            ComponentKind::Builder,
            "docker",
            json!({"disable_entrypoint": true, "buildkit": true}),
        )
        .await;
    let (built, ui) = Harness::call(
        &builder,
        Function::Build,
        core(&app, dir.path(), 1, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let built = built.unwrap();
    let base: Image = value(&built);
    assert!(
        ui.lines()
            .contains(&"Building image with BuildKit".to_owned()),
        "{:?}",
        ui.lines()
    );
    assert_eq!(
        inspect(&base.reference(), "{{json .Config.Entrypoint}}"),
        "null"
    );

    let reference = h
        .handle(
            ComponentKind::Builder,
            "docker-ref",
            json!({"image": base.image, "tag": base.tag}),
        )
        .await;
    let (r, _) = Harness::call(
        &reference,
        Function::Build,
        core(&app, dir.path(), 2, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let same: Image = value(&r.unwrap());
    assert_eq!(
        (same.reference(), same.id.clone(), same.created_tags.len()),
        (base.reference(), base.id.clone(), 0)
    );

    let pull = h
        .handle(
            ComponentKind::Builder,
            "docker-pull",
            json!({"image": base.image, "tag": base.tag}),
        )
        .await;
    let (p, _) = Harness::call(
        &pull,
        Function::Build,
        core(&app, dir.path(), 3, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let p = p.unwrap();
    let pulled: Image = value(&p);
    assert_eq!(pulled.reference(), format!("wayline.local/{app}:v3"));
    assert_eq!(
        inspect(&pulled.reference(), "{{json .Config.Entrypoint}}"),
        r#"["/bin/wayline-entrypoint","--"]"#
    );

    // Pulling the injected image again does not inject twice.
    let again = h
        .handle(
            ComponentKind::Builder,
            "docker-pull",
            json!({"image": pulled.image, "tag": pulled.tag}),
        )
        .await;
    let (a, ui) = Harness::call(
        &again,
        Function::Build,
        core(&app, dir.path(), 4, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    let a = a.unwrap();
    let twice: Image = value(&a);
    assert!(
        ui.lines()
            .iter()
            .any(|l| l.contains("not injecting it twice")),
        "{:?}",
        ui.lines()
    );
    assert_eq!(
        inspect(&twice.reference(), "{{json .Config.Entrypoint}}"),
        r#"["/bin/wayline-entrypoint","--"]"#
    );

    for (handle, r, img) in [
        (&again, a, twice),
        (&pull, p, pulled),
        (&builder, built, base),
    ] {
        let (gone, _) = Harness::call(
            handle,
            Function::Destroy,
            core(&app, dir.path(), 1, "", BTreeMap::new()),
            vec![img.to_any()],
            r.resources,
        )
        .await;
        gone.unwrap();
    }
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

#[tokio::test]
async fn config_errors_name_the_attribute() {
    setup();
    let h = Harness::new();
    let platform = h
        .host
        .component(ComponentKind::Platform, "docker")
        .await
        .unwrap();
    let err = platform
        .configure(json!({"service_prot": 80}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "service_prot: unknown attribute `service_prot`; did you mean `service_port`?"
    );
    let err = platform
        .configure(json!({"resources": {"memory": "lots"}, "host_port": 0}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "host_port: must be between 1 and 65535; leave it unset for a random port; resources.memory: `lots` is not a positive number of megabytes"
    );
    for kind in [
        ComponentKind::Builder,
        ComponentKind::Registry,
        ComponentKind::Platform,
        ComponentKind::ReleaseManager,
    ] {
        let c = h.host.component(kind, "docker").await.unwrap();
        assert!(c.info().docs.is_some(), "{kind} has docs");
    }
    let registry = h
        .host
        .component(ComponentKind::Registry, "docker")
        .await
        .unwrap();
    let err = registry.configure(json!({"image": "x"})).await.unwrap_err();
    assert_eq!(err.to_string(), "missing field `tag`");
}

/// BuildKit builds, and the choice between the builders.
#[path = "docker/buildkit.rs"]
mod buildkit;

/// Ownership labels and a host port held by someone else.
#[path = "docker/owner.rs"]
mod owner;

/// Entrypoint mounted into the container instead of a layer committed into the image.
#[path = "docker/mounted.rs"]
mod mounted;

/// The files of `reference` as `tar tv` lists them (an exported, never started container).
fn image_files(reference: &str) -> String {
    let container = docker(&["create", reference]);
    let export = std::process::Command::new("sh")
        .args(["-c", &format!("docker export {container} | tar tv")])
        .output()
        .unwrap();
    docker(&["rm", &container]);
    String::from_utf8_lossy(&export.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entrypoint_lands_in_bin_with_or_without_one_and_through_a_symlink() {
    if !docker_ready("the_entrypoint_lands_in_bin_with_or_without_one_and_through_a_symlink") {
        return;
    }
    let app = app_name("injectbin");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root/usr/bin")).unwrap();
    std::fs::write(dir.path().join("root/usr/bin/tool"), "tool").unwrap();
    std::os::unix::fs::symlink("usr/bin", dir.path().join("root/bin")).unwrap();
    std::fs::write(dir.path().join("page.txt"), "page").unwrap();
    let h = Harness::new();
    let cases = [
        (
            "FROM scratch\nCOPY page.txt /page.txt\nCMD [\"/x\"]\n",
            "bin/wayline-entrypoint",
        ),
        (
            "FROM scratch\nCOPY root/ /\nCMD [\"/x\"]\n",
            "usr/bin/wayline-entrypoint",
        ),
    ];
    for (seq, (dockerfile, expected)) in (1..).zip(cases) {
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        let builder = h.handle(ComponentKind::Builder, "docker", json!({})).await;
        let (built, _) = Harness::call(
            &builder,
            Function::Build,
            core(&app, dir.path(), seq, "", BTreeMap::new()),
            vec![],
            vec![],
        )
        .await;
        let built = built.unwrap();
        let image: Image = value(&built);
        let files = image_files(&image.reference());
        assert!(files.contains(expected), "{files}");
        if seq == 2 {
            assert!(files.contains("bin -> usr/bin"), "{files}");
        }
        assert_eq!(
            inspect(
                &image.reference(),
                "{{json .Config.Entrypoint}} {{json .Config.Cmd}}"
            ),
            r#"["/bin/wayline-entrypoint","--"] ["/x"]"#
        );
        let (gone, _) = Harness::call(
            &builder,
            Function::Destroy,
            core(&app, dir.path(), seq, "", BTreeMap::new()),
            vec![image.to_any()],
            built.resources,
        )
        .await;
        gone.unwrap();
    }
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

/// The `docker` platform on a remote engine over TLS with client certificates.
#[path = "docker/tls.rs"]
mod tls;
