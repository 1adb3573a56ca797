//! Hub tests over in-memory streams. The same hub is driven over real gRPC, by the real
//! entrypoint binary, in `crates/wayline-entrypoint/tests`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};
use wayline_proto::prost_types::Timestamp;
use wayline_proto::v1::{
    ConfigVar, EntrypointConfigRequest, EntrypointConfigResponse, EntrypointExecRequest,
    EntrypointLogBatch, ExecStreamRequest, GetLogStreamRequest, LogBatch, LogLine, config_var,
    entrypoint_exec_request as ep_req, entrypoint_exec_response as ep_resp, exec_stream_request,
    exec_stream_response,
};

use super::*;

pub(super) struct Vars(std::sync::Mutex<Vec<ConfigVar>>);

#[tonic::async_trait]
impl ConfigResolver for Vars {
    async fn resolve(&self, _: &str) -> Result<Vec<ConfigVar>, Status> {
        Ok(self.0.lock().unwrap().clone())
    }
}

fn var(name: &str, value: &str) -> ConfigVar {
    ConfigVar {
        name: name.into(),
        value: Some(config_var::Value::Static(value.into())),
        ..ConfigVar::default()
    }
}

pub(super) fn resolver(vars: Vec<ConfigVar>) -> Arc<Vars> {
    Arc::new(Vars(std::sync::Mutex::new(vars)))
}

pub(super) fn line(secs: i64, text: &str) -> LogLine {
    LogLine {
        timestamp: Some(Timestamp {
            seconds: secs,
            nanos: 0,
        }),
        line: text.into(),
        ..LogLine::default()
    }
}

pub(super) fn batch(instance: &str, lines: Vec<LogLine>, dropped: u64) -> EntrypointLogBatch {
    EntrypointLogBatch {
        deployment_id: String::new(),
        instance_id: instance.into(),
        lines,
        dropped,
        ..EntrypointLogBatch::default()
    }
}

fn errors_batch(instance: &str, errors: &[&str]) -> EntrypointLogBatch {
    EntrypointLogBatch {
        instance_id: instance.into(),
        config_errors: errors.iter().map(|e| (*e).to_owned()).collect(),
        config_errors_set: true,
        ..EntrypointLogBatch::default()
    }
}

pub(super) async fn ship(
    hub: &EntrypointHub,
    deployment: &str,
    batches: Vec<EntrypointLogBatch>,
) -> Result<(), Status> {
    hub.entrypoint_logs_from(deployment.into(), stream::iter(batches.into_iter().map(Ok)))
        .await
}

pub(super) async fn history(
    hub: &EntrypointHub,
    deployments: &[&str],
    req: GetLogStreamRequest,
) -> Vec<(String, String)> {
    let ids = deployments.iter().map(|d| (*d).to_owned()).collect();
    let batches: Vec<LogBatch> = hub.log_stream(ids, req).map(Result::unwrap).collect().await;
    batches
        .into_iter()
        .flat_map(|b| {
            b.lines
                .into_iter()
                .map(move |l| (b.instance_id.clone(), l.line))
        })
        .collect()
}

pub(super) async fn connect(
    hub: &EntrypointHub,
    deployment: &str,
    instance: &str,
) -> BoxStream<'static, Result<EntrypointConfigResponse, Status>> {
    let req = EntrypointConfigRequest {
        deployment_id: deployment.into(),
        instance_id: instance.into(),
        exec_disabled: false,
    };
    hub.entrypoint_config(deployment.into(), req, AppRef::default(), resolver(vec![]))
        .await
        .unwrap()
}

/// Waits (bounded) until `probe`'s value satisfies `done` (the hub cleans up on a spawned
/// task), failing with the value last seen.
pub(super) async fn eventually<T: std::fmt::Debug>(
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    wayline_testkit::wait_for_async(Duration::from_secs(10), || {
        let seen = probe();
        let ok = done(&seen);
        async move { if ok { Ok(seen) } else { Err(seen) } }
    })
    .await
    .unwrap_or_else(|last| panic!("condition never held; last seen: {last:?}"))
}

#[test]
fn drop_counts_read_like_numbers() {
    assert_eq!(format_dropped(1), "… 1 line dropped");
    assert_eq!(format_dropped(999), "… 999 lines dropped");
    assert_eq!(format_dropped(1204), "… 1,204 lines dropped");
    assert_eq!(format_dropped(1_234_567), "… 1,234,567 lines dropped");
}

