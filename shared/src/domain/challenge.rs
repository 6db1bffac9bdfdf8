//! Challenges, their windows and states, participants and the leaderboard.

use super::{ChallengeId, LocalDate, ParseError, Provider, UserId};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest challenge window we accept, in days.
pub const MAX_CHALLENGE_DAYS: i32 = 366;
/// Longest grace period after the window, in days.
pub const MAX_GRACE_DAYS: u32 = 14;
/// The most open (not final) challenges one person can be in. A changed day moves every open
/// challenge covering it in one transaction with the day and the profile, and DynamoDB takes
/// at most 100 items in one: 50 keeps every day write far inside that, with room to spare.
pub const MAX_OPEN_CHALLENGES: usize = 50;
/// The most items one DynamoDB transaction takes (and the in-memory store refuses past it).
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// A step challenge: a window of local dates in one time zone, then a grace period for late
/// uploads, then final (totals frozen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub id: ChallengeId,
    pub name: String,
    pub start: LocalDate,
    pub end: LocalDate,
    pub time_zone: String,
    pub grace_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeState {
    Upcoming,
    Active,
    Grace,
    Final,
}

impl Challenge {
    pub fn new(
        id: ChallengeId,
        name: &str,
        start: LocalDate,
        end: LocalDate,
        time_zone: &str,
        grace_days: u32,
    ) -> Result<Self, ParseError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            return Err(ParseError::new("name", "must be 1 to 120 characters"));
        }
        if end < start {
            return Err(ParseError::new("end", "must not be before start"));
        }
        if start.add_days(MAX_CHALLENGE_DAYS - 1) < end {
            return Err(ParseError::new("end", format!("a challenge lasts at most {MAX_CHALLENGE_DAYS} days")));
        }
        if grace_days > MAX_GRACE_DAYS {
            return Err(ParseError::new("grace_days", format!("must be at most {MAX_GRACE_DAYS}")));
        }
        TimeZone::get(time_zone)
            .map_err(|_| ParseError::new("time_zone", format!("unknown time zone {time_zone:?}")))?;
        Ok(Self { id, name: name.to_owned(), start, end, time_zone: time_zone.to_owned(), grace_days })
    }

    fn tz(&self) -> TimeZone {
        // Validated in `new`; a zone removed from the database later falls back to UTC.
        TimeZone::get(&self.time_zone).unwrap_or(TimeZone::UTC)
    }

    fn start_of(&self, date: LocalDate) -> Timestamp {
        date.date().to_zoned_datetime(self.tz()).map(|z| z.timestamp()).unwrap_or(Timestamp::MAX)
    }

    pub fn starts_at(&self) -> Timestamp {
        self.start_of(self.start)
    }

    /// The end of the window: midnight after the last day.
    pub fn ends_at(&self) -> Timestamp {
        self.start_of(self.end.add_days(1))
    }

    /// After this instant the challenge is final and its totals never change: the grace days
    /// after the window, counted from midnight in the last zone on Earth to finish a day
    /// (UTC−12), which is never earlier than the challenge zone's own. A participant anywhere
    /// has lived all of the last day before it closes, even with no grace.
    pub fn closes_at(&self) -> Timestamp {
        let after = self.end.add_days(1 + self.grace_days as i32).date();
        after.to_zoned_datetime(TimeZone::fixed(jiff::tz::offset(-12))).map(|z| z.timestamp()).unwrap_or(Timestamp::MAX)
    }

    pub fn state(&self, now: Timestamp) -> ChallengeState {
        if now < self.starts_at() {
            ChallengeState::Upcoming
        } else if now < self.ends_at() {
            ChallengeState::Active
        } else if now < self.closes_at() {
            ChallengeState::Grace
        } else {
            ChallengeState::Final
        }
    }

    pub fn membership(&self) -> Membership {
        Membership { start: self.start, end: self.end, closes_at: self.closes_at(), sealed: false }
    }
}

/// What a person's profile keeps of each challenge they joined: enough for a day write to
/// find the participant totals it moves without another read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub start: LocalDate,
    pub end: LocalDate,
    pub closes_at: Timestamp,
    /// The participant's final numbers were frozen with the day values they came from
    /// (`Snapshot`): no day write looks at this membership again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
}

impl Membership {
    pub fn covers(&self, date: LocalDate) -> bool {
        self.start <= date && date <= self.end
    }

