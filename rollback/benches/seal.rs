//! Signing and verifying a 1,000-entry ledger (issue #22): what `apply` adds to writing entries,
//! and what every revert (`stop`, the sweeper, `rollback`) adds before it touches anything.
//! The entries are the kinds `stop` meets most: a created object to delete, and a replica count.

use criterion::{criterion_group, criterion_main, Criterion};
use firedrill_rollback::{Key, Ledger, ObjectKind, ObjectRef, UndoRecord};

fn ledger(key: &Key) -> Ledger {
    let mut ledger = Ledger::new(
        "pod-kill-monthly-trosc0",
        "pod-kill-monthly",
        "pod-kill",
        "2099-01-01T00:00:00Z",
    );
    for i in 0..1000 {
        let ns = format!("ns-{}", i % 10);
        let undo = if i % 2 == 0 {
            UndoRecord::DeleteCreated {
                target: ObjectRef::namespaced(ObjectKind::NetworkPolicy, &ns, &format!("fd-{i}")),
            }
        } else {
            UndoRecord::RestoreReplicas {
                target: ObjectRef::namespaced(ObjectKind::Deployment, &ns, &format!("app-{i}")),
                prior: 3,
                applied: 0,
                hpa: None,
            }
        };
        ledger.push(undo, key);
    }
    ledger
}

fn bench(c: &mut Criterion) {
    let key = Key::from_bytes(&[7; 32]).expect("a key");
    c.bench_function("seal: sign a 1,000-entry ledger", |b| {
        b.iter(|| ledger(&key))
    });
    let signed = ledger(&key);
    // As a replay does: the ledger's identity taken in once, then every entry.
    c.bench_function("seal: verify a 1,000-entry ledger", |b| {
        b.iter(|| {
            let seal = key.ledger(&signed.run, &signed.drill);
            signed
                .entries
                .iter()
                .all(|e| seal.verify(e.seq, &e.undo, e.mac.as_deref()).is_ok())
        })
    });
    // For scale: what reading the same ledger from its ConfigMap costs (every revert does).
    let stored = signed.to_stored();
    c.bench_function("seal: read the same ledger from its ConfigMap", |b| {
        b.iter(|| Ledger::from_stored(&stored))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
