//! Adapters: one module per step source, with one struct per concern (an API client for
//! `StepSource`, `OAuthClient` and `Revoker`; a verifier for `WebhookVerifier`); `registry`
//! builds the set a deployment uses; the helpers the sources share (HTTP, webhooks and the
//! limits on their key fetches, day ranges, test server).

mod day_ranges;
mod exchanged;
mod fetch_limits;
mod fitbit_legacy;
pub mod garmin;
pub mod google_health;
mod http;
pub mod misfit;
pub mod oura;
pub mod polar;
pub mod quota;
#[cfg(test)]
mod test_server;
mod webhook;
pub mod withings;

pub use fitbit_legacy::FitbitLegacy;

use crate::clock::Clock;
use crate::domain::Provider;
use crate::ports::{EphemeralStore, Providers};
use garmin::{GarminClient, GarminSettings, GarminWebhooks};
use google_health::{GoogleHealthClient, GoogleHealthSettings, GoogleHealthWebhooks};
use misfit::{MisfitClient, MisfitSettings, MisfitWebhooks};
use oura::{OuraClient, OuraSettings, OuraSubscriptions, OuraWebhooks};
use polar::{PolarClient, PolarSettings, PolarWebhookKeeper, PolarWebhooks};
use quota::AppQuota;
use std::sync::Arc;
use withings::{WithingsClient, WithingsSettings, WithingsWebhooks};

/// A source client that could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    GoogleHealth(#[from] google_health::SetupError),
    #[error(transparent)]
    Misfit(#[from] misfit::SetupError),
    #[error(transparent)]
    Oura(#[from] oura::SetupError),
    #[error(transparent)]
    Withings(#[from] withings::SetupError),
    #[error(transparent)]
    Polar(#[from] polar::SetupError),
    #[error(transparent)]
    Garmin(#[from] garmin::SetupError),
}

/// Which halves of each source a function builds: the API clients (fetching, OAuth, revoke;
/// they hold the client secrets) and the webhook verifiers (they hold the key caches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub clients: bool,
    pub verifiers: bool,
}

/// The settings of every source a deployment may turn on, and the parts a function builds.
#[derive(Debug, Clone, Copy)]
pub struct SourceSettings<'a> {
    pub google: Option<&'a GoogleHealthSettings>,
    pub misfit: Option<&'a MisfitSettings>,
    pub oura: Option<&'a OuraSettings>,
    pub withings: Option<&'a WithingsSettings>,
    pub polar: Option<&'a PolarSettings>,
    pub garmin: Option<&'a GarminSettings>,
    pub parts: Parts,
}

/// Every source the settings turn on, each capability registered from the struct that has it,
/// and only the `parts` asked for; a source with an app-wide request budget counts it in
/// `quota_store`, shared by every function. The retired Fitbit Web API is always there, so old
/// connections learn they must move.
pub fn registry(
    sources: SourceSettings<'_>,
    quota_store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
) -> Result<Providers, SetupError> {
    let SourceSettings { google, misfit, oura, withings, polar, garmin, parts } = sources;
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
            providers = providers
                .with_webhooks(Provider::Misfit, Arc::new(MisfitWebhooks::new(settings.clone(), clock.clone())?));
        }
    }
    if let Some(settings) = oura {
        // One budget for every Oura call this deployment makes, counted in the table.
        let quota = AppQuota::new("quota#oura", settings.quota.clone(), quota_store.clone(), clock.clone());
        if parts.clients {
            let client = Arc::new(OuraClient::new(settings.clone(), quota.clone(), clock.clone())?);
            providers = providers
                .with_source(client.clone())
                .with_oauth(Provider::Oura, client.clone())
                .with_revoker(Provider::Oura, client)
                .with_keeper(Provider::Oura, Arc::new(OuraSubscriptions::new(settings, quota)?));
        }
        if parts.verifiers {
            providers = providers.with_webhooks(Provider::Oura, Arc::new(OuraWebhooks::new(settings, clock.clone())?));
        }
    }
    if let Some(settings) = polar {
        if parts.clients {
            let quota = AppQuota::new("quota#polar", settings.quota.clone(), quota_store.clone(), clock.clone());
            let client = Arc::new(PolarClient::new(settings.clone(), quota.clone(), clock.clone())?);
            providers = providers
                .with_source(client.clone())
                .with_oauth(Provider::Polar, client.clone())
                .with_revoker(Provider::Polar, client)
                .with_keeper(Provider::Polar, Arc::new(PolarWebhookKeeper::new(settings, quota)?));
        }
        if parts.verifiers {
            providers =
                providers.with_webhooks(Provider::Polar, Arc::new(PolarWebhooks::new(settings, clock.clone())?));
        }
    }
    if let Some(settings) = garmin {
        if parts.clients {
            // Garmin limits backfill requests per app; the pulls its pings ask for it paces itself.
            let quota = AppQuota::new("quota#garmin", settings.quota.clone(), quota_store.clone(), clock.clone());
            let client = Arc::new(GarminClient::new(settings.clone(), quota, clock.clone())?);
            providers = providers
                .with_source(client.clone())
                .with_oauth(Provider::Garmin, client.clone())
                .with_revoker(Provider::Garmin, client);
        }
        if parts.verifiers {
            providers = providers.with_webhooks(Provider::Garmin, Arc::new(GarminWebhooks::new(settings)?));
        }
    }
    if let Some(settings) = withings {
        if parts.clients {
            let quota = AppQuota::new("quota#withings", settings.quota.clone(), quota_store, clock.clone());
            let client = Arc::new(WithingsClient::new(settings.clone(), quota, clock)?);
            providers = providers
                .with_source(client.clone())
                .with_oauth(Provider::Withings, client.clone())
                .with_revoker(Provider::Withings, client.clone())
                .with_person_subscriptions(Provider::Withings, client);
        }
        if parts.verifiers {
            providers = providers.with_webhooks(Provider::Withings, Arc::new(WithingsWebhooks::new(settings)?));
        }
    }
    Ok(providers)
}
