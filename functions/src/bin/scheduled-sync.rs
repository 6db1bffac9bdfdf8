//! Lambda entry point for `scheduled-sync` (being written).

fn main() {}
