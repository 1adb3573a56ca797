//! Pruning after a release without holding up the job that released: the older deployments go
//! to a job of their own (a `destroy` with `prune`), queued for a runner the caller starts, so
//! `up` ends as soon as the new release is live.
//!
//! Crash-safe because the prune is a stored job: a prune job that dies is failed by the server
//! and leaves its deployments CREATED, and the next release's prune picks them up again; one that
//! runs again skips what it already destroyed.

use wayline_proto::v1::{self as pb, Job, Operation, OperationKind, TargetRunner, target_runner};

use super::destroy::{exists, prune_candidates};
use super::{Run, StepResult};

/// How long a queued prune job waits for its runner before the server cancels it, so a runner
/// that never started cannot hold up the app's next deploy (deploys are serialised per app).
const PRUNE_JOB_EXPIRY: &str = "2m";

/// What a prune after a release did: destroyed deployments in this job, or queued a job.
pub(crate) enum Pruned {
    Here(Vec<Operation>),
    Queued(String),
}

impl Run<'_> {
    /// After the release of `released`: destroys the deployments older than it beyond `retain`,
    /// here when `runner_id` is empty, else in a job queued for runner `runner_id`.
    pub(crate) async fn prune_after_release(
        &self,
        released: &Operation,
        retain: i32,
        runner_id: &str,
    ) -> StepResult<Pruned> {
        if runner_id.is_empty() {
            return Ok(Pruned::Here(self.prune(released, retain).await?));
        }
        let older = prune_candidates(self.live_deployments().await?, released, retain);
        if older.is_empty() {
            return Ok(Pruned::Here(Vec::new()));
        }
        let job = self.prune_job(&older, runner_id);
        let req = pb::QueueJobRequest {
            job: Some(job),
            expires_in: PRUNE_JOB_EXPIRY.to_owned(),
        };
        let job_id = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.queue_job(req).await }
            })
            .await?
            .job_id;
        let seqs: Vec<String> = older
            .iter()
            .map(|d| wayline_core::id::format_sequence(d.sequence))
            .collect();
        self.ctx.events.line(
            format!(
                "Pruning deployment {} continues in the background in job {job_id} \
                 (`wayline job get-stream {job_id}` follows it)",
                seqs.join(", ")
            ),
            "info",
        );
        Ok(Pruned::Queued(job_id))
    }

    /// The `destroy` job that prunes `older`: this job's app, source and config, for `runner_id`.
    fn prune_job(&self, older: &[Operation], runner_id: &str) -> Job {
        let j = &self.job;
        Job {
            application: j.application.clone(),
            workspace: j.workspace.clone(),
            target_runner: Some(TargetRunner {
                target: Some(target_runner::Target::Id(runner_id.to_owned())),
            }),
            labels: j.labels.clone(),
            data_source: j.data_source.clone(),
            config_file: j.config_file.clone(),
            config_format: j.config_format,
            config_path: j.config_path.clone(),
            variables: j.variables.clone(),
            var_files: j.var_files.clone(),
            operation: Some(pb::job::Operation::Destroy(pb::DestroyOp {
                target: Some(pb::destroy_op::Target::Deployments(
                    pb::destroy_op::Deployments {
                        ids: older.iter().map(|d| d.id.clone()).collect(),
                    },
                )),
                prune: true,
            })),
            ..Job::default()
        }
    }

    /// A prune job's work: destroys those of `ids` that still exist.
    pub(crate) async fn prune_deployments(&self, ids: &[String]) -> StepResult<Vec<Operation>> {
        let mut destroyed = Vec::new();
        for id in ids {
            let d = self.get(OperationKind::Deployment, id).await?;
            if !exists(&d) {
                continue;
            }
            self.ctx.events.line(
                format!(
                    "Pruning deployment {}",
                    wayline_core::id::format_sequence(d.sequence)
                ),
                "",
            );
            self.destroy_deployment(&d).await?;
            destroyed.push(d);
        }
        if destroyed.is_empty() {
            self.ctx.events.line(
                "Nothing to prune: those deployments are gone already.",
                "info",
            );
        }
        Ok(destroyed)
    }
}
