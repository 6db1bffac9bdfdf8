//! The `challenges` API (being written).
