//! The fault kinds: each reads its own settings from the drill file and is a pure planner that
//! turns the guard's verdict into steps (a change and its undo record, as data). It calls no API:
//! the runner applies the steps through the rollback ledger, so every kind is reverted by the
//! same code.

// The layers, bottom up (ARCHITECTURE.md): `kind`, `plan` and `values` (the vocabulary); one
// module per fault kind; `fault` and `choose` (dispatch over the kinds).
mod choose;
pub mod container;
pub mod degrade;
pub mod dependency;
mod fault;
mod kind;
pub mod node;
pub mod partition;
mod plan;
pub mod pod;
pub mod region;
pub mod scenario;
pub mod values;
pub mod zone;

pub use choose::{also_reads, choose, hold, reach, reads_every_node};
pub use container::{ContainerKill, KILL_IMAGE};
pub use dependency::{percent, Dependency, DependencyFailure, HttpFault, Mode};
pub use fault::{plan, PlanError, Settings};
pub use kind::Kind;
pub use node::{NodeDrain, Ramp, Resource, ResourceStress, STRESS_IMAGE};
pub use partition::{network_policy, Direction, NetworkPartition, Peer};
pub use plan::{
    Choice, DnsAnswer, Expect, Helper, HelperError, Plan, Reach, Scene, StressLoad,
    CANARY_LABEL_KEYS, PARTITION_LABEL,
};
pub use pod::PodKill;
pub use scenario::{After, Figure, Scenario, ScenarioStep, When};
pub use zone::{ZoneChoice, ZoneMode, ZoneOutage};
