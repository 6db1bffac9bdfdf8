//! The sync engine through the real DynamoDB adapter, on both local implementations: exact
//! totals under concurrency, order-independence, zero writes for unchanged days, challenge
//! windows and states, joins racing day writes.

use futures::future::join_all;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use stepsync::domain::{
    ChallengeId, Connection, ConnectionStatus, DailyValue, LocalDate, MAX_OPEN_CHALLENGES, ParticipantTotals, Provider,
    UserId,
};
use stepsync::engine::SyncOutcome;
use stepsync::events::Event;
use stepsync::ports::{ChallengeStore, ConnectionStore, StepStore, StoreError};
use stepsync::services::{ChallengeError, Reconcile};
use stepsync_local::harness::{Backend, TestEnv, date, unique};
use stepsync_local::on_both_backends;

on_both_backends!(
    fifty_concurrent_merges_from_two_sources_end_exact,
    reapplying_the_same_values_sends_zero_writes,
    a_day_moves_exactly_the_challenges_whose_window_covers_it,
    a_final_challenge_never_changes,
    joining_after_data_exists_starts_at_the_right_total,
    a_join_racing_day_writes_ends_exact,
    leaving_stops_the_totals_and_keeps_the_days,
    a_legacy_fitbit_sync_asks_to_reconnect_through_google,
    a_person_in_the_most_open_challenges_still_syncs_and_no_write_outgrows_a_transaction,
    a_day_a_pull_no_longer_returns_loses_the_sources_value_and_the_totals_follow,
    two_installs_of_one_platform_are_kept_apart_through_the_store,
    two_phones_uploading_at_the_same_moment_end_at_the_larger_latest_reading,
    a_walk_two_sources_put_on_different_dates_counts_once_through_the_store,
    every_committed_day_change_is_one_event_with_its_version_from_the_stream,
    the_reconcile_repairs_drift_and_seals_closed_challenges_through_the_store,
);

const SOURCES: [Provider; 2] = [Provider::AppleHealth, Provider::GoogleHealth];

fn user() -> UserId {
    UserId::parse(&unique("walker")).unwrap()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + secs).unwrap()
}

fn value(day: &str, steps: i64, observed: Option<i64>) -> DailyValue {
    DailyValue { date: date(day), steps, observed_at: observed.map(at) }
}

async fn participant_totals(env: &TestEnv, challenge: &ChallengeId, user: &UserId) -> Option<ParticipantTotals> {
    env.settle().await;
    env.store.participant(challenge, user).await.unwrap().map(|p| p.totals())
}

/// The participant's stored numbers, per source, equal what the day records say, once the
/// change stream's records are handled (the counts the writers left to it).
async fn assert_exact(env: &TestEnv, challenge: &ChallengeId, user: &UserId) -> ParticipantTotals {
    env.settle().await;
    let stored = env.store.participant(challenge, user).await.unwrap().expect("a participant");
    let recomputed = env.challenges().recompute(challenge, user).await.unwrap();
    assert_eq!(stored.sources, recomputed, "{:?}: stored totals differ from recompute", env.backend);
    stored.totals()
}

async fn fifty_concurrent_merges_from_two_sources_end_exact(env: TestEnv) {
    let walker = user();
    let month = env.challenge("2026-11-01", "2026-11-30").await;
    let one_day = env.challenge("2026-11-24", "2026-11-24").await;
    for c in [&month, &one_day] {
        env.challenges().join(c, &walker, env.now()).await.unwrap();
    }
    // Seeded, and the seed printed (shown when the test fails), so a failing order reproduces:
    // STEPSYNC_TEST_SEED=<seed> cargo test -p stepsync-tests fifty_concurrent_merges
    let seed = std::env::var("STEPSYNC_TEST_SEED")
        .map(|s| s.parse().expect("STEPSYNC_TEST_SEED is a u64"))
        .unwrap_or_else(|_| rand::random());
    println!("fifty_concurrent_merges_from_two_sources_end_exact on {:?}: STEPSYNC_TEST_SEED={seed}", env.backend);
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<(Provider, DailyValue)> = (0..50)
        .map(|i| {
            // Distinct provider times: the latest per source must win whatever the arrival order.
            let observed = i64::from(rng.random_range(0..1000u32)) * 100 + i;
            (SOURCES[i as usize % 2], value("2026-11-24", rng.random_range(0..30_000), Some(observed)))
        })
        .collect();
    let utc = TimeZone::UTC;
    let merges = values.iter().map(|(source, v)| env.engine.apply(&walker, *source, &utc, std::slice::from_ref(v)));
    for result in join_all(merges).await {
        result.expect("every merge lands, after re-reads if it lost a race");
    }

    let latest = |source: Provider| {
        values
            .iter()
            .filter(|(s, _)| *s == source)
            .max_by_key(|(_, v)| v.observed_at)
            .map(|(_, v)| v.steps as u32)
            .unwrap()
    };
    let expected = latest(Provider::AppleHealth).max(latest(Provider::GoogleHealth));
    let day = env.store.load_user_days(&walker, &[date("2026-11-24")]).await.unwrap().days[&date("2026-11-24")].clone();
    assert_eq!(day.sources[&Provider::AppleHealth].steps.get(), latest(Provider::AppleHealth));
    assert_eq!(day.sources[&Provider::GoogleHealth].steps.get(), latest(Provider::GoogleHealth));
    assert_eq!(day.total.get(), expected, "the resolved total is the larger source, never a sum");
    for c in [&month, &one_day] {
        assert_eq!(assert_exact(&env, c, &walker).await.total, u64::from(expected));
    }
}

