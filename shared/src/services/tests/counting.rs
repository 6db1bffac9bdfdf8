//! A changed day is one write; the challenge totals it moves are counted after it, by the
//! writer and from the change stream, exactly once (`engine::counting`): a writer that stops
//! after its write, a record delivered twice, a lost earlier change, a day written while its
//! person joins, and a sealed participant.

use super::*;
use crate::domain::{ParticipantTotals, SourceTotals};
use crate::ports::{DayWrite, SealWrite, StepStore, StoreError, UserDays};
use crate::testing::Refusable;
use async_trait::async_trait;

fn refused() -> StoreError {
    StoreError::Unavailable("the function stopped".into())
}

/// Alice in "november", whose 4,000 steps on Nov 24 were written by a writer that stopped
/// before its count.
async fn uncounted_walk() -> (World, UserId, ChallengeId) {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.store.refuse_next(Refusable::CountDay, refused());
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-24", 4000)]).await;
    (w, alice, november)
}

/// The writer stops between its day write and its count: the leaderboard lags until the
/// stream's record is handled, which counts it once; the same batch delivered again counts
/// nothing more.
#[tokio::test]
async fn a_writer_that_stops_after_its_day_write_is_counted_by_the_stream_once() {
    let (w, alice, november) = uncounted_walk().await;
    assert_eq!(w.total(&november, &alice).await, (0, 0), "the count was lost with the writer");

    let changes = w.store.take_day_changes();
    let first = w.stream_handler().handle(&changes).await.unwrap();
    let again = w.stream_handler().handle(&changes).await.unwrap();

    assert_eq!((first.counted, again.counted), (1, 0));
    assert_eq!(w.total(&november, &alice).await, (4000, 1));
}

/// The usual case: the writer counted; the stream finds every participant past the change and
/// writes nothing.
#[tokio::test]
async fn the_stream_writes_nothing_for_changes_the_writer_counted() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-24", 4000), steps("2026-11-25", 100)]).await;
    w.walked(&alice, Provider::GoogleHealth, &[steps("2026-11-24", 4500)]).await;
    let writes = w.store.writes();

    let handled = w.stream_handler().handle(&w.store.take_day_changes()).await.unwrap();

    assert_eq!((handled.counted, handled.rebuilt, w.store.writes()), (0, 0, writes));
    let participant = w.store.participant(&november, &alice).await.unwrap().unwrap();
    let expected = SourceTotals(
        [
            (Provider::AppleHealth, ParticipantTotals { total: 4100, days: 2 }),
            (Provider::GoogleHealth, ParticipantTotals { total: 4500, days: 1 }),
        ]
        .into(),
    );
    assert_eq!(participant.sources, expected);
    assert_eq!(participant.counted.get(&date("2026-11-24")), Some(&2), "the day's version it includes");
}

/// Two changes of one day, both counts lost, and the first record never delivered (a stream
/// trimmed past it): the second finds the participant behind it, and the participant is
/// rebuilt from the day records instead of counting from the wrong base.
#[tokio::test]
async fn a_participant_behind_a_change_is_rebuilt_not_counted_from_the_wrong_base() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    for day_steps in [3000, 5000] {
        w.store.refuse_next(Refusable::CountDay, refused());
        w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-24", day_steps)]).await;
    }
    let changes = w.store.take_day_changes();

    let handled = w.stream_handler().handle(&changes[1..]).await.unwrap();

    assert_eq!((handled.counted, handled.rebuilt), (0, 1));
    assert_eq!(w.total(&november, &alice).await, (5000, 1), "not 2000");
    let late = w.stream_handler().handle(&changes[..1]).await.unwrap();
    assert_eq!((late.counted, w.total(&november, &alice).await), (0, (5000, 1)), "the late first record is past");
}

/// A sealed participant keeps its snapshot's numbers: neither the writer nor the stream moves
/// it.
#[tokio::test]
async fn a_sealed_participant_is_never_counted_into() {
    let w = World::new();
    let alice = user("alice");
    let early = w.challenge_with_grace("early", "2026-11-01", "2026-11-10", 0).await;
    w.clock.set("2026-11-05T12:00:00Z".parse().unwrap());
    w.join(&early, &alice).await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-05", 4000)]).await;
    w.clock.set("2026-11-25T18:00:00Z".parse().unwrap());
    let reconcile = crate::services::Reconcile { steps: w.store.as_ref(), store: w.store.as_ref() };
    reconcile.run(w.now()).await.unwrap();
    assert!(w.store.participant(&early, &alice).await.unwrap().unwrap().sealed);
    w.store.take_day_changes();

    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-05", 9000)]).await;
    w.stream_handler().handle(&w.store.take_day_changes()).await.unwrap();

    assert_eq!(w.total(&early, &alice).await, (4000, 1));
}

