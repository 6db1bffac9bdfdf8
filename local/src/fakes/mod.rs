//! Fake provider servers on loopback, faithful to each provider's documented and observed
//! behaviour, for tests and the local stack.

mod common;
pub mod garmin;
pub mod google_health;
pub mod misfit;
pub mod oura;
pub mod polar;
mod server;
pub mod sns;
#[cfg(test)]
mod test_support;
pub mod withings;
