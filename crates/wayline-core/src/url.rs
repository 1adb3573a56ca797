//! What the URL service routes, as the server describes it: one [`UrlRoute`] per deployment that
//! may take traffic, and the rules that turn app names into hostnames.
//!
//! An app's host is its name as a DNS label (`web`); in a workspace other than `default` the
//! workspace follows (`web-staging`). When two projects have an app of the same name, the app
//! deployed first keeps the name and the other gets its project appended (`web-shop`).
//! Deployment `vN` answers at `<host>--v<N>.<domain>`, the released one at `<host>.<domain>`.

use std::collections::{BTreeMap, HashSet};

/// The workspace whose apps get their bare name as host.
pub const DEFAULT_WORKSPACE: &str = "default";

/// Longest DNS label.
pub const MAX_LABEL: usize = 63;

/// One deployment the URL service may send traffic to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlRoute {
    /// The app's host label (`web`), see [`assign_hosts`].
    pub host: String,
    /// The deployment's `vN` number.
    pub sequence: u64,
    /// The deployment's id (tunnels register under it).
    pub deployment_id: String,
    /// Where the platform said the deployment listens (`http://127.0.0.1:32772`), for
    /// deployments without an entrypoint tunnel; empty when it reported none.
    pub address: String,
    /// The app host's share of traffic this deployment takes, in percent: 100 for the released
    /// deployment, 0 for the others.
    pub weight: u32,
    /// The path the router's health check asks before a release (empty: `/`, any HTTP answer).
    pub health_path: String,
    /// The app's own `url { limits {} }`; unset fields take the URL service's defaults.
    pub limits: UrlLimits,
}

/// Limits the URL service applies to an app's hosts and deployments; 0 means "not set here"
/// (the URL service's default, whose 0 means "no limit").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlLimits {
    /// Requests per second each hostname takes (`web.<domain>`, `web--v2.<domain>`).
    pub requests_per_second: u32,
    /// Requests a hostname may take at once above its rate (0: the rate, one second's worth).
    pub burst: u32,
    /// Bytes per second of request and of response bodies each hostname carries (each
    /// direction on its own); bodies are slowed to it, never cut.
    pub bytes_per_second: u64,
    /// Requests in flight at once per deployment (through either of its hosts).
    pub max_requests: u32,
}

impl UrlLimits {
    /// Each field of `self`, or of `defaults` where `self` leaves it 0.
    #[must_use]
    pub fn or(self, defaults: Self) -> Self {
        let pick32 = |a: u32, b: u32| if a == 0 { b } else { a };
        Self {
            requests_per_second: pick32(self.requests_per_second, defaults.requests_per_second),
            burst: pick32(self.burst, defaults.burst),
            bytes_per_second: if self.bytes_per_second == 0 {
                defaults.bytes_per_second
            } else {
                self.bytes_per_second
            },
            max_requests: pick32(self.max_requests, defaults.max_requests),
        }
    }
}

/// One open tunnel, as the URL service reports it to the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TunnelInfo {
    /// The deployment it serves.
    pub deployment_id: String,
    /// The instance whose entrypoint dialled it.
    pub instance_id: String,
    /// When it opened, Unix milliseconds.
    pub connected_ms: i64,
    /// Requests it carries now.
    pub in_flight: usize,
}

/// Why a bandwidth did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a bandwidth: bytes per second such as `1048576`, `256KiB`, `1MiB` or `500KB`"
)]
pub struct BadBandwidth(pub String);

/// A bandwidth in bytes per second: a number, optionally followed by `B`, `KB`, `MB`, `GB`
/// (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024); `/s` may follow.
pub fn parse_bandwidth(s: &str) -> Result<u64, BadBandwidth> {
    let bad = || BadBandwidth(s.chars().take(40).collect());
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let unit: u64 = match t[digits..].trim_start() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

/// An app as far as hostnames go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppKey {
    /// Project name.
    pub project: String,
    /// App name.
    pub app: String,
    /// Workspace name.
    pub workspace: String,
}

/// `name` as a DNS label: lower case, every run of other characters one `-`, no `-` at either
/// end, at most [`MAX_LABEL`] characters; `app` when nothing is left.
pub fn dns_label(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut label: String = out.trim_matches('-').chars().take(MAX_LABEL).collect();
    // `--` separates the version; a label never holds one.
    while label.contains("--") {
        label = label.replace("--", "-");
    }
    let label = label.trim_end_matches('-').to_owned();
    if label.is_empty() {
        "app".into()
    } else {
        label
    }
}

