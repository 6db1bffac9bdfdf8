//! One walk, one day: the zone of "today" and of pull windows is the person's, and a challenge
//! counts one source per person, so two sources that put a walk on different dates never
//! count it twice.

use super::*;
use crate::domain::ParticipantTotals;

/// The example. Alice walks 10,000 steps at 22:00 on Nov 24 in Chicago, then flies;
/// her Fitbit (Google, Chicago's dates) has Nov 24 = 10,000 and Nov 25 = 3,000 while her
/// phone, already on Tokyo time, puts the walk on Nov 25 (1,500 on the 24th, 11,000 on the
/// 25th). Largest-per-day would count 10,000 + 11,000 = 21,000 for about 13,000 real steps;
/// the challenge counts Google's 13,000, the best single source, and never more than one
/// source saw.
#[tokio::test]
async fn a_walk_two_sources_put_on_different_dates_counts_once() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-24", 10_000), steps("2026-11-25", 3_000)]);
    w.syncing
        .handle_event(
            Event::SyncRequested(SyncRequested {
                user: alice.clone(),
                provider: Provider::GoogleHealth,
                reason: crate::events::SyncReason::Schedule,
                start: None,
                end: None,
                noticed_at: None,
                notice_id: None,
                upload: None,
            }),
            None,
        )
        .await
        .unwrap();
    let phone = vec![steps("2026-11-24", 1_500), steps("2026-11-25", 11_000)];
    w.uploads.upload(&alice, from_phone_in("Asia/Tokyo", phone)).await.unwrap();

    let counted = w.store.participant(&november, &alice).await.unwrap().unwrap();
    assert_eq!(counted.sources.counted(), Some((Provider::GoogleHealth, ParticipantTotals { total: 13_000, days: 2 })));
    assert_eq!(w.total(&november, &alice).await, (13_000, 2), "not 21,000");
    let best_single = counted.sources.0.values().map(|t| t.total).max().unwrap();
    assert!(counted.totals().total <= best_single);
    assert_eq!(counted.sources, w.challenges().recompute(&november, &alice).await.unwrap());
    // The days themselves still show each date's own best value.
    assert_eq!(w.store.day(&alice, date("2026-11-25")).unwrap().total.get(), 11_000);

    // Once the phone has counted more over the window, it is the one that counts, whole.
    w.uploads.upload(&alice, from_phone_in("Asia/Tokyo", vec![steps("2026-11-26", 4_000)])).await.unwrap();
    assert_eq!(w.total(&november, &alice).await, (16_500, 3));
}

/// "Today" is the person's: at 18:00 UTC on Nov 25 it is already Nov 26 in Tokyo. A Google
/// connection that does not say its own zone pulls up to the person's today once their phone
/// said where they are; one whose provider says its zone (Google's settings) uses that.
#[tokio::test]
async fn pull_windows_end_on_the_persons_today() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let pulled = || w.google.windows.lock().unwrap().last().copied().unwrap();
    let sync = || async {
        let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
        w.syncing.sync_connection(&connection, None, None).await.unwrap();
    };

    sync().await;
    assert_eq!(pulled(), (date("2026-11-19"), date("2026-11-25")), "no zone known yet: UTC");

    w.uploads.upload(&alice, from_phone_in("Asia/Tokyo", vec![steps("2026-11-26", 500)])).await.unwrap();
    assert_eq!(
        w.ports.steps.load_user_days(&alice, &[]).await.unwrap().profile.time_zone.as_deref(),
        Some("Asia/Tokyo")
    );
    sync().await;
    assert_eq!(pulled(), (date("2026-11-20"), date("2026-11-26")), "Tokyo's today");

    // The provider's own zone wins: Google's dates are in the account's zone.
    let mut own = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    own.time_zone = Some("America/Chicago".into());
    w.store.save_connection(&own, Some(own.token_version)).await.unwrap();
    sync().await;
    assert_eq!(pulled(), (date("2026-11-19"), date("2026-11-25")), "Chicago's today");
}

