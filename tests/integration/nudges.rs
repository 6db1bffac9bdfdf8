//! Reminders through DynamoDB: the reminder store's contract on both local implementations
//! (one conditional put per period, the record it lost to answered, a claim given back only by
//! its holder, erased with the person), and the real `nudges` handler on dynoxide: a status
//! change is one reminder and one record, a redelivery and sixteen concurrent deliveries are
//! still one, the next period brings one more, and with no target nothing touches the table.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use std::time::Duration;
use stepsync::domain::{
    ChallengeId, Connection, ConnectionStatus, DiagnosisCode, FailureCode, LastError, Provider, UserId,
};
use stepsync::events::Event;
use stepsync::ports::{ConnectionStore, ReminderClaim, ReminderStore, ReminderSubject, StepStore};
use stepsync::services::NudgeOutcome;
use stepsync_local::harness::{self, TestEnv, unique};
use stepsync_local::{on_both_backends, on_dynoxide};

on_dynoxide!(
    a_status_change_through_the_handler_is_one_reminder_and_one_record,
    sixteen_concurrent_deliveries_send_one_reminder,
    the_next_period_sends_one_more_though_the_old_record_is_still_in_the_table,
    a_disabled_target_sends_nothing_and_never_touches_the_table,
);

const DAY: Duration = Duration::from_secs(24 * 3600);

fn person(user: &UserId, code: &str) -> ReminderSubject {
    ReminderSubject::Person {
        user: user.clone(),
        provider: Provider::GoogleHealth,
        code: DiagnosisCode::parse(code).unwrap(),
    }
}

/// Given `user`'s Google connection whose grant was revoked (as a sync leaves it).
async fn revoked(env: &TestEnv, name: &str) -> UserId {
    let user = UserId::parse(&unique(name)).unwrap();
    let connection = Connection {
        status: ConnectionStatus::ReconnectRequired,
        last_error: Some(LastError { code: FailureCode::ReconnectRequired, message: "revoked".into() }),
        ..Connection::new(user.clone(), Provider::GoogleHealth, env.now())
    };
    env.store.create_connection(&connection).await.unwrap();
    user
}

/// The sample status change (`events/connection_status_changed.json`) for `user`.
fn status_changed(user: &UserId) -> serde_json::Value {
    let path = stepsync_local::workspace_root().join("events/connection_status_changed.json");
    let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["detail"]["user"] = user.as_str().into();
    event
}

fn app_with_reminders(env: &TestEnv) -> functions::app::App {
    harness::app(env, vec![("STEPSYNC_NUDGES", "true".to_owned())])
}

fn reminders(env: &TestEnv) -> Vec<stepsync::events::ReminderDue> {
    let events = env.publisher.events().into_iter();
    events.filter_map(|e| if let Event::ReminderDue(r) = e { Some(r) } else { None }).collect()
}

