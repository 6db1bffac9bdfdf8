//! The organizer's routes end to end (`GET /v1/challenges/{id}/sync-health`, `/export` and
//! `POST .../reminders`):
//! the real `challenges` handler fed the `events/challenges_*.json` samples, on dynoxide. Who
//! may ask, what is refused, what a challenge's people add up to, an export of 2,000 that is
//! the leaderboard exactly, and how many DynamoDB requests a sync health costs.

use crate::challenges_api::{Api, As, Reply, assert_error, assert_invalid, at_with_query};
use futures::StreamExt;
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use stepsync::domain::{
    Challenge, ChallengeId, Connection, ConnectionStatus, DailyValue, DueSlot, FailureCode, LastError, LocalDate,
    Participant, ParticipantTotals, Provider, SourceTotals, UserId, UserProfile,
};
use stepsync::ports::{ChallengeStore, ConnectionStore, JoinWrite};
use stepsync_local::harness::{Backend, TestEnv, date, unique};
use stepsync_local::on_dynoxide;
use stepsync_local::table::Stream;

on_dynoxide!(
    only_an_admin_reads_sync_health_or_exports,
    sync_health_sees_each_participant_as_their_own_status_does,
    send_reminders_now_reminds_who_must_act_once_a_period_and_digests_them_for_the_organizer,
    send_reminders_now_without_a_target_sends_nothing,
);

const WINTER: &str = r#"{"name": "Winter walk", "start_date": "2026-11-01", "end_date": "2026-11-30"}"#;

impl Api {
    async fn sync_health(&self, who: As<'_>, id: &str, query: &str) -> Reply {
        self.send("challenges_sync_health.json", who, at_with_query(id, query)).await
    }

    async fn export(&self, who: As<'_>, id: &str, query: &str) -> Response<Body> {
        self.answer("challenges_export.json", who, at_with_query(id, query)).await
    }

    async fn reminders(&self, who: As<'_>, id: &str) -> Reply {
        self.send("challenges_reminders.json", who, at_with_query(id, "")).await
    }

    /// The export's error answer, as JSON.
    async fn export_refusal(&self, who: As<'_>, id: &str, query: &str) -> Reply {
        self.send("challenges_export.json", who, at_with_query(id, query)).await
    }
}

fn header<'a>(res: &'a Response<Body>, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

fn text(res: &Response<Body>) -> &str {
    match res.body() {
        Body::Text(text) => text,
        other => panic!("a {} answer without a text body: {other:?}", res.status()),
    }
}

/// The next page's query, from a `Link: <...?limit=&cursor=>; rel="next"` header.
fn next_query(res: &Response<Body>) -> Option<String> {
    let link = header(res, "link")?;
    let target = link.strip_prefix('<')?.split_once(">; rel=\"next\"")?.0;
    Some(target.split_once('?')?.1.to_owned())
}

async fn only_an_admin_reads_sync_health_or_exports(env: TestEnv) {
    let api = Api::new(env);
    let walker = Api::person("walker");
    let id = api.create_ok(serde_json::from_str(WINTER).unwrap()).await;
    api.walk(&walker, "2026-11-21", 1_000).await;
    assert_eq!(api.join(As::User(&walker), &id).await.status, 200);
    let (me, admin) = (As::User(&walker), As::Admin(&api.admin));

    // Someone else gets create's 403, whether the challenge exists or not.
    for challenge in [id.as_str(), "no-such-challenge", "bad%23id"] {
        assert_error(&api.sync_health(me, challenge, "").await, 403, "forbidden");
        assert_error(&api.export_refusal(me, challenge, "").await, 403, "forbidden");
    }
    for unknown in ["no-such-challenge", "bad%23id"] {
        assert_error(&api.sync_health(admin, unknown, "").await, 404, "not_found");
        assert_error(&api.export_refusal(admin, unknown, "").await, 404, "not_found");
    }
    for query in ["limit=0", "limit=1001", "limit=ten", "limit=-1", "limit=2.5"] {
        assert_invalid(&api.sync_health(admin, &id, query).await, "limit");
    }
    for query in ["limit=0", "limit=10001", "limit=ten"] {
        assert_invalid(&api.export_refusal(admin, &id, query).await, "limit");
    }
    for query in ["cursor=!!", "cursor=bm9wZQ", "limit=3&cursor=MTIzOmEjYg"] {
        assert_invalid(&api.sync_health(admin, &id, query).await, "cursor");
        assert_invalid(&api.export_refusal(admin, &id, query).await, "cursor");
    }

    let health = api.sync_health(admin, &id, "").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!((&health.body["participants"], &health.body["by_code"]), (&json!(1), &json!({"no_source": 1})));
    for query in ["", "limit=", "limit=10000", "cursor="] {
        let export = api.export(admin, &id, query).await;
        assert_eq!(export.status(), 200, "{query}");
        assert_eq!(header(&export, "content-type"), Some("text/csv; charset=utf-8"));
        assert_eq!(header(&export, "cache-control"), Some("no-store"));
        let disposition = format!("attachment; filename=\"stepsync-{id}-as-of-2026-11-25.csv\"");
        assert_eq!(header(&export, "content-disposition"), Some(disposition.as_str()));
        assert_eq!(header(&export, "link"), None, "one page");
        assert_eq!(
            text(&export),
            format!("rank,user,total_steps,days_with_data,sources\r\n1,{walker},1000,1,apple_health\r\n")
        );
    }
}

