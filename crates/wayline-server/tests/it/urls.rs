//! The server's side of the URL service: each deployment's entrypoint gets a URL token on its
//! config stream, the token opens tunnels for that deployment only, and records carry their
//! public URLs; the routes follow deployments and releases.

use std::time::{Duration, Instant};

use wayline_proto::v1 as pb;

use crate::common::{Client, Harness, app};

async fn deployment(c: &mut Client, url: &str) -> pb::Operation {
    c.upsert_deployment(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("p", "web"),
            url: url.into(),
            physical_state: pb::PhysicalState::Created as i32,
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn url_token(h: &Harness, c: &mut Client, deployment_id: &str) -> (String, String) {
    let token = c
        .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
            deployment_id: deployment_id.into(),
            expires_in: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut ec = h.client_with(&token).await;
    let mut s = ec
        .entrypoint_config(pb::EntrypointConfigRequest {
            deployment_id: deployment_id.into(),
            instance_id: "i1".into(),
            exec_disabled: false,
        })
        .await
        .unwrap()
        .into_inner();
    let cfg = s.message().await.unwrap().unwrap().config.unwrap();
    (cfg.url_token, token)
}

async fn start() -> Harness {
    Harness::start_with(|o| {
        o.url = Some(wayline_server::UrlOptions {
            domain: "localhost".into(),
            port: 9703,
            tunnel_socket: o.data_dir.join("url.sock"),
        });
    })
    .await
}

#[tokio::test]
async fn a_url_token_opens_tunnels_for_its_own_deployment_only() {
    let h = start().await;
    let mut c = h.client().await;
    let x = deployment(&mut c, "").await;
    let y = deployment(&mut c, "").await;
    let (token, entrypoint_token) = url_token(&h, &mut c, &x.id).await;
    assert!(!token.is_empty(), "the entrypoint gets a URL token");
    let verifier = h.server.as_ref().unwrap().url_verifier();
    assert_eq!(verifier.verify(&token, &x.id), Ok(()));
    assert_eq!(
        verifier.verify(&token, &y.id),
        Err(format!(
            "this tunnel token is for deployment {}, not {}",
            x.id, y.id
        ))
    );
    assert_eq!(
        verifier.verify(&entrypoint_token, &x.id),
        Err(
            "the token is an entrypoint token; a URL tunnel needs the deployment's URL token"
                .into()
        )
    );
    // And the URL token reaches no RPC.
    let err = h
        .client_with(&token)
        .await
        .list_deployments(pb::ListOperationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn routes_and_public_urls_follow_deployments_and_releases() {
    let h = start().await;
    let mut c = h.client().await;
    let v1 = deployment(&mut c, "http://127.0.0.1:1").await;
    assert_eq!(v1.public_url, "http://web--v1.localhost:9703/");
    let v2 = deployment(&mut c, "").await;
    let release = c
        .upsert_release(pb::UpsertOperationRequest {
            operation: Some(pb::Operation {
                application: app("p", "web"),
                deployment_id: v1.id.clone(),
                status: Some(pb::Status {
                    state: pb::status::State::Success as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(release.public_url, "http://web.localhost:9703/");
    let mut routes = h.server.as_ref().unwrap().url_routes();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let r = routes.borrow_and_update().clone();
        let weights: Vec<(u64, u32, String)> = r
            .iter()
            .map(|r| (r.sequence, r.weight, r.address.clone()))
            .collect();
        if weights
            == [
                (1, 100, "http://127.0.0.1:1".to_owned()),
                (2, 0, String::new()),
            ]
        {
            assert!(r.iter().all(|r| r.host == "web"));
            assert_eq!(r[1].deployment_id, v2.id);
            break;
        }
        assert!(
            Instant::now() < end,
            "routes never showed the release: {weights:?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), routes.changed()).await;
    }
}

#[tokio::test]
async fn the_health_check_rpc_is_bounded_and_checks_nothing_without_a_url_service() {
    let h = start().await;
    let mut c = h.client().await;
    let answer = c
        .check_deployment_health(pb::CheckDeploymentHealthRequest {
            deployment_id: "d".into(),
            path: "/up".into(),
            timeout_seconds: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.checked, "no health check was plugged in");
    let err = c
        .check_deployment_health(pb::CheckDeploymentHealthRequest {
            deployment_id: "d".into(),
            path: "up".into(),
            timeout_seconds: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "path must be empty or start with `/`, at most 1024 bytes"
    );
    let err = c
        .check_deployment_health(pb::CheckDeploymentHealthRequest {
            deployment_id: "d".into(),
            path: String::new(),
            timeout_seconds: 601,
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "timeout_seconds is at most 600");
}

/// A health check that answers at once and counts the deployments it was asked about.
#[derive(Default)]
struct Counting(std::sync::Mutex<Vec<String>>);

#[tonic::async_trait]
impl wayline_server::UrlHealth for Counting {
    async fn check(&self, id: &str, _path: &str, _within: Duration) -> Result<String, String> {
        self.0.lock().unwrap().push(id.to_owned());
        Ok("GET / answered 200 OK".into())
    }
}

#[tokio::test]
async fn a_deployment_with_no_address_and_no_entrypoint_is_not_waited_for() {
    let h = start().await;
    let counting = std::sync::Arc::new(Counting::default());
    h.server
        .as_ref()
        .unwrap()
        .set_url_health(std::sync::Arc::clone(&counting) as _);
    let mut c = h.client().await;
    let check = |id: String| pb::CheckDeploymentHealthRequest {
        deployment_id: id,
        path: String::new(),
        timeout_seconds: 60,
    };
    let bare = deployment(&mut c, "").await;
    let answer = c
        .check_deployment_health(check(bare.id.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.checked && answer.error.is_empty());
    assert_eq!(
        answer.summary,
        "not checked: the platform reported no address and no entrypoint of this deployment is connected, so the URL service has nothing to route to"
    );
    assert!(
        counting.0.lock().unwrap().is_empty(),
        "the URL service was not asked"
    );

    // With an address, or once an entrypoint of it is connected, the URL service is asked.
    let addressed = deployment(&mut c, "http://127.0.0.1:1").await;
    let answer = c
        .check_deployment_health(check(addressed.id.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.summary, "GET / answered 200 OK");
    let tunnelled = deployment(&mut c, "").await;
    let token = c
        .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
            deployment_id: tunnelled.id.clone(),
            expires_in: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    // The config stream stays open: this is the connected entrypoint.
    let mut connected = h
        .client_with(&token)
        .await
        .entrypoint_config(pb::EntrypointConfigRequest {
            deployment_id: tunnelled.id.clone(),
            instance_id: "i1".into(),
            exec_disabled: false,
        })
        .await
        .unwrap()
        .into_inner();
    connected.message().await.unwrap().unwrap();
    c.check_deployment_health(check(tunnelled.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        *counting.0.lock().unwrap(),
        vec![addressed.id, tunnelled.id]
    );
}
