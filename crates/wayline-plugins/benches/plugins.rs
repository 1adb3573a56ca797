//! Plugin figures:
//! - external plugin start + handshake + first call (goal: under 20 ms), with the example
//!   `wayline-plugin-hello` built in release mode;
//! - `exec` platform deploy of a command that exits at once, through the host (goal: under 100 ms).
//!
//! `cargo bench -p wayline-plugins --bench plugins`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use wayline_plugin::{
    Call, CancellationToken, ComponentKind, CoreValues, Function, JobInfo, PluginHost, Ui, Value,
};

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name}: n={} median={:?} p99={:?} max={:?}",
        samples.len(),
        p(0.5),
        p(0.99),
        samples[samples.len() - 1]
    );
}

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
        labels: BTreeMap::new(),
        deployment_env: BTreeMap::new(),
    }
}

#[tokio::main]
async fn main() {
    let bin = build_hello();
    let t = tempfile::tempdir().unwrap();
    let plugins = t.path().join(".wayline/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&bin, plugins.join("wayline-plugin-hello")).unwrap();
    let core = core(t.path());
    let greeting = wayline_plugin::prost_types::Any {
        type_url: "type.googleapis.com/wayline.hello.Greeting".into(),
        value: Vec::new(),
    };

    let mut start = Vec::new();
    for i in 0..50 {
        let host = PluginHost::new(
            wayline_plugins::builtins(),
            PluginHost::default_search_dirs(t.path()),
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
        .input(greeting.clone());
        p.call(call).await.unwrap();
        start.push(t0.elapsed());
    }
    stats(
        "external plugin start + handshake + configure + first deploy",
        start,
    );

    let host = PluginHost::new(wayline_plugins::builtins(), Vec::new());
    let mut exec = Vec::new();
    let artifact = wayline_plugins::files::Files { path: "/".into() }.to_any();
    for _ in 0..50 {
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
        .input(artifact.clone());
        let r = p.call(call).await.unwrap();
        exec.push(t0.elapsed());
        let call = Call::new(
            Function::Destroy,
            core.clone(),
            Ui::discard(),
            CancellationToken::new(),
        )
        .input(r.value.unwrap())
        .resources(r.resources);
        p.call(call).await.unwrap();
    }
    stats(
        "exec platform deploy of `true` (one-shot), through the host",
        exec,
    );
}
