//! firedrill: recurring chaos and disaster-recovery drills on Kubernetes, safe to leave unattended.
//!
//! The binary (`main.rs`) only parses arguments and maps results to exit codes; everything it does
//! lives here, in modules named for what they hold.

// Standard output is written through `output`, which never panics and reports a failed write.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

pub mod cli;
pub mod config;
pub mod duration;
pub mod executor;
pub mod faultproxy;
pub mod gate;
pub mod job;
pub mod kubernetes;
pub mod ledger;
pub mod ledger_key;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod pushgateway;
pub mod region;
pub mod report;
pub mod route53;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod snapshot;
pub mod store;

/// When the process started, for the "first probe" timing the executor logs.
pub static PROCESS_STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
