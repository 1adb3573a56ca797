//! Mapper chain search over 200 registered mappers (goal: under 1 ms).
//!
//! `cargo bench -p wayline-plugin --bench mappers`

use std::sync::Arc;
use std::time::{Duration, Instant};

use wayline_plugin::mapper::MapFn;
use wayline_plugin::{Mapper, MapperRegistry, PluginError, async_trait};

struct Echo;

#[async_trait]
impl MapFn for Echo {
    async fn map(&self, input: prost_types::Any) -> Result<prost_types::Any, PluginError> {
        Ok(input)
    }
}

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

fn main() {
    // 200 mappers over 60 types: a long path T0 → T1 → … plus pseudo-random cross edges, so the
    // search explores most of the graph. Deterministic (LCG), so runs are comparable.
    let mut reg = MapperRegistry::new();
    let mut seed: u64 = 42;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    };
    for i in 0..59 {
        reg.add(Mapper::erased(
            format!("chain{i:03}"),
            format!("pkg.T{i}"),
            format!("pkg.T{}", i + 1),
            Arc::new(Echo),
        ));
    }
    for i in 0..141 {
        let a = next(60);
        let b = next(60);
        reg.add(Mapper::erased(
            format!("cross{i:03}"),
            format!("pkg.T{a}"),
            format!("pkg.T{b}"),
            Arc::new(Echo),
        ));
    }
    assert_eq!(reg.len(), 200);

    let iters = 10_000;
    let mut found = Vec::with_capacity(iters);
    let mut len = 0;
    for _ in 0..iters {
        let t = Instant::now();
        let c = reg.find_chain("pkg.T0", "pkg.T59").unwrap();
        found.push(t.elapsed());
        len = c.len();
    }
    stats(&format!("find_chain T0 -> T59 (chain of {len})"), found);

    let mut missing = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let e = reg.find_chain("pkg.T0", "pkg.Nowhere").unwrap_err();
        missing.push(t.elapsed());
        std::hint::black_box(e);
    }
    stats(
        "find_chain with no path (full search + error listing 200 mappers)",
        missing,
    );
}
