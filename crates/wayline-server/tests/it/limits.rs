//! Every input is bounded at the API edge, and one tenant's token reaches only its own things
//! (issue 10 §2 and §3): the exact status and message a client sees.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use wayline_proto::v1 as pb;

use crate::common::*;

fn open(id: &str, labels: &[(&str, String)]) -> pb::RunnerConfigRequest {
    pb::RunnerConfigRequest {
        event: Some(pb::runner_config_request::Event::Open(
            pb::runner_config_request::Open {
                runner: Some(pb::Runner {
                    id: id.into(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.clone()))
                        .collect(),
                    ..Default::default()
                }),
            },
        )),
    }
}

/// Opens RunnerConfig and returns the call's result (the stream is kept open by `keep`).
async fn runner_config(
    c: &mut Client,
    msg: pb::RunnerConfigRequest,
    keep: &mut Vec<mpsc::Sender<pb::RunnerConfigRequest>>,
) -> Result<tonic::Streaming<pb::RunnerConfigResponse>, tonic::Status> {
    let (tx, rx) = mpsc::channel(2);
    tx.send(msg).await.unwrap();
    keep.push(tx);
    c.runner_config(ReceiverStream::new(rx))
        .await
        .map(tonic::Response::into_inner)
}

/// Opens RunnerConfig for runner `r1` labelled `pool=<pool>` with `token` (kept open by `keep`).
async fn register_r1(
    h: &Harness,
    token: &str,
    pool: &str,
    keep: &mut Vec<mpsc::Sender<pb::RunnerConfigRequest>>,
) -> Result<tonic::Streaming<pb::RunnerConfigResponse>, tonic::Status> {
    runner_config(
        &mut h.client_with(token).await,
        open("r1", &[("pool", pool.into())]),
        keep,
    )
    .await
}

fn runner_var(name: &str, selector: &str) -> pb::ConfigVar {
    pb::ConfigVar {
        scope: pb::config_var::Scope::Project as i32,
        project: "p".into(),
        label_selector: selector.into(),
        name: name.into(),
        value: Some(pb::config_var::Value::Static("1".into())),
        ..Default::default()
    }
}

/// A selector nested 3,000 deep overflowed the server's stack, through SetConfig with a runner
/// token.
#[tokio::test]
async fn a_deeply_nested_label_scope_is_refused_not_a_crash() {
    let h = Harness::start().await;
    let runner_token = h
        .client()
        .await
        .generate_runner_token(pb::GenerateRunnerTokenRequest::default())
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut rc = h.client_with(&runner_token).await;
    let deep = format!("{}a == b{}", "(".repeat(3000), ")".repeat(3000));
    let err = rc
        .set_config(pb::SetConfigRequest {
            variables: vec![runner_var("X", &deep)],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "config variable `X` label selector is 6006 bytes long; the limit is 4096 bytes"
    );
    let deep = format!("{}a == b{}", "(".repeat(100), ")".repeat(100));
    let err = rc
        .set_config(pb::SetConfigRequest {
            variables: vec![runner_var("X", &deep)],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        format!(
            "config variable X: label selector `{deep}`: column 65: the selector nests deeper than 64 levels of parentheses and `not`"
        )
    );
    // The server is still there.
    rc.list_projects(()).await.unwrap();
}

#[tokio::test]
async fn names_and_labels_are_bounded_with_a_message_naming_the_limit() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let project = |name: String| pb::UpsertProjectRequest {
        project: Some(pb::Project {
            name,
            ..Default::default()
        }),
    };
    let cases = [
        (
            "x".repeat(1 << 20),
            "project name is 1048576 bytes long; the limit is 255 bytes",
        ),
        (
            "../etc".to_owned(),
            "project name `../etc` is not allowed: a name may not contain `/`, `\\` or `..`",
        ),
        (
            "a\nb".to_owned(),
            "project name contains the control character '\\n'; names and labels are printable text",
        ),
    ];
    for (name, message) in cases {
        let err = c.upsert_project(project(name)).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::InvalidArgument, message)
        );
    }
    let mut job = noop_job(None);
    job.workspace = "a/b".into();
    let err = c
        .queue_job(pb::QueueJobRequest {
            job: Some(job),
            expires_in: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "job.workspace `a/b` is not allowed: a name may not contain `/`, `\\` or `..`"
    );
    let mut keep = Vec::new();
    let err = runner_config(
        &mut h.anon().await,
        open("r1", &[("pool", "x".repeat(70_000))]),
        &mut keep,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "label `pool` in the runner is 70000 bytes long; the limit is 1024 bytes"
    );
}

#[tokio::test]
async fn lifetimes_and_prune_retain_are_bounded() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    // An overflowing expiresIn gave a token that had expired before it was issued.
    let err = c
        .generate_login_token(pb::GenerateLoginTokenRequest {
            expires_in: "500000000y".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "`500000000y` is longer than the limit of 10 years (87600h)"
    );
    let err = c
        .queue_job(pb::QueueJobRequest {
            job: Some(op_job(
                pb::job::Operation::Up(pb::UpOp {
                    release: true,
                    prune: true,
                    prune_retain: -3,
                    ..Default::default()
                }),
                "r1",
            )),
            expires_in: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::InvalidArgument,
            "prune_retain is -3; it counts deployments to keep, so it must be 0 or more"
        )
    );
}

