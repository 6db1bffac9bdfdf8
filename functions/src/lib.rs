//! The edge of each Lambda: decoding its trigger, calling the library, shaping the answer.
//! Binaries in `src/bin/` are wiring only.

pub mod app;
pub mod http;
pub mod oauth;
pub mod sync_worker;
pub mod webhook;
