//! A person's own notification subscription (Withings subscribes each person), kept by the
//! syncs: a sync that just read the source with fresh tokens asks, now and then, whether the
//! person's subscription still points at us, and makes it again when it does not. The check
//! rides the sync because the sync already holds the tokens (no refresh of its own, no second
//! function opening tokens) and the sweep already spreads the syncs over the source's budget:
//! a week's checks of 10,000 people are about 1,430 a day, one request each (two when one is
//! made again), beside the sweep's own.

use super::SyncEngine;
use crate::domain::{Connection, TokenSet};
use crate::ports::{ProviderError, StoreError, SubscriptionCheck};
use jiff::{SignedDuration, Timestamp};

/// How long a subscription found in place is trusted before a sync asks again.
pub const SUBSCRIPTION_CHECK_EVERY: SignedDuration = SignedDuration::from_hours(7 * 24);
/// How long after a failed subscribe a sync tries again (the person's status says it is off
/// meanwhile; the scheduled pulls still bring their steps).
pub const SUBSCRIPTION_RETRY_AFTER: SignedDuration = SignedDuration::from_hours(1);

/// Whether a sync of `connection` at `now` should ask about its person's subscription.
pub fn subscription_check_due(connection: &Connection, now: Timestamp) -> bool {
    let last = connection.subscription_checked_at.unwrap_or(connection.created_at);
    let wait =
        if connection.subscription_lapsed_at.is_some() { SUBSCRIPTION_RETRY_AFTER } else { SUBSCRIPTION_CHECK_EVERY };
    now.duration_since(last) >= wait
}

/// What one check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChecked {
    /// Not the source's way, not due, or not asked (the budget spent, the source failing):
    /// nothing recorded, a later sync asks.
    NotAsked,
    Live,
    Renewed,
    /// Missing and not made again: recorded, diagnosed, tried again after
    /// `SUBSCRIPTION_RETRY_AFTER`.
    Lapsed,
}

impl SyncEngine {
    /// After a successful read with `tokens`: checks the person's own subscription when it
    /// is due and records what was found. Never fails the sync: whatever goes wrong is
    /// logged and left for a later sync.
    pub(super) async fn keep_person_subscription(
        &self,
        connection: &Connection,
        tokens: Option<&TokenSet>,
        now: Timestamp,
    ) -> SubscriptionChecked {
        let (user, provider) = (&connection.user, connection.provider);
        let (Some(people), Some(tokens)) = (self.providers.person_subscriptions(provider), tokens) else {
            return SubscriptionChecked::NotAsked;
        };
        if !subscription_check_due(connection, now) {
            return SubscriptionChecked::NotAsked;
        }
        let checked = match people.subscribed(tokens).await {
            Ok(true) => SubscriptionChecked::Live,
            Ok(false) => match people.subscribe(tokens).await {
                Ok(()) => SubscriptionChecked::Renewed,
                Err(error) => {
                    tracing::warn!(user = %user, provider = %provider, %error, "subscription missing and not made again");
                    SubscriptionChecked::Lapsed
                }
            },
            Err(ProviderError::RateLimited { .. }) => {
                tracing::info!(user = %user, provider = %provider, "subscription not checked: the request budget is spent");
                return SubscriptionChecked::NotAsked;
            }
            Err(error) => {
                tracing::warn!(user = %user, provider = %provider, %error, "subscription could not be listed");
                return SubscriptionChecked::NotAsked;
            }
        };
        if checked == SubscriptionChecked::Renewed {
            tracing::info!(user = %user, provider = %provider, "subscription found missing and made again");
        }
        let lapsed_since =
            (checked == SubscriptionChecked::Lapsed).then(|| connection.subscription_lapsed_at.unwrap_or(now));
        let check = SubscriptionCheck { checked_at: now, lapsed_since };
        match self.connections.record_subscription_check(user, provider, &check).await {
            // Disconnected and deleted meanwhile: nothing to record.
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(error) => {
                tracing::warn!(user = %user, provider = %provider, %error, "subscription check not recorded; a later sync asks again");
            }
        }
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Provider, UserId};

    fn connection(created: &str) -> Connection {
        let user = UserId::parse("alice").unwrap();
        Connection::new(user, Provider::Withings, created.parse().unwrap())
    }

    #[test]
    fn a_check_is_due_a_week_after_the_last_and_an_hour_after_a_failed_subscribe() {
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let mut c = connection("2026-12-01T00:00:00Z");
        assert!(!subscription_check_due(&c, at("2026-12-07T23:59:59Z")), "connect subscribed them");
        assert!(subscription_check_due(&c, at("2026-12-08T00:00:00Z")));
        c.subscription_checked_at = Some(at("2026-12-05T00:00:00Z"));
        assert!(!subscription_check_due(&c, at("2026-12-11T23:00:00Z")));
        assert!(subscription_check_due(&c, at("2026-12-12T00:00:00Z")));
        c.subscription_lapsed_at = Some(at("2026-12-04T00:00:00Z"));
        assert!(!subscription_check_due(&c, at("2026-12-05T00:59:59Z")));
        assert!(subscription_check_due(&c, at("2026-12-05T01:00:00Z")));
    }
}
