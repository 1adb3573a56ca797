//! The output history of one job, shared with GetJobStream followers.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use wayline_proto::v1::get_job_stream_response as gjs;

/// The output history of one job, shared with GetJobStream followers.
pub(crate) struct JobLog {
    inner: Mutex<LogInner>,
    version: watch::Sender<u64>,
}

#[derive(Default)]
struct LogInner {
    events: Vec<gjs::Event>,
    done: bool,
    next_batch: u64,
}

impl JobLog {
    /// The index for the next stored batch of terminal events.
    pub(super) fn next_batch(&self) -> u64 {
        let mut inner = self.inner.lock().expect("log lock");
        inner.next_batch += 1;
        inner.next_batch
    }

    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(LogInner::default()),
            version: watch::channel(0).0,
        })
    }

    pub(super) fn push(&self, event: gjs::Event, done: bool) {
        let mut inner = self.inner.lock().expect("log lock");
        inner.events.push(event);
        inner.done |= done;
        let n = inner.events.len() as u64;
        drop(inner);
        self.version.send_replace(n);
    }

    /// Events from `cursor` on, and whether the job has ended.
    pub(crate) fn read_from(&self, cursor: usize) -> (Vec<gjs::Event>, bool) {
        let inner = self.inner.lock().expect("log lock");
        (
            inner.events.get(cursor..).unwrap_or_default().to_vec(),
            inner.done,
        )
    }

    /// Wakes when events are added.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}