/// The record as the table holds it.
async fn record(env: &TestEnv, user: &UserId, code: &str) -> Option<std::collections::HashMap<String, AttributeValue>> {
    let out = env
        .store
        .client()
        .get_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S(format!("USER#{user}")))
        .key("sk", AttributeValue::S(format!("REMINDER#google_health#{code}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    item[name].as_n().unwrap().parse().unwrap()
}

/// The real handler, fed the sample event: one `ReminderDue` with the diagnosis and the
/// event's time, and one record holding when it was sent and expiring a period later. The
/// same event again sends nothing and says when the reminder went out.
async fn a_status_change_through_the_handler_is_one_reminder_and_one_record(env: TestEnv) {
    let app = app_with_reminders(&env);
    let walker = revoked(&env, "walker").await;
    let code = DiagnosisCode::parse("token_revoked").unwrap();

    let outcome = functions::nudges::handle(&app, status_changed(&walker)).await.unwrap();

    assert_eq!(outcome, NudgeOutcome::Sent { code: code.clone() });
    let sent = reminders(&env);
    assert_eq!(sent.len(), 1);
    assert_eq!((&sent[0].user, sent[0].code.as_str()), (&walker, "token_revoked"));
    assert_eq!(sent[0].since, Some("2026-11-25T18:00:03Z".parse().unwrap()), "the event's time");
    assert!(sent[0].message.contains("Reconnect Fitbit / Google Health"), "{}", sent[0].message);
    let item = record(&env, &walker, "token_revoked").await.expect("the record");
    let now = env.now();
    assert_eq!(number(&item, "sent_at"), now.as_millisecond());
    assert_eq!(number(&item, "expires_at"), now.as_second() + 24 * 3600, "TTL a period later");

    env.clock.advance(Duration::from_secs(600));
    let again = functions::nudges::handle(&app, status_changed(&walker)).await.unwrap();
    assert_eq!(again, NudgeOutcome::AlreadySent { code, at: now });
    assert_eq!(reminders(&env).len(), 1);
}

/// Sixteen deliveries of one change at once against DynamoDB (dynoxide's conditional writes
/// are atomic: `store::conditional_writes_and_transactions_are_atomic`): one conditional put
/// wins, one reminder goes out, fifteen are told it went.
async fn sixteen_concurrent_deliveries_send_one_reminder(env: TestEnv) {
    let app = app_with_reminders(&env);
    let walker = revoked(&env, "walker").await;
    env.counter.reset();

    let outcomes = join_all((0..16).map(|_| functions::nudges::handle(&app, status_changed(&walker)))).await;

    let sent = outcomes.iter().filter(|o| matches!(o, Ok(NudgeOutcome::Sent { .. }))).count();
    let already = outcomes.iter().filter(|o| matches!(o, Ok(NudgeOutcome::AlreadySent { .. }))).count();
    assert_eq!((sent, already), (1, 15), "{outcomes:?}");
    assert_eq!(reminders(&env).len(), 1);
    assert_eq!(env.counter.count("PutItem"), 16, "one conditional put each, nothing more");
    assert_eq!(env.counter.count("DeleteItem"), 0, "no claim given back");
}

/// A day later the record is still in the table (TTL deletes late): its `sent_at` decides, and
/// the next period's reminder goes out, once.
async fn the_next_period_sends_one_more_though_the_old_record_is_still_in_the_table(env: TestEnv) {
    let app = app_with_reminders(&env);
    let walker = revoked(&env, "walker").await;
    functions::nudges::handle(&app, status_changed(&walker)).await.unwrap();
    env.clock.advance(DAY - Duration::from_secs(1));
    assert!(matches!(
        functions::nudges::handle(&app, status_changed(&walker)).await.unwrap(),
        NudgeOutcome::AlreadySent { .. }
    ));

    env.clock.advance(Duration::from_secs(1));
    let outcome = functions::nudges::handle(&app, status_changed(&walker)).await.unwrap();

    assert!(matches!(outcome, NudgeOutcome::Sent { .. }), "{outcome:?}");
    assert_eq!(reminders(&env).len(), 2);
    let item = record(&env, &walker, "token_revoked").await.unwrap();
    assert_eq!(number(&item, "sent_at"), env.now().as_millisecond(), "the record moved to this period");
}

/// With no target configured (the default), the handler answers `off`: not one DynamoDB
/// request, not one event.
async fn a_disabled_target_sends_nothing_and_never_touches_the_table(env: TestEnv) {
    let app = harness::app(&env, vec![]);
    let walker = revoked(&env, "walker").await;
    env.counter.reset();

    let outcome = functions::nudges::handle(&app, status_changed(&walker)).await.unwrap();

    assert_eq!(outcome, NudgeOutcome::Off);
    assert_eq!(env.counter.total(), 0, "{:?}", env.counter.snapshot());
    assert!(env.publisher.events().is_empty());
    assert!(record(&env, &walker, "token_revoked").await.is_none());
}

/// The reminder store's contract, on both local implementations.
mod store {
    use super::*;

    on_both_backends!(
        one_claim_per_period_answers_the_record_it_lost_to,
        a_claim_is_given_back_only_by_its_holder,
        erasing_a_person_erases_their_reminder_records,
    );

    /// Given a record from a minute ago, a claim in the same period loses and is told when it was
    /// sent; a digest of a challenge is a record of its own; once the period has passed (the
    /// record still in the table, as TTL deletes late) the next claim wins.
    async fn one_claim_per_period_answers_the_record_it_lost_to(env: TestEnv) {
        let alice = UserId::parse(&unique("alice")).unwrap();
        let subject = person(&alice, "token_revoked");
        let first = env.now();
        assert_eq!(env.store.claim_reminder(&subject, "h1", first, DAY).await.unwrap(), ReminderClaim::Claimed);
        let later = first.checked_add(Duration::from_secs(60)).unwrap();
        env.counter.reset();
        assert_eq!(env.store.claim_reminder(&subject, "h2", later, DAY).await.unwrap(), ReminderClaim::SentAt(first));
        assert_eq!(env.counter.total(), 1, "the record comes back with the failed condition: no read");
        let digest = ReminderSubject::Digest { challenge: ChallengeId::parse(&unique("winter")).unwrap() };
        assert_eq!(env.store.claim_reminder(&digest, "h2", later, DAY).await.unwrap(), ReminderClaim::Claimed);
        assert_eq!(
            env.store.claim_reminder(&person(&alice, "missing_permission"), "h2", later, DAY).await.unwrap(),
            ReminderClaim::Claimed,
            "another diagnosis, another record"
        );
        let next_period = first.checked_add(DAY).unwrap();
        assert_eq!(env.store.claim_reminder(&subject, "h3", next_period, DAY).await.unwrap(), ReminderClaim::Claimed);
        let after = next_period.checked_add(Duration::from_secs(1)).unwrap();
        assert_eq!(
            env.store.claim_reminder(&subject, "h4", after, DAY).await.unwrap(),
            ReminderClaim::SentAt(next_period)
        );
    }

    /// A claim given back by someone else stays; given back by its holder, the next claim wins.
    async fn a_claim_is_given_back_only_by_its_holder(env: TestEnv) {
        let alice = UserId::parse(&unique("alice")).unwrap();
        let subject = person(&alice, "token_revoked");
        let now = env.now();
        assert_eq!(env.store.claim_reminder(&subject, "mine", now, DAY).await.unwrap(), ReminderClaim::Claimed);
        env.store.release_reminder(&subject, "someone-else").await.unwrap();
        assert_eq!(env.store.claim_reminder(&subject, "theirs", now, DAY).await.unwrap(), ReminderClaim::SentAt(now));
        env.store.release_reminder(&subject, "mine").await.unwrap();
        assert_eq!(env.store.claim_reminder(&subject, "theirs", now, DAY).await.unwrap(), ReminderClaim::Claimed);
        env.store.release_reminder(&person(&alice, "never_claimed"), "mine").await.unwrap();
    }

    /// A person's reminder records sit in their own partition: erasing them deletes the records,
    /// and nobody else's.
    async fn erasing_a_person_erases_their_reminder_records(env: TestEnv) {
        let (alice, bob) = (UserId::parse(&unique("alice")).unwrap(), UserId::parse(&unique("bob")).unwrap());
        let now = env.now();
        for who in [&alice, &bob] {
            env.store.claim_reminder(&person(who, "token_revoked"), "h", now, DAY).await.unwrap();
        }
        assert_eq!(env.store.erase_user(&alice).await.unwrap(), 1);
        assert_eq!(
            env.store.claim_reminder(&person(&alice, "token_revoked"), "h", now, DAY).await.unwrap(),
            ReminderClaim::Claimed
        );
        assert_eq!(
            env.store.claim_reminder(&person(&bob, "token_revoked"), "h", now, DAY).await.unwrap(),
            ReminderClaim::SentAt(now)
        );
    }
}
