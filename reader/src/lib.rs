//! Reading a drill file: the YAML tree whose every node knows where it was written (`yaml`), typed
//! reads from it that record every problem at its file:line:col (`read`), the names Kubernetes and
//! AWS allow (`name`) and human durations (`duration`).
//!
//! Below the fault kinds (ARCHITECTURE.md, layer 0), so that each kind reads its own settings.

pub mod duration;
pub mod name;
pub mod read;
pub mod yaml;
