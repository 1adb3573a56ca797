//! Known runners and the live RunnerConfig streams of the connected ones.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tonic::Status;
use wayline_proto::v1 as pb;

/// Sender half of a runner's RunnerConfig response stream.
pub(crate) type ConfigTx = mpsc::Sender<Result<pb::RunnerConfigResponse, Status>>;

struct Known {
    runner: pb::Runner,
    conn: Option<Conn>,
}

struct Conn {
    id: u64,
    tx: ConfigTx,
    token_id: Option<String>,
}

/// Registry of runners: every runner the store knows, plus the open config stream of each
/// connected one. A runner is *online* while its RunnerConfig stream lives.
#[derive(Default)]
pub(crate) struct Runners {
    inner: Mutex<HashMap<String, Known>>,
    next_conn: AtomicU64,
}

impl Runners {
    /// Seeds the registry with stored runners (all offline).
    pub(crate) fn load(&self, runners: Vec<pb::Runner>) {
        let mut inner = self.inner.lock().expect("runners lock");
        for mut r in runners {
            r.online = false;
            r.running_jobs = 0;
            inner.insert(
                r.id.clone(),
                Known {
                    runner: r,
                    conn: None,
                },
            );
        }
    }

    /// Records a connected runner; replaces (and so closes) an older stream of the same id.
    pub(crate) fn connect(
        &self,
        runner: pb::Runner,
        tx: ConfigTx,
        token_id: Option<String>,
    ) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inner = self.inner.lock().expect("runners lock");
        let running = inner.get(&runner.id).map_or(0, |k| k.runner.running_jobs);
        let mut runner = runner;
        runner.online = true;
        runner.running_jobs = running;
        inner.insert(
            runner.id.clone(),
            Known {
                runner,
                conn: Some(Conn { id, tx, token_id }),
            },
        );
        id
    }

    /// Marks the runner offline if `conn` is still its current stream.
    pub(crate) fn disconnect(&self, runner_id: &str, conn: u64) {
        let mut inner = self.inner.lock().expect("runners lock");
        if let Some(k) = inner.get_mut(runner_id)
            && k.conn.as_ref().is_some_and(|c| c.id == conn)
        {
            k.conn = None;
            k.runner.online = false;
            k.runner.last_seen = Some(wayline_core::time::now());
        }
    }

    /// Updates the stored view of a runner (adoption state, labels) without touching its stream.
    pub(crate) fn update(&self, runner: &pb::Runner) {
        let mut inner = self.inner.lock().expect("runners lock");
        if let Some(k) = inner.get_mut(&runner.id) {
            let (online, running) = (k.runner.online, k.runner.running_jobs);
            k.runner = runner.clone();
            k.runner.online = online;
            k.runner.running_jobs = running;
        } else {
            inner.insert(
                runner.id.clone(),
                Known {
                    runner: runner.clone(),
                    conn: None,
                },
            );
        }
    }

    /// One runner as the registry sees it.
    pub(crate) fn get(&self, id: &str) -> Option<pb::Runner> {
        self.inner
            .lock()
            .expect("runners lock")
            .get(id)
            .map(|k| k.runner.clone())
    }

    /// Every known runner.
    pub(crate) fn list(&self) -> Vec<pb::Runner> {
        let mut v: Vec<pb::Runner> = self
            .inner
            .lock()
            .expect("runners lock")
            .values()
            .map(|k| k.runner.clone())
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Online runners that may take jobs (adopted).
    pub(crate) fn online_adopted(&self) -> Vec<pb::Runner> {
        self.inner
            .lock()
            .expect("runners lock")
            .values()
            .filter(|k| k.runner.online && is_adopted(&k.runner))
            .map(|k| k.runner.clone())
            .collect()
    }

    /// Number of runners waiting for adoption, connected or not.
    pub(crate) fn pending_count(&self) -> usize {
        self.inner
            .lock()
            .expect("runners lock")
            .values()
            .filter(|k| k.runner.adoption_state == pb::runner::AdoptionState::Pending as i32)
            .count()
    }

    /// Number of connected runners.
    pub(crate) fn online_count(&self) -> usize {
        self.inner
            .lock()
            .expect("runners lock")
            .values()
            .filter(|k| k.runner.online)
            .count()
    }

    /// Adjusts a runner's running-job count.
    pub(crate) fn add_running(&self, id: &str, delta: i32) {
        if let Some(k) = self.inner.lock().expect("runners lock").get_mut(id) {
            k.runner.running_jobs = k.runner.running_jobs.saturating_add_signed(delta);
        }
    }

    /// Sends a message on a runner's config stream; false when it is not connected.
    pub(crate) fn send(&self, id: &str, msg: pb::RunnerConfigResponse) -> bool {
        let inner = self.inner.lock().expect("runners lock");
        inner
            .get(id)
            .and_then(|k| k.conn.as_ref())
            .is_some_and(|c| c.tx.try_send(Ok(msg)).is_ok())
    }

    /// Sends `rejected` to the runner and closes its stream; `forget` also drops the record.
    pub(crate) fn reject(&self, id: &str, message: &str, forget: bool) {
        let mut inner = self.inner.lock().expect("runners lock");
        if let Some(k) = inner.get_mut(id) {
            if let Some(c) = k.conn.take() {
                let msg = pb::RunnerConfigResponse {
                    rejected: message.to_owned(),
                    ..Default::default()
                };
                let _ = c.tx.try_send(Ok(msg));
            }
            k.runner.online = false;
        }
        if forget {
            inner.remove(id);
        }
    }

    /// Runners connected with the token `token_id` (to reject them when it is revoked).
    pub(crate) fn using_token(&self, token_id: &str) -> Vec<String> {
        self.inner
            .lock()
            .expect("runners lock")
            .values()
            .filter(|k| {
                k.conn
                    .as_ref()
                    .is_some_and(|c| c.token_id.as_deref() == Some(token_id))
            })
            .map(|k| k.runner.id.clone())
            .collect()
    }

    /// Every connected runner's id and labels (to push config).
    pub(crate) fn connected(&self) -> Vec<pb::Runner> {
        self.inner
            .lock()
            .expect("runners lock")
            .values()
            .filter(|k| k.conn.is_some() && is_adopted(&k.runner))
            .map(|k| k.runner.clone())
            .collect()
    }
}

/// True when the runner may take jobs.
pub(crate) fn is_adopted(r: &pb::Runner) -> bool {
    matches!(
        pb::runner::AdoptionState::try_from(r.adoption_state),
        Ok(pb::runner::AdoptionState::Adopted | pb::runner::AdoptionState::Preadopted)
    )
}

/// "runner 01H… (the CLI's local runner)" or "runner 01H…".
pub(crate) fn describe(id: &str, known: Option<&pb::Runner>) -> String {
    match known {
        Some(r) if r.kind == pb::runner::Kind::Local as i32 => {
            format!("runner {id} (the CLI's local runner)")
        }
        _ => format!("runner {id}"),
    }
}
