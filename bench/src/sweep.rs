//! The scheduled sweep: every connection settled in its slot, then a whole cycle's phases due
//! at once, the real `scheduled-sync` tick and the real `sync-worker` shard sweeps until none
//! is due, beside the store's floor (the minimal
//! request set of one sync, issued straight through the DynamoDB adapter at the same
//! concurrency).

use crate::error::BenchError;
use crate::world::World;
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};
use stepsync::clock::Clock;
use stepsync::domain::{DailyValue, DayRecord, LocalDate, Provider, SourceValue, StepLimits, UserId};
use stepsync::domain::{DueSlot, shard_of};
use stepsync::events::Event;
use stepsync::ports::{ConnectionStore, DayWrite, StepStore, StoreError};

/// What one sweep measured.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRun {
    pub connections: usize,
    pub synced: usize,
    pub failed: usize,
    /// Ticks run, the last being the one that found nothing due.
    pub ticks: usize,
    /// Shards busy at the first tick (one `SyncShard` event, one worker invocation each).
    pub busy_shards: usize,
    pub wall_ms: f64,
    pub per_second: f64,
    /// The first tick's `scheduled-sync` duration.
    pub tick_ms: f64,
    /// Worker invocation time (the sum over shard sweeps) per connection synced: what Lambda
    /// bills per sync in a sweep.
    pub worker_ms_per_sync: f64,
    /// DynamoDB requests by operation, per connection.
    pub requests_per_sync: BTreeMap<String, f64>,
    /// Fake Google Health calls per connection (`rollup`, `token_refresh`, ...).
    pub provider_calls_per_sync: BTreeMap<String, f64>,
    /// Events published per connection (`SyncShard` and `StepsUpdated`).
    pub events_per_sync: f64,
}

/// The store's own throughput for the minimal request set of one sync.
#[derive(Debug, Clone, Serialize)]
pub struct FloorRun {
    pub connections: usize,
    pub concurrency: usize,
    pub wall_ms: f64,
    /// Of which the shard pages (read first, as a worker reads a page before its syncs).
    pub pages_ms: f64,
    pub per_second: f64,
    pub requests_per_sync: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub worker_concurrency: usize,
    /// Syncs in flight at once: busy shards × the worker's concurrency.
    pub concurrency: usize,
    pub changed: SweepRun,
    pub unchanged: SweepRun,
    /// The floor just before and just after the changed-day sweep.
    pub floors: [FloorRun; 2],
    /// Connections over the two floors' mean wall time.
    pub floor_per_second: f64,
    /// Changed-day sweep throughput ÷ the floor's.
    pub ratio_to_floor: f64,
}

/// One more sweep on a fresh table of its own size (`--sweep-sizes`): whether the time per
/// connection stays flat as the sweep grows.
#[derive(Debug, Clone, Serialize)]
pub struct GrownSweep {
    pub connections: usize,
    /// Seeding the people (connection, tokens, challenge membership) before the sweep.
    pub seed_ms: f64,
    pub report: SweepReport,
}

impl GrownSweep {
    pub fn ms_per_connection(&self) -> f64 {
        self.report.changed.wall_ms / self.connections.max(1) as f64
    }
}

/// `run` on a fresh world of `n` connections, dropped afterwards.
pub async fn grown(store: crate::args::Store, n: usize, progress: &dyn Fn(&str)) -> Result<GrownSweep, BenchError> {
    progress(&format!("sweep at {n}: seeding a fresh table"));
    let mut world = World::start(store, stepsync_local::table::Stream::Off).await?;
    let started = Instant::now();
    world.add_people("grown", n, progress).await?;
    let seed_ms = started.elapsed().as_secs_f64() * 1e3;
    let report = run(&world, progress).await?;
    progress(&format!(
        "  at {n}: sweep {:.0}/s against the floor's {:.0}/s: ratio {:.2}",
        report.changed.per_second, report.floor_per_second, report.ratio_to_floor
    ));
    Ok(GrownSweep { connections: n, seed_ms, report })
}

