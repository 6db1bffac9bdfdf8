//! `scheduled-sync` (being written).