async fn reapplying_the_same_values_sends_zero_writes(env: TestEnv) {
    let walker = user();
    let c = env.challenge("2026-11-01", "2026-11-30").await;
    env.challenges().join(&c, &walker, env.now()).await.unwrap();
    let week = [value("2026-11-22", 8000, None), value("2026-11-23", 0, None), value("2026-11-24", 12_345, None)];
    env.engine.apply(&walker, Provider::GoogleHealth, &TimeZone::UTC, &week).await.unwrap();

    env.counter.reset();
    let report = env.engine.apply(&walker, Provider::GoogleHealth, &TimeZone::UTC, &week).await.unwrap();
    assert_eq!(report.unchanged, 3);
    assert!(report.changed.is_empty());
    assert_eq!(env.counter.writes(), 0, "requests: {:?}", env.counter.snapshot());
    assert_eq!(env.counter.total(), 1, "one read for the whole window: {:?}", env.counter.snapshot());

    env.counter.reset();
    env.engine
        .apply(&walker, Provider::GoogleHealth, &TimeZone::UTC, &[value("2026-11-24", 12_400, None)])
        .await
        .unwrap();
    let expected: std::collections::BTreeMap<String, u64> =
        [("Query".into(), 1), ("PutItem".into(), 1), ("UpdateItem".into(), 1)].into();
    assert_eq!(env.counter.snapshot(), expected, "one read, the day's put, its count into the one challenge");
    assert_eq!(assert_exact(&env, &c, &walker).await.total, 8000 + 12_400);
    env.counter.reset();
    env.settle().await;
    assert_eq!(env.counter.total(), 0, "the stream's requests are not the writer's");
}

async fn a_day_moves_exactly_the_challenges_whose_window_covers_it(env: TestEnv) {
    let walker = user();
    let early = env.challenge("2026-11-20", "2026-11-22").await;
    let late = env.challenge("2026-11-22", "2026-11-25").await;
    for c in [&early, &late] {
        env.challenges().join(c, &walker, env.now()).await.unwrap();
    }
    let apply = |day: &'static str, steps| {
        let walker = walker.clone();
        let env = &env;
        async move { env.engine.apply(&walker, Provider::Misfit, &TimeZone::UTC, &[value(day, steps, None)]).await.unwrap() }
    };
    apply("2026-11-19", 5000).await;
    assert_eq!(participant_totals(&env, &early, &walker).await.unwrap().total, 0, "outside every window");
    assert_eq!(participant_totals(&env, &late, &walker).await.unwrap().total, 0);
    apply("2026-11-22", 700).await;
    assert_eq!(participant_totals(&env, &early, &walker).await.unwrap(), ParticipantTotals { total: 700, days: 1 });
    assert_eq!(participant_totals(&env, &late, &walker).await.unwrap(), ParticipantTotals { total: 700, days: 1 });
    apply("2026-11-24", 300).await;
    assert_eq!(participant_totals(&env, &early, &walker).await.unwrap().total, 700);
    assert_eq!(participant_totals(&env, &late, &walker).await.unwrap().total, 1000);
    apply("2026-11-22", 0).await;
    assert_eq!(participant_totals(&env, &early, &walker).await.unwrap(), ParticipantTotals { total: 0, days: 0 });
    for c in [&early, &late] {
        assert_exact(&env, c, &walker).await;
    }
}