/// Runs `work` while printing `status()` every two seconds.
async fn with_progress<T>(work: impl Future<Output = T>, status: impl Fn() -> String, progress: &dyn Fn(&str)) -> T {
    tokio::pin!(work);
    let mut every = tokio::time::interval(Duration::from_secs(2));
    every.tick().await;
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = every.tick() => progress(&status()),
        }
    }
}

fn per(counts: BTreeMap<String, u64>, n: usize) -> BTreeMap<String, f64> {
    counts.into_iter().map(|(op, count)| (op, count as f64 / n.max(1) as f64)).collect()
}

/// One sweep: tick, hand every `SyncShard` to the worker (all at once, like EventBridge
/// invoking one worker per event), tick again until nothing is due.
async fn sweep(world: &World, label: &str, progress: &dyn Fn(&str)) -> Result<SweepRun, BenchError> {
    let app = &world.app;
    let n = world.people.len();
    // Day changes written before (the floor's) reach the bus now, not as this sweep's events.
    world.env.day_events().await;
    world.env.counter.reset();
    world.google.reset_calls();
    let mut seen = world.env.publisher.events().len();
    let events_before = seen;
    let started = Instant::now();
    let (mut synced, mut failed, mut ticks, mut busy_shards, mut tick_ms, mut worker_ms) = (0, 0, 0, 0, 0.0, 0.0);
    let work = async {
        loop {
            let tick_started = Instant::now();
            let busy = functions::scheduled_sync::tick(app).await.map_err(|e| BenchError::measurement("sweep", e))?;
            ticks += 1;
            if ticks == 1 {
                tick_ms = tick_started.elapsed().as_secs_f64() * 1e3;
                busy_shards = busy.len();
            }
            if busy.is_empty() {
                return Ok::<_, BenchError>(());
            }
            let events = world.env.publisher.events();
            let shards: Vec<serde_json::Value> = events[seen..]
                .iter()
                .filter(|e| matches!(e, Event::SyncShard(_)))
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()
                .map_err(|e| BenchError::measurement("sweep", e))?;
            seen = events.len();
            let runs = shards.into_iter().map(|payload| async move {
                let started = Instant::now();
                let result = functions::sync_worker::handle(app, payload).await;
                (started.elapsed(), result)
            });
            for (took, result) in futures::future::join_all(runs).await {
                worker_ms += took.as_secs_f64() * 1e3;
                match result.map_err(|e| BenchError::measurement("sweep", e))? {
                    functions::sync_worker::WorkerResult::Shard { synced: s, failed: f, .. } => {
                        synced += s;
                        failed += f;
                    }
                    other => return Err(BenchError::measurement("sweep", format!("unexpected {other:?}"))),
                }
            }
            if failed > 0 {
                // A failed sync stays due (with a backoff): another tick would not finish it.
                return Ok(());
            }
        }
    };
    let status = || format!("  {label}: {}/{n} connections pulled", world.google.calls("rollup"));
    with_progress(work, status, progress).await?;
    let wall = started.elapsed().as_secs_f64();
    let calls = ["rollup", "token_refresh", "identity", "keyset"]
        .into_iter()
        .map(|kind| (kind.to_owned(), world.google.calls(kind)))
        .filter(|(_, c)| *c > 0)
        .collect();
    // The changed days' StepsUpdated, from the table's stream (after the timed part).
    world.env.day_events().await;
    // StepsUpdated is published only where a company's app subscribes (opt-in): not counted.
    let events = world.env.publisher.events()[events_before..]
        .iter()
        .filter(|e| !matches!(e, stepsync::events::Event::StepsUpdated(_)))
        .count();
    Ok(SweepRun {
        connections: n,
        synced,
        failed,
        ticks,
        busy_shards,
        wall_ms: wall * 1e3,
        per_second: synced as f64 / wall,
        tick_ms,
        worker_ms_per_sync: worker_ms / synced.max(1) as f64,
        requests_per_sync: per(world.env.counter.snapshot(), n),
        provider_calls_per_sync: per(calls, n),
        events_per_sync: events as f64 / n.max(1) as f64,
    })
}

