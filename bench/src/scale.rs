//! The capacity model: how far the design goes at 10 k, 100 k, 1 M and 10 M people, from this
//! run's measured per-sync figures and the stated limits and assumptions below
//! (docs/SCALE.md explains each row).

use serde::Serialize;

/// The populations the model is computed for.
pub const POPULATIONS: [f64; 4] = [10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0];

/// Published limits the model checks against (docs/SCALE.md cites each).
pub mod limits {
    /// DynamoDB, per partition (one partition key never spans partitions).
    pub const PARTITION_WRITE_UNITS: f64 = 1_000.0;
    pub const PARTITION_READ_UNITS: f64 = 3_000.0;
    /// DynamoDB on-demand, per table, default account quota (raisable).
    pub const TABLE_UNITS: f64 = 40_000.0;
    /// Lambda concurrent executions per region, default (raisable).
    pub const LAMBDA_CONCURRENCY: f64 = 1_000.0;
    /// EventBridge PutEvents entries per second in us-east-1, default (raisable).
    pub const PUT_EVENTS_PER_SECOND: f64 = 10_000.0;
    /// Google Health API per project: 86.4 M a day; 120,000 a minute; per user 300 a minute.
    pub const GOOGLE_PER_DAY: f64 = 86_400_000.0;
    pub const GOOGLE_PER_MINUTE: f64 = 120_000.0;
    pub const GOOGLE_PER_USER_MINUTE: f64 = 300.0;
    /// Google OAuth token grants (sign-ups and re-authentications) per 24 h, default.
    pub const GOOGLE_GRANTS_PER_DAY: f64 = 10_000.0;
    /// A sweep invocation's budget: the worker's 300 s timeout less its stop margin.
    pub const SWEEP_BUDGET_SECONDS: f64 = 250.0;
}

/// Assumptions, stated in the report beside the numbers.
pub mod assume {
    /// The busiest hour's device syncs against the day's average.
    pub const PEAK_FACTOR: f64 = 3.0;
    /// One sync deployed: the provider's answer (~250 ms for Google Health's roll-up) plus
    /// DynamoDB's few milliseconds per request; loopback measures only our own part.
    pub const SYNC_SECONDS: f64 = 0.3;
    /// One webhook request deployed (signature check, one read, an asynchronous hand-off).
    pub const WEBHOOK_SECONDS: f64 = 0.03;
    /// New connections a day, as a share of the population (joiners, reconnects).
    pub const GRANTS_SHARE_PER_DAY: f64 = 0.01;
}

/// What the model needs from this run.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    /// Device syncs (webhook-fed changed days) per person per day.
    pub webhooks_per_day: f64,
    /// Reconcile pulls per person per day.
    pub reconciles_per_day: f64,
    /// The scheduler's tick, minutes.
    pub tick_minutes: f64,
    /// Connections one worker syncs at once.
    pub worker_concurrency: f64,
    /// Connections per shard the configuration derives (people per shard).
    pub people_per_shard: f64,
    /// Request units one webhook-fed changed day costs, the webhook and the stream included.
    pub changed_write_units: f64,
    pub changed_read_units: f64,
    /// Read units one unchanged reconcile pull costs.
    pub unchanged_read_units: f64,
    /// Provider calls per sync.
    pub provider_calls_per_sync: f64,
    /// Dollars per 10,000 webhook-fed people per month (section 4).
    pub dollars_per_10k: f64,
    /// The measured sweep, ms per connection at each size run (connections, ms).
    pub sweep_ms_per_connection: Vec<(usize, f64)>,
}

/// One population's row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub people: f64,
    pub shards: f64,
    pub device_syncs_per_second_peak: f64,
    pub table_write_units_peak: f64,
    pub table_read_units_peak: f64,
    /// The busiest partition key: one challenge holding everyone (its participants' counts).
    pub hottest_partition_writes_peak: f64,
    /// Connections one tick's sweep takes, and how long one shard's part runs deployed.
    pub per_tick_connections: f64,
    pub shard_sweep_seconds: f64,
    pub lambda_concurrency_peak: f64,
    pub put_events_per_second: f64,
    pub scheduler_invocations_per_month: f64,
    pub google_requests_per_day: f64,
    pub google_requests_per_minute_peak: f64,
    pub google_grants_per_day: f64,
    pub dollars_per_month: f64,
    /// What runs out first, if anything, with its default limit.
    pub limits_hit: Vec<String>,
}

/// Shards for `people`: enough that one tick's share of a shard is swept within one worker
/// invocation deployed, and at least 8 (the table's shard keys spread the GSI's writes).
pub fn shards_for(people: f64, people_per_shard: f64) -> f64 {
    (people / people_per_shard).ceil().max(8.0)
}

/// People one shard holds so that its share of a tick (a webhook-fed connection is swept once
/// every `reconciles_per_day`-th of a day) fits one invocation at `worker_concurrency`.
pub fn people_per_shard(reconciles_per_day: f64, tick_minutes: f64, worker_concurrency: f64) -> f64 {
    let ticks_per_cycle = (24.0 * 60.0 / reconciles_per_day / tick_minutes).max(1.0);
    let per_invocation = limits::SWEEP_BUDGET_SECONDS / assume::SYNC_SECONDS * worker_concurrency;
    (per_invocation * ticks_per_cycle).floor()
}

