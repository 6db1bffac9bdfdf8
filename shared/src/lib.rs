//! StepSync's library, in layers with one rule: each layer uses only the layers below it.
//!
//! Core (no SDK, no HTTP client, no Lambda type; `architecture` tests it):
//! - `services`: the use cases (connecting, webhook intake, syncing, device uploads,
//!   standings, challenges), over ports;
//! - `engine`: the sync engine; `diagnosis`: why steps are (not) syncing;
//! - `ports`: the narrow traits adapters implement; `events`, `clock`;
//! - `domain`: typed values parsed at the edge.
//!
//! Adapters: `aws` (DynamoDB, EventBridge, SSM), `providers` (one folder per source),
//! `crypto` (the token cipher), `config` (settings from the environment), `logging`, `tls`
//! (the outbound HTTPS clients' settings).
//! `functions/` and `local/` build the adapters and hand them to the services.

pub mod aws;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod diagnosis;
pub mod domain;
pub mod engine;
pub mod events;
pub mod logging;
pub mod ports;
pub mod providers;
pub mod services;
pub mod tls;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

#[cfg(test)]
mod architecture;
