//! When a connection is pulled. A healthy connection sits in a fixed slot of its cadence's
//! cycle (from a hash of user and provider, so connections made together spread out) and is
//! swept once a cycle with no write of its own; only a connection backing off (or new, due
//! now) carries a due time (`next_sync_at`).

use crate::domain::{DueSlot, Provider, UserId, phase_hash, shard_of};
use jiff::Timestamp;
use std::time::Duration;

/// The schedule's unit: a cycle is a whole number of phases, and each phase is swept once a
/// cycle. Independent of the scheduler's tick (`SyncIntervalMinutes`): a tick sweeps every
/// phase begun since the last one swept, so a slower or missed tick delays, never skips.
pub const PHASE: Duration = Duration::from_secs(15 * 60);

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

/// The absolute number of the phase `at` falls in (phases counted from the epoch).
pub fn phase_index(at: Timestamp) -> i64 {
    at.as_second().div_euclid(PHASE.as_secs() as i64)
}

/// When phase `index` begins.
pub fn phase_start(index: i64) -> Timestamp {
    Timestamp::from_second(index.saturating_mul(PHASE.as_secs() as i64)).unwrap_or(Timestamp::MIN)
}

impl Schedule {
    fn interval(&self, provider: Provider) -> Duration {
        if self.webhook_fed.contains(&provider) { self.webhook_interval } else { self.pull_interval }
    }

    /// Phases per cycle for a cadence (at least one: a cadence shorter than a phase is swept
    /// every phase).
    fn cycle_of(interval: Duration) -> u32 {
        u32::try_from((interval.as_secs() / PHASE.as_secs()).max(1)).unwrap_or(u32::MAX)
    }

    /// Every cycle length in use: one sweep cursor per shard and cycle.
    pub fn cycles(&self) -> Vec<u32> {
        let mut cycles = vec![Self::cycle_of(self.webhook_interval), Self::cycle_of(self.pull_interval)];
        cycles.sort_unstable();
        cycles.dedup();
        cycles
    }

    /// The slot a healthy connection of `provider` sits in; phone sources are never pulled.
    pub fn slot(&self, user: &UserId, provider: Provider) -> Option<DueSlot> {
        if provider.is_phone_upload() {
            return None;
        }
        let cycle = Self::cycle_of(self.interval(provider));
        Some(DueSlot { shard: shard_of(user, provider), cycle, phase: phase_hash(user, provider) % cycle })
    }
}

pub(super) fn jittered(base: Duration) -> Duration {
    use rand::Rng;
    let spread = base.as_secs_f64() * 0.1;
    Duration::from_secs_f64((base.as_secs_f64() + rand::rng().random_range(-spread..=spread)).max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cadence_and_spread_within_a_shard() {
        let schedule = Schedule::default();
        let user = |i: usize| UserId::parse(&format!("user{i}")).unwrap();
        let google = schedule.slot(&user(1), Provider::GoogleHealth).unwrap();
        assert_eq!(google.cycle, 24, "every 6 h in 15-minute phases");
        assert_eq!(schedule.slot(&user(1), Provider::Fitbit).unwrap().cycle, 2, "pull-only every 30 min");
        assert_eq!(schedule.slot(&user(1), Provider::AppleHealth), None, "phones are never pulled");
        assert_eq!(schedule.slot(&user(1), Provider::GoogleHealth), Some(google), "stable");
        // Within one shard, every phase of the cycle is used (the phase does not follow the shard).
        let mut phases = std::collections::BTreeSet::new();
        for i in 0..2000 {
            let slot = schedule.slot(&user(i), Provider::GoogleHealth).unwrap();
            if slot.shard == 0 {
                phases.insert(slot.phase);
            }
        }
        assert_eq!(phases.len(), 24);
        assert_eq!(schedule.cycles(), [2, 24]);
    }

    #[test]
    fn phases_count_from_the_epoch() {
        let at: Timestamp = "2026-11-25T18:14:59Z".parse().unwrap();
        assert_eq!(phase_start(phase_index(at)), "2026-11-25T18:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(phase_index(at) + 1, phase_index("2026-11-25T18:15:00Z".parse().unwrap()));
    }
}
