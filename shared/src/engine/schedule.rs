//! When a connection is next due for a pull: per-source intervals with jitter, so connections
//! made together do not stay in lockstep.

use crate::domain::Provider;
use jiff::Timestamp;
use std::time::Duration;

/// When a connection is next due for a pull.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Sources whose webhooks keep them fresh: the sweep only reconciles them.
    pub webhook_fed: Vec<Provider>,
    /// `STEPSYNC_RECONCILE_MINUTES` (default 360).
    pub webhook_interval: Duration,
    /// `STEPSYNC_PULL_MINUTES` (default 30).
    pub pull_interval: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            webhook_fed: vec![Provider::GoogleHealth, Provider::Misfit],
            webhook_interval: Duration::from_secs(6 * 3600),
            pull_interval: Duration::from_secs(30 * 60),
        }
    }
}

impl Schedule {
    /// The next pull after a success: the interval for this source, give or take 10 % so
    /// connections made together do not stay in lockstep. Phone sources are never pulled.
    pub fn next_after_success(&self, provider: Provider, now: Timestamp) -> Option<Timestamp> {
        if provider.is_phone_upload() {
            return None;
        }
        let base = if self.webhook_fed.contains(&provider) { self.webhook_interval } else { self.pull_interval };
        now.checked_add(jittered(base)).ok()
    }
}

pub(super) fn jittered(base: Duration) -> Duration {
    use rand::Rng;
    let spread = base.as_secs_f64() * 0.1;
    Duration::from_secs_f64((base.as_secs_f64() + rand::rng().random_range(-spread..=spread)).max(1.0))
}
