//! Pipelines: each step a job, in dependency order; a failing step stops the rest.

use crate::common::TestEnv;

const CONFIG: &str = r#"project = "pipe"

app "web" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {}
  }
}

pipeline "ship" {
  step "test" {
    use "exec" {
      command = ["sh", "-c", "echo testing ${app.name} > tested.txt; echo tests passed"]
    }
  }
  step "deploy" {
    use "up" {}
  }
}

pipeline "broken" {
  step "test" {
    use "exec" {
      command = ["sh", "-c", "echo 2 tests failed >&2; exit 4"]
    }
  }
  step "deploy" {
    use "up" {}
  }
}
"#;

#[test]
fn a_pipeline_runs_its_steps_in_order() {
    let env = TestEnv::new();
    env.write("wayline.hcl", CONFIG);
    let r = env.ok(&["pipeline", "list"]);
    assert!(
        r.stdout().contains("ship      deploy  up    test"),
        "{}",
        r.stdout()
    );

    let r = env.ok(&["pipeline", "run", "ship"]);
    let out = r.stdout();
    let test_at = out.find("tests passed").expect("the exec step's output");
    let deploy_at = out
        .find("Release v1 is live")
        .expect("the up step's output");
    assert!(test_at < deploy_at, "steps in order:\n{out}");
    assert!(out.contains("✓ Pipeline ship succeeded."), "{out}");
    assert_eq!(
        std::fs::read_to_string(env.project.join("tested.txt")).unwrap(),
        "testing web\n"
    );
}

#[test]
fn a_failing_step_stops_the_pipeline() {
    let env = TestEnv::new();
    env.write("wayline.hcl", CONFIG);
    let r = env.run(&["pipeline", "run", "broken"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(r.stdout().contains("2 tests failed"), "{}", r.all());
    assert!(
        r.stderr()
            .contains("`sh -c echo 2 tests failed >&2; exit 4` exit status: 4"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr().contains("Pipeline broken stopped at step test"),
        "{}",
        r.all()
    );
    let r = env.ok(&["deployment", "list", "-json"]);
    assert_eq!(r.stdout().trim(), "[]", "the deploy step never ran");

    let r = env.run(&["pipeline", "run", "shp"]);
    assert!(
        r.stderr().contains("there is no pipeline `shp`"),
        "{}",
        r.all()
    );
    assert!(r.stderr().contains("(did you mean `ship`?)"), "{}", r.all());
}
