//! The whole lifecycle on the embedded default server with the `null` plugins: up, lists,
//! rollback, release of a chosen deployment, destroy.

use crate::common::TestEnv;

const APP: &str = r#"project = "demo"

app "api" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {}
  }
  release {
    use "null" {
      url = "http://api.example.test"
    }
  }
}
"#;

fn live_deployment(env: &TestEnv) -> String {
    let v = env.json(&["release", "list", "-json"]);
    let live: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["live"] == true)
        .collect();
    assert_eq!(live.len(), 1, "exactly one live release: {v}");
    live[0]["deployment_id"].as_str().unwrap().to_owned()
}

#[test]
fn up_starts_the_embedded_server_and_records_everything() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    let r = env.ok(&["up"]);
    assert!(
        r.stderr().contains("Started your local Wayline server"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout().contains("Release URL: http://api.example.test"),
        "{}",
        r.all()
    );
    // Later commands reuse it without starting another.
    let r = env.ok(&["up"]);
    assert!(
        !r.stderr().contains("Started your local Wayline server"),
        "{}",
        r.all()
    );

    let builds = env.json(&["artifact", "list-builds", "-json"]);
    assert_eq!(builds.as_array().unwrap().len(), 2);
    let deps = env.json(&["deployment", "list", "-json"]);
    let seqs: Vec<u64> = deps
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 1]);
    assert!(deps[0]["job_id"].as_str().is_some_and(|j| !j.is_empty()));
    let jobs = env.json(&["job", "list", "-json"]);
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["state"] == "success"),
        "{jobs}"
    );
}

#[test]
fn rollback_and_release_of_a_chosen_deployment() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    env.ok(&["up"]);
    env.ok(&["up", "-prune=false"]);
    let deps = env.json(&["deployment", "list", "-json"]);
    let v1 = deps
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["sequence"] == 1)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v2 = deps
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["sequence"] == 2)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(live_deployment(&env), v2);

    env.ok(&["rollback"]);
    assert_eq!(live_deployment(&env), v1);

    env.ok(&["release", "-deployment", "v2"]);
    assert_eq!(live_deployment(&env), v2);

    env.ok(&["rollback", "-to", "v1"]);
    assert_eq!(live_deployment(&env), v1);
}

#[test]
fn up_without_release_and_pruning() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    env.ok(&["up"]);
    env.ok(&["up"]);
    // Default retain 1: after v3 is released, v1 is pruned and v2 kept, in a job of its own
    // that `up` names and does not wait for.
    let r = env.ok(&["up"]);
    let prune_job = r
        .stdout()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Pruning deployment v1 continues in the background in job ")
        })
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("up names its prune job:\n{}", r.all()))
        .to_owned();
    let status = env.json(&["status", "-json"]);
    assert!(status[0]["pruning"].is_array(), "{status}");
    let followed = env.ok(&["job", "get-stream", &prune_job]);
    assert!(
        followed.stdout().contains("Pruning deployment v1"),
        "{}",
        followed.all()
    );
    let status = env.json(&["status", "-json"]);
    assert_eq!(status[0]["pruning"], serde_json::json!([]), "{status}");
    let deps = env.json(&["deployment", "list", "-json"]);
    let state = |seq: u64| {
        deps.as_array()
            .unwrap()
            .iter()
            .find(|d| d["sequence"] == seq)
            .unwrap()["physical_state"]
            .clone()
    };
    assert_eq!(state(1), "destroyed");
    assert_eq!(state(2), "created");
    assert_eq!(state(3), "created");

    let r = env.ok(&["up", "-release=false"]);
    assert!(!r.stdout().contains("Release URL"), "{}", r.all());
    let deps = env.json(&["deployment", "list", "-json"]);
    assert_eq!(deps[0]["sequence"], 4);
    assert_ne!(live_deployment(&env), deps[0]["id"].as_str().unwrap());
}

#[test]
fn destroy_removes_every_deployment() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    env.ok(&["up"]);
    env.ok(&["up"]);
    env.ok(&["destroy", "-auto-approve"]);
    let deps = env.json(&["deployment", "list", "-json"]);
    assert!(
        deps.as_array()
            .unwrap()
            .iter()
            .all(|d| d["physical_state"] == "destroyed"),
        "{deps}"
    );
}

#[test]
fn a_failing_plugin_fails_the_job_with_its_message() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        &APP.replacen(
            "use \"null\" {}",
            "use \"null\" {\n      fail = \"no space left on the build host\"\n    }",
            1,
        ),
    );
    let r = env.run(&["up"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.stderr()
            .contains("build failed: no space left on the build host"),
        "{}",
        r.all()
    );
    let builds = env.json(&["artifact", "list-builds", "-json"]);
    assert_eq!(builds[0]["state"], "error");
    assert_eq!(builds[0]["error"], "no space left on the build host");
}

#[test]
fn unknown_plugin_and_bad_attribute_point_at_the_file() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        &APP.replacen("use \"null\" {}", "use \"nul\" {}", 1),
    );
    let r = env.run(&["up"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.stderr().contains("unknown builder plugin `nul`")
            && r.stderr().contains("wayline.hcl:5:9"),
        "{}",
        r.all()
    );
    assert!(r.stderr().contains("did you mean `null`?"), "{}", r.all());

    env.write(
        "wayline.hcl",
        &APP.replacen(
            "use \"null\" {}",
            "use \"null\" {\n      colour = \"blue\"\n    }",
            1,
        ),
    );
    let r = env.run(&["up"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(r.stderr().contains("wayline.hcl:6:7"), "{}", r.all());
    assert!(r.stderr().contains("colour"), "{}", r.all());
}

#[test]
fn up_without_app_runs_every_app_of_a_monorepo() {
    let env = TestEnv::new();
    let two = APP.to_owned()
        + &APP
            .replace("project = \"demo\"\n", "")
            .replace("app \"api\"", "app \"worker\"");
    env.write("wayline.hcl", &two);
    let r = env.ok(&["up"]);
    assert!(
        r.stdout().contains("Deploying api (project demo)"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout().contains("Deploying worker (project demo)"),
        "{}",
        r.all()
    );
    // A command about one deployment needs one app.
    let r = env.run(&["release", "list"]);
    assert!(
        r.stderr()
            .contains("declares several apps (api, worker); choose one with `-app <name>`"),
        "{}",
        r.all()
    );
    let v = env.json(&["release", "list", "-json", "-app", "worker"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
}
