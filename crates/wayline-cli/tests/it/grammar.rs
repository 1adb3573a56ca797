//! What users can type: environment variables under both names, `-json` on operations,
//! confirmation without a terminal.

use crate::common::TestEnv;

const APP: &str = r#"project = "grammar"

app "web" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {}
  }
}
"#;

/// One variable, under each of its two names: what a command then prints.
struct Case {
    name: &'static str,
    value: &'static str,
    args: &'static [&'static str],
    /// Other variables the case needs (a token is only used together with an address).
    with: &'static [(&'static str, &'static str)],
    expect: &'static str,
}

const NOWHERE: (&str, &str) = ("WAYLINE_SERVER_ADDR", "unix:///nowhere.sock");

const CASES: &[Case] = &[
    Case {
        name: "WORKSPACE",
        value: "staging",
        args: &["up", "-json"],
        with: &[],
        expect: r#""workspace":"staging""#,
    },
    Case {
        name: "PROJECT",
        value: "other",
        args: &["up", "-json"],
        with: &[],
        expect: r#""project":"other""#,
    },
    Case {
        name: "APP",
        value: "nope",
        args: &["exec", "true"],
        with: &[],
        expect: "there is no app `nope`",
    },
    Case {
        name: "CONTEXT",
        value: "nope",
        args: &["context", "inspect"],
        with: &[],
        expect: "names `nope`, but there is no such context",
    },
    Case {
        name: "SERVER_ADDR",
        value: "unix:///elsewhere.sock",
        args: &["context", "inspect"],
        with: &[],
        expect: "unix:///elsewhere.sock",
    },
    Case {
        name: "SERVER_TOKEN",
        value: "t0ken",
        args: &["context", "inspect", "-json"],
        with: &[NOWHERE],
        expect: r#""has_token": true"#,
    },
    Case {
        name: "SERVER_TLS",
        value: "false",
        args: &["context", "inspect", "-json"],
        with: &[NOWHERE],
        expect: r#""tls": false"#,
    },
    Case {
        name: "SERVER_TLS_SKIP_VERIFY",
        value: "true",
        args: &["context", "inspect", "-json"],
        with: &[NOWHERE],
        expect: r#""tls_skip_verify": true"#,
    },
    Case {
        name: "RUNNER_ID",
        value: "runner-from-env",
        args: &["runner", "agent", "-request-adoption"],
        with: &[NOWHERE],
        expect: "Runner runner-from-env asks to be adopted",
    },
    Case {
        name: "LOG_LEVEL",
        value: "debug",
        args: &["validate"],
        with: &[],
        expect: "DEBUG found configuration",
    },
];

/// `WAYPOINT_WORKSPACE=staging` was ignored while `WAYLINE_WORKSPACE` worked. (`PLAIN` only
/// changes output on a terminal; the unit tests in `context.rs` cover it.)
#[test]
fn every_wayline_variable_also_works_under_its_waypoint_name() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    for case in CASES {
        for prefix in ["WAYLINE_", "WAYPOINT_"] {
            let var = format!("{prefix}{}", case.name);
            let out = env
                .cmd(case.args)
                .envs(case.with.iter().copied())
                .env(&var, case.value)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains(case.expect),
                "{var}={} `wayline {}` should say {:?}:\n{text}",
                case.value,
                case.args.join(" "),
                case.expect
            );
        }
    }
}

#[test]
fn operations_with_json_print_one_event_per_line() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    let r = env.ok(&["up", "-json"]);
    let events: Vec<serde_json::Value> = r
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(events[0]["event"], "start", "{}", r.all());
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "status" && e["msg"] == "Deployment v1 is running"),
        "{}",
        r.all()
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "complete", "{}", r.all());
    assert_eq!(last["ok"], true);
    assert_eq!(last["deployment"], "v1");
    assert!(last["seconds"].as_f64().is_some_and(|s| s > 0.0));
}

#[test]
fn destroy_without_a_terminal_needs_auto_approve() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    env.ok(&["up"]);
    // stdin is not a terminal here (the harness gives /dev/null): no silent destroy.
    let r = env.run(&["destroy"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.stderr().contains("stdin is not a terminal") && r.stderr().contains("-auto-approve"),
        "{}",
        r.all()
    );
    let deps = env.ok(&["deployment", "list", "-json"]).stdout();
    assert!(deps.contains(r#""physical_state": "created""#), "{deps}");
    let r = env.run(&["project", "destroy"]);
    assert!(r.stderr().contains("-auto-approve"), "{}", r.all());
    env.ok(&["destroy", "-auto-approve"]);
}
