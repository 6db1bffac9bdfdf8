//! Syncing: the worker's events (one connection, one shard), the scheduler's tick, and "Sync
//! steps" with its cooldown, its outcomes per connection, the standing and its deadline.

use super::*;
use crate::domain::{ConnectionStatus, EncryptedTokens, FailureCode, shard_of};
use crate::events::{StepsUpdated, SyncReason, SyncShard};
use crate::ports::StoreError;
use crate::ports::{ProviderError, WebhookMessage};
use crate::services::{ManualSync, Standing, WorkerResult};
use crate::testing::{Gate, Refusable};
use std::time::Instant;

fn requested(who: &str, provider: Provider, reason: SyncReason) -> Event {
    Event::SyncRequested(SyncRequested {
        user: user(who),
        provider,
        reason,
        start: None,
        end: None,
        noticed_at: None,
        notice_id: None,
        upload: None,
    })
}

/// `count` people whose Google connection falls in `shard`.
fn walkers_in(shard: u16, count: usize) -> Vec<UserId> {
    let everyone = (0..).map(|i| user(&format!("walker-{i}")));
    everyone.filter(|u| shard_of(u, Provider::GoogleHealth) == shard).take(count).collect()
}

/// Each connection's part as (provider, outcome, days changed, the failure's code).
fn outcomes(answer: &ManualSync) -> Vec<(Provider, &'static str, usize, Option<FailureCode>)> {
    let parts = answer.connections.iter();
    parts.map(|c| (c.provider, c.outcome, c.days_changed, c.error.as_ref().map(|e| e.code))).collect()
}

impl World {
    /// Given: a connection whose stored tokens no key can open (a lost or rotated token key).
    async fn connected_with_unreadable_tokens(&self, user: &UserId) {
        let connection = Connection {
            tokens: Some(EncryptedTokens("not-a-ciphertext".into())),
            next_sync_at: Some(self.now()),
            ..Connection::new(user.clone(), Provider::GoogleHealth, self.now())
        };
        self.store.create_connection(&connection).await.unwrap();
    }

    /// Given: a connection that is not due for another hour.
    async fn connected_not_due(&self, user: &UserId) {
        let later = self.now().checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
        let connection = Connection {
            next_sync_at: Some(later),
            ..Connection::new(user.clone(), Provider::GoogleHealth, self.now())
        };
        self.store.create_connection(&connection).await.unwrap();
    }

    async fn last_attempt(&self, user: &UserId) -> Option<Timestamp> {
        self.connection(user, Provider::GoogleHealth).await.unwrap().last_attempt_at
    }
}

#[tokio::test]
async fn a_sync_request_syncs_the_connection_and_counts_the_days() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    *w.google.answer.lock().unwrap() =
        Ok(vec![steps("2026-11-23", 4000), steps("2026-11-24", 5000), steps("2026-11-25", -1)]);
    let event = requested("alice", Provider::GoogleHealth, SyncReason::Connect);

    let first = w.syncing.handle_event(event.clone(), None).await.unwrap();
    let again = w.syncing.handle_event(event, None).await.unwrap();

    assert_eq!(first, WorkerResult::Synced { changed: 2, unchanged: 0, rejected: 1 });
    assert_eq!(again, WorkerResult::Synced { changed: 0, unchanged: 2, rejected: 1 });
    assert_eq!(w.store.day(&alice, date("2026-11-24")).unwrap().total.get(), 5000);
    assert_eq!(w.last_attempt(&alice).await, Some(w.now()));
}

/// DynamoDB throttles the day's transaction: nothing is half written, the event goes back to
/// Lambda for a retry, and the retry counts the day once.
#[tokio::test]
async fn a_throttled_commit_hands_the_event_back_and_its_retry_counts_the_day_once() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-24", 5000)]);
    let event = requested("alice", Provider::GoogleHealth, SyncReason::Webhook);
    w.store.refuse_next(Refusable::CommitDay, StoreError::Unavailable("ThrottlingException".into()));

    let throttled = w.syncing.handle_event(event.clone(), None).await;

    assert!(matches!(throttled, Err(crate::services::WorkerError::Retryable(_))), "{throttled:?}");
    assert_eq!(w.store.day(&alice, date("2026-11-24")), None, "nothing half written");
    assert_eq!(w.total(&november, &alice).await, (0, 0));
    let retry = w.syncing.handle_event(event, None).await.unwrap();
    assert_eq!(retry, WorkerResult::Synced { changed: 1, unchanged: 0, rejected: 0 });
    assert_eq!(w.total(&november, &alice).await, (5000, 1));
    assert_eq!(w.day_events().await.len(), 1, "one change, one event");
}

/// A walk the person deletes at the provider: the day comes back without it (or not at all)
/// and loses Google's value; the phone's value for the day stays; every open challenge moves
/// in the same write, and the change is announced like any other.
#[tokio::test]
async fn a_day_the_provider_deletes_or_stops_returning_loses_its_value() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-23", 3000)]).await;
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-23", 4000), steps("2026-11-24", 5000)]);
    let sync = || w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Schedule), None);
    sync().await.unwrap();
    assert_eq!(w.total(&november, &alice).await, (9000, 2));

    // Both days deleted at Google: Nov 24 is no longer returned, Nov 23 is returned as 0.
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-23", 0)]);
    w.clock.advance(Duration::from_secs(60));
    let result = sync().await.unwrap();

    assert_eq!(result, WorkerResult::Synced { changed: 2, unchanged: 0, rejected: 0 });
    let nov24 = w.store.day(&alice, date("2026-11-24")).unwrap();
    assert_eq!((nov24.total.get(), nov24.sources.len()), (0, 0));
    let nov23 = w.store.day(&alice, date("2026-11-23")).unwrap();
    assert_eq!(nov23.total.get(), 3000, "the phone's value stays");
    assert_eq!(w.total(&november, &alice).await, (3000, 1));
    let updates: Vec<(String, u32, u32)> =
        w.day_events().await.into_iter().map(|u| (u.date.to_string(), u.old_total, u.new_total)).collect();
    assert!(updates.contains(&("2026-11-24".into(), 5000, 0)), "{updates:?}");
    assert!(updates.contains(&("2026-11-23".into(), 4000, 3000)), "{updates:?}");
    // Asked again: nothing left to remove, nothing written.
    let writes = w.store.writes();
    assert_eq!(sync().await.unwrap(), WorkerResult::Synced { changed: 0, unchanged: 1, rejected: 0 });
    assert_eq!(w.store.writes(), writes, "a healthy sync writes nothing, not even its outcome");
}

