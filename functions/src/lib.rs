//! The edge of each Lambda: decoding its trigger, calling the library, shaping the answer.
//! Binaries in `src/bin/` are wiring only.

pub mod app;
pub mod challenges;
pub mod device_upload;
pub mod http;
pub mod manual_sync;
pub mod oauth;
pub mod runtime;
pub mod scheduled_sync;
pub mod sync_worker;
pub mod webhook;
