//! Limits per hostname and per deployment: a request rate with a burst (429 with
//! `Retry-After` beyond it), a bandwidth that slows bodies down (never cuts them), and a bound on
//! a deployment's requests in flight (503 beyond it).
//!
//! Both the rate and the bandwidth are one `AtomicU64` each: the *theoretical arrival time* of
//! the generic cell rate algorithm (GCRA, the token bucket written as one timestamp). A request
//! or a chunk of body moves it forward by its cost; it is admitted when the new time is within
//! the burst of now. That is lock-free and allocation-free on the request path, which is why it
//! is written here rather than taken from `governor` (whose GCRA is the same idea, with a clock
//! crate and a keyed-map layer we do not need: the keys are the routing table's hosts).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wayline_core::url::UrlLimits;

use crate::metrics::HostStats;

/// One timestamp, in nanoseconds since `origin`.
#[derive(Debug)]
struct Clock {
    origin: Instant,
    tat: AtomicU64,
}

impl Clock {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            tat: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Moves the arrival time by `cost` ns when `admit(new_tat, now)` says so; returns the
    /// verdict's value.
    fn step<T>(&self, now: u64, cost: u64, admit: impl Fn(u64, u64) -> Result<T, T>) -> T {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let new = tat.max(now).saturating_add(cost);
            match admit(new, now) {
                Err(refused) => return refused,
                Ok(v) => match self.tat.compare_exchange_weak(
                    tat,
                    new,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return v,
                    Err(seen) => tat = seen,
                },
            }
        }
    }
}

/// Requests per second with a burst.
#[derive(Debug)]
pub struct Rate {
    /// Per second, as configured (for the message).
    pub per_second: u32,
    /// Requests at once.
    pub burst: u32,
    interval: u64,
    clock: Clock,
}

impl Rate {
    /// `per_second` requests a second, `burst` of them at once (0: `per_second`).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let burst = if burst == 0 { per_second } else { burst }.max(1);
        Self {
            per_second,
            burst,
            interval: 1_000_000_000 / u64::from(per_second.max(1)),
            clock: Clock::new(),
        }
    }

    /// `Ok` admits one request; `Err(wait)` says how long until one would be.
    pub fn check(&self) -> Result<(), Duration> {
        self.check_at(self.clock.now())
    }

    /// [`Rate::check`] at `now` ns after the rate was made.
    fn check_at(&self, now: u64) -> Result<(), Duration> {
        let window = self.interval * u64::from(self.burst);
        self.clock.step(now, self.interval, |new, now| {
            let ahead = new - now;
            if ahead <= window {
                Ok(Ok(()))
            } else {
                Err(Err(Duration::from_nanos(ahead - window)))
            }
        })
    }
}

/// Bytes per second: each chunk is sent when its turn comes; up to a quarter second's worth
/// goes at once (so a small answer is not held up).
#[derive(Debug)]
pub struct Pacer {
    /// Bytes per second.
    pub bytes_per_second: u64,
    clock: Clock,
}

/// The share of a second a pacer lets through without waiting.
const PACE_SLACK_NS: u64 = 250_000_000;

impl Pacer {
    /// At most `bytes_per_second`.
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            bytes_per_second: bytes_per_second.max(1),
            clock: Clock::new(),
        }
    }

    /// Reserves `n` bytes' turn; how long to wait before sending them.
    pub fn reserve(&self, n: usize) -> Duration {
        self.reserve_at(n, self.clock.now())
    }

    /// [`Pacer::reserve`] at `now` ns after the pacer was made.
    fn reserve_at(&self, n: usize, now: u64) -> Duration {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        let cost = u64::try_from(u128::from(n) * 1_000_000_000 / u128::from(self.bytes_per_second))
            .unwrap_or(u64::MAX);
        self.clock.step(now, cost, |new, now| {
            Ok::<_, Duration>(Duration::from_nanos(
                (new - now).saturating_sub(cost + PACE_SLACK_NS),
            ))
        })
    }
}

/// One hostname's limits and figures; the deployment host's entry also counts the
/// deployment's requests in flight. Kept across table rebuilds while the host exists.
#[derive(Debug)]
pub struct Host {
    /// `web.localhost`, `web--v2.localhost`.
    pub name: String,
    /// What applies (the app's own, else the service's defaults).
    pub limits: UrlLimits,
    /// `None`: no rate limit.
    pub rate: Option<Rate>,
    /// Request bodies.
    pub upload: Option<Pacer>,
    /// Response bodies.
    pub download: Option<Pacer>,
    /// Counters for `/metrics`, kept when the limits change.
    pub stats: std::sync::Arc<HostStats>,
    in_flight: AtomicUsize,
}

impl Host {
    /// A host with these limits, keeping `stats` from its previous entry.
    pub fn new(name: String, limits: UrlLimits, stats: std::sync::Arc<HostStats>) -> Self {
        let pacer = || (limits.bytes_per_second > 0).then(|| Pacer::new(limits.bytes_per_second));
        Self {
            name,
            rate: (limits.requests_per_second > 0)
                .then(|| Rate::new(limits.requests_per_second, limits.burst)),
            upload: pacer(),
            download: pacer(),
            limits,
            stats,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Takes a place among the deployment's requests in flight, or `Err(limit)`.
    pub fn enter(self: &std::sync::Arc<Self>) -> Result<Active, usize> {
        let limit = self.limits.max_requests as usize;
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let place = Active(std::sync::Arc::clone(self));
        if limit > 0 && before >= limit {
            return Err(limit);
        }
        Ok(place)
    }

    /// Requests in flight (of the deployment, for its host's entry).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// A request in flight of a deployment, until dropped (with the response body).
#[derive(Debug)]
pub struct Active(std::sync::Arc<Host>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `Retry-After`: whole seconds, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
