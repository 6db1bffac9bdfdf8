//! Counting committed day changes into challenge totals, exactly once.
//!
//! A changed day is written alone (one conditional write of the day item: `DayWrite`); the
//! participants whose challenge counts the date are moved after it, one conditional update
//! each (`DayCount`), by two hands: the writer, right after its write (so the leaderboard
//! moves at once), and the table's change stream (`services::day_events`), which sees every
//! committed write in order per day and is retried until it succeeds (so a writer that dies
//! between its write and its counts loses nothing).
//!
//! Why nothing is counted twice or skipped: a participant records, per date, the version of
//! the day record its numbers include (`Participant::counted`), and a count moves it from the
//! version the change came from to the one it made, conditioned on the first. The changes of
//! one day form a chain of versions, so each is applied once, in order: a duplicate (the
//! stream after the writer, a redelivery) finds the participant past it; a count whose
//! predecessor is missing finds the participant behind it and is not applied (the stream
//! applies the predecessor first; a chain that cannot be completed is rebuilt from the day
//! records). Joins and rebuilds write the versions of the days they counted, with the numbers.

use crate::domain::{DayRecord, Provider, UserProfile};
use crate::ports::{DayChange, DayCount};

/// The counts one committed change makes: one per membership whose window covers the date, not
/// sealed and not final when the change was written, with each source's moved numbers. A
/// change that moves no source's numbers (another installation below the platform's largest)
/// still moves the counted version, so the chain of versions stays unbroken.
pub fn day_counts(profile: &UserProfile, change: &DayChange) -> Vec<DayCount> {
    let new = &change.new;
    let deltas = source_deltas(change.old.as_ref(), new);
    profile
        .memberships
        .iter()
        .filter(|(_, m)| m.covers(new.date) && !m.sealed && !m.is_final(change.written_at))
        .map(|(challenge, _)| DayCount {
            challenge: challenge.clone(),
            user: new.user.clone(),
            date: new.date,
            from_version: change.old.as_ref().map_or(0, |o| o.version),
            to_version: new.version,
            deltas: deltas.clone(),
            written_at: change.written_at,
        })
        .collect()
}

/// Per source whose value moved between `old` and `new`: the steps moved and the days with
/// data moved (a value of 0 is not a day with data).
fn source_deltas(old: Option<&DayRecord>, new: &DayRecord) -> Vec<(Provider, i64, i64)> {
    let steps = |day: Option<&DayRecord>, p: &Provider| {
        day.and_then(|d| d.sources.get(p)).map_or(0, |v| i64::from(v.steps.get()))
    };
    Provider::ALL
        .iter()
        .map(|p| (*p, steps(old, p), steps(Some(new), p)))
        .map(|(p, before, after)| (p, after - before, i64::from(after > 0) - i64::from(before > 0)))
        .filter(|(_, total, days)| *total != 0 || *days != 0)
        .collect()
}

/// Where a participant stands against one count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Counts the date at the count's `from_version`: the count applies.
    Ready,
    /// Counts the date at `to_version` or later: applied already (or a join or rebuild saw it).
    Past,
    /// Counts an older version than the count came from: an earlier change is missing.
    Behind,
}

/// Where `counted` (a participant's version of the count's date, if any) stands against `count`.
pub fn standing(counted: Option<u64>, count: &DayCount) -> Standing {
    let counted = counted.unwrap_or(0);
    if counted >= count.to_version {
        Standing::Past
    } else if counted == count.from_version {
        Standing::Ready
    } else {
        Standing::Behind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChallengeId, LocalDate, Membership, SourceValue, StepCount, UserId};
    use jiff::Timestamp;

    fn day(version: u64, sources: &[(Provider, u32)]) -> DayRecord {
        let mut d = DayRecord::empty(UserId::parse("alice").unwrap(), LocalDate::parse("2026-11-24").unwrap());
        for (p, steps) in sources {
            d.sources.insert(*p, SourceValue { steps: StepCount::from_stored(*steps), observed_at: None });
        }
        d.version = version;
        d
    }

    fn profile(closes_at: &str, sealed: bool) -> UserProfile {
        let mut p = UserProfile::default();
        let m = Membership {
            start: LocalDate::parse("2026-11-01").unwrap(),
            end: LocalDate::parse("2026-11-30").unwrap(),
            closes_at: closes_at.parse().unwrap(),
            sealed,
        };
        p.memberships.insert(ChallengeId::parse("c").unwrap(), m);
        p
    }

    fn change(old: Option<DayRecord>, new: DayRecord, at: &str) -> DayChange {
        DayChange { id: "1".into(), old, new, written_at: at.parse::<Timestamp>().unwrap() }
    }

    #[test]
    fn a_change_counts_each_moved_source_once_per_open_membership() {
        let c = change(
            Some(day(1, &[(Provider::AppleHealth, 8000)])),
            day(2, &[(Provider::AppleHealth, 8000), (Provider::GoogleHealth, 7600)]),
            "2026-11-25T00:00:00Z",
        );
        let counts = day_counts(&profile("2026-12-02T00:00:00Z", false), &c);
        assert_eq!(counts.len(), 1);
        assert_eq!((counts[0].from_version, counts[0].to_version), (1, 2));
        assert_eq!(counts[0].deltas, [(Provider::GoogleHealth, 7600, 1)]);
    }

    #[test]
    fn a_change_that_moves_no_source_still_moves_the_version() {
        let same = day(3, &[(Provider::AppleHealth, 8000)]);
        let c = change(Some(day(2, &[(Provider::AppleHealth, 8000)])), same, "2026-11-25T00:00:00Z");
        let counts = day_counts(&profile("2026-12-02T00:00:00Z", false), &c);
        assert_eq!((counts[0].from_version, counts[0].to_version, counts[0].deltas.len()), (2, 3, 0));
    }

    #[test]
    fn final_and_sealed_memberships_are_not_counted() {
        let c = change(None, day(1, &[(Provider::Misfit, 10)]), "2026-12-02T00:00:00Z");
        assert!(day_counts(&profile("2026-12-02T00:00:00Z", false), &c).is_empty(), "written at the close");
        assert!(day_counts(&profile("2026-12-03T00:00:00Z", true), &c).is_empty(), "sealed");
    }

    #[test]
    fn the_standing_orders_the_chain() {
        let c = change(Some(day(2, &[])), day(3, &[]), "2026-11-25T00:00:00Z");
        let count = &day_counts(&profile("2026-12-02T00:00:00Z", false), &c)[0];
        assert_eq!(standing(Some(2), count), Standing::Ready);
        assert_eq!(standing(Some(3), count), Standing::Past);
        assert_eq!(standing(Some(7), count), Standing::Past);
        assert_eq!(standing(Some(1), count), Standing::Behind);
        assert_eq!(standing(None, count), Standing::Behind);
        let first = change(None, day(1, &[]), "2026-11-25T00:00:00Z");
        assert_eq!(standing(None, &day_counts(&profile("2026-12-02T00:00:00Z", false), &first)[0]), Standing::Ready);
    }
}
