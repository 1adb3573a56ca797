//! What users read, pinned: the real binary's output with paths, ids and times filtered.

use crate::common::TestEnv;

/// Replaces what changes between runs: the temporary home, ULIDs, relative times.
fn filter(env: &TestEnv, text: &str) -> String {
    let home = env.home.path().display().to_string();
    let text = text.replace(&home, "[HOME]");
    let ulid = regex::Regex::new(r"\b[0-9A-HJKMNP-TV-Z]{26}\b").unwrap();
    let short = regex::Regex::new(r"\b01[0-9A-HJKMNP-TV-Z]{8,14}\b").unwrap();
    let ago = regex::Regex::new(r"\b\d+[smhd] ago\b").unwrap();
    let took = regex::Regex::new(r"\(in \d+\.\ds").unwrap();
    let text = took.replace_all(&text, "(in [DURATION]");
    let text = ulid.replace_all(&text, "[ID]");
    let text = short.replace_all(&text, "[ID]");
    ago.replace_all(&text, "[AGO]").into_owned()
}

const APP: &str = r#"project = "snap"

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

#[test]
fn up_output() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    let r = env.ok(&["up"]);
    insta::assert_snapshot!("up_stdout", filter(&env, &r.stdout()));
    insta::assert_snapshot!("up_stderr_first_run", filter(&env, &r.stderr()));
    env.ok(&["up"]);
    let r = env.ok(&["deployment", "list"]);
    insta::assert_snapshot!("deployment_list", filter(&env, &r.stdout()));
    let r = env.ok(&["release", "list"]);
    insta::assert_snapshot!("release_list", filter(&env, &r.stdout()));
}

#[test]
fn validate_reports_every_error_at_once() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        r#"project = "snap"
lables  = { team = "web" }

variable "replicas" {
  type    = number
  default = "three"
}

app "web" {
  build {
    use "docker" {}
  }
  deploy {
    use "docker" {
      service_port = var.replicaz
    }
  }
}
"#,
    );
    let r = env.run(&["validate"]);
    assert_eq!(r.code(), Some(1));
    insta::assert_snapshot!("validate_errors", filter(&env, &r.stderr()));
}

#[test]
fn help_lists_the_commands() {
    let env = TestEnv::new();
    let r = env.ok(&["--help"]);
    insta::assert_snapshot!("help", r.stdout());
}
