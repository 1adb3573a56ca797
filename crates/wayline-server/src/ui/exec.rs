//! The exec page: a terminal (xterm.js) into one of the app's instances, over a WebSocket that
//! the server bridges to the exec routing (`StartExecStream`, admitted like the RPC).
//!
//! Browser → server: text frames, `0<keystrokes>` or `1{"rows":R,"cols":C}`. Server → browser:
//! the instance's output as binary frames, and JSON text frames `{"instance":…}`,
//! `{"exit":N}`, `{"error":…}`.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use maud::html;
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;
use wayline_proto::v1 as pb;
use wayline_proto::v1::exec_stream_request::Event as In;
use wayline_proto::v1::exec_stream_response::Event as Out;

use super::Viewer;
use super::api::{Api, Page, UiError};
use super::layout::{app_path, page_with, seg, short_id};

/// Largest WebSocket message from the browser (keystrokes and window sizes are small).
const MAX_MESSAGE: usize = 64 * 1024;
/// Longest command line accepted from the page.
const MAX_COMMAND: usize = 1024;

/// `?instance=&command=` (and on the socket `rows`, `cols`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExecQuery {
    #[serde(default)]
    instance: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    rows: u32,
    #[serde(default)]
    cols: u32,
}

impl ExecQuery {
    fn command(&self) -> Vec<String> {
        let words: Vec<String> = self.command.split_whitespace().map(str::to_owned).collect();
        if words.is_empty() {
            vec!["sh".to_owned()]
        } else {
            words
        }
    }
}

/// `/projects/{p}/apps/{a}/exec`.
pub(crate) async fn page_route(
    v: Viewer,
    Path((project, app)): Path<(String, String)>,
    Query(q): Query<ExecQuery>,
) -> Page {
    let Viewer { api, ctx } = v;
    let instances = api.instances(&project, &app, &ctx.workspace, "").await?;
    let base = app_path(&project, &app);
    let command = q.command().join(" ");
    let sep = if ctx.ws_query().is_empty() { "?" } else { "&" };
    let ws = format!(
        "{base}/exec/ws{}{sep}instance={}&command={}",
        ctx.ws_query(),
        seg(&q.instance),
        seg(&command)
    );
    let body = html! {
        p.muted { a href=(ctx.href(&base)) { (project) " / " (app) } }
        h1 { "Exec" }
        form.row method="get" action={ (base) "/exec" } {
            @if !ctx.ws_query().is_empty() { input type="hidden" name="workspace" value=(ctx.workspace); }
            label { "Instance" select name="instance" {
                option value="" { "any" }
                @for i in &instances { option value=(i.id) selected[i.id == q.instance] { (short_id(&i.id)) } }
            } }
            label { "Command" input name="command" value=(command) maxlength="1024"; }
            button type="submit" { "Start" }
        }
        @if instances.is_empty() { p.warning { "No instance is connected: exec waits for one." } }
        p #exec-status role="status" { "Connecting…" }
        div #terminal data-ws=(ws) aria-label="Terminal" {}
    };
    Ok(page_with(
        &ctx,
        &format!("Exec into {app}"),
        &["xterm-6.0.0.js", "exec.js"],
        &["xterm-6.0.0.css"],
        body,
    )
    .into_response())
}

/// `GET …/exec/ws`: the WebSocket. Only from this origin (the cookie is SameSite=Strict too).
pub(crate) async fn socket(
    v: Viewer,
    Path((project, app)): Path<(String, String)>,
    Query(q): Query<ExecQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, UiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        == Some(host);
    if !same {
        return Err(UiError(tonic::Status::permission_denied(
            "the exec socket is only for pages of this server",
        )));
    }
    if q.command.len() > MAX_COMMAND {
        return Err(UiError::invalid(
            "The command is longer than 1024 characters.",
        ));
    }
    let start = pb::exec_stream_request::Start {
        instance_id: q.instance.clone(),
        application: Some(pb::r#ref::Application {
            project,
            application: app,
        }),
        workspace: v.ctx.workspace.clone(),
        args: q.command(),
        pty: Some(pb::WindowSize {
            rows: q.rows.clamp(1, 500),
            cols: q.cols.clamp(1, 1000),
            enable: true,
        }),
        term: "xterm-256color".to_owned(),
        ..Default::default()
    };
    let api = v.api;
    Ok(upgrade
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |ws| bridge(api, start, ws))
        .into_response())
}

fn status_frame(v: &serde_json::Value) -> Message {
    Message::Text(v.to_string().into())
}

/// Runs one session: browser frames → exec requests, exec responses → browser frames.
async fn bridge(api: Api, start: pb::exec_stream_request::Start, ws: WebSocket) {
    let (mut to_browser, mut from_browser) = ws.split();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::ExecStreamRequest, tonic::Status>>(64);
    let msg = |e: In| Ok(pb::ExecStreamRequest { event: Some(e) });
    if tx.send(msg(In::Start(start))).await.is_err() {
        return;
    }
    let mut out = match api
        .service()
        .start_exec_from(&api.req(()), ReceiverStream::new(rx))
        .await
    {
        Ok(out) => out,
        Err(s) => {
            let _ = to_browser
                .send(status_frame(&serde_json::json!({ "error": s.message() })))
                .await;
            return;
        }
    };
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = from_browser.next().await {
            let event = match frame {
                Message::Text(t) => match t.as_str().split_at_checked(1) {
                    Some(("0", keys)) => In::Stdin(keys.as_bytes().to_vec()),
                    Some(("1", size)) => match serde_json::from_str::<serde_json::Value>(size) {
                        Ok(v) => In::Window(pb::WindowSize {
                            rows: v["rows"].as_u64().unwrap_or(24).clamp(1, 500) as u32,
                            cols: v["cols"].as_u64().unwrap_or(80).clamp(1, 1000) as u32,
                            enable: true,
                        }),
                        Err(_) => continue,
                    },
                    _ => continue,
                },
                Message::Close(_) => break,
                _ => continue,
            };
            if tx.send(msg(event)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(msg(In::StdinEof(true))).await;
    });
    while let Some(item) = out.next().await {
        let frame = match item {
            Ok(pb::ExecStreamResponse {
                event: Some(Out::Stdout(b) | Out::Stderr(b)),
            }) => Message::Binary(b.into()),
            Ok(pb::ExecStreamResponse {
                event: Some(Out::OpenedInstanceId(id)),
            }) => status_frame(&serde_json::json!({ "instance": id })),
            Ok(pb::ExecStreamResponse {
                event: Some(Out::ExitCode(c)),
            }) => status_frame(&serde_json::json!({ "exit": c })),
            Ok(pb::ExecStreamResponse {
                event: Some(Out::Error(e)),
            }) => status_frame(&serde_json::json!({ "error": e })),
            Ok(pb::ExecStreamResponse { event: None }) => continue,
            Err(s) => status_frame(&serde_json::json!({ "error": s.message() })),
        };
        if to_browser.send(frame).await.is_err() {
            break;
        }
    }
    reader.abort();
    let _ = to_browser.close().await;
}
