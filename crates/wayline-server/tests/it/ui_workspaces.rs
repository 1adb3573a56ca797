//! The web UI's workspace switcher: each workspace's pages show its own deployments, links
//! keep the chosen workspace, and an unknown workspace is a 404 that lists the real ones.

use wayline_proto::v1 as pb;

use crate::common::{Client, Harness, app};
use crate::ui::{cookie_for, get, http, ui_token};

async fn deploy(c: &mut Client, workspace: &str, url: &str) -> pb::Operation {
    c.upsert_deployment(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("p", "web"),
            workspace: workspace.into(),
            physical_state: pb::PhysicalState::Created as i32,
            url: url.into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test]
async fn switching_workspace_shows_that_workspace_s_deployments() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    deploy(&mut c, "default", "http://default-one.test/").await;
    deploy(&mut c, "staging", "http://staging-one.test/").await;
    deploy(&mut c, "staging", "http://staging-two.test/").await;
    let cookie = cookie_for(&ui_token(&mut c).await);
    let addr = http(&h);

    let default = get(addr, "/projects/p/apps/web", Some(&cookie)).await;
    assert_eq!(default.status, 200, "{}", default.body);
    assert!(
        default.body.contains("default-one.test"),
        "{}",
        default.body
    );
    assert!(!default.body.contains("staging-"), "{}", default.body);
    // The switcher offers the other workspace, on the same page.
    assert!(
        default
            .body
            .contains("href=\"/projects/p/apps/web?workspace=staging\""),
        "{}",
        default.body
    );

    let staging = get(
        addr,
        "/projects/p/apps/web?workspace=staging",
        Some(&cookie),
    )
    .await;
    assert_eq!(staging.status, 200, "{}", staging.body);
    assert!(
        staging.body.contains("staging-two.test"),
        "{}",
        staging.body
    );
    // Sequences count per app across workspaces (as Waypoint's do).
    assert!(staging.body.contains("Deployment v3"), "{}", staging.body);
    assert!(
        !staging.body.contains("default-one.test"),
        "{}",
        staging.body
    );
    // Links stay in the workspace.
    assert!(
        staging
            .body
            .contains("href=\"/projects/p/apps/web/deployments?workspace=staging\""),
        "{}",
        staging.body
    );
    let list = get(
        addr,
        "/projects/p/apps/web/deployments?workspace=staging",
        Some(&cookie),
    )
    .await;
    assert!(list.body.contains("staging-one.test"), "{}", list.body);
    assert!(list.body.contains("staging-two.test"), "{}", list.body);
    assert!(!list.body.contains("default-one.test"), "{}", list.body);

    let unknown = get(addr, "/projects/p/apps/web?workspace=nope", Some(&cookie)).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .body
            .contains("Workspace nope does not exist (workspaces: default, staging)."),
        "{}",
        unknown.body
    );
}