/// The same upload again learns nothing and writes no profile; a new zone is learned once.
#[tokio::test]
async fn the_phones_zone_is_learned_once_per_change() {
    let w = World::new();
    let alice = user("alice");
    w.uploads.upload(&alice, from_phone_in("America/Chicago", vec![steps("2026-11-24", 100)])).await.unwrap();
    let rev = w.ports.steps.load_user_days(&alice, &[]).await.unwrap().profile.rev;
    w.uploads.upload(&alice, from_phone_in("America/Chicago", vec![steps("2026-11-24", 100)])).await.unwrap();
    let profile = w.ports.steps.load_user_days(&alice, &[]).await.unwrap().profile;
    assert_eq!((profile.time_zone.as_deref(), profile.rev), (Some("America/Chicago"), rev));
    w.uploads.upload(&alice, from_phone_in("Asia/Tokyo", vec![steps("2026-11-24", 100)])).await.unwrap();
    let profile = w.ports.steps.load_user_days(&alice, &[]).await.unwrap().profile;
    assert_eq!(profile.time_zone.as_deref(), Some("Asia/Tokyo"));
}

/// A sync that starts at 23:59:50 and commits after midnight: its window was fixed when it
/// started and ends on that day, which it commits; the new day is not taken for removed, and
/// the next sync's window ends on the new day.
#[tokio::test]
async fn a_sync_across_midnight_commits_its_day_and_the_next_window_ends_on_the_new_day() {
    let gate = std::sync::Arc::new(crate::testing::Gate::default());
    let w = World::with(
        ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![steps("2026-11-25", 9000)])).gated(gate.clone()),
        ScriptedOAuth::granting(SCOPE, "g-alice"),
    );
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.clock.set("2026-11-25T23:59:50Z".parse().unwrap());
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();

    let (synced, ()) = tokio::join!(w.syncing.sync_connection(&connection, None, None), async {
        gate.reached().await;
        w.clock.set("2026-11-26T00:00:10Z".parse().unwrap());
        w.google.ungate();
        gate.open();
    });

    assert!(synced.is_ok(), "{synced:?}");
    assert_eq!(w.google.windows.lock().unwrap()[0], (date("2026-11-19"), date("2026-11-25")), "fixed at the start");
    assert_eq!(w.store.day(&alice, date("2026-11-25")).map(|d| d.total.get()), Some(9000));
    assert_eq!(w.store.day(&alice, date("2026-11-26")), None, "the new day is untouched");
    assert_eq!(w.total(&november, &alice).await, (9000, 1));
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-25", 9000), steps("2026-11-26", 40)]);
    let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    w.syncing.sync_connection(&connection, None, None).await.unwrap();
    assert_eq!(w.google.windows.lock().unwrap()[1], (date("2026-11-20"), date("2026-11-26")));
    assert_eq!(w.total(&november, &alice).await, (9040, 2));
}

/// Days are civil dates, never 24-hour spans. On Chicago's 25-hour day (clocks fall back at
/// 02:00 on Nov 1, 2026) the day is "today" through both 01:30s, its value counts once and a
/// later reading replaces it; on the 23-hour day (Mar 8, 2026) "today" is the calendar's.
#[tokio::test]
async fn a_daylight_saving_day_is_one_day_counted_once() {
    let w = World::new();
    let alice = user("alice");
    w.clock.set("2026-11-01T06:30:00Z".parse().unwrap()); // 01:30 CDT, the first one
    let fall = w.challenge("fall", "2026-10-25", "2026-11-07").await;
    w.join(&fall, &alice).await;
    let chicago = |values| from_phone_in("America/Chicago", values);

    w.uploads.upload(&alice, chicago(vec![steps("2026-11-01", 5000)])).await.unwrap();
    w.clock.set("2026-11-01T07:30:00Z".parse().unwrap()); // 01:30 CST, an hour later
    let report = w
        .uploads
        .upload(&alice, chicago(vec![steps("2026-11-01", 7000), steps("2026-11-02", 10), steps("2026-11-03", 10)]))
        .await
        .unwrap();

    let rejected: Vec<(String, &str)> =
        report.rejected.iter().map(|r| (r.local_date.to_string(), r.error.as_str())).collect();
    assert_eq!(rejected, [("\"2026-11-03\"".to_owned(), "future_date")], "Nov 1 is still today, Nov 2 tomorrow");
    assert_eq!(w.total(&fall, &alice).await, (7010, 2), "the 25-hour day counts once, its later reading");

    w.clock.set("2026-03-08T08:30:00Z".parse().unwrap()); // 03:30 CDT, just after the jump
    let spring =
        w.uploads.upload(&alice, chicago(vec![steps("2026-03-08", 300), steps("2026-03-10", 1)])).await.unwrap();
    assert_eq!(spring.applied.len(), 1);
    assert_eq!(spring.rejected[0].error, "future_date", "Mar 9 is tomorrow, Mar 10 is not");
}