/// A day the source never had stays untouched when a pull does not return it, and a pull
/// never removes a value observed after it started.
#[tokio::test]
async fn absence_removes_only_what_the_source_had_and_never_a_newer_value() {
    let w = World::new();
    let alice = user("alice");
    let at = |h: i64| w.now() + jiff::SignedDuration::from_hours(h);
    let later = crate::domain::DailyValue { date: date("2026-11-24"), steps: 7000, observed_at: Some(at(1)) };
    w.engine.apply(&alice, Provider::GoogleHealth, &jiff::tz::TimeZone::UTC, &[later]).await.unwrap();
    w.walked(&alice, Provider::AppleHealth, &[steps("2026-11-22", 1200)]).await;
    w.walked(&alice, Provider::GoogleHealth, &[steps("2026-11-21", 4000)]).await;
    w.clock.set(w.now() + jiff::SignedDuration::from_mins(1));

    // Nov 21 comes back refused (negative): no evidence the day is gone.
    let window = Some((date("2026-11-20"), date("2026-11-25"), w.now()));
    let refused = [steps("2026-11-21", -5)];
    let report = w
        .engine
        .apply_window(&alice, Provider::GoogleHealth, &jiff::tz::TimeZone::UTC, &refused, window)
        .await
        .unwrap();

    assert!(report.changed.is_empty(), "{report:?}");
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(w.store.day(&alice, date("2026-11-24")).unwrap().total.get(), 7000);
    assert_eq!(w.store.day(&alice, date("2026-11-22")).unwrap().total.get(), 1200);
    assert_eq!(w.store.day(&alice, date("2026-11-21")).unwrap().total.get(), 4000);
}

#[tokio::test]
async fn a_sync_request_for_a_connection_that_does_not_exist_is_skipped() {
    let w = World::new();

    let result = w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Manual), None).await;

    assert_eq!(result.unwrap(), WorkerResult::Skipped { why: "no such connection".into() });
    assert_eq!(*w.google.calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_sync_request_for_a_source_the_server_does_not_pull_is_skipped() {
    let w = World::new();
    w.store.create_connection(&Connection::new(user("alice"), Provider::AppleHealth, w.now())).await.unwrap();

    let result = w.syncing.handle_event(requested("alice", Provider::AppleHealth, SyncReason::Manual), None).await;

    assert_eq!(result.unwrap(), WorkerResult::Skipped { why: "apple_health is not pulled by the server".into() });
}

#[tokio::test]
async fn a_webhook_sync_gives_its_days_back_so_a_later_notice_asks_again() {
    let w = World::new();
    w.connected(&user("alice"), Provider::GoogleHealth, "g-alice").await;
    let notice = || {
        let dates = vec![date("2026-11-24"), date("2026-11-25")];
        WebhookMessage::Notices(vec![crate::ports::DataNotice { account_id: "g-alice".into(), dates, deleted: false }])
    };
    w.webhooks.answer(Ok(notice()));
    w.intake.receive(Provider::GoogleHealth, "POST", &[], b"{}").await.unwrap();
    let [request] = w.publisher.events().try_into().unwrap();

    w.syncing.handle_event(request, None).await.unwrap();
    let late_notice = w.intake.receive(Provider::GoogleHealth, "POST", &[], b"{}").await.unwrap();

    assert_eq!(late_notice, crate::services::IntakeAnswer::Accepted { notices: 1, syncs: 1 });
}

#[tokio::test]
async fn a_provider_failure_is_reported_with_its_code() {
    let w = World::new();
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    w.connected(&bob, Provider::Misfit, "m-bob").await;
    w.connected_with_unreadable_tokens(&carol).await;
    *w.google.answer.lock().unwrap() = Err(ProviderError::Unavailable("503".into()));
    *w.misfit.answer.lock().unwrap() = Err(ProviderError::ReconnectRequired { reason: "revoked".into() });

    let unavailable = w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Schedule), None);
    let revoked = w.syncing.handle_event(requested("bob", Provider::Misfit, SyncReason::Schedule), None);
    let unreadable = w.syncing.handle_event(requested("carol", Provider::GoogleHealth, SyncReason::Schedule), None);

    assert_eq!(unavailable.await.unwrap(), WorkerResult::Failed { code: FailureCode::ProviderUnavailable });
    assert_eq!(revoked.await.unwrap(), WorkerResult::Failed { code: FailureCode::ReconnectRequired });
    assert_eq!(unreadable.await.unwrap(), WorkerResult::Failed { code: FailureCode::TokensUnreadable });
    assert_eq!(w.connection(&alice, Provider::GoogleHealth).await.unwrap().status, ConnectionStatus::Active);
    assert_eq!(w.connection(&bob, Provider::Misfit).await.unwrap().status, ConnectionStatus::ReconnectRequired);
}

