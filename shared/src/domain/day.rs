//! One person's steps for one local day: a value per source and the resolved total.

use super::{LocalDate, Provider, StepCount, UserId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The latest value one source reported for the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceValue {
    pub steps: StepCount,
    /// The provider's time for the value, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Timestamp>,
}

impl SourceValue {
    /// Whether `incoming` should replace `self` ("newest observation wins per source").
    ///
    /// With observation times on both sides (a pull's start, a phone's reading time) the later
    /// time wins, so an older fetch never replaces a newer one whatever the commit order;
    /// equal times fall back to the larger count to stay order-independent. Without a time,
    /// the value that arrives last wins. The same count again is never a change, even observed
    /// later: an unchanged re-pull costs no write (the stored time stays that of the first
    /// observation of the count).
    pub fn is_replaced_by(&self, incoming: &SourceValue) -> bool {
        if self.steps == incoming.steps {
            return false;
        }
        match (self.observed_at, incoming.observed_at) {
            (Some(old), Some(new)) => (new, incoming.steps) > (old, self.steps),
            _ => true,
        }
    }
}

/// The item behind `USER#{user}` / `DAY#{date}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRecord {
    pub user: UserId,
    pub date: LocalDate,
    pub sources: BTreeMap<Provider, SourceValue>,
    pub total: StepCount,
    /// 0 for a day never stored; each write stores `version + 1`, conditioned on `version`.
    pub version: u64,
    /// A phone platform's latest value per app installation (`install_id`); the platform's
    /// entry in `sources` is the largest of them (`merge_install`).
    pub installs: BTreeMap<(Provider, String), SourceValue>,
    /// When a pull last found a source's value gone (a deletion): an observation from before
    /// then never brings the value back.
    pub removed: BTreeMap<Provider, Timestamp>,
}

impl DayRecord {
    pub fn empty(user: UserId, date: LocalDate) -> Self {
        Self {
            user,
            date,
            sources: BTreeMap::new(),
            total: StepCount::ZERO,
            version: 0,
            installs: BTreeMap::new(),
            removed: BTreeMap::new(),
        }
    }

    /// Forgets one source's value: the provider deleted the day, or no longer returns it for a
    /// window it was asked for at `observed_at`. A value observed later stays (an older fetch
    /// never undoes a newer one). Returns whether the record changed.
    /// The removal is remembered (`removed`), so a value observed before it, committing
    /// later, does not bring it back.
    pub fn remove(&mut self, source: Provider, observed_at: Timestamp, primary: Option<Provider>) -> bool {
        let newer = self.sources.get(&source).and_then(|v| v.observed_at).is_some_and(|at| at > observed_at);
        if newer || self.sources.remove(&source).is_none() {
            return false;
        }
        self.removed.insert(source, observed_at);
        self.total = resolve_total(&self.sources, primary);
        true
    }

    /// Whether `incoming` was observed no later than the source's last removal.
    fn removed_after(&self, source: Provider, incoming: &SourceValue) -> bool {
        let removed = self.removed.get(&source);
        matches!((removed, incoming.observed_at), (Some(at), Some(observed)) if observed <= *at)
    }

    /// Merges one installation's value for a phone platform; returns whether the record
    /// changed. Per installation the latest observation wins, as per source; the platform's
    /// value is the largest of its installations', so two devices never add up and a second
    /// device's partial count (an iPad's 3,000 beside the iPhone's 9,000) never lowers the day.
    /// A platform value stored before installations were kept counts as one more installation.
    pub fn merge_install(
        &mut self,
        source: Provider,
        install: &str,
        incoming: SourceValue,
        primary: Option<Provider>,
    ) -> bool {
        if let Some(earlier) = self.sources.get(&source).copied()
            && !self.installs.keys().any(|(p, _)| *p == source)
        {
            self.installs.insert((source, String::new()), earlier);
        }
        let key = (source, install.to_owned());
        if !self.installs.get(&key).is_none_or(|current| current.is_replaced_by(&incoming)) {
            return false;
        }
        self.installs.insert(key, incoming);
        let largest = self.installs.iter().filter(|((p, _), _)| *p == source).map(|(_, v)| *v);
        if let Some(value) = largest.max_by_key(|v| (v.steps, v.observed_at)) {
            self.sources.insert(source, value);
        }
        self.total = resolve_total(&self.sources, primary);
        true
    }

    /// Merges one source's value; returns whether the record changed.
    pub fn merge(&mut self, source: Provider, incoming: SourceValue, primary: Option<Provider>) -> bool {
        if self.removed_after(source, &incoming) {
            return false;
        }
        let replace = self.sources.get(&source).is_none_or(|current| current.is_replaced_by(&incoming));
        if replace {
            self.sources.insert(source, incoming);
            self.removed.remove(&source);
            self.total = resolve_total(&self.sources, primary);
        }
        replace
    }

    /// Re-resolves the total, e.g. after the person chose another primary source.
    pub fn resolve(&mut self, primary: Option<Provider>) -> bool {
        let total = resolve_total(&self.sources, primary);
        let changed = total != self.total;
        self.total = total;
        changed
    }
}