async fn a_final_challenge_never_changes(env: TestEnv) {
    let walker = user();
    // Final from 11-13 12:00 UTC: two days of grace after 11-10 is over everywhere.
    let finished = env.challenge_with("2026-11-01", "2026-11-10", 2).await;
    let month = env.challenge("2026-11-01", "2026-11-30").await;
    env.clock.set("2026-11-05T12:00:00Z".parse().unwrap());
    for c in [&finished, &month] {
        env.challenges().join(c, &walker, env.now()).await.unwrap();
    }
    env.engine
        .apply(&walker, Provider::GoogleHealth, &TimeZone::UTC, &[value("2026-11-05", 4000, None)])
        .await
        .unwrap();

    env.clock.set("2026-11-12T12:00:00Z".parse().unwrap()); // grace: late uploads still count
    env.engine
        .apply(&walker, Provider::GoogleHealth, &TimeZone::UTC, &[value("2026-11-05", 4500, None)])
        .await
        .unwrap();
    assert_eq!(participant_totals(&env, &finished, &walker).await.unwrap().total, 4500);

    env.clock.set("2026-11-13T12:00:00Z".parse().unwrap()); // final
    let report = env
        .engine
        .apply(&walker, Provider::GoogleHealth, &TimeZone::UTC, &[value("2026-11-05", 9000, None)])
        .await
        .unwrap();
    assert_eq!(report.changed.len(), 1, "the day itself still records the correction");
    assert_eq!(participant_totals(&env, &finished, &walker).await.unwrap().total, 4500, "final: frozen");
    assert_eq!(participant_totals(&env, &month, &walker).await.unwrap().total, 9000);
    // The late write sealed the finished challenge first: its snapshot holds the day at close.
    let snapshot = env.store.snapshot(&finished, &walker).await.unwrap().expect("sealed by the late write");
    assert_eq!(snapshot.days[&date("2026-11-05")][&Provider::GoogleHealth], 4500, "{:?}", env.backend);
    let reconcile = Reconcile { steps: env.store.as_ref(), store: env.store.as_ref() };
    assert_eq!(reconcile.check_closed(&finished).await.unwrap(), []);
    let report = reconcile.run(env.now()).await.unwrap();
    assert_eq!((report.sealed, report.repaired, report.repaired_at_seal), (0, 0, 0), "{report:?}");
    assert!(env.store.participant(&finished, &walker).await.unwrap().unwrap().sealed);
    assert!(env.challenges().join(&finished, &user(), env.now()).await.is_err(), "a final challenge takes no one");
}

async fn joining_after_data_exists_starts_at_the_right_total(env: TestEnv) {
    let walker = user();
    let values = [value("2026-11-19", 900, None), value("2026-11-21", 500, None), value("2026-11-22", 700, None)];
    env.engine.apply(&walker, Provider::AppleHealth, &TimeZone::UTC, &values).await.unwrap();
    env.engine.apply(&walker, Provider::GoogleHealth, &TimeZone::UTC, &[value("2026-11-22", 650, None)]).await.unwrap();
    let c = env.challenge("2026-11-20", "2026-11-25").await;
    let joined = env.challenges().join(&c, &walker, env.now()).await.unwrap();
    assert_eq!(joined.totals(), ParticipantTotals { total: 1200, days: 2 });
    let again = env.challenges().join(&c, &walker, env.now()).await.unwrap();
    assert_eq!(again.totals(), joined.totals(), "joining twice is a no-op");
    assert_exact(&env, &c, &walker).await;
}

async fn a_join_racing_day_writes_ends_exact(env: TestEnv) {
    let c = env.challenge("2026-11-01", "2026-11-30").await;
    for _ in 0..4 {
        let walker = user();
        env.engine
            .apply(&walker, Provider::AppleHealth, &TimeZone::UTC, &[value("2026-11-02", 1000, None)])
            .await
            .unwrap();
        let writes = (0..12).map(|i| {
            let walker = walker.clone();
            let env = &env;
            async move {
                let day = format!("2026-11-{:02}", 1 + i % 6);
                let v = DailyValue { date: date(&day), steps: 100 * i64::from(i + 1), observed_at: None };
                env.engine.apply(&walker, SOURCES[i as usize % 2], &TimeZone::UTC, &[v]).await.unwrap();
            }
        });
        let challenges = env.challenges();
        let (joined, _) = tokio::join!(challenges.join(&c, &walker, env.now()), join_all(writes));
        joined.unwrap();
        assert_exact(&env, &c, &walker).await;
    }
}

