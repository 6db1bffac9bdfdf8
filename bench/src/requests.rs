//! Requests per sync: DynamoDB requests (counted by the SDK interceptor), events published and
//! provider calls for each way a sync happens, beside the minimum the design allows.

use crate::error::BenchError;
use crate::world::World;
use functions::sync_worker::WorkerResult;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;
use stepsync::domain::{LocalDate, Provider, UserId};
use stepsync::engine::{phase_index, phase_start};
use stepsync::events::{Event, SyncReason, SyncRequested, SyncShard};
use stepsync::ports::{ConnectionStore, SyncRecord};
use stepsync_local::demo::{google_tokens, store_connection};
use stepsync_local::fakes::google_health::{Notification, SIGNATURE_HEADER};
use stepsync_local::harness;

/// DynamoDB operations by kind (the interceptor names them after `X-Amz-Target`).
const READS: [&str; 5] = ["GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"];
const WRITES: [&str; 4] = ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"];
const TRANSACTIONS: &str = "TransactWriteItems";

/// The least a scenario can cost by the design (docs/DATA_MODEL.md).
#[derive(Debug, Clone, Serialize)]
pub struct Minimum {
    pub operations: BTreeMap<String, u64>,
    pub reads: u64,
    pub writes: u64,
    pub transactions: u64,
    pub events: u64,
    pub provider_calls: u64,
    pub why: &'static str,
}

impl Minimum {
    fn new(operations: &[(&str, u64)], events: u64, provider_calls: u64, why: &'static str) -> Self {
        let operations: BTreeMap<String, u64> = operations.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect();
        Self {
            reads: sum(&operations, &READS),
            writes: sum(&operations, &WRITES),
            transactions: sum(&operations, &[TRANSACTIONS]),
            operations,
            events,
            provider_calls,
            why,
        }
    }
}

/// One Lambda invocation a scenario caused, and how long the handler ran.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    pub function: &'static str,
    pub ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    pub operations: BTreeMap<String, u64>,
    pub reads: u64,
    pub writes: u64,
    pub transactions: u64,
    pub events: u64,
    pub provider_calls: BTreeMap<String, u64>,
    pub invocations: Vec<Invocation>,
    /// HTTP API requests (webhooks and the app's calls come through API Gateway).
    pub api_requests: u64,
    pub minimum: Minimum,
    /// Where and why the engine exceeds the minimum.
    pub over_minimum: Vec<String>,
}

impl Scenario {
    pub fn provider_total(&self) -> u64 {
        self.provider_calls.values().sum()
    }
}

/// Why the engine sends what the minimum does not have: the same in every scenario unless
/// a scenario says otherwise.
const WHY: &[(&str, &str)] = &[
    (
        "GetItem",
        "sync-worker reads the connection a SyncRequested without dates names (a scheduled or queued sync: its window follows the person's zone, which the connection holds)",
    ),
    (
        "UpdateItem",
        "a connection that is not settled yet records its outcome (first success, or one after an error or a backoff)",
    ),
];

/// Each request beyond the minimum, with why the engine sends it.
fn beyond(operations: &BTreeMap<String, u64>, minimum: &Minimum, reasons: &[(&str, &str)]) -> Vec<String> {
    operations
        .iter()
        .filter_map(|(op, n)| {
            let extra = n.saturating_sub(minimum.operations.get(op).copied().unwrap_or(0));
            let why =
                reasons.iter().chain(WHY).find(|(o, _)| o == op).map_or("not explained by the design", |(_, w)| *w);
            (extra > 0).then(|| format!("{op} ×{extra}: {why}"))
        })
        .collect()
}

fn sum(operations: &BTreeMap<String, u64>, kinds: &[&str]) -> u64 {
    kinds.iter().map(|k| operations.get(*k).copied().unwrap_or(0)).sum()
}

