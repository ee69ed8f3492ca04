//! What every effect-check test asserts of a run: the effect it recorded, and an `ineffective`
//! run's whole story (status, reason, revert, ledger, timeline, exit code).

use firedrill::history::store::{RunRecord, RunStatus};
use firedrill::run::{EffectNote, Revert};

use super::cluster::ledger_data;

/// The run's recorded effect; a run that recorded none fails the test.
pub fn effect(record: &RunRecord) -> EffectNote {
    record
        .evidence
        .effect
        .clone()
        .unwrap_or_else(|| panic!("no effect recorded: {record:#?}"))
}

/// A run whose fault did not take effect: `ineffective` with `reason` in its reason, no
/// criterion judged, the fault reverted, the ledger closed with that outcome and every entry
/// reverted, the timeline saying it, and exit code 6.
pub async fn assert_ineffective(client: &kube::Client, record: &RunRecord, reason: &str) {
    assert_eq!(record.status, RunStatus::Ineffective, "{record:#?}");
    let why = record.reason.as_deref().unwrap_or_default();
    assert!(
        why.starts_with("the fault did not take effect: ") && why.contains(reason),
        "{reason:?} not in {why}"
    );
    assert!(why.ends_with("; reverted"), "{why}");
    assert_eq!(effect(record).observed, Some(false), "{record:#?}");
    assert!(
        matches!(record.evidence.revert, Revert::Restored { .. }),
        "{:?}",
        record.evidence.revert
    );
    let ledger = ledger_data(client, &record.id).await;
    assert_eq!(ledger["outcome"], "ineffective");
    for (key, entry) in ledger.iter().filter(|(k, _)| k.starts_with("step-")) {
        assert!(entry.contains(r#""state":"reverted""#), "{key}: {entry}");
    }
    let timeline = record.evidence.to_value()["timeline"].to_string();
    assert!(timeline.contains("not in effect: "), "{timeline}");
    assert_eq!(firedrill::drill::executor::exit_code(record.status), 6);
}
