//! Adapters: one module per step source, with one struct per concern (an API client for
//! `StepSource`, `OAuthClient` and `Revoker`; a verifier for `WebhookVerifier`); `registry`
//! builds the set a deployment uses; the helpers the sources share (HTTP, webhooks and the
//! limits on their key fetches, day ranges, test server).

mod day_ranges;
mod fetch_limits;
mod fitbit_legacy;
pub mod google_health;
mod http;
pub mod misfit;
#[cfg(test)]
mod test_server;
mod webhook;

pub use fitbit_legacy::FitbitLegacy;

use crate::clock::Clock;
use crate::domain::Provider;
use crate::ports::Providers;
use google_health::{GoogleHealthClient, GoogleHealthSettings, GoogleHealthWebhooks};
use misfit::{MisfitClient, MisfitSettings, MisfitWebhooks};
use std::sync::Arc;

/// A source client that could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    GoogleHealth(#[from] google_health::SetupError),
    #[error(transparent)]
    Misfit(#[from] misfit::SetupError),
}

/// Which halves of each source a function builds: the API clients (fetching, OAuth, revoke;
/// they hold the client secrets) and the webhook verifiers (they hold the key caches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub clients: bool,
    pub verifiers: bool,
}

/// Every source the settings turn on, each capability registered from the struct that has it,
/// and only the `parts` asked for. The retired Fitbit Web API is always there, so old
/// connections learn they must move.
pub fn registry(
    google: Option<&GoogleHealthSettings>,
    misfit: Option<&MisfitSettings>,
    parts: Parts,
    clock: Arc<dyn Clock>,
) -> Result<Providers, SetupError> {
    let fitbit = Arc::new(FitbitLegacy::default());
    let mut providers = Providers::default();
    if parts.clients {
        providers = providers.with_source(fitbit.clone());
    }
    if parts.verifiers {
        providers = providers.with_webhooks(Provider::Fitbit, fitbit);
    }
    if let Some(settings) = google {
        if parts.clients {
            let client = Arc::new(GoogleHealthClient::new(settings.clone(), clock.clone())?);
            providers = providers
                .with_source(client.clone())
                .with_oauth(Provider::GoogleHealth, client.clone())
                .with_revoker(Provider::GoogleHealth, client);
        }
        if parts.verifiers {
            let webhooks = Arc::new(GoogleHealthWebhooks::new(settings.clone(), clock.clone())?);
            providers = providers.with_webhooks(Provider::GoogleHealth, webhooks);
        }
    }
    if let Some(settings) = misfit {
        if parts.clients {
            let client = Arc::new(MisfitClient::new(settings.clone(), clock.clone())?);
            providers = providers.with_source(client.clone()).with_oauth(Provider::Misfit, client);
        }
        if parts.verifiers {
            providers =
                providers.with_webhooks(Provider::Misfit, Arc::new(MisfitWebhooks::new(settings.clone(), clock)?));
        }
    }
    Ok(providers)
}
