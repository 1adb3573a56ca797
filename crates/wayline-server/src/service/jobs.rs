//! QueueJob, GetJob, ListJobs, ValidateJob and GetJobStream.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response as gjs;

use super::{Out, Shared, store_status};
use crate::store::JobFilter;

const DEFAULT_WORKSPACE: &str = "default";

/// Checks a job and fills defaults; the error is the message the user sees.
fn prepare(job: Option<pb::Job>) -> Result<pb::Job, String> {
    let mut job = job.ok_or("job is required")?;
    if job.operation.is_none() {
        return Err(
            "job.operation is required (noop, build, push, deploy, release, up, destroy, …)".into(),
        );
    }
    match &job.application {
        Some(a) if !a.project.is_empty() && !a.application.is_empty() => {}
        _ => return Err("job.application is required: set both project and application".into()),
    }
    if job.workspace.is_empty() {
        DEFAULT_WORKSPACE.clone_into(&mut job.workspace);
    }
    use pb::target_runner::Target;
    match job.target_runner.as_ref().and_then(|t| t.target.as_ref()) {
        None => {
            job.target_runner = Some(pb::TargetRunner {
                target: Some(Target::Any(())),
            });
        }
        Some(Target::Id(id)) if id.is_empty() => {
            return Err(
                "job.target_runner.id is empty: name a runner id or target any runner".into(),
            );
        }
        _ => {}
    }
    if job.depends_on.iter().any(String::is_empty) {
        return Err("job.depends_on contains an empty job id".into());
    }
    Ok(job)
}

pub(super) async fn queue_job(
    shared: &Shared,
    req: pb::QueueJobRequest,
) -> Result<pb::QueueJobResponse, Status> {
    let mut job = prepare(req.job).map_err(Status::invalid_argument)?;
    if let Some(d) = crate::auth::parse_expiry(&req.expires_in)? {
        job.expire_time = Some(wayline_core::time::from_system(
            std::time::SystemTime::now() + d,
        ));
    }
    let app = job.application.clone().unwrap_or_default();
    drop(shared.store.touch_workspace(&job.workspace, &app.project));
    let job_id = shared.queue.enqueue(job).await?;
    Ok(pb::QueueJobResponse { job_id })
}

pub(super) async fn get_job(shared: &Shared, id: &str) -> Result<pb::Job, Status> {
    if let Some(j) = shared.queue.get(id) {
        return Ok(j);
    }
    shared
        .store
        .get_job(id)
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found(format!("job {id} does not exist")))
}

pub(super) async fn list_jobs(
    shared: &Shared,
    req: pb::ListJobsRequest,
) -> Result<pb::ListJobsResponse, Status> {
    let filter = JobFilter {
        app: req.application.map(|a| (a.project, a.application)),
        workspace: Some(req.workspace).filter(|w| !w.is_empty()),
        states: req.states,
        target_runner_id: Some(req.target_runner_id).filter(|r| !r.is_empty()),
        limit: req.limit,
        ascending: req.ascending,
    };
    let mut jobs = shared.store.list_jobs(filter).await.map_err(store_status)?;
    shared.queue.overlay(&mut jobs);
    Ok(pb::ListJobsResponse { jobs })
}

pub(super) fn validate_job(
    shared: &Shared,
    req: pb::ValidateJobRequest,
) -> pb::ValidateJobResponse {
    match prepare(req.job) {
        Err(error) => pb::ValidateJobResponse {
            valid: false,
            error,
            ..Default::default()
        },
        Ok(job) => {
            let wait_reason = shared.queue.predict(&job);
            pb::ValidateJobResponse {
                valid: true,
                error: String::new(),
                assignable: wait_reason.is_empty(),
                wait_reason,
            }
        }
    }
}

fn msg(event: gjs::Event) -> Result<pb::GetJobStreamResponse, Status> {
    Ok(pb::GetJobStreamResponse { event: Some(event) })
}

/// Replays the job's stored output (marked buffered), then follows it live until it ends.
pub(super) async fn job_stream(
    shared: &Shared,
    id: String,
) -> Result<Out<pb::GetJobStreamResponse>, Status> {
    let (tx, rx) = mpsc::channel(64);
    if let Some(log) = shared.queue.log(&id) {
        tokio::spawn(async move {
            let mut version = log.subscribe();
            let mut cursor = 0;
            let mut replay = true;
            if tx.send(msg(gjs::Event::Open(gjs::Open {}))).await.is_err() {
                return;
            }
            loop {
                version.borrow_and_update();
                let (events, done) = log.read_from(cursor);
                cursor += events.len();
                for mut e in events {
                    if let gjs::Event::Terminal(t) = &mut e {
                        t.buffered |= replay;
                    }
                    if tx.send(msg(e)).await.is_err() {
                        return;
                    }
                }
                replay = false;
                if done {
                    return;
                }
                if version.changed().await.is_err() {
                    return;
                }
            }
        });
        return Ok(ReceiverStream::new(rx));
    }
    let job = shared
        .store
        .get_job(&id)
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::not_found(format!("job {id} does not exist")))?;
    let events = shared.store.job_events(&id).await.map_err(store_status)?;
    tokio::spawn(async move {
        let state = job.state;
        let complete = gjs::Complete {
            error: job.error.clone(),
            result: job.result.clone(),
        };
        let mut out = vec![
            gjs::Event::Open(gjs::Open {}),
            gjs::Event::State(gjs::State {
                previous: state,
                current: state,
                job: Some(job),
            }),
        ];
        if !events.is_empty() {
            out.push(gjs::Event::Terminal(gjs::Terminal {
                events,
                buffered: true,
            }));
        }
        out.push(gjs::Event::Complete(complete));
        for e in out {
            if tx.send(msg(e)).await.is_err() {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_rejects_incomplete_jobs() {
        assert_eq!(prepare(None).unwrap_err(), "job is required");
        let job = pb::Job {
            operation: Some(pb::job::Operation::Noop(pb::NoopOp::default())),
            ..Default::default()
        };
        assert_eq!(
            prepare(Some(job.clone())).unwrap_err(),
            "job.application is required: set both project and application"
        );
        let ok = prepare(Some(pb::Job {
            application: Some(pb::r#ref::Application {
                project: "p".into(),
                application: "a".into(),
            }),
            ..job
        }))
        .unwrap();
        assert_eq!(ok.workspace, "default");
        assert!(matches!(
            ok.target_runner.unwrap().target,
            Some(pb::target_runner::Target::Any(()))
        ));
    }
}
