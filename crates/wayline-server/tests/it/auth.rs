use tonic::Code;
use wayline_proto::v1 as pb;

use crate::common::*;

#[tokio::test]
async fn version_needs_no_token_and_bootstrap_works_once() {
    let h = Harness::start().await;
    let mut anon = h.anon().await;
    let v = anon.get_version_info(()).await.unwrap().into_inner();
    assert_eq!(v.info.unwrap().api_version, 1);
    let err = anon.bootstrap_token(()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "the server has already been bootstrapped; ask its operator for a token (`wayline user token`)"
    );
}

#[tokio::test]
async fn calls_without_or_with_bad_tokens_are_refused() {
    let h = Harness::start().await;
    let err = h.anon().await.list_projects(()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        err.message(),
        "ListProjects needs a token: send `authorization: Bearer <token>` (get one with `wayline server bootstrap` or `wayline user token`)"
    );
    let err = h
        .client_with("wl1.abc.def")
        .await
        .list_projects(())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        err.message(),
        "the token is malformed: expected a Wayline token (`wl1.…`); check `wayline context inspect`"
    );
    // A token from another server is refused the same way.
    let other = Harness::start().await;
    let err = h
        .client_with(&other.token)
        .await
        .list_projects(())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "the token was not issued by this server (bad signature)"
    );
}

#[tokio::test]
async fn token_kinds_are_scoped() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let runner_token = c
        .generate_runner_token(pb::GenerateRunnerTokenRequest::default())
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut rc = h.client_with(&runner_token).await;
    let err = rc
        .queue_job(pb::QueueJobRequest {
            job: Some(noop_job(None)),
            expires_in: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "a runner token cannot call QueueJob; use a login token"
    );
    // Runner tokens reach what jobs need.
    rc.list_deployments(pb::ListOperationsRequest::default())
        .await
        .unwrap();

    let dep = c
        .upsert_deployment(pb::UpsertOperationRequest {
            operation: Some(pb::Operation {
                application: app("p", "web"),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let ep = rc
        .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
            deployment_id: dep.id.clone(),
            expires_in: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut ec = h.client_with(&ep).await;
    let err = ec
        .list_deployments(pb::ListOperationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "an entrypoint token can only call the entrypoint RPCs of its own deployment, not ListDeployments"
    );
    let err = ec
        .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
            deployment_id: "nope".into(),
            expires_in: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c
        .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
            deployment_id: "nope".into(),
            expires_in: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "deployment nope does not exist");
}

#[tokio::test]
async fn revoked_tokens_stop_working() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let t = c
        .generate_login_token(pb::GenerateLoginTokenRequest::default())
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut other = h.client_with(&t).await;
    other.list_projects(()).await.unwrap();
    // The id is the `id` claim of the token's JSON body.
    let body = t.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&base64_decode(body)).unwrap();
    let id = claims["id"].as_str().unwrap().to_owned();
    c.revoke_token(pb::RevokeTokenRequest {
        token_id: id.clone(),
    })
    .await
    .unwrap();
    let err = other.list_projects(()).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!("the login token {id} has been revoked")
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[tokio::test]
async fn tls_on_tcp_with_the_generated_certificate() {
    let h = Harness::start().await;
    let server = h.server.as_ref().unwrap();
    let pem = std::fs::read(server.tls_cert_path().unwrap()).unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pem))
        .domain_name("localhost");
    let channel =
        tonic::transport::Endpoint::from_shared(format!("https://{}", server.grpc_addr()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut c = with_token(channel, Some(&h.token));
    c.list_projects(()).await.unwrap();
    let body = reqwest_free_get(server.http_addr(), "/healthz").await;
    assert!(body.ends_with("ok\n"), "{body}");
}

/// A minimal HTTP/1.0 GET, to avoid an HTTP client dependency.
pub async fn reqwest_free_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn reflection_and_health_serve_third_party_clients() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let h = Harness::start().await;
    let channel = unix_channel(&h.socket()).await;
    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "wayline.v1.Wayline".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = reflection
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        resp.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    assert!(
        list.service.iter().any(|s| s.name == "wayline.v1.Wayline"),
        "{list:?}"
    );
    // Health is served, so it is listed too (`grpcurl list` missed it).
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "grpc.health.v1.Health"),
        "{list:?}"
    );
}

#[tokio::test]
async fn runner_scoped_config_is_pushed_to_connected_runners() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let mut r = online(&mut c, "r1", &[("os", "linux")], false).await;
    let var = |name: &str, sel: &str| pb::ConfigVar {
        scope: pb::config_var::Scope::Runner as i32,
        label_selector: sel.into(),
        name: name.into(),
        value: Some(pb::config_var::Value::Static("1".into())),
        ..Default::default()
    };
    c.set_config(pb::SetConfigRequest {
        variables: vec![var("FOR_LINUX", "os == linux"), var("FOR_MAC", "os == mac")],
    })
    .await
    .unwrap();
    let cfg = r.config.message().await.unwrap().unwrap().config.unwrap();
    assert_eq!(
        cfg.config_vars
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        vec!["FOR_LINUX"]
    );
}

#[tokio::test]
async fn invites_convert_once_into_login_tokens() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let invite = c
        .generate_invite_token(pb::GenerateInviteTokenRequest {
            expires_in: "1h".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    // An invite is not a login token.
    let err = h
        .client_with(&invite)
        .await
        .list_projects(())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "an invite token cannot call ListProjects; exchange it with ConvertInviteToken (`wayline login`)"
    );
    let mut anon = h.anon().await;
    let login = anon
        .convert_invite_token(pb::ConvertInviteTokenRequest {
            token: invite.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    h.client_with(&login).await.list_projects(()).await.unwrap();
    let err = anon
        .convert_invite_token(pb::ConvertInviteTokenRequest { token: invite })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().starts_with("the invite token ")
            && err.message().ends_with(" has been revoked")
    );
    let err = anon
        .convert_invite_token(pb::ConvertInviteTokenRequest { token: login })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "ConvertInviteToken needs an invite token, not a login token"
    );

    let v = c
        .validate_job(pb::ValidateJobRequest {
            job: Some(pb::Job::default()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!v.valid);
    assert_eq!(
        v.error,
        "job.operation is required (noop, build, push, deploy, release, up, destroy, …)"
    );
}