/// A 403 about the project (the API not enabled, say) is not the person's to fix: the
/// connection stays active and keeps its schedule, the status says wait, nobody is told to
/// reconnect, and no status change is published.
#[tokio::test]
async fn a_project_level_refusal_asks_people_to_wait_not_to_reconnect() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    *w.google.answer.lock().unwrap() = Err(ProviderError::AppRefused { reason: "SERVICE_DISABLED".into() });

    let result = w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Schedule), None).await;

    assert_eq!(result.unwrap(), WorkerResult::Failed { code: FailureCode::AppRefused });
    let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Active);
    assert!(connection.next_sync_at.is_some_and(|at| at > w.now()), "retried later, with backoff");
    let views = w.status().connections(&alice).await.unwrap();
    let diagnosis = &views[0].diagnosis;
    assert_eq!((diagnosis.code, diagnosis.action), ("app_refused", crate::diagnosis::Action::Wait));
    assert!(!diagnosis.message.to_lowercase().contains("reconnect"), "{}", diagnosis.message);
    assert!(w.status_changes().is_empty());
}

#[tokio::test]
async fn a_shard_sweep_syncs_exactly_its_due_connections_each_once() {
    let w = World::new();
    let mut in_shard = walkers_in(3, 5);
    let (not_due, unreadable) = (in_shard.pop().unwrap(), in_shard.pop().unwrap());
    let elsewhere = walkers_in(4, 2);
    for walker in in_shard.iter().chain(&elsewhere) {
        w.connected(walker, Provider::GoogleHealth, &format!("g-{walker}")).await;
    }
    w.connected_not_due(&not_due).await;
    w.connected_with_unreadable_tokens(&unreadable).await;
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-25", 1000)]);
    let sweep = || Event::SyncShard(SyncShard { shard: 3, tick: w.now() });

    let first = w.syncing.handle_event(sweep(), None).await.unwrap();
    let second = w.syncing.handle_event(sweep(), None).await.unwrap();

    // The unreadable one fails once and asks for a reconnect: it is no longer due.
    assert_eq!(first, WorkerResult::Shard { synced: 3, failed: 1, stopped_early: false });
    assert_eq!(second, WorkerResult::Shard { synced: 0, failed: 0, stopped_early: false });
    let broken = w.connection(&unreadable, Provider::GoogleHealth).await.unwrap();
    assert_eq!(
        (broken.status, broken.last_error.map(|e| e.code)),
        (ConnectionStatus::ReconnectRequired, Some(FailureCode::TokensUnreadable))
    );
    assert_eq!(*w.google.calls.lock().unwrap(), 3);
    for walker in &in_shard {
        assert_eq!(w.last_attempt(walker).await, Some(w.now()), "{walker}");
    }
    for walker in elsewhere.iter().chain([&not_due]) {
        assert_eq!(w.last_attempt(walker).await, None, "{walker} is not this sweep's");
    }
}

#[tokio::test]
async fn a_shard_sweep_past_its_stop_time_starts_nothing() {
    let w = World::new();
    for walker in walkers_in(3, 2) {
        w.connected(&walker, Provider::GoogleHealth, &format!("g-{walker}")).await;
    }

    let event = Event::SyncShard(SyncShard { shard: 3, tick: w.now() });
    let result = w.syncing.handle_event(event, Some(Instant::now())).await.unwrap();

    assert_eq!(result, WorkerResult::Shard { synced: 0, failed: 0, stopped_early: true });
    assert_eq!(*w.google.calls.lock().unwrap(), 0);
    assert_eq!(w.store.due_connections(3, w.now(), None, 10).await.unwrap().len(), 2, "left due for the next tick");
}

