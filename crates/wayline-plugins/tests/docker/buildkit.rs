//! BuildKit builds against the real engine: the steps and a RUN step's output reach the UI,
//! the image id, platform and labels are right, a cached rebuild says CACHED, a failing step is
//! the build error; `buildkit = false` and `DOCKER_BUILDKIT=0` use the classic builder and say
//! so.

use super::*;

/// A context with the busybox binary, a page, a file `.dockerignore` keeps out, and `dockerfile`.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/usr/bin/busybox", dir.path().join("busybox")).unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>bk</h1>\n").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "keep out\n").unwrap();
    std::fs::write(dir.path().join(".dockerignore"), "secret.txt\n").unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

const RUN_DOCKERFILE: &str = "FROM scratch\nCOPY . /ctx\nCOPY busybox /bin/busybox\n\
    RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo run-step-says-hi; /bin/busybox ls /ctx\"]\n";

async fn build(
    builder: &Arc<dyn ComponentHandle>,
    app: &str,
    dir: &Path,
    seq: u64,
) -> (Result<CallResult, PluginError>, Vec<String>) {
    let (r, ui) = Harness::call(
        builder,
        Function::Build,
        core(app, dir, seq, "", BTreeMap::new()),
        vec![],
        vec![],
    )
    .await;
    (r, ui.lines())
}

async fn destroy(builder: &Arc<dyn ComponentHandle>, app: &str, dir: &Path, built: CallResult) {
    let image: Image = value(&built);
    let (gone, _) = Harness::call(
        builder,
        Function::Destroy,
        core(app, dir, 1, "", BTreeMap::new()),
        vec![image.to_any()],
        built.resources,
    )
    .await;
    gone.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildkit_shows_steps_and_output_and_a_rebuild_is_cached() {
    if !docker_ready("buildkit_shows_steps_and_output_and_a_rebuild_is_cached") {
        return;
    }
    let app = app_name("bk");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = context(RUN_DOCKERFILE);
    let h = Harness::new();
    // The engine's own architecture (busybox is the host's binary), named as a platform.
    let arch = docker(&["version", "--format", "{{.Server.Arch}}"]);
    let builder = h
        .handle(
            ComponentKind::Builder,
            "docker",
            json!({"disable_entrypoint": true, "no_cache": true, "platform": format!("linux/{arch}")}),
        )
        .await;
    let (built, lines) = build(&builder, &app, dir.path(), 1).await;
    let built = built.unwrap();
    let image: Image = value(&built);
    assert_eq!(lines[0], "Building image with BuildKit", "{lines:?}");
    let shown = |suffix: &str| {
        lines
            .iter()
            .any(|l| l.starts_with('#') && l.ends_with(suffix))
    };
    assert!(
        shown(
            " [3/3] RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo run-step-says-hi; /bin/busybox ls /ctx\"]"
        ),
        "{lines:?}"
    );
    assert!(shown(" run-step-says-hi"), "{lines:?}");
    // The context went as the classic builder sends it: `.dockerignore` kept a file out.
    assert!(shown(" index.html"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("secret.txt")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(" DONE ")), "{lines:?}");
    assert_eq!(
        inspect(&image.reference(), "{{.Id}} {{.Os}}/{{.Architecture}}"),
        format!("{} linux/{arch}", image.id)
    );
    assert_eq!(built.template_data["builder"], "buildkit");
    assert_eq!(
        inspect(
            &image.reference(),
            r#"{{index .Config.Labels "wayline.app"}} {{index .Config.Labels "wayline.builder"}}"#
        ),
        format!("{app} buildkit")
    );

    // The same build with the cache: every step CACHED, the same image.
    let cached = h
        .handle(
            ComponentKind::Builder,
            "docker",
            json!({"disable_entrypoint": true}),
        )
        .await;
    let (again, lines) = build(&cached, &app, dir.path(), 2).await;
    let again = again.unwrap();
    assert!(
        lines.iter().any(|l| l.starts_with('#')
            && l.contains("] RUN [\"/bin/busybox\"")
            && l.ends_with(" CACHED")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.ends_with(" run-step-says-hi")),
        "{lines:?}"
    );
    assert_eq!(value::<Image>(&again).id, image.id);
    destroy(&cached, &app, dir.path(), again).await;
    destroy(&builder, &app, dir.path(), built).await;
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildkit_a_failing_step_is_the_build_error() {
    if !docker_ready("buildkit_a_failing_step_is_the_build_error") {
        return;
    }
    let app = app_name("bkfail");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = context(
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo about to fail; exit 3\"]\n",
    );
    let h = Harness::new();
    let builder = h
        .handle(
            ComponentKind::Builder,
            "docker",
            json!({"disable_entrypoint": true, "buildkit": true, "no_cache": true}),
        )
        .await;
    let (r, lines) = build(&builder, &app, dir.path(), 1).await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "docker build failed at `[2/2] RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo about to fail; exit 3\"]`: \
         executor failed running [/bin/busybox sh -c echo about to fail; exit 3]: exit code: 3"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('#') && l.ends_with(" about to fail")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('#') && l.contains(" ERROR: executor failed running")),
        "{lines:?}"
    );

    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nBOGUS x\n").unwrap();
    let (r, _) = build(&builder, &app, dir.path(), 2).await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "docker build failed: dockerfile parse error line 2: unknown instruction: BOGUS"
    );
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildkit_false_uses_the_classic_builder_and_says_so() {
    if !docker_ready("buildkit_false_uses_the_classic_builder_and_says_so") {
        return;
    }
    classic_build(
        "bkoff",
        json!({"disable_entrypoint": true, "buildkit": false}),
        "Building image with the classic builder (buildkit = false)",
    )
    .await;
}

/// Builds with `config`, expecting the classic builder and `first` as the first line.
async fn classic_build(name: &str, config: serde_json::Value, first: &str) {
    let app = app_name(name);
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = context(RUN_DOCKERFILE);
    let h = Harness::new();
    let builder = h.handle(ComponentKind::Builder, "docker", config).await;
    let (built, lines) = build(&builder, &app, dir.path(), 1).await;
    let built = built.unwrap();
    assert_eq!(lines[0], first, "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("Step 4/")), "{lines:?}");
    assert!(lines.iter().any(|l| l == "run-step-says-hi"), "{lines:?}");
    // The artifact says which builder ran (a label would cost the classic builder a step).
    assert_eq!(built.template_data["builder"], "classic");
    destroy(&builder, &app, dir.path(), built).await;
    assert_eq!(leftovers(&app), Vec::<String>::new());
}

/// The child test below, run by [`docker_buildkit_0_uses_the_classic_builder_and_says_so`].
const CHILD: &str = "buildkit::docker_buildkit_0_child";

/// `DOCKER_BUILDKIT=0` is process-wide, and the other tests here build in parallel: the build
/// runs in a child process of this test binary with the variable set.
#[test]
fn docker_buildkit_0_uses_the_classic_builder_and_says_so() {
    if !docker_ready("docker_buildkit_0_uses_the_classic_builder_and_says_so") {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([CHILD, "--exact", "--include-ignored", "--nocapture"])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by docker_buildkit_0_uses_the_classic_builder_and_says_so, with DOCKER_BUILDKIT=0"]
async fn docker_buildkit_0_child() {
    if std::env::var("DOCKER_BUILDKIT").as_deref() != Ok("0") || !docker_ready(CHILD) {
        return;
    }
    classic_build(
        "bkenv",
        json!({"disable_entrypoint": true}),
        "Building image with the classic builder (DOCKER_BUILDKIT=0)",
    )
    .await;
}
