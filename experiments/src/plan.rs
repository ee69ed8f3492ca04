//! What each fault kind would change, as steps: pure, from the guard's verdict. The runner applies
//! them through the ledger; `rollback/` undoes them.

use firedrill_rollback::Step;
use firedrill_safety::verdict::Verdict;

use crate::Kind;

/// The steps one fire of `kind` takes on the pods the guard chose. `Err` says why the kind
/// cannot run in this version (a dry run still plans and records everything else).
pub fn plan(kind: Kind, verdict: Option<&Verdict>) -> Result<Vec<Step>, String> {
    let _ = verdict;
    match kind {
        // A probe only observes.
        Kind::Probe => Ok(Vec::new()),
        other => Err(format!(
            "the {other} fault is not available in this version of firedrill; nothing was injected"
        )),
    }
}
