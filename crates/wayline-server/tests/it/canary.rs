//! Canaries: `SetCanary` splits the app host between the live release and one deployment,
//! the split is stored (a restarted server routes the same), a new release ends it, and bad
//! requests say why.

use std::time::{Duration, Instant};

use wayline_proto::v1 as pb;

use crate::common::{Client, Harness, app};

pub(crate) async fn start() -> Harness {
    Harness::start_with(|o| {
        o.url = Some(wayline_server::UrlOptions {
            domain: "localhost".into(),
            port: 9703,
            tunnel_socket: o.data_dir.join("url.sock"),
        });
    })
    .await
}

pub(crate) async fn deployment(c: &mut Client) -> pb::Operation {
    c.upsert_deployment(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("p", "web"),
            physical_state: pb::PhysicalState::Created as i32,
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
}

pub(crate) async fn release(c: &mut Client, deployment_id: &str) -> pb::Operation {
    c.upsert_release(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("p", "web"),
            deployment_id: deployment_id.into(),
            status: Some(pb::Status {
                state: pb::status::State::Success as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
}

fn canary(deployment_id: &str, weight: u32) -> pb::SetCanaryRequest {
    pb::SetCanaryRequest {
        application: app("p", "web"),
        workspace: String::new(),
        deployment_id: deployment_id.into(),
        weight,
        health_path: String::new(),
    }
}

/// Waits until the routes' `(vN, weight)` are `want`.
async fn routes_become(h: &Harness, want: &[(u64, u32)]) {
    let mut routes = h.server.as_ref().unwrap().url_routes();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let got: Vec<(u64, u32)> = routes
            .borrow_and_update()
            .iter()
            .map(|r| (r.sequence, r.weight))
            .collect();
        if got == want {
            return;
        }
        assert!(Instant::now() < end, "routes are {got:?}, not {want:?}");
        let _ = tokio::time::timeout(Duration::from_millis(200), routes.changed()).await;
    }
}

pub(crate) async fn canaries(c: &mut Client) -> Vec<pb::Canary> {
    c.list_canaries(pb::ListCanariesRequest {
        application: app("p", "web"),
        workspace: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .canaries
}

#[tokio::test]
async fn a_canary_splits_the_app_host_survives_a_restart_and_ends_with_a_release() {
    let mut h = start().await;
    let mut c = h.client().await;
    let v1 = deployment(&mut c).await;
    let v2 = deployment(&mut c).await;
    let err = c.set_canary(canary(&v2.id, 10)).await.unwrap_err();
    assert_eq!(
        err.message(),
        "web has no live release to share traffic with; `wayline release -deployment v2` releases web v2 whole"
    );
    let live = release(&mut c, &v1.id).await;
    let set = c.set_canary(canary(&v2.id, 10)).await.unwrap().into_inner();
    assert_eq!((set.sequence, set.weight, set.release_sequence), (2, 10, 1));
    assert_eq!(set.release_id, live.id);
    assert_eq!(set.public_url, "http://web.localhost:9703/");
    routes_become(&h, &[(1, 90), (2, 10)]).await;

    h.restart().await;
    let mut c = h.client().await;
    routes_become(&h, &[(1, 90), (2, 10)]).await;
    let listed = canaries(&mut c).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].deployment_id.as_str(), listed[0].weight),
        (v2.id.as_str(), 10)
    );

    // A new weight replaces the old one; 0 ends the canary.
    c.set_canary(canary(&v2.id, 25)).await.unwrap();
    routes_become(&h, &[(1, 75), (2, 25)]).await;
    c.set_canary(canary("", 0)).await.unwrap();
    routes_become(&h, &[(1, 100), (2, 0)]).await;
    assert!(canaries(&mut c).await.is_empty());

    // A release (what `-weight 100` runs) ends it too, even of the live deployment again.
    c.set_canary(canary(&v2.id, 50)).await.unwrap();
    routes_become(&h, &[(1, 50), (2, 50)]).await;
    release(&mut c, &v1.id).await;
    routes_become(&h, &[(1, 100), (2, 0)]).await;
    assert!(canaries(&mut c).await.is_empty());
    c.set_canary(canary(&v2.id, 10)).await.unwrap();
    release(&mut c, &v2.id).await;
    routes_become(&h, &[(1, 0), (2, 100)]).await;
    assert!(canaries(&mut c).await.is_empty());
}

#[tokio::test]
async fn bad_canaries_say_why() {
    let h = start().await;
    let mut c = h.client().await;
    let v1 = deployment(&mut c).await;
    release(&mut c, &v1.id).await;
    let cases = [
        (
            canary(&v1.id, 100),
            "a canary's weight is 0 to 99 percent, not 100; 100 is a release: `wayline release -deployment vN`",
        ),
        (canary(&v1.id, 10), "web v1 is the live release already"),
        (canary("nope", 10), "deployment nope does not exist"),
    ];
    for (req, want) in cases {
        let err = c.set_canary(req).await.unwrap_err();
        assert_eq!(err.message(), want);
    }
    let other = c
        .upsert_deployment(pb::UpsertOperationRequest {
            operation: Some(pb::Operation {
                application: app("p", "api"),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let err = c.set_canary(canary(&other.id, 10)).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "deployment {} is not one of app web in workspace default",
            other.id
        )
    );
    let v2 = deployment(&mut c).await;
    c.upsert_deployment(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            id: v2.id.clone(),
            physical_state: pb::PhysicalState::Destroyed as i32,
            ..v2.clone()
        }),
    })
    .await
    .unwrap();
    let err = c.set_canary(canary(&v2.id, 10)).await.unwrap_err();
    assert_eq!(
        err.message(),
        "web v2 is destroyed; `wayline release -deployment v2` deploys it again and releases it"
    );
}

#[tokio::test]
async fn a_server_without_a_url_service_has_no_canaries() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let err = c.set_canary(canary("d", 10)).await.unwrap_err();
    assert_eq!(
        err.message(),
        "a canary splits traffic in the URL service's router, and this server runs no URL service (it was started with `-url-service=false`)"
    );
}

