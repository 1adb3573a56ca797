//! Waypoint files as people wrote them (issue 11 §3): each language form the real-file corpus
//! uses, and the plugin checks of `validate` against a catalog.

use std::sync::Arc;

use serde_json::json;
use wayline_config::{
    ConfigValue, EvalContext, EvalInputs, Format, PluginCatalog, PluginKind, parse_str_for,
    validate_str,
};

/// Every diagnostic as `LINE:COL severity message`.
fn check(src: &str, inputs: &EvalInputs) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    validate_str(src, "waypoint.hcl", Format::Hcl, dir.path(), inputs)
        .iter()
        .map(|d| {
            let at = d
                .location
                .as_ref()
                .map_or("-".to_owned(), |l| format!("{}:{}", l.line, l.column));
            format!("{at} {:?} {}", d.severity, d.message)
        })
        .collect()
}

fn default_inputs() -> EvalInputs {
    EvalInputs {
        workspace: "staging".into(),
        ..Default::default()
    }
}

const APP: &str = r#"
app "web" {
  build {
    use "docker" {}
  }
  deploy {
    use "docker" {}
  }
}
"#;

#[test]
fn project_may_use_workspace_path_and_functions() {
    let src = format!("project = \"${{workspace.name}}-api\"\n{APP}");
    let c = parse_str_for(&src, "waypoint.hcl", Format::Hcl, "staging").unwrap();
    assert_eq!(c.project, "staging-api");
    let src = format!("project = upper(\"hello\")\n{APP}");
    assert_eq!(
        parse_str_for(&src, "w.hcl", Format::Hcl, "default")
            .unwrap()
            .project,
        "HELLO"
    );
    let src =
        format!("project = \"p\"\nrunner {{\n  profile = \"odr-${{workspace.name}}\"\n}}\n{APP}");
    let c = parse_str_for(&src, "w.hcl", Format::Hcl, "prod").unwrap();
    assert_eq!(c.runner.unwrap().profile.as_deref(), Some("odr-prod"));
    // `path.project` is a path, which is no project name (Waypoint >= 0.10 refuses it too).
    let src = format!("project = var.name\n{APP}");
    assert_eq!(
        check(&src, &default_inputs()),
        [
            "1:11 Error `project` may use `workspace.name`, `path.project`, `path.pwd` and functions, not `var`"
        ]
    );
}

#[test]
fn variable_defaults_may_use_the_workspace() {
    let src = format!(
        r#"project = "p"
variable "tag" {{
  default = {{ default = "dev", staging = "rc" }}[workspace.name]
}}
{APP}"#
    );
    let c = parse_str_for(&src, "w.hcl", Format::Hcl, "staging").unwrap();
    let ctx = EvalContext::new(&c, &default_inputs()).unwrap();
    assert_eq!(ctx.variables()[0].value_json, json!("rc"));
}

#[test]
fn dynamic_defaults_are_checked_for_references_only() {
    let src = r#"project = "p"
variable "subnets" {
  type    = list(string)
  default = dynamic("terraform-cloud", { workspace = "w", output = "subnets" })
}
variable "cluster" {
  type    = string
  default = dynamic("terraform-cloud", { workspace = "w", output = "cluster" })
}
app "web" {
  build {
    use "docker" {}
  }
  deploy {
    use "docker" {
      networks = [var.subnets[0]]
      labels   = { cluster = var.cluster, bad = var.nope }
    }
  }
}
"#;
    let msgs = check(src, &default_inputs());
    assert_eq!(msgs, ["17:53 Error undeclared input variable `var.nope`"]);
    assert!(msgs.iter().all(|m| !m.contains("__wayline")), "{msgs:?}");
}

#[test]
fn a_variable_without_a_value_is_a_warning_in_validate() {
    let src = format!("project = \"p\"\nvariable \"tag\" {{}}\n{APP}");
    assert_eq!(
        check(&src, &default_inputs()),
        ["2:10 Warning variable `tag` has no value here; a job fails unless the server has one"]
    );
}

#[test]
fn config_values_refer_to_each_other_and_loops_are_reported() {
    let src = r#"project = "p"
config {
  env = {
    HOST = "db"
    URL  = "postgres://${config.env.HOST}/${config.internal.NAME}"
  }
  internal = {
    NAME = "app"
  }
}
app "web" {
  build {
    use "docker" {}
  }
  deploy {
    use "docker" {}
  }
}
"#;
    let c = parse_str_for(src, "w.hcl", Format::Hcl, "default").unwrap();
    let vars = EvalContext::new(&c, &EvalInputs::default())
        .unwrap()
        .config_vars()
        .unwrap();
    let url = vars.iter().find(|v| v.name == "URL").unwrap();
    assert_eq!(url.value, ConfigValue::Static("postgres://db/app".into()));

    let looped = src
        .replace("HOST = \"db\"", "HOST = config.env.URL")
        .replace("NAME = \"app\"", "NAME = \"x\"");
    assert_eq!(
        check(&looped, &EvalInputs::default()),
        [
            "4:12 Error reference loop in `config`: config.env.HOST -> config.env.URL -> config.env.HOST",
            "5:12 Error reference loop in `config`: config.env.URL -> config.env.HOST -> config.env.URL",
        ]
    );
}

#[test]
fn stages_pipelines_and_paths() {
    let src = r#"project = "p"
app "web" {
  path = "../elsewhere"
  build {}
  deploy {
    use "docker" {}
  }
}
pipeline "all" {
  step "inner" {
    use "pipeline" {
      name = "other"
    }
  }
}
pipeline "other" {
  step "b" {
    use "build" {}
  }
}
"#;
    assert_eq!(
        check(src, &EvalInputs::default()),
        [
            "3:10 Error app `path` \"../elsewhere\" must be a child of the project directory",
            "4:3 Warning `build` of app \"web\" has no `use` block; operations that need it will fail",
        ]
    );
}

