//! `kind: scenario`: a game day's faults as the steps of one run (#26). A scenario plans
//! nothing itself: each step is a fault of its own kind, judged by the guard at its own start
//! (seeing what the steps before it hold down, `firedrill_safety::scenario`), planned by its
//! kind and written to its own ledger; the runner (`drill::scenario`) orders the steps by their
//! `after:`, `delay:` and `when:`, and reverts them newest first.
//!
//! The steps are read by the runner's drill file reader (`config::scenario`), since a step's
//! `targets:` are read as a drill's are.

use std::time::Duration;

use firedrill_safety::Target;

use crate::fault::Settings;

/// The steps of a scenario, in the order the file gives them (`after:` may name a step
/// written later; `config::scenario` refuses cycles and unknown names).
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub steps: Vec<ScenarioStep>,
}

/// One fault of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioStep {
    /// A DNS-1123 label, unique in the scenario; the step's run is `<run>-<name>`.
    pub name: String,
    /// The pods it may act on, as a drill's `targets:` (empty for kinds that take none).
    pub targets: Vec<Target>,
    /// Its fault: the kind is the settings' kind (never `Scenario`).
    pub fault: Settings,
    /// Every one of these must hold before the step starts; none: it starts with the scenario.
    pub after: Vec<After>,
    /// How long after `after:` holds (or after the scenario's start) the step starts.
    pub delay: Duration,
    /// A condition on an earlier step's figure; when it does not hold the step is skipped
    /// (recorded as such, not a failure).
    pub when: Option<When>,
    /// A refused (blocked) optional step is recorded and the scenario goes on; a refused
    /// required step ends the scenario `blocked`, what ran already reverted.
    pub optional: bool,
    /// The step's own `success: { rto: .. }`: its RTO must stay under this for the scenario to
    /// pass (the scenario's own `success:` judges the whole).
    pub rto: Option<Duration>,
    /// Where the step is written, for messages.
    pub line: usize,
}

/// What an earlier step must have done before a step starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    /// The named step's first wave is in.
    Injected(String),
    /// The named step's workloads are back as desired (its RTO is measured).
    Recovered(String),
}

impl After {
    /// The step it waits for.
    pub fn step(&self) -> &str {
        match self {
            After::Injected(s) | After::Recovered(s) => s,
        }
    }
}

/// `when:` — the step runs only if an earlier step's figure holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct When {
    pub step: String,
    pub figure: Figure,
}

/// A figure an earlier step measures, and the bound it must stay within.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Figure {
    /// The step's RTO (its first fault to its workloads back) was under this.
    RtoUnder(Duration),
    /// The step's RTO was at least this (a slow recovery: e.g. run the failover only then).
    RtoAtLeast(Duration),
}