#[tokio::test]
async fn an_event_the_worker_does_not_handle_is_a_bad_event() {
    let w = World::new();
    let event = Event::StepsUpdated(StepsUpdated {
        user: user("alice"),
        date: date("2026-11-25"),
        old_total: 0,
        new_total: 10,
        version: 1,
        source: Provider::GoogleHealth,
    });

    let result = w.syncing.handle_event(event, None).await;

    assert_eq!(format!("{:?}", result.unwrap_err()), r#"BadEvent("StepsUpdated is not handled here")"#);
}

#[tokio::test]
async fn a_tick_asks_each_shard_with_due_work_for_one_sweep() {
    let w = World::new();
    let quiet = w.syncing.tick().await.unwrap();
    for walker in walkers_in(2, 2).into_iter().chain(walkers_in(6, 1)) {
        w.connected(&walker, Provider::GoogleHealth, &format!("g-{walker}")).await;
    }
    w.connected_not_due(&walkers_in(5, 1)[0]).await;

    let busy = w.syncing.tick().await.unwrap();

    assert_eq!(quiet, [] as [u16; 0]);
    assert_eq!(busy, [2, 6]);
    let sweep = |shard| Event::SyncShard(SyncShard { shard, tick: w.now() });
    assert_eq!(w.publisher.events(), [sweep(2), sweep(6)]);
}

#[tokio::test]
async fn sync_steps_once_per_cooldown_says_how_long_to_wait() {
    let w = World::new();
    let alice = user("alice");
    w.syncing.sync_now(&alice, None).await.unwrap();

    let at_once = w.syncing.sync_now(&alice, None).await;
    w.clock.advance(Duration::from_secs(45));
    let later = w.syncing.sync_now(&alice, None).await;
    w.clock.advance(Duration::from_secs(15));
    let after_the_cooldown = w.syncing.sync_now(&alice, None).await;

    let too_soon =
        |s| format!("TooSoon {{ message: \"you synced moments ago; try again in {s} seconds\", retry_after: {s}s }}");
    assert_eq!(refused(at_once), too_soon(60));
    assert_eq!(refused(later), too_soon(15));
    assert_eq!(outcomes(&after_the_cooldown.unwrap()), []);
}

#[tokio::test]
async fn sync_steps_for_an_unknown_challenge_is_not_found_and_spends_no_cooldown() {
    let w = World::new();
    let alice = user("alice");
    let nope = ChallengeId::parse("nope").unwrap();

    let unknown = w.syncing.sync_now(&alice, Some(&nope)).await;
    let right_after = w.syncing.sync_now(&alice, None).await;

    assert_eq!(refused(unknown), r#"NotFound("challenge nope")"#);
    assert!(right_after.is_ok(), "{right_after:?}");
}

#[tokio::test]
async fn sync_steps_answers_each_pulled_connection_with_its_own_outcome() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    w.connected(&alice, Provider::Misfit, "m-alice").await;
    w.store.create_connection(&Connection::new(alice.clone(), Provider::AppleHealth, w.now())).await.unwrap();
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-24", 5000), steps("2026-11-25", 6000)]);
    *w.misfit.answer.lock().unwrap() = Err(ProviderError::Unavailable("503".into()));

    let answer = w.syncing.sync_now(&alice, None).await.unwrap();

    assert_eq!(
        outcomes(&answer),
        [
            (Provider::GoogleHealth, "synced", 2, None),
            (Provider::Misfit, "failed", 0, Some(FailureCode::ProviderUnavailable)),
        ],
        "the phone source uploads by itself: not part of it"
    );
    let days: Vec<_> = answer.connections[0].days.iter().map(|d| (d.local_date, d.steps)).collect();
    assert_eq!(days, [(date("2026-11-24"), 5000), (date("2026-11-25"), 6000)]);
    assert_eq!((answer.standing, answer.message, answer.queued), (None, None, false));
}

#[tokio::test]
async fn sync_steps_skips_a_connection_disconnected_while_its_tokens_refresh() {
    let gate = Arc::new(Gate::default());
    let oauth = ScriptedOAuth::granting(SCOPE, "g-alice").with_refresh_gate(gate.clone());
    let w = World::with(ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![])), oauth);
    let alice = user("alice");
    let expiring = TokenSet { expires_at: w.now() + jiff::SignedDuration::from_mins(1), ..issued_tokens("a", SCOPE) };
    w.connected_with(&alice, Provider::GoogleHealth, "g-alice", expiring).await;

    let (answer, ()) = tokio::join!(w.syncing.sync_now(&alice, None), async {
        gate.reached().await;
        w.connecting.disconnect(&alice, Provider::GoogleHealth).await.unwrap();
        gate.open();
    });

    assert_eq!(outcomes(&answer.unwrap()), [(Provider::GoogleHealth, "skipped", 0, None)]);
    let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!((connection.status, connection.tokens), (ConnectionStatus::Disconnected, None), "never revived");
    assert_eq!(*w.google.calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn sync_steps_answers_the_callers_standing_in_the_challenge() {
    let w = World::new();
    let (alice, bob) = (user("alice"), user("bob"));
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.join(&november, &bob).await;
    w.walked(&bob, Provider::AppleHealth, &[steps("2026-11-20", 9000)]).await;
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-24", 5000), steps("2026-11-25", 6000)]);

    let answer = w.syncing.sync_now(&alice, Some(&november)).await.unwrap();

    let standing = Standing { challenge_id: november, rank: 1, steps: 11_000, participants: 2 };
    assert_eq!(answer.standing, Some(standing));
}

#[tokio::test]
async fn sync_steps_past_its_deadline_is_queued_for_the_worker_which_finishes_it() {
    let gate = Arc::new(Gate::default());
    let google = ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![steps("2026-11-25", 4321)])).gated(gate.clone());
    let mut w = World::with(google, ScriptedOAuth::granting(SCOPE, "g-alice"));
    w.syncing.settings.manual_deadline = Duration::from_millis(20);
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;

    // The provider holds every fetch at the gate: the deadline passes first, always.
    let answer = w.syncing.sync_now(&alice, None).await.unwrap();

    assert_eq!(outcomes(&answer), [(Provider::GoogleHealth, "queued", 0, None)]);
    assert_eq!(answer.message, Some("Some sources are still syncing; their steps will appear in a minute."));
    assert!(answer.queued);
    assert_eq!(w.publisher.events(), [requested("alice", Provider::GoogleHealth, SyncReason::Manual)]);
    assert_eq!(w.store.day(&alice, date("2026-11-25")), None, "nothing was written past the deadline");

    gate.open();
    let worker = w.syncing.handle_event(w.publisher.events().remove(0), None).await.unwrap();
    assert_eq!(worker, WorkerResult::Synced { changed: 1, unchanged: 0, rejected: 0 });
    assert_eq!(w.store.day(&alice, date("2026-11-25")).unwrap().total.get(), 4321);
}

/// Alice, in "november" and connected to Google, whose answer is `answer`: a scheduled sync of
/// hers has fetched and waits at the returned gate when this returns.
async fn a_sync_held_after_its_fetch(
    answer: Result<Vec<DailyValue>, ProviderError>,
) -> (
    Arc<World>,
    Arc<Gate>,
    crate::domain::ChallengeId,
    tokio::task::JoinHandle<Result<WorkerResult, crate::services::WorkerError>>,
) {
    let gate = Arc::new(Gate::default());
    let google = ScriptedProvider::new(Provider::GoogleHealth, answer).gated(gate.clone());
    let w = Arc::new(World::with(google, ScriptedOAuth::granting(SCOPE, "g-alice")));
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let sync = {
        let w = w.clone();
        let event = requested("alice", Provider::GoogleHealth, SyncReason::Schedule);
        tokio::spawn(async move { w.syncing.handle_event(event, None).await })
    };
    gate.reached().await;
    (w, gate, november, sync)
}

