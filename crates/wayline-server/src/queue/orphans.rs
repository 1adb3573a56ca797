//! Steps a dead job left behind. A runner records each step (build, deployment, …) as RUNNING
//! before it starts it; when the job ends any other way than SUCCESS while such a step is still
//! RUNNING (its runner died, the server restarted and the runner never came back, the job was
//! cancelled), the step is finished here as ERROR with the job's reason, so nothing stays
//! "running" forever. Its physical state is left alone: a PENDING deployment may have created
//! things before the job died, and `destroy` still acts on it.

use std::collections::HashSet;
use std::sync::Arc;

use wayline_proto::v1 as pb;

use crate::store::{OperationFilter, Store, StoreError};

/// Every kind of step a job records.
const KINDS: [pb::OperationKind; 5] = [
    pb::OperationKind::Build,
    pb::OperationKind::PushedArtifact,
    pb::OperationKind::Deployment,
    pb::OperationKind::Release,
    pb::OperationKind::StatusReport,
];

/// Steps still RUNNING, of one app or of all.
async fn running_steps(
    store: &Arc<dyn Store>,
    app: Option<(String, String)>,
) -> Result<Vec<pb::Operation>, StoreError> {
    let mut found = Vec::new();
    for kind in KINDS {
        let ops = store
            .list_operations(OperationFilter {
                kind: kind as i32,
                app: app.clone(),
                state: Some(pb::status::State::Running as i32),
                ..OperationFilter::default()
            })
            .await?;
        found.extend(ops);
    }
    Ok(found)
}

async fn fail_step(
    store: &Arc<dyn Store>,
    mut op: pb::Operation,
    reason: String,
) -> Result<(), StoreError> {
    let status = op.status.get_or_insert_with(pb::Status::default);
    status.state = pb::status::State::Error as i32;
    status.error = reason;
    status.complete_time = Some(wayline_core::time::now());
    store.upsert_operation(op).await.map(|_| ())
}

/// Finishes the RUNNING steps of `job`, which ended in `state` with `reason`.
pub(super) async fn fail_steps_of(
    store: Arc<dyn Store>,
    job: pb::Job,
    state: &str,
    reason: String,
) {
    let app = job
        .application
        .as_ref()
        .map(|a| (a.project.clone(), a.application.clone()));
    let steps = match running_steps(&store, app).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "cannot look up the steps of a failed job");
            return;
        }
    };
    for op in steps.into_iter().filter(|o| o.job_id == job.id) {
        let why = format!(
            "job {} ended in {state} before this step finished: {reason}",
            job.id
        );
        if let Err(e) = fail_step(&store, op, why).await {
            tracing::warn!(job = %job.id, error = %e, "cannot finish a step of a failed job");
        }
    }
}

/// After a restart: finishes RUNNING steps whose job is no longer unfinished (the server died
/// between the job's end and the step's last write).
pub(super) async fn fail_left_over(
    store: &Arc<dyn Store>,
    unfinished: &HashSet<String>,
) -> Result<(), StoreError> {
    for op in running_steps(store, None).await? {
        if unfinished.contains(&op.job_id) {
            continue;
        }
        let why = format!(
            "job {} ended before this step finished (the server or its runner stopped)",
            if op.job_id.is_empty() {
                "?"
            } else {
                &op.job_id
            }
        );
        tracing::info!(operation = %op.id, job = %op.job_id, "finishing a step its job left running");
        fail_step(store, op, why).await?;
    }
    Ok(())
}
