//! Load, validate and fully evaluate a 1-app and a 20-app `wayline.hcl` (with pipelines and
//! scoped config), each step on its own, measured by criterion. Goals (issue 3): 1 app
//! < 0.3 ms, 20 apps < 2 ms. Then (issue 10) files of 1-8 MB with thousands of apps, timed
//! whole (a few runs each: one 8 MB load is a second, too long for criterion's samples) to
//! show the load is linear in the size and 8 MB takes under 1 s.
//!
//! Run: `cargo bench -p wayline-config --bench load`

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use wayline_config::{EvalContext, EvalInputs, Format, parse_str};

fn app(i: usize) -> String {
    format!(
        r#"
app "svc-{i}" {{
  path   = "./services/svc-{i}"
  labels = {{ "tier" = "{tier}", "index" = "{i}" }}

  build {{
    use "docker" {{
      build_args = {{ "VERSION" = var.version }}
    }}
    registry {{
      use "docker" {{
        image = "${{var.registry}}/${{app.name}}"
        tag   = var.version
      }}
    }}
    hook {{
      when    = "before"
      command = ["make", "test", "APP=${{app.name}}"]
    }}
  }}

  deploy {{
    use "docker" {{
      image        = "${{artifact.image}}:${{artifact.tag}}"
      service_port = 3000 + {i}
      static_environment = merge({{ "APP" = app.name }}, {{ "WS" = workspace.name }})
    }}
    workspace "production" {{
      use "kubernetes" {{
        replicas = 3
      }}
    }}
    label "tier == backend" {{
      use "kubernetes" {{
        replicas = 2
      }}
    }}
  }}

  release {{
    use "kubernetes" {{
      load_balancer = true
    }}
  }}

  config {{
    env = {{
      "PORT"    = 3000 + {i}
      "DB_URL"  = "postgres://${{config.internal.db_host}}/svc{i}"
      "SERVICE" = upper(app.name)
    }}
    workspace "production" {{
      env = {{ "LOG_LEVEL" = "warn" }}
    }}
    label "tier == web" {{
      env = {{ "CDN" = "on" }}
    }}
  }}
}}
"#,
        tier = if i.is_multiple_of(2) {
            "web"
        } else {
            "backend"
        }
    )
}

fn source(apps: usize) -> String {
    let mut s = String::from(
        r#"project = "bench"
labels = { "team" = "platform" }

variable "version" {
  type    = string
  default = "1.0.0"
}
variable "registry" {
  default = "registry.example.com"
}
variable "db_password" {
  default   = "secret"
  sensitive = true
}

config {
  env      = { "LOG_LEVEL" = "info" }
  internal = { "db_host" = "db.internal" }
  runner {
    env = { "AWS_PROFILE" = "deploy" }
  }
}
"#,
    );
    for i in 0..apps {
        s.push_str(&app(i));
    }
    let _ = write!(
        s,
        r#"
pipeline "release" {{
  step "build" {{
    use "build" {{}}
  }}
  step "test" {{
    use "exec" {{
      command = "make"
      args    = ["test"]
    }}
  }}
  step "deploy" {{
    workspace = "staging"
    use "deploy" {{}}
  }}
  step "release" {{
    depends_on = ["deploy"]
    use "release" {{}}
  }}
}}
"#
    );
    s
}

fn run(src: &str) -> usize {
    let config = parse_str(src, "wayline.hcl", Format::Hcl).expect("bench file is valid");
    let inputs = EvalInputs {
        workspace: "default".into(),
        pwd: "/tmp".into(),
        ..Default::default()
    };
    let diags = EvalContext::validate(&config, &inputs);
    assert!(diags.is_empty(), "{diags}");
    let extra =
        serde_json::json!({"artifact": {"image": "img", "tag": "t"}, "deploy": {"url": "u"}});
    let mut n = 0;
    let base = EvalContext::new(&config, &inputs).unwrap();
    for app in &config.apps {
        let ctx = base.for_app(&app.name).unwrap();
        n += ctx.config_vars().unwrap().len();
        for stage in [
            Some(&app.build),
            app.build.registry.as_deref(),
            Some(&app.deploy),
            app.release.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            n += stage.evaluate_use(&ctx, &extra).unwrap().hooks.len();
        }
    }
    n
}

fn parse_only(src: &str) -> usize {
    parse_str(src, "wayline.hcl", Format::Hcl)
        .expect("valid")
        .apps
        .len()
}

fn syntax_only(src: &str) -> usize {
    hcl::edit::parser::parse_body(src).expect("valid").len()
}

fn validate_only(src: &str) -> usize {
    let config = parse_str(src, "wayline.hcl", Format::Hcl).expect("valid");
    EvalContext::validate(&config, &EvalInputs::default()).len()
}

fn median_of(src: &str, iterations: usize, f: fn(&str) -> usize) -> Duration {
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            black_box(f(src));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Each step of a load on its own, then the whole (what `wayline up` does with the file).
fn per_file(c: &mut Criterion) {
    for (name, apps) in [("1 app", 1), ("20 apps", 20)] {
        let src = source(apps);
        let mut g = c.benchmark_group(format!("{name} ({} bytes)", src.len()));
        g.bench_function("hcl-edit parse", |b| {
            b.iter(|| syntax_only(black_box(&src)));
        });
        g.bench_function("parse + schema", |b| {
            b.iter(|| parse_only(black_box(&src)));
        });
        g.bench_function("parse + validate", |b| {
            b.iter(|| validate_only(black_box(&src)));
        });
        g.bench_function("load, validate, evaluate every stage and config var", |b| {
            b.iter(|| run(black_box(&src)));
        });
        g.finish();
    }
}

/// Issue 10: a file with many apps loads in time linear in its size; 8 MB in under 1 s.
fn measure_large() {
    let mut src = String::from("project = \"big\"\n");
    for mb in [1usize, 2, 4, 8] {
        while src.len() < mb << 20 {
            let n = src.len();
            let _ = write!(
                src,
                "app \"svc-{n}\" {{\n  build {{\n    use \"docker\" {{}}\n  }}\n  deploy {{\n    use \"docker\" {{\n      service_port = 3000\n    }}\n  }}\n}}\n"
            );
        }
        let load = median_of(&src, 3, parse_only);
        let validate = median_of(&src, 3, validate_only);
        println!(
            "{mb} MB file ({} apps): load median {load:.3?}, load + validate {validate:.3?}{}",
            parse_only(&src),
            if mb == 8 && load >= Duration::from_secs(1) {
                "  OVER GOAL (< 1 s)"
            } else {
                ""
            }
        );
    }
}

criterion_group!(benches, per_file);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    measure_large();
}