/// Two syncs of one connection interleave: the sweep's fetch reads 5,000, then stalls; a
/// webhook's sync a minute later reads the corrected 9,000 and commits. When the stalled one
/// commits, its older observation changes nothing: the day stays 9,000, the challenge exact,
/// and one `StepsUpdated` was published. An unchanged re-pull writes nothing.
#[tokio::test]
async fn an_older_fetch_that_commits_last_never_replaces_a_newer_one() {
    let (w, gate, november, stalled) = a_sync_held_after_its_fetch(Ok(vec![steps("2026-11-25", 5000)])).await;
    let alice = user("alice");
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-25", 9000)]);
    w.clock.advance(Duration::from_secs(60));
    w.google.ungate();
    let newer = w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Webhook), None).await;
    assert_eq!(newer.unwrap(), WorkerResult::Synced { changed: 1, unchanged: 0, rejected: 0 });
    gate.open();
    let older = stalled.await.unwrap().unwrap();

    assert_eq!(older, WorkerResult::Synced { changed: 0, unchanged: 1, rejected: 0 }, "nothing applied");
    let day = w.store.day(&alice, date("2026-11-25")).unwrap();
    assert_eq!(day.total.get(), 9000);
    assert_eq!(day.sources[&Provider::GoogleHealth].observed_at, Some(w.now()), "the newer fetch's start");
    assert_eq!(w.total(&november, &alice).await, (9000, 1));
    let updates = w.day_events().await;
    assert_eq!(updates.len(), 1, "one committed change, one event: {updates:?}");
    assert_eq!((updates[0].old_total, updates[0].new_total, updates[0].version), (0, 9000, 1));

    let writes = w.store.writes();
    w.clock.advance(Duration::from_secs(600));
    let again = w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Schedule), None).await;
    assert_eq!(again.unwrap(), WorkerResult::Synced { changed: 0, unchanged: 1, rejected: 0 });
    assert_eq!(w.store.writes() - writes, 0, "the same count observed later is no day write, and no outcome record");
}

/// 150 connections in one shard fail on our side, due before everyone else: more than a page
/// of the sweep. Each failure is recorded (unreadable tokens ask for a reconnect), so the
/// sweep reaches the healthy connections behind them in the same run.
#[tokio::test]
async fn a_shard_full_of_failing_connections_still_syncs_the_rest() {
    let w = World::new();
    let mut walkers = walkers_in(5, 160);
    let healthy = walkers.split_off(150);
    for walker in &walkers {
        w.connected_with_unreadable_tokens(walker).await;
    }
    w.clock.advance(Duration::from_secs(1));
    for walker in &healthy {
        w.connected(walker, Provider::GoogleHealth, &format!("g-{walker}")).await;
    }
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-25", 1000)]);

    let sweep = w.syncing.handle_event(Event::SyncShard(SyncShard { shard: 5, tick: w.now() }), None).await.unwrap();

    assert_eq!(sweep, WorkerResult::Shard { synced: 10, failed: 150, stopped_early: false });
    for walker in &healthy {
        assert_eq!(w.store.day(walker, date("2026-11-25")).map(|d| d.total.get()), Some(1000), "{walker}");
    }
    assert!(w.store.due_connections(5, w.now(), None, 500).await.unwrap().is_empty(), "nothing left due");
    let diagnosed = w.status_changes().iter().filter(|c| c.reason == "tokens_unreadable").count();
    assert_eq!(diagnosed, 150, "each one told to reconnect");
}

/// An error of ours that is not about the tokens (the store throttling, say) keeps the
/// connection active and due again after a backoff, never due now.
#[tokio::test]
async fn an_error_of_ours_is_recorded_with_a_backoff() {
    let w = World::new();
    let alice = user("alice");
    let connection = w.connected(&alice, Provider::GoogleHealth, "g-alice").await;

    let error = crate::engine::SyncError::TooManyConflicts(100);
    w.engine.record_error(&connection, &error).await.unwrap();

    let stored = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!(
        (stored.status, stored.last_error.map(|e| e.code)),
        (ConnectionStatus::Active, Some(FailureCode::SyncFailed))
    );
    assert!(stored.next_sync_at.is_some_and(|at| at > w.now()), "due later, not now");
    assert!(w.status_changes().is_empty());
}

/// A sync begins with the old tokens; meanwhile the person reconnects (new tokens). The old
/// sync's "revoked" answer is about the old grant: its outcome is dropped, and the fresh
/// connection stays active with no error.
#[tokio::test]
async fn an_old_syncs_failure_never_marks_a_fresh_reconnection() {
    let revoked = Err(ProviderError::ReconnectRequired { reason: "revoked".into() });
    let (w, gate, _, old) = a_sync_held_after_its_fetch(revoked).await;
    let alice = user("alice");
    let before = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    let reconnected = Connection { token_version: before.token_version + 1, ..before.clone() };
    w.store.save_connection(&reconnected, Some(before.token_version)).await.unwrap();
    gate.open();
    old.await.unwrap().unwrap();

    let now = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!((now.status, now.last_error), (ConnectionStatus::Active, None));
    assert!(w.status_changes().is_empty(), "nobody is told to reconnect");
}

/// The person turns Google off while a sync is between its fetch and its writes: the day
/// writes are refused in their own transaction, nothing is counted, and the sync ends as
/// skipped (disconnected), not failed.
#[tokio::test]
async fn a_sync_running_when_the_person_disconnects_writes_nothing_more() {
    let (w, gate, november, running) = a_sync_held_after_its_fetch(Ok(vec![steps("2026-11-25", 4321)])).await;
    let alice = user("alice");
    w.connecting.disconnect(&alice, Provider::GoogleHealth).await.unwrap();
    gate.open();

    assert_eq!(running.await.unwrap().unwrap(), WorkerResult::Skipped { why: "connection is disconnected".into() });
    assert_eq!(w.store.day(&alice, date("2026-11-25")), None);
    assert_eq!(w.total(&november, &alice).await, (0, 0));
}

