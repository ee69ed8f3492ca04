//! A drill's `fault:`. Each kind reads its own settings (`firedrill_experiments::Settings::read`);
//! what stays here is what the drill file decides around them: no settings for a kind that could
//! not be read, a region failover's hook Jobs checked against Kubernetes's types
//! (`hook_job`), and an armed file's demand for a failback.

use firedrill_experiments::{Kind, Settings};
use firedrill_reader::read::{child, Fields, Reader};

/// A drill's `fault:` settings for its kind, or the kind's defaults when it is left out.
pub(super) fn read_settings(r: &mut Reader, f: &Fields, kind: Option<Kind>) -> Option<Settings> {
    // The kind is wrong (and said so): there are no settings to read it for.
    Settings::read(r, f, kind?, super::hook_job::read_job)
}

/// An armed region failover must name its failback: promotion cannot be undone.
pub(super) fn check_failback(r: &mut Reader, f: &Fields, fault: Option<&Settings>) {
    if let Some(Settings::RegionFailover(rf)) = fault {
        if rf.failback.is_none() {
            r.error(
                f.get("fault").map_or(f.mark, |n| n.mark),
                child(&f.path_of("fault"), "failback"),
                "an armed region failover must say how the region comes back: promotion cannot be undone (add `failback: { runbook: https://... }` or a `command`/`job` firedrill runs)",
            );
        }
    }
}