/// Unauthenticated RunnerConfig with an adopted runner's id overwrote that runner's record
/// (`runner list` showed `pending {pool=evil}`).
#[tokio::test]
async fn an_adopted_runner_id_needs_that_runners_token() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let _r = online(&mut c, "r1", &[("pool", "good")], false).await;
    let mut keep = Vec::new();
    let err = runner_config(
        &mut h.anon().await,
        open("r1", &[("pool", "evil".into())]),
        &mut keep,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "runner r1 is adopted: it connects with its runner token, not without one"
    );
    let r = c
        .get_runner(pb::GetRunnerRequest {
            runner_id: "r1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.labels["pool"], "good");
    assert_eq!(
        r.adoption_state,
        pb::runner::AdoptionState::Preadopted as i32
    );
    assert!(r.online);
}

/// A general runner token (not bound to a runner id) could register with the id of a runner
/// adopted through `runner adopt` and take over its record.
#[tokio::test]
async fn an_adopted_runner_id_refuses_a_general_runner_token() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let mut pending = register(&mut h.anon().await, "r1", &[("pool", "good")], false).await;
    let mut adopted = false;
    for _ in 0..200 {
        let r = c
            .adopt_runner(pb::AdoptRunnerRequest {
                runner_id: "r1".into(),
                reject: false,
            })
            .await;
        if r.is_ok() {
            adopted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(adopted, "the pending runner was not adopted within 2 s");
    let own = pending
        .config
        .message()
        .await
        .unwrap()
        .unwrap()
        .runner_token;
    let general = c
        .generate_runner_token(pb::GenerateRunnerTokenRequest::default())
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut keep = Vec::new();
    for token in [general.as_str(), h.token.as_str()] {
        let err = runner_config(
            &mut h.client_with(token).await,
            open("r1", &[("pool", "evil".into())]),
            &mut keep,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (
                Code::PermissionDenied,
                "runner r1 is adopted: it connects only with its own runner token, not with a general one"
            )
        );
    }
    let r = c
        .get_runner(pb::GetRunnerRequest {
            runner_id: "r1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.labels["pool"], "good");
    register_r1(&h, &own, "good", &mut keep)
        .await
        .expect("the runner's own token registers it again");
}

/// A runner preadopted with one general runner token could be re-registered (labels and all) by
/// anyone holding another general token: the id is bound to the token that first registered it.
#[tokio::test]
async fn a_preadopted_runner_id_belongs_to_the_token_that_registered_it() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let general = || {
        let mut c = c.clone();
        async move {
            c.generate_runner_token(pb::GenerateRunnerTokenRequest::default())
                .await
                .unwrap()
                .into_inner()
                .token
        }
    };
    let (first, second) = (general().await, general().await);
    let mut keep = Vec::new();
    register_r1(&h, &first, "good", &mut keep)
        .await
        .expect("the first registration of a new id");
    let err = register_r1(&h, &second, "evil", &mut keep)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::PermissionDenied,
            "runner r1 was registered with another token: it connects only with that token (to move it to this one, `wayline runner forget r1` first)"
        )
    );
    let r = c
        .get_runner(pb::GetRunnerRequest {
            runner_id: "r1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.labels["pool"], "good");
    assert_eq!(
        r.registered_token_id, "",
        "GetRunner must not show the binding"
    );
    register_r1(&h, &first, "good", &mut keep)
        .await
        .expect("the token that registered the id registers it again");
}

#[tokio::test]
async fn the_number_of_pending_runners_is_bounded() {
    let h = Harness::start().await;
    let mut anon = h.anon().await;
    let mut keep = Vec::new();
    for i in 0..64 {
        runner_config(&mut anon, open(&format!("p{i}"), &[]), &mut keep)
            .await
            .expect("a pending runner registers");
    }
    let err = runner_config(&mut anon, open("p64", &[]), &mut keep)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(
        err.message(),
        "64 runners already wait for adoption (the limit is 64); adopt or forget some (`wayline runner list -pending`)"
    );
    // A waiting runner may still reconnect, and an operator's token still registers.
    runner_config(&mut anon, open("p3", &[]), &mut keep)
        .await
        .expect("a pending runner reconnects");
    online(&mut h.client().await, "adopted", &[], false).await;
}

/// Platforms label what they create with the server's id: made once, kept across restarts,
/// not settable.
#[tokio::test]
async fn the_server_id_is_stable_and_read_only() {
    let mut h = Harness::start().await;
    let mut c = h.client().await;
    let id = c
        .get_server_config(())
        .await
        .unwrap()
        .into_inner()
        .server_id;
    assert_eq!(id.len(), 26, "a ULID: {id}");
    let mut cfg = c.get_server_config(()).await.unwrap().into_inner();
    cfg.server_id = "someone-else".into();
    c.set_server_config(cfg).await.unwrap();
    h.restart().await;
    let mut c = h.client().await;
    assert_eq!(
        c.get_server_config(())
            .await
            .unwrap()
            .into_inner()
            .server_id,
        id
    );
}
