//! Scheduled sync, "Sync steps", sync status and the person's steps: the real
//! `scheduled-sync`, `sync-worker` and `manual-sync` handlers against local DynamoDB and the
//! fake Google Health server.

use functions::app::App;
use functions::sync_worker::{WorkerResult, handle_until};
use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use std::time::{Duration, Instant};
use stepsync::domain::{Connection, ConnectionStatus, DailyValue, LastError, Provider, TokenSet, UserId};
use stepsync::domain::{DUE_SHARDS, shard_of};
use stepsync::events::Event;
use stepsync::ports::{ConnectionStore, StepStore};
use stepsync_local::fakes::google_health::{ACTIVITY_SCOPE, FakeGoogleHealth, Fault, FaultTarget};
use stepsync_local::harness::{self, TestEnv, body_json, date, request_from_sample, unique};
use stepsync_local::on_dynoxide;

on_dynoxide!(
    one_tick_syncs_exactly_the_due_connections_once,
    a_worker_short_of_time_stops_cleanly_and_leaves_the_rest_due,
    sync_steps_answers_with_fresh_totals_and_the_standing,
    sync_steps_past_its_deadline_answers_202_and_the_worker_finishes,
    status_diagnoses_each_way_a_connection_can_be_stuck,
    steps_returns_the_callers_own_days_with_their_sources,
    one_persons_token_never_reaches_another_persons_data,
    a_person_is_erased_by_themselves_or_an_admin_and_their_grant_revoked,
);

struct World {
    env: TestEnv,
    fake: FakeGoogleHealth,
    app: App,
}