/// The minimal request set of one changed-day sync, straight through the adapter: one
/// consistent read of the day and the profile, one consistent read of the connection's status
/// (a write through a connection is refused once it is disconnected), one conditional put of
/// the day, one conditional count into the participant.
async fn minimal_sync(world: &World, user: &UserId, date: LocalDate, steps: i64) -> Result<(), StoreError> {
    let store = world.env.store.as_ref();
    let now = world.env.clock.now();
    let snapshot = store.load_user_days(user, &[date]).await?;
    store.get_connection(user, Provider::GoogleHealth).await?;
    let current = snapshot.days.get(&date).cloned().unwrap_or_else(|| DayRecord::empty(user.clone(), date));
    let value = DailyValue { date, steps, observed_at: None };
    let counted = StepLimits::default()
        .validate(&value, date)
        .map_err(|e| StoreError::Unavailable(format!("floor value refused: {e}")))?;
    let mut next = current.clone();
    next.merge(Provider::GoogleHealth, SourceValue { steps: counted, observed_at: None }, snapshot.profile.primary);
    next.version = current.version + 1;
    store.commit_day(&DayWrite { record: next.clone(), expected_version: current.version, now }).await?;
    let old = (current.version > 0).then_some(current);
    let change = stepsync::ports::DayChange { id: String::new(), old, new: next, written_at: now };
    for count in stepsync::engine::counting::day_counts(&snapshot.profile, &change) {
        store.count_day(&count).await?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum FloorOp<'a> {
    /// One page of a slot's connections, as the worker reads them.
    Page(DueSlot),
    /// The query of a shard's due times that opens each sweep.
    Due(u16),
    Sync(&'a UserId),
}

/// Runs `ops` at `concurrency`, counting the syncs done.
async fn floor_ops(
    world: &World,
    ops: Vec<FloorOp<'_>>,
    concurrency: usize,
    horizon: jiff::Timestamp,
    date: LocalDate,
    done: &std::sync::atomic::AtomicUsize,
) -> Vec<Result<(), StoreError>> {
    futures::stream::iter(ops)
        .map(|op| async move {
            match op {
                FloorOp::Page(slot) => world.env.store.slot_connections(slot, None, 100).await.map(|_| ()),
                FloorOp::Due(shard) => world.env.store.due_connections(shard, horizon, None, 1).await.map(|_| ()),
                FloorOp::Sync(user) => {
                    let result = minimal_sync(world, user, date, 4321).await;
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    result
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// The floor: per connection the minimal sync above, plus the pages the worker reads (a page
/// per slot and 100 connections, and each shard's due-time query), all at `concurrency`.
async fn floor(
    world: &World,
    concurrency: usize,
    date: LocalDate,
    progress: &dyn Fn(&str),
) -> Result<FloorRun, BenchError> {
    let n = world.people.len();
    // Every slot the people sit in, with how many: a page per 100, as the worker reads them,
    // and each busy shard's due-time query.
    let schedule = &world.app.services.engine.schedule;
    let mut per_slot: BTreeMap<DueSlot, usize> = BTreeMap::new();
    for person in &world.people {
        if let Some(slot) = schedule.slot(&person.user, Provider::GoogleHealth) {
            *per_slot.entry(slot).or_default() += 1;
        }
    }
    let shards: std::collections::BTreeSet<u16> = per_slot.keys().map(|s| s.shard).collect();
    let pages = per_slot
        .iter()
        .flat_map(|(slot, k)| std::iter::repeat_n(FloorOp::Page(*slot), k.div_ceil(100)))
        .chain(shards.into_iter().map(FloorOp::Due));
    let horizon = world.env.clock.now();
    world.env.counter.reset();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let status = || format!("  floor: {}/{n} minimal syncs", done.load(std::sync::atomic::Ordering::Relaxed));
    // The pages first, then the syncs, each timed: the worker, too, reads a page before its syncs.
    let started = Instant::now();
    let mut results = floor_ops(world, pages.collect(), concurrency, horizon, date, &done).await;
    let pages_ms = started.elapsed().as_secs_f64() * 1e3;
    let syncs = world.people.iter().map(|p| FloorOp::Sync(&p.user)).collect();
    results.extend(with_progress(floor_ops(world, syncs, concurrency, horizon, date, &done), status, progress).await);
    let wall = started.elapsed().as_secs_f64();
    if let Some(error) = results.into_iter().find_map(Result::err) {
        return Err(BenchError::measurement("floor", error));
    }
    Ok(FloorRun {
        connections: n,
        concurrency,
        wall_ms: wall * 1e3,
        pages_ms,
        per_second: n as f64 / wall,
        requests_per_sync: per(world.env.counter.snapshot(), n),
    })
}

/// The changed-day sweep bracketed by two floors, then the unchanged sweep. The store slows
/// as the table grows (each changed-day run adds a day item per person), so the floor runs
/// once just before the sweep and once just after it, on other dates, and the sweep is
/// compared with their mean: the table the sweep wrote to lies between the two.
pub async fn run(world: &World, progress: &dyn Fn(&str)) -> Result<SweepReport, BenchError> {
    let n = world.people.len();
    let worker_concurrency = world.app.config.worker_concurrency as usize;
    // The shards the tick will find busy: those with a due connection.
    let busy: std::collections::BTreeSet<u16> =
        world.people.iter().map(|p| shard_of(&p.user, Provider::GoogleHealth)).collect();
    let concurrency = busy.len().max(1) * worker_concurrency;
    let report = |what: &str, f: &FloorRun| {
        progress(&format!("  {what}: {} minimal syncs in {:.0} ms: {:.0}/s", f.connections, f.wall_ms, f.per_second));
    };

    // Their first syncs (nothing to fetch yet): each connection leaves the due-time partition
    // for its slot, the one write of a connection's healthy life.
    progress(&format!("sweep: {n} first syncs, each connection settling in its slot"));
    let settled = sweep(world, "first syncs", progress).await?;
    progress(&format!("  {} settled in {:.0} ms", settled.synced, settled.wall_ms));
    // A cycle later every slot's phase has come round: one changed day each.
    world.env.clock.advance(Duration::from_secs(7 * 3600));
    let today = world.today();
    for (i, person) in world.people.iter().enumerate() {
        world.google.set_steps(&person.account, today.date(), 3_000 + (i as u64 % 5_000));
    }

    progress(&format!("floor, before the sweep: the minimal request set of one sync, {concurrency} at once"));
    let before = floor(world, concurrency, today.add_days(-14), progress).await?;
    report("floor before", &before);
    progress(&format!("sweep: {n} connections, every phase of a cycle, one changed day each"));
    let changed = sweep(world, "changed-day sweep", progress).await?;
    progress(&format!(
        "  {} synced ({} failed) in {:.0} ms: {:.0} connections/s",
        changed.synced, changed.failed, changed.wall_ms, changed.per_second
    ));
    progress("floor, after the sweep");
    let after = floor(world, concurrency, today.add_days(-13), progress).await?;
    report("floor after", &after);

    // Webhook-fed connections are swept again once a cycle (six hours).
    world.env.clock.advance(Duration::from_secs(7 * 3600));
    progress("sweep: the same connections seven hours later, nothing new");
    let unchanged = sweep(world, "unchanged sweep", progress).await?;
    progress(&format!(
        "  {} synced ({} failed) in {:.0} ms: {:.0} connections/s",
        unchanged.synced, unchanged.failed, unchanged.wall_ms, unchanged.per_second
    ));
    let floor_per_second = n as f64 / ((before.wall_ms + after.wall_ms) / 2.0 / 1e3);
    let ratio_to_floor = changed.per_second / floor_per_second;
    Ok(SweepReport {
        worker_concurrency,
        concurrency,
        changed,
        unchanged,
        floors: [before, after],
        floor_per_second,
        ratio_to_floor,
    })
}
