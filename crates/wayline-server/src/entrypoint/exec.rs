//! Exec routing: pick an instance, ask it (through its config stream) to open an exec stream,
//! pair that stream with the client's, and pipe both ways until the command exits.

use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use wayline_proto::v1::entrypoint_config::ExecRequest;
use wayline_proto::v1::{
    EntrypointExecRequest, EntrypointExecResponse, ExecStreamRequest, ExecStreamResponse,
    entrypoint_exec_request as ep_req, entrypoint_exec_response as ep_resp, exec_stream_request,
    exec_stream_response,
};

use super::EntrypointHub;

type EpStream = BoxStream<'static, Result<EntrypointExecRequest, Status>>;

/// An exec session waiting for its instance to open the stream.
pub(super) struct Pending {
    pub(super) deployment_id: String,
    pub(super) instance_id: String,
    tx: oneshot::Sender<Pipe>,
}

/// The entrypoint's half of a session.
struct Pipe {
    from_ep: EpStream,
    to_ep: mpsc::Sender<EntrypointExecResponse>,
}

/// Lowers an instance's exec count when the session ends however it ends.
struct Active {
    hub: EntrypointHub,
    instance_id: String,
    index: i64,
}

impl Drop for Active {
    fn drop(&mut self) {
        let mut state = self.hub.state();
        state.pending.remove(&self.index);
        if let Some(inst) = state.instances.get_mut(&self.instance_id) {
            inst.info.active_execs = inst.info.active_execs.saturating_sub(1);
            inst.execs.retain(|e| e.index != self.index);
        }
    }
}

/// Client → entrypoint: stdin, stdin EOF and window changes, until the client stops or `stop`
/// fires (the session ended).
async fn forward_to_entrypoint(
    mut rest: impl futures::Stream<Item = Result<ExecStreamRequest, Status>> + Send + Unpin + 'static,
    to_ep: mpsc::Sender<EntrypointExecResponse>,
    stop: oneshot::Receiver<()>,
) {
    let forward = async {
        while let Some(Ok(msg)) = rest.next().await {
            let event = match msg.event {
                Some(exec_stream_request::Event::Stdin(b)) => ep_resp::Event::Stdin(b),
                Some(exec_stream_request::Event::StdinEof(b)) => ep_resp::Event::StdinEof(b),
                Some(exec_stream_request::Event::Window(w)) => ep_resp::Event::Window(w),
                Some(exec_stream_request::Event::Start(_)) | None => continue,
            };
            if to_ep
                .send(EntrypointExecResponse { event: Some(event) })
                .await
                .is_err()
            {
                return;
            }
        }
        // The client half-closed: keep the stream to the entrypoint open (its stdin may
        // already be closed with stdin_eof) until the session ends.
        to_ep.closed().await;
    };
    tokio::select! {
        () = forward => {}
        _ = stop => {}
    }
}

/// Entrypoint → client: output and the exit code. `guard` (the session's bookkeeping and the
/// forwarder's stop) lives in the stream's state, so dropping the response stream ends both.
fn entrypoint_to_client(
    from_ep: EpStream,
    guard: (Active, oneshot::Sender<()>),
) -> BoxStream<'static, Result<ExecStreamResponse, Status>> {
    stream::unfold((from_ep, Some(guard)), |(mut from_ep, guard)| async move {
        guard.as_ref()?;
        loop {
            let event = match from_ep.next().await {
                Some(Ok(EntrypointExecRequest { event: Some(e) })) => e,
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Some((
                        out(exec_stream_response::Event::Error(format!(
                            "exec stream broke: {}",
                            e.message()
                        ))),
                        (from_ep, None),
                    ));
                }
                None => {
                    let msg =
                        "the instance closed the exec session without an exit code".to_owned();
                    return Some((
                        out(exec_stream_response::Event::Error(msg)),
                        (from_ep, None),
                    ));
                }
            };
            return match event {
                ep_req::Event::Stdout(b) => Some((
                    out(exec_stream_response::Event::Stdout(b)),
                    (from_ep, guard),
                )),
                ep_req::Event::Stderr(b) => Some((
                    out(exec_stream_response::Event::Stderr(b)),
                    (from_ep, guard),
                )),
                ep_req::Event::Exit(code) => Some((
                    out(exec_stream_response::Event::ExitCode(code)),
                    (from_ep, None),
                )),
                ep_req::Event::Error(e) => {
                    Some((out(exec_stream_response::Event::Error(e)), (from_ep, None)))
                }
                ep_req::Event::Open(_) => continue,
            };
        }
    })
    .boxed()
}

