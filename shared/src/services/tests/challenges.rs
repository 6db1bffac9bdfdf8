//! Challenges: creating (administrators only), the open list, one challenge for its caller,
//! joining, leaving, recomputing and rebuilding, and how their errors reach the edge.

use super::*;
use crate::domain::{MAX_OPEN_CHALLENGES, ParticipantTotals, SourceTotals};
use crate::ports::StoreError;
use crate::services::ChallengeError;
use crate::services::challenges::NewChallenge;

fn new_challenge(start: &str, end: &str, time_zone: &str) -> NewChallenge {
    NewChallenge {
        name: " Winter walk ".into(),
        start: date(start),
        end: date(end),
        time_zone: time_zone.into(),
        grace_days: 3,
    }
}

/// The challenge error as the edge receives it.
fn mapped(error: ChallengeError) -> String {
    format!("{:?}", ServiceError::from(error))
}

#[tokio::test]
async fn an_administrator_creates_a_challenge_under_a_fresh_id() {
    let w = World::new();

    let first = w.challenges().create(true, new_challenge("2026-12-01", "2026-12-31", "Europe/Paris")).await.unwrap();
    let second = w.challenges().create(true, new_challenge("2026-12-01", "2026-12-31", "Europe/Paris")).await.unwrap();

    let stored = w.store.get_challenge(&first.id).await.unwrap();
    assert_eq!(stored.as_ref(), Some(&first));
    assert_eq!((first.name.as_str(), first.start, first.end), ("Winter walk", date("2026-12-01"), date("2026-12-31")));
    assert_eq!((first.time_zone.as_str(), first.grace_days), ("Europe/Paris", 3));
    assert_eq!(first.id.as_str().len(), 16, "twelve random bytes, base64url");
    assert_ne!(first.id, second.id);
}

