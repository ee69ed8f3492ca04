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
    // What signing adds to that stop (#22): verifying every entry of its 10 ledgers (4,000),
    // as its replays do before anything else. Measured beside it, so the two compare even on a
    // busy machine.
    let key = firedrill_rollback::Key::from_bytes(&stop_api::KEY).expect("a key");
    let ledgers: Vec<firedrill_rollback::Ledger> = stop_api::world(1000)
        .ledgers
        .values()
        .map(|cm| {
            let data = serde_json::from_value(cm["data"].clone()).expect("ledger data");
            let stored = firedrill_rollback::Stored {
                name: cm["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                data,
                ..Default::default()
            };
            firedrill_rollback::Ledger::from_stored(&stored).expect("a ledger")
        })
        .collect();
    assert_eq!(ledgers.iter().map(|l| l.entries.len()).sum::<usize>(), 4000);
    c.bench_function("stop: verifying the 4,000 entries of its 10 ledgers", |b| {
        b.iter(|| {
            ledgers.iter().all(|l| {
                let seal = key.ledger(&l.run, &l.drill);
                l.entries
                    .iter()
                    .all(|e| seal.verify(e.seq, &e.undo, e.mac.as_deref()).is_ok())
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
