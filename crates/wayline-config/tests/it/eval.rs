//! Evaluation: variable precedence and sources, sensitive values, stage scoping, `use` bodies,
//! locations for plugin decode errors, config vars, git functions, fmt and init.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use serde_json::json;
use wayline_config::{
    ConfigValue, EvalContext, EvalInputs, Format, STARTER_HCL, VariableSource, format_source,
    load_file, parse_str,
};

const VARS: &str = r#"
project = "vars"

variable "a" {
  default = "from-default"
}
variable "b" {
  default = "from-default"
}
variable "c" {
  default = "from-default"
}
variable "d" {
  default = "from-default"
  env     = ["LEGACY_D"]
}
variable "e" {
  default = "from-default"
}
variable "port" {
  type    = number
  default = 1
}
variable "token" {
  default   = "t0ps3cret"
  sensitive = true
}
variable "pin" {
  type      = number
  default   = 1234
  sensitive = true
}
"#;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn precedence_default_server_file_env_varfile_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let path = write(d, "wayline.hcl", VARS);
    write(
        d,
        "a.auto.wlvars",
        "b = \"from-auto-file\"\nc = \"from-auto-file\"\n",
    );
    write(d, "z.auto.wpvars.json", r#"{"e": "from-auto-json"}"#);
    let var_file = write(d, "prod.wlvars", "c = \"from-var-file\"\nport = 8080\n");
    let config = load_file(&path).unwrap();
    let env: HashMap<String, String> = [
        ("WL_VAR_c".to_owned(), "from-env".to_owned()),
        ("LEGACY_D".to_owned(), "from-env-list".to_owned()),
    ]
    .into();
    let inputs = EvalInputs {
        server_vars: vec![
            ("a".into(), "from-server".into()),
            ("b".into(), "from-server".into()),
        ],
        env,
        auto_var_files: true,
        var_files: vec![var_file],
        cli_vars: vec!["e=from-cli".into()],
        salt: "cookie".into(),
        ..Default::default()
    };
    let ctx = EvalContext::new(&config, &inputs).unwrap();
    let got: Vec<(String, serde_json::Value, VariableSource)> = ctx
        .variables()
        .iter()
        .map(|v| (v.name.clone(), v.value_json.clone(), v.source))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a".into(), json!("from-server"), VariableSource::Server),
            ("b".into(), json!("from-auto-file"), VariableSource::File),
            ("c".into(), json!("from-var-file"), VariableSource::File),
            ("d".into(), json!("from-env-list"), VariableSource::Env),
            ("e".into(), json!("from-cli"), VariableSource::Cli),
            ("port".into(), json!(8080), VariableSource::File),
            ("token".into(), json!("t0ps3cret"), VariableSource::Default),
            ("pin".into(), json!(1234), VariableSource::Default),
        ]
    );
    let token = &ctx.variables()[6];
    assert_eq!(
        token.hash.as_deref(),
        Some(wayline_config::sensitive_hash("cookie", &json!("t0ps3cret")).as_str())
    );
    assert!(!token.display_value().contains("t0ps3cret"));
    assert!(token.display_value().starts_with("(sensitive, sha256:"));
}

#[test]
fn bad_inputs_are_all_reported_with_where_they_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let path = write(d, "wayline.hcl", VARS);
    let var_file = write(d, "bad.wlvars", "# comment\nport = \"many\"\nprot = 2\n");
    let config = load_file(&path).unwrap();
    let inputs = EvalInputs {
        env: [("WL_VAR_port".to_owned(), "x1".to_owned())].into(),
        var_files: vec![var_file.clone()],
        cli_vars: vec![
            "port=abc".into(),
            "nope".into(),
            "tokn=1".into(),
            "pin=my-secret-pin".into(),
        ],
        ..Default::default()
    };
    let err = EvalContext::new(&config, &inputs).unwrap_err();
    let msgs: Vec<String> = err
        .iter()
        .map(|d| {
            let at = d
                .location
                .as_ref()
                .map_or("-".to_owned(), |l| format!("{}:{}", l.line, l.column));
            format!(
                "{at} {}{}",
                d.message,
                d.help.as_ref().map_or(String::new(), |h| format!(" ({h})"))
            )
        })
        .collect();
    assert_eq!(
        msgs,
        vec![
            "2:8 in variable file: invalid value for variable `port` (number): expected a number, found string \"many\"",
            "3:8 in variable file: undeclared variable `prot` (did you mean `port`?)",
            // Values from flags and the environment point at the declaration they fail (so
            // every `-json` diagnostic has a line and column), and no "has no value" follows.
            "20:10 environment variable `WL_VAR_port`: invalid value for variable `port` (number): expected a number, found string \"x1\"",
            "20:10 `-var port=…`: invalid value for variable `port` (number): expected a number, found string \"abc\"",
            "28:10 `-var pin=…`: invalid value for variable `pin` (number): the value does not have this type (not shown: sensitive)",
            "- `-var nope`: expected NAME=VALUE",
            "- `-var tokn=…`: undeclared variable `tokn` (did you mean `token`?)",
        ]
    );
}

