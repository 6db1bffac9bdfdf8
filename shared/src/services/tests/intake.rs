//! Webhook intake: handshakes, notices turned into one sync per person, the worker's fence that
//! coalesces them (a notice before, during and after a fetch), and every way a request is refused.

use super::*;
use crate::events::SyncReason;
use crate::ports::{DataNotice, WebhookError, WebhookMessage};
use crate::services::IntakeAnswer;
use crate::services::WorkerResult;
use crate::services::intake::MAX_WEBHOOK_BODY;

fn notice(account: &str, dates: &[&str]) -> DataNotice {
    DataNotice { account_id: account.into(), dates: dates.iter().map(|d| date(d)).collect(), deleted: false }
}

fn webhook_sync(who: &str, start: &str, end: &str, noticed_at: Timestamp) -> SyncRequested {
    SyncRequested {
        user: user(who),
        provider: Provider::GoogleHealth,
        reason: SyncReason::Webhook,
        start: Some(date(start)),
        end: Some(date(end)),
        noticed_at: Some(noticed_at),
        notice_id: None,
        upload: None,
    }
}

/// The requests without their random notice ids (each has one).
fn without_ids(requests: Vec<SyncRequested>) -> Vec<SyncRequested> {
    assert!(requests.iter().all(|r| r.notice_id.is_some()), "every webhook request names its notice");
    requests.into_iter().map(|r| SyncRequested { notice_id: None, ..r }).collect()
}

impl World {
    /// When: Google posts a request its verifier reads as `notices`.
    async fn notified(&self, notices: Vec<DataNotice>) -> Result<IntakeAnswer, ServiceError> {
        self.webhooks.answer(Ok(WebhookMessage::Notices(notices)));
        self.intake.receive(Provider::GoogleHealth, "POST", &[], b"{}").await
    }
}

#[tokio::test]
async fn a_subscription_handshake_is_answered_as_the_verifier_says() {
    let w = World::new();
    w.webhooks.answer(Ok(WebhookMessage::Handshake { status: 200, body: "challenge-42".into() }));

    let answer = w.intake.receive(Provider::GoogleHealth, "GET", &[], b"").await.unwrap();

    assert_eq!(answer, IntakeAnswer::Handshake { status: 200, body: "challenge-42".into() });
    assert!(w.publisher.events().is_empty());
}

#[tokio::test]
async fn notices_ask_for_one_sync_per_person_over_the_dates_named() {
    let w = World::new();
    w.connected(&user("alice"), Provider::GoogleHealth, "g-alice").await;
    w.connected(&user("bob"), Provider::GoogleHealth, "g-bob").await;

    let answer = w
        .notified(vec![
            notice("g-bob", &["2026-11-25"]),
            notice("g-alice", &["2026-11-24", "2026-11-25"]),
            notice("g-alice", &["2026-11-21"]),
        ])
        .await
        .unwrap();

    assert_eq!(answer, IntakeAnswer::Accepted { notices: 3, syncs: 2 });
    assert_eq!(
        without_ids(w.sync_requests()),
        [
            webhook_sync("alice", "2026-11-21", "2026-11-25", w.now()),
            webhook_sync("bob", "2026-11-25", "2026-11-25", w.now())
        ]
    );
}

impl World {
    /// When: the worker takes the webhook's sync request `request`.
    async fn fetch_for(&self, request: SyncRequested) -> WorkerResult {
        self.syncing.handle_event(Event::SyncRequested(request), None).await.unwrap()
    }

    /// The sync request the last notice published.
    fn last_request(&self) -> SyncRequested {
        self.sync_requests().pop().expect("a sync was requested")
    }
}

const COVERED: &str = "a fetch begun after the notice covers it";

fn covered() -> WorkerResult {
    WorkerResult::Skipped { why: COVERED.into() }
}