/// Counts everything `work` causes (counters reset first).
async fn measure<F>(
    world: &World,
    name: &'static str,
    api_requests: u64,
    minimum: Minimum,
    reasons: &[(&str, &str)],
    work: F,
) -> Result<Scenario, BenchError>
where
    F: AsyncFnOnce() -> Result<Vec<Invocation>, BenchError>,
{
    world.env.counter.reset();
    world.google.reset_calls();
    let events_before = world.env.publisher.events().len();
    let mut invocations = work().await?;
    // The table's stream hands each changed day to day-events, which reads the profile and
    // the participant to make sure it was counted (Lambda's stream polling itself is not billed
    // per request; those reads are).
    let before_stream = world.env.counter.snapshot();
    let started = Instant::now();
    world.env.settle_counted().await;
    let operations = world.env.counter.snapshot();
    if operations != before_stream {
        invocations.push(Invocation { function: "day-events", ms: started.elapsed().as_secs_f64() * 1e3 });
    }
    let provider_calls: BTreeMap<String, u64> = ["rollup", "token_refresh", "identity", "keyset"]
        .into_iter()
        .map(|kind| (kind.to_owned(), world.google.calls(kind)))
        .filter(|(_, c)| *c > 0)
        .collect();
    let (reads, writes, transactions) =
        (sum(&operations, &READS), sum(&operations, &WRITES), sum(&operations, &[TRANSACTIONS]));
    let over_minimum = beyond(&operations, &minimum, reasons);
    // StepsUpdated is published only for a company's app that subscribes (StepsUpdatedEvents,
    // off by default), and the webhook's SyncRequested is handed to sync-worker by an
    // asynchronous invoke as deployed (template.yaml STEPSYNC_SYNC_WORKER_FUNCTION), billed as
    // that invocation: neither is a PutEvents entry.
    let events = world.env.publisher.events()[events_before..]
        .iter()
        .filter(|e| !matches!(e, Event::StepsUpdated(_)))
        .filter(|e| !matches!(e, Event::SyncRequested(r) if r.reason == SyncReason::Webhook))
        .count() as u64;
    Ok(Scenario {
        name,
        operations,
        reads,
        writes,
        transactions,
        events,
        provider_calls,
        invocations,
        api_requests,
        minimum,
        over_minimum,
    })
}

async fn worker(world: &World, event: &Event) -> Result<(Invocation, WorkerResult), BenchError> {
    let payload = serde_json::to_value(event).map_err(|e| BenchError::measurement("requests", e))?;
    let started = Instant::now();
    let result = functions::sync_worker::handle(&world.app, payload)
        .await
        .map_err(|e| BenchError::measurement("requests", e))?;
    Ok((Invocation { function: "sync-worker", ms: started.elapsed().as_secs_f64() * 1e3 }, result))
}

fn scheduled(user: &UserId) -> Event {
    Event::SyncRequested(SyncRequested::whole(user.clone(), Provider::GoogleHealth, SyncReason::Schedule))
}

/// One scheduled sync of `user`, which must change `changed` days.
async fn scheduled_sync(world: &World, user: &UserId, changed: usize) -> Result<Vec<Invocation>, BenchError> {
    let (invocation, result) = worker(world, &scheduled(user)).await?;
    match result {
        WorkerResult::Synced { changed: c, .. } if c == changed => Ok(vec![invocation]),
        other => Err(BenchError::measurement("requests", format!("expected {changed} changed day(s), got {other:?}"))),
    }
}