#[test]
fn deep_nesting_is_refused_at_its_column() {
    let src = format!(
        "project = \"p\"\nlabels = {}1{}\n{APP}",
        "[".repeat(3000),
        "]".repeat(3000)
    );
    assert_eq!(
        check(&src, &EvalInputs::default()),
        ["2:74 Error expressions nest more than 64 levels deep here (the limit is 64)"]
    );
    let inputs = EvalInputs {
        cli_vars: vec![format!("x={}", "[".repeat(3000))],
        ..Default::default()
    };
    let src = format!("project = \"p\"\nvariable \"x\" {{\n  type = list(any)\n}}\n{APP}");
    let msgs = check(&src, &inputs);
    assert!(
        msgs[0].contains("nest more than 64 levels deep"),
        "{msgs:?}"
    );
}

fn catalog() -> Arc<PluginCatalog> {
    let mut c = PluginCatalog::new();
    let docker = json!({
        "type": "object",
        "properties": {
            "service_port": {"type": "number"},
            "command": {"type": "array", "items": {"type": "string"}},
            "static_environment": {"type": "object", "additionalProperties": {"type": "string"}},
            "auth": {"type": "object", "properties": {"username": {"type": "string"}}, "required": [], "additionalProperties": false},
            "image": {"type": "string"},
        },
        "required": ["image"],
        "additionalProperties": false,
    });
    c.add(
        "docker",
        PluginKind::Builder,
        Some(json!({"type": "object", "properties": {}, "required": []})),
    );
    c.add("docker", PluginKind::Platform, Some(docker));
    c.add("null", PluginKind::ConfigSourcer, None);
    c.add_external("mine");
    Arc::new(c)
}

#[test]
fn plugin_names_and_use_bodies_are_checked() {
    let src = r#"project = "p"
variable "v" {
  default = dynamic("vaultt", {})
}
app "web" {
  build {
    use "dockr" {}
  }
  deploy {
    use "docker" {
      image        = "x:${artifact.tag}"
      service_port = "3000"
      command      = ["true", 1]
      servce_port  = 1
      auth {
        user = "u"
      }
      static_environment = ["a"]
    }
  }
  release {
    use "kubernetes" {}
  }
}
app "api" {
  build {
    use "mine" {}
  }
  deploy {
    use "docker" {
      service_port = "http"
    }
  }
}
"#;
    let inputs = EvalInputs {
        plugins: Some(catalog()),
        ..Default::default()
    };
    assert_eq!(
        check(src, &inputs),
        [
            "3:21 Error plugin `vaultt` is not installed: it is not built in and no `wayline-plugin-vaultt` or `waypoint-plugin-vaultt` executable was found",
            "7:9 Error unknown builder plugin `dockr`",
            "14:7 Error unknown attribute `servce_port` in `use \"docker\"`",
            "16:9 Error unknown attribute `user` in `auth` of `use \"docker\"`",
            "18:28 Error `static_environment` of `use \"docker\"`: expected a map, found list",
            "22:9 Error `kubernetes` is a Waypoint plugin; Wayline does not provide it natively — see `wayline plugin list`",
            "30:9 Error `use \"docker\"` needs `image`, which is missing",
            "31:22 Error `service_port` of `use \"docker\"`: expected a number, found the string \"http\"",
        ]
    );
}

#[test]
fn dynamic_and_unset_variables_are_type_checked_against_the_field() {
    let src = r#"project = "p"
variable "port" {
  type    = string
  default = dynamic("null", { static_value = "3000" })
}
variable "cmd" {
  type    = list(number)
  default = dynamic("null", {})
}
variable "env" {
  type    = list(string)
  default = dynamic("null", {})
}
variable "image" {
  type = map(string)
}
app "web" {
  build {
    use "docker" {}
  }
  deploy {
    use "docker" {
      image              = var.image
      service_port       = var.port
      command            = var.cmd
      static_environment = var.env
    }
  }
}
"#;
    let inputs = EvalInputs {
        plugins: Some(catalog()),
        ..Default::default()
    };
    assert_eq!(
        check(src, &inputs),
        [
            "14:10 Warning variable `image` has no value here; a job fails unless the server has one",
            "23:28 Error `image` of `use \"docker\"`: expected a string, but `var.image` is declared `map(string)` (its value is known only when the job runs)",
            "26:28 Error `static_environment` of `use \"docker\"`: expected a map of strings, but `var.env` is declared `list(string)` (its value is known only when the job runs)",
        ]
    );
}

/// Waypoint's `config_reference_loop.hcl`: the loop through templates is reported once per
/// value and nothing else about it (no "has no attribute"), even in an app whose stages are
/// missing (reported too).
#[test]
fn a_config_loop_in_an_app_without_stages_is_reported_as_a_loop() {
    let src = r#"project = "foo"

app "test" {
    config {
        env = {
            v1 = "${config.env.v2}"
            v2 = "${config.env.v3}"
            v3 = "${config.env.v1}"
        }
    }
}
"#;
    assert_eq!(
        check(src, &EvalInputs::default()),
        [
            "3:5 Error app \"test\" has no `build` block; `build` and `deploy` are required",
            "3:5 Error app \"test\" has no `deploy` block; `build` and `deploy` are required",
            "6:18 Error reference loop in `config`: config.env.v1 -> config.env.v2 -> config.env.v3 -> config.env.v1",
            "7:18 Error reference loop in `config`: config.env.v2 -> config.env.v3 -> config.env.v1 -> config.env.v2",
            "8:18 Error reference loop in `config`: config.env.v3 -> config.env.v1 -> config.env.v2 -> config.env.v3",
        ]
    );
}