/// Alice connected to Google, her first sync done (her connection settled in its slot).
async fn settled_alice(w: &World) {
    w.connected(&user("alice"), Provider::GoogleHealth, "g-alice").await;
    w.syncing.handle_event(sync_event("alice"), None).await.unwrap();
    *w.google.calls.lock().unwrap() = 0;
}

fn sync_event(who: &str) -> Event {
    Event::SyncRequested(SyncRequested::whole(user(who), Provider::GoogleHealth, SyncReason::Schedule))
}

/// A notice that arrives before the fetch of an earlier one starts is covered by that fetch:
/// it started after both arrived. Each notice costs the worker one write, and the webhook none.
#[tokio::test]
async fn a_notice_before_the_fetch_starts_is_covered_by_it() {
    let w = World::new();
    settled_alice(&w).await;
    let writes = w.store.writes();
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    let first = w.last_request();
    w.clock.advance(Duration::from_secs(5));
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    let second = w.last_request();
    assert_eq!(w.store.writes(), writes, "the webhook writes nothing");

    w.clock.advance(Duration::from_secs(5));
    let fetched = w.fetch_for(first).await;
    let skipped = w.fetch_for(second).await;

    assert!(matches!(fetched, WorkerResult::Synced { .. }), "{fetched:?}");
    assert_eq!(skipped, covered());
    assert_eq!(*w.google.calls.lock().unwrap(), 1, "one fetch for both notices");
    assert_eq!(w.store.writes() - writes, 2, "one fence write per notice, nothing else");
}

/// Processed the other way round: the later notice's fetch covers the earlier notice too.
#[tokio::test]
async fn an_earlier_notice_handled_after_a_later_ones_fetch_is_covered() {
    let w = World::new();
    settled_alice(&w).await;
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    let earlier = w.last_request();
    w.clock.advance(Duration::from_secs(5));
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    let later = w.last_request();
    w.clock.advance(Duration::from_secs(5));

    assert!(matches!(w.fetch_for(later).await, WorkerResult::Synced { .. }));
    assert_eq!(w.fetch_for(earlier).await, covered());
    assert_eq!(*w.google.calls.lock().unwrap(), 1);
}

/// A notice that arrives while a fetch runs may announce data that fetch missed: it gets a
/// fetch of its own.
#[tokio::test]
async fn a_notice_during_the_fetch_gets_a_fetch_of_its_own() {
    let gate = Arc::new(crate::testing::Gate::default());
    let google = crate::testing::ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![steps("2026-11-25", 100)]));
    let w = World::with(google.gated(gate.clone()), crate::testing::ScriptedOAuth::granting(SCOPE, "g-alice"));
    tokio::join!(settled_alice(&w), async {
        gate.reached().await;
        gate.open();
    });
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    let first = w.last_request();
    w.clock.advance(Duration::from_secs(5));

    let (fetched, during) = tokio::join!(w.fetch_for(first), async {
        // The first fetch has started and waits at the gate: a new notice comes in.
        gate.reached().await;
        w.clock.advance(Duration::from_secs(5));
        *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-25", 200)]);
        w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
        w.google.ungate();
        gate.open();
        w.last_request()
    });
    let own = w.fetch_for(during).await;

    assert!(matches!(fetched, WorkerResult::Synced { .. }), "{fetched:?}");
    assert_eq!(own, WorkerResult::Synced { changed: 1, unchanged: 0, rejected: 0 });
    assert_eq!(w.store.day(&user("alice"), date("2026-11-25")).unwrap().total.get(), 200, "the later data counted");
}

