//! The safety guard: everything that decides what a drill may touch.
//!
//! This crate is pure on purpose (ARCHITECTURE.md, principle 3): no Kubernetes client, no HTTP, no async
//! runtime. It takes values and returns values, so every rule can be proven with plain and
//! property tests.

/// The guard's own maps: keyed by names from the cluster and hashed per pod, many times per
/// decision, so with a fast (still randomly seeded) hasher rather than SipHash.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub mod capacity;
pub mod cluster;
pub mod glob;
pub mod nodes;
pub mod policy;
pub mod quantity;
pub mod scenario;
pub mod selector;
mod target;
pub mod verdict;
pub mod zones;

pub use glob::{GlobError, NamespacedGlob};
pub use policy::{KubeSystemNeighbours, Limits, MinHealthy, Policy};
pub use quantity::{Percent, PercentRange, Quantity, QuantityError};
pub use selector::{LabelError, Requirement, Selector, SelectorError};
pub use target::{Amount, Target};
pub use verdict::{decide, Request, Verdict};