/// The host an app would like: its name, plus the workspace outside `default`.
pub fn preferred_host(key: &AppKey) -> String {
    if key.workspace == DEFAULT_WORKSPACE || key.workspace.is_empty() {
        dns_label(&key.app)
    } else {
        dns_label(&format!("{}-{}", key.app, key.workspace))
    }
}

/// Hosts for apps given in the order they first deployed: the first to want a host gets it,
/// later ones get their project appended (and a number when even that is taken).
pub fn assign_hosts<'a>(apps: impl IntoIterator<Item = &'a AppKey>) -> BTreeMap<AppKey, String> {
    let mut taken = HashSet::new();
    let mut out = BTreeMap::new();
    for key in apps {
        if out.contains_key(key) {
            continue;
        }
        let mut host = preferred_host(key);
        if taken.contains(&host) {
            host = dns_label(&format!("{host}-{}", key.project));
        }
        let base = host.clone();
        let mut n = 2;
        while taken.contains(&host) {
            host = format!(
                "{}-{n}",
                base.chars().take(MAX_LABEL - 4).collect::<String>()
            );
            n += 1;
        }
        taken.insert(host.clone());
        out.insert(key.clone(), host);
    }
    out
}

/// `<host>--v<N>`: the label of one deployment.
pub fn deployment_label(host: &str, sequence: u64) -> String {
    format!("{host}--v{sequence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(project: &str, app: &str, workspace: &str) -> AppKey {
        AppKey {
            project: project.into(),
            app: app.into(),
            workspace: workspace.into(),
        }
    }

    #[test]
    fn bandwidths_take_decimal_and_binary_units() {
        assert_eq!(parse_bandwidth("0"), Ok(0));
        assert_eq!(parse_bandwidth("1048576"), Ok(1 << 20));
        assert_eq!(parse_bandwidth("256KiB"), Ok(256 << 10));
        assert_eq!(parse_bandwidth("1 MiB/s"), Ok(1 << 20));
        assert_eq!(parse_bandwidth("500KB"), Ok(500_000));
        assert_eq!(
            parse_bandwidth("fast").unwrap_err().to_string(),
            "`fast` is not a bandwidth: bytes per second such as `1048576`, `256KiB`, `1MiB` or `500KB`"
        );
        assert!(parse_bandwidth("1TiB").is_err());
        assert!(parse_bandwidth("99999999999999999999GiB").is_err());
    }

    #[test]
    fn limits_fall_back_field_by_field() {
        let own = UrlLimits {
            requests_per_second: 5,
            ..UrlLimits::default()
        };
        let defaults = UrlLimits {
            requests_per_second: 100,
            burst: 200,
            bytes_per_second: 1,
            max_requests: 0,
        };
        assert_eq!(
            own.or(defaults),
            UrlLimits {
                requests_per_second: 5,
                burst: 200,
                bytes_per_second: 1,
                max_requests: 0
            }
        );
    }

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("web"), "web");
        assert_eq!(dns_label("My_App.v2"), "my-app-v2");
        assert_eq!(dns_label("--a--b--"), "a-b");
        assert_eq!(dns_label("ü"), "app");
        assert_eq!(dns_label(&"x".repeat(100)).len(), MAX_LABEL);
    }

    #[test]
    fn the_first_app_keeps_its_name_and_later_ones_get_their_project() {
        let a = key("shop", "web", "default");
        let b = key("blog", "web", "default");
        let c = key("blog", "web", "staging");
        let hosts = assign_hosts([&a, &b, &c, &a]);
        assert_eq!(hosts[&a], "web");
        assert_eq!(hosts[&b], "web-blog");
        assert_eq!(hosts[&c], "web-staging");
        assert_eq!(deployment_label(&hosts[&a], 3), "web--v3");
    }

    #[test]
    fn a_taken_fallback_gets_a_number() {
        let a = key("p", "web-p", "default");
        let b = key("x", "web", "default");
        let c = key("p", "web", "default");
        let hosts = assign_hosts([&a, &b, &c]);
        assert_eq!(hosts[&c], "web-p-2");
    }
}