async fn leaving_stops_the_totals_and_keeps_the_days(env: TestEnv) {
    let walker = user();
    let c = env.challenge("2026-11-01", "2026-11-30").await;
    env.challenges().join(&c, &walker, env.now()).await.unwrap();
    env.engine.apply(&walker, Provider::Misfit, &TimeZone::UTC, &[value("2026-11-03", 3000, None)]).await.unwrap();
    env.challenges().leave(&c, &walker, env.now()).await.unwrap();
    assert!(env.store.participant(&c, &walker).await.unwrap().is_none());
    env.engine.apply(&walker, Provider::Misfit, &TimeZone::UTC, &[value("2026-11-04", 2000, None)]).await.unwrap();
    assert!(env.store.participant(&c, &walker).await.unwrap().is_none(), "a day write never resurrects a participant");
    let days = env.store.load_user_days(&walker, &[date("2026-11-03"), date("2026-11-04")]).await.unwrap().days;
    assert_eq!(days.len(), 2, "history stays");
    let back = env.challenges().join(&c, &walker, env.now()).await.unwrap();
    assert_eq!(back.totals().total, 5000, "rejoining starts from the days");
}

async fn a_legacy_fitbit_sync_asks_to_reconnect_through_google(env: TestEnv) {
    let walker = user();
    env.store.create_connection(&Connection::new(walker.clone(), Provider::Fitbit, env.now())).await.unwrap();
    let connection = env.store.get_connection(&walker, Provider::Fitbit).await.unwrap().unwrap();
    let outcome =
        env.engine.sync_connection(&connection, &TimeZone::UTC, date("2026-11-19"), date("2026-11-25")).await.unwrap();
    let SyncOutcome::Failed { error, status, .. } = outcome else { panic!("expected a failure, got {outcome:?}") };
    assert_eq!(status, ConnectionStatus::ReconnectRequired);
    assert!(error.message.contains("through Google"), "{}", error.message);
    let stored = env.store.get_connection(&walker, Provider::Fitbit).await.unwrap().unwrap();
    assert_eq!(stored.status, ConnectionStatus::ReconnectRequired);
    assert_eq!(stored.last_error.unwrap().code, stepsync::domain::FailureCode::LegacyRetired);
    let changed: Vec<_> = env
        .publisher
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ConnectionStatusChanged(c) if c.user == walker => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].new_status, ConnectionStatus::ReconnectRequired);
    let again = env
        .engine
        .sync_connection(
            &stored_connection(&env, &walker).await,
            &TimeZone::UTC,
            date("2026-11-19"),
            date("2026-11-25"),
        )
        .await;
    assert_eq!(again.unwrap(), SyncOutcome::Skipped(ConnectionStatus::ReconnectRequired));
}

async fn stored_connection(env: &TestEnv, walker: &UserId) -> Connection {
    env.store.get_connection(walker, Provider::Fitbit).await.unwrap().unwrap()
}

// Property: any shuffled, duplicated sequence of per-source daily values gives the same day
// records and participant totals as applying only the latest value per (source, date).

type Raw = (usize, i32, i64, i64); // (source, day offset from 2026-11-20, steps, provider time)

fn sequences() -> impl Strategy<Value = (Vec<Raw>, Vec<Raw>)> {
    prop::collection::vec((0usize..2, 0i32..4, 0i64..20_000, 0i64..40), 1..10)
        .prop_flat_map(|base| {
            let dups = prop::collection::vec(any::<prop::sample::Index>(), 0..10);
            (Just(base), dups)
        })
        .prop_flat_map(|(base, dups)| {
            let mut sequence = base.clone();
            sequence.extend(dups.iter().map(|i| base[i.index(base.len())]));
            (Just(base), Just(sequence).prop_shuffle())
        })
}

fn to_value(raw: &Raw) -> (Provider, DailyValue) {
    let (source, offset, steps, observed) = *raw;
    let day = LocalDate::parse("2026-11-20").unwrap().add_days(offset);
    (SOURCES[source], DailyValue { date: day, steps, observed_at: Some(at(observed)) })
}

