//! An external plugin built from `examples/plugin-hello` used through the real CLI exactly like
//! a built-in: found in the project, checksum verified, its mapper joining `null` to `hello`.

use std::path::PathBuf;

use crate::common::TestEnv;

fn plugin_binary() -> PathBuf {
    let p = crate::common::wayline_bin().with_file_name("wayline-plugin-hello");
    assert!(
        p.exists(),
        "`{}` is missing: build the workspace first (`cargo build --workspace`)",
        p.display()
    );
    p
}

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn config(checksum: &str, extra: &str) -> String {
    format!(
        r#"project = "ext"

plugin "hello" {{
  type {{
    deploy = true
    mapper = true
  }}
  checksum = "{checksum}"
}}

app "web" {{
  build {{
    use "null" {{}}
  }}
  deploy {{
    use "hello" {{
      path = "greeting.txt"{extra}
    }}
  }}
}}
"#
    )
}

fn install(env: &TestEnv) -> String {
    let dir = env.project.join(".wayline/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join("wayline-plugin-hello");
    std::fs::copy(plugin_binary(), &dest).unwrap();
    sha256(&dest)
}

#[test]
fn an_external_plugin_deploys_and_destroys_like_a_builtin() {
    let env = TestEnv::new();
    let sum = install(&env);
    env.write("wayline.hcl", &config(&sum, ""));
    let r = env.ok(&["up"]);
    assert!(
        r.stdout()
            .contains("Mapping wayline.null.Value with null-to-greeting"),
        "{}",
        r.all()
    );
    assert_eq!(
        std::fs::read_to_string(env.project.join("greeting.txt")).unwrap(),
        "hello from web v1\n"
    );
    let r = env.ok(&["plugin", "list"]);
    assert!(
        r.stdout()
            .lines()
            .any(|l| l.starts_with("hello") && l.contains("external")),
        "{}",
        r.stdout()
    );

    env.ok(&["destroy", "-auto-approve"]);
    assert!(
        !env.project.join("greeting.txt").exists(),
        "destroy removes what the plugin wrote"
    );
}

#[test]
fn a_crashing_plugin_fails_with_its_last_words_and_a_bad_checksum_is_refused() {
    let env = TestEnv::new();
    let sum = install(&env);
    env.write("wayline.hcl", &config(&sum, "\n      crash = true"));
    let r = env.run(&["up"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.stderr().contains("deploy failed: plugin `hello` exited during `deploy` (exit status: 3); its last stderr lines:"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr().contains("hello: crashing on purpose"),
        "{}",
        r.all()
    );

    let wrong = "0".repeat(64);
    env.write("wayline.hcl", &config(&wrong, ""));
    let r = env.run(&["up"]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.stderr().contains("checksum mismatch for plugin `hello`"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr()
            .contains(&format!("expected sha256 {wrong}, got {sum}")),
        "{}",
        r.all()
    );
}
