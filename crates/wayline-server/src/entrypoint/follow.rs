//! Live log fan-out to followers (`wayline logs -follow`, the UI's logs page).
//!
//! Each follower registers a bounded queue under the deployments it follows, so a batch is
//! handed only to the followers that want it: with thousands of instances logging, one
//! server-wide broadcast woke every follower for every batch and made each of them skip
//! almost all of it, until slow ones lagged and lost lines nobody counted. A follower whose
//! queue is full loses the batch, and the lines lost are counted and reported to it as a
//! "… N lines dropped" line (and in `LogBatch.dropped`) before its next batch, so loss is never
//! silent.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use tokio::sync::mpsc;
use wayline_proto::prost_types::Timestamp;
use wayline_proto::v1::{LogBatch, LogLine, log_line};

use super::logs::format_dropped;
use super::now;

/// A batch and the lines the follower lost just before it.
type Item = (Arc<LogBatch>, u64);

/// One follower's end of the fan-out.
struct Follower {
    /// Only this instance's lines, when not empty.
    instance_id: String,
    tx: mpsc::Sender<Item>,
    /// Lines lost because the queue was full, not yet handed over with a batch.
    lost: Arc<AtomicU64>,
}

impl Follower {
    /// Hands the batch over; false once the follower is gone.
    fn offer(&self, batch: &Arc<LogBatch>) -> bool {
        if !self.instance_id.is_empty() && self.instance_id != batch.instance_id {
            return !self.tx.is_closed();
        }
        let lost = self.lost.swap(0, Ordering::Relaxed);
        match self.tx.try_send((batch.clone(), lost)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let lines = batch.lines.len() as u64 + batch.dropped;
                self.lost.fetch_add(lost + lines, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The followers, by the deployment they follow ("every deployment" apart).
#[derive(Default)]
pub(super) struct Followers {
    by_deployment: HashMap<String, Vec<Follower>>,
    every: Vec<Follower>,
}

/// What a follower reads: batches, each with the count of lines lost just before it.
pub(super) struct FollowRx {
    rx: mpsc::Receiver<Item>,
    /// Shared with the follower's registrations: lost lines no batch has carried yet.
    lost: Arc<AtomicU64>,
}

/// How long a follower waits for a batch before it reports lost lines on their own (when no
/// later batch comes to carry them).
const REPORT_LOST_AFTER: Duration = Duration::from_millis(500);

impl Followers {
    /// Registers a follower of `deployment_ids` (every deployment when empty), only of
    /// `instance_id` when that is not empty, with room for `capacity` batches.
    pub(super) fn add(
        &mut self,
        deployment_ids: &[String],
        instance_id: &str,
        capacity: usize,
    ) -> FollowRx {
        self.forget_gone();
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lost = Arc::new(AtomicU64::new(0));
        let follower = || Follower {
            instance_id: instance_id.to_owned(),
            tx: tx.clone(),
            lost: lost.clone(),
        };
        if deployment_ids.is_empty() {
            self.every.push(follower());
        } else {
            for d in deployment_ids {
                self.by_deployment
                    .entry(d.clone())
                    .or_default()
                    .push(follower());
            }
        }
        FollowRx { rx, lost }
    }

    /// Hands a batch to the followers of its deployment and to those of every deployment.
    pub(super) fn publish(&mut self, batch: &Arc<LogBatch>) {
        if let Some(list) = self.by_deployment.get_mut(&batch.deployment_id) {
            list.retain(|f| f.offer(batch));
            if list.is_empty() {
                self.by_deployment.remove(&batch.deployment_id);
            }
        }
        self.every.retain(|f| f.offer(batch));
    }

    /// Drops the registrations of followers that went away (of deployments that stayed quiet).
    fn forget_gone(&mut self) {
        self.by_deployment.retain(|_, list| {
            list.retain(|f| !f.tx.is_closed());
            !list.is_empty()
        });
        self.every.retain(|f| !f.tx.is_closed());
    }

    /// How many followers are registered (each once per deployment it follows).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.every.len() + self.by_deployment.values().map(Vec::len).sum::<usize>()
    }
}

impl FollowRx {
    /// The next batch, led by a "… N lines dropped" line when lines were lost before it; a
    /// batch of only that line when lines were lost and nothing followed for a moment.
    pub(super) async fn next(&mut self) -> Option<LogBatch> {
        loop {
            match tokio::time::timeout(REPORT_LOST_AFTER, self.rx.recv()).await {
                Ok(Some((batch, lost))) => {
                    let mut batch = (*batch).clone();
                    if lost > 0 {
                        let at = batch.lines.first().and_then(|l| l.timestamp);
                        batch.lines.insert(0, lost_line(lost, at));
                        batch.dropped += lost;
                    }
                    return Some(batch);
                }
                Ok(None) => return None,
                Err(_) => {
                    let lost = self.lost.swap(0, Ordering::Relaxed);
                    if lost > 0 {
                        return Some(LogBatch {
                            lines: vec![lost_line(lost, None)],
                            dropped: lost,
                            ..LogBatch::default()
                        });
                    }
                }
            }
        }
    }
}

fn lost_line(lost: u64, at: Option<Timestamp>) -> LogLine {
    LogLine {
        timestamp: Some(at.unwrap_or_else(now)),
        line: format!("{} (this client read too slowly)", format_dropped(lost)),
        source: log_line::Source::Entrypoint as i32,
        stream: log_line::Stream::Stderr as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(deployment: &str, instance: &str, lines: usize) -> Arc<LogBatch> {
        Arc::new(LogBatch {
            deployment_id: deployment.into(),
            instance_id: instance.into(),
            lines: (0..lines)
                .map(|i| LogLine {
                    line: format!("l{i}"),
                    ..LogLine::default()
                })
                .collect(),
            dropped: 0,
        })
    }

    #[tokio::test]
    async fn a_batch_reaches_only_the_followers_of_its_deployment_and_instance() {
        let mut f = Followers::default();
        let mut of_a = f.add(&["a".into()], "", 8);
        let mut of_a1 = f.add(&["a".into()], "a1", 8);
        let mut of_b = f.add(&["b".into()], "", 8);
        let mut of_all = f.add(&[], "", 8);
        f.publish(&batch("a", "a2", 1));
        f.publish(&batch("b", "b1", 2));
        assert_eq!(of_a.next().await.unwrap().instance_id, "a2");
        assert_eq!(of_b.next().await.unwrap().lines.len(), 2);
        assert_eq!(of_all.next().await.unwrap().instance_id, "a2");
        assert_eq!(of_all.next().await.unwrap().instance_id, "b1");
        assert!(of_a1.rx.try_recv().is_err(), "a1's follower got a2's lines");
        assert!(of_a.rx.try_recv().is_err(), "a's follower got b's lines");
    }

    #[tokio::test]
    async fn a_full_queue_counts_the_lost_lines_and_reports_them_before_the_next_batch() {
        let mut f = Followers::default();
        let mut rx = f.add(&["a".into()], "", 1);
        f.publish(&batch("a", "i", 3));
        f.publish(&batch("a", "i", 5)); // queue full: 5 lines lost
        let first = rx.next().await.unwrap();
        assert_eq!(
            (first.lines.len(), first.dropped),
            (3, 0),
            "sent before the loss"
        );
        f.publish(&batch("a", "i", 2));
        let b = rx.next().await.unwrap();
        assert_eq!(b.dropped, 5);
        assert_eq!(b.lines.len(), 3);
        assert_eq!(
            b.lines[0].line,
            "… 5 lines dropped (this client read too slowly)"
        );
    }

    #[tokio::test]
    async fn lines_lost_at_the_end_are_reported_on_their_own() {
        let mut f = Followers::default();
        let mut rx = f.add(&[], "", 1);
        f.publish(&batch("a", "i", 1));
        f.publish(&batch("a", "i", 4));
        assert_eq!(rx.next().await.unwrap().dropped, 0);
        let b = rx.next().await.unwrap();
        assert_eq!((b.dropped, b.lines.len()), (4, 1));
        assert_eq!(
            b.lines[0].line,
            "… 4 lines dropped (this client read too slowly)"
        );
    }

    #[tokio::test]
    async fn followers_that_went_away_are_forgotten() {
        let mut f = Followers::default();
        let gone = f.add(&["a".into(), "b".into()], "", 4);
        let _kept = f.add(&[], "", 4);
        assert_eq!(f.len(), 3);
        drop(gone);
        f.publish(&batch("a", "i", 1));
        assert_eq!(f.len(), 2, "a's registration goes when a publishes");
        let _new = f.add(&["c".into()], "", 4);
        assert_eq!(f.len(), 2, "b's goes at the next registration");
    }
}