fn order_independence(backend: Backend, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let env = runtime.block_on(TestEnv::new(backend));
    let challenge = runtime.block_on(env.challenge("2026-11-21", "2026-11-23"));
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |((base, shuffled) in sequences())| {
        runtime.block_on(async {
            let (replayed, latest_only) = (user(), user());
            for u in [&replayed, &latest_only] {
                env.challenges().join(&challenge, u, env.now()).await.unwrap();
            }
            let mut latest: BTreeMap<(Provider, LocalDate), DailyValue> = BTreeMap::new();
            for raw in &base {
                let (source, v) = to_value(raw);
                let newer = latest
                    .get(&(source, v.date))
                    .is_none_or(|cur| (v.observed_at, v.steps) > (cur.observed_at, cur.steps));
                if newer {
                    latest.insert((source, v.date), v);
                }
            }
            // The two people are independent: their writes go side by side (the store is the
            // slow part), each person's own values in their order.
            let replay = async {
                for raw in &shuffled {
                    let (source, v) = to_value(raw);
                    env.engine.apply(&replayed, source, &TimeZone::UTC, &[v]).await.unwrap();
                }
            };
            let latest_values = async {
                for ((source, _), v) in &latest {
                    env.engine.apply(&latest_only, *source, &TimeZone::UTC, std::slice::from_ref(v)).await.unwrap();
                }
            };
            tokio::join!(replay, latest_values);
            let dates: Vec<LocalDate> = (0..4).map(|d| LocalDate::parse("2026-11-20").unwrap().add_days(d)).collect();
            let a = env.store.load_user_days(&replayed, &dates).await.unwrap().days;
            let b = env.store.load_user_days(&latest_only, &dates).await.unwrap().days;
            assert_eq!(a.len(), b.len());
            for (day, record) in &a {
                assert_eq!(record.sources, b[day].sources, "sources on {day}");
                assert_eq!(record.total, b[day].total, "total on {day}");
            }
            let ta = assert_exact(&env, &challenge, &replayed).await;
            let tb = assert_exact(&env, &challenge, &latest_only).await;
            assert_eq!(ta, tb);
        });
    });
}

#[test]
fn shuffled_duplicated_values_give_the_latest_only_result_on_dynoxide() {
    order_independence(Backend::Dynoxide, 24);
}

#[test]
/// Fewer cases on moto: the property is the engine's (24 cases above); here it checks the
/// adapter's conditional writes on the second implementation, and moto, one Python process
/// every moto test shares, is the slowest part of the suite.
fn shuffled_duplicated_values_give_the_latest_only_result_on_moto() {
    order_independence(Backend::Moto, 8);
}

/// Every covering open challenge moves in the day's one transaction, and DynamoDB takes at
/// most 100 items: a person joins at most `MAX_OPEN_CHALLENGES` open ones (the next join is
/// refused, a left one frees a place), a day inside all of them commits, and a write that
/// would outgrow a transaction is refused as such, never retried as if the store were busy.
async fn a_person_in_the_most_open_challenges_still_syncs_and_no_write_outgrows_a_transaction(env: TestEnv) {
    let walker = user();
    let mut joined = Vec::new();
    for _ in 0..MAX_OPEN_CHALLENGES {
        let id = env.challenge("2026-11-01", "2026-11-30").await;
        env.challenges().join(&id, &walker, env.now()).await.unwrap();
        joined.push(id);
    }
    let one_more = env.challenge("2026-11-01", "2026-11-30").await;
    let refused = env.challenges().join(&one_more, &walker, env.now()).await.unwrap_err();
    assert!(matches!(refused, ChallengeError::TooManyOpen), "{refused:?}");

    env.engine.apply(&walker, Provider::AppleHealth, &TimeZone::UTC, &[value("2026-11-20", 4321, None)]).await.unwrap();
    for id in &joined {
        assert_eq!(participant_totals(&env, id, &walker).await.unwrap(), ParticipantTotals { total: 4321, days: 1 });
    }
    assert_exact(&env, &joined[0], &walker).await;
    env.challenges().leave(&joined[0], &walker, env.now()).await.unwrap();
    env.challenges().join(&one_more, &walker, env.now()).await.unwrap();
    assert_eq!(assert_exact(&env, &one_more, &walker).await, ParticipantTotals { total: 4321, days: 1 });
}

