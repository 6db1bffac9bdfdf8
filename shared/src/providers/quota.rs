//! An app-wide request budget for a provider that counts requests per app, not per person
//! (Oura, Withings): every function takes from the same fixed-window counters in the table
//! before it calls the provider, so the sweep, the webhook-fed syncs and the manual syncs
//! together never send more than the provider allows. A spent window is answered as
//! `ProviderError::RateLimited` with its end as the retry time, before anything is sent.

use crate::clock::Clock;
use crate::ports::{EphemeralStore, ProviderError};
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;

/// At most `limit` requests in each fixed window of `length` (aligned to the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaWindow {
    pub length: Duration,
    pub limit: u32,
}

impl QuotaWindow {
    pub const fn per_minute(limit: u32) -> Self {
        Self { length: Duration::from_secs(60), limit }
    }

    pub const fn per_day(limit: u32) -> Self {
        Self { length: Duration::from_secs(86_400), limit }
    }

    /// The end of the window `now` falls in, which names it.
    fn end_after(&self, now: Timestamp) -> Timestamp {
        let length = self.length.as_secs().max(1) as i64;
        let end = (now.as_second().div_euclid(length) + 1).saturating_mul(length);
        Timestamp::from_second(end).unwrap_or(Timestamp::MAX)
    }
}

/// One provider's budget, shared through the table by every function that calls it.
#[derive(Clone)]
pub struct AppQuota {
    /// The counters' key prefix, e.g. `quota#oura`.
    name: String,
    windows: Vec<QuotaWindow>,
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AppQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppQuota").field("name", &self.name).field("windows", &self.windows).finish()
    }
}

impl AppQuota {
    pub fn new(
        name: impl Into<String>,
        windows: Vec<QuotaWindow>,
        store: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { name: name.into(), windows, store, clock }
    }

    /// Takes one request from every window, the longest first. A spent window refuses with
    /// its end as the time to come back. A minute refused after the day was taken leaves one
    /// day request unused: the budget errs on the side of sending fewer, never more.
    pub async fn take(&self) -> Result<(), ProviderError> {
        let now = self.clock.now();
        let mut windows = self.windows.clone();
        windows.sort_by_key(|w| std::cmp::Reverse(w.length));
        for window in windows {
            let end = window.end_after(now);
            let key = format!("{}#{}", self.name, window.length.as_secs());
            let taken = self
                .store
                .take_in_window(&key, end, window.limit)
                .await
                .map_err(|e| ProviderError::Unavailable(format!("the request budget could not be read: {e}")))?;
            if !taken {
                let wait = now.until(end).ok().and_then(|span| span.total(jiff::Unit::Second).ok());
                let retry_after = Duration::from_secs(wait.map_or(1, |secs| secs.ceil().max(1.0) as u64));
                tracing::info!(quota = %self.name, window_seconds = window.length.as_secs(), limit = window.limit, "app-wide request budget spent: the call waits for the next window");
                return Err(ProviderError::RateLimited { retry_after: Some(retry_after) });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedClock, InMemoryStore};

    fn quota(clock: Arc<FixedClock>, store: Arc<InMemoryStore>) -> AppQuota {
        AppQuota::new("quota#test", vec![QuotaWindow::per_minute(3), QuotaWindow::per_day(5)], store, clock)
    }

    #[tokio::test]
    async fn a_spent_minute_refuses_until_the_next_one_and_the_day_caps_them_all() {
        let clock = Arc::new(FixedClock::at("2026-12-03T10:00:10Z"));
        let store = Arc::new(InMemoryStore::default());
        let quota = quota(clock.clone(), store.clone());
        for _ in 0..3 {
            quota.take().await.unwrap();
        }
        match quota.take().await {
            Err(ProviderError::RateLimited { retry_after }) => assert_eq!(retry_after, Some(Duration::from_secs(50))),
            other => panic!("expected the minute to be spent, got {other:?}"),
        }
        clock.set("2026-12-03T10:01:00Z".parse().unwrap());
        quota.take().await.unwrap();
        // The day counted the refused minute's request too: 5 taken, the 6th refused.
        match quota.take().await {
            Err(ProviderError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(14 * 3600 - 60)), "until midnight UTC")
            }
            other => panic!("expected the day to be spent, got {other:?}"),
        }
        clock.set("2026-12-04T00:00:00Z".parse().unwrap());
        quota.take().await.unwrap();
    }

    #[tokio::test]
    async fn two_clients_over_one_store_share_the_budget() {
        let clock = Arc::new(FixedClock::at("2026-12-03T10:00:10Z"));
        let store = Arc::new(InMemoryStore::default());
        let (a, b) = (quota(clock.clone(), store.clone()), quota(clock, store));
        a.take().await.unwrap();
        b.take().await.unwrap();
        a.take().await.unwrap();
        assert!(b.take().await.is_err(), "the third request of the minute was the last");
    }
}
