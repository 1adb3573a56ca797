//! The web UI in headless Chromium, driven over WebDriver: sign in through `wayline ui`'s link,
//! watch a job's output arrive live, see the deployed app with its commit, read a log line the
//! app writes after the page loaded, pause and resume, `echo hi` in the exec terminal, roll back
//! and destroy from the browser (jobs on a runner agent), sign out.
//! Screenshots of each page go to `target/ui-screenshots/`. Skipped with a reason when Chromium
//! or its driver is missing, unless `WAYLINE_REQUIRE_CHROMIUM=1`.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{TestEnv, eventually, git};
use crate::ui::sign_in_link;
use crate::webdriver::{Browser, chromium};

const WAIT: Duration = Duration::from_secs(30);

/// Kills a background command when the test ends, also on failure.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Destroys the app's deployments when the test ends (the exec platform's processes).
struct Destroy<'a>(&'a TestEnv);

impl Drop for Destroy<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["destroy", "-auto-approve"]);
    }
}

fn entrypoint() -> std::path::PathBuf {
    std::env::var_os("WAYLINE_ENTRYPOINT_BINARY").map_or_else(
        || crate::common::wayline_bin().with_file_name("wayline-entrypoint"),
        std::path::PathBuf::from,
    )
}

/// A build whose hooks print a line, wait for the file `go`, and print another (so the job is running while the browser looks),
/// and an app that prints what the test writes into `say`.
fn config(project: &Path) -> String {
    let dir = project.display();
    format!(
        r#"project = "browser"

app "catalog" {{
  build {{
    use "files" {{}}
    hook {{
      when    = "before"
      command = ["sh", "-c", "echo first-$((0+1))"]
    }}
    hook {{
      when    = "before"
      command = ["sh", "-c", "while [ ! -f {dir}/go ]; do sleep 0.1; done"]
    }}
    hook {{
      when    = "before"
      command = ["sh", "-c", "echo second-$((1+1))"]
    }}
  }}
  deploy {{
    use "exec" {{
      command = ["{ep}", "--", "sh", "-c", "echo hello from the app; while true; do if [ -f {dir}/say ]; then cat {dir}/say; rm {dir}/say; fi; sleep 0.1; done"]
    }}
  }}
}}
"#,
        ep = entrypoint().display()
    )
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[test]
fn the_ui_in_headless_chromium() {
    let Some((chromium, driver)) = chromium("the_ui_in_headless_chromium") else {
        return;
    };
    assert!(
        entrypoint().exists(),
        "`{}` is missing: build the workspace first",
        entrypoint().display()
    );
    let env = TestEnv::new();
    env.write("wayline.hcl", &config(&env.project));
    env.write(".gitignore", "go\nsay\n");
    git(&env.project, &["init", "-q"]);
    git(&env.project, &["add", "."]);
    git(
        &env.project,
        &["commit", "-q", "-m", "catalog: first release"],
    );
    let commit = git(&env.project, &["rev-parse", "--short=7", "HEAD"]);
    git(&env.project, &["tag", "v0.1.0"]);
    // Start the embedded server, then `up` in the background: its build waits for `go`.
    let link = sign_in_link(&env);
    let _destroy = Destroy(&env);
    let mut up = Bg(env
        .cmd(&["up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let base = link.split('?').next().unwrap().to_owned();

    let b = Browser::start(
        &chromium,
        &driver,
        &env.home.path().join("chromium-profile"),
    );
    // Sign in through the one-time link: the token leaves the address bar.
    b.go(&link);
    b.wait_text("Projects", WAIT);
    assert!(!b.url().contains("token="), "{}", b.url());
    b.screenshot("projects");

    // The running job's output arrives live.
    b.go(&format!("{base}jobs"));
    b.wait_text("running", WAIT);
    b.click("main table a[href^='/jobs/']");
    // The hook prints `first-1` and `second-2` (its command line, also shown, has neither).
    b.wait_text("first-1", WAIT);
    let before = b.text();
    assert!(!before.contains("second-2"), "{before}");
    b.screenshot("job-running");
    std::fs::write(env.project.join("go"), "").unwrap();
    let after = b.wait_text("second-2", WAIT);
    assert!(after.contains("Output"), "{after}");
    assert!(
        eventually(WAIT, || up.0.try_wait().unwrap().is_some()),
        "`up` did not finish"
    );
    assert!(up.0.wait().unwrap().success(), "`up` failed");
    b.wait_text("success", WAIT);
    b.screenshot("job-finished");
    // Reloaded, the finished job shows the commit its operations recorded.
    b.go(&b.url());
    b.wait_text(&commit, WAIT);

    // The app page: the deployment with its commit and tag.
    let app = format!("{base}projects/browser/apps/catalog");
    b.go(&app);
    let text = b.wait_text("Deployment v1", WAIT);
    assert!(
        text.contains(&commit)
            && text.contains("v0.1.0")
            && text.contains("catalog: first release"),
        "{text}"
    );
    b.screenshot("app");
    // Readable at 360 px: nothing wider than the window.
    b.size(360, 800);
    let fits = b.js("return document.documentElement.scrollWidth <= window.innerWidth + 1");
    b.screenshot("app-360");
    assert_eq!(
        fits,
        serde_json::Value::Bool(true),
        "the app page scrolls sideways at 360 px"
    );
    b.size(1200, 900);
    keyboard_to_deployments(&b, &app);

    // Logs: a line the app writes after the page loaded shows up; paused lines wait.
    b.go(&format!("{app}/logs"));
    b.wait_text("Logs", WAIT);
    let marker = format!("written-after-load-{}", std::process::id());
    std::fs::write(env.project.join("say"), format!("{marker}\n")).unwrap();
    b.wait_text(&marker, WAIT);
    b.click("button[data-toggle-pause]");
    std::fs::write(env.project.join("say"), "while-paused\n").unwrap();
    assert!(
        eventually(WAIT, || !env.project.join("say").exists()),
        "the app never read `say`"
    );
    // The app has printed it; give the line time to reach the page, where it must wait.
    assert!(!eventually(Duration::from_secs(1), || b
        .text()
        .contains("while-paused")));
    b.click("button[data-toggle-pause]");
    b.wait_text("while-paused", WAIT);
    b.screenshot("logs");

    // Exec: `echo hi` typed into the terminal prints `hi` on a line of its own.
    b.go(&format!("{app}/exec"));
    b.wait_text("Connected to instance", WAIT);
    b.type_into(".xterm-helper-textarea", "echo hi\n");
    let hi = eventually(WAIT, || {
        b.js("return Array.from(document.querySelectorAll('.xterm-rows > div')).some(d => d.textContent.trim() === 'hi')")
            == serde_json::Value::Bool(true)
    });
    b.screenshot("exec");
    assert!(hi, "the terminal never showed `hi`:\n{}", b.text());

    // A second deployment (v1 kept), and a runner that takes the browser's jobs.
    env.ok(&["up", "-prune=false"]);
    let _runner = Bg(env
        .cmd(&["runner", "agent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    b.go(&format!("{app}/deployments"));
    b.wait_text("v2", WAIT);
    // Roll back: release v1 (the last row) from the browser; the job page follows it.
    b.click("main table tbody tr:last-child form button");
    b.wait_text("release", WAIT);
    b.wait_text("success", WAIT);
    b.screenshot("rollback-job");
    b.go(&app);
    b.wait_text("Release v", WAIT);
    let pointed = b.js("return document.querySelector('section[aria-label=\"Latest Release\"] a[href*=\"/deployments/\"]').textContent");
    assert_eq!(
        pointed,
        serde_json::Value::String("v1".into()),
        "{}",
        b.text()
    );
    b.screenshot("app-rolled-back");
    // Destroy v2 (now not released): its row looks destroyed.
    b.go(&format!("{app}/deployments"));
    b.click("main table tbody tr:first-child form:nth-of-type(2) button");
    b.wait_text("destroy", WAIT);
    b.wait_text("success", WAIT);
    b.go(&format!("{app}/deployments"));
    b.wait_text("destroyed", WAIT);
    let row = b.js("return document.querySelector('main table tbody tr:first-child').className");
    assert_eq!(row, serde_json::Value::String("destroyed".into()));
    b.screenshot("deployments-destroyed");

    b.go(&format!("{base}runners"));
    b.wait_text("Runners", WAIT);
    b.screenshot("runners");

    // Sign out: back to the sign-in page, and pages need signing in again.
    b.go(&base);
    b.click("form[action='/signout'] button");
    b.wait_text("Sign in", WAIT);
    b.go(&app);
    b.wait_text("Sign in", WAIT);
    b.screenshot("signin");
    drop(b);

    // Dark by `prefers-color-scheme`: a browser that prefers dark gets a dark page.
    let dark = Browser::start_with(
        &chromium,
        &driver,
        &env.home.path().join("chromium-dark"),
        &["--force-dark-mode"],
    );
    dark.go(&sign_in_link(&env));
    dark.wait_text("Projects", WAIT);
    dark.go(&app);
    dark.wait_text("Deployment v", WAIT);
    let bg = dark.js("return getComputedStyle(document.body).backgroundColor");
    dark.screenshot("app-dark");
    assert_eq!(bg, serde_json::Value::String("rgb(20, 21, 24)".into()));
}

/// Keyboard only: the first Tab reaches the skip link, every focused control shows a focus
/// ring, and Tab + Enter on the "Deployments" link opens that list.
fn keyboard_to_deployments(b: &Browser, app: &str) {
    b.go(app);
    b.wait_text("Deployment v", WAIT);
    b.keys("\t");
    let first = b.js("return document.activeElement.textContent");
    assert_eq!(first, serde_json::Value::String("Skip to content".into()));
    let mut reached = false;
    for _ in 0..40 {
        let ring = b.js("return getComputedStyle(document.activeElement).outlineStyle");
        assert_ne!(
            ring,
            serde_json::Value::String("none".into()),
            "no focus ring on {}",
            b.js("return document.activeElement.outerHTML")
        );
        if b.js("return document.activeElement.textContent")
            == serde_json::Value::String("Deployments".into())
        {
            reached = true;
            break;
        }
        b.keys("\t");
    }
    assert!(reached, "Tab never reached the Deployments link");
    b.keys("\n");
    b.wait_text("Deployments", WAIT);
    assert!(b.url().ends_with("/deployments"), "{}", b.url());
    b.screenshot("keyboard-deployments");
}
