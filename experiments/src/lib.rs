//! The fault kinds: each is a pure planner that turns the guard's verdict into steps (a change and
//! its undo record, as data). It calls no API: the runner applies the steps through the rollback
//! ledger, so every kind is reverted by the same code.

mod choose;
pub mod container;
pub mod degrade;
pub mod dependency;
mod kind;
pub mod node;
mod plan;
pub mod region;
mod settings;

pub use choose::{choose, reach, Choice};
pub use kind::Kind;
pub use plan::{network_policy, plan, Plan, Scene, PARTITION_LABEL};
pub use settings::{
    percent, ContainerKill, Dependency, DependencyFailure, Direction, HttpFault, Mode,
    NetworkPartition, NodeDrain, Peer, PodKill, Ramp, Resource, ResourceStress, Settings,
    KILL_IMAGE, STRESS_IMAGE,
};