impl World {
    async fn new(env: TestEnv, extra: Vec<(&'static str, String)>) -> Self {
        let fake = FakeGoogleHealth::start().await;
        let mut vars = harness::google_vars(&fake);
        vars.extend(extra);
        let app = harness::app(&env, vars);
        Self { env, fake, app }
    }

    /// A Google Health connection with valid tokens, due at `due`.
    async fn connect(&self, user: &UserId, due: Option<Timestamp>) -> String {
        let health_id = unique("health");
        self.fake.add_person(&health_id, None);
        let pair = self.fake.grant_tokens(&health_id, &[ACTIVITY_SCOPE]);
        let tokens = TokenSet {
            access_token: SecretString::from(pair.access_token),
            refresh_token: Some(SecretString::from(pair.refresh_token)),
            expires_at: self.env.now() + SignedDuration::from_hours(12),
            scope: Some(ACTIVITY_SCOPE.to_owned()),
        };
        let sealed = self.app.services.engine.cipher.encrypt(user, Provider::GoogleHealth, 1, &tokens).unwrap();
        let connection = Connection {
            tokens: Some(sealed),
            token_version: 1,
            provider_user_id: Some(health_id.clone()),
            next_sync_at: due,
            last_success_at: Some(self.env.now()),
            last_new_data_at: Some(self.env.now()),
            ..Connection::new(user.clone(), Provider::GoogleHealth, self.env.now())
        };
        self.env.store.save_connection(&connection, None).await.unwrap();
        self.env.store.claim_provider_account(Provider::GoogleHealth, &health_id, user).await.unwrap();
        health_id
    }

    async fn connection(&self, user: &UserId) -> Connection {
        self.env.store.get_connection(user, Provider::GoogleHealth).await.unwrap().unwrap()
    }

    async fn call(
        &self,
        sample: &str,
        user: Option<&UserId>,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> (u16, serde_json::Value, Option<String>) {
        let res = functions::manual_sync::handle(&self.app, request_from_sample(sample, user, edit)).await;
        let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        (res.status().as_u16(), body_json(&res), retry_after)
    }

    /// Runs the tick, then every `SyncShard` it published through the worker.
    async fn tick_and_sweep(&self, stop_at: Option<Instant>) -> Vec<WorkerResult> {
        let before = self.env.publisher.events().len();
        functions::scheduled_sync::tick(&self.app).await.unwrap();
        let shards: Vec<Event> = self.env.publisher.events()[before..]
            .iter()
            .filter(|e| matches!(e, Event::SyncShard(_)))
            .cloned()
            .collect();
        let mut results = Vec::new();
        for shard in shards {
            results.push(handle_until(&self.app, serde_json::to_value(&shard).unwrap(), stop_at).await.unwrap());
        }
        results
    }
}

fn user() -> UserId {
    UserId::parse(&unique("walker")).unwrap()
}

async fn one_tick_syncs_exactly_the_due_connections_once(env: TestEnv) {
    let w = World::new(env, vec![]).await;
    let now = w.env.now();
    let mut due = Vec::new();
    let mut later = Vec::new();
    for i in 0..500 {
        let u = user();
        if i % 2 == 0 {
            w.connect(&u, Some(now - SignedDuration::from_mins(1 + i % 30))).await;
            due.push(u);
        } else {
            w.connect(&u, Some(now + SignedDuration::from_mins(5 + i % 30))).await;
            later.push(u);
        }
    }
    let shards: std::collections::BTreeSet<u16> = due.iter().map(|u| shard_of(u, Provider::GoogleHealth)).collect();
    assert_eq!(shards.len(), DUE_SHARDS as usize, "the connections spread over all {DUE_SHARDS} shards");
    w.fake.reset_calls();

    let results = w.tick_and_sweep(None).await;
    assert_eq!(results.len(), DUE_SHARDS as usize, "one SyncShard per shard with due work");
    let synced: usize =
        results.iter().map(|r| if let WorkerResult::Shard { synced, .. } = r { *synced } else { 0 }).sum();
    assert_eq!(synced, 250);
    assert_eq!(w.fake.calls("rollup"), 250, "each due connection fetched exactly once");
    for u in &due {
        let c = w.connection(u).await;
        assert_eq!(c.last_attempt_at, Some(now));
        // Settled in its slot: no due time, swept once a cycle (webhook-fed: every 6 h).
        let slot = c.slot.expect("in its slot");
        assert_eq!((c.next_sync_at, slot.cycle), (None, 24), "webhook-fed: the next pull is a reconciliation");
    }
    for u in later.iter().take(20) {
        assert_eq!(w.connection(u).await.last_attempt_at, None, "not due, not touched");
    }
    assert!(w.tick_and_sweep(None).await.is_empty(), "the next tick finds nothing due");
}

async fn a_worker_short_of_time_stops_cleanly_and_leaves_the_rest_due(env: TestEnv) {
    let w = World::new(env, vec![("STEPSYNC_WORKER_CONCURRENCY", "2".to_owned())]).await;
    let now = w.env.now();
    let users: Vec<UserId> = (0..40).map(|_| user()).collect();
    for u in &users {
        w.connect(u, Some(now - SignedDuration::from_mins(1))).await;
    }
    // No time at all: nothing starts, everything stays due.
    let results = w.tick_and_sweep(Some(Instant::now())).await;
    assert!(
        results.iter().all(|r| matches!(r, WorkerResult::Shard { synced: 0, stopped_early: true, .. })),
        "{results:?}"
    );
    assert_eq!(w.fake.calls("rollup"), 0);

    // A little time: some finish, the rest stay due; nothing is lost or half-done.
    w.fake.fail_next(FaultTarget::Api, Fault::Slow(Duration::from_millis(120)), 1000);
    let results = w.tick_and_sweep(Some(Instant::now() + Duration::from_millis(300))).await;
    let synced: usize =
        results.iter().map(|r| if let WorkerResult::Shard { synced, .. } = r { *synced } else { 0 }).sum();
    let mut still_due = 0;
    for u in &users {
        let c = w.connection(u).await;
        if c.next_sync_at.is_some_and(|at| at <= now) {
            still_due += 1;
            assert_eq!(c.last_attempt_at, None);
        }
    }
    assert!(synced < users.len(), "the worker stopped early");
    assert_eq!(synced + still_due, users.len(), "every connection either synced or is still due");
    w.fake.clear_faults();
    let results = w.tick_and_sweep(None).await;
    let rest: usize =
        results.iter().map(|r| if let WorkerResult::Shard { synced, .. } = r { *synced } else { 0 }).sum();
    // The rest, and any of those already synced whose slot's phase is the current one.
    assert!(rest >= still_due, "the next tick takes the rest");
    for u in &users {
        let c = w.connection(u).await;
        assert!(c.next_sync_at.is_none() && c.last_success_at.is_some(), "every one synced and settled");
    }
}

async fn sync_steps_answers_with_fresh_totals_and_the_standing(env: TestEnv) {
    let w = World::new(env, vec![]).await;
    let (walker, rival) = (user(), user());
    let health = w.connect(&walker, None).await;
    let challenge = w.env.challenge("2026-11-01", "2026-11-30").await;
    for u in [&walker, &rival] {
        w.env.challenges().join(&challenge, u, w.env.now()).await.unwrap();
    }
    w.env
        .engine
        .apply(
            &rival,
            Provider::AppleHealth,
            &jiff::tz::TimeZone::UTC,
            &[DailyValue { date: date("2026-11-24"), steps: 9000, observed_at: None }],
        )
        .await
        .unwrap();
    w.fake.set_steps(&health, "2026-11-24", 12_000);
    w.fake.set_steps(&health, "2026-11-25", 1500);

    let challenge_id = challenge.to_string();
    let (status, body, _) = w
        .call("sync_now.json", Some(&walker), |e| {
            e["body"] = serde_json::json!({"challenge": challenge_id}).to_string().into();
        })
        .await;
    assert_eq!(status, 200, "{body}");
    let google = &body["connections"][0];
    assert_eq!(google["provider"], "google_health");
    assert_eq!(google["outcome"], "synced");
    assert_eq!(google["days_changed"], 2);
    assert_eq!(
        google["days"],
        serde_json::json!([{"local_date": "2026-11-24", "steps": 12000}, {"local_date": "2026-11-25", "steps": 1500}])
    );
    assert_eq!(body["standing"]["rank"], 1);
    assert_eq!(body["standing"]["steps"], 13_500);

    let (status, body, retry_after) = w
        .call("sync_now.json", Some(&walker), |e| {
            e.as_object_mut().unwrap().remove("body");
        })
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    w.env.clock.advance(Duration::from_secs(61));
    let (status, _, _) = w
        .call("sync_now.json", Some(&walker), |e| {
            e.as_object_mut().unwrap().remove("body");
        })
        .await;
    assert_eq!(status, 200, "after the cooldown");
}

async fn sync_steps_past_its_deadline_answers_202_and_the_worker_finishes(env: TestEnv) {
    let w = World::new(env, vec![("STEPSYNC_MANUAL_DEADLINE_MS", "200".to_owned())]).await;
    let walker = user();
    let health = w.connect(&walker, None).await;
    w.fake.set_steps(&health, "2026-11-25", 4321);
    w.fake.fail_next(FaultTarget::Api, Fault::Slow(Duration::from_millis(800)), 1);
    let before = w.env.publisher.events().len();
    let (status, body, _) = w
        .call("sync_now.json", Some(&walker), |e| {
            e.as_object_mut().unwrap().remove("body");
        })
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["connections"][0]["outcome"], "queued");
    assert!(body["message"].as_str().unwrap().contains("still syncing"));
    let queued: Vec<Event> = w.env.publisher.events()[before..].to_vec();
    assert_eq!(queued.len(), 1);
    functions::sync_worker::handle(&w.app, serde_json::to_value(&queued[0]).unwrap()).await.unwrap();
    let days = w.env.store.load_user_days(&walker, &[date("2026-11-25")]).await.unwrap().days;
    assert_eq!(days[&date("2026-11-25")].total.get(), 4321, "the worker finished the sync");
}

async fn status_diagnoses_each_way_a_connection_can_be_stuck(env: TestEnv) {
    let w = World::new(env, vec![]).await;
    let now = w.env.now();
    // A code as stored: the same snake_case text the status API shows.
    let error = |code: &str| {
        let code = serde_json::from_value(serde_json::Value::from(code)).expect("a failure code");
        Some(LastError { code, message: String::new() })
    };
    // (source, status, last error, last data, expected code, expected action)
    type Case<'a> = (Provider, ConnectionStatus, Option<LastError>, Option<Timestamp>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (Provider::GoogleHealth, ConnectionStatus::Active, None, Some(now), "healthy", "none"),
        (
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            error("reconnect_required"),
            Some(now),
            "token_revoked",
            "reconnect",
        ),
        (
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            error("missing_permission"),
            Some(now),
            "missing_permission",
            "grant_permission",
        ),
        (
            Provider::AppleHealth,
            ConnectionStatus::Active,
            None,
            Some(now - SignedDuration::from_hours(49)),
            "phone_silent",
            "grant_permission",
        ),
        (
            Provider::GoogleHealth,
            ConnectionStatus::Active,
            None,
            Some(now - SignedDuration::from_hours(25)),
            "no_new_data",
            "sync_device",
        ),
        (Provider::GoogleHealth, ConnectionStatus::Active, error("rate_limited"), Some(now), "rate_limited", "wait"),
        (
            Provider::Fitbit,
            ConnectionStatus::ReconnectRequired,
            error("legacy_retired"),
            Some(now),
            "legacy_retired",
            "reconnect",
        ),
    ];
    for (provider, status, last_error, last_data, code, action) in cases {
        let u = user();
        let connection = Connection {
            status,
            last_error,
            last_success_at: last_data,
            last_new_data_at: last_data,
            next_sync_at: Some(now + SignedDuration::from_mins(10)),
            ..Connection::new(u.clone(), provider, now - SignedDuration::from_hours(100))
        };
        w.env.store.save_connection(&connection, None).await.unwrap();
        let (http, body, _) = w.call("sync_status.json", Some(&u), |_| {}).await;
        assert_eq!(http, 200);
        let view = &body["connections"][0];
        assert_eq!(view["provider"], provider.as_str());
        assert_eq!(
            (view["diagnosis"]["code"].as_str().unwrap(), view["diagnosis"]["action"].as_str().unwrap()),
            (code, action),
            "{view}"
        );
        assert!(!view["diagnosis"]["message"].as_str().unwrap().is_empty());
        if action == "wait" {
            assert!(view["diagnosis"]["retry_at"].is_string(), "wait says when: {view}");
        }
    }
}

