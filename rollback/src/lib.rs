//! Rollback: what lets any firedrill process undo any run from the cluster alone.
//!
//! ARCHITECTURE.md, principle 1: the ledger (one ConfigMap per run) and the labels and annotations below,
//! carried by every artifact firedrill creates, are enough to roll back without the database.
//! A fault kind plans [`Step`]s (a change and its undo record, as data); [`apply`] writes each
//! undo record to the ledger before it makes the change; [`replay`] undoes a ledger backwards,
//! judging each record on the object as it is now. This crate calls no API itself: the runner
//! gives it a [`Cluster`].

mod error;
mod ledger;
mod object;
mod preview;
mod replay;
pub mod scope;
pub mod seal;
mod undo;

pub use error::{Access, ClusterError};
pub use ledger::{
    name as ledger_name, Entry, EntryState, Ledger, LedgerError, Stored, Unreadable, FORMAT,
    FORMAT_UNSIGNED, KIND_LEDGER, LEDGER_SELECTOR,
};
pub use object::{apply_merge_patch, merge_patch, ObjectKind, ObjectRef, Operation};
pub use preview::{preview, AsLeft, Previewed};
pub use replay::{
    apply, replay, replay_after_sweep, stamped, Action, Applied, ApplyError, Cluster, Done, Guard,
    Outcome, Rejected, Rejection, Report, Trust,
};
pub use scope::{within, OutOfScope, Scope};
pub use seal::{Key, LedgerSeal, Unverified};
pub use undo::{decide, Decision, Irreversible, Step, UndoRecord};

/// Label on every artifact: the run that created it.
pub const LABEL_RUN: &str = "firedrill.io/run";
/// Label on every artifact: the drill that created it.
pub const LABEL_DRILL: &str = "firedrill.io/drill";
/// Label on every artifact: what it is (`job`, `ledger`, `network-policy`, ...).
pub const LABEL_KIND: &str = "firedrill.io/kind";
/// Label on every fault artifact (not Jobs, ledgers or results): `true`. The sweeper and `stop`
/// select on it.
pub const LABEL_ARTIFACT: &str = "firedrill.io/artifact";
/// The selector of every fault artifact.
pub const ARTIFACT_SELECTOR: &str = "firedrill.io/artifact=true";
/// Annotation on every artifact: RFC 3339 instant after which any firedrill process reverts it.
pub const ANNOTATION_EXPIRES_AT: &str = "firedrill.io/expires-at";
/// The ConfigMap whose presence in firedrill's namespace stops every drill (the kill switch).
pub const KILL_SWITCH: &str = "firedrill-kill-switch";
/// Opt-in label or annotation for `safety.opt_in: true`.
pub const OPT_IN: &str = "firedrill.io/enabled";
