//! The edge of each Lambda: decoding its trigger, calling one service, shaping the answer.
//! Binaries in `src/bin/` are wiring only; `app` builds the adapters behind the services;
//! `http` holds the one error-to-status table and the route tables' matcher.

pub mod app;
pub mod challenges;
pub mod day_events;
pub mod http;
pub mod manual_sync;
pub mod nudges;
pub mod oauth;
pub mod reconcile;
pub mod runtime;
pub mod scheduled_sync;
pub mod sync_worker;
pub mod webhook;

#[cfg(test)]
mod architecture;