#[tokio::test]
async fn window_keeps_the_latest_lines_only() {
    let hub = EntrypointHub::new(HubOptions {
        log_window_lines: 3,
        ..HubOptions::default()
    });
    let lines = (0..5).map(|i| line(i, &format!("l{i}"))).collect();
    ship(&hub, "D", vec![batch("I", lines, 0)]).await.unwrap();
    let got: Vec<String> = history(&hub, &["D"], GetLogStreamRequest::default())
        .await
        .into_iter()
        .map(|l| l.1)
        .collect();
    assert_eq!(got, ["l2", "l3", "l4"]);
}

#[tokio::test]
async fn drops_appear_as_a_line_where_lines_went_missing() {
    let hub = EntrypointHub::new(HubOptions::default());
    ship(
        &hub,
        "D",
        vec![
            batch("I", vec![line(1, "before")], 0),
            batch("I", vec![line(5, "after")], 1204),
        ],
    )
    .await
    .unwrap();
    let got: Vec<String> = history(&hub, &["D"], GetLogStreamRequest::default())
        .await
        .into_iter()
        .map(|l| l.1)
        .collect();
    assert_eq!(got, ["before", "… 1,204 lines dropped", "after"]);
}

#[tokio::test]
async fn instances_merge_in_time_order_with_filters() {
    let hub = EntrypointHub::new(HubOptions::default());
    ship(
        &hub,
        "D1",
        vec![batch("A", vec![line(1, "a1"), line(4, "a4")], 0)],
    )
    .await
    .unwrap();
    ship(
        &hub,
        "D1",
        vec![batch("B", vec![line(2, "b2"), line(3, "b3")], 0)],
    )
    .await
    .unwrap();
    ship(&hub, "D2", vec![batch("C", vec![line(2, "c2")], 0)])
        .await
        .unwrap();
    let all = history(&hub, &["D1"], GetLogStreamRequest::default()).await;
    let got: Vec<(&str, &str)> = all.iter().map(|(i, l)| (i.as_str(), l.as_str())).collect();
    assert_eq!(got, [("A", "a1"), ("B", "b2"), ("B", "b3"), ("A", "a4")]);
    let since = GetLogStreamRequest {
        since: Some(Timestamp {
            seconds: 3,
            nanos: 0,
        }),
        ..Default::default()
    };
    assert_eq!(history(&hub, &["D1"], since).await.len(), 2);
    let one = GetLogStreamRequest {
        instance_id: "B".into(),
        ..Default::default()
    };
    assert_eq!(history(&hub, &["D1"], one).await.len(), 2);
    assert_eq!(
        history(&hub, &["D1", "D2"], GetLogStreamRequest::default())
            .await
            .len(),
        5
    );
    assert_eq!(
        history(&hub, &[], GetLogStreamRequest::default())
            .await
            .len(),
        5
    );
}

#[tokio::test]
async fn followers_get_history_then_live_lines_without_gaps_or_repeats() {
    let hub = EntrypointHub::new(HubOptions::default());
    ship(&hub, "D", vec![batch("I", vec![line(1, "old")], 0)])
        .await
        .unwrap();
    let follow = GetLogStreamRequest {
        follow: true,
        ..Default::default()
    };
    let mut a = hub.log_stream(vec!["D".into()], follow.clone());
    let mut b = hub.log_stream(vec!["D".into()], follow);
    let mut other = hub.log_stream(
        vec!["OTHER".into()],
        GetLogStreamRequest {
            follow: true,
            ..Default::default()
        },
    );
    ship(&hub, "D", vec![batch("I", vec![line(2, "new")], 3)])
        .await
        .unwrap();
    for s in [&mut a, &mut b] {
        assert_eq!(s.next().await.unwrap().unwrap().lines[0].line, "old");
        let live = s.next().await.unwrap().unwrap();
        let texts: Vec<&str> = live.lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(texts, ["… 3 lines dropped", "new"]);
        assert_eq!(live.dropped, 3);
    }
    ship(&hub, "OTHER", vec![batch("J", vec![line(3, "theirs")], 0)])
        .await
        .unwrap();
    assert_eq!(other.next().await.unwrap().unwrap().lines[0].line, "theirs");
}

#[tokio::test]
async fn log_batches_for_another_deployment_are_refused() {
    let hub = EntrypointHub::new(HubOptions::default());
    let b = EntrypointLogBatch {
        deployment_id: "D2".into(),
        ..batch("I", vec![line(1, "x")], 0)
    };
    let err = ship(&hub, "D1", vec![b]).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "this entrypoint token is for deployment D1, not D2"
    );
    let err = ship(&hub, "D1", vec![batch("", vec![], 0)])
        .await
        .unwrap_err();
    assert_eq!(err.message(), "log batch without instance_id");
}

