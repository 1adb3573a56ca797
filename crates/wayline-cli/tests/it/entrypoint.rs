//! Logs, exec and config through `wayline-entrypoint`, with the `exec` platform running it as
//! a local process (no Docker needed).

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{TestEnv, eventually, wait_for};

/// The entrypoint binary: the static one CI builds, else the workspace's debug build.
fn entrypoint() -> PathBuf {
    if let Some(p) = std::env::var_os("WAYLINE_ENTRYPOINT_BINARY") {
        return PathBuf::from(p);
    }
    let p = crate::common::wayline_bin().with_file_name("wayline-entrypoint");
    assert!(
        p.exists(),
        "`{}` is missing: build the workspace first (`cargo build --workspace`)",
        p.display()
    );
    p
}

fn app(entrypoint: &std::path::Path) -> String {
    format!(
        r#"project = "ep"

app "svc" {{
  build {{
    use "files" {{}}
  }}
  config {{
    env = {{
      GREETING = "hello from the config file"
      SECRET   = dynamic("file", {{ path = "/nonexistent/wayline-e2e-secret" }})
    }}
  }}

  deploy {{
    use "exec" {{
      command = ["{}", "--", "sh", "-c", "echo hello from the app; echo MSG=$MSG; echo GREETING=$GREETING; while true; do sleep 1; done"]
    }}
  }}
}}
"#,
        entrypoint.display()
    )
}

fn logs(env: &TestEnv) -> String {
    env.run_for(&["logs", "-follow=false"], Duration::from_secs(20))
        .stdout()
}

#[test]
fn logs_exec_and_config_reach_the_running_app() {
    let env = TestEnv::new();
    env.write("wayline.hcl", &app(&entrypoint()));
    env.ok(&["up"]);

    assert!(
        eventually(Duration::from_secs(20), || logs(&env)
            .contains("hello from the app")),
        "logs never showed the app's line:\n{}",
        logs(&env)
    );
    assert!(
        logs(&env).contains("[entrypoint]"),
        "the entrypoint's own lines are marked"
    );
    assert!(
        logs(&env).contains("GREETING=hello from the config file"),
        "the `config` stanza reaches the app:\n{}",
        logs(&env)
    );

    // A value the entrypoint can't resolve shows on `wayline status`, not as an empty variable.
    assert!(
        eventually(Duration::from_secs(20), || {
            let r = env.run(&["status"]);
            r.stdout()
                .contains("Config that deployments cannot resolve:")
                && r.stdout().contains("SECRET")
        }),
        "{}",
        env.run(&["status"]).all()
    );
    let r = env.ok(&["exec", "--", "sh", "-c", "echo ${SECRET-unset}"]);
    assert_eq!(r.stdout(), "unset\n", "never set to empty");

    let r = env.ok(&["exec", "--", "echo", "hi"]);
    assert_eq!(r.stdout(), "hi\n");
    // The remote command's single-dash flags are its own, with or without `--`.
    let r = env.ok(&["exec", "echo", "-version", "-n"]);
    assert_eq!(r.stdout(), "-version -n\n", "{}", r.all());
    let r = env.ok(&["exec", "-tty=false", "sh", "-c", "echo -quiet"]);
    assert_eq!(r.stdout(), "-quiet\n", "{}", r.all());
    let r = env.run(&["exec", "--", "sh", "-c", "echo oops >&2; exit 7"]);
    assert_eq!(r.code(), Some(7), "{}", r.all());
    assert_eq!(r.stderr(), "oops\n");

    // `-t` asks for a pseudo-terminal on the instance even when this side has none.
    let r = env.ok(&[
        "exec",
        "-t",
        "--",
        "sh",
        "-c",
        "tty; echo rows=$(stty size)",
    ]);
    assert!(r.stdout().contains("/dev/pts/"), "a real pty: {}", r.all());
    assert!(
        r.stdout().contains("rows=24 80"),
        "the window size reaches the pty: {}",
        r.all()
    );

    // Through a real pseudo-terminal on this side too (`script` gives the CLI one): raw mode,
    // the local window size sent along, `~.` handling on.
    if let Some(out) = through_a_terminal(&env, "wayline exec -- sh -c 'tty; stty size'") {
        assert!(out.contains("/dev/pts/"), "{out}");
    }

    let r = env.ok(&["config", "set", "MSG=changed"]);
    assert!(
        r.stdout().contains("running instances of the app restart"),
        "{}",
        r.all()
    );
    assert!(
        eventually(Duration::from_secs(20), || logs(&env)
            .contains("MSG=changed")),
        "the app was not restarted with the new config:\n{}",
        logs(&env)
    );
    let r = env.ok(&["exec", "--", "sh", "-c", "echo $MSG"]);
    assert_eq!(
        r.stdout(),
        "changed\n",
        "exec runs with the app's current env"
    );

    let r = env.ok(&["logs", "-follow=false", "-timestamps"]);
    let stamp = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ").unwrap();
    assert!(
        r.stdout().lines().all(|l| stamp.is_match(l))
            && r.stdout().contains("Z hello from the app"),
        "every line starts with its time: {}",
        r.all()
    );

    env.ok(&["destroy", "-auto-approve"]);
    let r = env.run(&["exec", "--", "echo", "hi"]);
    assert!(!r.success(), "exec after destroy must fail: {}", r.all());
    assert!(
        r.stderr()
            .contains("app svc has no running deployment in workspace default"),
        "{}",
        r.all()
    );
}

