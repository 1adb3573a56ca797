//! Command line and environment, parsed purely (no IO) so every error is tested.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The usage line printed for a missing command.
pub const USAGE: &str = "usage: wayline-entrypoint [--] <app command…>";

/// Why the command line or environment was rejected. Messages are shown to users as they are.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// No app command was given.
    #[error("no app command given\n{USAGE}")]
    NoCommand,
    /// A boolean variable held something else.
    #[error("invalid value {value:?} for {name}: expected true or false")]
    Bool { name: &'static str, value: String },
    /// A duration variable held something else.
    #[error("invalid duration {value:?} for {name}: expected e.g. 30s, 500ms or 2m")]
    Duration { name: &'static str, value: String },
    /// A count variable held something else.
    #[error("invalid number {value:?} for {name}: expected a positive whole number")]
    Number { name: &'static str, value: String },
    /// The server address could not be understood.
    #[error(
        "invalid server address {value:?} in {name}: expected unix:///path, host:port or https://host:port"
    )]
    Addr { name: &'static str, value: String },
    /// The token cannot be sent as gRPC metadata.
    #[error("{name} contains characters that cannot be sent in a header")]
    Token { name: &'static str },
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddr {
    /// A unix socket, e.g. bind-mounted into a container.
    Unix(PathBuf),
    /// `host:port` over TCP, with or without TLS.
    Tcp {
        /// `host:port`.
        authority: String,
        /// Speak TLS.
        tls: bool,
        /// Accept any server certificate (the server's default one is self-signed).
        skip_verify: bool,
    },
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            ServerAddr::Tcp {
                authority,
                tls: true,
                ..
            } => write!(f, "https://{authority}"),
            ServerAddr::Tcp { authority, .. } => write!(f, "http://{authority}"),
        }
    }
}

/// Everything the entrypoint reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `None`: the entrypoint is disabled and just runs the app.
    pub server: Option<ServerAddr>,
    /// The deployment this instance belongs to.
    pub deployment_id: String,
    /// Sent as `authorization: Bearer <token>`.
    pub token: String,
    /// Refuse exec sessions.
    pub disable_exec: bool,
    /// Do not start the app before the server answered.
    pub server_required: bool,
    /// Verbosity of the entrypoint's own lines.
    pub log_level: tracing::Level,
    /// How long the app gets between SIGTERM and SIGKILL on a restart.
    pub restart_grace: Duration,
    /// Exported to the app as `PORT`.
    pub port: String,
    /// How often dynamic config values are re-read.
    pub config_refresh: Duration,
    /// Log lines kept while the server is slow or unreachable; the oldest are dropped beyond it.
    pub log_buffer_lines: usize,
}

/// Variables that configure the entrypoint and must not leak into the app (secrets).
pub const PRIVATE_VARS: &[&str] = &[
    "WAYLINE_ENTRYPOINT_TOKEN",
    "WAYPOINT_ENTRYPOINT_TOKEN",
    "WAYPOINT_CEB_INVITE_TOKEN",
];

/// Splits `[--] cmd args…` into the app's argv.
pub fn parse_args(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Vec<OsString>, SettingsError> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    if args.is_empty() {
        return Err(SettingsError::NoCommand);
    }
    Ok(args)
}

