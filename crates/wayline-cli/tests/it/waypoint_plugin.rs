//! A Waypoint-protocol plugin (`waypoint-plugin-wltest`, the Rust test plugin of
//! `wayline-waypoint`) used through the real CLI: found in `.waypoint/plugins`, listed with its
//! provider, documented, its config validated, built and deployed by `up` with its terminal
//! output, its deployment's health in `status`, and removed by `destroy`.

use std::path::PathBuf;

use crate::common::TestEnv;

fn plugin_binary() -> PathBuf {
    let p = crate::common::wayline_bin().with_file_name("waypoint-plugin-wltest");
    assert!(
        p.exists(),
        "`{}` is missing: build the workspace first (`cargo build --workspace`)",
        p.display()
    );
    p
}

fn install(env: &TestEnv) -> PathBuf {
    let dir = env.project.join(".waypoint/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join("waypoint-plugin-wltest");
    std::fs::copy(plugin_binary(), &dest).unwrap();
    dest
}

fn config(deploy_extra: &str) -> String {
    format!(
        r#"project = "wp"

app "web" {{
  build {{
    use "wltest" {{
      message = "hello"
    }}
  }}
  deploy {{
    use "wltest" {{
      message = "deployed"{deploy_extra}
    }}
  }}
}}
"#
    )
}

#[test]
fn a_waypoint_plugin_runs_up_status_and_destroy_like_a_native_one() {
    let env = TestEnv::new();
    let path = install(&env);
    env.write("waypoint.hcl", &config(""));

    let r = env.ok(&["plugin", "list"]);
    let row = r
        .stdout()
        .lines()
        .find(|l| l.starts_with("wltest") && l.contains("platform"))
        .map(str::to_owned);
    assert!(
        row.as_deref()
            .is_some_and(|l| l.contains(&format!("Waypoint plugin `{}`", path.display()))),
        "{}",
        r.all()
    );
    let r = env.ok(&["plugin", "docs", "-plugin", "wltest"]);
    assert!(
        r.stdout()
            .contains("Deploys a test artifact as a file in the source directory."),
        "{}",
        r.all()
    );
    assert!(
        r.stdout().contains("Exit during deploy (tests)."),
        "{}",
        r.all()
    );
    env.ok(&["validate"]);

    let r = env.ok(&["up"]);
    assert!(
        r.stdout().contains("Built \"hello\" for web"),
        "the plugin's status line: {}",
        r.all()
    );
    let file = env.project.join("wltest-v1.txt");
    let body = std::fs::read_to_string(&file).unwrap();
    assert!(
        body.starts_with("deployed\nhello\nWAYPOINT_SERVER_ADDR="),
        "{body}"
    );
    assert!(
        !body.contains("WAYPOINT_DEPLOYMENT_ID=\n"),
        "the deployment id reaches the plugin: {body}"
    );

    let status = env.json(&["status", "-json"]);
    assert_eq!(status[0]["health"], "ready", "{status}\n{}", r.all());

    env.ok(&["destroy", "-auto-approve"]);
    assert!(!file.exists(), "destroy removes what the plugin made");
}

#[test]
fn validate_checks_a_waypoint_plugins_config_and_a_plugin_with_no_provider_is_named() {
    let env = TestEnv::new();
    install(&env);
    env.write("waypoint.hcl", &config("\n      mesage = \"x\""));
    let r = env.run(&["validate"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.all()
            .contains("unknown attribute `mesage` in `use \"wltest\"`"),
        "{}",
        r.all()
    );

    // A Waypoint plugin nobody provides keeps its own error.
    env.write(
        "waypoint.hcl",
        &config("").replace(
            "deploy {\n    use \"wltest\"",
            "deploy {\n    use \"kubernetes\"",
        ),
    );
    let r = env.run(&["validate"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.all()
            .contains("`kubernetes` is a Waypoint plugin; Wayline does not provide it natively"),
        "{}",
        r.all()
    );

    // A crash during deploy names the plugin, the function and its last log lines.
    env.write("waypoint.hcl", &config("\n      crash = true"));
    let r = env.run(&["up"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.all().contains(
            "plugin `wltest` exited during `deploy` (exit status: 3); its last stderr lines:"
        ),
        "{}",
        r.all()
    );
    assert!(
        r.all().contains("[ERROR] wltest: crashing on purpose"),
        "{}",
        r.all()
    );
}

#[test]
fn a_native_docker_image_reaches_a_waypoint_platform_through_both_sides_mappers() {
    if !crate::common::docker_engine("a_native_docker_image_reaches_a_waypoint_platform") {
        return;
    }
    let env = TestEnv::new();
    install(&env);
    // docker-ref (native) → wayline.docker.Image → (Wayline's docker mapper)
    // hashicorp.waypoint.builtin.docker.Image → (the plugin's own mapper) wltest.Artifact.
    env.write(
        "waypoint.hcl",
        &config("").replace(
            "use \"wltest\" {\n      message = \"hello\"\n    }",
            "use \"docker-ref\" {\n      image = \"wayline-e2e/none\"\n      tag = \"7\"\n    }",
        ),
    );
    env.ok(&["validate"]);
    let r = env.ok(&["up"]);
    let body = std::fs::read_to_string(env.project.join("wltest-v1.txt")).unwrap();
    assert!(
        body.starts_with("deployed\nimage wayline-e2e/none:7\n"),
        "{body}\n{}",
        r.all()
    );
    env.ok(&["destroy", "-auto-approve"]);
}
