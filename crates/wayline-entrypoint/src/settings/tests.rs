use std::collections::HashMap;

use super::*;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_env(|k| map.get(k).cloned())
}

#[test]
fn args_take_an_optional_double_dash() {
    let a = |v: &[&str]| parse_args(v.iter().map(OsString::from));
    assert_eq!(
        a(&["--", "app", "-x"]).unwrap(),
        vec![OsString::from("app"), OsString::from("-x")]
    );
    assert_eq!(a(&["app", "--", "y"]).unwrap().len(), 3);
    assert_eq!(
        a(&["--"]).unwrap_err().to_string(),
        "no app command given\nusage: wayline-entrypoint [--] <app command…>"
    );
    assert_eq!(a(&[]).unwrap_err(), SettingsError::NoCommand);
}

#[test]
fn empty_or_unset_address_disables_the_entrypoint() {
    assert_eq!(settings(&[]).unwrap().server, None);
    assert_eq!(
        settings(&[("WAYLINE_SERVER_ADDR", " ")]).unwrap().server,
        None
    );
    let s = settings(&[
        ("WAYLINE_SERVER_ADDR", "unix:///run/w.sock"),
        ("WAYLINE_ENTRYPOINT_DISABLE", "1"),
    ]);
    assert_eq!(s.unwrap().server, None);
}

#[test]
fn addresses_in_every_form() {
    let addr = |v: &str, extra: &[(&str, &str)]| {
        let mut vars = vec![("WAYLINE_SERVER_ADDR", v)];
        vars.extend_from_slice(extra);
        settings(&vars).map(|s| s.server.unwrap())
    };
    assert_eq!(
        addr("unix:///run/w.sock", &[]).unwrap(),
        ServerAddr::Unix("/run/w.sock".into())
    );
    assert_eq!(
        addr("127.0.0.1:9701", &[]).unwrap(),
        ServerAddr::Tcp {
            authority: "127.0.0.1:9701".into(),
            tls: false,
            skip_verify: false
        }
    );
    assert_eq!(
        addr(
            "example.com:9701",
            &[
                ("WAYLINE_SERVER_TLS", "true"),
                ("WAYLINE_SERVER_TLS_SKIP_VERIFY", "yes")
            ]
        )
        .unwrap(),
        ServerAddr::Tcp {
            authority: "example.com:9701".into(),
            tls: true,
            skip_verify: true
        }
    );
    assert_eq!(
        addr("https://example.com:443/", &[]).unwrap(),
        ServerAddr::Tcp {
            authority: "example.com:443".into(),
            tls: true,
            skip_verify: false
        }
    );
    assert_eq!(
        addr("example.com", &[]).unwrap_err().to_string(),
        "invalid server address \"example.com\" in WAYLINE_SERVER_ADDR: expected unix:///path, host:port or https://host:port"
    );
    assert!(addr("unix://relative.sock", &[]).is_err());
    assert!(addr("host:0", &[]).is_err());
    assert!(addr("host:99999", &[]).is_err());
}

#[test]
fn waypoint_names_are_read_too() {
    let s = settings(&[
        ("WAYPOINT_SERVER_ADDR", "localhost:9701"),
        ("WAYPOINT_DEPLOYMENT_ID", "D1"),
        ("WAYPOINT_CEB_INVITE_TOKEN", "tok"),
        ("WAYPOINT_CEB_DISABLE_EXEC", "true"),
        ("WAYPOINT_CEB_SERVER_REQUIRED", "1"),
        ("WAYPOINT_LOG_LEVEL", "debug"),
    ])
    .unwrap();
    assert!(s.server.is_some());
    assert_eq!(s.deployment_id, "D1");
    assert_eq!(s.token, "tok");
    assert!(s.disable_exec && s.server_required);
    assert_eq!(s.log_level, tracing::Level::DEBUG);
    // The Wayline name wins over the Waypoint one.
    let s = settings(&[
        ("WAYLINE_DEPLOYMENT_ID", "new"),
        ("WAYPOINT_DEPLOYMENT_ID", "old"),
    ])
    .unwrap();
    assert_eq!(s.deployment_id, "new");
}

#[test]
fn defaults() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.port, "5000");
    assert_eq!(s.restart_grace, Duration::from_secs(30));
    assert_eq!(s.config_refresh, Duration::from_secs(15));
    assert_eq!(s.log_level, tracing::Level::INFO);
    assert!(!s.disable_exec && !s.server_required);
    assert_eq!(settings(&[("PORT", "8080")]).unwrap().port, "8080");
}

#[test]
fn bad_values_are_named() {
    assert_eq!(
        settings(&[("WAYLINE_SERVER_TLS", "maybe")])
            .unwrap_err()
            .to_string(),
        "invalid value \"maybe\" for WAYLINE_SERVER_TLS: expected true or false"
    );
    assert_eq!(
        settings(&[("WAYLINE_ENTRYPOINT_RESTART_GRACE", "soon")])
            .unwrap_err()
            .to_string(),
        "invalid duration \"soon\" for WAYLINE_ENTRYPOINT_RESTART_GRACE: expected e.g. 30s, 500ms or 2m"
    );
    assert_eq!(
        settings(&[("WAYLINE_ENTRYPOINT_LOG_BUFFER", "0")])
            .unwrap_err()
            .to_string(),
        "invalid number \"0\" for WAYLINE_ENTRYPOINT_LOG_BUFFER: expected a positive whole number"
    );
    assert_eq!(
        settings(&[("WAYLINE_ENTRYPOINT_TOKEN", "a\nb")])
            .unwrap_err()
            .to_string(),
        "WAYLINE_ENTRYPOINT_TOKEN contains characters that cannot be sent in a header"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_mins(2)));
    assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_hours(1)));
    assert_eq!(parse_duration(" 1h30m "), Some(Duration::from_mins(90)));
    assert_eq!(parse_duration("1d"), Some(Duration::from_hours(24)));
    assert_eq!(parse_duration("1 min 5s"), Some(Duration::from_secs(65)));
    assert_eq!(parse_duration("s"), None);
    assert_eq!(parse_duration(""), None);
    assert_eq!(parse_duration("-1s"), None);
    assert_eq!(parse_duration("2 fortnights"), None);
    // Overflow is an error, not a panic or a wrap (the crash corpus has more).
    assert_eq!(parse_duration("18446744073709551616"), None);
    assert_eq!(parse_duration("307445734561825861m"), None);
}
