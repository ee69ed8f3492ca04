//! firedrill: recurring chaos and disaster-recovery drills on Kubernetes, safe to leave unattended.
//!
//! The binary (`main.rs`) only parses arguments and maps results to exit codes; everything it does
//! lives here, grouped by concern (ARCHITECTURE.md draws the layers and what each may import):
//! the vocabulary every part shares (`output`, `run`; durations and the YAML reader are in
//! `firedrill_reader`), the drill file (`config`), the calendar and the scheduler (`schedule`),
//! the drill pipeline (`drill`), the Kubernetes and AWS adapters (`cluster`), the history, report
//! and metrics (`history`), whether firedrill will work in a cluster (`check`) and the commands
//! (`cli`).

// Standard output is written through `output`, which never panics and reports a failed write.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod drill;
pub mod history;
pub mod output;
pub mod run;
pub mod schedule;
