//! The drill pipeline that `firedrill execute` runs in a Job: the gates (preflight, abort
//! conditions, steady-state probes: `gate`), the executor that chooses, injects through the
//! ledger, observes, reverts, measures and records (`executor`), what a region failover does
//! besides its steps (`region`), and the fault proxy a dependency failure deploys (`faultproxy`).

mod effect;
pub mod executor;
mod failover;
pub mod faultproxy;
pub mod gate;
pub mod helper_report;
mod lifecycle;
mod record;
pub mod region;
mod scenario;
mod state;
