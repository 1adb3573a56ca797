//! One deployment's token reaches only its own instances, and no entrypoint can bloat the
//! server with its logs (issue 10).

use futures::stream;
use tonic::Code;
use wayline_proto::prost_types::Timestamp;
use wayline_proto::v1::{
    EntrypointConfigRequest, EntrypointLogBatch, GetLogStreamRequest, LogLine,
};

use super::tests::{connect, eventually, history, ship};
use super::*;

fn request(deployment: &str, instance: &str) -> EntrypointConfigRequest {
    EntrypointConfigRequest {
        deployment_id: deployment.into(),
        instance_id: instance.into(),
        exec_disabled: false,
    }
}

async fn register_as(
    hub: &EntrypointHub,
    deployment: &str,
    instance: &str,
) -> Result<BoxStream<'static, Result<EntrypointConfigResponse, Status>>, Status> {
    let resolver: Arc<dyn ConfigResolver> = super::tests::resolver(vec![]);
    hub.entrypoint_config(
        deployment.into(),
        request(deployment, instance),
        AppRef::default(),
        resolver,
    )
    .await
}

/// Deployment X's token opened EntrypointConfig with Y's instance id and took it over: Y
/// showed 0 instances and exec into Y failed.
#[tokio::test]
async fn an_instance_id_cannot_be_taken_over_by_another_deployment() {
    let hub = EntrypointHub::new(HubOptions::default());
    let _y = connect(&hub, "Y", "I1").await;
    let err = register_as(&hub, "X", "I1").await.err().expect("refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "instance I1 belongs to another deployment, not X"
    );
    let listed = hub.list_instances(&["Y".into()]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].deployment_id, "Y");
    // Its own deployment reconnects with the same id as before.
    assert!(register_as(&hub, "Y", "I1").await.is_ok());
}

/// The binding outlives the connection while the instance's log window is kept.
#[tokio::test]
async fn a_gone_instance_id_stays_bound_while_its_logs_are_kept() {
    let hub = EntrypointHub::new(HubOptions::default());
    let y = connect(&hub, "Y", "I1").await;
    ship(
        &hub,
        "Y",
        vec![super::tests::batch(
            "I1",
            vec![super::tests::line(1, "hi")],
            0,
        )],
    )
    .await
    .unwrap();
    drop(y);
    eventually(|| hub.list_instances(&[]), Vec::is_empty).await;
    let err = register_as(&hub, "X", "I1").await.err().expect("refused");
    assert_eq!(err.code(), Code::PermissionDenied);
}

fn big_line(secs: i64, bytes: usize) -> LogLine {
    LogLine {
        timestamp: Some(Timestamp {
            seconds: secs,
            nanos: 0,
        }),
        line: "é".repeat(bytes / 2),
        ..LogLine::default()
    }
}

/// A 3 MB-per-line flood took the server from 18 MB to 904 MB: lines are cut and the window
/// is bounded in bytes as well as lines.
#[tokio::test]
async fn long_lines_are_cut_and_the_window_is_bounded_in_bytes() {
    let hub = EntrypointHub::new(HubOptions {
        log_window_bytes: 64 * 1024,
        max_log_line_bytes: 1000,
        ..HubOptions::default()
    });
    let batches: Vec<EntrypointLogBatch> = (0..20)
        .map(|i| super::tests::batch("I", vec![big_line(i, 3_000_000)], 0))
        .collect();
    hub.entrypoint_logs_from("D".into(), stream::iter(batches.into_iter().map(Ok)))
        .await
        .unwrap();
    let lines = history(&hub, &["D"], GetLogStreamRequest::default()).await;
    assert_eq!(
        lines.len(),
        20,
        "cut lines are small enough to keep them all"
    );
    let (_, first) = &lines[0];
    assert!(
        first.ends_with(" … [line cut at 1000 of 3000000 bytes]"),
        "{}",
        &first[first.len() - 60..]
    );
    let state = hub.state();
    let w = &state.windows["I"];
    assert!(w.bytes <= 64 * 1024, "{} bytes kept", w.bytes);

    drop(state);
    // With the defaults a window stays within its byte budget however long the flood.
    let hub = EntrypointHub::new(HubOptions::default());
    for i in 0..400 {
        let b = super::tests::batch("I", vec![big_line(i, 3_000_000)], 0);
        assert_eq!(hub.append_logs("D", b), super::logs::Appended::Yes);
    }
    let state = hub.state();
    let w = &state.windows["I"];
    assert!(
        w.bytes <= HubOptions::default().log_window_bytes,
        "{}",
        w.bytes
    );
    let kept: usize = w.lines.iter().map(|l| l.line.len()).sum();
    assert_eq!(kept, w.bytes);
}

/// One entrypoint token inventing instance ids could keep 1,024 windows of 2 MiB each: a
/// deployment has a bounded number of instances, and the windows' total is bounded too.
#[tokio::test]
async fn instances_per_deployment_and_log_bytes_in_all_are_bounded() {
    let hub = EntrypointHub::new(HubOptions {
        max_instances_per_deployment: 2,
        max_log_bytes_total: 2500,
        max_log_line_bytes: 1000,
        ..HubOptions::default()
    });
    let _a = connect(&hub, "D", "a").await;
    let _b = connect(&hub, "D", "b").await;
    let Err(err) = hub
        .entrypoint_config(
            "D".into(),
            request("D", "c"),
            AppRef::default(),
            super::tests::resolver(vec![]),
        )
        .await
    else {
        panic!("a third instance of D was accepted");
    };
    let want = "deployment D already has 2 instances; the limit is 2 instances per deployment";
    assert_eq!((err.code(), err.message()), (Code::ResourceExhausted, want));
    // Log windows of connected instances are not evicted for a new one.
    for id in ["a", "b"] {
        let b = super::tests::batch(id, vec![big_line(1, 10)], 0);
        assert_eq!(hub.append_logs("D", b), super::logs::Appended::Yes);
    }
    let batches = vec![Ok(super::tests::batch("c", vec![big_line(2, 10)], 0))];
    let err = hub
        .entrypoint_logs_from("D".into(), stream::iter(batches))
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::ResourceExhausted, want));
    // Other deployments' windows of gone instances go oldest first to keep the total.
    for (i, id) in ["x1", "x2", "x3"].into_iter().enumerate() {
        let b = super::tests::batch(id, vec![big_line(i64::try_from(i).unwrap(), 1000)], 0);
        assert_eq!(
            hub.append_logs(&format!("E{i}"), b),
            super::logs::Appended::Yes
        );
    }
    let state = hub.state();
    let mut kept: Vec<&str> = state.windows.keys().map(String::as_str).collect();
    kept.sort_unstable();
    assert_eq!(kept, ["a", "b", "x2", "x3"]);
    assert!(state.windows.values().map(|w| w.bytes).sum::<usize>() <= 2500);
}
