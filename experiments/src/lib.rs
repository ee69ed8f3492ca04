//! The fault kinds: each is a pure planner that turns the guard's verdict into steps (a change and
//! its undo record, as data). It calls no API: the runner applies the steps through the rollback
//! ledger, so every kind is reverted by the same code.

mod kind;
mod plan;
mod settings;

pub use kind::Kind;
pub use plan::{network_policy, plan, Plan, PARTITION_LABEL};
pub use settings::{Direction, NetworkPartition, Peer, PodKill, Settings};
