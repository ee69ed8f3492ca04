//! What a fault kind does in a run besides its planned steps, as hooks the executor calls in
//! the same order for every kind (ARCHITECTURE.md, "One run"): `choose` (a kind that judges
//! its own targets), `prepare` (a lead-in, before the steps are planned), `abandon` (the run
//! ends before the first change), `after_first_wave` and `before_revert`. This module is where
//! the pipeline meets the kinds by name; the executor names none.

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::failover::Failover;
use super::state::{Chosen, Ended, Execution, Injection, Prepared, Progress};

/// A kind's part in one run.
pub(super) enum Lifecycle<'d> {
    /// The kind's run is its planned steps and nothing else.
    Steps,
    /// Route 53 judged, the RPO markers' lead-in, the promotion and the failback.
    RegionFailover(Box<Failover<'d>>),
}

impl<'d> Lifecycle<'d> {
    pub(super) fn of(fault: &'d firedrill_experiments::Settings) -> Self {
        match fault {
            firedrill_experiments::Settings::RegionFailover(rf) => {
                Lifecycle::RegionFailover(Box::new(Failover::new(rf)))
            }
            _ => Lifecycle::Steps,
        }
    }

    /// What the guard allows, when the kind judges it itself; `None`: the pipeline's own choice.
    pub(super) async fn choose(
        &self,
        x: &Execution<'_>,
        p: &mut Progress,
        started: DateTime<Utc>,
    ) -> Option<Result<Chosen, Ended>> {
        match self {
            Lifecycle::Steps => None,
            Lifecycle::RegionFailover(f) => Some(f.choose(x, p, started).await),
        }
    }

    /// Before the steps are planned; an `Err` ends the run with nothing injected.
    pub(super) async fn prepare(
        &mut self,
        x: &Execution<'_>,
        p: &mut Progress,
        dry_run: bool,
        stop: &watch::Receiver<bool>,
    ) -> Result<Prepared, Ended> {
        match self {
            Lifecycle::Steps => Ok(Prepared::default()),
            Lifecycle::RegionFailover(f) => f.prepare(x, p, dry_run, stop).await,
        }
    }

    /// The run ends after `prepare` and before the first change.
    pub(super) async fn abandon(&mut self) {
        match self {
            Lifecycle::Steps => {}
            Lifecycle::RegionFailover(f) => f.abandon().await,
        }
    }

    /// The first wave is in (`refused`: part of it was refused by the API server).
    pub(super) async fn after_first_wave(
        &mut self,
        x: &Execution<'_>,
        p: &mut Progress,
        i: &mut Injection,
        refused: bool,
        stop: &watch::Receiver<bool>,
    ) {
        match self {
            Lifecycle::Steps => {}
            Lifecycle::RegionFailover(f) => f.after_first_wave(x, p, i, refused, stop).await,
        }
    }

    /// After the observation, before the ledger is replayed.
    pub(super) async fn before_revert(&self, x: &Execution<'_>, p: &mut Progress) {
        match self {
            Lifecycle::Steps => {}
            Lifecycle::RegionFailover(f) => f.before_revert(x, p).await,
        }
    }
}
