use std::cell::Cell;

use super::*;

#[test]
fn wait_for_returns_the_first_success() {
    let n = Cell::new(0);
    let got = wait_for(Duration::from_secs(5), || {
        n.set(n.get() + 1);
        if n.get() == 3 {
            Ok(n.get())
        } else {
            Err(n.get())
        }
    });
    assert_eq!(got, Ok(3));
}

#[test]
fn wait_for_gives_up_with_what_it_last_saw() {
    let n = Cell::new(0);
    let got: Result<(), u32> = wait_for(Duration::from_millis(100), || {
        n.set(n.get() + 1);
        Err(n.get())
    });
    assert_eq!(got, Err(n.get()));
    assert!(n.get() >= 2, "probed once more at the deadline");
    assert!(!eventually(Duration::ZERO, || false));
    assert!(eventually(Duration::ZERO, || true));
}

#[tokio::test(start_paused = true)]
async fn async_waits_follow_tokio_time() {
    let start = tokio::time::Instant::now();
    let got: Result<(), &str> =
        wait_for_async(Duration::from_hours(1), || async { Err("never") }).await;
    assert_eq!(got, Err("never"));
    assert!(start.elapsed() >= Duration::from_hours(1));
    let n = Cell::new(0);
    assert!(
        eventually_async(Duration::from_secs(1), || {
            n.set(n.get() + 1);
            let done = n.get() > 2;
            async move { done }
        })
        .await
    );
}

#[test]
fn needs_name_their_variables() {
    assert_eq!(Need::Docker.require_var(), "WAYLINE_REQUIRE_DOCKER");
    assert_eq!(Need::Chromium.require_var(), "WAYLINE_REQUIRE_CHROMIUM");
}

#[test]
fn tools_are_found_by_path_or_name() {
    assert_eq!(
        tool("t", Need::Sshd, &["/nonexistent/x", "sh"], "no sh")
            .map(|p| p.file_name().unwrap().to_owned()),
        Some("sh".into())
    );
    if !Need::Etcd.required() {
        assert_eq!(tool("t", Need::Etcd, &["/nonexistent/x"], "none"), None);
    }
}

#[test]
fn a_temp_home_runs_commands_in_its_project() {
    let home = TempHome::new("wl-testkit-");
    home.write("a/b.txt", "hi");
    let out = home
        .command("sh")
        .args(["-c", "cat a/b.txt; echo \" $HOME\"; echo \"$NO_COLOR\""])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("hi {}\n1\n", home.path().display())
    );
}

#[test]
fn git_commits_as_the_fixed_author() {
    let home = TempHome::new("wl-testkit-");
    home.write("f", "x");
    git(home.project(), &["init", "-q"]);
    git(home.project(), &["add", "."]);
    git(home.project(), &["commit", "-q", "-m", "one"]);
    assert_eq!(
        git(home.project(), &["log", "-1", "--format=%an <%ae> %s"]),
        "t <t@example.test> one"
    );
}
