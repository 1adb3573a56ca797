//! `Host` header → what it names: `<app>--v<N>.<domain>` one deployment, `<app>.<domain>` the
//! app's release. Pure and bounded, so it is tested alone.

/// Longest `Host` value looked at (a DNS name is at most 253 characters, plus a port).
pub const MAX_HOST: usize = 260;

/// What a request's host asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The app's host label.
    pub app: &'a str,
    /// `Some(N)` for `--vN`, `None` for the release.
    pub sequence: Option<u64>,
}

/// The host without its port, lower-cased in place by the caller's choice (hosts are
/// case-insensitive; ours are lower case).
pub fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Parses a lower-case host (no port) under `domain`.
pub fn parse<'a>(host: &'a str, domain: &str) -> Option<Target<'a>> {
    if host.len() > MAX_HOST {
        return None;
    }
    let label = host.strip_suffix(domain)?.strip_suffix('.')?;
    if label.is_empty() || label.contains('.') {
        return None;
    }
    match label.rsplit_once("--v") {
        Some((app, n))
            if !app.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(Target {
                app,
                sequence: Some(n.parse().ok()?),
            })
        }
        _ => Some(Target {
            app: label,
            sequence: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_a_deployment_or_a_release() {
        assert_eq!(
            parse("web--v2.localhost", "localhost"),
            Some(Target {
                app: "web",
                sequence: Some(2)
            })
        );
        assert_eq!(
            parse("web.localhost", "localhost"),
            Some(Target {
                app: "web",
                sequence: None
            })
        );
        assert_eq!(
            parse("my-app--v10.apps.example.com", "apps.example.com")
                .unwrap()
                .sequence,
            Some(10)
        );
        assert_eq!(parse("localhost", "localhost"), None);
        assert_eq!(parse("a.b.localhost", "localhost"), None);
        assert_eq!(parse("weblocalhost", "localhost"), None);
        assert_eq!(
            parse("web--v.localhost", "localhost").unwrap().app,
            "web--v"
        );
        assert_eq!(
            parse("web--v99999999999999999999999.localhost", "localhost"),
            None
        );
        assert_eq!(
            parse(&format!("{}.localhost", "a".repeat(300)), "localhost"),
            None
        );
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("web.localhost:9703"), "web.localhost");
        assert_eq!(strip_port("web.localhost"), "web.localhost");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }
}