fn at(rfc3339: &str) -> jiff::Timestamp {
    rfc3339.parse().unwrap()
}

/// A connection made on Nov 1 that brought new steps an hour before `NOW`.
fn on(user: &UserId, provider: Provider) -> Connection {
    Connection {
        last_success_at: Some(at("2026-11-25T17:00:00Z")),
        last_new_data_at: Some(at("2026-11-25T17:00:00Z")),
        ..Connection::new(user.clone(), provider, at("2026-11-01T00:00:00Z"))
    }
}

async fn sync_health_sees_each_participant_as_their_own_status_does(env: TestEnv) {
    let api = Api::new(env);
    let id = api.create_ok(serde_json::from_str(WINTER).unwrap()).await;
    let [fine, revoked, limited, silent, nobody] = ["fine", "revoked", "limited", "silent", "nobody"].map(Api::person);
    let store = api.env.store.clone();
    store.create_connection(&on(&fine, Provider::GoogleHealth)).await.unwrap();
    let failed = |code| Some(LastError { code, message: String::new() });
    store
        .create_connection(&Connection {
            status: ConnectionStatus::ReconnectRequired,
            last_error: failed(FailureCode::ReconnectRequired),
            last_attempt_at: Some(at("2026-11-20T08:00:00Z")),
            ..on(&revoked, Provider::Misfit)
        })
        .await
        .unwrap();
    store
        .create_connection(&Connection {
            last_error: failed(FailureCode::RateLimited),
            last_attempt_at: Some(at("2026-11-25T17:00:00Z")),
            next_sync_at: Some(at("2026-11-25T19:00:00Z")),
            ..on(&limited, Provider::Oura)
        })
        .await
        .unwrap();
    store
        .create_connection(&Connection {
            time_zone: Some("UTC".into()),
            last_success_at: Some(at("2026-11-21T09:00:00Z")),
            ..on(&silent, Provider::AppleHealth)
        })
        .await
        .unwrap();
    for person in [&fine, &revoked, &limited, &silent, &nobody] {
        assert_eq!(api.join(As::User(person), &id).await.status, 200);
    }
    api.walk(&fine, "2026-11-24", 5_000).await;
    api.walk(&fine, "2026-11-25", 2_000).await;
    api.walk(&silent, "2026-11-24", 3_000).await;

    let health = api.sync_health(As::Admin(&api.admin), &id, "").await;

    assert_eq!(health.status, 200, "{}", health.body);
    let entry = |user: &UserId, provider: Value, code: &str, action: &str, since: &str| json!({"user_id": user.as_str(), "provider": provider, "code": code, "action": action, "since": since});
    let needing = [
        entry(&revoked, json!("misfit"), "token_revoked", "reconnect", "2026-11-20T08:00:00Z"),
        entry(&silent, json!("apple_health"), "phone_silent", "grant_permission", "2026-11-21T09:00:00Z"),
        entry(&limited, json!("oura"), "rate_limited", "wait", "2026-11-25T17:00:00Z"),
        entry(&nobody, Value::Null, "no_source", "connect", "2026-11-25T18:00:00Z"),
    ];
    assert_eq!(
        health.body,
        json!({
            "challenge_id": id,
            "as_of": "2026-11-25T18:00:00Z",
            "participants": 5,
            "by_code": {"healthy": 1, "token_revoked": 1, "rate_limited": 1, "phone_silent": 1, "no_source": 1},
            "by_action": {"none": 1, "reconnect": 1, "wait": 1, "grant_permission": 1, "connect": 1},
            "with_data": {
                "yesterday": {"participants": 2, "share": 0.4},
                "today": {"participants": 1, "share": 0.2},
            },
            "needing_action_total": 4,
            "needing_action": needing,
            "next_cursor": null,
        })
    );

    // One at a time: each once, in order, the cursor handed back as it came.
    let mut seen = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let page = api.sync_health(As::Admin(&api.admin), &id, &query).await;
        assert_eq!(page.status, 200, "{}", page.body);
        seen.extend(page.body["needing_action"].as_array().unwrap().clone());
        match page.body["next_cursor"].as_str() {
            Some(next) => query = format!("limit=1&cursor={next}"),
            None => break,
        }
        assert!(seen.len() < 5, "too many pages");
    }
    assert_eq!(seen, needing);
}