/// Deletions through the real adapter: a pull of Nov 20–24 that no longer returns Nov 22
/// removes the source's value in one transaction with the challenge totals; a value observed
/// after the pull started stays.
async fn a_day_a_pull_no_longer_returns_loses_the_sources_value_and_the_totals_follow(env: TestEnv) {
    let walker = user();
    let month = env.challenge("2026-11-01", "2026-11-30").await;
    env.challenges().join(&month, &walker, env.now()).await.unwrap();
    let source = Provider::GoogleHealth;
    let first =
        [value("2026-11-21", 1000, None), value("2026-11-22", 2000, None), value("2026-11-23", 3000, Some(900))];
    env.engine.apply(&walker, source, &TimeZone::UTC, &first).await.unwrap();
    assert_eq!(assert_exact(&env, &month, &walker).await, ParticipantTotals { total: 6000, days: 3 });

    // Asked at(500): Nov 21 still there, Nov 22 gone, Nov 23 observed later (900) stays.
    let window = Some((date("2026-11-20"), date("2026-11-24"), at(500)));
    let again = [value("2026-11-21", 1000, None)];
    let report = env.engine.apply_window(&walker, source, &TimeZone::UTC, &again, window).await.unwrap();

    let changed: Vec<String> = report.changed.iter().map(|c| c.date.to_string()).collect();
    assert_eq!(changed, ["2026-11-22"]);
    assert_eq!(assert_exact(&env, &month, &walker).await, ParticipantTotals { total: 4000, days: 2 });
    let days = env.store.load_user_days(&walker, &[date("2026-11-22")]).await.unwrap().days;
    assert!(days[&date("2026-11-22")].sources.is_empty(), "{:?}: the value is gone", env.backend);
    assert_eq!(days[&date("2026-11-22")].removed.get(&source), Some(&at(500)), "the removal is remembered");

    // A fetch that saw the day before the removal (at 400) and commits after it brings
    // nothing back; one that saw it later (at 600) does.
    let stale = [value("2026-11-22", 2000, Some(400))];
    assert!(env.engine.apply(&walker, source, &TimeZone::UTC, &stale).await.unwrap().changed.is_empty());
    let fresh = [DailyValue { date: date("2026-11-22"), steps: 2500, observed_at: Some(at(600)) }];
    assert_eq!(env.engine.apply(&walker, source, &TimeZone::UTC, &fresh).await.unwrap().changed.len(), 1);
    assert_eq!(assert_exact(&env, &month, &walker).await, ParticipantTotals { total: 6500, days: 3 });
}

/// Per-install values survive the adapter: an iPhone's 9,000 and an iPad's later partial
/// 3,000 are both stored, the day and the challenge stay at 9,000, and the iPhone's own newer
/// reading moves them.
async fn two_installs_of_one_platform_are_kept_apart_through_the_store(env: TestEnv) {
    let walker = user();
    let month = env.challenge("2026-11-01", "2026-11-30").await;
    env.challenges().join(&month, &walker, env.now()).await.unwrap();
    let upload = |install, steps, observed| from_install(&env, &walker, install, steps, observed);
    upload("iphone", 9000, 100).await;
    upload("ipad", 3000, 200).await;
    let days = env.store.load_user_days(&walker, &[date("2026-11-24")]).await.unwrap().days;
    let day = &days[&date("2026-11-24")];
    assert_eq!((day.total.get(), day.installs.len()), (9000, 2), "{:?}", env.backend);
    assert_eq!(assert_exact(&env, &month, &walker).await, ParticipantTotals { total: 9000, days: 1 });
    assert!(upload("iphone", 8000, 50).await.changed.is_empty(), "an older reading changes nothing");
    upload("iphone", 9400, 300).await;
    assert_eq!(assert_exact(&env, &month, &walker).await, ParticipantTotals { total: 9400, days: 1 });
}

/// What one app installation read for Nov 24 (its steps, when it read them), applied.
async fn from_install(
    env: &TestEnv,
    walker: &UserId,
    install: &str,
    steps: i64,
    observed: i64,
) -> stepsync::engine::ApplyReport {
    let values = [value("2026-11-24", steps, Some(observed))];
    env.engine.apply_from_install(walker, Provider::AppleHealth, install, &TimeZone::UTC, &values).await.unwrap()
}

