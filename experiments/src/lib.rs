//! The fault kinds. Today this crate names them and says what each needs from the drill file;
//! injection and revert arrive with each kind's own issue, always through the rollback ledger.

mod kind;

pub use kind::Kind;