#[test]
fn the_app_outlives_a_server_crash_and_logs_resume() {
    let env = TestEnv::new();
    let ep = entrypoint();
    // The app also writes its count here, so it can be watched while the server is down.
    let ticks = env.home.path().join("ticks");
    env.write(
        "wayline.hcl",
        &format!(
            r#"project = "crash"

app "ticker" {{
  build {{
    use "files" {{}}
  }}
  deploy {{
    use "exec" {{
      command = ["{}", "--", "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; echo $i > {}; sleep 0.2; done"]
    }}
  }}
}}
"#,
            ep.display(),
            ticks.display()
        ),
    );
    env.ok(&["up"]);
    assert!(eventually(Duration::from_secs(20), || logs(&env).contains("tick 3")));

    // kill -9 the embedded server; the app must not notice.
    let pid_file = env.home.path().join("data/wayline/server/server.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Gone, or a zombie nobody reaped yet: either way it serves nothing.
    let dead = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(st) => st
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    };
    assert!(
        eventually(Duration::from_secs(10), dead),
        "the server (pid {pid}) outlived kill -9"
    );
    let count = || {
        std::fs::read_to_string(&ticks)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    let at_crash = count().unwrap_or(0);
    wait_for(Duration::from_secs(20), || match count() {
        Some(n) if n >= at_crash + 5 => Ok(()),
        seen => Err(seen),
    })
    .unwrap_or_else(|seen| {
        panic!("the app stopped with the server: count {at_crash} at the crash, last {seen:?}")
    });

    // The next command starts the server again; the entrypoint reconnects and ships the lines
    // it buffered while the server was down, then keeps shipping new ones.
    assert!(
        eventually(Duration::from_secs(30), || {
            let text = logs(&env);
            let ticks: Vec<u64> = text
                .lines()
                .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
                .collect();
            // The log window after a restart holds lines from the outage (about 10 of them).
            ticks.iter().any(|t| *t >= 12) && text.contains("[entrypoint]")
        }),
        "logs did not resume:\n{}",
        logs(&env)
    );
    env.ok(&["destroy", "-auto-approve"]);
}

/// Runs a shell command line under `script`, which gives it a real pseudo-terminal; `wayline`
/// in the line is this test's binary with this test's home. None (with the reason printed)
/// when `script` is not installed.
fn through_a_terminal(env: &TestEnv, line: &str) -> Option<String> {
    let Ok(script) = which("script") else {
        eprintln!("skipping the local-terminal part: `script` (util-linux) is not installed");
        return None;
    };
    let line = line.replacen(
        "wayline",
        &crate::common::wayline_bin().display().to_string(),
        1,
    );
    // Same environment and folder as every other command of this test; `script` runs the line.
    let template = env.cmd(&[]);
    let envs: Vec<(std::ffi::OsString, std::ffi::OsString)> = template
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let mut cmd = std::process::Command::new(script);
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .env_clear()
        .envs(envs)
        .current_dir(&env.project)
        .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("run script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.exists())
        })
        .ok_or(())
}
