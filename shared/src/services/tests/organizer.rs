//! The organizer's view of a challenge: every participant diagnosed as their own status answer
//! diagnoses them, counted, dated and listed; the export ranked as the leaderboard ranks.

use super::*;
use crate::diagnosis::Action;
use crate::domain::{ConnectionStatus, FailureCode, LastError};
use crate::ports::{StepStore, StoredSubscriptions, SubscriptionState};
use crate::services::organizer::{CSV_HEADER, NeedsAction, Organizer};
use std::collections::BTreeMap;

fn at(rfc3339: &str) -> Timestamp {
    rfc3339.parse().unwrap()
}

fn failed(code: FailureCode) -> Option<LastError> {
    Some(LastError { code, message: String::new() })
}

impl World {
    pub(super) fn organizer(&self) -> Organizer<'_> {
        Organizer {
            steps: self.ports.steps.as_ref(),
            challenges: self.ports.challenges.as_ref(),
            connections: self.ports.connections.as_ref(),
        }
    }

    /// Given: `connection` stored as it is.
    async fn stored(&self, connection: Connection) {
        self.store.create_connection(&connection).await.unwrap();
    }
}

/// A connection made on Nov 1 that last brought new steps an hour ago: healthy as it is.
fn on(user: &UserId, provider: Provider) -> Connection {
    Connection {
        last_success_at: Some(at("2026-11-25T17:00:00Z")),
        last_new_data_at: Some(at("2026-11-25T17:00:00Z")),
        ..Connection::new(user.clone(), provider, at("2026-11-01T00:00:00Z"))
    }
}

