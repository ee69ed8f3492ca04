//! Rollback: what lets any firedrill process undo any run from the cluster alone.
//!
//! DESIGN principle 1: the ledger (one ConfigMap per run) and the labels and annotations below,
//! carried by every artifact firedrill creates, are enough to roll back without the database.
//! The ledger format and its replay arrive with the first fault kind that mutates the cluster.

/// Label on every artifact: the run that created it.
pub const LABEL_RUN: &str = "firedrill.io/run";
/// Label on every artifact: the drill that created it.
pub const LABEL_DRILL: &str = "firedrill.io/drill";
/// Label on every artifact: what it is (`job`, `ledger`, `network-policy`, ...).
pub const LABEL_KIND: &str = "firedrill.io/kind";
/// Annotation on every artifact: RFC 3339 instant after which any firedrill process reverts it.
pub const ANNOTATION_EXPIRES_AT: &str = "firedrill.io/expires-at";
/// The ConfigMap whose presence in firedrill's namespace stops every drill (the kill switch).
pub const KILL_SWITCH: &str = "firedrill-kill-switch";
/// Opt-in label or annotation for `safety.opt_in: true`.
pub const OPT_IN: &str = "firedrill.io/enabled";
