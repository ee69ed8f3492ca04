//! The Kubernetes and AWS adapters, and what firedrill must be allowed to do (`access`): every call firedrill makes to the Kubernetes API
//! (`kubernetes`), the drill Job it renders (`job`), the ledger in the cluster and the on-call
//! operations that act through it — stop, rollback, the sweep (`ledger`, `ledger_key`), the
//! cluster snapshot the guard judges (`snapshot`), Route 53 (`route53`) and the fires people
//! vetoed (`skips`).

pub mod access;
pub mod job;
pub mod kubernetes;
pub mod ledger;
pub mod ledger_key;
pub mod route53;
pub mod skips;
pub mod snapshot;