    pub fn is_final(&self, now: Timestamp) -> bool {
        now >= self.closes_at
    }

    /// Final but not yet sealed: a write to a day it covers must seal it first, so the
    /// snapshot holds the day values as they were at close.
    pub fn needs_seal(&self, now: Timestamp) -> bool {
        self.is_final(now) && !self.sealed
    }
}

/// A participant's final numbers, frozen at close together with the day values they came
/// from (`CHAL#{id}` / `SNAP#{user}`): a closed challenge is checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub totals: SourceTotals,
    /// Each day in the window with a value: every source's steps.
    pub days: BTreeMap<LocalDate, BTreeMap<Provider, u32>>,
    pub sealed_at: Timestamp,
}

impl Snapshot {
    /// The snapshot of the day records in `membership`'s window.
    pub fn of<'a>(
        membership: &Membership,
        days: impl IntoIterator<Item = &'a super::DayRecord>,
        now: Timestamp,
    ) -> Self {
        let mut snapshot = Snapshot { totals: SourceTotals::default(), days: BTreeMap::new(), sealed_at: now };
        for day in days.into_iter().filter(|d| membership.covers(d.date) && !d.sources.is_empty()) {
            let values: BTreeMap<Provider, u32> = day.sources.iter().map(|(p, v)| (*p, v.steps.get())).collect();
            for (source, steps) in &values {
                snapshot.totals.add(*source, i64::from(*steps), i64::from(*steps > 0));
            }
            snapshot.days.insert(day.date, values);
        }
        snapshot
    }

    /// Whether the totals are exactly what the day values add up to.
    pub fn is_consistent(&self) -> bool {
        let mut again = SourceTotals::default();
        for values in self.days.values() {
            for (source, steps) in values {
                again.add(*source, i64::from(*steps), i64::from(*steps > 0));
            }
        }
        again == self.totals
    }
}

/// The item behind `USER#{user}` / `PROFILE`: the person's choices and memberships, and `rev`,
/// the per-person revision that every day write and every join or leave moves. Conditioning
/// on it makes a day write and a join serialise, so a join racing a day write stays exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    pub primary: Option<Provider>,
    /// The person's IANA zone as their phone last reported it: the zone of "today" and of
    /// pull windows for a connection whose provider does not say its own.
    pub time_zone: Option<String>,
    pub memberships: BTreeMap<ChallengeId, Membership>,
    pub rev: u64,
}

impl UserProfile {
    /// The person's zone (their phone's last), UTC when unknown or no longer in the database:
    /// the zone of the days of a connection whose source does not say its own.
    pub fn zone(&self) -> TimeZone {
        self.time_zone.as_deref().and_then(|z| TimeZone::get(z).ok()).unwrap_or(TimeZone::UTC)
    }
}

/// A participant's numbers from one source, or the numbers a challenge counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantTotals {
    pub total: u64,
    /// Days in the window with more than zero steps.
    pub days: u32,
}

/// A participant's running numbers per source over the challenge window.
///
/// A challenge counts one source per person: the best single source, the one with the most
/// steps over the window (then more days, then the fixed order of `Provider::ALL`). Sources
/// never mix, so a walk that two sources put on different dates (a watch on Chicago time, a
/// phone already on Tokyo time) is counted once: the count is never more than one source saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTotals(pub BTreeMap<Provider, ParticipantTotals>);

impl SourceTotals {
    /// The source the challenge counts, with its numbers; `None` before any steps.
    pub fn counted(&self) -> Option<(Provider, ParticipantTotals)> {
        let rank = |p: &Provider| Provider::ALL.iter().position(|q| q == p).unwrap_or(usize::MAX);
        self.0
            .iter()
            .filter(|(_, t)| t.total > 0 || t.days > 0)
            .max_by(|(a, x), (b, y)| (x.total, x.days).cmp(&(y.total, y.days)).then_with(|| rank(b).cmp(&rank(a))))
            .map(|(p, t)| (*p, *t))
    }

    /// The numbers the challenge counts.
    pub fn best(&self) -> ParticipantTotals {
        self.counted().map(|(_, t)| t).unwrap_or_default()
    }