/// An iPhone and an iPad upload the same day at the same moment, again and again, each with
/// rising readings: whatever the interleaving (version conflicts retried), the day ends at the
/// larger of the two devices' latest readings, never a sum, and the challenge total matches.
async fn two_phones_uploading_at_the_same_moment_end_at_the_larger_latest_reading(env: TestEnv) {
    let walker = user();
    let month = env.challenge("2026-11-01", "2026-11-30").await;
    env.challenges().join(&month, &walker, env.now()).await.unwrap();
    let upload = |install, steps, observed| from_install(&env, &walker, install, steps, observed);
    let rounds = (1..=10).flat_map(|i| [upload("iphone", 1000 * i, i), upload("ipad", 900 * i + 50, i)]);
    futures::future::join_all(rounds).await;

    let days = env.store.load_user_days(&walker, &[date("2026-11-24")]).await.unwrap().days;
    let day = &days[&date("2026-11-24")];
    assert_eq!(day.total.get(), 10_000, "the iPhone's latest, the larger: {:?}", env.backend);
    assert_eq!(assert_exact(&env, &month, &walker).await, ParticipantTotals { total: 10_000, days: 1 });
}

/// Chicago → Tokyo through the real adapter: each source's numbers are kept per participant,
/// moved in the day's transaction, and the challenge counts the best single source (13,000,
/// not the 21,000 of largest-per-day). The person's zone is kept on the profile.
async fn a_walk_two_sources_put_on_different_dates_counts_once_through_the_store(env: TestEnv) {
    let walker = user();
    let c = env.challenge("2026-11-01", "2026-11-30").await;
    env.challenges().join(&c, &walker, env.now()).await.unwrap();
    let chicago = TimeZone::get("America/Chicago").unwrap();
    let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
    let google = [value("2026-11-24", 10_000, None), value("2026-11-25", 3_000, None)];
    env.engine.apply(&walker, Provider::GoogleHealth, &chicago, &google).await.unwrap();
    let phone = [value("2026-11-24", 1_500, None), value("2026-11-25", 11_000, None)];
    env.engine.apply_from_install(&walker, Provider::AppleHealth, "iphone", &tokyo, &phone).await.unwrap();

    assert_eq!(assert_exact(&env, &c, &walker).await, ParticipantTotals { total: 13_000, days: 2 });
    let stored = env.store.participant(&c, &walker).await.unwrap().unwrap().sources;
    assert_eq!(stored.0[&Provider::AppleHealth], ParticipantTotals { total: 12_500, days: 2 });
    let board = env.challenges().leaderboard(&c, 10, None).await.unwrap();
    assert_eq!((board.entries[0].total, board.entries[0].days), (13_000, 2));

    // A rebuild writes every source back (and drops one with nothing left).
    env.engine
        .apply_from_install(&walker, Provider::AppleHealth, "iphone", &tokyo, &[value("2026-11-26", 9_000, None)])
        .await
        .unwrap();
    assert_eq!(assert_exact(&env, &c, &walker).await.total, 21_500, "the phone now saw more, alone");
    let rebuilt = env.challenges().rebuild(&c, &walker, env.now()).await.unwrap();
    assert_eq!(env.store.participant(&c, &walker).await.unwrap().unwrap().sources, rebuilt);

    let rev = env.store.load_user_days(&walker, &[]).await.unwrap().profile.rev;
    env.store.set_time_zone(&walker, "Asia/Tokyo", rev).await.unwrap();
    let profile = env.store.load_user_days(&walker, &[]).await.unwrap().profile;
    assert_eq!((profile.time_zone.as_deref(), profile.rev), (Some("Asia/Tokyo"), rev + 1));
    assert!(matches!(env.store.set_time_zone(&walker, "UTC", rev).await, Err(StoreError::Conflict)));
}