impl Settings {
    /// Reads the settings through `get`, which returns a variable's value (e.g. `std::env::var`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        // Each setting has the Wayline name first, then the Waypoint names it replaces.
        let var = |names: &[&'static str]| -> Option<(&'static str, String)> {
            names.iter().find_map(|n| get(n).map(|v| (*n, v)))
        };
        let flag = |names: &[&'static str]| -> Result<bool, SettingsError> {
            match var(names) {
                None => Ok(false),
                Some((name, v)) => parse_bool(name, &v),
            }
        };
        let disabled = flag(&[
            "WAYLINE_ENTRYPOINT_DISABLE",
            "WAYPOINT_ENTRYPOINT_DISABLE",
            "WAYPOINT_CEB_DISABLE",
        ])?;
        let tls = flag(&["WAYLINE_SERVER_TLS", "WAYPOINT_SERVER_TLS"])?;
        let skip_verify = flag(&[
            "WAYLINE_SERVER_TLS_SKIP_VERIFY",
            "WAYPOINT_SERVER_TLS_SKIP_VERIFY",
        ])?;
        let server = match var(&["WAYLINE_SERVER_ADDR", "WAYPOINT_SERVER_ADDR"]) {
            Some((name, v)) if !v.trim().is_empty() && !disabled => {
                Some(parse_addr(name, v.trim(), tls, skip_verify)?)
            }
            _ => None,
        };
        let token = var(&[
            "WAYLINE_ENTRYPOINT_TOKEN",
            "WAYPOINT_ENTRYPOINT_TOKEN",
            "WAYPOINT_CEB_INVITE_TOKEN",
        ]);
        if let Some((name, t)) = &token
            && !t.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(SettingsError::Token { name });
        }
        let duration = |names: &[&'static str], default: Duration| match var(names) {
            None => Ok(default),
            Some((name, v)) => parse_duration(&v).ok_or(SettingsError::Duration { name, value: v }),
        };
        let log_buffer_lines = match var(&[
            "WAYLINE_ENTRYPOINT_LOG_BUFFER",
            "WAYPOINT_ENTRYPOINT_LOG_BUFFER",
        ]) {
            None => 20_000,
            Some((name, v)) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(SettingsError::Number { name, value: v })?,
        };
        Ok(Settings {
            server,
            deployment_id: var(&["WAYLINE_DEPLOYMENT_ID", "WAYPOINT_DEPLOYMENT_ID"])
                .map(|v| v.1)
                .unwrap_or_default(),
            token: token.map(|v| v.1).unwrap_or_default(),
            disable_exec: flag(&[
                "WAYLINE_ENTRYPOINT_DISABLE_EXEC",
                "WAYPOINT_ENTRYPOINT_DISABLE_EXEC",
                "WAYPOINT_CEB_DISABLE_EXEC",
            ])?,
            server_required: flag(&[
                "WAYLINE_ENTRYPOINT_SERVER_REQUIRED",
                "WAYPOINT_ENTRYPOINT_SERVER_REQUIRED",
                "WAYPOINT_CEB_SERVER_REQUIRED",
            ])?,
            log_level: var(&["WAYLINE_LOG_LEVEL", "WAYPOINT_LOG_LEVEL"])
                .and_then(|(_, v)| parse_level(&v))
                .unwrap_or(tracing::Level::INFO),
            restart_grace: duration(
                &[
                    "WAYLINE_ENTRYPOINT_RESTART_GRACE",
                    "WAYPOINT_ENTRYPOINT_RESTART_GRACE",
                ],
                Duration::from_secs(30),
            )?,
            config_refresh: duration(
                &[
                    "WAYLINE_ENTRYPOINT_CONFIG_REFRESH",
                    "WAYPOINT_ENTRYPOINT_CONFIG_REFRESH",
                ],
                Duration::from_secs(15),
            )?,
            port: get("PORT")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "5000".to_owned()),
            log_buffer_lines,
        })
    }
}

fn parse_bool(name: &'static str, v: &str) -> Result<bool, SettingsError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(SettingsError::Bool {
            name,
            value: v.to_owned(),
        }),
    }
}

fn parse_level(v: &str) -> Option<tracing::Level> {
    match v.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(tracing::Level::TRACE),
        "debug" => Some(tracing::Level::DEBUG),
        "info" => Some(tracing::Level::INFO),
        "warn" | "warning" => Some(tracing::Level::WARN),
        "error" => Some(tracing::Level::ERROR),
        _ => None,
    }
}

/// Parses a duration as humantime does (`30s`, `500ms`, `2m`, `1h30m`, `1d`, …), or a bare
/// number of seconds (the entrypoint's older form, still accepted).
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok().map(Duration::from_secs);
    }
    humantime::parse_duration(v).ok()
}

fn parse_addr(
    name: &'static str,
    v: &str,
    tls: bool,
    skip_verify: bool,
) -> Result<ServerAddr, SettingsError> {
    let bad = || SettingsError::Addr {
        name,
        value: v.to_owned(),
    };
    if let Some(path) = v
        .strip_prefix("unix://")
        .or_else(|| v.strip_prefix("unix:"))
    {
        return if path.starts_with('/') {
            Ok(ServerAddr::Unix(PathBuf::from(path)))
        } else {
            Err(bad())
        };
    }
    let (authority, tls) = if let Some(rest) = v.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = v.strip_prefix("http://") {
        (rest, tls)
    } else {
        (v, tls)
    };
    let authority = authority.trim_end_matches('/');
    let port_ok = authority
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok || authority.contains('/') {
        return Err(bad());
    }
    Ok(ServerAddr::Tcp {
        authority: authority.to_owned(),
        tls,
        skip_verify,
    })
}

#[cfg(test)]
mod tests;
