//! Webhook intake: handshakes, notices turned into one sync per person, coalescing, and every
//! way a request is refused.

use super::*;
use crate::events::SyncReason;
use crate::ports::StoreError;
use crate::ports::{DataNotice, WebhookError, WebhookMessage};
use crate::services::IntakeAnswer;
use crate::services::intake::MAX_WEBHOOK_BODY;
use crate::testing::Refusable;

fn notice(account: &str, dates: &[&str]) -> DataNotice {
    DataNotice { account_id: account.into(), dates: dates.iter().map(|d| date(d)).collect(), deleted: false }
}

fn webhook_sync(who: &str, start: &str, end: &str) -> SyncRequested {
    SyncRequested {
        user: user(who),
        provider: Provider::GoogleHealth,
        reason: SyncReason::Webhook,
        start: Some(date(start)),
        end: Some(date(end)),
    }
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
        w.sync_requests(),
        [webhook_sync("alice", "2026-11-21", "2026-11-25"), webhook_sync("bob", "2026-11-25", "2026-11-25")]
    );
}

#[tokio::test]
async fn a_duplicate_notice_within_the_coalescing_window_asks_for_no_second_sync() {
    let w = World::new();
    w.connected(&user("alice"), Provider::GoogleHealth, "g-alice").await;
    w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();

    w.clock.advance(Duration::from_secs(59));
    let duplicate = w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();
    w.clock.advance(Duration::from_secs(1));
    let after_the_window = w.notified(vec![notice("g-alice", &["2026-11-25"])]).await.unwrap();

    assert_eq!(duplicate, IntakeAnswer::Accepted { notices: 1, syncs: 0 });
    assert_eq!(after_the_window, IntakeAnswer::Accepted { notices: 1, syncs: 1 });
    assert_eq!(w.sync_requests().len(), 2);
}

#[tokio::test]
async fn a_notice_for_an_account_nobody_connected_is_ignored() {
    let w = World::new();

    let answer = w.notified(vec![notice("g-stranger", &["2026-11-25"])]).await.unwrap();

    assert_eq!(answer, IntakeAnswer::Accepted { notices: 1, syncs: 0 });
    assert!(w.publisher.events().is_empty());
}

/// The store fails half-way through a notice (DynamoDB throttling the second claim): the
/// provider is asked to retry, and the claim already taken goes back, so the retry asks for
/// the sync instead of being swallowed by the coalescing.
#[tokio::test]
async fn when_the_store_fails_half_way_the_claims_taken_go_back() {
    let w = World::new();
    w.connected(&user("alice"), Provider::GoogleHealth, "g-alice").await;
    w.store.refuse_after(Refusable::ClaimOnce, 1, StoreError::Unavailable("throttled".into()));

    let first = w.notified(vec![notice("g-alice", &["2026-11-24", "2026-11-25"])]).await;
    let retry = w.notified(vec![notice("g-alice", &["2026-11-24", "2026-11-25"])]).await.unwrap();

    assert_eq!(refused(first), r#"Unavailable("the store is unavailable: throttled")"#);
    assert_eq!(retry, IntakeAnswer::Accepted { notices: 1, syncs: 1 });
    assert_eq!(w.sync_requests(), [webhook_sync("alice", "2026-11-24", "2026-11-25")]);
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
    assert_eq!(w.sync_requests(), [webhook_sync("alice", "2026-11-25", "2026-11-25")]);
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
