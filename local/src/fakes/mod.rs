//! Fake provider servers on loopback, faithful to ../shared/PROVIDERS.md, for tests and the local stack.

mod common;
pub mod google_health;
pub mod misfit;
mod server;
#[cfg(test)]
mod test_support;
