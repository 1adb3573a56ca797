//! Supervisor duties, with the entrypoint disabled (no server): exit codes, signals, reaping.

use nix::sys::signal::Signal;

use crate::common::*;

#[tokio::test]
async fn exit_code_is_the_apps() {
    let (code, out, _) = run(entrypoint(None, &["sh", "-c", "echo hi; exit 7"])).await;
    assert_eq!((code, out.as_str()), (7, "hi\n"));
}

#[tokio::test]
async fn death_by_signal_is_128_plus_the_signal() {
    let (code, _, _) = run(entrypoint(None, &["sh", "-c", "kill -KILL $$"])).await;
    assert_eq!(code, 137);
}

#[tokio::test]
async fn signals_are_forwarded_to_the_app() {
    for (sig, name) in [
        (Signal::SIGTERM, "TERM"),
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGINT, "INT"),
    ] {
        let script = format!(
            "trap 'echo got {name}; exit 42' {name}; echo ready; while :; do sleep 0.05; done"
        );
        let mut child = entrypoint(None, &["sh", "-c", &script]).spawn().unwrap();
        wait_stdout(&mut child, "ready").await;
        signal(&child, sig);
        wait_stdout(&mut child, &format!("got {name}")).await;
        assert_eq!(wait_code(&mut child).await, 42, "{name}");
    }
}

#[tokio::test]
async fn orphans_are_reaped() {
    // The inner shell exits at once, orphaning the sleeps; they get reparented to the
    // entrypoint (a subreaper, or PID 1 in a container), which must reap them.
    let script = "sh -c 'sleep 0.1 & sleep 0.1 &'; echo orphaned; sleep 1; echo done";
    let mut child = entrypoint(None, &["sh", "-c", script]).spawn().unwrap();
    let pid = child.id().unwrap().to_string();
    wait_stdout(&mut child, "orphaned").await;
    // The orphans are the entrypoint's now: wait until none is left, alive or zombie.
    let orphans = || {
        let list: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter(|stat| {
                // pid (comm) state ppid …
                let Some((head, rest)) = stat.rsplit_once(") ") else {
                    return false;
                };
                head.ends_with("(sleep") && rest.split_whitespace().nth(1) == Some(pid.as_str())
            })
            .collect();
        async move { if list.is_empty() { Ok(()) } else { Err(list) } }
    };
    wait_for_async(PATIENCE, orphans)
        .await
        .unwrap_or_else(|left| panic!("orphans never reaped: {left:?}"));
    wait_stdout(&mut child, "done").await;
    assert_eq!(wait_code(&mut child).await, 0);
}

#[tokio::test]
async fn missing_command_exits_127_with_the_reason() {
    let (code, _, err) = run(entrypoint(None, &["/nonexistent/app"])).await;
    assert_eq!(code, 127);
    assert!(
        err.contains("cannot start \"/nonexistent/app\": No such file or directory"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_settings_and_usage_exit_2() {
    let mut cmd = entrypoint(None, &["true"]);
    cmd.env("WAYLINE_SERVER_TLS", "maybe");
    let (code, _, err) = run(cmd).await;
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "wayline-entrypoint: invalid value \"maybe\" for WAYLINE_SERVER_TLS: expected true or false\n"
    );
    let mut cmd = entrypoint(None, &[]);
    cmd.env_remove("WAYLINE_DEPLOYMENT_ID");
    let (code, _, err) = run(cmd).await;
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "wayline-entrypoint: no app command given\nusage: wayline-entrypoint [--] <app command…>\n"
    );
}

#[tokio::test]
async fn port_is_exported_and_the_token_is_not() {
    let (_, out, _) = run(entrypoint(
        None,
        &[
            "sh",
            "-c",
            "echo \"$PORT [$WAYLINE_ENTRYPOINT_TOKEN] $WAYLINE_DEPLOYMENT_ID\"",
        ],
    ))
    .await;
    assert_eq!(out, "5000 [] D1\n");
    let mut cmd = entrypoint(None, &["sh", "-c", "echo $PORT"]);
    cmd.env("PORT", "8080");
    assert_eq!(run(cmd).await.1, "8080\n");
}

#[tokio::test]
async fn fails_open_without_a_server() {
    let mut cmd = entrypoint(
        Some(std::path::Path::new("/nonexistent/wayline.sock")),
        &["sh", "-c", "echo app ran"],
    );
    cmd.env("WAYLINE_LOG_LEVEL", "info");
    let (code, out, err) = run(cmd).await;
    assert_eq!((code, out.as_str()), (0, "app ran\n"));
    assert!(
        err.contains("no config from the server within 5s; starting the app without it"),
        "{err}"
    );
}

#[tokio::test]
async fn server_required_waits_and_still_obeys_sigterm() {
    let mut cmd = entrypoint(
        Some(std::path::Path::new("/nonexistent/wayline.sock")),
        &["sh", "-c", "echo app ran"],
    );
    cmd.env("WAYLINE_ENTRYPOINT_SERVER_REQUIRED", "true")
        .env("WAYLINE_LOG_LEVEL", "info");
    let mut child = cmd.spawn().unwrap();
    // Past the fail-open window (it says so): the app must still not have started.
    wait_stderr(
        &mut child,
        "no config from the server within 5s; the server is required, so the app waits for it",
    )
    .await;
    signal(&child, Signal::SIGTERM);
    assert_eq!(wait_code(&mut child).await, 143);
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stdout.as_mut().unwrap(), &mut out)
        .await
        .unwrap();
    assert_eq!(out, "");
}