#[tokio::test]
async fn a_deployments_url_limits_reach_its_route() {
    let h = start().await;
    let mut c = h.client().await;
    let limits = pb::UrlLimits {
        requests_per_second: 20,
        burst: 40,
        bytes_per_second: 1 << 20,
        max_requests: 0,
    };
    c.upsert_deployment(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("p", "web"),
            physical_state: pb::PhysicalState::Created as i32,
            url_limits: Some(limits),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    routes_become(&h, &[(1, 0)]).await;
    let routes = h.server.as_ref().unwrap().url_routes();
    assert_eq!(
        routes.borrow()[0].limits,
        wayline_core::url::UrlLimits {
            requests_per_second: 20,
            burst: 40,
            bytes_per_second: 1 << 20,
            max_requests: 0,
        }
    );
}

/// One tunnel for the deployment `id`, as the URL service would report it.
struct OneTunnel(String);

impl wayline_server::UrlTunnels for OneTunnel {
    fn tunnels(&self) -> Vec<wayline_core::url::TunnelInfo> {
        vec![wayline_core::url::TunnelInfo {
            deployment_id: self.0.clone(),
            instance_id: "i-1".into(),
            connected_ms: 1_700_000_000_000,
            in_flight: 2,
        }]
    }
}

#[tokio::test]
async fn url_tunnels_name_their_deployment_app_and_hosts() {
    let h = start().await;
    let mut c = h.client().await;
    let v1 = deployment(&mut c).await;
    release(&mut c, &v1.id).await;
    routes_become(&h, &[(1, 100)]).await;
    let none = c
        .list_url_tunnels(pb::ListUrlTunnelsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        none,
        pb::ListUrlTunnelsResponse::default(),
        "no list plugged in"
    );
    h.server
        .as_ref()
        .unwrap()
        .set_url_tunnels(std::sync::Arc::new(OneTunnel(v1.id.clone())));
    let r = c
        .list_url_tunnels(pb::ListUrlTunnelsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(r.serving);
    assert_eq!(
        r.tunnels,
        [pb::UrlTunnel {
            deployment_id: v1.id.clone(),
            application: app("p", "web"),
            workspace: "default".into(),
            sequence: 1,
            hosts: vec!["web.localhost".into(), "web--v1.localhost".into()],
            instance_id: "i-1".into(),
            connected_ms: 1_700_000_000_000,
            in_flight: 2,
        }]
    );
}