/// Every committed day write reaches the stream and becomes one `StepsUpdated` with the day's
/// version, though the writer published nothing (as if it died right after the commit); an
/// unchanged re-apply commits nothing and announces nothing; a second read finds nothing new.
async fn every_committed_day_change_is_one_event_with_its_version_from_the_stream(env: TestEnv) {
    let walker = user();
    let tz = TimeZone::UTC;
    env.engine.apply(&walker, Provider::GoogleHealth, &tz, &[value("2026-11-23", 4000, Some(1))]).await.unwrap();
    env.engine.apply(&walker, Provider::AppleHealth, &tz, &[value("2026-11-23", 4200, Some(2))]).await.unwrap();
    env.engine.apply(&walker, Provider::GoogleHealth, &tz, &[value("2026-11-23", 3900, Some(3))]).await.unwrap();
    env.engine.apply(&walker, Provider::GoogleHealth, &tz, &[value("2026-11-23", 3900, Some(4))]).await.unwrap();
    assert!(env.publisher.events().is_empty(), "{:?}: the writes publish nothing themselves", env.backend);

    let events = env.day_events().await;
    let got: Vec<_> = events.iter().map(|u| (u.old_total, u.new_total, u.version, u.source)).collect();
    assert_eq!(
        got,
        [
            (0, 4000, 1, Provider::GoogleHealth),
            (4000, 4200, 2, Provider::AppleHealth),
            (4200, 4200, 3, Provider::GoogleHealth),
        ],
        "{:?}",
        env.backend
    );
    assert_eq!(env.publisher.events().len(), 3);
    assert_eq!(env.day_events().await, [], "each record once");
}

/// The reconcile through the real adapter: drift in an open challenge rebuilt and counted, a
/// closed challenge sealed (snapshot, participant and profile in one transaction), then
/// checked against its snapshot; the next run finds nothing to do.
async fn the_reconcile_repairs_drift_and_seals_closed_challenges_through_the_store(env: TestEnv) {
    let walker = user();
    let closed = env.challenge_with("2026-11-01", "2026-11-10", 1).await;
    let open = env.challenge("2026-11-01", "2026-11-30").await;
    env.clock.set("2026-11-05T12:00:00Z".parse().unwrap());
    for c in [&closed, &open] {
        env.challenges().join(c, &walker, env.now()).await.unwrap();
    }
    let days = [value("2026-11-04", 3000, Some(1)), value("2026-11-05", 4000, Some(1))];
    env.engine.apply(&walker, Provider::Misfit, &TimeZone::UTC, &days).await.unwrap();
    let drifted = stepsync::domain::SourceTotals([(Provider::Misfit, ParticipantTotals { total: 2, days: 2 })].into());
    let stored = env.store.participant(&open, &walker).await.unwrap().unwrap();
    env.store.commit_totals(&stepsync::domain::Participant { sources: drifted, ..stored }).await.unwrap();
    env.clock.set("2026-11-25T18:00:00Z".parse().unwrap());

    let reconcile = Reconcile { steps: env.store.as_ref(), store: env.store.as_ref() };
    let report = reconcile.run(env.now()).await.unwrap();

    assert_eq!((report.open_challenges, report.repaired, report.sealed), (1, 1, 1), "{:?}: {report:?}", env.backend);
    assert_eq!(assert_exact(&env, &open, &walker).await, ParticipantTotals { total: 7000, days: 2 });
    let snapshot = env.store.snapshot(&closed, &walker).await.unwrap().unwrap();
    assert!(snapshot.is_consistent());
    assert_eq!(snapshot.totals.best(), ParticipantTotals { total: 7000, days: 2 });
    assert_eq!(reconcile.check_closed(&closed).await.unwrap(), []);
    let profile = env.store.load_user_days(&walker, &[]).await.unwrap().profile;
    assert!(profile.memberships[&closed].sealed && !profile.memberships[&open].sealed);
    assert_eq!(
        reconcile.run(env.now()).await.unwrap(),
        stepsync::services::ReconcileReport { open_challenges: 1, participants: 1, ..Default::default() }
    );
}

/// The bench's tables start without their stream (`stepsync_local::table::Stream::Off`) and turn
/// it on before the scenarios that read it: the changes before are never announced, those after
/// are, once each.
#[tokio::test]
async fn a_table_made_without_its_stream_announces_only_what_follows_turning_it_on() {
    let env = TestEnv::new_with(Backend::Dynoxide, stepsync_local::table::Stream::Off).await;
    let (walker, tz) = (user(), TimeZone::UTC);
    env.engine.apply(&walker, Provider::GoogleHealth, &tz, &[value("2026-11-23", 4000, Some(1))]).await.unwrap();
    env.enable_stream().await;
    env.engine.apply(&walker, Provider::GoogleHealth, &tz, &[value("2026-11-23", 5000, Some(2))]).await.unwrap();
    let got: Vec<_> = env.day_events().await.iter().map(|u| (u.old_total, u.new_total, u.version)).collect();
    assert_eq!(got, [(4000, 5000, 2)]);
    assert_eq!(env.day_events().await, [], "each record once");
}