/// Given: alice's Google tokens expire within the refresh margin.
async fn connected_expiring(w: &World, alice: &UserId) {
    let expiring =
        TokenSet { expires_at: w.now() + jiff::SignedDuration::from_mins(1), ..issued_tokens("access-old", SCOPE) };
    w.connected_with(alice, Provider::GoogleHealth, "g-alice", expiring).await;
}

/// A refresh is refused (`invalid_grant`) because a rival already replaced the tokens (a
/// reconnect, or a peer whose lease outlived ours): the refusal was about the old token, so the
/// sync goes on with the rival's, the connection stays active and nobody is told to reconnect.
#[tokio::test]
async fn an_invalid_grant_after_a_rival_rotated_the_token_goes_on_with_the_rivals_tokens() {
    let gate = Arc::new(Gate::default());
    let w = World::with(
        ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![steps("2026-11-25", 4200)])),
        ScriptedOAuth::granting(SCOPE, "g-alice").with_refresh_gate(gate.clone()),
    );
    let alice = user("alice");
    connected_expiring(&w, &alice).await;
    w.oauth.answer_refresh(Err(ProviderError::InvalidGrant));
    let rival = w.cipher.encrypt(&alice, Provider::GoogleHealth, 2, &issued_tokens("access-rival", SCOPE)).unwrap();

    let (synced, ()) = tokio::join!(
        w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Schedule), None),
        async {
            gate.reached().await;
            assert_eq!(w.store.store_tokens(&alice, Provider::GoogleHealth, &rival, 1).await.unwrap(), 2);
            gate.open();
        }
    );

    assert_eq!(synced.unwrap(), WorkerResult::Synced { changed: 1, unchanged: 0, rejected: 0 });
    let stored = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!((stored.status, stored.token_version), (ConnectionStatus::Active, 2));
    assert_eq!(stored.tokens, Some(rival), "the rival's tokens stay");
    assert_eq!(w.status_changes(), [], "nobody is asked to reconnect");
}

/// The data API refuses an access token we believed good (401): one forced refresh, one more
/// fetch. A second refusal ends the sync as `token_refused` with a backoff, no refresh loop,
/// and the connection stays active.
#[tokio::test]
async fn a_401_refreshes_once_and_fetches_once_more() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    w.google.answer_next([Err(ProviderError::Unauthorized), Ok(vec![steps("2026-11-25", 4200)])]);
    let sync = || w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Schedule), None);

    assert_eq!(sync().await.unwrap(), WorkerResult::Synced { changed: 1, unchanged: 0, rejected: 0 });
    assert_eq!((w.oauth.refreshes(), *w.google.calls.lock().unwrap()), (1, 2));
    assert_eq!(w.connection(&alice, Provider::GoogleHealth).await.unwrap().token_version, 2);

    w.google.answer_next([Err(ProviderError::Unauthorized), Err(ProviderError::Unauthorized)]);
    let refused = sync().await.unwrap();

    assert_eq!(refused, WorkerResult::Failed { code: FailureCode::TokenRefused });
    assert_eq!((w.oauth.refreshes(), *w.google.calls.lock().unwrap()), (2, 4), "one refresh per sync, never a loop");
    let stored = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!(stored.status, ConnectionStatus::Active);
    assert!(stored.next_sync_at.is_some_and(|at| at >= w.now() + jiff::SignedDuration::from_secs(270)), "backed off");
    assert_eq!(w.status_changes(), []);
}

/// Google answers 503 for two accounts in the middle of a shard: those two record
/// `provider_unavailable` and back off, the other four sync, and the next sweep does not
/// retry the failing ones early.
#[tokio::test]
async fn a_provider_5xx_in_the_middle_of_a_shard_backs_those_off_and_syncs_the_rest() {
    let w = World::new();
    let walkers = walkers_in(3, 6);
    for walker in &walkers {
        w.connected(walker, Provider::GoogleHealth, &format!("g-{walker}")).await;
    }
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-25", 1000)]);
    for failing in &walkers[2..4] {
        w.google.answer_for(failing, Err(ProviderError::Unavailable("503 Service Unavailable".into())));
    }
    let sweep = || w.syncing.handle_event(Event::SyncShard(SyncShard { shard: 3, tick: w.now() }), None);

    assert_eq!(sweep().await.unwrap(), WorkerResult::Shard { synced: 4, failed: 2, stopped_early: false });

    for (i, walker) in walkers.iter().enumerate() {
        let stored = w.connection(walker, Provider::GoogleHealth).await.unwrap();
        let day = w.store.day(walker, date("2026-11-25")).map(|d| d.total.get());
        if (2..4).contains(&i) {
            assert_eq!(stored.last_error.map(|e| e.code), Some(FailureCode::ProviderUnavailable), "{walker}");
            assert_eq!(stored.status, ConnectionStatus::Active);
            assert!(stored.next_sync_at.is_some_and(|at| at >= w.now() + jiff::SignedDuration::from_secs(270)));
            assert_eq!(day, None);
        } else {
            assert_eq!(day, Some(1000), "{walker}");
        }
    }
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(sweep().await.unwrap(), WorkerResult::Shard { synced: 0, failed: 0, stopped_early: false });
}

