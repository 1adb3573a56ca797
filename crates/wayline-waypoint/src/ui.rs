//! The `TerminalUIService` the host serves to a plugin (through the broker) for one call: every
//! line, status, table and step the plugin draws becomes the same terminal event a native
//! plugin's `Ui` sends, so it reaches the CLI and the job log alike.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use wayline_plugin::{TerminalEvent, Ui};
use wayline_proto::v1::terminal_event as te;

use crate::pb::sdk::terminal_ui::{self as wt, event as we};
use crate::pb::sdk::terminal_ui_service_server::{TerminalUiService, TerminalUiServiceServer};

/// Longest run of events one `Events` stream may send (a runaway plugin cannot flood the job).
const MAX_EVENTS: usize = 100_000;

/// One call's terminal, forwarding to the call's [`Ui`].
pub(crate) struct CallUi(Arc<Inner>);

struct Inner {
    ui: Ui,
    /// Plugin step ids → ids in the host UI's space (they must never collide).
    steps: Mutex<HashMap<i32, i32>>,
    /// Event streams still being read, and a wake-up when one ends.
    open: AtomicUsize,
    idle: Notify,
}

/// Waits for a call's event streams to be read to their end.
pub(crate) struct Drain(Arc<Inner>);

impl Drain {
    /// Returns when no event stream is open any more, or after `max`.
    pub(crate) async fn wait(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let n = self.0.idle.notified();
            if self.0.open.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, n).await.is_err() {
                return;
            }
        }
    }
}

impl CallUi {
    /// The service for one call, and what waits for its output to be forwarded.
    pub(crate) fn server(ui: Ui) -> (TerminalUiServiceServer<Self>, Drain) {
        let inner = Arc::new(Inner {
            ui,
            steps: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        (
            TerminalUiServiceServer::new(Self(inner.clone())),
            Drain(inner),
        )
    }
}

impl Inner {
    fn forward(&self, ev: wt::Event) {
        let mut steps = self.steps.lock().expect("ui lock");
        if let Some(e) = convert(ev, &mut |id| {
            *steps.entry(id).or_insert_with(|| self.ui.next_step_id())
        }) {
            self.ui.emit(TerminalEvent {
                timestamp: Some(prost_types::Timestamp::from(SystemTime::now())),
                event: Some(e),
            });
        }
    }
}

/// A Waypoint terminal event as ours; `step_id` maps a plugin step id into the host's ids.
/// Input prompts have no equivalent (jobs are not interactive) and give `None`.
pub(crate) fn convert(ev: wt::Event, step_id: &mut dyn FnMut(i32) -> i32) -> Option<te::Event> {
    Some(match ev.event? {
        we::Event::Line(l) => te::Event::Line(te::Line {
            msg: l.msg,
            style: l.style,
        }),
        we::Event::Status(s) => te::Event::Status(te::Status {
            status: s.status,
            msg: s.msg,
            step: s.step,
        }),
        we::Event::NamedValues(n) => te::Event::NamedValues(te::NamedValues {
            values: n
                .values
                .into_iter()
                .map(|v| te::NamedValue {
                    name: v.name,
                    value: v.value,
                })
                .collect(),
        }),
        we::Event::Raw(r) => te::Event::Line(te::Line {
            msg: String::from_utf8_lossy(&r.data).trim_end().to_owned(),
            style: if r.stderr {
                "error".into()
            } else {
                String::new()
            },
        }),
        we::Event::Table(t) => te::Event::Table(te::Table {
            headers: t.headers,
            rows: t
                .rows
                .into_iter()
                .map(|r| te::TableRow {
                    cells: r.entries.into_iter().map(|e| e.value).collect(),
                })
                .collect(),
        }),
        we::Event::StepGroup(g) => te::Event::StepGroup(te::StepGroup { close: g.close }),
        we::Event::Step(s) => te::Event::Step(te::Step {
            id: step_id(s.id),
            close: s.close,
            msg: s.msg,
            status: s.status,
            output: s.output,
        }),
        we::Event::Input(_) => return None,
    })
}

fn no_input() -> wt::Response {
    wt::Response {
        event: Some(wt::response::Event::Input(we::InputResp {
            input: String::new(),
            error: Some(crate::pb::google::rpc::Status {
                code: tonic::Code::FailedPrecondition as i32,
                message: "input is not supported: the job is not interactive".into(),
                details: Vec::new(),
            }),
        })),
    }
}

#[tonic::async_trait]
impl TerminalUiService for CallUi {
    async fn output(&self, request: Request<wt::OutputRequest>) -> Result<Response<()>, Status> {
        for line in request.into_inner().lines {
            self.0.forward(wt::Event {
                event: Some(we::Event::Line(we::Line {
                    msg: line,
                    style: String::new(),
                })),
            });
        }
        Ok(Response::new(()))
    }

    type EventsStream = ReceiverStream<Result<wt::Response, Status>>;

    async fn events(
        &self,
        request: Request<Streaming<wt::Event>>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        let mut stream = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let inner = self.0.clone();
        inner.open.fetch_add(1, Ordering::AcqRel);
        // The plugin keeps the stream open and waits for input answers on it: read in a task.
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok(Some(ev)) = stream.message().await {
                n += 1;
                if n > MAX_EVENTS {
                    let _ = tx
                        .send(Err(Status::resource_exhausted(format!(
                            "more than {MAX_EVENTS} terminal events in one stream"
                        ))))
                        .await;
                    break;
                }
                if matches!(ev.event, Some(we::Event::Input(_))) {
                    // Jobs are not interactive: the prompt gets an error, as from Waypoint's
                    // non-interactive UI.
                    let _ = tx.send(Ok(no_input())).await;
                    continue;
                }
                inner.forward(ev);
            }
            inner.open.fetch_sub(1, Ordering::AcqRel);
            inner.idle.notify_waiters();
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn is_interactive(
        &self,
        _request: Request<()>,
    ) -> Result<Response<wt::IsInteractiveResponse>, Status> {
        Ok(Response::new(wt::IsInteractiveResponse {
            interactive: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drawable_event_maps_and_step_ids_are_remapped() {
        let mut map = |id: i32| id + 100;
        let step = wt::Event {
            event: Some(we::Event::Step(we::Step {
                id: 1,
                close: true,
                msg: "pushed".into(),
                status: "success".into(),
                output: b"ok".to_vec(),
                step_group: 7,
            })),
        };
        let Some(te::Event::Step(s)) = convert(step, &mut map) else {
            panic!("a step")
        };
        assert_eq!((s.id, s.msg.as_str(), s.close), (101, "pushed", true));
        let table = wt::Event {
            event: Some(we::Event::Table(we::Table {
                headers: vec!["NAME".into()],
                rows: vec![we::TableRow {
                    entries: vec![we::TableEntry {
                        value: "web".into(),
                        color: "green".into(),
                    }],
                }],
            })),
        };
        let Some(te::Event::Table(t)) = convert(table, &mut map) else {
            panic!("a table")
        };
        assert_eq!(t.rows[0].cells, ["web"]);
        let raw = wt::Event {
            event: Some(we::Event::Raw(we::Raw {
                data: b"oops\n".to_vec(),
                stderr: true,
            })),
        };
        assert_eq!(
            convert(raw, &mut map),
            Some(te::Event::Line(te::Line {
                msg: "oops".into(),
                style: "error".into()
            }))
        );
        let input = wt::Event {
            event: Some(we::Event::Input(we::Input::default())),
        };
        assert_eq!(convert(input, &mut map), None);
    }
}