async fn steps_returns_the_callers_own_days_with_their_sources(env: TestEnv) {
    let w = World::new(env, vec![]).await;
    let walker = user();
    let utc = jiff::tz::TimeZone::UTC;
    let v = |d: &str, steps| DailyValue { date: date(d), steps, observed_at: None };
    w.env
        .engine
        .apply(&walker, Provider::AppleHealth, &utc, &[v("2026-11-20", 8000), v("2026-11-21", 500)])
        .await
        .unwrap();
    w.env
        .engine
        .apply(&walker, Provider::GoogleHealth, &utc, &[v("2026-11-20", 7600), v("2026-11-21", 900)])
        .await
        .unwrap();
    let (status, body, _) = w.call("steps.json", Some(&walker), |_| {}).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["days"],
        serde_json::json!([
            {"local_date": "2026-11-20", "steps": 8000, "source": "apple_health", "sources": {"google_health": 7600, "apple_health": 8000}},
            {"local_date": "2026-11-21", "steps": 900, "source": "google_health", "sources": {"google_health": 900, "apple_health": 500}},
        ])
    );
    let range = |from: &'static str, to: &'static str| {
        move |e: &mut serde_json::Value| {
            e["queryStringParameters"] = serde_json::json!({"from": from, "to": to});
            e["rawQueryString"] = format!("from={from}&to={to}").into();
        }
    };
    for (from, to, field) in
        [("2026-11-25", "2026-11-01", "to"), ("2026-01-01", "2026-11-01", "to"), ("yesterday", "2026-11-01", "from")]
    {
        let (status, body, _) = w.call("steps.json", Some(&walker), range(from, to)).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{from}..{to}: {body}");
    }
}

