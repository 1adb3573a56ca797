//! The static entrypoint in a `FROM scratch` image with busybox, talking to the hub through a
//! bind-mounted unix socket, as the docker platform runs it. Skipped with a reason when Docker
//! is not available, unless `WAYLINE_REQUIRE_DOCKER=1`.

use std::path::PathBuf;
use std::process::Command;

use wayline_proto::v1::{
    ExecStreamRequest, exec_stream_request as req, exec_stream_response as resp,
};

use crate::common::*;

/// The static binary: `WAYLINE_ENTRYPOINT_STATIC`, or built with `scripts/build-entrypoint.sh`.
fn static_binary() -> PathBuf {
    if let Ok(p) = std::env::var("WAYLINE_ENTRYPOINT_STATIC") {
        return p.into();
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/build-entrypoint.sh"
    );
    let out = Command::new("bash").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Cleanup(Vec<Vec<String>>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let _ = Command::new("docker").args(args).output();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_from_scratch_ships_logs_serves_exec_and_forwards_docker_stop() {
    if !docker_engine("runs_from_scratch_ships_logs_serves_exec_and_forwards_docker_stop") {
        return;
    }
    let server = Server::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(static_binary(), ctx.path().join("wayline-entrypoint")).unwrap();
    std::fs::copy("/usr/bin/busybox", ctx.path().join("busybox")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY wayline-entrypoint /wayline-entrypoint\n\
         ENTRYPOINT [\"/wayline-entrypoint\"]\n\
         CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo hello from scratch; trap 'echo bye; exit 0' TERM; while :; do /bin/busybox sleep 1; done\"]\n",
    )
    .unwrap();
    let tag = format!("wayline-entrypoint-test:{}", std::process::id());
    docker(&["build", "-q", "-t", &tag, &ctx.path().display().to_string()]);
    let mut cleanup = Cleanup(vec![vec!["rmi".into(), "-f".into(), tag.clone()]]);
    let mount = format!("{}:/wayline", server.dir.path().display());
    let id = docker(&[
        "run",
        "-d",
        "-v",
        &mount,
        "-e",
        "WAYLINE_SERVER_ADDR=unix:///wayline/wayline.sock",
        "-e",
        &format!("WAYLINE_DEPLOYMENT_ID={DEPLOYMENT}"),
        "-e",
        &format!("WAYLINE_ENTRYPOINT_TOKEN={DEPLOYMENT}"),
        &tag,
    ]);
    cleanup
        .0
        .insert(0, vec!["rm".into(), "-f".into(), id.clone()]);

    server.wait_text("hello from scratch").await;
    server.wait_instances(1).await;

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let start = req::Start {
        deployment_id: DEPLOYMENT.into(),
        args: vec!["/bin/busybox".into(), "ls".into(), "/".into()],
        ..Default::default()
    };
    tx.send(ExecStreamRequest {
        event: Some(req::Event::Start(start)),
    })
    .await
    .unwrap();
    let mut out = server
        .client()
        .await
        .start_exec_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let (mut stdout, mut code) = (String::new(), None);
    while let Some(m) = out.message().await.unwrap() {
        match m.event.unwrap() {
            resp::Event::Stdout(b) => stdout.push_str(&String::from_utf8_lossy(&b)),
            resp::Event::ExitCode(c) => code = Some(c),
            resp::Event::Error(e) => panic!("{e}"),
            _ => {}
        }
    }
    assert_eq!(code, Some(0));
    assert!(stdout.contains("wayline-entrypoint"), "{stdout}");

    // `docker stop` sends SIGTERM to PID 1: the app must get it and exit on its own.
    docker(&["stop", "-t", "20", &id]);
    assert_eq!(docker(&["inspect", "-f", "{{.State.ExitCode}}", &id]), "0");
    server.wait_text("bye").await;
    server.wait_instances(0).await;
}
