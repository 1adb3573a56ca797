//! Log tee and shipping against the hub.

use wayline_proto::v1::{ListInstancesRequest, log_line};

use crate::common::*;

#[tokio::test]
async fn output_is_teed_and_shipped_and_the_instance_registered() {
    let server = Server::start();
    let script = "echo one; echo two >&2; echo ready; exec sleep 60";
    let mut child = entrypoint(Some(&server.socket), &["sh", "-c", script])
        .spawn()
        .unwrap();
    wait_stdout(&mut child, "one").await;
    let two = server.wait_text("two").await;
    assert_eq!(two.stream, log_line::Stream::Stderr as i32);
    assert_eq!(two.source, log_line::Source::App as i32);
    let connected = server
        .wait_line(|l| l.line.contains("connected to the server"))
        .await;
    assert_eq!(connected.source, log_line::Source::Entrypoint as i32);
    // The public RPC sees the instance too.
    let instances = server
        .client()
        .await
        .list_instances(ListInstancesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .instances;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].deployment_id, DEPLOYMENT);
    assert_eq!(instances[0].id.len(), 26);
    // Gone when the entrypoint is.
    child.kill().await.unwrap();
    server.wait_instances(0).await;
}

#[tokio::test]
async fn last_lines_of_a_crashing_app_are_shipped() {
    let server = Server::start();
    let script = "sleep 0.5; echo 'fatal: out of cheese' >&2; exit 3";
    let mut child = entrypoint(Some(&server.socket), &["sh", "-c", script])
        .spawn()
        .unwrap();
    assert_eq!(wait_code(&mut child).await, 3);
    server.wait_text("fatal: out of cheese").await;
    server
        .wait_line(|l| l.line.contains("app exited code=3"))
        .await;
}

#[tokio::test]
async fn lines_buffered_while_unreachable_ship_later_with_a_drop_count() {
    let mut server = Server::not_yet();
    let script = "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo line $i; done; exec sleep 60";
    let mut cmd = entrypoint(Some(&server.socket), &["sh", "-c", script]);
    cmd.env("WAYLINE_ENTRYPOINT_LOG_BUFFER", "20");
    let mut child = cmd.spawn().unwrap();
    wait_stdout(&mut child, "line 60").await;
    server.listen();
    server.wait_text("line 60").await;
    let dropped = server
        .wait_line(|l| l.line.starts_with("… ") && l.line.ends_with(" lines dropped"))
        .await;
    assert_eq!(dropped.source, log_line::Source::Entrypoint as i32);
    // The newest lines survived; the oldest were the ones dropped.
    let window: Vec<String> = {
        use futures::StreamExt;
        let req = wayline_proto::v1::GetLogStreamRequest::default();
        server
            .hub
            .log_stream(vec![DEPLOYMENT.into()], req)
            .map(|b| b.unwrap())
            .flat_map(|b| futures::stream::iter(b.lines))
            .map(|l| l.line)
            .collect()
            .await
    };
    assert!(!window.contains(&"line 1".to_owned()), "{window:?}");
    drop(child);
}