/// A notice after the fetch ended gets its own; so does a notice naming a date the last fetch
/// did not cover.
#[tokio::test]
async fn a_notice_after_the_fetch_or_about_another_day_gets_a_fetch_of_its_own() {
    let w = World::new();
    settled_alice(&w).await;
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    let first = w.last_request();
    w.clock.advance(Duration::from_secs(5));
    w.notified(vec![notice("g-alice", &["2026-11-24"])]).await.unwrap();
    let other_day = w.last_request();
    w.clock.advance(Duration::from_secs(5));
    assert!(matches!(w.fetch_for(first).await, WorkerResult::Synced { .. }));
    assert!(matches!(w.fetch_for(other_day).await, WorkerResult::Synced { .. }), "another day: not covered");

    w.clock.advance(Duration::from_secs(5));
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    let after = w.last_request();
    assert!(matches!(w.fetch_for(after).await, WorkerResult::Synced { .. }));
    assert_eq!(*w.google.calls.lock().unwrap(), 3);
}

/// Lambda retries an event whose worker died after the fence: the retry fetches again rather
/// than finding its own fence and taking itself for covered.
#[tokio::test]
async fn a_retried_event_fetches_again() {
    let w = World::new();
    settled_alice(&w).await;
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    let request = w.last_request();
    w.clock.advance(Duration::from_secs(5));

    assert!(matches!(w.fetch_for(request.clone()).await, WorkerResult::Synced { .. }));
    w.clock.advance(Duration::from_secs(5));
    assert!(matches!(w.fetch_for(request).await, WorkerResult::Synced { .. }));
    assert_eq!(*w.google.calls.lock().unwrap(), 2);
}

#[tokio::test]
async fn a_notice_for_an_account_nobody_connected_is_ignored() {
    let w = World::new();

    let answer = w.notified(vec![notice("g-stranger", &["2026-11-25"])]).await.unwrap();

    assert_eq!(answer, IntakeAnswer::Accepted { notices: 1, syncs: 0 });
    assert!(w.publisher.events().is_empty());
}

#[tokio::test]
async fn when_the_bus_fails_the_provider_is_asked_to_retry_and_the_retry_is_not_swallowed() {
    let w = World::new();
    w.connected(&user("alice"), Provider::GoogleHealth, "g-alice").await;
    w.publisher.fail(true);

    let first = w.notified(vec![notice("g-alice", &["2026-11-25"])]).await;
    w.publisher.fail(false);
    let retry = w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();

    assert_eq!(refused(first), r#"Unavailable("try again later")"#);
    assert_eq!(retry, IntakeAnswer::Accepted { notices: 1, syncs: 1 });
    assert_eq!(without_ids(w.sync_requests()), [webhook_sync("alice", "2026-11-25", "2026-11-25", w.now())]);
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_before_verification() {
    let w = World::new();
    let body = vec![b' '; MAX_WEBHOOK_BODY + 1];

    let answer = w.intake.receive(Provider::GoogleHealth, "POST", &[], &body).await;

    assert_eq!(refused(answer), "TooLarge");
    assert_eq!(*w.webhooks.calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn each_verifier_refusal_maps_to_what_the_provider_is_told() {
    let w = World::new();
    let cases = [
        (WebhookError::MissingSignature, "Unauthenticated"),
        (WebhookError::BadSignature, "Unauthenticated"),
        (WebhookError::UnknownKey, "Unauthenticated"),
        (WebhookError::Unauthorized, "Unauthenticated"),
        (WebhookError::Stale, "Unauthenticated"),
        (WebhookError::TooLarge, "TooLarge"),
        (WebhookError::Malformed("no data".into()), r#"BadRequest("malformed notification: no data")"#),
        (WebhookError::Unavailable("keys unreachable".into()), r#"Unavailable("try again later")"#),
    ];

    for (error, expected) in cases {
        w.webhooks.answer(Err(error.clone()));
        let answer = w.intake.receive(Provider::GoogleHealth, "POST", &[], b"{}").await;
        assert_eq!(refused(answer), expected, "{error:?}");
    }
    assert!(w.publisher.events().is_empty());
}

#[tokio::test]
async fn a_source_without_webhooks_has_no_intake() {
    let w = World::new();

    let answer = w.intake.receive(Provider::Misfit, "POST", &[], b"{}").await;

    assert_eq!(refused(answer), r#"NotFound("webhooks for misfit")"#);
}