/// The people of `walk`, one in every diagnosis, joined on Nov 10; what each should be counted
/// as, and their place in the list.
struct Walk {
    id: ChallengeId,
    /// Sorted as the list must be: who has needed it longest first.
    needing: Vec<(UserId, Option<Provider>, &'static str, Action, Timestamp)>,
}

async fn walk(w: &World) -> Walk {
    let id = w.challenge("nov", "2026-11-01", "2026-11-30").await;
    let name = |n: &str| user(n);
    let (healthy, revoked, permission, limited, unavailable) =
        (name("healthy"), name("revoked"), name("permission"), name("limited"), name("unavailable"));
    let (silent, quiet, lapsed, sourceless, turned_off) =
        (name("silent"), name("quiet"), name("lapsed"), name("sourceless"), name("turned-off"));
    let (two_sources, switched, zeros) = (name("two-sources"), name("switched"), name("zeros"));

    // Healthy, in Tokyo: its yesterday and today are Nov 25 and 26.
    w.stored(Connection { time_zone: Some("Asia/Tokyo".into()), ..on(&healthy, Provider::GoogleHealth) }).await;
    let reconnect_required = |user: &UserId, provider, code, failed_at: &str| Connection {
        status: ConnectionStatus::ReconnectRequired,
        last_error: failed(code),
        last_attempt_at: Some(at(failed_at)),
        ..on(user, provider)
    };
    w.stored(reconnect_required(&revoked, Provider::Misfit, FailureCode::ReconnectRequired, "2026-11-20T08:00:00Z"))
        .await;
    w.stored(reconnect_required(
        &permission,
        Provider::GoogleHealth,
        FailureCode::MissingPermission,
        "2026-11-22T10:00:00Z",
    ))
    .await;
    let backing_off = |user: &UserId, provider, code, failed_at: &str| Connection {
        last_error: failed(code),
        last_attempt_at: Some(at(failed_at)),
        next_sync_at: Some(at("2026-11-25T19:00:00Z")),
        ..on(user, provider)
    };
    w.stored(backing_off(&limited, Provider::Oura, FailureCode::RateLimited, "2026-11-25T17:00:00Z")).await;
    w.stored(backing_off(&unavailable, Provider::Withings, FailureCode::ProviderUnavailable, "2026-11-25T16:00:00Z"))
        .await;
    // A phone not heard from since Nov 21.
    w.stored(Connection {
        time_zone: Some("UTC".into()),
        last_success_at: Some(at("2026-11-21T09:00:00Z")),
        ..on(&silent, Provider::AppleHealth)
    })
    .await;
    // A tracker whose last new steps came on Nov 23.
    w.stored(Connection { last_new_data_at: Some(at("2026-11-23T12:00:00Z")), ..on(&quiet, Provider::Polar) }).await;
    w.stored(Connection {
        subscription_lapsed_at: Some(at("2026-11-24T06:00:00Z")),
        ..on(&lapsed, Provider::Withings)
    })
    .await;
    w.stored(Connection {
        status: ConnectionStatus::Disconnected,
        last_attempt_at: Some(at("2026-11-18T00:00:00Z")),
        last_success_at: Some(at("2026-11-17T00:00:00Z")),
        last_new_data_at: Some(at("2026-11-16T00:00:00Z")),
        ..on(&turned_off, Provider::Garmin)
    })
    .await;
    // Two sources: the one that asks something of the person speaks for them.
    w.stored(Connection { last_data_date: Some(date("2026-11-25")), ..on(&two_sources, Provider::AppleHealth) }).await;
    w.stored(reconnect_required(
        &two_sources,
        Provider::GoogleHealth,
        FailureCode::ReconnectRequired,
        "2026-11-19T00:00:00Z",
    ))
    .await;
    // A source turned off beside one that syncs: they sync.
    w.stored(Connection { status: ConnectionStatus::Disconnected, ..on(&switched, Provider::Fitbit) }).await;
    w.stored(on(&switched, Provider::Oura)).await;
    // A phone in Tokyo that uploads, but nothing above zero since Nov 22 (its days there).
    w.stored(Connection {
        time_zone: Some("Asia/Tokyo".into()),
        last_success_at: Some(at("2026-11-25T17:00:00Z")),
        last_data_date: Some(date("2026-11-22")),
        ..on(&zeros, Provider::HealthConnect)
    })
    .await;
    // Unavailable's phone says Los Angeles; its Withings says no zone of its own.
    w.store.set_time_zone(&unavailable, "America/Los_Angeles", 0).await.unwrap();

    w.clock.set(at("2026-11-10T00:00:00Z"));
    for person in [
        &healthy,
        &revoked,
        &permission,
        &limited,
        &unavailable,
        &silent,
        &quiet,
        &lapsed,
        &sourceless,
        &turned_off,
        &two_sources,
        &switched,
        &zeros,
    ] {
        w.join(&id, person).await;
    }
    w.clock.set(at(NOW));

    // Steps for Tokyo's Nov 25 and 26 (its yesterday and today).
    w.walked(&healthy, Provider::GoogleHealth, &[steps("2026-11-25", 4_000), steps("2026-11-26", 300)]).await;
    w.walked(&limited, Provider::Oura, &[steps("2026-11-24", 8_000)]).await; // UTC: yesterday
    w.walked(&switched, Provider::Oura, &[steps("2026-11-25", 2_000)]).await; // UTC: today
    w.walked(&unavailable, Provider::Withings, &[steps("2026-11-24", 6_000)]).await; // LA: yesterday
    w.walked(&lapsed, Provider::Withings, &[steps("2026-11-26", 100)]).await; // UTC: tomorrow, none of the two
    w.walked(&revoked, Provider::Misfit, &[steps("2026-11-25", 0)]).await; // a day, but no steps

    let needing = vec![
        (sourceless, None, "no_source", Action::Connect, at("2026-11-10T00:00:00Z")),
        (turned_off, Some(Provider::Garmin), "disconnected", Action::Reconnect, at("2026-11-18T00:00:00Z")),
        (two_sources, Some(Provider::GoogleHealth), "token_revoked", Action::Reconnect, at("2026-11-19T00:00:00Z")),
        (revoked, Some(Provider::Misfit), "token_revoked", Action::Reconnect, at("2026-11-20T08:00:00Z")),
        (silent, Some(Provider::AppleHealth), "phone_silent", Action::GrantPermission, at("2026-11-21T09:00:00Z")),
        (
            permission,
            Some(Provider::GoogleHealth),
            "missing_permission",
            Action::GrantPermission,
            at("2026-11-22T10:00:00Z"),
        ),
        // Nov 23 began in Tokyo at 15:00 UTC on Nov 22.
        (zeros, Some(Provider::HealthConnect), "phone_zero_steps", Action::GrantPermission, at("2026-11-22T15:00:00Z")),
        (quiet, Some(Provider::Polar), "no_new_data", Action::SyncDevice, at("2026-11-23T12:00:00Z")),
        (lapsed, Some(Provider::Withings), "subscription_lapsed", Action::Wait, at("2026-11-24T06:00:00Z")),
        (unavailable, Some(Provider::Withings), "provider_unavailable", Action::Wait, at("2026-11-25T16:00:00Z")),
        (limited, Some(Provider::Oura), "rate_limited", Action::Wait, at("2026-11-25T17:00:00Z")),
    ];
    Walk { id, needing }
}

fn listed(entries: &[NeedsAction]) -> Vec<(UserId, Option<Provider>, &'static str, Action, Timestamp)> {
    entries.iter().map(|e| (e.user.clone(), e.provider, e.code, e.action, e.since)).collect()
}

#[tokio::test]
async fn every_diagnosis_is_counted_and_who_needs_an_action_is_listed_longest_first() {
    let w = World::new();
    let walk = walk(&w).await;

    let health = w.organizer().sync_health(true, &walk.id, w.now(), 100, None).await.unwrap();

    assert_eq!((health.as_of, health.participants), (w.now(), 13));
    let by_code: BTreeMap<&str, u32> = [
        ("healthy", 2),
        ("token_revoked", 2),
        ("missing_permission", 1),
        ("rate_limited", 1),
        ("provider_unavailable", 1),
        ("phone_silent", 1),
        ("phone_zero_steps", 1),
        ("no_new_data", 1),
        ("subscription_lapsed", 1),
        ("disconnected", 1),
        ("no_source", 1),
    ]
    .into();
    assert_eq!(health.by_code, by_code);
    let by_action: BTreeMap<Action, u32> = [
        (Action::None, 2),
        (Action::Reconnect, 3),
        (Action::GrantPermission, 3),
        (Action::SyncDevice, 1),
        (Action::Wait, 3),
        (Action::Connect, 1),
    ]
    .into();
    assert_eq!(health.by_action, by_action);
    // Yesterday: healthy (Tokyo's Nov 25), limited (UTC's Nov 24), unavailable (LA's Nov 24).
    // Today: healthy (Tokyo's Nov 26), switched (UTC's Nov 25). A day with 0 steps, or
    // another zone's day, is no data.
    assert_eq!((health.with_data.yesterday.participants, health.with_data.yesterday.share), (3, 0.2308));
    assert_eq!((health.with_data.today.participants, health.with_data.today.share), (2, 0.1538));
    assert_eq!(health.needing_action_total, 11);
    assert_eq!(listed(&health.needing_action), walk.needing);
    assert_eq!(health.next_cursor, None);

    // The whole list, for reminders, is the same list.
    assert_eq!(listed(&w.organizer().needing_action(&walk.id, w.now()).await.unwrap()), walk.needing);
}

/// Each listed person's code is what their own status answer says of that source.
#[tokio::test]
async fn each_listed_diagnosis_is_the_persons_own_status_answer() {
    let w = World::new();
    let walk = walk(&w).await;
    for (user, provider, code, action, _) in walk.needing {
        let Some(provider) = provider else { continue };
        let own = w.status().connections(&user).await.unwrap();
        let view = own.iter().find(|v| v.provider == provider).unwrap();
        assert_eq!((view.diagnosis.code, view.diagnosis.action), (code, action), "{user}");
    }
}

#[tokio::test]
async fn pages_cover_everyone_needing_an_action_exactly_once() {
    let w = World::new();
    let walk = walk(&w).await;
    let organizer = w.organizer();

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = organizer.sync_health(true, &walk.id, w.now(), 4, cursor.as_deref()).await.unwrap();
        assert_eq!(page.needing_action_total, 11, "every page counts everyone");
        pages.push(listed(&page.needing_action));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 4, "too many pages");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 3]);
    assert_eq!(pages.concat(), walk.needing);

    // Someone early in the list reconnects between two pages: the next page goes on where
    // the last one stopped, and nobody is shown twice or skipped.
    let first = organizer.sync_health(true, &walk.id, w.now(), 4, None).await.unwrap();
    let fixed = on(&user("turned-off"), Provider::Garmin);
    w.store.save_connection(&fixed, Some(0)).await.unwrap();
    let second = organizer.sync_health(true, &walk.id, w.now(), 4, first.next_cursor.as_deref()).await.unwrap();
    assert_eq!(listed(&second.needing_action), walk.needing[4..8]);
    assert_eq!(second.needing_action_total, 10);
}

