//! Figures per hostname for the server's `/metrics`: requests by status class, body bytes in
//! and out, and a latency histogram (time to the response head), kept in atomics and written as
//! OpenMetrics text at each scrape. Only hosts in the routing table are written, so the label
//! set is bounded by what exists; a host that goes away takes its series with it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// One host's counters.
#[derive(Debug, Default)]
pub struct HostStats {
    /// 1xx … 5xx.
    classes: [AtomicU64; 5],
    /// Request body bytes received from clients.
    pub bytes_in: AtomicU64,
    /// Response body bytes sent to clients.
    pub bytes_out: AtomicU64,
    /// Per bucket (not cumulative), the last one `+Inf`.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    /// Requests refused over the rate (429).
    pub over_rate: AtomicU64,
    /// Requests refused over the deployment's requests in flight (503).
    pub over_requests: AtomicU64,
}

impl HostStats {
    /// Counts one answered request.
    pub fn record(&self, status: u16, took: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Requests answered with status class `n`xx.
    pub fn class(&self, n: usize) -> u64 {
        self.classes[n.clamp(1, 5) - 1].load(Ordering::Relaxed)
    }
}

/// Label values are host names (DNS labels and dots), but escape anyway.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The OpenMetrics families (without `# EOF`) for these hosts.
pub fn render<'a>(hosts: impl IntoIterator<Item = (&'a str, &'a HostStats)>) -> String {
    let hosts: Vec<(String, &HostStats)> = hosts.into_iter().map(|(h, s)| (label(h), s)).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP wayline_url_requests Requests the URL service answered, by host and status class.\n# TYPE wayline_url_requests counter"
    );
    for (h, s) in &hosts {
        for n in 1..=5 {
            let _ = writeln!(
                out,
                "wayline_url_requests_total{{host=\"{h}\",class=\"{n}xx\"}} {}",
                s.class(n)
            );
        }
    }
    for (name, help, pick) in [
        (
            "wayline_url_received_bytes",
            "Request body bytes received from clients, by host.",
            &(|s: &HostStats| s.bytes_in.load(Ordering::Relaxed)) as &dyn Fn(&HostStats) -> u64,
        ),
        (
            "wayline_url_sent_bytes",
            "Response body bytes sent to clients, by host.",
            &|s: &HostStats| s.bytes_out.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (h, s) in &hosts {
            let _ = writeln!(out, "{name}_total{{host=\"{h}\"}} {}", pick(s));
        }
    }
    let name = "wayline_url_refused";
    let _ = writeln!(
        out,
        "# HELP {name} Requests a limit refused, by host and limit (`rate`: 429, `requests`: 503).\n# TYPE {name} counter"
    );
    for (h, s) in &hosts {
        for (limit, n) in [("rate", &s.over_rate), ("requests", &s.over_requests)] {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_total{{host=\"{h}\",limit=\"{limit}\"}} {n}");
        }
    }
    let name = "wayline_url_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from a request's head to its response's head, by host.\n# TYPE {name} histogram"
    );
    for (h, s) in &hosts {
        let mut acc = 0;
        for (i, c) in s.latency.iter().enumerate() {
            acc += c.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| format!("{b}"));
            let _ = writeln!(out, "{name}_bucket{{host=\"{h}\",le=\"{le}\"}} {acc}");
        }
        #[allow(clippy::cast_precision_loss)] // microseconds summed; f64 is exact far enough
        let sum = s.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_count{{host=\"{h}\"}} {acc}");
        let _ = writeln!(out, "{name}_sum{{host=\"{h}\"}} {sum}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_one_series_per_host_and_cumulative_buckets() {
        let s = HostStats::default();
        s.record(200, Duration::from_millis(3));
        s.record(204, Duration::from_millis(30));
        s.record(503, Duration::from_secs(20));
        s.bytes_out.fetch_add(42, Ordering::Relaxed);
        s.over_rate.fetch_add(1, Ordering::Relaxed);
        let text = render([("web.localhost", &s)]);
        for line in [
            "wayline_url_requests_total{host=\"web.localhost\",class=\"2xx\"} 2",
            "wayline_url_requests_total{host=\"web.localhost\",class=\"5xx\"} 1",
            "wayline_url_sent_bytes_total{host=\"web.localhost\"} 42",
            "wayline_url_received_bytes_total{host=\"web.localhost\"} 0",
            "wayline_url_refused_total{host=\"web.localhost\",limit=\"rate\"} 1",
            "wayline_url_refused_total{host=\"web.localhost\",limit=\"requests\"} 0",
            "wayline_url_request_duration_seconds_bucket{host=\"web.localhost\",le=\"0.005\"} 1",
            "wayline_url_request_duration_seconds_bucket{host=\"web.localhost\",le=\"0.05\"} 2",
            "wayline_url_request_duration_seconds_bucket{host=\"web.localhost\",le=\"+Inf\"} 3",
            "wayline_url_request_duration_seconds_count{host=\"web.localhost\"} 3",
            "wayline_url_request_duration_seconds_sum{host=\"web.localhost\"} 20.033",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert_eq!(text.matches("# TYPE").count(), 5);
    }
}
