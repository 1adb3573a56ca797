//! Reconnect delays for every loop of the entrypoint (server session, log shipper, etcd watch):
//! backon's exponential backoff from 250 ms, each delay plus up to 100% jitter so a fleet that
//! lost its server together does not come back in step.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// The server session's longest delay: with jitter at most 4 s, so a restarted server gets its
/// logs and exec sessions back within 5 s.
pub const SERVER_MAX: Duration = Duration::from_secs(2);

/// A session that lived this long was healthy: the next reconnect starts the delays over.
const HEALTHY: Duration = Duration::from_secs(10);

/// The delays of one reconnect loop, doubling up to a ceiling.
#[derive(Debug)]
pub struct Backoff {
    max: Duration,
    delays: ExponentialBackoff,
    /// Sessions in a row that ended before they were healthy.
    failures: u32,
}

impl Backoff {
    /// Delays from 250 ms doubling to `max` (plus jitter), without end.
    pub fn up_to(max: Duration) -> Self {
        let delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        Self {
            max,
            delays,
            failures: 0,
        }
    }

    /// Starts over after a healthy connection.
    pub fn reset(&mut self) {
        *self = Self::up_to(self.max);
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    /// After a long-lived session that began at `started` ended: the wait before the next dial,
    /// and whether this is the first failure in a row (said loudly; later ones quietly). A
    /// session that lived [`HEALTHY`] long starts the delays over.
    pub fn after_session(&mut self, started: Instant) -> (Duration, bool) {
        if started.elapsed() > HEALTHY {
            self.reset();
        }
        self.failures += 1;
        (self.next_delay(), self.failures <= 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_ceiling_and_start_over_on_reset() {
        let mut b = Backoff::up_to(SERVER_MAX);
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(250) && first < Duration::from_millis(500));
        let later: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(later.iter().all(|d| *d <= SERVER_MAX * 2), "{later:?}");
        assert!(later.iter().any(|d| *d >= SERVER_MAX), "{later:?}");
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(500));
    }

    #[test]
    fn only_the_first_short_session_in_a_row_is_a_first_failure() {
        let mut b = Backoff::up_to(SERVER_MAX);
        let now = Instant::now();
        assert!(b.after_session(now).1);
        assert!(!b.after_session(now).1);
        let long_ago = now.checked_sub(HEALTHY * 2).unwrap();
        let (wait, first) = b.after_session(long_ago);
        assert!(first, "a healthy session starts the count over");
        assert!(
            wait < Duration::from_millis(500),
            "and the delays: {wait:?}"
        );
    }
}
