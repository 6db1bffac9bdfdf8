//! StepSync's library: typed domain values, the sync engine, the ports it works through and
//! the adapters behind them. No Lambda types live here; `functions/` holds the edge.

pub mod aws;
pub mod challenges;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod events;
pub mod logging;
pub mod ports;
pub mod providers;
pub mod status;
pub mod sync;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
