//! Every committed day change is one `StepsUpdated` with the day's version, published from the
//! change stream: a run that fails after some days were written, a bus that is down, and a
//! "Sync steps" past its deadline lose none, and nothing unchanged is announced.

use super::*;
use crate::events::StepsUpdated;
use crate::ports::ProviderError;
use crate::services::DayChange;

fn summary(updates: &[StepsUpdated]) -> Vec<(String, u32, u32, u64)> {
    updates.iter().map(|u| (u.date.to_string(), u.old_total, u.new_total, u.version)).collect()
}

/// A pull writes Nov 23, then the store fails on Nov 24: the run fails and is retried. The day
/// it did write is already in the stream, so its event is not lost though the retry sees it
/// unchanged; the retry's own write adds the other.
#[tokio::test]
async fn a_run_that_fails_after_some_days_were_written_loses_no_event() {
    let w = World::new();
    let alice = user("alice");
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-23", 4000)]).await;
    w.day_events().await;
    // The first run commits Nov 23 from Google; then the provider fails mid-way for the rest.
    w.engine
        .apply(&alice, Provider::GoogleHealth, &jiff::tz::TimeZone::UTC, &[steps("2026-11-23", 4500)])
        .await
        .unwrap();
    *w.google.answer.lock().unwrap() = Err(ProviderError::Unavailable("down".into()));
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    w.syncing.sync_connection(&connection, None, None).await.unwrap();
    // The retry: Nov 23 is unchanged now, Nov 24 is new.
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-23", 4500), steps("2026-11-24", 6000)]);
    w.clock.advance(Duration::from_secs(60));
    w.syncing.sync_connection(&connection, None, None).await.unwrap();

    let updates = w.day_events().await;
    assert_eq!(summary(&updates), [("2026-11-23".into(), 4000, 4500, 2), ("2026-11-24".into(), 0, 6000, 1)]);
    assert!(updates.iter().all(|u| u.source == Provider::GoogleHealth));
}

/// The bus is down when the stream's batch is handed over: the publisher names the first
/// record not published, the stream hands it back with every later one, and the next attempt
/// publishes them in order. Earlier chunks published already may come again: same version.
#[tokio::test]
async fn a_bus_that_is_down_hands_the_records_back_until_they_are_published() {
    let w = World::new();
    let alice = user("alice");
    let days: Vec<DailyValue> = (1..=12).map(|d| steps(&format!("2026-11-{d:02}"), 1000 + d)).collect();
    w.walked(&alice, Provider::AppleHealth, &days).await;
    let changes: Vec<DayChange> = w.store.take_day_changes();
    assert_eq!(changes.len(), 12, "one record per committed day");
    let events = w.stream_handler();

    w.publisher.fail(true);
    assert_eq!(events.handle(&changes).await.map(|h| h.published), Err(changes[0].id.clone()));
    w.publisher.fail(false);
    assert_eq!(events.handle(&changes).await.map(|h| h.published), Ok(12));
    let published: Vec<_> = w.publisher.events();
    assert_eq!(published.len(), 12);
    assert!(changes.windows(2).all(|pair| pair[0].id < pair[1].id), "commit order");
}

/// A second device's partial count changes the day's record (its installation's value) but
/// not its total: still one committed change, one event, with the platform as its source.
#[tokio::test]
async fn an_installation_only_change_is_announced_with_its_platform() {
    let w = World::new();
    let alice = user("alice");
    let tz = jiff::tz::TimeZone::UTC;
    w.engine
        .apply_from_install(&alice, Provider::AppleHealth, "iphone", &tz, &[steps("2026-11-24", 9000)])
        .await
        .unwrap();
    w.engine
        .apply_from_install(&alice, Provider::AppleHealth, "ipad", &tz, &[steps("2026-11-24", 3000)])
        .await
        .unwrap();
    let updates = w.day_events().await;
    assert_eq!(summary(&updates), [("2026-11-24".into(), 0, 9000, 1), ("2026-11-24".into(), 9000, 9000, 2)]);
    assert_eq!(updates[1].source, Provider::AppleHealth);
    // Re-applying commits nothing, so the stream has nothing to say.
    w.engine
        .apply_from_install(&alice, Provider::AppleHealth, "ipad", &tz, &[steps("2026-11-24", 3000)])
        .await
        .unwrap();
    assert_eq!(w.day_events().await, []);
}

/// Lambda hands the same stream records over again (a retried batch): each gives the same
/// `StepsUpdated`, with the same `(user, date, version)`, so a consumer that keeps the
/// versions it saw drops the copies and keeps the order.
#[tokio::test]
async fn a_record_delivered_again_gives_the_same_event_and_version() {
    let w = World::new();
    let alice = user("alice");
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-23", 4000)]).await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-23", 4500)]).await;
    let changes: Vec<DayChange> = w.store.take_day_changes();
    let events = w.stream_handler();

    assert_eq!(events.handle(&changes).await.map(|h| h.published), Ok(2));
    let first = w.publisher.events();
    assert_eq!(events.handle(&changes).await.map(|h| h.published), Ok(2), "delivered again");
    let all = w.publisher.events();

    assert_eq!(all.len(), 4);
    assert_eq!(all[..2], first[..], "the copies are the same events");
    assert_eq!(all[2..], first[..]);
    let versions: Vec<u64> = first
        .iter()
        .filter_map(|e| match e {
            Event::StepsUpdated(u) => Some(u.version),
            _ => None,
        })
        .collect();
    assert_eq!(versions, [1, 2], "the order a consumer keeps");
}
