//! Exec sessions through the hub, with pipes and with a pty.

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use wayline_proto::v1::{
    ExecStreamRequest, WindowSize, exec_stream_request as req, exec_stream_response as resp,
};

use crate::common::*;

#[derive(Debug, Default)]
struct Outcome {
    instance: String,
    stdout: String,
    stderr: String,
    code: Option<i32>,
    error: Option<String>,
}

/// Runs an exec through the public RPC; `input` is sent after the session opened.
async fn exec(
    server: &Server,
    args: &[&str],
    pty: Option<WindowSize>,
    input: Vec<req::Event>,
) -> Outcome {
    let (tx, rx) = mpsc::channel(16);
    let start = req::Start {
        deployment_id: DEPLOYMENT.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        pty,
        term: "xterm".into(),
        ..Default::default()
    };
    tx.send(ExecStreamRequest {
        event: Some(req::Event::Start(start)),
    })
    .await
    .unwrap();
    let mut client = server.client().await;
    let mut out = client
        .start_exec_stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut o = Outcome::default();
    let run = async {
        while let Some(msg) = out.next().await {
            match msg.unwrap().event.unwrap() {
                resp::Event::OpenedInstanceId(id) => {
                    o.instance = id;
                    for e in input.clone() {
                        tx.send(ExecStreamRequest { event: Some(e) }).await.unwrap();
                    }
                }
                resp::Event::Stdout(b) => o.stdout.push_str(&String::from_utf8_lossy(&b)),
                resp::Event::Stderr(b) => o.stderr.push_str(&String::from_utf8_lossy(&b)),
                resp::Event::ExitCode(c) => o.code = Some(c),
                resp::Event::Error(e) => o.error = Some(e),
            }
        }
    };
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("exec hung");
    o
}

async fn app(server: &Server) -> tokio::process::Child {
    server.set_vars(vec![static_var("APP_SETTING", "from-config")]);
    let child = entrypoint(Some(&server.socket), &["sh", "-c", "exec sleep 60"])
        .spawn()
        .unwrap();
    server.wait_instances(1).await;
    child
}

#[tokio::test]
async fn exec_with_pipes_returns_output_and_exit_code() {
    let server = Server::start();
    let _app = app(&server).await;
    let script = "read x; echo \"got $x\"; echo oops >&2; echo \"env=$APP_SETTING\"; exit 5";
    let input = vec![
        req::Event::Stdin(b"hello\n".to_vec()),
        req::Event::StdinEof(true),
    ];
    let o = exec(&server, &["sh", "-c", script], None, input).await;
    assert_eq!(o.stdout, "got hello\nenv=from-config\n");
    assert_eq!(o.stderr, "oops\n");
    assert_eq!((o.code, o.error), (Some(5), None));
    assert_eq!(o.instance, server.hub.list_instances(&[]).remove(0).id);
    let o = exec(&server, &["/nonexistent/cmd"], None, vec![]).await;
    assert_eq!(
        o.error.as_deref(),
        Some("cannot run \"/nonexistent/cmd\": No such file or directory (os error 2)")
    );
}

#[tokio::test]
async fn exec_with_a_pty_has_a_terminal_and_follows_resizes() {
    let server = Server::start();
    let _app = app(&server).await;
    let size = WindowSize {
        rows: 24,
        cols: 80,
        enable: true,
    };
    let o = exec(
        &server,
        &["sh", "-c", "tty; stty size; echo $TERM; exit 3"],
        Some(size),
        vec![],
    )
    .await;
    assert!(o.stdout.contains("/dev/pts/"), "{o:?}");
    assert!(o.stdout.contains("24 80\r\n"), "{o:?}");
    assert!(o.stdout.contains("xterm\r\n"), "{o:?}");
    assert_eq!(o.code, Some(3));
    let input = vec![
        req::Event::Window(WindowSize {
            rows: 50,
            cols: 132,
            enable: true,
        }),
        req::Event::Stdin(b"go\n".to_vec()),
    ];
    let o = exec(
        &server,
        &["sh", "-c", "read x; stty size"],
        Some(size),
        input,
    )
    .await;
    assert!(o.stdout.contains("50 132"), "{o:?}");
    assert_eq!(o.code, Some(0));
}

#[tokio::test]
async fn exec_disabled_instances_are_not_picked() {
    let server = Server::start();
    let mut cmd = entrypoint(Some(&server.socket), &["sh", "-c", "exec sleep 60"]);
    cmd.env("WAYLINE_ENTRYPOINT_DISABLE_EXEC", "1");
    let _app = cmd.spawn().unwrap();
    server.wait_instances(1).await;
    assert!(server.hub.list_instances(&[])[0].exec_disabled);
}