async fn one_persons_token_never_reaches_another_persons_data(env: TestEnv) {
    let w = World::new(env, vec![]).await;
    let (alice, mallory) = (user(), user());
    let health = w.connect(&alice, None).await;
    w.fake.set_steps(&health, "2026-11-24", 5555);
    w.env
        .engine
        .apply(
            &alice,
            Provider::AppleHealth,
            &jiff::tz::TimeZone::UTC,
            &[DailyValue { date: date("2026-11-20"), steps: 100, observed_at: None }],
        )
        .await
        .unwrap();

    let (status, body, _) = w
        .call("sync_now.json", Some(&mallory), |e| {
            e.as_object_mut().unwrap().remove("body");
        })
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["connections"], serde_json::json!([]), "Mallory has nothing to sync");
    assert_eq!(w.connection(&alice).await.last_attempt_at, None, "Alice's connection was not synced");
    let (_, body, _) = w.call("sync_status.json", Some(&mallory), |_| {}).await;
    assert_eq!(body["connections"], serde_json::json!([]));
    let (_, body, _) = w.call("steps.json", Some(&mallory), |_| {}).await;
    assert_eq!(body["days"], serde_json::json!([]));
    // The user is never taken from the request: a body or query naming Alice changes nothing.
    let (_, body, _) = w
        .call("steps.json", Some(&mallory), |e| {
            e["queryStringParameters"]["user"] = alice.as_str().into();
            e["body"] = serde_json::json!({"user": alice.as_str()}).to_string().into();
        })
        .await;
    assert_eq!(body["days"], serde_json::json!([]));
    let res =
        functions::oauth::handle(&w.app, request_from_sample("oauth_disconnect.json", Some(&mallory), |_| {})).await;
    assert_eq!(res.status(), 404, "Mallory has no connection to delete");
    assert_eq!(w.connection(&alice).await.status, ConnectionStatus::Active);
    for sample in ["sync_now.json", "sync_status.json", "steps.json"] {
        let (status, body, _) = w.call(sample, None, |_| {}).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{sample}");
    }
    for sample in ["oauth_authorize.json", "oauth_disconnect.json"] {
        let res = functions::oauth::handle(&w.app, request_from_sample(sample, None, |_| {})).await;
        assert_eq!(res.status(), 401, "{sample}");
    }
}

