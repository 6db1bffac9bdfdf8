//! Erasing a person: grants revoked and accounts freed, leaderboard rows removed with the
//! others' totals unchanged, every item deleted; only by the person or an administrator.

use super::*;
use crate::domain::ChallengeState;
use crate::ports::StepStore;
use crate::services::ErasureReport;

#[tokio::test]
async fn erasing_a_person_revokes_frees_takes_them_off_the_boards_and_deletes_everything() {
    let w = World::new();
    let (alice, bob) = (user("alice"), user("bob"));
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    for who in [&alice, &bob] {
        w.join(&november, who).await;
    }
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    w.walked(&alice, Provider::GoogleHealth, &[steps("2026-11-24", 9000)]).await;
    w.uploads.upload(&alice, from_phone_in("Europe/Paris", vec![steps("2026-11-24", 8000)])).await.unwrap();
    w.walked(&bob, Provider::AppleHealth, &[steps("2026-11-24", 5000)]).await;

    let report = w.erasure().erase(&alice, false, &alice).await.unwrap();

    assert_eq!(report.connections_disconnected, 2, "Google and the phone");
    assert_eq!(report.challenges_left, 1);
    assert!(report.items_deleted >= 4, "{report:?}");
    assert_eq!(w.revoker.revoked(), ["access-alice"], "the grant was given back");
    assert_eq!(w.owner(Provider::GoogleHealth, "g-alice").await, None, "the account is free");
    assert_eq!(w.store.day(&alice, date("2026-11-24")), None);
    assert_eq!(w.connection(&alice, Provider::GoogleHealth).await, None);
    assert_eq!(w.store.participant(&november, &alice).await.unwrap(), None, "off the board");
    assert_eq!(w.total(&november, &bob).await, (5000, 1), "the others keep their totals");
    assert_eq!(w.store.load_user_days(&alice, &[]).await.unwrap().profile.memberships.len(), 0);

    let again = w.erasure().erase(&alice, false, &alice).await.unwrap();
    assert_eq!(again, ErasureReport::default(), "nothing left to erase");
}

#[tokio::test]
async fn only_the_person_or_an_administrator_may_erase_them() {
    let w = World::new();
    let (alice, bob, boss) = (user("alice"), user("bob"), user("boss"));
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;

    let by_bob = w.erasure().erase(&bob, false, &alice).await;

    assert_eq!(refused(by_bob), r#"Forbidden("only the person themselves or an administrator may erase them")"#);
    assert!(w.connection(&alice, Provider::GoogleHealth).await.is_some(), "nothing was touched");
    let by_admin = w.erasure().erase(&boss, true, &alice).await.unwrap();
    assert_eq!(by_admin.connections_disconnected, 1);
    assert_eq!(w.connection(&alice, Provider::GoogleHealth).await, None);
}

/// A final challenge's board loses the row and the sealed snapshot too; the others' final
/// numbers stay as they were.
#[tokio::test]
async fn a_final_board_loses_the_erased_row_and_keeps_the_others() {
    let w = World::new();
    let (alice, bob) = (user("alice"), user("bob"));
    w.clock.set("2026-10-20T12:00:00Z".parse().unwrap());
    let october = w.challenge("october", "2026-10-01", "2026-10-31").await;
    for who in [&alice, &bob] {
        w.join(&october, who).await;
        w.walked(who, Provider::AppleHealth, &[steps("2026-10-10", 4000)]).await;
    }
    w.clock.set(NOW.parse().unwrap());
    let challenge = w.store.get_challenge(&october).await.unwrap().unwrap();
    assert_eq!(challenge.state(w.now()), ChallengeState::Final);
    let reconcile = crate::services::Reconcile { steps: w.ports.steps.as_ref(), store: w.ports.challenges.as_ref() };
    reconcile.run(w.now()).await.unwrap();
    assert!(w.store.snapshot(&october, &alice).await.unwrap().is_some(), "sealed");

    w.erasure().erase(&alice, false, &alice).await.unwrap();

    assert_eq!(w.store.participant(&october, &alice).await.unwrap(), None);
    assert_eq!(w.store.snapshot(&october, &alice).await.unwrap(), None);
    assert_eq!(w.total(&october, &bob).await, (4000, 1));
    assert!(w.store.snapshot(&october, &bob).await.unwrap().is_some());
}
