//! Acknowledged writes survive `kill -9` of the server process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use wayline_proto::v1 as pb;
use wayline_proto::v1::job::State;

use crate::common::*;

/// Not a test: the server process the crash test starts and kills (run via `--ignored`).
#[test]
#[ignore = "helper process for acknowledged_writes_survive_kill_9"]
fn serve_child() {
    let Ok(dir) = std::env::var("WAYLINE_TEST_CHILD_DIR") else {
        return;
    };
    let rt = wayline_server::runtime().unwrap();
    rt.block_on(async {
        let _server = wayline_server::start(options(std::path::Path::new(&dir)))
            .await
            .unwrap();
        println!("child-ready");
        // Exit when the parent goes away (its end of our stdin closes), even if it panicked.
        let _ =
            tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
    });
}

fn spawn(dir: &std::path::Path) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash::serve_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WAYLINE_TEST_CHILD_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines() {
        if line.unwrap().trim_end().ends_with("child-ready") {
            return child;
        }
    }
    let _ = child.wait();
    panic!("the server child exited before it was ready");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("wayline.sock");
    let mut child = spawn(dir.path());
    let (token, mut c) = bootstrap(&sock).await;
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
    let job = queue(&mut c, noop_job(None)).await;
    c.set_config(pb::SetConfigRequest {
        variables: vec![pb::ConfigVar {
            name: "K".into(),
            value: Some(pb::config_var::Value::Static("v".into())),
            ..Default::default()
        }],
    })
    .await
    .unwrap();
    child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    child.wait().unwrap();

    let mut child = spawn(dir.path());
    let mut c = with_token(unix_channel(&sock).await, Some(&token));
    let got = c
        .get_operation(pb::GetOperationRequest {
            kind: pb::OperationKind::Deployment as i32,
            target: Some(pb::get_operation_request::Target::Id(dep.id.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.sequence, 1);
    assert_eq!(get_job(&mut c, &job).await.state, State::Queued as i32);
    let vars = c
        .get_config(pb::GetConfigRequest::default())
        .await
        .unwrap()
        .into_inner()
        .variables;
    assert_eq!(vars.len(), 1);
    assert!(
        with_token(unix_channel(&sock).await, None)
            .bootstrap_token(())
            .await
            .is_err()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