/// `DELETE /v1/people/{user}` through the real handler: someone else is refused (403) and
/// nothing is touched; the person erases themselves (the grant is revoked at Google, the
/// account freed, everything deleted); an administrator may erase anyone.
async fn a_person_is_erased_by_themselves_or_an_admin_and_their_grant_revoked(env: TestEnv) {
    let w = World::new(env, vec![]).await;
    let (alice, mallory, carol) = (
        UserId::parse(&unique("alice")).unwrap(),
        UserId::parse(&unique("mallory")).unwrap(),
        UserId::parse(&unique("carol")).unwrap(),
    );
    let account = w.connect(&alice, None).await;
    w.connect(&carol, None).await;
    let erase = |caller: &UserId, admin: bool, person: &UserId| {
        let person = person.to_string();
        let req = request_from_sample("oauth_disconnect.json", Some(caller), move |e| {
            let path = format!("/v1/people/{person}");
            e["rawPath"] = path.clone().into();
            e["requestContext"]["http"]["path"] = path.into();
            e["routeKey"] = "DELETE /v1/people/{user}".into();
            e["requestContext"]["routeKey"] = "DELETE /v1/people/{user}".into();
            e["pathParameters"] = serde_json::json!({"user": person});
            e["requestContext"]["authorizer"]["jwt"]["claims"]["admin"] = admin.to_string().into();
        });
        functions::oauth::handle(&w.app, req)
    };

    let refused = erase(&mallory, false, &alice).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(w.connection(&alice).await.status, ConnectionStatus::Active, "untouched");

    let res = erase(&alice, false, &alice).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = stepsync_local::harness::body_json(&res);
    assert_eq!(body["connections_disconnected"], 1, "{body}");
    assert_eq!(w.fake.calls("revoke"), 1, "the grant was given back to Google");
    assert!(w.env.store.get_connection(&alice, Provider::GoogleHealth).await.unwrap().is_none());
    assert_eq!(w.env.store.provider_account_owner(Provider::GoogleHealth, &account).await.unwrap(), None);

    let by_admin = erase(&mallory, true, &carol).await;
    assert_eq!(by_admin.status(), 200);
    assert!(w.env.store.get_connection(&carol, Provider::GoogleHealth).await.unwrap().is_none());
}