pub fn model(i: &Inputs) -> Vec<Row> {
    POPULATIONS.iter().map(|&people| row(i, people)).collect()
}

fn row(i: &Inputs, people: f64) -> Row {
    let shards = shards_for(people, i.people_per_shard);
    let day = 86_400.0;
    let device_avg = people * i.webhooks_per_day / day;
    let device_peak = device_avg * assume::PEAK_FACTOR;
    let reconciles_per_second = people * i.reconciles_per_day / day;
    let ticks_per_cycle = (24.0 * 60.0 / i.reconciles_per_day / i.tick_minutes).max(1.0);
    let per_tick = people / ticks_per_cycle;
    let shard_sweep_seconds = per_tick / shards * assume::SYNC_SECONDS / i.worker_concurrency;
    let write_units = device_peak * i.changed_write_units;
    let read_units = device_peak * i.changed_read_units + reconciles_per_second * i.unchanged_read_units;
    let sweeping_workers = if shard_sweep_seconds > 0.0 { shards.min(per_tick) } else { 0.0 };
    let lambda = device_peak * (assume::WEBHOOK_SECONDS + assume::SYNC_SECONDS) + sweeping_workers;
    let google_per_day = people * (i.webhooks_per_day + i.reconciles_per_day) * i.provider_calls_per_sync;
    let google_peak_minute = (device_peak + reconciles_per_second) * 60.0 * i.provider_calls_per_sync;
    let grants = people * assume::GRANTS_SHARE_PER_DAY;
    let mut limits_hit = Vec::new();
    let mut check = |value: f64, limit: f64, what: &str| {
        if value > limit {
            limits_hit.push(format!("{what} ({value:.0} > {limit:.0})"));
        }
    };
    check(device_peak, limits::PARTITION_WRITE_UNITS, "one challenge of everyone: its partition's writes/s");
    check(write_units.max(read_units), limits::TABLE_UNITS, "table request units/s");
    check(lambda, limits::LAMBDA_CONCURRENCY, "Lambda concurrency");
    check(google_per_day, limits::GOOGLE_PER_DAY, "Google requests/day");
    check(google_peak_minute, limits::GOOGLE_PER_MINUTE, "Google requests/minute");
    check(grants, limits::GOOGLE_GRANTS_PER_DAY, "Google OAuth grants/day");
    check(shard_sweep_seconds, limits::SWEEP_BUDGET_SECONDS, "a shard's sweep in one invocation (s)");
    Row {
        people,
        shards,
        device_syncs_per_second_peak: device_peak,
        table_write_units_peak: write_units,
        table_read_units_peak: read_units,
        hottest_partition_writes_peak: device_peak,
        per_tick_connections: per_tick,
        shard_sweep_seconds,
        lambda_concurrency_peak: lambda,
        put_events_per_second: shards / (i.tick_minutes * 60.0),
        scheduler_invocations_per_month: 30.0 * 24.0 * 60.0 / i.tick_minutes,
        google_requests_per_day: google_per_day,
        google_requests_per_minute_peak: google_peak_minute,
        google_grants_per_day: grants,
        dollars_per_month: i.dollars_per_10k * people / 10_000.0,
        limits_hit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            webhooks_per_day: 16.0,
            reconciles_per_day: 4.0,
            tick_minutes: 15.0,
            worker_concurrency: 8.0,
            people_per_shard: people_per_shard(4.0, 15.0, 8.0),
            changed_write_units: 3.0,
            changed_read_units: 5.0,
            unchanged_read_units: 3.0,
            provider_calls_per_sync: 1.0,
            dollars_per_10k: 18.0,
            sweep_ms_per_connection: vec![(2_000, 0.5), (50_000, 0.6)],
        }
    }

    #[test]
    fn shards_grow_with_the_population_and_never_fall_below_eight() {
        let per_shard = people_per_shard(4.0, 15.0, 8.0);
        assert_eq!(per_shard, (250.0 / 0.3 * 8.0 * 24.0_f64).floor());
        assert_eq!(per_shard, stepsync::engine::PEOPLE_PER_SHARD as f64, "the engine's constant is this model's");
        assert_eq!(shards_for(10_000.0, per_shard), 8.0);
        assert!(shards_for(10_000_000.0, per_shard) > 8.0);
    }

    #[test]
    fn the_model_scales_linearly_and_names_what_runs_out() {
        let rows = model(&inputs());
        assert_eq!(rows.len(), 4);
        assert!((rows[1].dollars_per_month - 10.0 * rows[0].dollars_per_month).abs() < 1e-9);
        assert!(rows[0].limits_hit.is_empty(), "{:?}", rows[0].limits_hit);
        let ten_million = &rows[3];
        assert!(ten_million.limits_hit.iter().any(|l| l.starts_with("Google requests/day")), "{:?}", ten_million);
        assert!(ten_million.shard_sweep_seconds <= limits::SWEEP_BUDGET_SECONDS);
    }
}