/// The day's total: the primary source's value when it has one for the day, otherwise the
/// largest value of any source. Sources are never added together (a phone and a watch count
/// the same walk).
pub fn resolve_total(sources: &BTreeMap<Provider, SourceValue>, primary: Option<Provider>) -> StepCount {
    resolved_source(sources, primary).and_then(|p| sources.get(&p)).map_or(StepCount::ZERO, |v| v.steps)
}

/// The source the day's total comes from: the primary source when it has a value for the
/// day, otherwise the one with the largest value.
pub fn resolved_source(sources: &BTreeMap<Provider, SourceValue>, primary: Option<Provider>) -> Option<Provider> {
    primary.filter(|p| sources.contains_key(p)).or_else(|| sources.iter().max_by_key(|(_, v)| v.steps).map(|(p, _)| *p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Option<Timestamp> {
        Some(Timestamp::from_second(secs).unwrap())
    }

    fn sv(steps: u32, observed_at: Option<Timestamp>) -> SourceValue {
        SourceValue { steps: StepCount::from_stored(steps), observed_at }
    }

    /// An iPhone and an iPad on one Apple Health account: never summed, a partial count
    /// never lowers the day, each device's own newer observation replaces its older one.
    #[test]
    fn installs_of_one_platform_never_add_up_and_a_partial_never_lowers_the_day() {
        let mut day = DayRecord::empty(UserId::parse("u").unwrap(), LocalDate::parse("2026-11-24").unwrap());
        let value = |steps: u32, secs: i64| SourceValue { steps: StepCount::from_stored(steps), observed_at: at(secs) };
        let apple = Provider::AppleHealth;
        assert!(day.merge_install(apple, "iphone", value(9000, 100), None));
        assert!(day.merge_install(apple, "ipad", value(3000, 200), None), "the iPad's value is kept");
        assert_eq!(day.total.get(), 9000);
        assert!(!day.merge_install(apple, "iphone", value(8000, 50), None), "an older observation changes nothing");
        assert!(day.merge_install(apple, "iphone", value(9500, 300), None));
        assert_eq!(day.total.get(), 9500);
        assert!(!day.merge_install(apple, "iphone", value(9500, 300), None), "the same value again is no change");
        // A value stored before installs were kept stays as one more device.
        let mut legacy = DayRecord::empty(UserId::parse("u").unwrap(), LocalDate::parse("2026-11-24").unwrap());
        legacy.merge(apple, value(7000, 10), None);
        assert!(legacy.merge_install(apple, "ipad", value(2000, 20), None));
        assert_eq!(legacy.total.get(), 7000);
    }

    fn day() -> DayRecord {
        DayRecord::empty(UserId::parse("u1").unwrap(), LocalDate::parse("2026-11-24").unwrap())
    }

    #[test]
    fn sources_never_add_up_the_total_is_the_maximum() {
        let mut d = day();
        assert!(d.merge(Provider::AppleHealth, sv(8000, None), None));
        assert!(d.merge(Provider::GoogleHealth, sv(7500, None), None));
        assert_eq!(d.total.get(), 8000);
    }

    #[test]
    fn the_primary_source_decides_when_it_has_a_value() {
        let mut d = day();
        d.merge(Provider::AppleHealth, sv(8000, None), Some(Provider::GoogleHealth));
        assert_eq!(d.total.get(), 8000, "no primary value yet: maximum");
        d.merge(Provider::GoogleHealth, sv(7500, None), Some(Provider::GoogleHealth));
        assert_eq!(d.total.get(), 7500);
    }

    #[test]
    fn an_older_provider_value_never_replaces_a_newer_one() {
        let mut d = day();
        assert!(d.merge(Provider::GoogleHealth, sv(900, at(20)), None));
        assert!(!d.merge(Provider::GoogleHealth, sv(1200, at(10)), None));
        assert_eq!(d.total.get(), 900);
        assert!(d.merge(Provider::GoogleHealth, sv(800, at(30)), None), "corrections may go down");
        assert_eq!(d.total.get(), 800);
    }

    /// A pull that found the day gone beats an older fetch that saw it, whatever the commit
    /// order; a later observation brings it back.
    #[test]
    fn a_removal_is_not_undone_by_an_older_observation() {
        let mut d = day();
        assert!(d.merge(Provider::GoogleHealth, sv(900, at(10)), None));
        assert!(d.remove(Provider::GoogleHealth, Timestamp::from_second(30).unwrap(), None));
        assert!(!d.merge(Provider::GoogleHealth, sv(900, at(20)), None), "seen at 20, gone at 30");
        assert_eq!(d.total.get(), 0);
        assert!(d.merge(Provider::GoogleHealth, sv(700, at(40)), None));
        assert_eq!((d.total.get(), d.removed.len()), (700, 0));
    }

    #[test]
    fn the_same_value_again_is_not_a_change() {
        let mut d = day();
        assert!(d.merge(Provider::Misfit, sv(500, None), None));
        assert!(!d.merge(Provider::Misfit, sv(500, None), None));
        assert!(d.merge(Provider::Misfit, sv(400, None), None), "without times the last arrival wins");
        assert!(!d.merge(Provider::Misfit, sv(400, at(50)), None), "the same count observed later is no write");
        assert!(d.merge(Provider::Misfit, sv(450, at(60)), None));
        assert!(!d.merge(Provider::Misfit, sv(300, at(55)), None), "an older observation never replaces");
    }
}