fn out(event: exec_stream_response::Event) -> Result<ExecStreamResponse, Status> {
    Ok(ExecStreamResponse { event: Some(event) })
}

impl EntrypointHub {
    /// Serves a client's `StartExecStream` after its `Start` message: routes the session to
    /// `first.instance_id`, or else to the least-loaded exec-enabled instance of
    /// `deployment_ids`, waiting up to the exec timeout for one. The first response names the
    /// instance; the last is the exit code (or an error).
    pub async fn start_exec(
        &self,
        deployment_ids: Vec<String>,
        first: exec_stream_request::Start,
        rest: tonic::Streaming<ExecStreamRequest>,
    ) -> Result<BoxStream<'static, Result<ExecStreamResponse, Status>>, Status> {
        self.start_exec_from(deployment_ids, first, rest).await
    }

    /// [`EntrypointHub::start_exec`] over any stream of client messages.
    pub async fn start_exec_from(
        &self,
        deployment_ids: Vec<String>,
        first: exec_stream_request::Start,
        rest: impl futures::Stream<Item = Result<ExecStreamRequest, Status>> + Send + Unpin + 'static,
    ) -> Result<BoxStream<'static, Result<ExecStreamResponse, Status>>, Status> {
        if first.args.is_empty() {
            return Err(Status::invalid_argument("exec needs a command to run"));
        }
        if deployment_ids.is_empty() && first.instance_id.is_empty() {
            return Err(Status::invalid_argument(
                "exec needs a deployment or an instance",
            ));
        }
        let timeout = self.inner.opts.exec_timeout;
        let (index, instance_id, rx) = self
            .reserve_within(&deployment_ids, &first, timeout)
            .await?;
        let active = Active {
            hub: self.clone(),
            instance_id: instance_id.clone(),
            index,
        };
        let pipe = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(pipe)) => pipe,
            Ok(Err(_)) => {
                return Err(Status::unavailable(format!(
                    "instance {instance_id} went away before opening the exec session"
                )));
            }
            Err(_) => {
                return Err(Status::deadline_exceeded(format!(
                    "instance {instance_id} did not open the exec session within {timeout:?}"
                )));
            }
        };
        tracing::info!(instance = %instance_id, index, "exec session paired");

        // Client → entrypoint, until the client stops or the session ends.
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        tokio::spawn(forward_to_entrypoint(rest, pipe.to_ep, stop_rx));

        // Entrypoint → client. Holding `active` and `stop_tx` in the state ends the session's
        // bookkeeping and the forwarder when the client drops the response stream.
        let opened = stream::once(futures::future::ready(out(
            exec_stream_response::Event::OpenedInstanceId(instance_id),
        )));
        let body = entrypoint_to_client(pipe.from_ep, (active, stop_tx));
        Ok(opened.chain(body).boxed())
    }

    /// Reserves an instance for the session, waiting (up to `timeout`) for one to connect.
    async fn reserve_within(
        &self,
        deployment_ids: &[String],
        first: &exec_stream_request::Start,
        timeout: std::time::Duration,
    ) -> Result<(i64, String, oneshot::Receiver<Pipe>), Status> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut registry = self.inner.registry_epoch.subscribe();
        loop {
            registry.borrow_and_update();
            if let Some(picked) = self.reserve(deployment_ids, first)? {
                return Ok(picked);
            }
            let what = if first.instance_id.is_empty() {
                format!("deployment {}", deployment_ids.join(", "))
            } else {
                format!("instance {}", first.instance_id)
            };
            match tokio::time::timeout_at(deadline, registry.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(Status::failed_precondition(format!(
                        "no running instance with exec enabled for {what} (waited {timeout:?}); \
                         instances connect through `wayline-entrypoint`, so the app must run under it"
                    )));
                }
            }
        }
    }

    /// Picks and reserves an instance; `None` when none fits yet.
    fn reserve(
        &self,
        deployment_ids: &[String],
        first: &exec_stream_request::Start,
    ) -> Result<Option<(i64, String, oneshot::Receiver<Pipe>)>, Status> {
        let mut state = self.state();
        let instance_id = if first.instance_id.is_empty() {
            let best = state
                .instances
                .values()
                .filter(|i| deployment_ids.contains(&i.info.deployment_id) && !i.info.exec_disabled)
                .min_by_key(|i| (i.info.active_execs, i.info.id.clone()));
            match best {
                Some(i) => i.info.id.clone(),
                None => return Ok(None),
            }
        } else {
            let Some(inst) = state.instances.get(&first.instance_id) else {
                return Ok(None);
            };
            if !deployment_ids.is_empty() && !deployment_ids.contains(&inst.info.deployment_id) {
                return Err(Status::not_found(format!(
                    "instance {} is not part of this deployment",
                    first.instance_id
                )));
            }
            if inst.info.exec_disabled {
                return Err(Status::failed_precondition(format!(
                    "instance {} has exec disabled",
                    first.instance_id
                )));
            }
            first.instance_id.clone()
        };
        state.next_exec += 1;
        let index = state.next_exec;
        let (tx, rx) = oneshot::channel();
        let Some(inst) = state.instances.get_mut(&instance_id) else {
            return Ok(None);
        };
        inst.info.active_execs += 1;
        inst.execs.push(ExecRequest {
            index,
            args: first.args.clone(),
            pty: first.pty,
            term: first.term.clone(),
        });
        let deployment_id = inst.info.deployment_id.clone();
        let wake: Arc<tokio::sync::Notify> = inst.wake.clone();
        state.pending.insert(
            index,
            Pending {
                deployment_id,
                instance_id: instance_id.clone(),
                tx,
            },
        );
        drop(state);
        wake.notify_one();
        Ok(Some((index, instance_id, rx)))
    }

    /// Serves an entrypoint's `EntrypointExecStream`: its first message must be `Open` naming a
    /// session the hub asked this instance for.
    pub async fn entrypoint_exec(
        &self,
        deployment_id: String,
        stream: tonic::Streaming<EntrypointExecRequest>,
    ) -> Result<BoxStream<'static, Result<EntrypointExecResponse, Status>>, Status> {
        self.entrypoint_exec_from(deployment_id, stream).await
    }

    /// [`EntrypointHub::entrypoint_exec`] over any stream of entrypoint messages.
    pub async fn entrypoint_exec_from(
        &self,
        deployment_id: String,
        mut stream: impl futures::Stream<Item = Result<EntrypointExecRequest, Status>>
        + Send
        + Unpin
        + 'static,
    ) -> Result<BoxStream<'static, Result<EntrypointExecResponse, Status>>, Status> {
        let open = match stream.next().await {
            Some(Ok(EntrypointExecRequest {
                event: Some(ep_req::Event::Open(open)),
            })) => open,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "the first exec message must be Open",
                ));
            }
        };
        let pending = {
            let mut state = self.state();
            let ok = state.pending.get(&open.index).map(|p| {
                (
                    p.deployment_id == deployment_id,
                    p.instance_id == open.instance_id,
                )
            });
            match ok {
                None => {
                    return Err(Status::not_found(format!(
                        "no exec session {} is waiting",
                        open.index
                    )));
                }
                Some((false, _)) => {
                    return Err(Status::permission_denied(format!(
                        "exec session {} is not for this deployment",
                        open.index
                    )));
                }
                Some((true, false)) => {
                    return Err(Status::permission_denied(format!(
                        "exec session {} is for another instance",
                        open.index
                    )));
                }
                Some((true, true)) => {}
            }
            if let Some(inst) = state.instances.get_mut(&open.instance_id) {
                inst.execs.retain(|e| e.index != open.index);
            }
            state.pending.remove(&open.index).expect("checked above")
        };
        let (to_ep, rx) = mpsc::channel(64);
        if pending
            .tx
            .send(Pipe {
                from_ep: stream.boxed(),
                to_ep,
            })
            .is_err()
        {
            return Err(Status::aborted("the exec client went away"));
        }
        Ok(ReceiverStream::new(rx).map(Ok).boxed())
    }
}