/// A signed Google Health notification about `date` into `provider-webhook`, then every
/// `SyncRequested` it published into `sync-worker`.
async fn webhook(world: &World, account: &str, date: LocalDate) -> Result<Vec<Invocation>, BenchError> {
    let body = Notification::upsert(account, [date.date()]).body();
    let signature = world.google.sign(&body);
    let text = String::from_utf8(body).map_err(|e| BenchError::measurement("webhook", e))?;
    let request = harness::request_from_sample("webhook_google_health_notification.json", None, |event| {
        event["headers"][SIGNATURE_HEADER.to_ascii_lowercase()] = Value::String(signature);
        event["body"] = Value::String(text);
    });
    let seen = world.env.publisher.events().len();
    let started = Instant::now();
    let response = functions::webhook::handle(&world.app, request).await;
    let mut invocations = vec![Invocation { function: "provider-webhook", ms: started.elapsed().as_secs_f64() * 1e3 }];
    if response.status() != 204 {
        return Err(BenchError::measurement("webhook", format!("answered {}", response.status())));
    }
    let events = world.env.publisher.events();
    for event in events[seen..].iter().filter(|e| matches!(e, Event::SyncRequested(_))) {
        invocations.push(worker(world, event).await?.0);
    }
    Ok(invocations)
}

pub async fn run(world: &mut World, progress: &dyn Fn(&str)) -> Result<Vec<Scenario>, BenchError> {
    world.add_people("solo", 1, progress).await?;
    let world = &*world;
    let person = world.people.last().ok_or_else(|| BenchError::measurement("requests", "no person"))?;
    let (user, account) = (&person.user, person.account.as_str());
    let today = world.today();
    let set = |steps: u64| world.google.set_steps(account, today.date(), steps);

    // A first sync and a first webhook: the day exists and the keyset is cached, as in a warm
    // function.
    set(1_000);
    scheduled_sync(world, user, 1).await?;
    world.google.set_steps(account, today.add_days(-1).date(), 500);
    webhook(world, account, today.add_days(-1)).await?;
    // Their day changes reach the bus now, not as the first scenario's events.
    world.env.day_events().await;

    let mut scenarios = Vec::new();
    scenarios.extend(sweep_path(world, progress).await?);

    progress("requests: a webhook about one day");
    set(3_000);
    let least = Minimum::new(
        &[("GetItem", 4), ("UpdateItem", 2), ("Query", 1), ("PutItem", 1)],
        0,
        1,
        "the account's owner (GetItem), the SyncRequested handed to the worker (an asynchronous invoke, no event); the worker's fence (UpdateItem, which answers the connection too); then the changed day: its read (one Query: the day and the profile), the connection's status before writing (GetItem: a disconnect during the fetch wins), its put, its count (UpdateItem), and the stream's check of the count (GetItem of the profile and the participant)",
    );
    scenarios.push(
        measure(world, "webhook about one day", 1, least, &[], async || webhook(world, account, today).await).await?,
    );

    progress("requests: a manual sync (POST /v1/sync)");
    set(4_000);
    let challenge = world.challenge.to_string();
    let least = Minimum::new(
        &[("PutItem", 2), ("Query", 2), ("UpdateItem", 1), ("GetItem", 3)],
        0,
        1,
        "the cooldown claim (PutItem), the person's connections (Query), then the changed day: its read (Query), the connection's status, its put, its count, the stream's check",
    );
    let manual_reasons = [
        ("GetItem", "the challenge named in the body is checked to exist before the cooldown is spent"),
        (
            "Query",
            "the answer's standing (rank, participants) reads every participant of the challenge: its cost grows with the challenge (here everyone of the sweep is in it)",
        ),
    ];
    scenarios.push(
        measure(world, "manual sync, one changed day", 1, least, &manual_reasons, async || {
            let request = harness::request_from_sample("sync_now.json", Some(user), |event| {
                event["body"] = Value::String(json!({ "challenge": challenge }).to_string());
            });
            let started = Instant::now();
            let response = functions::manual_sync::handle(&world.app, request).await;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let body = harness::body_json(&response);
            if response.status() != 200 || body["connections"][0]["days_changed"] != json!(1) {
                return Err(BenchError::measurement("manual sync", format!("answered {}: {body}", response.status())));
            }
            Ok(vec![Invocation { function: "manual-sync", ms }])
        })
        .await?,
    );

    progress("requests: a token refresh (scheduled sync, day unchanged)");
    let soon = world.env.now() + jiff::SignedDuration::from_mins(1);
    let tokens = google_tokens(&world.google, account, soon);
    store_connection(&world.app, user, Provider::GoogleHealth, account, Some(&tokens), None, "UTC")
        .await
        .map_err(|e| BenchError::measurement("token refresh", e))?;
    // A settled connection whose access token now nears its expiry (storing it made it due).
    let slot = world.app.services.engine.schedule.slot(user, Provider::GoogleHealth);
    let settled = SyncRecord { succeeded_at: Some(world.env.now()), slot, ..SyncRecord::default() };
    world
        .env
        .store
        .record_sync(user, Provider::GoogleHealth, &settled)
        .await
        .map_err(|e| BenchError::measurement("token refresh", e))?;
    let least = Minimum::new(
        &[("UpdateItem", 2), ("GetItem", 1), ("Query", 1)],
        0,
        2,
        "the lease, and the new tokens on a version condition that also frees the lease (UpdateItem ×2); the re-read under the lease; the refresh and the fetch; the unchanged read",
    );
    scenarios.push(
        measure(world, "token refresh, day unchanged", 0, least, &[], async || scheduled_sync(world, user, 0).await)
            .await?,
    );
    Ok(scenarios)
}

