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