#[tokio::test]
async fn instance_lives_as_long_as_its_config_stream() {
    let hub = EntrypointHub::new(HubOptions::default());
    let mut a = connect(&hub, "D", "A").await;
    let b = connect(&hub, "D", "B").await;
    let _c = connect(&hub, "OTHER", "C").await;
    assert!(a.next().await.unwrap().unwrap().config.is_some());
    let ids = |v: Vec<wayline_proto::v1::Instance>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(hub.list_instances(&["D".into()])), ["A", "B"]);
    assert_eq!(hub.list_instances(&[]).len(), 3);
    drop(b);
    eventually(|| hub.list_instances(&["D".into()]), |l| l.len() == 1).await;
    assert_eq!(ids(hub.list_instances(&["D".into()])), ["A"]);
}

#[tokio::test]
async fn config_errors_are_listed_per_instance_while_their_log_stream_lives() {
    let hub = EntrypointHub::new(HubOptions::default());
    let _a = connect(&hub, "D", "A").await;
    let _b = connect(&hub, "D", "B").await;
    let errors = |hub: &EntrypointHub| {
        hub.list_instances(&["D".into()])
            .into_iter()
            .map(|i| (i.id, i.config_errors))
            .collect::<Vec<_>>()
    };
    let (tx, rx) = mpsc::channel(8);
    let logs = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.entrypoint_logs_from("D".into(), ReceiverStream::new(rx).map(Ok))
                .await
        })
    };
    let missing = "DATABASE_URL: key \"/app/db\" not found in etcd at http://127.0.0.1:2379";
    tx.send(errors_batch("A", &[missing])).await.unwrap();
    eventually(|| errors(&hub), |e| e[0].1.len() == 1).await;
    assert_eq!(
        errors(&hub),
        [("A".into(), vec![missing.to_owned()]), ("B".into(), vec![])]
    );
    // A batch of lines alone (config_errors_set false) changes nothing.
    tx.send(batch("A", vec![line(1, "x")], 0)).await.unwrap();
    // The full set replaces the previous one.
    tx.send(errors_batch("A", &["X: one", "Y: two"]))
        .await
        .unwrap();
    eventually(|| errors(&hub), |e| e[0].1.len() == 2).await;
    assert_eq!(errors(&hub)[0].1, ["X: one", "Y: two"]);
    // An empty set means fixed.
    tx.send(errors_batch("A", &[])).await.unwrap();
    eventually(|| errors(&hub), |e| e[0].1.is_empty()).await;
    // Errors go with the stream that reported them: a reconnecting entrypoint reports again.
    tx.send(errors_batch("B", &["Z: three"])).await.unwrap();
    eventually(|| errors(&hub), |e| e[1].1.len() == 1).await;
    drop(tx);
    logs.await.unwrap().unwrap();
    assert_eq!(errors(&hub), [("A".into(), vec![]), ("B".into(), vec![])]);
}

#[tokio::test]
async fn config_errors_of_one_deployment_never_show_on_another() {
    let hub = EntrypointHub::new(HubOptions::default());
    let _a = connect(&hub, "D", "A").await;
    let (tx, rx) = mpsc::channel(8);
    let logs = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.entrypoint_logs_from("OTHER".into(), ReceiverStream::new(rx).map(Ok))
                .await
        })
    };
    // Another deployment's entrypoint naming instance A (its token is for OTHER).
    tx.send(errors_batch("A", &["FAKE: x"])).await.unwrap();
    tx.send(batch("A", vec![line(1, "sync")], 0)).await.unwrap();
    // Batches are handled in order: once the line is in, the errors were handled too.
    let lines = wayline_testkit::wait_for_async(Duration::from_secs(10), || async {
        let lines = history(&hub, &["OTHER"], GetLogStreamRequest::default()).await;
        if lines.is_empty() {
            Err(lines)
        } else {
            Ok(lines)
        }
    })
    .await
    .expect("the sync line never arrived");
    assert_eq!(lines, [("A".to_owned(), "sync".to_owned())]);
    assert!(hub.list_instances(&[])[0].config_errors.is_empty());
    drop(tx);
    logs.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_reconnect_with_the_same_id_is_not_removed_by_the_old_stream() {
    let hub = EntrypointHub::new(HubOptions::default());
    // Each stream's task holds the resolver until it ends: its count shows the old one's end.
    let vars = resolver(vec![]);
    let stream = |vars: Arc<Vars>| {
        let req = EntrypointConfigRequest {
            deployment_id: "D".into(),
            instance_id: "A".into(),
            exec_disabled: false,
        };
        hub.entrypoint_config("D".into(), req, AppRef::default(), vars)
    };
    let old = stream(vars.clone()).await.unwrap();
    let mut new = stream(vars.clone()).await.unwrap();
    new.next().await.unwrap().unwrap();
    drop(old);
    // The old stream's cleanup ran (its task ended) once only `vars` and the new task hold it.
    eventually(|| Arc::strong_count(&vars), |n| *n == 2).await;
    assert_eq!(hub.list_instances(&[]).len(), 1);
}

