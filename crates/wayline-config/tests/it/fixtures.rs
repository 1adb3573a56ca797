//! Every good fixture loads, validates and evaluates; the result is pinned by a snapshot, and
//! each JSON twin gives exactly the same result as its HCL original.

use serde_json::{Value, json};
use wayline_config::{Config, EvalContext, EvalInputs, Stage, StepKind, load_file};

fn stage_json(stage: &Stage, ctx: &EvalContext<'_>) -> Value {
    let extra = json!({
        "artifact": {"image": "example/img", "tag": "1.0"},
        "deploy": {"url": "http://web--v1.example.test"},
        "entrypoint": {"env": {"WAYLINE_DEPLOYMENT_ID": "d1"}},
    });
    let u = stage
        .evaluate_use(ctx, &extra)
        .unwrap_or_else(|d| panic!("evaluate {:?}:\n{d}", stage.kind));
    json!({
        "plugin": u.plugin,
        "body": u.body,
        "labels": u.labels,
        "hooks": u.hooks,
    })
}

fn pipeline_json(p: &wayline_config::Pipeline, ctx: &EvalContext<'_>) -> Value {
    let steps: Vec<Value> = p
        .steps
        .iter()
        .map(|s| {
            let kind = match &s.kind {
                StepKind::Use(u) => json!({"use": u.plugin}),
                StepKind::Pipeline(inner) => json!({"pipeline": pipeline_json(inner, ctx)}),
            };
            let eval =
                |e: &Option<wayline_config::Expr>| e.as_ref().map(|e| ctx.eval_json(e).unwrap());
            json!({
                "name": s.name,
                "kind": kind,
                "depends_on": s.depends_on,
                "image_url": eval(&s.image_url),
                "workspace": eval(&s.workspace),
                "labels": eval(&s.labels),
            })
        })
        .collect();
    json!({"name": p.name, "steps": steps})
}

/// Everything a fixture produces, with machine-specific paths replaced.
pub(crate) fn summarize(config: &Config) -> Value {
    let inputs = EvalInputs {
        workspace: "default".into(),
        pwd: "/pwd".into(),
        salt: "salt".into(),
        ..Default::default()
    };
    let diags = EvalContext::validate(config, &inputs);
    assert!(diags.is_empty(), "validate {}:\n{diags}", config.file.name);
    let base = EvalContext::new(config, &inputs).unwrap();
    let apps: Vec<Value> = config
        .apps
        .iter()
        .map(|app| {
            let ctx = base.for_app(&app.name).unwrap();
            // Building the app context directly gives the same values.
            let direct = EvalContext::new(
                config,
                &EvalInputs {
                    app: Some(app.name.clone()),
                    ..inputs.clone()
                },
            )
            .unwrap();
            assert_eq!(
                (ctx.labels(), ctx.app_dir()),
                (direct.labels(), direct.app_dir())
            );
            let mut summary = json!({
                "name": app.name,
                "labels": ctx.labels(),
                "build": stage_json(&app.build, &ctx),
                "registry": app.build.registry.as_ref().map(|r| stage_json(r, &ctx)),
                "deploy": stage_json(&app.deploy, &ctx),
                "release": app.release.as_ref().map(|r| stage_json(r, &ctx)),
                "config": ctx.config_vars().unwrap(),
                "file_change_signal": ctx.file_change_signal(),
                "url": app.url.as_ref().map(|u| u.auto_hostname),
                "health_path": app.url.as_ref().and_then(|u| u.health_path.clone()),
                "runner_profile": app.runner.as_ref().and_then(|r| r.profile.clone()),
            });
            // Only where set, so the other snapshots stay as they were.
            if let Some(l) = app.url.as_ref().and_then(|u| u.limits) {
                summary["url_limits"] = json!({
                    "requests_per_second": l.requests_per_second,
                    "burst": l.burst,
                    "bytes_per_second": l.bytes_per_second,
                    "max_requests": l.max_requests,
                });
            }
            summary
        })
        .collect();
    let runner = config.runner.as_ref().map(|r| {
        let ds = r.data_source.as_ref().map(|d| {
            let attrs: serde_json::Map<String, Value> = d
                .attrs
                .iter()
                .map(|(k, e)| (k.clone(), base.eval_json(e).unwrap()))
                .collect();
            json!({"kind": d.kind, "attrs": attrs})
        });
        json!({
            "enabled": r.enabled,
            "profile": r.profile,
            "data_source": ds,
            "poll": r.poll.as_ref().map(|p| json!({"enabled": p.enabled, "interval": p.interval})),
        })
    });
    let plugins: Vec<Value> = config
        .plugins
        .iter()
        .map(|p| json!({"name": p.name, "checksum": p.checksum, "mapper": p.types.mapper, "deploy": p.types.deploy, "build": p.types.build}))
        .collect();
    let variables: Vec<Value> = base
        .variables()
        .iter()
        .map(|v| json!({"name": v.name, "source": v.source, "shown": v.display_value(), "sensitive": v.sensitive}))
        .collect();
    let out = json!({
        "project": config.project,
        "variables": variables,
        "runner": runner,
        "plugins": plugins,
        "apps": apps,
        "pipelines": config.pipelines.iter().map(|p| pipeline_json(p, &base)).collect::<Vec<_>>(),
    });
    let dir = config.project_dir.display().to_string();
    let text = serde_json::to_string(&out)
        .unwrap()
        .replace(&dir, "<project>");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn good_fixtures_match_their_snapshots() {
    let dir = super::fixtures_dir().join("good");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".hcl"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 20,
        "the corpus has {} native fixtures",
        names.len()
    );
    for name in names {
        let config = load_file(dir.join(&name)).unwrap_or_else(|d| panic!("{name}:\n{d}"));
        let summary = summarize(&config);
        insta::with_settings!({snapshot_suffix => name.trim_end_matches(".hcl"), prepend_module_to_snapshot => false}, {
            insta::assert_json_snapshot!("good", summary);
        });
        let twin = dir.join(format!("{name}.json"));
        if twin.exists() {
            let twin_config = load_file(&twin).unwrap_or_else(|d| panic!("{name}.json:\n{d}"));
            assert_eq!(
                summarize(&twin_config),
                summary,
                "{name}.json differs from {name}"
            );
        }
    }
}

#[test]
fn json_twins_exist() {
    let dir = super::fixtures_dir().join("good");
    let twins = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".hcl.json")
        })
        .count();
    assert!(twins >= 4, "{twins} JSON twins");
}
