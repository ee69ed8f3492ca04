//! `firedrill stop` against a local API (kube's tower_test mock serving an in-memory cluster):
//! 1,000 artifacts of each of four kinds across 10 namespaces, recorded in 10 runs' ledgers.

#[path = "../tests/support/stop_api.rs"]
mod stop_api;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    c.bench_function(
        "stop: 4 x 1,000 artifacts, 10 namespaces, 10 ledgers",
        |b| b.iter(|| runtime.block_on(stop_api::stop(1000))),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