/// The same `SyncShard` delivered twice at the same moment (EventBridge delivers at least
/// once): one delivery sweeps, the other skips the shard, and each due connection is fetched
/// once. The claim is given back at the end, so the next tick sweeps again.
#[tokio::test]
async fn a_shard_event_delivered_twice_at_once_fetches_each_connection_once() {
    let gate = Arc::new(Gate::default());
    let w = World::with(
        ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![steps("2026-11-25", 1000)])).gated(gate.clone()),
        ScriptedOAuth::granting(SCOPE, "g-alice"),
    );
    let walker = walkers_in(6, 1).remove(0);
    w.connected(&walker, Provider::GoogleHealth, "g-walker").await;
    let sweep = || w.syncing.handle_event(Event::SyncShard(SyncShard { shard: 6, tick: w.now() }), None);

    let both = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(sweep(), async {
            gate.reached().await; // the first delivery is fetching
            let second = sweep().await;
            w.google.ungate();
            gate.open();
            second
        })
    });
    let (first, second) = both.await.expect("neither delivery waits on the other");

    assert_eq!(first.unwrap(), WorkerResult::Shard { synced: 1, failed: 0, stopped_early: false });
    assert_eq!(second.unwrap(), WorkerResult::Skipped { why: "shard 6 is being swept already".into() });
    assert_eq!(*w.google.calls.lock().unwrap(), 1, "fetched once");
    assert_eq!(w.store.day(&walker, date("2026-11-25")).map(|d| d.total.get()), Some(1000));
    let next = sweep().await.unwrap();
    assert!(matches!(next, WorkerResult::Shard { .. }), "the claim was given back: {next:?}");
}

/// "Sync steps" tapped twice at the same moment: the cooldown's one conditional write decides.
/// One tap syncs, the other is told how long to wait, and the provider is asked once.
#[tokio::test]
async fn two_taps_of_sync_steps_at_once_sync_once() {
    let gate = Arc::new(Gate::default());
    let w = World::with(
        ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![steps("2026-11-25", 1000)])).gated(gate.clone()),
        ScriptedOAuth::granting(SCOPE, "g-alice"),
    );
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;

    let both = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(w.syncing.sync_now(&alice, None), async {
            gate.reached().await; // the first tap is fetching
            let second = w.syncing.sync_now(&alice, None).await;
            gate.open();
            second
        })
    });
    let (first, second) = both.await.expect("the second tap never waits on the first");

    assert_eq!(outcomes(&first.unwrap()), [(Provider::GoogleHealth, "synced", 1, None)]);
    assert!(refused(second).starts_with("TooSoon"), "the second tap is told to wait");
    assert_eq!(*w.google.calls.lock().unwrap(), 1);
}

/// The worker dies after the fetch and before the commit (a timeout, a crash): nothing was
/// written, the connection is still due, and the event delivered again counts each day once,
/// with one event per changed day.
#[tokio::test]
async fn a_worker_dying_after_the_fetch_leaves_nothing_and_the_redelivery_counts_once() {
    let gate = Arc::new(Gate::default());
    let w = World::with(
        ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![steps("2026-11-24", 4000), steps("2026-11-25", 1000)]))
            .gated(gate.clone()),
        ScriptedOAuth::granting(SCOPE, "g-alice"),
    );
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    let before = w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let event = requested("alice", Provider::GoogleHealth, SyncReason::Schedule);

    tokio::select! {
        _ = w.syncing.handle_event(event.clone(), None) => panic!("the sync was held at the gate"),
        () = gate.reached() => {} // fetched; the invocation dies here
    }

    assert_eq!(w.store.day(&alice, date("2026-11-24")), None, "nothing written");
    assert_eq!(w.total(&november, &alice).await, (0, 0));
    let stored = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!(stored.next_sync_at, before.next_sync_at, "still due: the next sweep takes it");
    w.google.ungate();
    let redelivered = w.syncing.handle_event(event, None).await.unwrap();
    assert_eq!(redelivered, WorkerResult::Synced { changed: 2, unchanged: 0, rejected: 0 });
    assert_eq!(w.total(&november, &alice).await, (5000, 2));
    assert_eq!(w.day_events().await.len(), 2, "one event per changed day");
}