#[tokio::test]
async fn config_requests_are_checked() {
    let hub = EntrypointHub::new(HubOptions::default());
    let req = EntrypointConfigRequest {
        deployment_id: "D2".into(),
        instance_id: "I".into(),
        exec_disabled: false,
    };
    let err = hub
        .entrypoint_config("D1".into(), req, AppRef::default(), resolver(vec![]))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.message(),
        "this entrypoint token is for deployment D1, not D2"
    );
    let req = EntrypointConfigRequest {
        deployment_id: "D1".into(),
        ..Default::default()
    };
    let err = hub
        .entrypoint_config("D1".into(), req, AppRef::default(), resolver(vec![]))
        .await
        .err()
        .unwrap();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "instance_id is required")
    );
}

#[tokio::test]
async fn config_changes_are_pushed_only_when_they_change_the_result() {
    let hub = EntrypointHub::new(HubOptions::default());
    let vars = resolver(vec![var("A", "1")]);
    let req = EntrypointConfigRequest {
        deployment_id: "D".into(),
        instance_id: "I".into(),
        exec_disabled: false,
    };
    let mut s = hub
        .entrypoint_config("D".into(), req, AppRef::default(), vars.clone())
        .await
        .unwrap();
    let first = s.next().await.unwrap().unwrap().config.unwrap();
    assert_eq!(first.config_vars, [var("A", "1")]);
    hub.config_changed(); // nothing changed: no push
    *vars.0.lock().unwrap() = vec![var("A", "2")];
    hub.config_changed();
    let next = s.next().await.unwrap().unwrap().config.unwrap();
    assert_eq!(next.config_vars, [var("A", "2")]);
}

type Session = tokio::task::JoinHandle<
    Result<BoxStream<'static, Result<wayline_proto::v1::ExecStreamResponse, Status>>, Status>,
>;

/// Starts an exec from a client; returns the response stream's future and the client's sender.
fn exec_client(
    hub: &EntrypointHub,
    deployment: &str,
    args: &[&str],
) -> (Session, mpsc::Sender<Result<ExecStreamRequest, Status>>) {
    let (tx, rx) = mpsc::channel(8);
    let start = exec_stream_request::Start {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Default::default()
    };
    let hub = hub.clone();
    let ids = vec![deployment.to_owned()];
    (
        tokio::spawn(async move {
            hub.start_exec_from(ids, start, ReceiverStream::new(rx))
                .await
        }),
        tx,
    )
}

#[tokio::test]
async fn exec_is_routed_over_the_config_stream_and_paired_by_index() {
    let hub = EntrypointHub::new(HubOptions::default());
    let mut cfg = connect(&hub, "D", "I").await;
    cfg.next().await.unwrap().unwrap();
    let (session, client_tx) = exec_client(&hub, "D", &["echo", "hi"]);
    // The instance is asked through its config stream.
    let req = cfg
        .next()
        .await
        .unwrap()
        .unwrap()
        .config
        .unwrap()
        .exec
        .remove(0);
    assert_eq!(req.args, ["echo", "hi"]);
    assert_eq!(hub.list_instances(&[])[0].active_execs, 1);
    // It opens the exec stream with that index.
    let (ep_tx, ep_rx) = mpsc::channel(8);
    let msg = |e: ep_req::Event| Ok(EntrypointExecRequest { event: Some(e) });
    ep_tx
        .send(msg(ep_req::Event::Open(ep_req::Open {
            instance_id: "I".into(),
            index: req.index,
        })))
        .await
        .unwrap();
    let mut to_ep = hub
        .entrypoint_exec_from("D".into(), ReceiverStream::new(ep_rx))
        .await
        .unwrap();
    let mut out = session.await.unwrap().unwrap();
    // Client stdin reaches the entrypoint.
    let stdin = ExecStreamRequest {
        event: Some(exec_stream_request::Event::Stdin(b"in".to_vec())),
    };
    client_tx.send(Ok(stdin)).await.unwrap();
    assert_eq!(
        to_ep.next().await.unwrap().unwrap().event,
        Some(ep_resp::Event::Stdin(b"in".to_vec()))
    );
    // Output and the exit code reach the client.
    ep_tx
        .send(msg(ep_req::Event::Stdout(b"hi\n".to_vec())))
        .await
        .unwrap();
    ep_tx.send(msg(ep_req::Event::Exit(3))).await.unwrap();
    let events: Vec<_> = out
        .by_ref()
        .map(|r| r.unwrap().event.unwrap())
        .collect()
        .await;
    assert_eq!(
        events,
        [
            exec_stream_response::Event::OpenedInstanceId("I".into()),
            exec_stream_response::Event::Stdout(b"hi\n".to_vec()),
            exec_stream_response::Event::ExitCode(3),
        ]
    );
    drop(out);
    eventually(|| hub.list_instances(&[]), |l| l[0].active_execs == 0).await;
}

