//! Containers belong to their server, project, app and workspace (issue 10 §3): a deploy of
//! project B with `host_port` of project A's running container stopped A's container, because
//! both apps were called `web` and containers carried only `wayline.app`.

use std::collections::BTreeMap;

use serde_json::json;
use wayline_plugin::{CallResult, ComponentKind, Function, Value};
use wayline_plugins::docker::{Deployment, Image};

use super::{
    CleanupOnPanic, Harness, app_name, core, docker, docker_ready, example_context, free_port,
    http_get, leftovers, value,
};

fn env(server: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("WAYLINE_SERVER_ID".to_owned(), server.to_owned())])
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_port_held_by_another_project_is_not_taken() {
    if !docker_ready("a_host_port_held_by_another_project_is_not_taken") {
        return;
    }
    let app = app_name("owner");
    let _cleanup = CleanupOnPanic(app.clone());
    let dir = example_context();
    let h = Harness::new();
    let builder = h.handle(ComponentKind::Builder, "docker", json!({})).await;
    let (built, _) = Harness::call(
        &builder,
        Function::Build,
        core(&app, dir.path(), 1, "", env("S1")),
        vec![],
        vec![],
    )
    .await;
    let built = built.unwrap();
    let image: Image = value(&built);
    let port = free_port();
    let platform = h
        .handle(
            ComponentKind::Platform,
            "docker",
            json!({"host_port": port}),
        )
        .await;
    let deploy = |project: &str, server: &str, deployment: &str| {
        let mut c = core(&app, dir.path(), 1, deployment, env(server));
        c.job.project = project.to_owned();
        Harness::call(&platform, Function::Deploy, c, vec![image.to_any()], vec![])
    };

    let (a, _) = deploy("a", "S1", "depa").await;
    let a: CallResult = a.unwrap();
    let dep_a: Deployment = value(&a);
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"wayline.server-id\"}} {{index .Config.Labels \"wayline.project\"}} {{index .Config.Labels \"wayline.app\"}} {{index .Config.Labels \"wayline.workspace\"}} {{index .Config.Labels \"wayline.deployment-id\"}}",
            &dep_a.container_id,
        ]),
        format!("S1 a {app} default depa")
    );

    // Project b has an app of the same name and asks for the same port; so does project a on
    // another server sharing the engine. Neither stops a's container.
    for (project, server) in [("b", "S1"), ("a", "S2")] {
        let (b, _) = deploy(project, server, "depb").await;
        assert_eq!(
            b.unwrap_err().to_string(),
            format!(
                "host port {port} is held by container `{}` (app `{app}` of project `a`, workspace `default`, server S1); Wayline stops only containers of its own app `{app}` of project `{project}` in workspace `default`: stop that container or choose another `host_port`",
                dep_a.name
            )
        );
        assert_eq!(
            docker(&[
                "inspect",
                "--format",
                "{{.State.Running}}",
                &dep_a.container_id
            ]),
            "true"
        );
    }
    assert!(http_get(&dep_a.url).contains("Hello from busybox"));

    // A second deployment of a takes the port; a rollback release of the first (whose job,
    // like the runner's, carries no server id) takes it back from its own sibling.
    let (a2, _) = deploy("a", "S1", "depa2").await;
    let a2: CallResult = a2.unwrap();
    let dep_a2: Deployment = value(&a2);
    let running = |id: &str| docker(&["inspect", "--format", "{{.State.Running}}", id]);
    assert_eq!(running(&dep_a.container_id), "false");
    let releaser = h
        .handle(ComponentKind::ReleaseManager, "docker", json!({}))
        .await;
    let mut rollback = core(&app, dir.path(), 1, "depa", BTreeMap::new());
    rollback.job.project = "a".to_owned();
    let (rel, ui) = Harness::call(
        &releaser,
        Function::Release,
        rollback.clone(),
        vec![dep_a.to_any()],
        vec![],
    )
    .await;
    rel.unwrap();
    assert!(
        ui.lines()
            .contains(&format!("Stopped {} to free host port {port}", dep_a2.name)),
        "{:?}",
        ui.lines()
    );
    assert_eq!(running(&dep_a.container_id), "true");
    // Project b cannot release a's container.
    rollback.job.project = "b".to_owned();
    docker(&["stop", "-t", "1", &dep_a.container_id]);
    let (rel, _) = Harness::call(
        &releaser,
        Function::Release,
        rollback,
        vec![dep_a.to_any()],
        vec![],
    )
    .await;
    assert!(
        rel.unwrap_err().to_string().contains(&format!("belongs to app `{app}` of project `a`, workspace `default`, server S1, not to app `{app}` of project `b`")),
    );
    let mut destroy2 = core(&app, dir.path(), 1, "depa2", env("S1"));
    destroy2.job.project = "a".to_owned();
    // Destroying depa2 with a record naming depa's container (same owner, other deployment)
    // leaves it: a container is removed only by its own deployment.
    let (gone, _) = Harness::call(
        &platform,
        Function::Destroy,
        destroy2.clone(),
        vec![dep_a2.to_any()],
        a.resources.clone(),
    )
    .await;
    assert_eq!(
        gone.unwrap_err().to_string(),
        format!(
            "could not destroy container `{0}`: container `{0}` belongs to deployment depa of app `{app}`, not to deployment depa2 being destroyed: Wayline removes only the deployment's own resources",
            dep_a.name
        )
    );
    assert!(!docker(&["inspect", "--format", "{{.Id}}", &dep_a.container_id]).is_empty());
    let (gone, _) = Harness::call(
        &platform,
        Function::Destroy,
        destroy2,
        vec![dep_a2.to_any()],
        a2.resources,
    )
    .await;
    gone.unwrap();

    // Project b cannot destroy a's container, even given its stored id.
    let mut foreign = core(&app, dir.path(), 1, "depa", env("S1"));
    foreign.job.project = "b".to_owned();
    let (gone, _) = Harness::call(
        &platform,
        Function::Destroy,
        foreign,
        vec![dep_a.to_any()],
        a.resources.clone(),
    )
    .await;
    assert_eq!(
        gone.unwrap_err().to_string(),
        format!(
            "could not destroy container `{0}`: container `{0}` belongs to app `{app}` of project `a`, workspace `default`, server S1, not to app `{app}` of project `b` in workspace `default`: Wayline removes only its own resources",
            dep_a.name
        )
    );
    assert_eq!(running(&dep_a.container_id), "false");
    assert!(!docker(&["inspect", "--format", "{{.Id}}", &dep_a.container_id]).is_empty());

    let mut destroy = core(&app, dir.path(), 1, "depa", env("S1"));
    destroy.job.project = "a".to_owned();
    let (gone, _) = Harness::call(
        &platform,
        Function::Destroy,
        destroy,
        vec![dep_a.to_any()],
        a.resources,
    )
    .await;
    gone.unwrap();
    let (gone, _) = Harness::call(
        &builder,
        Function::Destroy,
        core(&app, dir.path(), 1, "", env("S1")),
        vec![image.to_any()],
        built.resources,
    )
    .await;
    gone.unwrap();
    assert_eq!(leftovers(&app), Vec::<String>::new());
}