/// People sharing one slot in a table of their own: a sweep of their shard at their phase is
/// theirs alone, so its requests divide evenly among them.
const SLOT_PEOPLE: usize = 100;

/// The scheduled pull as it happens: the sweep of one shard's phase (`SyncShard` into
/// `sync-worker`), for `SLOT_PEOPLE` settled connections in one slot, counted per connection.
/// Nothing new, then one changed day each.
async fn sweep_path(world: &World, progress: &dyn Fn(&str)) -> Result<Vec<Scenario>, BenchError> {
    progress(&format!("requests: the sweep of one phase, {SLOT_PEOPLE} connections in one slot"));
    let store = match world.env.backend {
        harness::Backend::Dynoxide => crate::args::Store::Dynoxide,
        harness::Backend::Moto => crate::args::Store::Moto,
    };
    let mut own = World::start(store, stepsync_local::table::Stream::AsTemplate).await?;
    let schedule = own.app.services.engine.schedule.clone();
    let first = UserId::parse("slot-00000").map_err(|e| BenchError::setup("slot people", e))?;
    let slot =
        schedule.slot(&first, Provider::GoogleHealth).ok_or_else(|| BenchError::setup("slot people", "no slot"))?;
    let expires_at = own.env.now() + jiff::SignedDuration::from_hours(24 * 30);
    let mut people = Vec::new();
    for i in 0.. {
        if people.len() == SLOT_PEOPLE {
            break;
        }
        let user = UserId::parse(&format!("slot-{i:05}")).map_err(|e| BenchError::setup("slot people", e))?;
        if schedule.slot(&user, Provider::GoogleHealth) != Some(slot) {
            continue;
        }
        let account = format!("slot-account-{i:05}");
        let tokens = google_tokens(&own.google, &account, expires_at);
        store_connection(&own.app, &user, Provider::GoogleHealth, &account, Some(&tokens), None, "UTC")
            .await
            .map_err(|e| BenchError::setup("slot people", e))?;
        own.env
            .challenges()
            .join(&own.challenge, &user, own.env.now())
            .await
            .map_err(|e| BenchError::setup("slot people", e))?;
        people.push(crate::world::Person { user, account });
    }
    own.people = people;
    let own = &own;
    let shard = slot.shard;
    let sweep = async || -> Result<Vec<Invocation>, BenchError> {
        let event = Event::SyncShard(SyncShard { shard, tick: own.env.now() });
        let payload = serde_json::to_value(&event).map_err(|e| BenchError::measurement("requests", e))?;
        let started = Instant::now();
        let result = functions::sync_worker::handle(&own.app, payload)
            .await
            .map_err(|e| BenchError::measurement("requests", e))?;
        match result {
            WorkerResult::Shard { synced, failed: 0, .. } if synced == SLOT_PEOPLE => {}
            other => return Err(BenchError::measurement("requests", format!("the phase's sweep: {other:?}"))),
        }
        Ok(vec![Invocation { function: "sync-worker", ms: started.elapsed().as_secs_f64() * 1e3 }])
    };
    // Settle them (their first sync, from the due-time partition), then tick by tick up to
    // their phase in the next cycle, as the scheduler would: one pending phase per cycle.
    sweep().await?;
    let to_phase = |index: i64| own.env.clock.set(phase_start(index) + jiff::SignedDuration::from_mins(1));
    let current = phase_index(own.env.now());
    let next = current + 1 + (i64::from(slot.phase) - current - 1).rem_euclid(i64::from(slot.cycle));
    for index in current + 1..next {
        to_phase(index);
        let event = Event::SyncShard(SyncShard { shard, tick: own.env.now() });
        let payload = serde_json::to_value(&event).map_err(|e| BenchError::measurement("requests", e))?;
        functions::sync_worker::handle(&own.app, payload).await.map_err(|e| BenchError::measurement("requests", e))?;
    }
    to_phase(next);
    own.env.day_events().await;

    let shared = "per sweep, shared by the phase's connections (here {n}): the shard claim (PutItem, DeleteItem), each cycle's cursor (GetItem, PutItem), a page Query per phase and one for due times";
    let per_connection = |scenario: Scenario| -> Scenario {
        let n = SLOT_PEOPLE as u64;
        let exact: Vec<String> =
            scenario.operations.iter().map(|(op, count)| format!("{op} {:.2}", *count as f64 / n as f64)).collect();
        let operations: BTreeMap<String, u64> = scenario
            .operations
            .iter()
            .map(|(op, count)| (op.clone(), (*count as f64 / n as f64).round() as u64))
            .filter(|(_, count)| *count > 0)
            .collect();
        let mut over =
            vec![format!("{} per connection exactly: {}", shared.replace("{n}", &n.to_string()), exact.join(", "))];
        over.extend(beyond(&operations, &scenario.minimum, &[]));
        Scenario {
            over_minimum: over,
            reads: sum(&operations, &READS),
            writes: sum(&operations, &WRITES),
            transactions: sum(&operations, &[TRANSACTIONS]),
            operations,
            events: scenario.events.div_ceil(n),
            provider_calls: scenario.provider_calls.into_iter().map(|(k, v)| (k, v.div_ceil(n))).collect(),
            invocations: scenario
                .invocations
                .into_iter()
                .map(|i| Invocation { function: i.function, ms: i.ms / n as f64 })
                .collect(),
            ..scenario
        }
    };
    let least = Minimum::new(
        &[("Query", 1)],
        0,
        1,
        "one consistent Query of the window's days and the profile; nothing to write",
    );
    let unchanged = measure(own, "unchanged day (scheduled sync)", 0, least, &[], sweep).await?;

    let today = own.today();
    for person in &own.people {
        own.google.set_steps(&person.account, today.date(), 2_500);
    }
    to_phase(next + i64::from(slot.cycle));
    let least = Minimum::new(
        &[("Query", 1), ("GetItem", 3), ("PutItem", 1), ("UpdateItem", 1)],
        0,
        1,
        "the read (one Query: the window's days and the profile), the connection's status before writing (GetItem), the day's conditional put, its count into the one challenge (UpdateItem), and the change stream's check that it was counted (GetItem of the profile and the participant: reads, where a transaction would cost twice the writes)",
    );
    let changed = measure(own, "one changed day (scheduled sync)", 0, least, &[], sweep).await?;
    Ok(vec![per_connection(unchanged), per_connection(changed)])
}
