use tokio_stream::StreamExt as _;
use wayline_proto::v1 as pb;
use wayline_proto::v1::job::State;

use crate::common::*;

async fn deployment(c: &mut Client, commit: &str) -> pb::Operation {
    c.upsert_deployment(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("p", "web"),
            provenance: Some(pb::Provenance {
                commit: commit.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn count_deployments(c: &mut Client) -> usize {
    c.list_deployments(pb::ListOperationsRequest {
        application: app("p", "web"),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .operations
    .len()
}

#[tokio::test]
async fn snapshot_and_restore_round_trip_with_checksum() {
    let mut h = Harness::start().await;
    let mut c = h.client().await;
    deployment(&mut c, "one").await;
    let chunks: Vec<pb::SnapshotChunk> = c
        .create_snapshot(())
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert!(matches!(
        chunks.last().unwrap().event,
        Some(pb::snapshot_chunk::Event::Sha256(_))
    ));
    deployment(&mut c, "two").await;
    assert_eq!(count_deployments(&mut c).await, 2);

    let mut corrupt = chunks.clone();
    if let Some(pb::snapshot_chunk::Event::Data(d)) = &mut corrupt[0].event {
        d[100] ^= 1;
    }
    let err = c
        .restore_snapshot(tokio_stream::iter(corrupt))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::DataLoss);
    assert!(
        err.message()
            .starts_with("the snapshot is corrupt: its data hashes to"),
        "{}",
        err.message()
    );
    let no_sum = chunks[..chunks.len() - 1].to_vec();
    let err = c
        .restore_snapshot(tokio_stream::iter(no_sum))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "the snapshot stream ended without its sha256 checksum; nothing was restored"
    );

    let resp = c
        .restore_snapshot(tokio_stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(
        resp.metadata().get("wayline-restart-required").unwrap(),
        "true"
    );
    // Staged: the running server keeps its data until it restarts.
    assert_eq!(count_deployments(&mut c).await, 2);
    h.restart().await;
    let mut c = h.client().await;
    assert_eq!(count_deployments(&mut c).await, 1);
}

#[tokio::test]
async fn restart_keeps_records_and_running_jobs_are_reattached_or_failed() {
    let mut h =
        Harness::start_with(|o| o.heartbeat_timeout = std::time::Duration::from_secs(2)).await;
    let mut c = h.client().await;
    let r1 = online(&mut c, "r1", &[], false).await;
    deployment(&mut c, "one").await;
    let queued = queue(
        &mut c,
        noop_job(Some(pb::target_runner::Target::Id("later".into()))),
    )
    .await;
    let back = queue(&mut c, noop_job(None)).await;
    let lost = queue(&mut c, noop_job(None)).await;
    let mut conn_back = job_conn(&mut c, "r1", "").await;
    assert_eq!(conn_back.assignment().await.id, back);
    conn_back.ack().await;
    conn_back.line("before the restart").await;
    let mut conn_lost = job_conn(&mut c, "r1", "").await;
    assert_eq!(conn_lost.assignment().await.id, lost);
    conn_lost.ack().await;
    wait_state(&mut c, &lost, State::Running).await;
    wait_state(&mut c, &back, State::Running).await;
    drop((conn_back, conn_lost, r1));

    h.restart().await;
    let mut c = h.client().await;
    assert_eq!(count_deployments(&mut c).await, 1);
    assert_eq!(get_job(&mut c, &queued).await.state, State::Queued as i32);
    let _r1 = online(&mut c, "r1", &[], false).await;
    let mut again = job_conn(&mut c, "r1", &back).await;
    assert_eq!(again.assignment().await.id, back);
    again.complete().await;
    wait_state(&mut c, &back, State::Success).await;
    let j = wait_state(&mut c, &lost, State::Error).await;
    assert_eq!(
        j.error.unwrap().message,
        "runner r1 did not reconnect after the server restarted"
    );
    // Output from before the restart is still there.
    let mut s = c
        .get_job_stream(pb::GetJobStreamRequest {
            job_id: back.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut lines = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        if let Some(pb::get_job_stream_response::Event::Terminal(t)) = m.event {
            for e in t.events {
                if let Some(pb::terminal_event::Event::Line(l)) = e.event {
                    lines.push(l.msg);
                }
            }
        }
    }
    assert_eq!(lines, vec!["before the restart"]);
    // The bootstrap token still works and bootstrap stays used up.
    assert!(h.anon().await.bootstrap_token(()).await.is_err());
}

#[tokio::test]
async fn pending_runners_are_adopted_over_their_config_stream_and_forgotten() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let mut anon = h.anon().await;
    let mut pending = register(&mut anon, "stray", &[("os", "linux")], false).await;
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = c
            .list_runners(pb::ListRunnersRequest { pending: true })
            .await
            .unwrap()
            .into_inner()
            .runners;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(listed.len(), 1);
    assert!(listed[0].online);
    let err = job_conn_err(&mut c, "stray").await;
    assert_eq!(
        err.message(),
        "runner stray is waiting to be adopted: run `wayline runner adopt stray`"
    );

    c.adopt_runner(pb::AdoptRunnerRequest {
        runner_id: "stray".into(),
        reject: false,
    })
    .await
    .unwrap();
    let msg = pending.config.message().await.unwrap().unwrap();
    assert!(msg.runner_token.starts_with("wl1."));
    let mut rc = h.client_with(&msg.runner_token).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut conn = job_conn(&mut rc, "stray", "").await;
    assert_eq!(conn.assignment().await.id, id);
    let err = job_conn_err(&mut rc, "other").await;
    assert_eq!(
        err.message(),
        "this runner token belongs to runner stray, not to runner other"
    );

    c.forget_runner(pb::ForgetRunnerRequest {
        runner_id: "stray".into(),
    })
    .await
    .unwrap();
    let msg = pending.config.message().await.unwrap().unwrap();
    assert_eq!(
        msg.rejected,
        "runner stray was forgotten by the server; register it again to take jobs"
    );
    assert!(pending.config.message().await.unwrap().is_none());
}

async fn job_conn_err(c: &mut Client, runner: &str) -> tonic::Status {
    c.runner_job_stream(tokio_stream::iter(vec![ev(
        pb::runner_job_stream_request::Event::Request(pb::runner_job_stream_request::Request {
            runner_id: runner.into(),
            reattach_job_id: String::new(),
        }),
    )]))
    .await
    .unwrap_err()
}

#[tokio::test]
async fn metrics_and_health_over_http() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    queue(&mut c, noop_job(None)).await;
    let body =
        crate::auth::reqwest_free_get(h.server.as_ref().unwrap().http_addr(), "/metrics").await;
    assert!(
        body.contains("wayline_jobs{state=\"queued\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("wayline_grpc_requests_total{method=\"QueueJob\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("wayline_runners_connected 0\n"), "{body}");
}

/// The URL service's families, as the process running it plugs them in.
struct FixedFigures;

impl wayline_server::UrlMetrics for FixedFigures {
    fn render(&self) -> String {
        "# TYPE wayline_url_requests counter\nwayline_url_requests_total{host=\"web.localhost\",class=\"2xx\"} 3\n".into()
    }
}

#[tokio::test]
async fn the_url_services_figures_join_metrics_before_the_end_marker() {
    let h = Harness::start().await;
    let server = h.server.as_ref().unwrap();
    server.set_url_metrics(std::sync::Arc::new(FixedFigures));
    let body = crate::auth::reqwest_free_get(server.http_addr(), "/metrics").await;
    assert!(
        body.ends_with(
            "wayline_url_requests_total{host=\"web.localhost\",class=\"2xx\"} 3\n# EOF\n"
        ),
        "{body}"
    );
    assert_eq!(body.matches("# EOF").count(), 1, "{body}");
    assert!(body.contains("wayline_runners_connected 0\n"), "{body}");
}

#[tokio::test]
async fn entrypoint_tokens_reach_only_their_deployment() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let d = deployment(&mut c, "one").await;
    c.set_config(pb::SetConfigRequest {
        variables: vec![pb::ConfigVar {
            scope: pb::config_var::Scope::App as i32,
            project: "p".into(),
            application: "web".into(),
            name: "GREETING".into(),
            value: Some(pb::config_var::Value::Static("hi".into())),
            ..Default::default()
        }],
    })
    .await
    .unwrap();
    let token = c
        .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
            deployment_id: d.id.clone(),
            expires_in: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut ec = h.client_with(&token).await;
    let err = ec
        .entrypoint_config(pb::EntrypointConfigRequest {
            deployment_id: "other".into(),
            instance_id: "i1".into(),
            exec_disabled: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        err.message(),
        format!(
            "this entrypoint token belongs to deployment {}, not other",
            d.id
        )
    );
    let mut s = ec
        .entrypoint_config(pb::EntrypointConfigRequest {
            deployment_id: d.id.clone(),
            instance_id: "i1".into(),
            exec_disabled: false,
        })
        .await
        .unwrap()
        .into_inner();
    let cfg = s.message().await.unwrap().unwrap().config.unwrap();
    assert_eq!(
        cfg.config_vars
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        vec!["GREETING"]
    );
    let instances = c
        .list_instances(pb::ListInstancesRequest {
            application: app("p", "web"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .instances;
    // The app has no live release, so its latest CREATED deployment is the target; this one is PENDING.
    assert!(instances.is_empty());
    let instances = c
        .list_instances(pb::ListInstancesRequest {
            deployment_id: d.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .instances;
    assert_eq!(instances.len(), 1);
    let err = c
        .entrypoint_config(pb::EntrypointConfigRequest {
            deployment_id: d.id.clone(),
            instance_id: "i2".into(),
            exec_disabled: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "EntrypointConfig needs the entrypoint token of a deployment (WAYLINE_ENTRYPOINT_TOKEN)"
    );
}

#[tokio::test]
async fn revoking_a_runner_token_rejects_the_connected_runner() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let token = c
        .generate_runner_token(pb::GenerateRunnerTokenRequest {
            runner_id: "r9".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut rc = h.client_with(&token).await;
    let mut r = online(&mut rc, "r9", &[], false).await;
    // A token bound to r9 cannot register another runner.
    let open = pb::RunnerConfigRequest {
        event: Some(pb::runner_config_request::Event::Open(
            pb::runner_config_request::Open {
                runner: Some(pb::Runner {
                    id: "r10".into(),
                    ..Default::default()
                }),
            },
        )),
    };
    let err = rc
        .runner_config(tokio_stream::iter(vec![open]))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "this runner token belongs to runner r9, not to runner r10"
    );
    use base64::Engine as _;
    let body = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap(),
    )
    .unwrap();
    c.revoke_token(pb::RevokeTokenRequest {
        token_id: claims["id"].as_str().unwrap().into(),
    })
    .await
    .unwrap();
    let msg = r.config.message().await.unwrap().unwrap();
    assert_eq!(
        msg.rejected,
        "the token of runner r9 was revoked; it needs a new token to take jobs"
    );
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[tokio::test]
async fn logs_follow_the_live_release_of_an_app() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let created = |commit: &str| pb::Operation {
        application: app("p", "web"),
        physical_state: pb::PhysicalState::Created as i32,
        provenance: Some(pb::Provenance {
            commit: commit.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let d1 = c
        .upsert_deployment(pb::UpsertOperationRequest {
            operation: Some(created("a")),
        })
        .await
        .unwrap()
        .into_inner();
    let d2 = c
        .upsert_deployment(pb::UpsertOperationRequest {
            operation: Some(created("b")),
        })
        .await
        .unwrap()
        .into_inner();
    let ask = || pb::GetLogStreamRequest {
        application: app("p", "web"),
        ..Default::default()
    };
    let err = c
        .get_log_stream(pb::GetLogStreamRequest {
            application: app("p", "api"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "app api has no running deployment in workspace default"
    );

    // Each deployment's entrypoint ships one line.
    for (d, line) in [(&d1, "from v1"), (&d2, "from v2")] {
        let token = c
            .generate_entrypoint_token(pb::GenerateEntrypointTokenRequest {
                deployment_id: d.id.clone(),
                expires_in: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .token;
        let mut ec = h.client_with(&token).await;
        let batch = pb::EntrypointLogBatch {
            deployment_id: d.id.clone(),
            instance_id: format!("i-{}", d.sequence),
            lines: vec![pb::LogLine {
                timestamp: Some(wayline_core::time::now()),
                line: line.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        ec.entrypoint_log_stream(tokio_stream::iter(vec![batch]))
            .await
            .unwrap();
    }
    let lines = |batches: Vec<pb::LogBatch>| -> Vec<String> {
        batches
            .into_iter()
            .flat_map(|b| b.lines.into_iter().map(|l| l.line))
            .collect()
    };
    // No release yet: the latest CREATED deployment (v2).
    let got: Vec<pb::LogBatch> = c
        .get_log_stream(ask())
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(lines(got), vec!["from v2"]);
    // Releasing v1 makes it the app's current deployment.
    c.upsert_release(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("p", "web"),
            deployment_id: d1.id.clone(),
            status: Some(pb::Status {
                state: pb::status::State::Success as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    let got: Vec<pb::LogBatch> = c
        .get_log_stream(ask())
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(lines(got), vec!["from v1"]);
}
