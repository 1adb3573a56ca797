//! Commands that need no server: version, validate, fmt, init, bad flags.

use crate::common::TestEnv;

#[test]
fn version_prints_the_version_and_commit() {
    let env = TestEnv::new();
    let expected = regex::Regex::new(&format!(
        r"^wayline {} \(commit [0-9a-f]{{12}}\)\n$",
        regex::escape(env!("CARGO_PKG_VERSION"))
    ))
    .unwrap();
    for args in [
        &["version"][..],
        &["--version"],
        &["-version"],
        &["-v"],
        &["-V"],
    ] {
        let r = env.ok(args);
        assert!(
            expected.is_match(&r.stdout()),
            "`{}`: {}",
            args.join(" "),
            r.all()
        );
    }
}

#[test]
fn single_dash_flags_work_like_waypoint() {
    let env = TestEnv::new();
    let r = env.run(&["validate", "-var", "x=1"]);
    // No config here: the error names the file it looked for, so the flag itself parsed.
    assert!(!r.success());
    assert!(
        r.stderr().contains("no `wayline.hcl` or `waypoint.hcl` in"),
        "{}",
        r.all()
    );
}

#[test]
fn init_writes_a_starter_file_that_validates() {
    let env = TestEnv::new();
    let r = env.ok(&["init", "-no-server"]);
    assert!(r.stdout().contains("Wrote a starter"), "{}", r.all());
    assert!(env.project.join("wayline.hcl").exists());
    let r = env.ok(&["validate"]);
    assert!(r.stdout().contains("is valid"), "{}", r.all());
}

#[test]
fn validate_reports_unknown_blocks_with_position_and_suggestion() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        "project = \"p\"\n\napp \"web\" {\n  build {\n    use \"docker\" {}\n  }\n  deplyo {\n    use \"exec\" {}\n  }\n}\n",
    );
    let r = env.run(&["validate"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    let err = r.stderr();
    assert!(err.contains("wayline.hcl:7:3"), "{err}");
    assert!(err.contains("did you mean `deploy`?"), "{err}");
}

#[test]
fn validate_json_output_is_machine_readable() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        "project = \"p\"\napp \"web\" {\n  build {\n    use \"docker\" {}\n  }\n}\n",
    );
    let r = env.run(&["validate", "-json"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).expect("json output");
    assert_eq!(v["valid"], false);
    assert!(
        v["diagnostics"].as_array().is_some_and(|d| !d.is_empty()),
        "{v}"
    );
}

#[test]
fn fmt_check_exits_3_then_fmt_fixes_it() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        "project=\"p\"\napp \"web\" {\nbuild {\nuse \"docker\" {}\n}\ndeploy {\nuse \"exec\" {}\n}\n}\n",
    );
    let r = env.run(&["fmt", "-check"]);
    assert_eq!(r.code(), Some(3), "{}", r.all());
    env.ok(&["fmt"]);
    let r = env.run(&["fmt", "-check"]);
    assert_eq!(r.code(), Some(0), "{}", r.all());
}

#[test]
fn waypoint_hcl_is_found_in_a_parent_directory() {
    let env = TestEnv::new();
    env.write("waypoint.hcl", "project = \"legacy\"\napp \"web\" {\n  build {\n    use \"docker\" {}\n  }\n  deploy {\n    use \"docker\" {}\n  }\n}\n");
    std::fs::create_dir_all(env.project.join("sub/dir")).unwrap();
    let r = env
        .cmd(&["validate"])
        .current_dir(env.project.join("sub/dir"))
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).contains("project `legacy`"));
}

#[test]
fn plugin_docs_come_from_the_components() {
    let env = TestEnv::new();
    let r = env.ok(&["plugin", "list"]);
    for p in ["docker", "exec", "files", "null"] {
        assert!(
            r.stdout().lines().any(|l| l.starts_with(p)),
            "{p} missing:\n{}",
            r.stdout()
        );
    }
    let r = env.ok(&["docs", "-plugin", "docker", "-type", "platform"]);
    assert!(r.stdout().contains("service_port"), "{}", r.stdout());
    let r = env.run(&["docs", "-plugin", "dokcer"]);
    assert!(
        r.stderr()
            .contains("no plugin named `dokcer` (did you mean `docker`?)"),
        "{}",
        r.all()
    );
}

#[test]
fn an_app_that_does_not_exist_gets_a_suggestion() {
    let env = TestEnv::new();
    env.write("wayline.hcl", "project = \"p\"\n\napp \"web\" {\n  build {\n    use \"null\" {}\n  }\n  deploy {\n    use \"null\" {}\n  }\n}\n");
    let r = env.run(&["up", "-app", "wbe"]);
    assert_eq!(r.code(), Some(1));
    assert!(
        r.stderr().contains("there is no app `wbe` in"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr().contains("(did you mean `web`?); apps: web"),
        "{}",
        r.all()
    );
}
