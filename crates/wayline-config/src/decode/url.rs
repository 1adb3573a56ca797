//! Decoding `url { limits { ... } }`: the app's own limits on the URL service.

use wayline_core::url::{UrlLimits, parse_bandwidth};

use super::*;

/// The largest count a limit takes (requests per second, burst, requests in flight).
const MAX_COUNT: u64 = 1_000_000;

impl Decoder<'_> {
    /// `limits { requests_per_second, burst, bandwidth, max_requests }` inside `url`.
    pub(super) fn url_limits(&mut self, url: &Body) -> Option<UrlLimits> {
        let b = self.single(url, "limits", "`url`")?;
        let ctx = "`url { limits }`";
        self.check(
            &b.body,
            ctx,
            &["requests_per_second", "burst", "bandwidth", "max_requests"],
            &[],
        );
        Some(UrlLimits {
            requests_per_second: self.limit_count(&b.body, "requests_per_second", ctx),
            burst: self.limit_count(&b.body, "burst", ctx),
            bytes_per_second: self.bandwidth(&b.body, ctx),
            max_requests: self.limit_count(&b.body, "max_requests", ctx),
        })
    }

    /// A whole number from 1 to [`MAX_COUNT`]; 0 (unset) when absent or wrong.
    fn limit_count(&mut self, body: &Body, name: &str, ctx: &str) -> u32 {
        let Some(a) = body.get_attribute(name) else {
            return 0;
        };
        let n = match &a.value {
            EditExpr::Number(n) => n.value().as_u64().filter(|n| (1..=MAX_COUNT).contains(n)),
            _ => None,
        };
        n.and_then(|n| u32::try_from(n).ok()).unwrap_or_else(|| {
            self.error(
                span_of(&a.value),
                format!("`{name}` in {ctx} must be a whole number from 1 to {MAX_COUNT}"),
            );
            0
        })
    }

    /// Bytes per second: a number, or a string with a unit (`"256KiB"`).
    fn bandwidth(&mut self, body: &Body, ctx: &str) -> u64 {
        let Some(a) = body.get_attribute("bandwidth") else {
            return 0;
        };
        let parsed = match &a.value {
            EditExpr::Number(n) => n.value().as_u64().ok_or_else(|| {
                format!("`bandwidth` in {ctx} must be a whole number of bytes per second")
            }),
            EditExpr::String(s) => {
                parse_bandwidth(s.as_str()).map_err(|e| format!("`bandwidth` in {ctx}: {e}"))
            }
            _ => Err(format!(
                "`bandwidth` in {ctx} must be a literal: bytes per second, or a string such as \"256KiB\""
            )),
        };
        match parsed {
            Ok(0) => {
                self.error(
                    span_of(&a.value),
                    format!("`bandwidth` in {ctx} must be more than 0 (leave it out for no limit)"),
                );
                0
            }
            Ok(n) => n,
            Err(msg) => {
                self.error(span_of(&a.value), msg);
                0
            }
        }
    }
}
