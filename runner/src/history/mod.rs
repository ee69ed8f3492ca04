//! What happened, kept and told: the run history (`store`: SQLite or PostgreSQL, and the spool
//! for records the store could not take), the compliance report (`report`), the results pushed
//! to the Pushgateway (`pushgateway`) and the scheduler's `/metrics` (`metrics`).

pub mod metrics;
pub mod pushgateway;
pub mod report;
pub mod store;
