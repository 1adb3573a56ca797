//! The entrypoint left to the platform (issue 16): when a build's only consumer is the local
//! `docker` platform, the builder commits no injection layer and the platform bind-mounts the
//! binary in front of the image's own ENTRYPOINT and CMD; a push of such an image injects it.

use std::collections::BTreeMap;

use serde_json::json;
use wayline_plugin::{ComponentKind, Function, Value};
use wayline_plugins::docker::{Deployment, Image};

use super::{
    CleanupOnPanic, Harness, LocalRegistry, app_name, core, docker_ready, example_context,
    http_get, inspect, leftovers, value,
};

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_platform_mounts_the_entrypoint_and_a_push_injects_it() {
    if !docker_ready("a_local_platform_mounts_the_entrypoint_and_a_push_injects_it") {
        return;
    }
    let app = app_name("mounted");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = example_context();
    let data = tempfile::tempdir().unwrap();
    let h = Harness::new();
    let for_platform = |sequence, deployment: &str| {
        let mut c = core(&app, dir.path(), sequence, deployment, BTreeMap::new());
        c.consumers = vec!["docker".into()];
        c.data_dir = data.path().join("docker");
        c
    };

    // Build for the docker platform alone: the image is the user's, labelled, not injected.
    let builder = h.handle(ComponentKind::Builder, "docker", json!({})).await;
    let (built, ui) = Harness::call(
        &builder,
        Function::Build,
        for_platform(1, ""),
        vec![],
        vec![],
    )
    .await;
    let built = built.unwrap();
    let image: Image = value(&built);
    assert!(image.entrypoint_deferred);
    assert!(
        ui.lines().iter().any(|l| l
            == "wayline-entrypoint: mounted into the container by the docker platform (no layer injected)"),
        "{:?}",
        ui.lines()
    );
    assert!(
        !ui.lines().iter().any(|l| l.starts_with("Injecting")),
        "{:?}",
        ui.lines()
    );
    assert_eq!(
        inspect(&image.reference(), "{{json .Config.Entrypoint}}"),
        "null"
    );
    assert_eq!(
        inspect(
            &image.reference(),
            "{{index .Config.Labels \"wayline.app\"}}"
        ),
        app
    );

    // Deploy: the container runs the entrypoint from a kept copy, read-only, in front of the
    // image's CMD, and serves the page.
    let platform = h.handle(ComponentKind::Platform, "docker", json!({})).await;
    let (d1, _) = Harness::call(
        &platform,
        Function::Deploy,
        for_platform(1, "dep1"),
        vec![image.to_any()],
        vec![],
    )
    .await;
    let d1 = d1.unwrap();
    let dep: Deployment = value(&d1);
    assert!(http_get(&dep.url).contains("Hello from busybox, deployed by Wayline"));
    assert_eq!(
        inspect(&dep.container_id, "{{json .Config.Entrypoint}}"),
        r#"["/bin/wayline-entrypoint","--"]"#
    );
    assert_eq!(
        inspect(&dep.container_id, "{{json .Config.Cmd}}"),
        r#"["/bin/busybox","httpd","-f","-p","3000","-h","/www"]"#
    );
    let mount = inspect(
        &dep.container_id,
        "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}}{{end}}",
    );
    let kept: Vec<_> = std::fs::read_dir(data.path().join("docker"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        mount,
        format!("bind {} /bin/wayline-entrypoint false", kept[0].display())
    );

    // A local tag keeps the image as it is; a push takes it off this engine's files, so the
    // pushed image carries the entrypoint.
    let tagged = h
        .handle(
            ComponentKind::Registry,
            "docker",
            json!({"image": format!("wayline-test/{app}"), "tag": "local", "local": true}),
        )
        .await;
    let (local, _) = Harness::call(
        &tagged,
        Function::Push,
        for_platform(1, ""),
        vec![image.to_any()],
        vec![],
    )
    .await;
    let local: Image = value(&local.unwrap());
    assert!(local.entrypoint_deferred);
    assert_eq!(local.id, image.id);
    let registry = LocalRegistry::start(false, false);
    let repo = format!("127.0.0.1:{}/{app}", registry.port);
    let push = h
        .handle(
            ComponentKind::Registry,
            "docker",
            json!({"image": repo, "tag": "v1"}),
        )
        .await;
    let (pushed, _) = Harness::call(
        &push,
        Function::Push,
        for_platform(1, ""),
        vec![local.to_any()],
        vec![],
    )
    .await;
    let pushed = pushed.unwrap();
    let pushed_image: Image = value(&pushed);
    assert!(!pushed_image.entrypoint_deferred);
    assert_eq!(
        inspect(&pushed_image.reference(), "{{json .Config.Entrypoint}}"),
        r#"["/bin/wayline-entrypoint","--"]"#
    );
    assert_eq!(
        inspect(&pushed_image.reference(), "{{json .Config.Cmd}}"),
        r#"["/bin/busybox","httpd","-f","-p","3000","-h","/www"]"#
    );
    assert!(
        registry.tags(&app).contains(r#""tags":["v1"]"#),
        "{}",
        registry.tags(&app)
    );

    // Destroy removes everything each created.
    let (destroyed, _) = Harness::call(
        &platform,
        Function::Destroy,
        for_platform(1, "dep1"),
        vec![dep.to_any()],
        d1.resources.clone(),
    )
    .await;
    destroyed.unwrap();
    for (component, value, resources) in [
        (&push, pushed_image.to_any(), pushed.resources.clone()),
        (&tagged, local.to_any(), Vec::new()),
    ] {
        let (destroyed, _) = Harness::call(
            component,
            Function::Destroy,
            for_platform(1, ""),
            vec![value],
            resources,
        )
        .await;
        destroyed.unwrap();
    }
    let (destroyed, _) = Harness::call(
        &builder,
        Function::Destroy,
        for_platform(1, ""),
        vec![image.to_any()],
        built.resources.clone(),
    )
    .await;
    destroyed.unwrap();
    assert_eq!(leftovers(&app), Vec::<String>::new());
}
