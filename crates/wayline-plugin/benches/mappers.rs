//! Mapper chain search over 200 registered mappers (goal: under 1 ms), measured by criterion.
//!
//! `cargo bench -p wayline-plugin --bench mappers`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use wayline_plugin::mapper::MapFn;
use wayline_plugin::{Mapper, MapperRegistry, PluginError, async_trait};

struct Echo;

#[async_trait]
impl MapFn for Echo {
    async fn map(&self, input: prost_types::Any) -> Result<prost_types::Any, PluginError> {
        Ok(input)
    }
}

/// 200 mappers over 60 types: a long path T0 → T1 → … plus pseudo-random cross edges, so the
/// search explores most of the graph. Deterministic (LCG), so runs are comparable.
fn registry() -> MapperRegistry {
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
    reg
}

fn chain_search(c: &mut Criterion) {
    let reg = registry();
    let len = reg.find_chain("pkg.T0", "pkg.T59").unwrap().len();
    c.bench_function(&format!("find_chain T0 -> T59 (chain of {len})"), |b| {
        b.iter(|| reg.find_chain(black_box("pkg.T0"), black_box("pkg.T59")));
    });
    c.bench_function(
        "find_chain with no path (full search + error listing 200 mappers)",
        |b| {
            b.iter(|| reg.find_chain(black_box("pkg.T0"), black_box("pkg.Nowhere")));
        },
    );
}

criterion_group!(benches, chain_search);
criterion_main!(benches);