    /// Moves one source's numbers; a source left with nothing is dropped.
    pub fn add(&mut self, source: Provider, total: i64, days: i64) {
        let entry = self.0.entry(source).or_default();
        entry.total = entry.total.saturating_add_signed(total);
        entry.days = u32::try_from(i64::from(entry.days) + days).unwrap_or(0);
        if *entry == ParticipantTotals::default() {
            self.0.remove(&source);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub challenge: ChallengeId,
    pub user: UserId,
    pub sources: SourceTotals,
    pub joined_at: Timestamp,
    /// Frozen with a `Snapshot`.
    pub sealed: bool,
    /// The version of each day record the numbers include (`DayCount`): a day change is
    /// counted only onto the version it came from, so none is counted twice or skipped.
    pub counted: BTreeMap<LocalDate, u64>,
    /// Moves with every write of the numbers: a rebuild is conditioned on it.
    pub rev: u64,
}

impl Participant {
    /// The numbers the challenge counts: the best single source's.
    pub fn totals(&self) -> ParticipantTotals {
        self.sources.best()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderboardEntry {
    /// Competition rank: ties share a rank (1, 2, 2, 4); ties are listed by user id.
    pub rank: u32,
    pub user: UserId,
    pub total: u64,
    pub days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderboardPage {
    pub entries: Vec<LeaderboardEntry>,
    /// Opaque cursor for the next page; absent on the last page.
    pub next: Option<String>,
    pub participants: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    fn challenge(grace: u32) -> Challenge {
        Challenge::new(
            ChallengeId::parse("c1").unwrap(),
            "November walk",
            LocalDate::parse("2026-11-01").unwrap(),
            LocalDate::parse("2026-11-30").unwrap(),
            "America/Chicago",
            grace,
        )
        .unwrap()
    }

    #[test]
    fn states_follow_the_window_in_the_challenge_time_zone() {
        let c = challenge(3);
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        // 1 November 2026 starts in daylight time (-05:00); the window ends in standard time.
        assert_eq!(c.state(ts("2026-11-01T04:59:59Z")), ChallengeState::Upcoming);
        assert_eq!(c.state(ts("2026-11-01T05:00:00Z")), ChallengeState::Active);
        assert_eq!(c.state(ts("2026-12-01T06:00:00Z")), ChallengeState::Grace);
        // Three grace days, counted from when 30 November has ended everywhere (UTC−12).
        assert_eq!(c.state(ts("2026-12-04T11:59:59Z")), ChallengeState::Grace);
        assert_eq!(c.state(ts("2026-12-04T12:00:00Z")), ChallengeState::Final);
    }

    /// A challenge in UTC with no grace: a participant at UTC−11 still has hours of the last
    /// day to walk when it is over in UTC; the challenge stays open until that day is over.
    #[test]
    fn a_challenge_closes_only_once_its_last_day_is_over_everywhere() {
        let c =
            Challenge::new(ChallengeId::parse("c").unwrap(), "Walk", day("2026-11-01"), day("2026-11-30"), "UTC", 0)
                .unwrap();
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        // 22:00 on 30 November in Pago Pago (UTC−11) is 09:00 on 1 December in UTC.
        assert_eq!(c.state(ts("2026-12-01T09:00:00Z")), ChallengeState::Grace);
        assert!(!c.membership().is_final(ts("2026-12-01T09:00:00Z")));
        assert_eq!(c.closes_at(), ts("2026-12-01T12:00:00Z"));
        // The grace days count from there, whatever the challenge's own zone (here UTC+14).
        let kiribati = Challenge::new(
            ChallengeId::parse("k").unwrap(),
            "Walk",
            day("2026-11-01"),
            day("2026-11-30"),
            "Pacific/Kiritimati",
            1,
        )
        .unwrap();
        assert_eq!(kiribati.closes_at(), ts("2026-12-02T12:00:00Z"));
    }

    #[test]
    fn bad_windows_are_refused_with_the_field_named() {
        let id = ChallengeId::parse("c").unwrap();
        let d = |s: &str| LocalDate::parse(s).unwrap();
        let err = Challenge::new(id.clone(), "x", d("2026-11-02"), d("2026-11-01"), "UTC", 0).unwrap_err();
        assert_eq!(err.field, "end");
        let err = Challenge::new(id.clone(), "x", d("2026-11-01"), d("2026-11-02"), "Mars/Base", 0).unwrap_err();
        assert_eq!(err.field, "time_zone");
        let err = Challenge::new(id, " ", d("2026-11-01"), d("2026-11-02"), "UTC", 0).unwrap_err();
        assert_eq!(err.field, "name");
    }
}
