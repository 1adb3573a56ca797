//! Why a job waits, in words: every QUEUED or WAITING job carries one.

use wayline_core::jobs as rules;
use wayline_proto::v1 as pb;
use wayline_proto::v1::job::State;

use super::assign::runner_matches;
use super::transition::state_of;
use super::{Active, Blocker, Queue, QueueState};
use crate::runners;

/// "deploy of app web in workspace default"
pub(crate) fn describe_job(job: &pb::Job) -> String {
    let app = job
        .application
        .as_ref()
        .map_or("", |a| a.application.as_str());
    format!(
        "{} of app {} in workspace {}",
        rules::operation_name(job.operation.as_ref()),
        app,
        job.workspace
    )
}

impl Queue {
    pub(super) fn wait_reason(&self, st: &QueueState, a: &Active) -> String {
        match state_of(&a.job) {
            State::Queued => self.queued_reason(st, &a.job),
            State::Waiting => format!(
                "assigned to {}; waiting for it to acknowledge the job",
                runners::describe(
                    &a.job.assigned_runner_id,
                    self.runners.get(&a.job.assigned_runner_id).as_ref()
                )
            ),
            State::Running if a.detached => format!(
                "{} lost its connection; waiting for it to reattach",
                runners::describe(
                    &a.job.assigned_runner_id,
                    self.runners.get(&a.job.assigned_runner_id).as_ref()
                )
            ),
            _ => String::new(),
        }
    }

    fn queued_reason(&self, st: &QueueState, job: &pb::Job) -> String {
        match Self::blocker(st, job) {
            Some(Blocker::Dependency(dep)) => {
                let what = st
                    .jobs
                    .get(&dep)
                    .map(|d| describe_job(&d.job))
                    .unwrap_or_default();
                return format!("waiting for job {dep} ({what}) that it depends on");
            }
            Some(Blocker::Serial(other)) => {
                let what = st
                    .jobs
                    .get(&other)
                    .map(|d| describe_job(&d.job))
                    .unwrap_or_default();
                return format!("blocked by job {other} ({what})");
            }
            None => {}
        }
        use pb::target_runner::Target;
        let online = self.runners.online_adopted();
        let idle = |r: &pb::Runner| st.waiters.iter().any(|w| w.runner.id == r.id);
        match job.target_runner.as_ref().and_then(|t| t.target.as_ref()) {
            Some(Target::Id(id)) => {
                let known = self.runners.get(id);
                let who = runners::describe(id, known.as_ref());
                match known {
                    Some(r) if r.online && runners::is_adopted(&r) => {
                        format!("waiting for {who} to finish its current work and ask for this job")
                    }
                    Some(r) if r.online => {
                        format!("waiting for {who} to be adopted (`wayline runner adopt {id}`)")
                    }
                    _ => format!("waiting for {who} to connect"),
                }
            }
            Some(Target::Labels(l)) => {
                let shown = wayline_core::labels::display(&l.labels);
                let matching: Vec<&pb::Runner> = online
                    .iter()
                    .filter(|r| {
                        !r.by_id_only && wayline_core::labels::is_subset(&l.labels, &r.labels)
                    })
                    .collect();
                if matching.is_empty() {
                    format!("waiting: no runner with labels {shown} is connected")
                } else if matching.iter().any(|r| idle(r)) {
                    "waiting for a runner to take the job".to_owned()
                } else if let [only] = matching.as_slice() {
                    format!(
                        "waiting: runner {}, the only one with labels {shown}, is busy",
                        only.id
                    )
                } else {
                    format!(
                        "waiting: all {} runners with labels {shown} are busy",
                        matching.len()
                    )
                }
            }
            Some(Target::Any(())) | None => {
                let general: Vec<&pb::Runner> = online.iter().filter(|r| !r.by_id_only).collect();
                if general.is_empty() && online.is_empty() {
                    "waiting: no runner is connected".to_owned()
                } else if general.is_empty() {
                    "waiting: no runner that takes untargeted jobs is connected (local runners only take jobs targeted at them)".to_owned()
                } else if let [only] = general.as_slice() {
                    format!(
                        "waiting: runner {}, the only one that takes untargeted jobs, is busy",
                        only.id
                    )
                } else {
                    format!("waiting: all {} runners are busy", general.len())
                }
            }
        }
    }

    /// Why a job like `job` would wait if queued now ("" = it would be assigned at once).
    pub(crate) fn predict(&self, job: &pb::Job) -> String {
        let st = self.lock();
        let blocked = Self::blocker(&st, job).is_some();
        if !blocked && st.waiters.iter().any(|w| runner_matches(job, &w.runner)) {
            return String::new();
        }
        self.queued_reason(&st, job)
    }
}