/// The person unticked the activity permission later (Google answers 403 with a missing
/// scope): the connection needs them, so it is `reconnect_required` with `missing_permission`,
/// one status event says what to do, and it leaves the schedule.
#[tokio::test]
async fn a_scope_removed_later_asks_the_person_to_grant_it_again() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    *w.google.answer.lock().unwrap() = Err(ProviderError::MissingScope { scope: SCOPE.into() });

    let result = w.syncing.handle_event(requested("alice", Provider::GoogleHealth, SyncReason::Schedule), None).await;

    assert_eq!(result.unwrap(), WorkerResult::Failed { code: FailureCode::MissingPermission });
    let stored = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!(stored.status, ConnectionStatus::ReconnectRequired);
    let changes = w.status_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].reason.as_str(), changes[0].new_status),
        ("missing_permission", ConnectionStatus::ReconnectRequired)
    );
    assert!(
        w.store
            .due_connections(
                shard_of(&alice, Provider::GoogleHealth),
                w.now() + jiff::SignedDuration::from_hours(48),
                None,
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
}

impl World {
    /// When: the worker sweeps `shard` now.
    async fn sweep(&self, shard: u16) -> WorkerResult {
        self.syncing.handle_event(Event::SyncShard(SyncShard { shard, tick: self.now() }), None).await.unwrap()
    }

    /// Moves the clock a minute into the next start of `slot`'s phase.
    fn to_next_phase_of(&self, slot: crate::domain::DueSlot) {
        let current = phase_index(self.now());
        let ahead = (i64::from(slot.phase) - current - 1).rem_euclid(i64::from(slot.cycle));
        let target = phase_start(current + 1 + ahead) + jiff::SignedDuration::from_mins(1);
        self.clock.set(target);
    }

    fn google_calls(&self) -> u32 {
        *self.google.calls.lock().unwrap()
    }
}

use crate::engine::{phase_index, phase_start};

/// Alice's first sync puts her connection in its slot (one write); from then on the sweep of
/// her phase, once a cycle, fetches her days and writes nothing on her connection; her status
/// still tells when that was and her newest data.
#[tokio::test]
async fn a_settled_connection_is_swept_once_a_cycle_and_writes_nothing() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let shard = shard_of(&alice, Provider::GoogleHealth);
    *w.google.answer.lock().unwrap() = Ok(vec![steps("2026-11-25", 1200)]);
    assert_eq!(w.sweep(shard).await, WorkerResult::Shard { synced: 1, failed: 0, stopped_early: false });
    let settled = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    let slot = settled.slot.expect("in its slot");
    assert_eq!((settled.next_sync_at, settled.last_success_at), (None, Some(w.now())));
    assert_eq!(slot, w.engine.schedule.slot(&alice, Provider::GoogleHealth).unwrap());

    // The same tick again, and the rest of the cycle before her phase: nothing to do.
    assert_eq!(w.sweep(shard).await, WorkerResult::Shard { synced: 0, failed: 0, stopped_early: false });
    assert_eq!(w.syncing.tick().await.unwrap(), Vec::<u16>::new(), "nothing due anywhere");
    assert_eq!(w.google_calls(), 1);

    w.to_next_phase_of(slot);
    let writes = w.store.writes();
    assert_eq!(w.syncing.tick().await.unwrap(), [shard], "her phase began");
    assert_eq!(w.sweep(shard).await, WorkerResult::Shard { synced: 1, failed: 0, stopped_early: false });
    assert_eq!(w.google_calls(), 2);
    assert_eq!(w.connection(&alice, Provider::GoogleHealth).await.unwrap(), settled, "her connection untouched");
    let cycles = w.engine.schedule.cycles().len() as u64;
    assert_eq!(w.store.writes() - writes, cycles, "one cursor write per cycle, for the whole shard");

    let view = w.status().connections(&alice).await.unwrap().remove(0);
    assert_eq!(view.last_success_at, Some(w.now()), "the sweep of her phase, from its cursor");
    assert_eq!(view.newest_data_date, Some(date("2026-11-25")));
    assert_eq!(view.diagnosis.code, "healthy");
    assert!(view.next_sync_at.is_some_and(|at| at > w.now()), "her phase in the next cycle");
}

/// A failing connection leaves its slot for a due time (a write: the error and the backoff),
/// is not swept before it, is at it, and goes back to its slot when it succeeds.
#[tokio::test]
async fn a_connection_backing_off_is_retried_at_its_time_and_not_before() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let shard = shard_of(&alice, Provider::GoogleHealth);
    w.sweep(shard).await;
    let slot = w.connection(&alice, Provider::GoogleHealth).await.unwrap().slot.unwrap();

    w.to_next_phase_of(slot);
    *w.google.answer.lock().unwrap() = Err(ProviderError::Unavailable("502".into()));
    assert_eq!(w.sweep(shard).await, WorkerResult::Shard { synced: 0, failed: 1, stopped_early: false });
    let backing_off = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    let retry_at = backing_off.next_sync_at.expect("a due time while it backs off");
    assert!(retry_at > w.now());
    assert_eq!(backing_off.last_error.map(|e| e.code), Some(FailureCode::ProviderUnavailable));
    let view = w.status().connections(&alice).await.unwrap().remove(0);
    assert_eq!((view.diagnosis.code, view.next_sync_at), ("provider_unavailable", Some(retry_at)));

    assert_eq!(w.syncing.tick().await.unwrap(), Vec::<u16>::new(), "not before its time");
    assert_eq!(w.sweep(shard).await, WorkerResult::Shard { synced: 0, failed: 0, stopped_early: false });
    assert_eq!(w.google_calls(), 2);

    w.clock.set(retry_at);
    *w.google.answer.lock().unwrap() = Ok(vec![]);
    assert_eq!(w.syncing.tick().await.unwrap(), [shard], "due at its time");
    assert_eq!(w.sweep(shard).await, WorkerResult::Shard { synced: 1, failed: 0, stopped_early: false });
    let back = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!((back.next_sync_at, back.last_error, back.slot), (None, None, Some(slot)), "back in its slot");
    assert_eq!(back.last_success_at, Some(w.now()));
}

/// A sweep stopped at its deadline before a phase ended leaves the phase due: the next sweep
/// takes every connection it did not reach.
#[tokio::test]
async fn a_sweep_stopped_at_its_deadline_leaves_the_rest_of_its_phase_due() {
    let w = World::new();
    let schedule = w.engine.schedule.clone();
    let first = walkers_in(3, 1).remove(0);
    let slot = schedule.slot(&first, Provider::GoogleHealth).unwrap();
    let together: Vec<UserId> = (0..)
        .map(|i| user(&format!("walker-{i}")))
        .filter(|u| schedule.slot(u, Provider::GoogleHealth) == Some(slot))
        .take(4)
        .collect();
    for walker in &together {
        w.connected(walker, Provider::GoogleHealth, &format!("g-{walker}")).await;
    }
    assert_eq!(w.sweep(3).await, WorkerResult::Shard { synced: 4, failed: 0, stopped_early: false });

    w.to_next_phase_of(slot);
    let deadline =
        w.syncing.handle_event(Event::SyncShard(SyncShard { shard: 3, tick: w.now() }), Some(Instant::now()));
    assert_eq!(deadline.await.unwrap(), WorkerResult::Shard { synced: 0, failed: 0, stopped_early: true });
    assert_eq!(w.syncing.tick().await.unwrap(), [3], "the phase is still due");
    assert_eq!(w.sweep(3).await, WorkerResult::Shard { synced: 4, failed: 0, stopped_early: false });
    assert_eq!(w.syncing.tick().await.unwrap(), Vec::<u16>::new());
}
