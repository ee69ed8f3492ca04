//! What a drill asks to hit: pods matching a selector in a namespace, and how many of them.

use crate::{PercentRange, Selector};

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub namespace: String,
    pub selector: Selector,
    pub amount: Amount,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// A share of the pods this target matches, drawn within the range for each fire.
    Percent(PercentRange),
    /// An absolute number of pods.
    Count(u32),
}