#[tokio::test]
async fn exec_picks_the_least_loaded_instance() {
    let hub = EntrypointHub::new(HubOptions::default());
    let mut a = connect(&hub, "D", "A").await;
    let mut b = connect(&hub, "D", "B").await;
    a.next().await.unwrap().unwrap();
    b.next().await.unwrap().unwrap();
    let _s1 = exec_client(&hub, "D", &["sh"]);
    let _s2 = exec_client(&hub, "D", &["sh"]);
    // One request each, whichever came first.
    let first = a.next().await.unwrap().unwrap().config.unwrap();
    let second = b.next().await.unwrap().unwrap().config.unwrap();
    assert_eq!((first.exec.len(), second.exec.len()), (1, 1));
    let loads: Vec<u32> = hub
        .list_instances(&[])
        .iter()
        .map(|i| i.active_execs)
        .collect();
    assert_eq!(loads, [1, 1]);
}

#[tokio::test]
async fn exec_errors_are_named() {
    let hub = EntrypointHub::new(HubOptions {
        exec_timeout: Duration::from_millis(100),
        ..HubOptions::default()
    });
    let (session, _tx) = exec_client(&hub, "D", &["sh"]);
    let err = session.await.unwrap().err().unwrap();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "no running instance with exec enabled for deployment D (waited 100ms); instances connect through `wayline-entrypoint`, so the app must run under it"
    );
    let (session, _tx) = exec_client(&hub, "D", &[]);
    assert_eq!(
        session.await.unwrap().err().unwrap().message(),
        "exec needs a command to run"
    );

    // An instance that never opens its session.
    let _cfg = connect(&hub, "D", "I").await;
    let (session, _tx) = exec_client(&hub, "D", &["sh"]);
    let err = session.await.unwrap().err().unwrap();
    assert_eq!(
        err.message(),
        "instance I did not open the exec session within 100ms"
    );

    // Another deployment cannot take the session.
    let mut cfg = connect(&hub, "D2", "J").await;
    cfg.next().await.unwrap().unwrap();
    let (_session, _tx) = exec_client(&hub, "D2", &["sh"]);
    let index = cfg.next().await.unwrap().unwrap().config.unwrap().exec[0].index;
    let open = EntrypointExecRequest {
        event: Some(ep_req::Event::Open(ep_req::Open {
            instance_id: "J".into(),
            index,
        })),
    };
    let err = hub
        .entrypoint_exec_from("D".into(), stream::iter([Ok(open)]))
        .await
        .err()
        .unwrap();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::PermissionDenied,
            format!("exec session {index} is not for this deployment").as_str()
        )
    );
    let err = hub
        .entrypoint_exec_from("D".into(), stream::iter([]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.message(), "the first exec message must be Open");
}

#[tokio::test]
async fn a_deployment_cannot_write_into_another_deployments_instance_window() {
    let hub = EntrypointHub::new(HubOptions::default());
    ship(&hub, "D1", vec![batch("I", vec![line(1, "mine")], 0)])
        .await
        .unwrap();
    let err = ship(&hub, "D2", vec![batch("I", vec![line(2, "forged")], 0)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "instance I belongs to another deployment, not D2"
    );
    let lines = history(&hub, &["D1", "D2"], GetLogStreamRequest::default()).await;
    assert_eq!(lines, vec![("I".to_owned(), "mine".to_owned())]);
}