#[tokio::test]
async fn only_administrators_create_challenges_and_only_valid_ones() {
    let w = World::new();

    let not_admin = w.challenges().create(false, new_challenge("2026-12-01", "2026-12-31", "UTC")).await;
    let backwards = w.challenges().create(true, new_challenge("2026-12-31", "2026-12-01", "UTC")).await;
    let nowhere = w.challenges().create(true, new_challenge("2026-12-01", "2026-12-31", "Mars/Olympus")).await;

    assert_eq!(refused(not_admin), r#"Forbidden("only administrators create challenges")"#);
    assert_eq!(refused(backwards), r#"Invalid { field: "end", message: "must not be before start" }"#);
    assert_eq!(refused(nowhere), r#"Invalid { field: "time_zone", message: "unknown time zone \"Mars/Olympus\"" }"#);
    assert_eq!(w.store.writes(), 0);
}

#[tokio::test]
async fn the_open_list_hides_final_challenges_and_orders_by_end() {
    let w = World::new();
    w.challenge_with_grace("final", "2026-11-01", "2026-11-20", 0).await;
    w.challenge_with_grace("in-grace", "2026-11-01", "2026-11-22", 7).await;
    w.challenge("active", "2026-11-01", "2026-11-30").await;
    w.challenge("upcoming", "2026-12-01", "2026-12-31").await;

    let open = w.challenges().list_open(w.now()).await.unwrap();

    let ids: Vec<_> = open.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["in-grace", "active", "upcoming"]);
}

#[tokio::test]
async fn details_say_whether_the_caller_joined() {
    let w = World::new();
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &user("alice")).await;

    let (challenge, alice_joined) = w.challenges().details(&november, &user("alice")).await.unwrap();
    let (_, bob_joined) = w.challenges().details(&november, &user("bob")).await.unwrap();
    let unknown = w.challenges().details(&ChallengeId::parse("nope").unwrap(), &user("alice")).await;

    assert_eq!((challenge.id, alice_joined, bob_joined), (november, true, false));
    assert_eq!(refused(unknown), r#"NotFound("challenge")"#);
}

#[tokio::test]
async fn joining_counts_the_days_already_walked_in_the_window_and_twice_is_once() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.walked(
        &alice,
        Provider::AppleHealth,
        &[steps("2026-10-31", 7000), steps("2026-11-02", 3000), steps("2026-11-03", 0)],
    )
    .await;

    let joined = w.challenges().join(&november, &alice, w.now()).await.unwrap();
    let again = w.challenges().join(&november, &alice, w.now()).await.unwrap();

    assert_eq!(joined.totals(), ParticipantTotals { total: 3000, days: 1 }, "October is outside the window");
    assert_eq!(again, joined);
    assert_eq!(w.store.participants(&november).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_final_challenge_can_be_neither_joined_nor_left_nor_rebuilt() {
    let w = World::new();
    let alice = user("alice");
    let october = w.challenge_with_grace("october", "2026-10-01", "2026-10-31", 0).await;
    let challenges = w.challenges();

    let join = challenges.join(&october, &alice, w.now()).await;
    let leave = challenges.leave(&october, &alice, w.now()).await;
    let rebuild = challenges.rebuild(&october, &alice, w.now()).await;

    for result in [join.map(|_| ()), leave, rebuild.map(|_| ())] {
        assert!(matches!(result, Err(ChallengeError::Final)), "{result:?}");
    }
}

#[tokio::test]
async fn leaving_removes_the_participant_and_keeps_the_days() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-02", 3000)]).await;

    w.challenges().leave(&november, &alice, w.now()).await.unwrap();
    let twice = w.challenges().leave(&november, &alice, w.now()).await;

    assert_eq!(w.store.participant(&november, &alice).await.unwrap(), None);
    assert!(matches!(twice, Err(ChallengeError::NotParticipant)), "{twice:?}");
    assert_eq!(w.store.day(&alice, date("2026-11-02")).unwrap().total.get(), 3000);
}

#[tokio::test]
async fn rebuilding_repairs_drifted_totals_from_the_day_records() {
    let w = World::new();
    let (alice, bob) = (user("alice"), user("bob"));
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-02", 3000), steps("2026-11-03", 4000)]).await;
    let drifted = SourceTotals([(Provider::Misfit, ParticipantTotals { total: 1, days: 9 })].into());
    w.store.tamper(&november, &alice, drifted);

    let recomputed = w.challenges().recompute(&november, &alice).await.unwrap();
    let rebuilt = w.challenges().rebuild(&november, &alice, w.now()).await.unwrap();
    let stranger = w.challenges().rebuild(&november, &bob, w.now()).await;

    let right = SourceTotals([(Provider::AppleHealth, ParticipantTotals { total: 7000, days: 2 })].into());
    assert_eq!((&recomputed, &rebuilt), (&right, &right), "the drifted Misfit numbers are gone");
    assert_eq!(w.total(&november, &alice).await, (7000, 2));
    assert!(matches!(stranger, Err(ChallengeError::NotParticipant)), "{stranger:?}");
}

#[test]
fn challenge_errors_reach_the_edge_as_service_errors() {
    assert_eq!(mapped(ChallengeError::NotFound), r#"NotFound("challenge")"#);
    assert_eq!(
        mapped(ChallengeError::Final),
        r#"Conflict("the challenge is final; it can no longer be joined or left")"#
    );
    assert_eq!(mapped(ChallengeError::NotParticipant), r#"NotFound("your place in this challenge")"#);
    assert_eq!(
        mapped(ChallengeError::BadCursor),
        r#"Invalid { field: "page_token", message: "is not valid; start again from the first page" }"#
    );
    assert_eq!(
        mapped(ChallengeError::Store(StoreError::Unavailable("throttled".into()))),
        r#"Unavailable("the store is unavailable: throttled")"#
    );
    assert_eq!(
        mapped(ChallengeError::Store(StoreError::Conflict)),
        r#"Unavailable("the item changed since it was read")"#
    );
    assert_eq!(
        mapped(ChallengeError::Store(StoreError::Corrupt("day".into()))),
        r#"Internal("a stored item is malformed: day")"#
    );
}

#[tokio::test]
async fn joining_past_the_open_challenge_limit_answers_a_clear_conflict() {
    let w = World::new();
    let alice = user("alice");
    for i in 0..MAX_OPEN_CHALLENGES {
        let id = w.challenge(&format!("open-{i}"), "2026-11-01", "2026-11-30").await;
        w.join(&id, &alice).await;
    }
    let one_more = w.challenge("one-more", "2026-11-01", "2026-11-30").await;
    let writes = w.store.writes();

    let refused = w.challenges().join(&one_more, &alice, w.now()).await.unwrap_err();

    assert_eq!(
        mapped(refused),
        format!(
            r#"LimitReached("you are in {MAX_OPEN_CHALLENGES} open challenges, the most one person can be in; leave one first")"#
        )
    );
    assert_eq!(w.store.writes(), writes, "nothing written");
    // Someone else still joins; a day inside every window moves all fifty: the day, one count each.
    w.join(&one_more, &user("bob")).await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-20", 4000)]).await;
    assert_eq!(w.total(&ChallengeId::parse("open-0").unwrap(), &alice).await, (4000, 1));
    assert_eq!(w.store.writes(), writes + 2 + MAX_OPEN_CHALLENGES as u64);
}

#[tokio::test]
async fn a_final_challenge_no_longer_counts_toward_the_limit() {
    let w = World::new();
    let alice = user("alice");
    // Forty-nine open ones and one that closes soon (its grace ends tomorrow).
    for i in 0..MAX_OPEN_CHALLENGES - 1 {
        let id = w.challenge(&format!("open-{i}"), "2026-11-01", "2026-12-31").await;
        w.join(&id, &alice).await;
    }
    let closing = w.challenge_with_grace("closing", "2026-11-01", "2026-11-24", 1).await;
    w.join(&closing, &alice).await;
    let later = w.challenge("later", "2026-12-01", "2026-12-31").await;
    assert!(matches!(w.challenges().join(&later, &alice, w.now()).await, Err(ChallengeError::TooManyOpen)));

    let after_close = w.now() + jiff::SignedDuration::from_hours(24 * 2);
    w.challenges().join(&later, &alice, after_close).await.unwrap();
}