/// Joins `count` people named `{base}-{i:05}` straight through the store's join (the
/// participant and the profile in one transaction), with `numbers(i)` as their numbers.
async fn joined(
    env: &TestEnv,
    id: &ChallengeId,
    base: &str,
    count: usize,
    numbers: impl Fn(usize) -> (SourceTotals, BTreeMap<LocalDate, u64>) + Sync,
) -> Vec<UserId> {
    let challenge: Challenge = env.store.get_challenge(id).await.unwrap().unwrap();
    let numbers = &numbers;
    let challenge = &challenge;
    futures::stream::iter(0..count)
        .map(|i| async move {
            let user = UserId::parse(&format!("{base}-{i:05}")).unwrap();
            let (sources, counted) = numbers(i);
            let participant = Participant {
                challenge: challenge.id.clone(),
                user: user.clone(),
                sources,
                joined_at: env.now(),
                sealed: false,
                counted,
                rev: 0,
            };
            let profile = UserProfile {
                memberships: [(challenge.id.clone(), challenge.membership())].into(),
                rev: 1,
                ..UserProfile::default()
            };
            env.store.commit_join(&JoinWrite { participant, profile, expected_rev: 0 }).await.unwrap();
            user
        })
        .buffered(16)
        .collect()
        .await
}

fn source(provider: Provider, total: u64, days: u32) -> (Provider, ParticipantTotals) {
    (provider, ParticipantTotals { total, days })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_of_two_thousand_is_complete_and_ranked_exactly_as_the_leaderboard() {
    // No change stream: nothing here reads one, and dynoxide writes faster without.
    let api = Api::new(TestEnv::new_with(Backend::Dynoxide, Stream::Off).await);
    let id = api.create_ok(serde_json::from_str(WINTER).unwrap()).await;
    let challenge = ChallengeId::parse(&id).unwrap();
    // Totals from 100 to 30,000 in steps of 100: many ties. Every third also has Oura, smaller; every
    // seventh has nothing yet.
    let numbers = |i: usize| {
        let total = (i * 7919 % 300 + 1) as u64 * 100;
        let mut sources = Vec::new();
        if !i.is_multiple_of(7) {
            sources.push(source(Provider::GoogleHealth, total, (i % 20) as u32 + 1));
            if i.is_multiple_of(3) {
                sources.push(source(Provider::Oura, total / 2, 3));
            }
        }
        (SourceTotals(sources.into_iter().collect()), BTreeMap::new())
    };
    let people = joined(&api.env, &challenge, &unique("x"), 2_000, numbers).await;
    let admin = As::Admin(&api.admin);

    let export = api.export(admin, &id, "").await;
    assert_eq!(export.status(), 200);
    assert_eq!(next_query(&export), None, "2,000 rows are one page");
    let csv = text(&export).to_owned();
    let mut lines = csv.split_terminator("\r\n");
    assert_eq!(lines.next(), Some("rank,user,total_steps,days_with_data,sources"));
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_owned).collect()).collect();
    assert_eq!(rows.len(), 2_000);
    assert!(rows.iter().all(|r| r.len() == 5), "five fields on every row");
    let users: BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(users, people.iter().map(UserId::as_str).collect(), "everyone, each once");

    // The leaderboard's pages, read as someone who is in it.
    let mut board = Vec::new();
    let mut query = "limit=200".to_owned();
    loop {
        let page = api.leaderboard(As::User(&people[1]), &id, &query).await;
        assert_eq!(page.status, 200, "{}", page.body);
        board.extend(page.body["entries"].as_array().unwrap().clone());
        match page.body["next_page_token"].as_str() {
            Some(next) => query = format!("limit=200&page_token={next}"),
            None => break,
        }
    }
    let ranked: Vec<Value> = rows
        .iter()
        .map(|r| json!({"rank": r[0].parse::<u32>().unwrap(), "user_id": r[1], "steps": r[2].parse::<u64>().unwrap()}))
        .collect();
    assert_eq!(ranked, board, "ranks, users and totals exactly as the leaderboard's");
    assert!(rows.iter().filter(|r| r[0] == "1").count() > 1, "ties share a rank");
    for row in &rows {
        let i: usize = row[1].rsplit('-').next().unwrap().parse().unwrap();
        let (sources, _) = numbers(i);
        assert_eq!(row[3], sources.best().days.to_string(), "{row:?}");
        let listed: Vec<&str> = sources.0.keys().map(|p| p.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
        assert_eq!(row[4], listed.join(";"), "{row:?}");
    }

    // In pages of 700, followed by their Link headers: the same rows, header on each page.
    let mut paged = Vec::new();
    let mut query = "limit=700".to_owned();
    let mut pages = 0;
    loop {
        let page = api.export(admin, &id, &query).await;
        assert_eq!(page.status(), 200);
        pages += 1;
        let body = text(&page);
        assert!(body.starts_with("rank,user,total_steps,days_with_data,sources\r\n"));
        paged.extend(body.split_terminator("\r\n").skip(1).map(str::to_owned));
        match next_query(&page) {
            Some(next) => query = next,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, csv.split_terminator("\r\n").skip(1).map(str::to_owned).collect::<Vec<_>>());
}

/// How many DynamoDB requests one sync health of a challenge costs: its participants (one
/// `Query`, a page per MB), their items by key (`BatchGetItem`s of 100 keys: 25 per 100
/// people), the challenge, and the few sweep cursors and subscription states every diagnosis
/// shares. Never a scan. `STEPSYNC_SYNC_HEALTH_PEOPLE` sets the size (300 by default;
/// docs/OPERATIONS.md gives the count at 10,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_health_reads_grow_with_the_challenge_only() {
    let people: usize = std::env::var("STEPSYNC_SYNC_HEALTH_PEOPLE").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let env = TestEnv::new_with(Backend::Dynoxide, Stream::Off).await;
    let api = Api::new(env);
    let id = api.create_ok(serde_json::from_str(WINTER).unwrap()).await;
    let challenge = ChallengeId::parse(&id).unwrap();
    // Mid-challenge participants: 24 counted days, one or two sources.
    let counted: BTreeMap<LocalDate, u64> = (1..=24).map(|d| (date(&format!("2026-11-{d:02}")), 1)).collect();
    let numbers = |i: usize| {
        let mut sources = vec![source(Provider::GoogleHealth, 150_000 + i as u64, 24)];
        if i.is_multiple_of(4) {
            sources.push(source(Provider::AppleHealth, 140_000, 24));
        }
        (SourceTotals(sources.into_iter().collect()), counted.clone())
    };
    let base = unique("p");
    let users = joined(&api.env, &challenge, &base, people, numbers).await;
    let env = &api.env;
    // Most settled in a slot of the sweep (8 shards), some backing off, some to reconnect,
    // some on Oura (its app-level subscriptions), one in ten without a source; days for
    // yesterday and today.
    let now = env.now();
    futures::stream::iter(users.iter().enumerate())
        .map(|(i, user)| async move {
            let mut connection = Connection::new(user.clone(), Provider::GoogleHealth, at("2026-11-01T00:00:00Z"));
            connection.last_success_at = Some(at("2026-11-02T00:00:00Z"));
            match i % 10 {
                0..=5 => connection.slot = Some(DueSlot { shard: (i % 8) as u16, cycle: 24, phase: (i % 24) as u32 }),
                6 => connection.next_sync_at = Some(at("2026-11-25T18:15:00Z")),
                7 => connection.provider = Provider::Oura,
                8 => {
                    connection.status = ConnectionStatus::ReconnectRequired;
                    connection.last_error =
                        Some(LastError { code: FailureCode::ReconnectRequired, message: String::new() });
                }
                _ => return,
            }
            env.store.create_connection(&connection).await.unwrap();
            let days = [("2026-11-24", 6_000), ("2026-11-25", 2_500)].map(|(day, steps)| DailyValue {
                date: date(day),
                steps,
                observed_at: Some(now),
            });
            env.engine.apply(user, connection.provider, &jiff::tz::TimeZone::UTC, &days).await.unwrap();
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    env.counter.reset();

    let started = std::time::Instant::now();
    let health = api.sync_health(As::Admin(&api.admin), &id, "limit=1000").await;
    let took = started.elapsed();

    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["participants"], people);
    let counts = env.counter.snapshot();
    eprintln!("sync health of {people} participants: {counts:?}, {} requests in {took:?}", env.counter.total());
    let (full, rest) = (people / 100, people % 100);
    let batches = full * 25 + (9 * rest).div_ceil(100) + (16 * rest).div_ceil(100);
    assert_eq!(env.counter.count("BatchGetItem"), batches as u64, "25 per 100 people");
    // The challenge, the 8 shards' sweep cursors, Oura's subscription states.
    assert_eq!(env.counter.count("GetItem"), 1 + 8 + 1);
    assert!(env.counter.count("Query") >= 1, "the participants");
    assert_eq!(env.counter.count("Scan"), 0);
    assert_eq!(env.counter.writes(), 0, "reading writes nothing");
    let known: u64 = ["BatchGetItem", "GetItem", "Query"].iter().map(|op| env.counter.count(op)).sum();
    assert_eq!(env.counter.total(), known, "nothing else: {counts:?}");
}

/// A challenge with a revoked grant, a silent phone, a source that is only rate limited, a
/// person with no source and a healthy one; `api`'s reminders on or off.
async fn a_challenge_with_people_to_remind(api: &Api) -> (String, [UserId; 5]) {
    let id = api.create_ok(serde_json::from_str(WINTER).unwrap()).await;
    let people = ["fine", "revoked", "limited", "silent", "nobody"].map(Api::person);
    let [fine, revoked, limited, silent, _nobody] = &people;
    let store = api.env.store.clone();
    store.create_connection(&on(fine, Provider::GoogleHealth)).await.unwrap();
    let failed = |code| Some(LastError { code, message: String::new() });
    let revoked_connection = Connection {
        status: ConnectionStatus::ReconnectRequired,
        last_error: failed(FailureCode::ReconnectRequired),
        last_attempt_at: Some(at("2026-11-20T08:00:00Z")),
        ..on(revoked, Provider::Misfit)
    };
    store.create_connection(&revoked_connection).await.unwrap();
    let limited_connection = Connection {
        last_error: failed(FailureCode::RateLimited),
        last_attempt_at: Some(at("2026-11-25T17:00:00Z")),
        next_sync_at: Some(at("2026-11-25T19:00:00Z")),
        ..on(limited, Provider::Oura)
    };
    store.create_connection(&limited_connection).await.unwrap();
    let silent_connection = Connection {
        time_zone: Some("UTC".into()),
        last_success_at: Some(at("2026-11-21T09:00:00Z")),
        ..on(silent, Provider::AppleHealth)
    };
    store.create_connection(&silent_connection).await.unwrap();
    for person in &people {
        assert_eq!(api.join(As::User(person), &id).await.status, 200);
    }
    (id, people)
}

fn reminders_and_digests(api: &Api) -> (Vec<stepsync::events::ReminderDue>, Vec<stepsync::events::DigestDue>) {
    let (mut reminders, mut digests) = (Vec::new(), Vec::new());
    for event in api.env.publisher.events() {
        match event {
            stepsync::events::Event::ReminderDue(r) => reminders.push(r),
            stepsync::events::Event::DigestDue(d) => digests.push(d),
            _ => {}
        }
    }
    (reminders, digests)
}

async fn send_reminders_now_reminds_who_must_act_once_a_period_and_digests_them_for_the_organizer(env: TestEnv) {
    let api = Api::with_vars(env, &[("STEPSYNC_NUDGES", "true"), ("STEPSYNC_NUDGE_PERIOD_HOURS", "24")]);
    let (id, [_fine, revoked, _limited, silent, nobody]) = a_challenge_with_people_to_remind(&api).await;

    // Only an administrator, and only of a challenge that exists.
    assert_error(&api.reminders(As::User(&revoked), &id).await, 403, "forbidden");
    assert_error(&api.reminders(As::Nobody, &id).await, 401, "unauthenticated");
    assert_error(&api.reminders(As::Admin(&api.admin), "no-such-challenge").await, 404, "not_found");
    assert!(reminders_and_digests(&api).0.is_empty(), "nothing sent for a refused call");

    let first = api.reminders(As::Admin(&api.admin), &id).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.body,
        json!({
            "challenge_id": id, "needing_action": 4, "without_source": 1,
            "sent": 2, "already_sent": 0, "not_needed": 1, "off": false,
            "digest": {"result": "sent", "people": 3, "total": 3},
        })
    );
    let (reminders, digests) = reminders_and_digests(&api);
    let mut reminded: Vec<(String, Provider, String)> =
        reminders.iter().map(|r| (r.user.to_string(), r.provider, r.code.to_string())).collect();
    reminded.sort();
    let mut expected = vec![
        (revoked.to_string(), Provider::Misfit, "token_revoked".to_owned()),
        (silent.to_string(), Provider::AppleHealth, "phone_silent".to_owned()),
    ];
    expected.sort();
    assert_eq!(reminded, expected);
    assert!(reminders.iter().all(|r| r.challenge.as_ref().is_some_and(|c| c.name == "Winter walk")));
    let [digest] = digests.as_slice() else { panic!("one digest: {digests:?}") };
    let named: BTreeSet<String> = digest.people.iter().map(|l| l.user.to_string()).collect();
    assert_eq!(named, [revoked.to_string(), silent.to_string(), nobody.to_string()].into());
    assert!(digest.text.contains("3 people still need to act"), "{}", digest.text);

    // Pressed again within the period: nothing more goes out.
    let again = api.reminders(As::Admin(&api.admin), &id).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!((again.body["sent"].as_u64(), again.body["already_sent"].as_u64()), (Some(0), Some(2)));
    assert_eq!(again.body["digest"]["result"], "already_sent");
    assert_eq!(reminders_and_digests(&api).0.len(), 2);

    // A day on, once more (and the rate-limited source, a day without a sync, now asks its
    // person to act too).
    api.env.clock.advance(std::time::Duration::from_secs(24 * 3600));
    let next = api.reminders(As::Admin(&api.admin), &id).await;
    assert_eq!(next.body["digest"]["result"], "sent", "{}", next.body);
    let (reminders, _) = reminders_and_digests(&api);
    let again: BTreeSet<String> = reminders[2..].iter().map(|r| r.user.to_string()).collect();
    assert!(again.contains(revoked.as_str()) && again.contains(silent.as_str()), "{again:?}");
    assert_eq!(next.body["sent"].as_u64(), Some(again.len() as u64));
}

async fn send_reminders_now_without_a_target_sends_nothing(env: TestEnv) {
    let api = Api::new(env);
    let (id, _) = a_challenge_with_people_to_remind(&api).await;
    let answer = api.reminders(As::Admin(&api.admin), &id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["off"], true);
    assert_eq!((answer.body["sent"].as_u64(), answer.body["digest"]["result"].as_str()), (Some(0), Some("off")));
    assert!(api.env.publisher.events().is_empty(), "{:?}", api.env.publisher.events());
    assert_error(&api.reminders(As::User(&Api::person("someone")), &id).await, 403, "forbidden");
}
