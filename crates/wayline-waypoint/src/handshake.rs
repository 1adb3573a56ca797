//! go-plugin's handshake as Waypoint runs it: the magic cookie in the environment, and the one
//! line the plugin prints on stdout, `CORE|APP|NETWORK|ADDRESS|PROTOCOL[|CERT]`.

/// The environment variable holding Waypoint's magic cookie.
pub const COOKIE_KEY: &str = "WAYPOINT_PLUGIN";
/// Waypoint's magic cookie value (waypoint-plugin-sdk `internal/plugin/plugin.go`).
pub const COOKIE_VALUE: &str = "be6c1928786a4df0222c13eef44ac846da2c0d461d99addc93f804601c6b7205";
/// The environment variable listing the app protocol versions the host speaks.
pub const PROTOCOL_VERSIONS_ENV: &str = "PLUGIN_PROTOCOL_VERSIONS";
/// go-plugin's core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// Waypoint's app protocol version (the SDK's `Handshake.ProtocolVersion`).
pub const APP_PROTOCOL_VERSION: u32 = 1;

/// Where the plugin serves, from its handshake line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// `unix` (Waypoint plugins on unix) or `tcp`.
    pub network: String,
    /// The socket path, or `host:port`.
    pub address: String,
}

/// The handshake line a plugin serving gRPC on unix socket `path` prints (no AutoMTLS).
pub fn line(path: &str) -> String {
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{path}|grpc|")
}

/// Parses a handshake line; the error says what is wrong with it.
pub fn parse(line: &str) -> Result<Handshake, String> {
    let parts: Vec<&str> = line.trim_end().split('|').collect();
    if parts.len() < 4 {
        return Err(format!(
            "expected `{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|<socket path>|grpc|`"
        ));
    }
    if parts[0] != CORE_PROTOCOL_VERSION.to_string() {
        return Err(format!(
            "go-plugin core protocol version {}, this host speaks {CORE_PROTOCOL_VERSION}",
            parts[0]
        ));
    }
    if parts[1] != APP_PROTOCOL_VERSION.to_string() {
        return Err(format!(
            "plugin protocol version {}, this host speaks {APP_PROTOCOL_VERSION} (Waypoint 0.11)",
            parts[1]
        ));
    }
    let protocol = parts.get(4).copied().unwrap_or("netrpc");
    if protocol != "grpc" {
        return Err(format!(
            "RPC protocol `{protocol}`, this host speaks only `grpc`"
        ));
    }
    if parts.get(5).is_some_and(|c| !c.is_empty()) {
        return Err("the plugin asked for AutoMTLS, which Waypoint does not use".to_owned());
    }
    match parts[2] {
        "unix" | "tcp" => Ok(Handshake {
            network: parts[2].to_owned(),
            address: parts[3].to_owned(),
        }),
        n => Err(format!("network `{n}`, expected `unix` or `tcp`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_or_say_why_not() {
        assert_eq!(
            parse("1|1|unix|/tmp/plugin123|grpc|\n").unwrap(),
            Handshake {
                network: "unix".into(),
                address: "/tmp/plugin123".into()
            }
        );
        assert_eq!(line("/tmp/x"), "1|1|unix|/tmp/x|grpc|");
        assert_eq!(
            parse("1|2|unix|/tmp/x|grpc|").unwrap_err(),
            "plugin protocol version 2, this host speaks 1 (Waypoint 0.11)"
        );
        assert_eq!(
            parse("2|1|unix|/tmp/x|grpc|").unwrap_err(),
            "go-plugin core protocol version 2, this host speaks 1"
        );
        assert_eq!(
            parse("1|1|unix|/tmp/x|netrpc").unwrap_err(),
            "RPC protocol `netrpc`, this host speaks only `grpc`"
        );
        assert_eq!(
            parse("hello").unwrap_err(),
            "expected `1|1|unix|<socket path>|grpc|`"
        );
        assert_eq!(
            parse("1|1|unix|/tmp/x|grpc|MIIB").unwrap_err(),
            "the plugin asked for AutoMTLS, which Waypoint does not use"
        );
    }
}
