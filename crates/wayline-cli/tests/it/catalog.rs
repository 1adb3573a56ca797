//! What the catalog tells users: short ids that work as input, filters that filter, `status`
//! with the released deployment, provenance of rollbacks, and "destroyed" meaning destroyed.

use crate::common::{TestEnv, git};

const APP: &str = r#"project = "cat"

app "web" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {}
  }
  release {
    use "null" {
      url = "http://web.example.test"
    }
  }
}
"#;

/// The short ids `job list` prints are accepted back; an ambiguous prefix lists candidates.
#[test]
fn short_ids_from_lists_work_as_input() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    env.ok(&["up"]);
    env.ok(&["up", "-prune=false"]);

    let out = env.ok(&["job", "list"]).stdout();
    let short = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(short.len() >= 12 && short.len() < 26, "{out}");
    let r = env.ok(&["job", "inspect", short]);
    assert!(
        r.stdout().contains("State:") && r.stdout().contains("success"),
        "{}",
        r.all()
    );
    env.ok(&["job", "get-stream", short]);

    let out = env.ok(&["deployment", "list"]).stdout();
    let v1_short = out
        .lines()
        .find(|l| l.contains(" v1 "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_owned();
    env.ok(&["release", "-deployment", &v1_short]);
    let releases = env.json(&["release", "list", "-json"]);
    let live = releases
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["live"] == true)
        .unwrap();
    assert!(
        live["deployment_id"]
            .as_str()
            .unwrap()
            .starts_with(&v1_short)
    );
    // `release list` names the deployment by its number, not an id.
    let out = env.ok(&["release", "list"]).stdout();
    assert!(out.lines().nth(1).unwrap().contains(" v1 "), "{out}");

    let r = env.run(&["job", "inspect", "01"]);
    assert!(!r.success());
    assert!(
        r.stderr()
            .contains("`01` is the start of several job ids (01"),
        "{}",
        r.all()
    );
    let r = env.run(&["job", "inspect", "ZZZZ"]);
    assert!(
        r.stderr().contains("job ZZZZ does not exist"),
        "{}",
        r.all()
    );
}

#[test]
fn lists_and_status_filter_by_project_and_work_outside_the_folder() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    env.ok(&["up"]);
    let other = env.project.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("wayline.hcl"), APP.replace("\"cat\"", "\"dog\"")).unwrap();
    let r = env.cmd(&["up"]).current_dir(&other).output().unwrap();
    assert!(r.status.success());

    let jobs = env.json(&["job", "list", "-json", "-p", "dog", "-a", "web"]);
    let projects: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["project"].as_str().unwrap())
        .collect();
    assert!(
        !projects.is_empty() && projects.iter().all(|p| *p == "dog"),
        "{jobs}"
    );
    let jobs = env.json(&["job", "list", "-json", "-p", "cat"]);
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["project"] == "cat"),
        "{jobs}"
    );

    // Outside any project folder, the server knows the project's apps.
    let nowhere = env.home.path().join("nowhere");
    std::fs::create_dir_all(&nowhere).unwrap();
    for args in [
        &["status", "-p", "dog"][..],
        &["deployment", "list", "-p", "dog"],
    ] {
        let out = env.cmd(args).current_dir(&nowhere).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("v1"),
            "`{}`: {text}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `status` shows the released deployment with both numbers, and after `destroy` everything
/// says destroyed; a rollback then says there is nothing live.
#[test]
fn status_follows_the_release_and_destroy_means_destroyed() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    env.ok(&["up"]);
    env.ok(&["up", "-release=false"]);
    let out = env.ok(&["status"]).stdout();
    let row = out.lines().nth(1).unwrap();
    assert!(row.contains("v1 live"), "{out}");
    assert!(row.contains("v1 success (latest v2 not released)"), "{out}");
    env.ok(&["release"]);
    let out = env.ok(&["status"]).stdout();
    assert!(
        out.lines().nth(1).unwrap().contains("v2 live  v2 success"),
        "{out}"
    );

    env.ok(&["destroy", "-auto-approve"]);
    let status = env.json(&["status", "-json"]);
    assert_eq!(status[0]["health"], "destroyed", "{status}");
    let out = env.ok(&["status"]).stdout();
    assert!(
        out.contains("v2 destroyed") && !out.contains("live"),
        "{out}"
    );
    let releases = env.json(&["release", "list", "-json"]);
    assert!(
        releases
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["live"] == false),
        "{releases}"
    );
    let r = env.run(&["rollback"]);
    assert!(!r.success());
    assert!(r.all().contains("nothing is live"), "{}", r.all());
}

/// A release or rollback records the commit of what it deploys, not of the working tree.
#[test]
fn a_rollback_records_the_commit_of_its_artifact() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    git(&env.project, &["init", "-q", "-b", "main"]);
    git(&env.project, &["add", "."]);
    git(&env.project, &["commit", "-q", "-m", "first"]);
    let first = git(&env.project, &["rev-parse", "HEAD"]);
    env.ok(&["up"]);
    env.write("extra.txt", "x");
    git(&env.project, &["add", "."]);
    git(&env.project, &["commit", "-q", "-m", "second"]);
    env.write("dirty.txt", "uncommitted");
    env.ok(&["up", "-prune=false"]);

    let r = env.ok(&["rollback", "-to", "v1", "-json"]);
    let done: serde_json::Value = serde_json::from_str(r.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(done["commit"], first[..12], "{}", r.all());
    let releases = env.json(&["release", "list", "-json"]);
    let live = releases
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["live"] == true)
        .unwrap();
    assert_eq!(live["commit"], first.as_str(), "{releases}");
    assert_eq!(live["dirty"], false, "{releases}");
}