#[tokio::test]
async fn only_administrators_ask_and_an_unknown_challenge_or_a_bad_cursor_is_refused() {
    let w = World::new();
    let walk = walk(&w).await;
    let organizer = w.organizer();
    let unknown = ChallengeId::parse("no-such").unwrap();

    assert_eq!(
        refused(organizer.sync_health(false, &walk.id, w.now(), 10, None).await),
        r#"Forbidden("only administrators read a challenge's sync health")"#
    );
    assert_eq!(
        refused(organizer.export(false, &walk.id, w.now(), 10, None).await),
        r#"Forbidden("only administrators export a challenge's results")"#
    );
    // Refused before anything is read: whether the challenge exists is not told either.
    assert!(refused(organizer.sync_health(false, &unknown, w.now(), 10, None).await).starts_with("Forbidden"));
    assert_eq!(refused(organizer.sync_health(true, &unknown, w.now(), 10, None).await), r#"NotFound("challenge")"#);
    assert_eq!(refused(organizer.export(true, &unknown, w.now(), 10, None).await), r#"NotFound("challenge")"#);
    assert_eq!(refused(organizer.needing_action(&unknown, w.now()).await), r#"NotFound("challenge")"#);
    let bad = r#"Invalid { field: "cursor", message: "is not one this list gave; start again from the first page" }"#;
    for cursor in ["!!", "bm9wZQ"] {
        assert_eq!(refused(organizer.sync_health(true, &walk.id, w.now(), 10, Some(cursor)).await), bad);
        assert_eq!(refused(organizer.export(true, &walk.id, w.now(), 10, Some(cursor)).await), bad);
    }
}

/// An app-level subscription (Oura's) that expired explains a quiet connection from its expiry.
#[tokio::test]
async fn an_expired_app_subscription_is_dated_by_its_expiry() {
    let w = World::new();
    let id = w.challenge("nov", "2026-11-01", "2026-11-30").await;
    let ringer = user("ringer");
    w.stored(on(&ringer, Provider::Oura)).await;
    w.join(&id, &ringer).await;
    let expired = SubscriptionState {
        topic: "daily_activity/create".into(),
        id: Some("sub-1".into()),
        expires_at: Some(at("2026-11-24T00:00:00Z")),
        note: "renewal failed".into(),
    };
    let stored = StoredSubscriptions { checked_at: at("2026-11-25T03:00:00Z"), states: vec![expired] };
    w.store.save_subscriptions(Provider::Oura, &stored).await.unwrap();

    let list = w.organizer().needing_action(&id, w.now()).await.unwrap();

    assert_eq!(
        listed(&list),
        [(ringer, Some(Provider::Oura), "subscription_lapsed", Action::Wait, at("2026-11-24T00:00:00Z"))]
    );
}

#[tokio::test]
async fn the_export_ranks_everyone_as_the_leaderboard_does_page_by_page() {
    let w = World::new();
    let id = w.challenge("nov", "2026-11-01", "2026-11-30").await;
    let people = ["a", "b", "c", "d", "e"].map(user);
    for person in &people {
        w.join(&id, person).await;
    }
    // Ties at 7,000 (b, c) and at 0 (e beside nobody); d has two sources, the larger counts.
    w.walked(&people[0], Provider::Oura, &[steps("2026-11-20", 9_000)]).await;
    w.walked(&people[1], Provider::GoogleHealth, &[steps("2026-11-20", 3_000), steps("2026-11-21", 4_000)]).await;
    w.walked(&people[2], Provider::AppleHealth, &[steps("2026-11-21", 7_000)]).await;
    w.walked(&people[3], Provider::Withings, &[steps("2026-11-22", 1_000)]).await;
    w.walked(&people[3], Provider::AppleHealth, &[steps("2026-11-22", 1_500)]).await;
    let organizer = w.organizer();

    let whole = organizer.export(true, &id, w.now(), 100, None).await.unwrap();
    assert!(!whole.final_results);
    assert_eq!(
        whole.csv(),
        format!(
            "{CSV_HEADER}\r\n1,a,9000,1,oura\r\n2,b,7000,2,google_health\r\n2,c,7000,1,apple_health\r\n\
             4,d,1500,1,apple_health;withings\r\n5,e,0,0,\r\n"
        )
    );
    let board = w.standings().leaderboard(&id, &people[0], 100, None).await.unwrap().page.entries;
    let ranked: Vec<_> = whole.rows.iter().map(|r| (r.rank, r.user.clone(), r.total, r.days)).collect();
    assert_eq!(ranked, board.iter().map(|e| (e.rank, e.user.clone(), e.total, e.days)).collect::<Vec<_>>());

    // Two at a time: the same rows, each once, ranks kept across page boundaries.
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let page = organizer.export(true, &id, w.now(), 2, cursor.as_deref()).await.unwrap();
        rows.extend(page.rows);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(rows, whole.rows);

    // Once final, the file says so; a sealed participant's numbers are its final ones.
    w.clock.set(at("2026-12-09T00:00:00Z"));
    let reconcile = crate::services::Reconcile { steps: w.store.as_ref(), store: w.store.as_ref() };
    reconcile.run(w.now()).await.unwrap();
    w.walked(&people[4], Provider::Oura, &[steps("2026-11-30", 50_000)]).await;
    let sealed = organizer.export(true, &id, w.now(), 100, None).await.unwrap();
    assert!(sealed.final_results);
    assert_eq!(sealed.file_name(), "stepsync-nov-final.csv");
    assert_eq!(sealed.rows, whole.rows, "the late walk counts for no final result");
    assert!(w.store.participant(&id, &people[4]).await.unwrap().unwrap().sealed);
}
