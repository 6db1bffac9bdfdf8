//! One module per step source behind `StepProvider`, the registry the worker picks from, and
//! the helpers the sources share (HTTP, webhooks, day ranges, the test server).

mod day_ranges;
mod fitbit_legacy;
pub mod google_health;
mod http;
pub mod misfit;
#[cfg(test)]
mod test_server;
mod webhook;

pub use fitbit_legacy::FitbitLegacy;

use crate::domain::Provider;
use crate::ports::StepProvider;
use std::collections::HashMap;
use std::sync::Arc;

/// The provider clients this deployment has, by provider id.
#[derive(Default, Clone)]
pub struct ProviderRegistry(HashMap<Provider, Arc<dyn StepProvider>>);

impl ProviderRegistry {
    pub fn with(mut self, client: Arc<dyn StepProvider>) -> Self {
        self.0.insert(client.provider(), client);
        self
    }

    pub fn get(&self, provider: Provider) -> Option<&Arc<dyn StepProvider>> {
        self.0.get(&provider)
    }
}
