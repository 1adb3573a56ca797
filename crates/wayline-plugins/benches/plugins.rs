//! Plugin figures:
//! - external plugin start + handshake + first call (goal: under 20 ms), with the example
//!   `wayline-plugin-hello` built in release mode;
//! - `exec` platform deploy of a command that exits at once, through the host (goal: under 100 ms).
//!
//! Each is measured by criterion, the timed part only (a destroy after each exec deploy is not
//! counted).
//!
//! `cargo bench -p wayline-plugins --bench plugins`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use wayline_plugin::{
    Call, CancellationToken, ComponentKind, CoreValues, Function, JobInfo, PluginHost, Ui, Value,
};

fn build_hello() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let st = std::process::Command::new(cargo)
        .args(["build", "-q", "--release", "-p", "wayline-plugin-hello"])
        .current_dir(&root)
        .status()
        .expect("run cargo build");
    assert!(
        st.success(),
        "cargo build --release -p wayline-plugin-hello failed"
    );
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("release/wayline-plugin-hello")
}

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

/// One external plugin's start, handshake, configure and first deploy, from a new host.
async fn external_first_call(dir: &Path, core: &CoreValues, i: u64) -> Duration {
    let greeting = wayline_plugin::prost_types::Any {
        type_url: "type.googleapis.com/wayline.hello.Greeting".into(),
        value: Vec::new(),
    };
    let host = PluginHost::new(
        wayline_plugins::builtins(),
        PluginHost::default_search_dirs(dir),
    );
    let t0 = Instant::now();
    let p = host
        .component(ComponentKind::Platform, "hello")
        .await
        .unwrap();
    p.configure(json!({"path": format!("g{i}.txt")}))
        .await
        .unwrap();
    let call = Call::new(
        Function::Deploy,
        core.clone(),
        Ui::discard(),
        CancellationToken::new(),
    )
    .input(greeting);
    p.call(call).await.unwrap();
    t0.elapsed()
}

/// One `exec` deploy of `true` through the host; the destroy after it is not timed.
async fn exec_deploy(host: &PluginHost, core: &CoreValues) -> Duration {
    let artifact = wayline_plugins::files::Files { path: "/".into() }.to_any();
    let t0 = Instant::now();
    let p = host
        .component(ComponentKind::Platform, "exec")
        .await
        .unwrap();
    p.configure(json!({"command": ["true"]})).await.unwrap();
    let call = Call::new(
        Function::Deploy,
        core.clone(),
        Ui::discard(),
        CancellationToken::new(),
    )
    .input(artifact);
    let r = p.call(call).await.unwrap();
    let took = t0.elapsed();
    let call = Call::new(
        Function::Destroy,
        core.clone(),
        Ui::discard(),
        CancellationToken::new(),
    )
    .input(r.value.unwrap())
    .resources(r.resources);
    p.call(call).await.unwrap();
    took
}

fn plugins(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bin = build_hello();
    let t = tempfile::tempdir().unwrap();
    let plugins = t.path().join(".wayline/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&bin, plugins.join("wayline-plugin-hello")).unwrap();
    let core = core(t.path());

    let mut group = c.benchmark_group("plugins");
    group.sample_size(30);
    group.bench_function(
        "external plugin start + handshake + configure + first deploy",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        total += external_first_call(t.path(), &core, i).await;
                    }
                    total
                })
            });
        },
    );
    let host = PluginHost::new(wayline_plugins::builtins(), Vec::new());
    group.bench_function(
        "exec platform deploy of `true` (one-shot), through the host",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += exec_deploy(&host, &core).await;
                    }
                    total
                })
            });
        },
    );
    group.finish();
}

criterion_group!(benches, plugins);
criterion_main!(benches);
