//! Keeping the sources' app-level subscriptions alive (the daily run): each source that has
//! them renews what is about to expire and creates what is missing; what it left is stored for
//! the status answer, which diagnoses a lapsed subscription on every connection of that source.

use super::ServiceError;
use crate::domain::Provider;
use crate::ports::{ConnectionStore, ProviderError, Providers, StoredSubscriptions};
use jiff::Timestamp;
use serde::Serialize;

/// What one run left, per source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionsReport {
    /// Sources whose subscriptions are all live after the run.
    pub live: Vec<Provider>,
    /// Sources with a subscription that is not (or that could not be asked).
    pub lapsed: Vec<Provider>,
}

pub struct Subscriptions<'a> {
    pub connections: &'a dyn ConnectionStore,
    pub providers: &'a Providers,
}

impl Subscriptions<'_> {
    pub async fn keep(&self, now: Timestamp) -> Result<SubscriptionsReport, ServiceError> {
        let mut report = SubscriptionsReport::default();
        for (provider, keeper) in self.providers.keepers() {
            match keeper.keep(now).await {
                Ok(states) => {
                    let live = states.iter().all(|s| s.live(now));
                    for state in &states {
                        tracing::info!(provider = %provider, topic = state.topic, note = state.note, expires_at = ?state.expires_at, "subscription");
                    }
                    self.connections
                        .save_subscriptions(provider, &StoredSubscriptions { checked_at: now, states })
                        .await?;
                    if live { report.live.push(provider) } else { report.lapsed.push(provider) }
                }
                // The app's request budget was spent this minute: tomorrow's run (or the
                // week of margin before an expiry) tries again; no operator needs waking.
                Err(error @ ProviderError::RateLimited { .. }) => {
                    tracing::warn!(provider = %provider, %error, "subscriptions not checked: the request budget is spent");
                    report.lapsed.push(provider);
                }
                Err(error) => {
                    // What was stored stays: it expires on its own dates, and the status
                    // answer reads those.
                    tracing::error!(alarm = "subscription_not_kept", provider = %provider, %error, "subscriptions could not be listed");
                    report.lapsed.push(provider);
                }
            }
        }
        report.live.sort();
        report.lapsed.sort();
        Ok(report)
    }
}
