//! What a person sees of their own sync: each connection diagnosed, and their days with the
//! source each total comes from.

use super::*;
use crate::diagnosis::Action;
use crate::domain::{ConnectionStatus, FailureCode, LastError};
use crate::ports::StepStore;
use std::collections::BTreeMap;

#[tokio::test]
async fn each_connection_is_answered_with_its_diagnosis() {
    let w = World::new();
    let alice = user("alice");
    let now = w.now();
    let healthy = Connection {
        last_new_data_at: Some(now),
        next_sync_at: Some(now),
        ..Connection::new(alice.clone(), Provider::GoogleHealth, now)
    };
    let revoked = Connection {
        status: ConnectionStatus::ReconnectRequired,
        last_error: Some(LastError { code: FailureCode::ReconnectRequired, message: "Reconnect Misfit.".into() }),
        next_sync_at: Some(now),
        ..Connection::new(alice.clone(), Provider::Misfit, now)
    };
    let turned_off = Connection {
        status: ConnectionStatus::Disconnected,
        ..Connection::new(alice.clone(), Provider::AppleHealth, now)
    };
    for connection in [&turned_off, &revoked, &healthy] {
        w.store.create_connection(connection).await.unwrap();
    }
    w.store.create_connection(&Connection::new(user("bob"), Provider::Misfit, now)).await.unwrap();

    let views = w.status().connections(&alice).await.unwrap();

    let seen: Vec<_> =
        views.iter().map(|v| (v.provider, v.status, v.diagnosis.code, v.diagnosis.action, v.next_sync_at)).collect();
    assert_eq!(
        seen,
        [
            (Provider::GoogleHealth, ConnectionStatus::Active, "healthy", Action::None, Some(now)),
            (Provider::Misfit, ConnectionStatus::ReconnectRequired, "token_revoked", Action::Reconnect, None),
            (Provider::AppleHealth, ConnectionStatus::Disconnected, "disconnected", Action::Reconnect, None),
        ],
        "only alice's, and a next sync only for what syncs"
    );
    assert_eq!(views[1].last_error.as_ref().map(|e| e.code), Some(FailureCode::ReconnectRequired));
}

#[tokio::test]
async fn days_refuses_a_range_backwards_or_longer_than_the_limit() {
    let w = World::new();
    let alice = user("alice");

    let backwards = w.status().days(&alice, date("2026-11-25"), date("2026-11-24")).await;
    let too_long = w.status().days(&alice, date("2026-08-01"), date("2026-11-02")).await;
    let longest = w.status().days(&alice, date("2026-08-01"), date("2026-11-01")).await;

    assert_eq!(refused(backwards), r#"Invalid { field: "to", message: "must not be before from" }"#);
    assert_eq!(refused(too_long), r#"Invalid { field: "to", message: "at most 93 days at once" }"#);
    assert_eq!(longest.unwrap().len(), 0, "93 days are answered");
}

#[tokio::test]
async fn days_answer_the_total_with_the_source_it_comes_from() {
    let w = World::new();
    let (alice, carol) = (user("alice"), user("carol"));
    // Carol chose Google as her primary source before any of her days were written.
    w.store.set_primary_source(&carol, Some(Provider::GoogleHealth), 0).await.unwrap();
    for walker in [&alice, &carol] {
        w.walked(walker, Provider::AppleHealth, &[steps("2026-11-24", 8000), steps("2026-11-25", 100)]).await;
        w.walked(walker, Provider::GoogleHealth, &[steps("2026-11-24", 7600)]).await;
    }
    w.walked(&user("bob"), Provider::GoogleHealth, &[steps("2026-11-23", 99)]).await;
    let both = BTreeMap::from([(Provider::GoogleHealth, 7600), (Provider::AppleHealth, 8000)]);
    let phone = BTreeMap::from([(Provider::AppleHealth, 100)]);

    let largest = w.status().days(&alice, date("2026-11-20"), date("2026-11-30")).await.unwrap();
    let primary = w.status().days(&carol, date("2026-11-24"), date("2026-11-24")).await.unwrap();

    let seen = |views: Vec<crate::services::DayView>| -> Vec<_> {
        views.into_iter().map(|d| (d.local_date, d.steps, d.source, d.sources)).collect()
    };
    assert_eq!(
        seen(largest),
        [
            (date("2026-11-24"), 8000, Some(Provider::AppleHealth), both.clone()),
            (date("2026-11-25"), 100, Some(Provider::AppleHealth), phone),
        ],
        "the largest, never the sum; only alice's days"
    );
    assert_eq!(seen(primary), [(date("2026-11-24"), 7600, Some(Provider::GoogleHealth), both)]);
}
