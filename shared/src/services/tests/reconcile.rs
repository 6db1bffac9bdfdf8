//! The reconcile job: open challenges recomputed from the day records and drift repaired (and
//! counted), closed ones sealed with the day values their final numbers came from, and a
//! closed challenge checked against its own snapshots.

use super::*;
use crate::domain::{ParticipantTotals, SourceTotals};
use crate::services::{Reconcile, ReconcileReport};

impl World {
    fn reconcile(&self) -> Reconcile<'_> {
        Reconcile { steps: self.ports.steps.as_ref(), store: self.ports.challenges.as_ref() }
    }
}

/// Alice joined "early" (Nov 1–20, no grace) on Nov 10 and walked `days`; now it is Nov 25,
/// and the challenge is final (since Nov 21, 12:00 UTC), not sealed yet.
async fn alice_walked_in_a_closed_challenge(days: &[DailyValue]) -> (World, UserId, ChallengeId) {
    let w = World::new();
    let alice = user("alice");
    let early = w.challenge_with_grace("early", "2026-11-01", "2026-11-20", 0).await;
    w.clock.set("2026-11-10T12:00:00Z".parse().unwrap());
    w.join(&early, &alice).await;
    w.walked(&alice, Provider::AppleHealth, days).await;
    w.clock.set("2026-11-25T18:00:00Z".parse().unwrap());
    (w, alice, early)
}

#[tokio::test]
async fn drift_in_an_open_challenge_is_repaired_and_counted_and_the_next_run_finds_none() {
    let w = World::new();
    let (alice, bob) = (user("alice"), user("bob"));
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    for u in [&alice, &bob] {
        w.join(&november, u).await;
    }
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-02", 3000), steps("2026-11-03", 4000)]).await;
    w.walked(&bob, Provider::Misfit, &[steps("2026-11-02", 5000)]).await;
    // A lost delta: alice's stored numbers say 1 step on 9 days.
    let drifted = SourceTotals([(Provider::AppleHealth, ParticipantTotals { total: 1, days: 9 })].into());
    w.store.tamper(&november, &alice, drifted);

    let report = w.reconcile().run(w.now()).await.unwrap();

    let expected = ReconcileReport { open_challenges: 1, participants: 2, repaired: 1, ..ReconcileReport::default() };
    assert_eq!(report, expected);
    assert_eq!(w.total(&november, &alice).await, (7000, 2));
    assert_eq!(w.total(&november, &bob).await, (5000, 1), "bob was right and untouched");
    let again = w.reconcile().run(w.now()).await.unwrap();
    assert_eq!(again.repaired, 0);
}

/// A challenge closes; the job seals it: each participant's final numbers with the day values
/// they came from. A correction that arrives later changes the day, not the challenge, which
/// still checks against its snapshots.
#[tokio::test]
async fn a_closed_challenge_is_sealed_and_checks_against_its_snapshots() {
    let (w, alice, early) =
        alice_walked_in_a_closed_challenge(&[steps("2026-11-05", 4000), steps("2026-11-06", 2500)]).await;

    let report = w.reconcile().run(w.now()).await.unwrap();

    assert_eq!((report.sealed, report.repaired_at_seal, report.open_challenges), (1, 0, 0));
    let snapshot = w.store.snapshot(&early, &alice).await.unwrap().expect("sealed");
    assert_eq!(snapshot.days[&date("2026-11-05")][&Provider::AppleHealth], 4000);
    assert_eq!(snapshot.totals.best(), ParticipantTotals { total: 6500, days: 2 });
    assert!(w.store.participant(&early, &alice).await.unwrap().unwrap().sealed);
    assert_eq!(w.reconcile().check_closed(&early).await.unwrap(), []);

    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-05", 9000)]).await;
    assert_eq!(w.store.day(&alice, date("2026-11-05")).unwrap().total.get(), 9000, "the day records the correction");
    assert_eq!(w.total(&early, &alice).await, (6500, 2), "the closed challenge does not move");
    assert_eq!(w.reconcile().check_closed(&early).await.unwrap(), []);
    assert_eq!(w.reconcile().run(w.now()).await.unwrap().sealed, 0, "sealed once");
}

/// Nobody ran the job yet when a late correction arrives after the close: the write seals the
/// participant first, so the snapshot holds the day as it was at close.
#[tokio::test]
async fn a_write_after_the_close_seals_first_so_the_snapshot_holds_the_day_at_close() {
    let (w, alice, early) = alice_walked_in_a_closed_challenge(&[steps("2026-11-05", 4000)]).await;

    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-05", 9000)]).await;

    let snapshot = w.store.snapshot(&early, &alice).await.unwrap().expect("sealed by the write");
    assert_eq!(snapshot.days[&date("2026-11-05")][&Provider::AppleHealth], 4000);
    assert_eq!(w.total(&early, &alice).await, (4000, 1));
    assert_eq!(w.reconcile().check_closed(&early).await.unwrap(), []);
    assert_eq!(w.reconcile().run(w.now()).await.unwrap().sealed, 0);
}

/// A closed challenge whose participant was never sealed, or whose numbers were tampered with
/// after the seal, does not check.
#[tokio::test]
async fn a_closed_challenge_without_or_against_its_snapshot_does_not_check() {
    let (w, alice, early) = alice_walked_in_a_closed_challenge(&[steps("2026-11-05", 4000)]).await;
    assert_eq!(w.reconcile().check_closed(&early).await.unwrap(), std::slice::from_ref(&alice), "not sealed yet");
    w.reconcile().run(w.now()).await.unwrap();
    let tampered = SourceTotals([(Provider::AppleHealth, ParticipantTotals { total: 4001, days: 1 })].into());
    w.store.tamper(&early, &alice, tampered);
    assert_eq!(w.reconcile().check_closed(&early).await.unwrap(), [alice]);
}
