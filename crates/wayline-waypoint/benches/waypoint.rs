//! Waypoint-protocol figures (issue 14), against this crate's test plugin:
//! - start + handshake + probe + configure + first deploy of `waypoint-plugin-wltest`, the
//!   deploy with its terminal UI served through the broker (goal: under 20 ms);
//! - argument marshalling of one call: a deploy spec answered from the host's values, one
//!   argument through a mapper (goal: under 1 ms).
//!
//! Measured by criterion; the first call's parts are timed within the same runs as the whole.
//!
//! `cargo bench -p wayline-waypoint --bench waypoint` (`--profile dev` for a debug build).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use prost_types::Any;
use serde_json::json;
use wayline_plugin::{
    Call, CancellationToken, ComponentKind, CoreValues, Function, JobInfo, Mapper, PluginError,
    PluginProvider, Ui,
};
use wayline_waypoint::WaypointPlugins;
use wayline_waypoint::funcspec::{self, Provided};
use wayline_waypoint::pb::sdk::{FuncSpec, func_spec};

fn core(dir: &Path) -> CoreValues {
    CoreValues {
        job: JobInfo {
            id: "bench".into(),
            app: "web".into(),
            sequence: 1,
            ..JobInfo::default()
        },
        source_path: dir.to_owned(),
        data_dir: dir.join("data"),
        consumers: Vec::new(),
        labels: BTreeMap::new(),
        deployment_env: BTreeMap::new(),
    }
}

fn any(t: &str) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{t}"),
        value: vec![7; 64],
    }
}

/// The whole, and its parts: start + handshake + probe, configure, the deploy.
async fn first_call(plugins: &Path, src: &Path) -> [Duration; 4] {
    let core = core(src);
    let t0 = Instant::now();
    let p = WaypointPlugins::new(vec![plugins.to_owned()], None);
    let d = p
        .component(ComponentKind::Platform, "wltest", Vec::new())
        .await
        .unwrap()
        .unwrap();
    let started = t0.elapsed();
    d.configure(json!({"message": "m"})).await.unwrap();
    let configured = t0.elapsed();
    let call = Call::new(
        Function::Deploy,
        core,
        Ui::discard(),
        CancellationToken::new(),
    )
    // wltest.Artifact{message: "hi"}.
    .input(Any {
        type_url: "type.googleapis.com/wltest.Artifact".into(),
        value: vec![0x0a, 2, b'h', b'i'],
    });
    d.call(call).await.unwrap();
    let took = t0.elapsed();
    p.shutdown().await;
    [
        took,
        started,
        configured.saturating_sub(started),
        took.saturating_sub(configured),
    ]
}

struct Same;

#[async_trait::async_trait]
impl wayline_plugin::mapper::MapFn for Same {
    async fn map(&self, input: Any) -> Result<Any, PluginError> {
        Ok(Any {
            type_url: "type.googleapis.com/x.Mapped".into(),
            value: input.value,
        })
    }
}

/// A deploy spec like a real platform's: the standard args, the artifact, one mapped value.
fn marshal_inputs() -> (FuncSpec, Vec<Provided>, Vec<Mapper>) {
    let wants = [
        "hashicorp.waypoint.sdk.Args.DeploymentConfig",
        "hashicorp.waypoint.sdk.Args.Source",
        "hashicorp.waypoint.sdk.Args.JobInfo",
        "hashicorp.waypoint.sdk.Args.TerminalUI",
        "hashicorp.waypoint.sdk.Args.Logger",
        "hashicorp.waypoint.sdk.Args.LabelSet",
        "hashicorp.waypoint.builtin.docker.Image",
        "x.Mapped",
    ];
    let spec = FuncSpec {
        name: "deploy".into(),
        args: wants
            .iter()
            .map(|t| func_spec::Value {
                r#type: (*t).into(),
                ..Default::default()
            })
            .collect(),
        result: Vec::new(),
    };
    let mut provided: Vec<Provided> = wants[..7].iter().map(|t| Provided::typed(any(t))).collect();
    provided.push(Provided::typed(any("x.Source")));
    let mut mappers: Vec<Mapper> = (0..50)
        .map(|i| {
            Mapper::erased(
                format!("m{i}"),
                format!("y.{i}"),
                format!("y.{}", i + 1),
                std::sync::Arc::new(Same),
            )
        })
        .collect();
    mappers.push(Mapper::erased(
        "to-mapped",
        "x.Source",
        "x.Mapped",
        std::sync::Arc::new(Same),
    ));
    (spec, provided, mappers)
}

fn waypoint(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bin = env!("CARGO_BIN_EXE_waypoint-plugin-wltest");
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(bin, plugins.path().join("waypoint-plugin-wltest")).unwrap();
    let src = tempfile::tempdir().unwrap();
    let parts = [
        "Waypoint plugin start + handshake + probe + configure + first deploy",
        "of which start + handshake + probe (ConfigStruct, Documentation, specs, mappers)",
        "of which configure",
        "of which the deploy (spec, args, terminal UI through the broker)",
    ];
    let mut group = c.benchmark_group("waypoint first call");
    group.sample_size(20);
    for (part, name) in parts.into_iter().enumerate() {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += first_call(plugins.path(), src.path()).await[part];
                    }
                    total
                })
            });
        });
    }
    group.finish();

    let (spec, provided, mappers) = marshal_inputs();
    c.bench_function(
        "argument marshalling, 8 args (one mapped, 51 mappers)",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        let args = funcspec::resolve("bench", &spec, &provided, &mappers)
                            .await
                            .unwrap();
                        std::hint::black_box(prost::Message::encode_to_vec(&func_spec::Args {
                            args,
                        }));
                    }
                    t0.elapsed()
                })
            });
        },
    );
}

criterion_group!(benches, waypoint);
criterion_main!(benches);