const APP: &str = r#"
project = "p"

variable "replicas" {
  type    = number
  default = 2
}

app "web" {
  labels = { "env" = "prod", "region" = "us" }

  build {
    use "docker" {}
  }

  deploy {
    use "docker" {
      image    = "${artifact.image}:${artifact.tag}"
      replicas = var.replicas
      auth {
        username = "u"
        password = "p"
      }
      port "http" {
        number = 80
      }
      volume {
        path = "/a"
      }
      volume {
        path = "/b"
      }
      env = entrypoint.env
    }

    workspace "staging" {
      use "docker" {
        image = "staging"
      }
    }

    label "env == prod and region in [\"eu\"]" {
      use "kubernetes" {}
    }
  }
}
"#;

#[test]
fn evaluate_use_builds_json_and_locates_fields() {
    let config = parse_str(APP, "wayline.hcl", Format::Hcl).unwrap();
    let app = config.app("web").unwrap();
    let ctx = EvalContext::new(
        &config,
        &EvalInputs {
            app: Some("web".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let extra = json!({"artifact": {"image": "img", "tag": "v1"}, "entrypoint": {"env": {"WAYLINE_X": "1"}}});
    let u = app.deploy.evaluate_use(&ctx, &extra).unwrap();
    assert_eq!(u.plugin, "docker");
    assert_eq!(
        u.body,
        json!({
            "image": "img:v1",
            "replicas": 2,
            "auth": {"username": "u", "password": "p"},
            "port": {"http": {"number": 80}},
            "volume": [{"path": "/a"}, {"path": "/b"}],
            "env": {"WAYLINE_X": "1"},
        })
    );
    let at = |p: &[&str]| u.location_of(p).map(|l| (l.line, l.column));
    assert_eq!(at(&["auth", "username"]), Some((21, 9)));
    assert_eq!(at(&["volume", "1", "path"]), Some((31, 9)));
    assert_eq!(at(&["port", "http", "number"]), Some((25, 9)));
    assert_eq!(
        at(&["env", "WAYLINE_X"]),
        Some((33, 13)),
        "inside a value: the attribute's value"
    );
    assert_eq!(
        at(&["nothing"]),
        Some((17, 9)),
        "unknown paths fall back to the use block"
    );

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Docker {
        image: String,
        replicas: u32,
    }
    let err = u.decode::<Vec<String>>().unwrap_err();
    assert!(
        err.message
            .starts_with("invalid `use \"docker\"` configuration: invalid type: map"),
        "{}",
        err.message
    );
    let ok: Docker = u.decode().unwrap();
    assert_eq!(ok.replicas, 2);

    // Without artifact in scope the error says where it exists and points at it.
    let err = app.deploy.evaluate_use(&ctx, &json!({})).unwrap_err();
    let first = err.iter().next().unwrap();
    assert_eq!(
        first.message,
        "`artifact` is not available here; it exists in registry, deploy and release"
    );
    assert_eq!(
        first.location.as_ref().map(|l| (l.line, l.column)),
        Some((18, 21))
    );
}

#[test]
fn workspace_and_label_scopes_pick_the_use() {
    let config = parse_str(APP, "wayline.hcl", Format::Hcl).unwrap();
    let app = config.app("web").unwrap();
    let pick = |ws: &str, labels: &[(&str, &str)]| {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let ctx = EvalContext::new(
            &config,
            &EvalInputs {
                app: Some("web".into()),
                workspace: ws.into(),
                labels,
                ..Default::default()
            },
        )
        .unwrap();
        let u = app
            .deploy
            .evaluate_use(
                &ctx,
                &json!({"artifact": {"image": "i", "tag": "t"}, "entrypoint": {"env": {}}}),
            )
            .unwrap();
        (u.plugin, u.body.get("image").cloned())
    };
    assert_eq!(pick("default", &[]), ("docker".into(), Some(json!("i:t"))));
    assert_eq!(
        pick("staging", &[]),
        ("docker".into(), Some(json!("staging")))
    );
    assert_eq!(
        pick("staging", &[("region", "eu")]),
        ("kubernetes".into(), None)
    );
}

#[test]
fn unknown_app_suggests_a_name() {
    let config = parse_str(APP, "wayline.hcl", Format::Hcl).unwrap();
    let err = EvalContext::new(
        &config,
        &EvalInputs {
            app: Some("wbe".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "error: no app named `wbe` in `wayline.hcl`\n  = help: did you mean `web`?\n"
    );
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn git_functions_in_a_real_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    git(d, &["init", "-q", "-b", "main"]);
    let path = write(
        d,
        "wayline.hcl",
        r#"
project = "g"

app "web" {
  build {
    use "docker" {
      pretty = gitrefpretty()
      hash   = gitrefhash()
      tag    = gitreftag()
      origin = gitremoteurl("origin")
      now    = timestamp()
    }
  }
  deploy {
    use "docker" {}
  }
}
"#,
    );
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "init"]);
    git(d, &["tag", "v0.1.0"]);
    git(
        d,
        &["remote", "add", "origin", "git@example.com:acme/g.git"],
    );
    let config = load_file(&path).unwrap();
    let ctx = EvalContext::new(
        &config,
        &EvalInputs {
            app: Some("web".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let u = config
        .app("web")
        .unwrap()
        .build
        .evaluate_use(&ctx, &json!({}))
        .unwrap();
    let hash = wayline_config::git::ref_hash(d).unwrap();
    assert_eq!(u.body["pretty"], json!("v0.1.0"));
    assert_eq!(u.body["hash"], json!(hash));
    assert_eq!(u.body["tag"], json!("v0.1.0"));
    assert_eq!(u.body["origin"], json!("git@example.com:acme/g.git"));
    let now = u.body["now"].as_str().unwrap();
    assert!(
        now.len() >= 20 && now.contains('T') && now.ends_with('Z'),
        "{now}"
    );

    std::fs::write(d.join("new.txt"), "dirty").unwrap();
    let u = config
        .app("web")
        .unwrap()
        .build
        .evaluate_use(&ctx, &json!({}))
        .unwrap();
    assert!(
        u.body["pretty"]
            .as_str()
            .unwrap()
            .starts_with("v0.1.0_CHANGES_")
    );
}

#[test]
fn config_vars_keep_scopes_and_dynamic_sources() {
    let config = load_file(super::fixtures_dir().join("good/config-scopes.hcl")).unwrap();
    let ctx = EvalContext::new(
        &config,
        &EvalInputs {
            app: Some("api".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let vars = ctx.config_vars().unwrap();
    let find = |n: &str| vars.iter().find(|v| v.name == n).unwrap();
    assert_eq!(
        find("DATABASE_URL").value,
        ConfigValue::Static("postgres://app@db.internal/app".into())
    );
    assert!(
        matches!(&find("db_password").value, ConfigValue::Dynamic { from, .. } if from == "vault")
    );
    assert!(find("db_password").internal);
    assert_eq!(
        find("CDN").label_selector.as_deref(),
        Some(r#"region in ["eu", "us"] and not tier == "free""#)
    );
    assert!(find("AWS_PROFILE").runner);
    assert!(find("config/app.json").file);
    assert_eq!(ctx.file_change_signal().as_deref(), Some("SIGHUP"));
}

#[test]
fn starter_file_is_valid_and_formatted() {
    let config = parse_str(STARTER_HCL, "wayline.hcl", Format::Hcl).unwrap();
    assert_eq!(config.apps.len(), 1);
    let diags = EvalContext::validate(&config, &EvalInputs::default());
    assert!(diags.is_empty(), "{diags}");
    assert_eq!(format_source(STARTER_HCL).unwrap(), STARTER_HCL);
}

#[test]
fn fmt_is_idempotent_and_preserves_meaning_on_every_fixture() {
    let dir = super::fixtures_dir().join("good");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "hcl") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let once = format_source(&src).unwrap_or_else(|d| panic!("{}: {d}", path.display()));
        let twice = format_source(&once).unwrap();
        assert_eq!(once, twice, "{}", path.display());
        for line in src.lines().filter(|l| l.trim_start().starts_with('#')) {
            assert!(
                once.contains(line.trim()),
                "comment lost in {}: {line}",
                path.display()
            );
        }
    }
}
