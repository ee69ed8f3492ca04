//! Shared helpers for the integration tests live beside them.