/// A store whose first read of a person's window (the join's) is followed, before the join
/// commits, by a day write: the write's own count finds no membership yet.
struct DayWrittenDuringJoin {
    inner: Arc<InMemoryStore>,
    engine: Arc<crate::engine::SyncEngine>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl StepStore for DayWrittenDuringJoin {
    async fn load_user_days(&self, user: &UserId, dates: &[LocalDate]) -> Result<UserDays, StoreError> {
        self.inner.load_user_days(user, dates).await
    }
    async fn load_user_window(&self, user: &UserId, start: LocalDate, end: LocalDate) -> Result<UserDays, StoreError> {
        let window = self.inner.load_user_window(user, start, end).await?;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let day = [steps("2026-11-24", 7000)];
            self.engine
                .apply(user, Provider::AppleHealth, &jiff::tz::TimeZone::UTC, &day)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        Ok(window)
    }
    async fn load_people_days(
        &self,
        users: &[UserId],
        dates: &[LocalDate],
    ) -> Result<std::collections::BTreeMap<UserId, UserDays>, StoreError> {
        self.inner.load_people_days(users, dates).await
    }
    async fn commit_day(&self, write: &DayWrite) -> Result<(), StoreError> {
        self.inner.commit_day(write).await
    }
    async fn count_day(&self, count: &crate::ports::DayCount) -> Result<(), StoreError> {
        self.inner.count_day(count).await
    }
    async fn commit_seal(&self, write: &SealWrite) -> Result<(), StoreError> {
        self.inner.commit_seal(write).await
    }
    async fn set_time_zone(&self, user: &UserId, zone: &str, expected_rev: u64) -> Result<(), StoreError> {
        self.inner.set_time_zone(user, zone, expected_rev).await
    }
    async fn set_primary_source(&self, user: &UserId, primary: Option<Provider>, rev: u64) -> Result<(), StoreError> {
        self.inner.set_primary_source(user, primary, rev).await
    }
    async fn erase_user(&self, user: &UserId) -> Result<usize, StoreError> {
        self.inner.erase_user(user).await
    }
}

/// The join read the window before a day was written, and the day's count ran before the
/// membership existed: the join reads the window again after it commits and rebuilds, so the
/// day is counted, once (the stream then finds the participant past it).
#[tokio::test]
async fn a_day_written_while_its_person_joins_is_counted_once() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    let racing = DayWrittenDuringJoin {
        inner: w.store.clone(),
        engine: w.engine.clone(),
        armed: std::sync::atomic::AtomicBool::new(true),
    };
    let challenges = Challenges { steps: &racing, store: w.store.as_ref() };

    let joined = challenges.join(&november, &alice, w.now()).await.unwrap();

    assert_eq!(joined.totals(), ParticipantTotals { total: 7000, days: 1 });
    assert_eq!(w.total(&november, &alice).await, (7000, 1));
    let handled = w.stream_handler().handle(&w.store.take_day_changes()).await.unwrap();
    assert_eq!((handled.counted, w.total(&november, &alice).await), (0, (7000, 1)));
}

/// Joins, leaves and rejoins between a change and its record: the record finds the new
/// participant past it (the rejoin counted the day) and counts nothing twice.
#[tokio::test]
async fn a_record_handled_after_a_rejoin_counts_nothing_twice() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-24", 4000)]).await;
    w.challenges().leave(&november, &alice, w.now()).await.unwrap();
    w.join(&november, &alice).await;

    w.stream_handler().handle(&w.store.take_day_changes()).await.unwrap();

    let right = SourceTotals([(Provider::AppleHealth, ParticipantTotals { total: 4000, days: 1 })].into());
    assert_eq!(w.store.participant(&november, &alice).await.unwrap().unwrap().sources, right);
}

/// A join records the version of each day of the window it counted, and only those.
#[tokio::test]
async fn a_join_records_the_versions_of_the_days_it_counted() {
    let w = World::new();
    let alice = user("alice");
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-24", 4000)]).await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-24", 4100), steps("2026-10-24", 10)]).await;
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    let participant = w.store.participant(&november, &alice).await.unwrap().unwrap();
    assert_eq!(participant.counted, [(date("2026-11-24"), 2)].into(), "only days in the window");
}

/// A participant stored before counting by version (no `counted` at all, as the memory store
/// is told here by removing it) refuses every count: the stream rebuilds it instead of
/// retrying for ever.
#[tokio::test]
async fn a_participant_stored_before_counting_by_version_is_rebuilt() {
    let (w, alice, november) = uncounted_walk().await;
    w.store.forget_counted(&november, &alice);

    let handled = w.stream_handler().handle(&w.store.take_day_changes()).await.unwrap();

    assert_eq!((handled.counted, handled.rebuilt), (0, 1));
    assert_eq!(w.total(&november, &alice).await, (4000, 1));
}
