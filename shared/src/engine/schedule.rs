//! When a connection is pulled. A healthy connection sits in a fixed slot of its cadence's
//! cycle (from a hash of user and provider, so connections made together spread out) and is
//! swept once a cycle with no write of its own; only a connection backing off (or new, due
//! now) carries a due time (`next_sync_at`).

use crate::domain::{DUE_SHARDS, DueSlot, Provider, UserId, phase_hash, shard_among};
use jiff::Timestamp;
use std::time::Duration;

/// The schedule's unit: a cycle is a whole number of phases, and each phase is swept once a
/// cycle. Independent of the scheduler's tick (`SyncIntervalMinutes`): a tick sweeps every
/// phase begun since the last one swept, so a slower or missed tick delays, never skips.
pub const PHASE: Duration = Duration::from_secs(15 * 60);

/// People one sweep shard holds. One tick sweeps a shard's share of the phases begun since the
/// last (a webhook-fed connection is swept once every 24 phases of its 6-hour cycle), and one
/// `sync-worker` invocation must finish it: 250 s (its 300 s timeout less the stop margin) ÷
/// 0.3 s per sync deployed (the provider's answer dominates) × 8 at once = 6,666 connections a
/// phase, × 24 phases = 160,000 people. `bench/src/scale.rs` derives the same figure.
pub const PEOPLE_PER_SHARD: u64 = 160_000;

/// Sweep shards for an expected population (`STEPSYNC_EXPECTED_PEOPLE`): one per
/// `PEOPLE_PER_SHARD`, never fewer than `DUE_SHARDS`. Raise it ahead of the population, never
/// lower it: a connection keeps the shard it was slotted in until its slot is written again,
/// and the scheduler sweeps shards `0..shards`.
pub fn shards_for(expected_people: u64) -> u16 {
    let needed = expected_people.div_ceil(PEOPLE_PER_SHARD);
    u16::try_from(needed).unwrap_or(u16::MAX).max(DUE_SHARDS)
}

/// When a connection is next due for a pull.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Sources whose webhooks keep them fresh: the sweep only reconciles them.
    pub webhook_fed: Vec<Provider>,
    /// `STEPSYNC_RECONCILE_MINUTES` (default 360).
    pub webhook_interval: Duration,
    /// `STEPSYNC_PULL_MINUTES` (default 30).
    pub pull_interval: Duration,
    /// Sweep shards (`shards_for(STEPSYNC_EXPECTED_PEOPLE)`; at least `DUE_SHARDS`).
    pub shards: u16,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            webhook_fed: vec![
                Provider::GoogleHealth,
                Provider::Misfit,
                Provider::Oura,
                Provider::Withings,
                Provider::Polar,
                Provider::Garmin,
            ],
            webhook_interval: Duration::from_secs(6 * 3600),
            pull_interval: Duration::from_secs(30 * 60),
            shards: DUE_SHARDS,
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

    /// Phases per cycle of `provider`'s sweep: its slots are `0..cycle_for` in each shard.
    pub fn cycle_for(&self, provider: Provider) -> u32 {
        Self::cycle_of(self.interval(provider))
    }

    /// The slot a healthy connection of `provider` sits in; phone sources are never pulled.
    pub fn slot(&self, user: &UserId, provider: Provider) -> Option<DueSlot> {
        if provider.is_phone_upload() {
            return None;
        }
        let cycle = Self::cycle_of(self.interval(provider));
        let shard = shard_among(user, provider, self.shards);
        Some(DueSlot { shard, cycle, phase: phase_hash(user, provider) % cycle })
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
    fn shards_follow_the_expected_population_and_never_fall_below_the_minimum() {
        assert_eq!(shards_for(0), DUE_SHARDS);
        assert_eq!(shards_for(10_000), DUE_SHARDS);
        assert_eq!(shards_for(1_280_000), 8);
        assert_eq!(shards_for(1_280_001), 9);
        assert_eq!(shards_for(10_000_000), 63);
    }

    #[test]
    fn a_larger_shard_count_spreads_slots_over_every_shard() {
        let schedule = Schedule { shards: 20, ..Schedule::default() };
        let shards: std::collections::BTreeSet<u16> = (0..2_000)
            .filter_map(|i| schedule.slot(&UserId::parse(&format!("u{i}")).unwrap(), Provider::GoogleHealth))
            .map(|slot| slot.shard)
            .collect();
        assert_eq!(shards, (0..20).collect());
    }

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
